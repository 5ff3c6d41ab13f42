//! Network namespaces owned by this process (docs/architecture.md, "Scripts and the
//! runner": live targets run only inside a namespace that the harness creates
//! and removes itself; nothing ever leaves it).
//!
//! # How a namespace is made
//!
//! [`Netns::create`] runs `ip netns add tcpconform-<pid>-<counter>`. iproute2
//! creates a fresh network namespace and bind-mounts it on
//! `/run/netns/<name>` (after making `/run/netns` a shared mount point), so the
//! namespace is visible to `ip netns list` and can be removed by *any* process
//! — which is what stale reaping after SIGKILL needs. The alternative,
//! `unshare(CLONE_NEWNET)` plus a hand-made bind mount, would duplicate that
//! mount-point preparation for no gain: `ip netns add` costs a few ms.
//!
//! The harness then opens the namespace file and keeps the descriptor; threads
//! enter the namespace with `setns(2)` on it ([`Netns::run_in`],
//! [`Netns::spawn`]) and verify afterwards that `/proc/thread-self/ns/net` is
//! that namespace — if it is not, the work is refused, so nothing is ever
//! configured in the host's namespace by mistake.
//!
//! # How it is removed
//!
//! - `Drop` (also during a panic's unwinding) unmounts and unlinks
//!   `/run/netns/<name>` — what `ip netns del` does — once the [`Netns`] and
//!   every [`Tun`] it handed out are gone.
//! - SIGINT/SIGTERM: see [`super::cleanup`]; the process exits with 130/143.
//! - SIGKILL: the next `create()` (in any process) reaps namespaces of dead pids.

use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::Duration;

use super::cleanup::{self, NAME_PREFIX};
use super::error::{LiveError, Result};
use super::ip::run_ip;
use super::tun::Tun;

/// Per-process counter making namespace names unique.
static COUNTER: AtomicU64 = AtomicU64::new(0);

/// Bound on waiting for a freshly spawned thread to enter the namespace.
const ENTER_TIMEOUT: Duration = Duration::from_secs(5);

/// The shared state of one namespace; removing the name happens when the last
/// reference (the [`Netns`] or a [`Tun`]) is dropped.
#[derive(Debug)]
pub(crate) struct NsInner {
    name: String,
    path: PathBuf,
    /// Open descriptor of `/run/netns/<name>`, used for `setns(2)`.
    file: File,
    /// (device, inode) of the namespace, to verify `setns` took effect.
    id: (u64, u64),
}

impl Drop for NsInner {
    fn drop(&mut self) {
        let mut reg = cleanup::registry();
        // Removal failures cannot be reported from Drop; the next create()
        // would reap the name as stale once this process is gone.
        let _ = cleanup::remove_ns_file(&self.path);
        reg.remove(&self.name);
    }
}

impl NsInner {
    /// Moves the calling thread into this namespace and checks that it arrived.
    pub(crate) fn enter(&self) -> Result<()> {
        // SAFETY: `self.file` is an open namespace descriptor that outlives the
        // call; setns(2) changes only the calling thread's network namespace.
        let rc = unsafe { libc::setns(self.file.as_raw_fd(), libc::CLONE_NEWNET) };
        if rc != 0 {
            return Err(LiveError::io(
                format!("entering namespace {} (setns)", self.name),
                std::io::Error::last_os_error(),
            ));
        }
        self.check_current_thread()
    }

    /// Fails unless the calling thread is inside this namespace.
    pub(crate) fn check_current_thread(&self) -> Result<()> {
        let here = std::fs::metadata("/proc/thread-self/ns/net")
            .map_err(|e| LiveError::io("reading /proc/thread-self/ns/net".to_string(), e))?;
        if (here.dev(), here.ino()) == self.id {
            Ok(())
        } else {
            Err(LiveError::NotInNamespace {
                name: self.name.clone(),
            })
        }
    }

    pub(crate) fn name(&self) -> &str {
        &self.name
    }
}

/// A fresh network namespace created and owned by this process.
///
/// The only way to get one is [`Netns::create`]; the only way to get a TUN
/// device is [`Netns::open_tun`] (or [`super::LiveNet::setup`]), so the types
/// make it impossible to configure a device in a namespace the harness did not
/// create.
#[derive(Debug)]
pub struct Netns {
    inner: Arc<NsInner>,
}

