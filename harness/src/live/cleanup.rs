//! Bookkeeping that guarantees no namespace outlives the process that made it
//! (docs/architecture.md, "Bad input": never a leaked namespace or TUN device).
//!
//! - A process-wide registry holds the name of every namespace this process
//!   created and has not yet removed. Its lock also serialises creation, so a
//!   signal arriving mid-creation cannot miss a namespace that is being mounted.
//! - SIGINT/SIGTERM: a handler installed once (with `sigaction`) writes the
//!   signal number into a self-pipe — the only thing it does, which is
//!   async-signal-safe. A watcher thread reads the pipe, removes every
//!   registered namespace and exits with status 128 + signal (130 / 143).
//! - SIGKILL cannot be caught: the next [`super::Netns::create`] in any process
//!   reaps `tcpconform-<pid>-*` namespaces whose pid is dead ([`reap_stale`]).
//!
//! Removing a namespace is what `ip netns del` does: detach the bind mount of
//! `/run/netns/<name>` and unlink the file. The kernel frees the namespace —
//! and the TUN devices in it — once no thread or descriptor refers to it.

use std::collections::BTreeSet;
use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock};

use super::error::{LiveError, Result};

/// Where iproute2 keeps named network namespaces.
pub(crate) const NETNS_DIR: &str = "/run/netns";

/// Prefix of every namespace this tool creates: `tcpconform-<pid>-<counter>`.
pub const NAME_PREFIX: &str = "tcpconform-";

/// Names of the namespaces this process created and has not removed yet.
static REGISTRY: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());

/// Locks the registry, tolerating poisoning (a panic elsewhere must not stop cleanup).
pub(crate) fn registry() -> MutexGuard<'static, BTreeSet<String>> {
    REGISTRY
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Path of the namespace file for `name`.
pub(crate) fn ns_path(name: &str) -> PathBuf {
    Path::new(NETNS_DIR).join(name)
}

/// Removes a named namespace the way `ip netns del` does: lazy unmount of the
/// bind mount, then unlink. A missing file is not an error.
pub(crate) fn remove_ns_file(path: &Path) -> io::Result<()> {
    let c = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: `c` is a valid NUL-terminated path that lives across the call;
    // umount2 only reads it. Failure (EINVAL: not mounted) is fine here.
    unsafe {
        libc::umount2(c.as_ptr(), libc::MNT_DETACH);
    }
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// The temporary directory a live target keeps beside namespace `name`
/// (`<tmpdir>/<name>.tmp`, the script's `/tmp`): it goes with the namespace,
/// on a signal and when a dead process's namespaces are reaped.
pub(crate) fn temp_area(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("{name}.tmp"))
}

/// Removes `name`'s temporary directory, if any, with everything in it.
fn remove_temp_area(name: &str) {
    let _ = std::fs::remove_dir_all(temp_area(name));
}

/// Parses `tcpconform-<pid>-<counter>` into the pid; `None` for other names.
pub(crate) fn owner_pid(name: &str) -> Option<u64> {
    let rest = name.strip_prefix(NAME_PREFIX)?;
    let (pid, counter) = rest.split_once('-')?;
    let digits = |s: &str| !s.is_empty() && s.len() <= 19 && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(pid) || !digits(counter) {
        return None;
    }
    pid.parse().ok()
}

/// Whether a process with this pid exists (a zombie counts as alive).
pub(crate) fn pid_alive(pid: u64) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false; // larger than any possible pid
    };
    if pid <= 0 {
        return false;
    }
    // SAFETY: signal 0 performs only the existence and permission check; no
    // signal is delivered.
    let rc = unsafe { libc::kill(pid, 0) };
    rc == 0 || io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// Lists the names of all `tcpconform-*` namespaces in `/run/netns`.
pub fn list_namespaces() -> Result<Vec<String>> {
    let entries = match std::fs::read_dir(NETNS_DIR) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(LiveError::io(format!("listing {NETNS_DIR}"), e)),
    };
    let mut names: Vec<String> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str().map(str::to_owned))
        .filter(|n| n.starts_with(NAME_PREFIX))
        .collect();
    names.sort();
    Ok(names)
}

/// Whether `tcpconform-<pid>-<n>` is stale: its pid is dead, or it is this
/// process's pid but not a namespace this process created (left by an
/// earlier process with the same, reused pid). `None` for other names.
fn is_stale(name: &str, registered: &BTreeSet<String>) -> Option<bool> {
    let pid = owner_pid(name)?;
    Some(if pid == u64::from(std::process::id()) {
        !registered.contains(name)
    } else {
        !pid_alive(pid)
    })
}

