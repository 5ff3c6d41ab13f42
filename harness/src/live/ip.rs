//! Running the iproute2 `ip` tool with a bounded wait.
//!
//! `ip` is used for the two operations whose kernel interfaces are awkward to
//! drive by hand: creating a *named* namespace (`ip netns add`, which also
//! prepares `/run/netns` as a shared mount point) and configuring addresses and
//! routes (`ip -n <ns> -batch -`, rtnetlink underneath). Every invocation is
//! bounded by [`IP_TIMEOUT`]; a stuck `ip` is killed, never waited on forever.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use super::error::{LiveError, Result};

/// Upper bound on one `ip` invocation.
pub(crate) const IP_TIMEOUT: Duration = Duration::from_secs(5);

/// Directories searched for `ip` after `PATH` (it often lives in an sbin
/// directory that an unprivileged `PATH` lacks).
const FALLBACK_DIRS: [&str; 4] = ["/usr/sbin", "/sbin", "/usr/bin", "/bin"];

/// `path` (a `PATH` value) without its relative entries — an empty entry
/// or `.` would run a program from the working directory, as root — and
/// with the fallback directories appended when missing.
pub fn sanitised_path(path: Option<&std::ffi::OsStr>) -> std::ffi::OsString {
    let mut dirs = absolute_dirs(path);
    for d in FALLBACK_DIRS.iter().map(PathBuf::from) {
        if !dirs.contains(&d) {
            dirs.push(d);
        }
    }
    std::env::join_paths(dirs).unwrap_or_else(|_| FALLBACK_DIRS.join(":").into())
}

/// Replaces this process's `PATH` by [`sanitised_path`] of it, so that
/// every helper program (`ip`, `/bin/sh` commands, `python3`, `exec:`
/// targets) is found in absolute directories only. Call it before any
/// thread starts (the environment is process-wide).
pub fn sanitise_process_path() {
    let clean = sanitised_path(std::env::var_os("PATH").as_deref());
    std::env::set_var("PATH", clean);
}

/// The absolute directories of a `PATH` value, in order.
fn absolute_dirs(path: Option<&std::ffi::OsStr>) -> Vec<PathBuf> {
    path.map(|p| {
        std::env::split_paths(p)
            .filter(|d| d.is_absolute())
            .collect()
    })
    .unwrap_or_default()
}

/// The absolute path of the `ip` binary, searched once per process.
pub(crate) fn ip_path() -> Result<&'static Path> {
    static IP: OnceLock<Option<PathBuf>> = OnceLock::new();
    IP.get_or_init(find_ip)
        .as_deref()
        .ok_or(LiveError::NoIpTool)
}

fn find_ip() -> Option<PathBuf> {
    absolute_dirs(std::env::var_os("PATH").as_deref())
        .into_iter()
        .chain(FALLBACK_DIRS.iter().map(PathBuf::from))
        .map(|d| d.join("ip"))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// Runs `ip <args>` (feeding `stdin` when given) and waits at most
/// [`IP_TIMEOUT`]. A non-zero exit becomes [`LiveError::IpCommand`] (or
/// [`LiveError::PermissionDenied`] when `ip` reports a permission problem).
pub(crate) fn run_ip(args: &[&str], stdin: Option<&str>) -> Result<()> {
    let ip = ip_path()?;
    let describe = || {
        let mut s = args.join(" ");
        if let Some(input) = stdin {
            s.push_str(" <<< ");
            s.push_str(&input.replace('\n', "; "));
        }
        s
    };
    let mut child = Command::new(ip)
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| LiveError::io(format!("starting `ip {}`", describe()), e))?;
    if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
        // The batch is a few hundred bytes: far below the pipe buffer, so this
        // write cannot block on a child that does not read.
        if let Err(e) = pipe.write_all(input.as_bytes()) {
            kill_and_reap(&mut child);
            return Err(LiveError::io(format!("feeding `ip {}`", describe()), e));
        }
        drop(pipe);
    }
    let status = wait_bounded(&mut child, IP_TIMEOUT).map_err(|e| match e {
        WaitError::Timeout => LiveError::Timeout {
            action: format!("`ip {}`", describe()),
            timeout: IP_TIMEOUT,
        },
        WaitError::Io(e) => LiveError::io(format!("waiting for `ip {}`", describe()), e),
    })?;
    if status.success() {
        return Ok(());
    }
    let mut stderr = String::new();
    if let Some(mut err) = child.stderr.take() {
        // The child has exited, so this read ends at EOF.
        let _ = err.read_to_string(&mut stderr);
    }
    let first = stderr.lines().next().unwrap_or("").trim().to_string();
    let lower = first.to_ascii_lowercase();
    if lower.contains("operation not permitted") || lower.contains("permission denied") {
        return Err(LiveError::PermissionDenied {
            action: format!("running `ip {}`", describe()),
        });
    }
    Err(LiveError::IpCommand {
        args: describe(),
        status: status.to_string(),
        stderr: first,
    })
}

enum WaitError {
    Timeout,
    Io(std::io::Error),
}

/// Polls `child` until it exits or `timeout` passes; on timeout it is killed.
fn wait_bounded(
    child: &mut Child,
    timeout: Duration,
) -> Result<std::process::ExitStatus, WaitError> {
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_micros(200);
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Ok(status),
            Ok(None) => {}
            Err(e) => {
                kill_and_reap(child);
                return Err(WaitError::Io(e));
            }
        }
        if Instant::now() >= deadline {
            kill_and_reap(child);
            return Err(WaitError::Timeout);
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(5));
    }
}

fn kill_and_reap(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An empty entry, `.` and a relative directory would each find a
    /// program in (or below) the working directory: all are dropped; the
    /// fallback directories are added once.
    #[test]
    fn relative_path_entries_are_dropped() {
        let p = sanitised_path(Some(std::ffi::OsStr::new(":/usr/bin:.:bin/x::/opt/t")));
        assert_eq!(
            p,
            std::ffi::OsString::from("/usr/bin:/opt/t:/usr/sbin:/sbin:/bin")
        );
        let p = sanitised_path(None);
        assert_eq!(p, std::ffi::OsString::from("/usr/sbin:/sbin:/usr/bin:/bin"));
    }
}