impl Netns {
    /// Creates a new namespace `tcpconform-<pid>-<counter>`.
    ///
    /// First checks [`super::available`], installs the SIGINT/SIGTERM clean-up
    /// (once per process) and reaps stale namespaces of dead processes.
    pub fn create() -> Result<Netns> {
        super::available()?;
        cleanup::install_signal_cleanup()?;
        let name = format!(
            "{NAME_PREFIX}{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let path = cleanup::ns_path(&name);
        // The registry lock is held across `ip netns add`, so the signal
        // watcher (which takes the same lock) cannot run between mounting and
        // registering.
        let mut reg = cleanup::registry();
        cleanup::reap_stale_locked(&reg)?;
        reg.insert(name.clone());
        let opened = run_ip(&["netns", "add", &name], None).and_then(|()| open_ns(&path));
        match opened {
            Ok((file, id)) => {
                drop(reg);
                Ok(Netns {
                    inner: Arc::new(NsInner {
                        name,
                        path,
                        file,
                        id,
                    }),
                })
            }
            Err(e) => {
                let _ = cleanup::remove_ns_file(&path);
                reg.remove(&name);
                Err(e)
            }
        }
    }

    /// The namespace's name, `tcpconform-<pid>-<counter>`.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The namespace file, `/run/netns/<name>`.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Runs `f` on a new thread that has entered this namespace and waits for
    /// it. Sockets and TUN devices opened by `f` belong to the namespace (and
    /// stay there when returned to the caller). A panic in `f` is propagated to
    /// the caller, so the namespace is still removed while unwinding.
    pub fn run_in<F, R>(&self, f: F) -> Result<R>
    where
        F: FnOnce() -> R + Send,
        R: Send,
    {
        let inner = &*self.inner;
        std::thread::scope(|scope| {
            let handle = std::thread::Builder::new()
                .name(format!("{}-run", inner.name))
                .spawn_scoped(scope, move || inner.enter().map(|()| f()))
                .map_err(|e| LiveError::io("spawning a namespace thread", e))?;
            match handle.join() {
                Ok(result) => result,
                Err(payload) => std::panic::resume_unwind(payload),
            }
        })
    }

    /// Spawns a long-lived thread inside this namespace running `f` (e.g. a
    /// loop serving socket calls from a channel). Returns once the thread has
    /// entered the namespace. The thread does not keep the namespace's name
    /// alive: dropping the [`Netns`] removes the name, and the kernel frees the
    /// namespace when the thread ends.
    pub fn spawn<F, R>(&self, f: F) -> Result<NsThread<R>>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        let inner = Arc::clone(&self.inner);
        let (tx, rx) = mpsc::sync_channel::<Result<()>>(1);
        let handle = std::thread::Builder::new()
            .name(format!("{}-worker", inner.name))
            .spawn(move || {
                let entered = inner.enter();
                drop(inner);
                let ok = entered.is_ok();
                let _ = tx.send(entered);
                ok.then(f)
            })
            .map_err(|e| LiveError::io("spawning a namespace worker thread", e))?;
        match rx.recv_timeout(ENTER_TIMEOUT) {
            Ok(Ok(())) => Ok(NsThread { handle }),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(LiveError::Timeout {
                action: "a worker thread entering the namespace".into(),
                timeout: ENTER_TIMEOUT,
            }),
        }
    }

    /// Creates a TUN device (layer 3, no packet-info header) named `ifname`
    /// inside this namespace, non-blocking. The device is down and has no
    /// address; [`super::LiveNet::setup`] does the configuration.
    pub fn open_tun(&self, ifname: &str) -> Result<Tun> {
        let inner = Arc::clone(&self.inner);
        self.run_in(move || Tun::open(inner, ifname, false))?
    }

    /// [`Netns::open_tun`] with a virtio-net header on every packet
    /// (`IFF_VNET_HDR`), as packetdrill opens its device; offload off.
    pub fn open_tun_vnet(&self, ifname: &str) -> Result<Tun> {
        let inner = Arc::clone(&self.inner);
        self.run_in(move || Tun::open(inner, ifname, true))?
    }

    /// Sets a namespace-local sysctl (`net.ipv4.tcp_rto_min_us`, …) by writing
    /// `/proc/sys/...` from a thread inside the namespace. Names that are not
    /// per-namespace are refused with [`LiveError::SysctlNotNamespaced`].
    pub fn apply_sysctl(&self, name: &str, value: &str) -> Result<()> {
        self.apply_sysctls(&[(name, value)])
    }

    /// Sets several sysctls in one namespace thread (see [`Netns::apply_sysctl`]).
    pub fn apply_sysctls(&self, settings: &[(&str, &str)]) -> Result<()> {
        let checked = settings
            .iter()
            .map(|(n, v)| super::sysctl::check(n, v).map(|path| (path, *n, *v)))
            .collect::<Result<Vec<_>>>()?;
        let inner = &*self.inner;
        self.run_in(move || {
            // Belt and braces: /proc/sys/net resolves against the thread's
            // namespace, so check again right before writing.
            inner.check_current_thread()?;
            checked
                .iter()
                .try_for_each(|(path, n, v)| super::sysctl::write(path, n, v))
        })?
    }

    /// Reads a namespace-local sysctl (same name rules as [`Netns::apply_sysctl`]).
    pub fn read_sysctl(&self, name: &str) -> Result<String> {
        let path = super::sysctl::check(name, "")?;
        let inner = &*self.inner;
        self.run_in(move || {
            inner.check_current_thread()?;
            super::sysctl::read(&path, name)
        })?
    }
}

/// A long-lived thread inside a namespace, from [`Netns::spawn`].
#[derive(Debug)]
pub struct NsThread<R> {
    handle: JoinHandle<Option<R>>,
}

impl<R> NsThread<R> {
    /// Waits for the thread; `Err` carries the panic payload if it panicked.
    pub fn join(self) -> std::thread::Result<R> {
        match self.handle.join() {
            Ok(Some(r)) => Ok(r),
            // Unreachable after a successful spawn (the closure always runs).
            Ok(None) => Err(Box::new("namespace worker did not run")),
            Err(payload) => Err(payload),
        }
    }

    /// Whether the thread has finished.
    pub fn is_finished(&self) -> bool {
        self.handle.is_finished()
    }
}

/// Opens `/run/netns/<name>` and returns it with its (device, inode).
fn open_ns(path: &Path) -> Result<(File, (u64, u64))> {
    let file =
        File::open(path).map_err(|e| LiveError::io(format!("opening {}", path.display()), e))?;
    let meta = file
        .metadata()
        .map_err(|e| LiveError::io(format!("inspecting {}", path.display()), e))?;
    Ok((file, (meta.dev(), meta.ino())))
}