/// Removes stale namespaces ([`is_stale`]) and the stale temporary
/// directories of [`temp_area`] (a process killed with SIGKILL leaves
/// both). `registered` is the locked registry. Returns the namespaces
/// removed.
pub(crate) fn reap_stale_locked(registered: &BTreeSet<String>) -> Result<Vec<String>> {
    let mut reaped = Vec::new();
    for name in list_namespaces()? {
        if is_stale(&name, registered) == Some(true) {
            remove_ns_file(&ns_path(&name))
                .map_err(|e| LiveError::io(format!("removing stale namespace {name}"), e))?;
            reaped.push(name);
        }
    }
    let temps = std::fs::read_dir(std::env::temp_dir())
        .into_iter()
        .flatten();
    for entry in temps.filter_map(|e| e.ok()) {
        let file = entry.file_name();
        let Some(name) = file.to_str().and_then(|f| f.strip_suffix(".tmp")) else {
            continue;
        };
        if is_stale(name, registered) == Some(true) {
            remove_temp_area(name);
        }
    }
    Ok(reaped)
}

/// Removes every `tcpconform-<pid>-*` namespace left behind by a dead process
/// (e.g. one killed with SIGKILL). [`super::Netns::create`] calls this itself;
/// it is public for a `tcpconform` clean-up command. Returns the names removed.
pub fn reap_stale() -> Result<Vec<String>> {
    super::available()?;
    let reg = registry();
    reap_stale_locked(&reg)
}

/// Process groups of foreign processes running inside our namespaces (the
/// `exec` target's); SIGINT/SIGTERM kills them with the namespaces, so
/// nothing they forked keeps a TUN device alive.
static GROUPS: Mutex<BTreeSet<libc::pid_t>> = Mutex::new(BTreeSet::new());

fn groups() -> MutexGuard<'static, BTreeSet<libc::pid_t>> {
    GROUPS
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Registers the process group `pgid` to be killed on SIGINT/SIGTERM.
pub(crate) fn register_group(pgid: libc::pid_t) {
    groups().insert(pgid);
}

/// Kills the process group `pgid` (SIGKILL) and forgets it. Call before
/// reaping its leader, so the group id cannot have been reused.
pub(crate) fn kill_group(pgid: libc::pid_t) {
    let mut g = groups();
    // SAFETY: kill(2) with a negative pid signals a process group; the
    // caller has not reaped the group's leader, so the id is still its.
    unsafe {
        libc::kill(-pgid, libc::SIGKILL);
    }
    g.remove(&pgid);
}

/// Removes every namespace in the (locked) registry (used on SIGINT/SIGTERM).
fn remove_all_registered(reg: &mut BTreeSet<String>) {
    for name in reg.iter() {
        let _ = remove_ns_file(&ns_path(name));
        remove_temp_area(name);
    }
    reg.clear();
}

/// Write end of the self-pipe, or -1 before installation.
static PIPE_WR: AtomicI32 = AtomicI32::new(-1);

/// The signal handler: only an atomic load and a `write(2)`, both async-signal-safe.
extern "C" fn on_signal(sig: libc::c_int) {
    let fd = PIPE_WR.load(Ordering::Relaxed);
    if fd >= 0 {
        let byte = sig as u8;
        // SAFETY: `byte` is a live one-byte buffer; write(2) is async-signal-safe
        // and the pipe is non-blocking, so the handler never blocks. Errno is
        // saved and restored so the interrupted code sees it unchanged.
        unsafe {
            let errno = libc::__errno_location();
            let saved = *errno;
            libc::write(fd, (&byte as *const u8).cast(), 1);
            *errno = saved;
        }
    }
}

/// Installs the SIGINT/SIGTERM clean-up once per process. A signal that was
/// ignored when the handler is installed (e.g. SIGINT of a background job)
/// stays ignored.
pub(crate) fn install_signal_cleanup() -> Result<()> {
    static INSTALLED: OnceLock<std::result::Result<(), String>> = OnceLock::new();
    INSTALLED
        .get_or_init(|| install_inner().map_err(|e| e.to_string()))
        .clone()
        .map_err(|msg| LiveError::Io {
            action: "installing the SIGINT/SIGTERM clean-up handler".into(),
            source: io::Error::other(msg),
        })
}

fn install_inner() -> io::Result<()> {
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: `fds` is a valid array of two ints for pipe2 to fill.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let (rd, wr) = (fds[0], fds[1]);
    // The read end blocks: the watcher sleeps in read(2) until a signal comes.
    // SAFETY: `rd` is the descriptor pipe2 just returned; F_SETFL only changes flags.
    unsafe {
        libc::fcntl(rd, libc::F_SETFL, 0);
    }
    std::thread::Builder::new()
        .name("tcpconform-signal-cleanup".into())
        .spawn(move || watch(rd))?;
    PIPE_WR.store(wr, Ordering::Relaxed);
    for sig in [libc::SIGINT, libc::SIGTERM] {
        install_handler(sig)?;
    }
    Ok(())
}

fn install_handler(sig: libc::c_int) -> io::Result<()> {
    // SAFETY: an all-zero sigaction is a valid starting value (empty mask, no flags).
    let mut old: libc::sigaction = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    let mut new: libc::sigaction = unsafe { std::mem::zeroed() };
    new.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
    new.sa_flags = libc::SA_RESTART;
    // SAFETY: both pointers refer to live sigaction structs; the handler is an
    // `extern "C"` function that only performs async-signal-safe operations.
    if unsafe { libc::sigaction(sig, &new, &mut old) } != 0 {
        return Err(io::Error::last_os_error());
    }
    if old.sa_sigaction == libc::SIG_IGN {
        // SAFETY: restores the previous (ignored) disposition from a valid struct.
        if unsafe { libc::sigaction(sig, &old, std::ptr::null_mut()) } != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// The watcher thread: waits for a signal number on the self-pipe, removes all
/// registered namespaces and exits with 128 + signal.
fn watch(rd: libc::c_int) {
    loop {
        let mut byte = 0u8;
        // SAFETY: `byte` is a live one-byte buffer and `rd` stays open for the
        // life of the process (it is never closed).
        let n = unsafe { libc::read(rd, (&mut byte as *mut u8).cast(), 1) };
        if n == 1 {
            // The lock is held until the process is gone, so no namespace can
            // be created between the clean-up and the exit.
            let mut reg = registry();
            for g in groups().iter() {
                // SAFETY: as in `kill_group`; the groups are still registered,
                // so their leaders are not reaped yet.
                unsafe {
                    libc::kill(-*g, libc::SIGKILL);
                }
            }
            remove_all_registered(&mut reg);
            std::process::exit(128 + i32::from(byte));
        }
        if n < 0 && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
            continue;
        }
        // EOF or an unexpected error: nothing more can arrive.
        return;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dead_process_temporary_directory_is_reaped_a_live_one_kept() {
        // A pid beyond any pid_t is dead; pid 1 is always alive.
        let dead = temp_area("tcpconform-99999999999-7");
        let alive = temp_area("tcpconform-1-7");
        for dir in [&dead, &alive] {
            std::fs::create_dir_all(dir).unwrap();
            std::fs::write(dir.join("left-behind"), b"x").unwrap();
        }
        // The real registry: reaping with an empty set would take this
        // process's own live namespaces for stale ones.
        let reaped = {
            let reg = registry();
            reap_stale_locked(&reg)
        };
        let (dead_gone, alive_kept) = (!dead.exists(), alive.exists());
        let _ = std::fs::remove_dir_all(&alive);
        assert!(reaped.is_ok(), "{reaped:?}");
        assert!(dead_gone, "{} was left", dead.display());
        assert!(alive_kept, "{} was removed", alive.display());
    }

    #[test]
    fn owner_pid_parses_only_our_names() {
        assert_eq!(owner_pid("tcpconform-1234-0"), Some(1234));
        assert_eq!(owner_pid("tcpconform-999999-17"), Some(999_999));
        for other in [
            "tcpconform-",
            "tcpconform-12",
            "tcpconform-12-",
            "tcpconform--3",
            "tcpconform-12-3-4",
            "tcpconform-probe-1",
            "other-12-3",
            "tcpconform-99999999999999999999-0",
        ] {
            assert_eq!(owner_pid(other), None, "{other}");
        }
    }

    #[test]
    fn impossible_pids_are_dead() {
        assert!(!pid_alive(0));
        assert!(!pid_alive(u64::MAX));
        assert!(pid_alive(u64::from(std::process::id())));
    }
}
