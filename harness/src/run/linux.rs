//! Target `linux`: the kernel of this machine behind `tun0`, on a real clock
//! (docs/architecture.md, "Scripts and the runner" — live targets — and "Facts about the
//! live Linux target").
//!
//! [`LinuxTarget::new`] creates a fresh network namespace with
//! [`crate::live::LiveNet::setup`]: the kernel under test is 192.0.2.1 on
//! `tun0`, the scripted peer 192.0.2.2 behind it. Nothing leaves the
//! namespace, and dropping the target removes it.
//!
//! - **Packets.** Inbound packets are written into `tun0` ([`Tun::send`]):
//!   the kernel sees them arrive from the peer and processes them before the
//!   write returns. A reader thread takes what the kernel sends out of `tun0`
//!   and stamps each packet with the time it was read, so the stamps do not
//!   depend on when the runner next looks. TCP and ICMP packets are passed
//!   on; anything else is counted ([`LinuxTarget::ignored_packets`]).
//! - **Socket calls** run on real sockets inside the namespace: one worker
//!   thread, which entered the namespace with [`crate::live::Netns::spawn`],
//!   owns every socket and executes the [`SocketCall`]s sent to it over a
//!   channel. The conventions are the `own` target's: script fds from 3 up
//!   (the lowest free one), `bind`/`listen`/`connect` use 192.0.2.1:8080,
//!   `connect` goes to 192.0.2.2:40000, written data is `A..Z` repeated.
//!   Every real socket is non-blocking; a call that would block on a socket
//!   the script keeps blocking answers [`CallOutcome::WouldBlock`] and the
//!   runner makes it again later, except a blocking `write`/`send`/`sendto`,
//!   which is one real blocking call on a helper thread
//!   ([`super::blocking`]). `write` uses `send(MSG_NOSIGNAL)`: a reset
//!   connection yields `EPIPE`, never a SIGPIPE. `epoll_*`, `ioctl`,
//!   `open`/`sendfile`, `pipe`/`splice` and `NULL`/`AF_UNSPEC` pointers run
//!   in their own modules ([`super::epoll`], [`super::files`],
//!   [`super::pointers`]); the script's `/tmp` is the target's own
//!   temporary directory ([`super::files::TempArea`]).
//! - **Time** is real: µs since the first thing the runner asked, so the
//!   namespace set-up (tens of ms) does not count. [`Target::advance`]
//!   sleeps until the deadline or the next outbound packet.
//! - **Timing slack.** Linux runs TCP timers on its timer wheel, which rounds
//!   a timeout up to the granularity of its wheel level — at most 1/8 of the
//!   timeout (plus a tick): at HZ=250 a 1 s timer fires after ≈1.024 s, 2 s
//!   after ≈2.016 s, 4–16 s up to ~0.25 s late. [`Target::timing_slack`]
//!   therefore allows `gap/8` plus [`BASE_SLACK`] of lateness for an event
//!   scripted `gap` after the previous one; nothing is allowed early.
//! - **sysctl** lines are applied inside the namespace only
//!   ([`crate::live::LiveNet::apply_sysctl`]); names that are not local to
//!   a network namespace are refused and reported as not applicable.

use super::own::{ip_version_is_v6, script_addresses};
use super::peer_tap::{blocked_after, linger_secs, PeerTap, ScriptClock};
use super::target::{
    CallOutcome, CallReturn, Fd, How, Micros, OptValue, ShellOutcome, SockOpt, SocketCall,
    SysctlOutcome, Target, TargetError, O_NONBLOCK,
};
use crate::live::{LiveNet, NsThread};
use crate::script::IpVersion;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub(super) mod msg_io;

/// Lateness allowed on top of `gap / 8` for every event: three ticks at
/// HZ=250 (a timer fires on the tick after its expiry, and the reader
/// thread may wait for a CPU on a busy 2-core machine). Still well below
/// Linux's 40 ms minimum delayed-ACK timeout, so "immediate" stays
/// distinguishable from "delayed".
pub const BASE_SLACK: Duration = Duration::from_millis(12);

/// Bound on waiting for the socket worker's answer (plus any `SO_LINGER`
/// time the script set, since a lingering `close` really blocks).
const REPLY_TIMEOUT: Duration = Duration::from_secs(5);
/// Bound on waiting for the worker to end when the target is dropped.
const WORKER_EXIT_TIMEOUT: Duration = Duration::from_secs(2);
/// Largest piece handed to one `send(2)`.
const WRITE_CHUNK: usize = 64 * 1024;

/// The Linux kernel of this machine as a [`Target`], inside a namespace
/// created for it.
///
/// Dropping it stops its threads, closes its sockets and removes the
/// namespace.
#[derive(Debug)]
pub struct LinuxTarget {
    kernel: String,
    /// Time zero of the script: set by the first call that reads the clock.
    clock: ScriptClock,
    /// The scripted peer's end of `tun0`: what the kernel sends.
    tap: PeerTap,
    calls: Option<Sender<SocketCall>>,
    replies: Receiver<Result<CallOutcome, TargetError>>,
    worker: Option<NsThread<()>>,
    /// The last call would block (or was a `poll` that found nothing).
    blocked: bool,
    /// Set when the worker stopped answering: the target is unusable.
    broken: Option<String>,
    /// The script runs over IPv6: shared with the worker, which opens
    /// AF_INET6 sockets then.
    v6: Arc<AtomicBool>,
    /// The longest `SO_LINGER` time the script set, in seconds.
    max_linger: u64,
    /// The script's `/tmp` (removed after the worker is gone).
    tmp: super::files::TempArea,
    /// packetdrill's `--mss`: injected TCP segments carry it as their GSO
    /// size (see [`Target::packetdrill_device`]).
    gso_mss: Option<u16>,
    /// Last field: dropped after the threads are gone.
    net: Arc<LiveNet>,
}

impl LinuxTarget {
    /// Creates the namespace, the TUN devices, the `tun0` reader and the
    /// socket worker. Fails with one sentence (as [`TargetError::Setup`])
    /// when this process cannot run live targets: not root, no
    /// `/dev/net/tun`, no `ip` tool.
    pub fn new() -> Result<LinuxTarget, TargetError> {
        crate::live::available().map_err(|e| TargetError::Setup(e.to_string()))?;
        let net = LiveNet::setup().map_err(|e| TargetError::Setup(e.to_string()))?;
        let net = Arc::new(net);
        // Nothing should be queued yet; whatever is, is not the script's.
        net.drain().map_err(|e| TargetError::Setup(e.to_string()))?;

        let clock = ScriptClock::default();
        // Dropped (reader stopped) if the worker does not start.
        let tap = PeerTap::start(&net, clock.clone(), |_| {})?;

        let (calls, call_rx) = mpsc::channel::<SocketCall>();
        let (reply_tx, replies) = mpsc::channel();
        let v6 = Arc::new(AtomicBool::new(false));
        let worker_v6 = Arc::clone(&v6);
        let tmp = super::files::TempArea::create(net.netns().name())
            .map_err(|e| TargetError::Setup(format!("temporary directory: {e}")))?;
        let worker_tmp = tmp.path().to_path_buf();
        let worker = net
            .netns()
            .spawn(move || serve_calls(&call_rx, &reply_tx, worker_v6, worker_tmp))
            .map_err(|e| TargetError::Setup(e.to_string()))?;
        Ok(LinuxTarget {
            kernel: kernel_release(),
            clock,
            tap,
            calls: Some(calls),
            replies,
            worker: Some(worker),
            blocked: false,
            broken: None,
            v6,
            max_linger: 0,
            tmp,
            gso_mss: None,
            net,
        })
    }

    /// The kernel under test, as `uname -r` prints it (e.g. `6.18.44`).
    pub fn kernel(&self) -> &str {
        &self.kernel
    }

    /// The namespace the kernel under test is reached in.
    pub fn netns_name(&self) -> &str {
        self.net.netns().name()
    }

    /// Packets read from `tun0` that were not IPv4 TCP and so were not
    /// handed to the runner.
    pub fn ignored_packets(&self) -> usize {
        self.tap.ignored()
    }

    /// Sends a call to the worker and waits for its answer.
    fn roundtrip(&mut self, call: &SocketCall) -> Result<CallOutcome, TargetError> {
        if let Some(why) = self.broken.as_deref().or(self.tap.broken()) {
            return Err(TargetError::Io(why.to_string()));
        }
        let Some(calls) = &self.calls else {
            return Err(TargetError::Io("the socket worker is gone".into()));
        };
        if calls.send(call.clone()).is_err() {
            return Err(TargetError::Io("the socket worker is gone".into()));
        }
        let timeout = REPLY_TIMEOUT + Duration::from_secs(self.max_linger);
        match self.replies.recv_timeout(timeout) {
            Ok(r) => r,
            Err(RecvTimeoutError::Timeout) => {
                let why = format!(
                    "the socket worker did not finish `{}` within {timeout:?}",
                    call.name()
                );
                self.broken = Some(why.clone());
                Err(TargetError::Io(why))
            }
            Err(RecvTimeoutError::Disconnected) => {
                Err(TargetError::Io("the socket worker is gone".into()))
            }
        }
    }
}

impl Drop for LinuxTarget {
    fn drop(&mut self) {
        self.tap.stop();
        // Closing the channel ends the worker, which closes the sockets.
        self.calls = None;
        if let Some(w) = self.worker.take() {
            let deadline = Instant::now() + WORKER_EXIT_TIMEOUT;
            while !w.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(1));
            }
            if w.is_finished() {
                let _ = w.join();
            }
            // Otherwise it is stuck in a lingering close: leave it. It does
            // not keep the namespace's name, which goes with `net` below.
        }
    }
}

impl Target for LinuxTarget {
    fn name(&self) -> &'static str {
        "linux"
    }

    fn is_virtual(&self) -> bool {
        false
    }

    fn now(&self) -> Micros {
        self.clock.now()
    }

    /// The kernel under test is 192.0.2.1 / 2001:db8::1 on `tun0`, the
    /// peer 192.0.2.2 / 2001:db8::2: the script's own addresses.
    fn addresses(&self) -> (SocketAddr, SocketAddr) {
        script_addresses(self.v6.load(Ordering::Relaxed))
    }

    fn set_ip_version(&mut self, v: IpVersion) -> Result<(), TargetError> {
        self.v6.store(ip_version_is_v6(v)?, Ordering::Relaxed);
        Ok(())
    }

    /// Sleeps until `until` or until the kernel sends a packet, whichever
    /// comes first (at most [`BLOCKED_SLICE`] while a call is blocked).
    /// Real time cannot stop exactly at `until`: the returned time may be a
    /// little past it.
    fn advance(&mut self, until: Micros) -> Result<Micros, TargetError> {
        if let Some(why) = &self.broken {
            return Err(TargetError::Io(why.clone()));
        }
        self.tap.wait(until, self.blocked)
    }

    fn inject(&mut self, packet: &[u8]) -> Result<(), TargetError> {
        self.clock.origin();
        self.net
            .tun0()
            .send_gso(packet, self.gso_mss)
            .map_err(|e| TargetError::Io(e.to_string()))?;
        // The kernel answered during the write: stamp its answer now.
        self.tap.sync()
    }

    fn inject_icmp(&mut self, packet: &[u8]) -> Result<(), TargetError> {
        self.inject(packet)
    }

    fn packetdrill_device(&mut self, gso_mss: Option<u16>) -> Result<(), TargetError> {
        self.net
            .tun0()
            .set_offload(true)
            .map_err(|e| TargetError::Setup(e.to_string()))?;
        self.gso_mss = gso_mss;
        Ok(())
    }

    fn take_outbound(&mut self) -> Vec<(Micros, Vec<u8>)> {
        self.tap.take_outbound()
    }

    fn call(&mut self, call: &SocketCall) -> Result<CallOutcome, TargetError> {
        self.clock.origin();
        if let Some(secs) = linger_secs(call) {
            self.max_linger = self.max_linger.max(secs);
        }
        let mut r = self.roundtrip(call)?;
        msg_io::stamp_origin(&mut r, &self.clock);
        // What the call made the kernel send is stamped before the next
        // event (see `PeerTap::sync`).
        self.tap.sync()?;
        // A `%{ }%` block's TCP_INFO is read while another call may be
        // pending: it must not end the short waits that retry that call.
        if !matches!(call, SocketCall::TcpInfo { .. }) {
            self.blocked = blocked_after(&r, call);
        }
        Ok(r)
    }

    /// Applies the sysctl inside the namespace. A name that is not local to
    /// a network namespace is refused (the host's value stays in force, a
    /// warning); one unknown to this kernel or a rejected value makes the
    /// script not applicable, with the reason.
    fn sysctl(&mut self, name: &str, value: &str) -> SysctlOutcome {
        match self.net.apply_sysctl(name, value) {
            Ok(()) => SysctlOutcome::Applied,
            Err(e @ crate::live::LiveError::SysctlNotNamespaced { .. }) => {
                SysctlOutcome::Refused(e.to_string())
            }
            Err(e) => SysctlOutcome::NotApplicable(e.to_string()),
        }
    }

    /// `net.ipv4.tcp_fastopen_key` of the namespace.
    fn fastopen_key(&mut self) -> Option<[u8; 16]> {
        let text = self
            .net
            .netns()
            .read_sysctl("net.ipv4.tcp_fastopen_key")
            .ok()?;
        super::tfo_cookie::parse_key(&text)
    }

    /// Any backtick command, run in the namespace (see [`run_shell`]).
    fn shell(&mut self, cmd: &str, cwd: &std::path::Path) -> ShellOutcome {
        run_shell(self.net.netns().name(), cmd, cwd, self.tmp.path())
    }

    /// `gap / 8 + BASE_SLACK`: the timer wheel's rounding (at most 1/8 of
    /// a timeout at any wheel level) plus ticks and scheduling.
    fn timing_slack(&self, gap: Duration) -> Duration {
        BASE_SLACK + gap / 8
    }
}

/// `getsockopt(TCP_INFO)` of a socket, the raw struct in `data`.
fn tcp_info(sock: Option<&Sock>) -> CallReturn {
    let Some(sock) = sock else {
        return CallReturn::err("EBADF");
    };
    let mut buf = vec![0u8; 512];
    let mut len = buf.len() as libc::socklen_t;
    // SAFETY: `buf` is writable for `len` octets; the kernel writes at most that.
    let rc = unsafe {
        libc::getsockopt(
            sock.raw(),
            libc::SOL_TCP,
            libc::TCP_INFO,
            buf.as_mut_ptr().cast(),
            &mut len,
        )
    };
    if rc < 0 {
        return last_err();
    }
    buf.truncate(len as usize);
    CallReturn {
        data: buf,
        ..CallReturn::ok(0)
    }
}

/// Runs a backtick command as packetdrill does — `/bin/sh -c`, working
/// directory `cwd`, `PACKETDRILL_PID` the harness's pid (a command's
/// `$PPID` is the harness too) — inside namespace `netns` only, in a
/// private mount namespace where `/proc/sys` is read-only except
/// `/proc/sys/net`, whose entries are the namespace's own, so no host-wide
/// setting can be written; `/tmp` there is the target's temporary
/// directory `tmp` ([`super::ns_shell`]).
pub fn run_shell(
    netns: &str,
    cmd: &str,
    cwd: &std::path::Path,
    tmp: &std::path::Path,
) -> ShellOutcome {
    let mut command = match super::ns_shell::command(netns, cmd, tmp) {
        Ok(c) => c,
        Err(e) => return ShellOutcome::Failed(format!("cannot enter namespace {netns}: {e}")),
    };
    let out = command
        .current_dir(cwd)
        .env(
            "PATH",
            crate::live::sanitised_path(std::env::var_os("PATH").as_deref()),
        )
        .env("PACKETDRILL_PID", std::process::id().to_string())
        .stdin(std::process::Stdio::null())
        .output();
    match out {
        Err(e) => ShellOutcome::Failed(format!("cannot run the command in {netns}: {e}")),
        Ok(o) if o.status.success() => ShellOutcome::Ran,
        Ok(o) => {
            let err = String::from_utf8_lossy(&o.stderr);
            let tail: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
            let tail = tail[tail.len().saturating_sub(3)..].join(" | ");
            ShellOutcome::Failed(format!(
                "{}{}",
                o.status,
                if tail.is_empty() {
                    String::new()
                } else {
                    format!(": {tail}")
                }
            ))
        }
    }
}

/// `uname -r`.
fn kernel_release() -> String {
    // SAFETY: utsname is plain old data; all-zero is a valid value.
    let mut u: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: `u` is a valid, writable utsname for the duration of the call.
    if unsafe { libc::uname(&mut u) } != 0 {
        return "unknown".into();
    }
    let bytes: Vec<u8> = u
        .release
        .iter()
        .take_while(|c| **c != 0)
        .map(|c| *c as u8)
        .collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

// ----- the socket worker (runs inside the namespace) -------------------------

/// The worker thread's loop: one answer per call, until the channel closes.
fn serve_calls(
    calls: &Receiver<SocketCall>,
    replies: &Sender<Result<CallOutcome, TargetError>>,
    v6: Arc<AtomicBool>,
    tmp: std::path::PathBuf,
) {
    crate::live::boost_current_thread();
    let mut sockets = Sockets {
        fds: BTreeMap::new(),
        v6,
        active: 0,
        tmp,
    };
    while let Ok(call) = calls.recv() {
        let r = sockets.call(&call);
        if replies.send(r).is_err() {
            break;
        }
    }
    // `sockets` drops here: every remaining socket is closed.
}

/// One script file descriptor.
#[derive(Debug)]
struct Sock {
    fd: OwnedFd,
    /// Whether the *script* made it non-blocking (the real one always is).
    nonblock: bool,
    bound: bool,
    /// A blocking `write` under way on a helper thread.
    pending: Option<super::blocking::InFlight>,
}

impl Sock {
    fn new(fd: OwnedFd) -> Sock {
        Sock {
            fd,
            nonblock: false,
            bound: false,
            pending: None,
        }
    }

    fn raw(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

/// The worker's sockets by script fd.
#[derive(Debug)]
struct Sockets {
    fds: BTreeMap<Fd, Sock>,
    /// Open AF_INET6 sockets and use the IPv6 script addresses.
    v6: Arc<AtomicBool>,
    /// Active opens bound so far: the n-th binds to port 8080 + n, so a
    /// script's second connection to the peer is a new 4-tuple (the
    /// runner learns the port from its SYN under `--packetdrill`).
    active: u16,
    /// The target's temporary directory (the script's `/tmp`).
    tmp: std::path::PathBuf,
}

fn done(r: CallReturn) -> Result<CallOutcome, TargetError> {
    Ok(CallOutcome::Done(r))
}

/// The result of a libc call returning `-1`/errno, as a script return.
pub(super) fn last_err() -> CallReturn {
    errno_return(errno())
}

fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

fn errno_return(e: i32) -> CallReturn {
    match errno_name(e) {
        Some(name) => CallReturn::err(name),
        None => CallReturn::err("EUNKNOWN").with_note(format!("errno {e} has no name here")),
    }
}

fn ok_or_err(rc: libc::c_int) -> CallReturn {
    if rc < 0 {
        last_err()
    } else {
        CallReturn::ok(i64::from(rc))
    }
}

/// A socket address in the C layout, for bind(2) and connect(2).
pub(super) enum RawAddr {
    V4(libc::sockaddr_in),
    V6(libc::sockaddr_in6),
}

impl RawAddr {
    pub(super) fn new(a: SocketAddr) -> RawAddr {
        match a {
            SocketAddr::V4(a) => RawAddr::V4(libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: a.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from(*a.ip()).to_be(),
                },
                sin_zero: [0; 8],
            }),
            SocketAddr::V6(a) => RawAddr::V6(libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: a.port().to_be(),
                sin6_flowinfo: 0,
                sin6_addr: libc::in6_addr {
                    s6_addr: a.ip().octets(),
                },
                sin6_scope_id: 0,
            }),
        }
    }

    /// The pointer and length to pass; valid while `self` lives.
    pub(super) fn as_ptr_len(&self) -> (*const libc::sockaddr, libc::socklen_t) {
        fn len<T>() -> libc::socklen_t {
            std::mem::size_of::<T>() as libc::socklen_t
        }
        match self {
            RawAddr::V4(sa) => (
                (sa as *const libc::sockaddr_in).cast(),
                len::<libc::sockaddr_in>(),
            ),
            RawAddr::V6(sa) => (
                (sa as *const libc::sockaddr_in6).cast(),
                len::<libc::sockaddr_in6>(),
            ),
        }
    }
}

/// Level and name of a socket option.
fn opt_names(opt: SockOpt) -> (libc::c_int, libc::c_int) {
    match opt {
        SockOpt::ReuseAddr => (libc::SOL_SOCKET, libc::SO_REUSEADDR),
        SockOpt::RcvBuf => (libc::SOL_SOCKET, libc::SO_RCVBUF),
        SockOpt::SndBuf => (libc::SOL_SOCKET, libc::SO_SNDBUF),
        SockOpt::Linger => (libc::SOL_SOCKET, libc::SO_LINGER),
        SockOpt::Error => (libc::SOL_SOCKET, libc::SO_ERROR),
        SockOpt::NoDelay => (libc::IPPROTO_TCP, libc::TCP_NODELAY),
        SockOpt::MaxSeg => (libc::IPPROTO_TCP, libc::TCP_MAXSEG),
        SockOpt::Kernel { level, name, .. } => (level, name),
    }
}

impl Sockets {
    fn call(&mut self, call: &SocketCall) -> Result<CallOutcome, TargetError> {
        let fd = match call {
            SocketCall::Socket => return self.socket(),
            SocketCall::Poll { fds, .. } => return self.poll(fds),
            SocketCall::TcpInfo { fd } => return done(tcp_info(self.fds.get(fd))),
            SocketCall::Epoll(c) => return Ok(super::epoll::run_live(c, self)),
            SocketCall::Pointer(c) => return Ok(super::pointers::run_live(c, self)),
            SocketCall::File(c) => return Ok(super::files::run_live(c, self)),
            // Every other call names its socket; -1 is never one (EBADF).
            _ => call.fd().unwrap_or(-1),
        };
        if matches!(call, SocketCall::Close { .. }) {
            return done(self.close(fd));
        }
        if matches!(call, SocketCall::Accept { .. }) {
            return self.accept(fd);
        }
        let Some(sock) = self.fds.get_mut(&fd) else {
            return done(CallReturn::err("EBADF"));
        };
        let nonblock = sock.nonblock;
        let raw = sock.raw();
        let (local, peer) = script_addresses(self.v6.load(Ordering::Relaxed));
        match call {
            SocketCall::Bind { .. } => {
                let r = bind_local(raw, local);
                if r.ret.is_ok() {
                    sock.bound = true;
                }
                done(r)
            }
            SocketCall::Listen { backlog, .. } => listen(sock, local, *backlog),
            SocketCall::Connect { .. } => {
                let from = (!sock.bound).then(|| active_local(local, &mut self.active));
                connect(sock, from, peer)
            }
            SocketCall::Write { len, .. } => send_all(sock, &[*len], 0, None),
            SocketCall::Msg(m) => msg_io::call(sock, m, local, peer, &mut self.active),
            SocketCall::Send {
                len,
                flags,
                to_peer,
                ..
            } => {
                // An unbound socket binds like `connect`, to its own port.
                let from = (*to_peer && !sock.bound).then(|| active_local(local, &mut self.active));
                send_flags(sock, &[*len], *flags, to_peer.then_some(peer), from)
            }
            SocketCall::Read { len, .. } => read(sock, *len),
            SocketCall::Shutdown { how, .. } => {
                let how = match how {
                    How::Read => libc::SHUT_RD,
                    How::Write => libc::SHUT_WR,
                    How::Both => libc::SHUT_RDWR,
                };
                // SAFETY: plain syscall on a descriptor this worker owns.
                done(ok_or_err(unsafe { libc::shutdown(raw, how) }))
            }
            SocketCall::SetSockOpt { opt, value, .. } => done(set_opt(raw, *opt, *value)),
            SocketCall::GetSockOpt { opt, .. } => done(get_opt(raw, *opt)),
            SocketCall::GetFl { .. } => get_fl(raw, nonblock),
            SocketCall::SetFl { flags, .. } => set_fl(sock, *flags),
            SocketCall::Socket
            | SocketCall::Poll { .. }
            | SocketCall::TcpInfo { .. }
            | SocketCall::Epoll(_)
            | SocketCall::Pointer(_)
            | SocketCall::File(_)
            | SocketCall::Close { .. }
            | SocketCall::Accept { .. } => done(CallReturn::err("EINVAL")),
        }
    }

    fn socket(&mut self) -> Result<CallOutcome, TargetError> {
        // SAFETY: plain syscall; the result is checked before use.
        let raw = unsafe {
            libc::socket(
                if self.v6.load(Ordering::Relaxed) {
                    libc::AF_INET6
                } else {
                    libc::AF_INET
                },
                libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                libc::IPPROTO_TCP,
            )
        };
        if raw < 0 {
            return done(last_err());
        }
        // SAFETY: `raw` is a fresh descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let n = super::own::lowest_free_fd(&self.fds);
        self.fds.insert(n, Sock::new(fd));
        done(CallReturn::ok(n))
    }

    fn accept(&mut self, fd: Fd) -> Result<CallOutcome, TargetError> {
        let Some(sock) = self.fds.get(&fd) else {
            return done(CallReturn::err("EBADF"));
        };
        let nonblock = sock.nonblock;
        // SAFETY: null address pointers are allowed (the peer is not wanted).
        let raw = unsafe {
            libc::accept4(
                sock.raw(),
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            )
        };
        if raw < 0 {
            return match errno() {
                libc::EAGAIN if !nonblock => Ok(CallOutcome::WouldBlock),
                e => done(errno_return(e)),
            };
        }
        // SAFETY: `raw` is a fresh descriptor that nothing else owns.
        let conn = unsafe { OwnedFd::from_raw_fd(raw) };
        let n = super::own::lowest_free_fd(&self.fds);
        let mut s = Sock::new(conn);
        s.bound = true;
        self.fds.insert(n, s);
        done(CallReturn::ok(n))
    }

    fn close(&mut self, fd: Fd) -> CallReturn {
        let Some(sock) = self.fds.remove(&fd) else {
            return CallReturn::err("EBADF");
        };
        let raw = sock.fd.into_raw_fd();
        // SAFETY: `raw` was owned by `sock` and is closed exactly once here.
        ok_or_err(unsafe { libc::close(raw) })
    }

    /// `poll` with a zero timeout: the runner waits for the script's
    /// timeout itself and makes the call again.
    fn poll(&mut self, fds: &[(Fd, i64)]) -> Result<CallOutcome, TargetError> {
        let mut pfds: Vec<libc::pollfd> = fds
            .iter()
            .map(|(fd, events)| libc::pollfd {
                fd: self.fds.get(fd).map(Sock::raw).unwrap_or(-1),
                events: libc::c_short::try_from(*events & 0xffff).unwrap_or(0),
                revents: 0,
            })
            .collect();
        let Ok(n) = libc::nfds_t::try_from(pfds.len()) else {
            return done(CallReturn::err("EINVAL"));
        };
        // SAFETY: `pfds` is a live array of `n` pollfd entries.
        let rc = unsafe { libc::poll(pfds.as_mut_ptr(), n, 0) };
        if rc < 0 {
            return done(last_err());
        }
        // An fd the script never opened: POLLNVAL, as for a closed fd.
        let revents: Vec<i64> = pfds
            .iter()
            .map(|p| {
                if p.fd < 0 {
                    super::target::pollbits::POLLNVAL
                } else {
                    i64::from(p.revents) & 0xffff
                }
            })
            .collect();
        let ready = revents.iter().filter(|r| **r != 0).count();
        let mut r = CallReturn::ok(to_i64(ready));
        r.revents = revents;
        done(r)
    }
}

/// `send`/`sendto` with flags, to `to` for `sendto`; bound to `from`
/// first when given (an unbound socket's `sendto` binds like `connect`).
fn send_flags(
    sock: &mut Sock,
    iov: &[usize],
    flags: i64,
    to: Option<SocketAddr>,
    from: Option<SocketAddr>,
) -> Result<CallOutcome, TargetError> {
    if let Some(from) = from {
        let r = bind_local(sock.raw(), from);
        if r.ret.is_err() {
            return done(r.with_note(format!("implicit bind to {from} failed")));
        }
        sock.bound = true;
    }
    let flags = libc::c_int::try_from(flags).unwrap_or(-1);
    send_all(sock, iov, flags, to)
}

/// `write`, `send`, `sendto` and `sendmsg` of the octets of `iov` (one
/// length per iovec entry) with `flags`, to `to` when given. On the
/// script's blocking socket this is one real blocking call on a helper
/// thread ([`super::blocking`]); on a non-blocking one, what the kernel
/// takes now (a fast-open `sendto` puts the first piece on the SYN, the
/// rest goes on the connection it opened).
fn send_all(
    sock: &mut Sock,
    iov: &[usize],
    flags: libc::c_int,
    to: Option<SocketAddr>,
) -> Result<CallOutcome, TargetError> {
    let len: usize = iov.iter().sum();
    let raw = sock.raw();
    if !sock.nonblock && flags & libc::MSG_DONTWAIT == 0 {
        return Ok(super::blocking::send(
            &mut sock.pending,
            raw,
            iov,
            flags,
            to,
        ));
    }
    let mut sent = 0;
    let mut flags = flags;
    let mut addr = to.map(RawAddr::new);
    loop {
        let n = msg_io::send_piece(raw, iov, sent, flags | libc::MSG_NOSIGNAL, addr.as_ref());
        if n >= 0 {
            sent += usize::try_from(n).unwrap_or(0);
            if sent >= len {
                return done(CallReturn::ok(to_i64(sent)));
            }
            // The rest goes on the connection the first piece opened.
            flags &= !0x2000_0000;
            addr = None;
            continue;
        }
        let e = errno();
        if e == libc::EINTR {
            continue;
        }
        // A write that sent something returns the count.
        if sent > 0 {
            return done(CallReturn::ok(to_i64(sent)));
        }
        return done(errno_return(e));
    }
}

/// Octet `i` of what `write` sends: `A..Z` repeated, like the own target.
fn payload_byte(i: usize) -> u8 {
    b'A' + (i % 26) as u8
}

fn to_i64(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// The address the next active open binds to: the script's, with port
/// 8080 + the number of active opens before it.
/// What a call the script's socket would block in returns: the error on a
/// non-blocking socket, [`CallOutcome::WouldBlock`] on a blocking one (the
/// real socket never blocks).
fn would_block(sock: &Sock, e: i32) -> Result<CallOutcome, TargetError> {
    if sock.nonblock {
        done(errno_return(e))
    } else {
        Ok(CallOutcome::WouldBlock)
    }
}

/// `listen`, binding to the script's address first if the script did not.
fn listen(sock: &mut Sock, local: SocketAddr, backlog: i64) -> Result<CallOutcome, TargetError> {
    let raw = sock.raw();
    if !sock.bound {
        let r = bind_local(raw, local);
        if r.ret.is_err() {
            return done(r.with_note(format!("implicit bind to {local} failed")));
        }
        sock.bound = true;
    }
    let backlog =
        libc::c_int::try_from(backlog).unwrap_or(if backlog < 0 { 0 } else { libc::c_int::MAX });
    // SAFETY: plain syscall on a descriptor this worker owns.
    done(ok_or_err(unsafe { libc::listen(raw, backlog) }))
}

/// `connect` to the peer, bound to `from` first when given (an unbound
/// socket).
fn connect(
    sock: &mut Sock,
    from: Option<SocketAddr>,
    peer: SocketAddr,
) -> Result<CallOutcome, TargetError> {
    let raw = sock.raw();
    if let Some(local) = from {
        let r = bind_local(raw, local);
        if r.ret.is_err() {
            return done(r.with_note(format!("implicit bind to {local} failed")));
        }
        sock.bound = true;
    }
    let sa = RawAddr::new(peer);
    let (ptr, len) = sa.as_ptr_len();
    // SAFETY: `ptr` points at a live socket address of `len` octets.
    let rc = unsafe { libc::connect(raw, ptr, len) };
    if rc == 0 {
        return done(CallReturn::ok(0));
    }
    match errno() {
        // In progress: a blocking connect waits; making the call
        // again reports 0 once established, or the error.
        e @ (libc::EINPROGRESS | libc::EALREADY) => would_block(sock, e),
        e => done(errno_return(e)),
    }
}

/// `read`/`recv` of up to `len` octets (discarded).
fn read(sock: &Sock, len: usize) -> Result<CallOutcome, TargetError> {
    let mut buf = vec![0u8; len];
    // SAFETY: `buf` is a live, writable buffer of the length passed.
    let n = unsafe { libc::recv(sock.raw(), buf.as_mut_ptr().cast(), buf.len(), 0) };
    if n >= 0 {
        return done(CallReturn::ok(i64::try_from(n).unwrap_or(i64::MAX)));
    }
    match errno() {
        libc::EAGAIN => would_block(sock, libc::EAGAIN),
        e => done(errno_return(e)),
    }
}

/// `fcntl(F_GETFL)`: the real flags with the script's `O_NONBLOCK`.
fn get_fl(raw: RawFd, nonblock: bool) -> Result<CallOutcome, TargetError> {
    // SAFETY: F_GETFL on a descriptor this worker owns.
    let flags = unsafe { libc::fcntl(raw, libc::F_GETFL) };
    if flags < 0 {
        return done(last_err());
    }
    let flags = i64::from(flags) & !O_NONBLOCK;
    done(CallReturn::ok(
        flags | if nonblock { O_NONBLOCK } else { 0 },
    ))
}

/// `fcntl(F_SETFL)`: the script's `O_NONBLOCK` is kept apart, the real
/// descriptor stays non-blocking.
fn set_fl(sock: &mut Sock, flags: i64) -> Result<CallOutcome, TargetError> {
    let Ok(real) = libc::c_int::try_from(flags | O_NONBLOCK) else {
        return done(CallReturn::err("EINVAL"));
    };
    // SAFETY: F_SETFL on a descriptor this worker owns; the real
    // descriptor stays non-blocking.
    let rc = unsafe { libc::fcntl(sock.raw(), libc::F_SETFL, real) };
    if rc < 0 {
        return done(last_err());
    }
    sock.nonblock = flags & O_NONBLOCK != 0;
    done(CallReturn::ok(0))
}

fn active_local(local: SocketAddr, active: &mut u16) -> SocketAddr {
    let a = SocketAddr::new(local.ip(), local.port().wrapping_add(*active));
    *active = active.wrapping_add(1);
    a
}

/// Binds to the kernel's script address and port, e.g. 192.0.2.1:8080.
fn bind_local(raw: RawFd, local: SocketAddr) -> CallReturn {
    let sa = RawAddr::new(local);
    let (ptr, len) = sa.as_ptr_len();
    // SAFETY: `ptr` points at a live socket address of `len` octets.
    ok_or_err(unsafe { libc::bind(raw, ptr, len) })
}

fn set_opt(raw: RawFd, opt: SockOpt, value: OptValue) -> CallReturn {
    let (level, name) = opt_names(opt);
    match value {
        OptValue::Int(v) => {
            let Ok(v) = libc::c_int::try_from(v) else {
                return CallReturn::err("EINVAL")
                    .with_note(format!("{} = {v} does not fit an int", opt.name()));
            };
            ok_or_err(setsockopt_from(raw, level, name, &v))
        }
        OptValue::Linger { onoff, secs } => {
            let Ok(secs) = libc::c_int::try_from(secs) else {
                return CallReturn::err("EINVAL")
                    .with_note(format!("l_linger = {secs} does not fit an int"));
            };
            let l = libc::linger {
                l_onoff: libc::c_int::from(onoff),
                l_linger: secs,
            };
            ok_or_err(setsockopt_from(raw, level, name, &l))
        }
        OptValue::Errno(_) => CallReturn::err("EINVAL"),
    }
}

/// `setsockopt` of option `level`/`name` to `v`, a plain C value of the
/// option's type (`c_int`, `linger`); returns the syscall's result.
fn setsockopt_from<T: Copy>(
    raw: RawFd,
    level: libc::c_int,
    name: libc::c_int,
    v: &T,
) -> libc::c_int {
    let len = std::mem::size_of::<T>() as libc::socklen_t;
    // SAFETY: `v` is a live value of the length passed.
    unsafe { libc::setsockopt(raw, level, name, (v as *const T).cast(), len) }
}

/// `getsockopt` of option `level`/`name` into `v`, a plain C value of the
/// option's type (`c_int`, `linger`); returns the syscall's result.
fn getsockopt_into<T: Copy>(
    raw: RawFd,
    level: libc::c_int,
    name: libc::c_int,
    v: &mut T,
) -> libc::c_int {
    let mut len = std::mem::size_of::<T>() as libc::socklen_t;
    // SAFETY: `v` and `len` are live and writable; `len` is T's size.
    unsafe { libc::getsockopt(raw, level, name, (v as *mut T).cast(), &mut len) }
}

fn get_opt(raw: RawFd, opt: SockOpt) -> CallReturn {
    let (level, name) = opt_names(opt);
    if opt == SockOpt::Linger {
        let mut l = libc::linger {
            l_onoff: 0,
            l_linger: 0,
        };
        if getsockopt_into(raw, level, name, &mut l) < 0 {
            return last_err();
        }
        let mut r = CallReturn::ok(0);
        r.value = Some(OptValue::Linger {
            onoff: l.l_onoff != 0,
            secs: i64::from(l.l_linger),
        });
        return r;
    }
    let mut v: libc::c_int = 0;
    if getsockopt_into(raw, level, name, &mut v) < 0 {
        return last_err();
    }
    let mut r = CallReturn::ok(0);
    r.value = Some(if opt == SockOpt::Error {
        OptValue::Errno(if v == 0 {
            None
        } else {
            Some(errno_name(v).unwrap_or("EUNKNOWN"))
        })
    } else {
        OptValue::Int(i64::from(v))
    });
    r
}

/// The name of a Linux errno value.
pub fn errno_name(e: i32) -> Option<&'static str> {
    Some(match e {
        libc::EPERM => "EPERM",
        libc::ENOENT => "ENOENT",
        libc::EINTR => "EINTR",
        libc::EIO => "EIO",
        libc::EBADF => "EBADF",
        libc::EAGAIN => "EAGAIN",
        libc::ENOMEM => "ENOMEM",
        libc::EACCES => "EACCES",
        libc::EFAULT => "EFAULT",
        libc::EBUSY => "EBUSY",
        libc::EINVAL => "EINVAL",
        libc::ENFILE => "ENFILE",
        libc::EMFILE => "EMFILE",
        libc::EPIPE => "EPIPE",
        libc::ENOTSOCK => "ENOTSOCK",
        libc::EDESTADDRREQ => "EDESTADDRREQ",
        libc::EMSGSIZE => "EMSGSIZE",
        libc::EPROTOTYPE => "EPROTOTYPE",
        libc::ENOPROTOOPT => "ENOPROTOOPT",
        libc::EPROTONOSUPPORT => "EPROTONOSUPPORT",
        libc::EOPNOTSUPP => "EOPNOTSUPP",
        libc::EAFNOSUPPORT => "EAFNOSUPPORT",
        libc::EADDRINUSE => "EADDRINUSE",
        libc::EADDRNOTAVAIL => "EADDRNOTAVAIL",
        libc::ENETDOWN => "ENETDOWN",
        libc::ENETUNREACH => "ENETUNREACH",
        libc::ENETRESET => "ENETRESET",
        libc::ECONNABORTED => "ECONNABORTED",
        libc::ECONNRESET => "ECONNRESET",
        libc::ENOBUFS => "ENOBUFS",
        libc::EISCONN => "EISCONN",
        libc::ENOTCONN => "ENOTCONN",
        libc::ESHUTDOWN => "ESHUTDOWN",
        libc::ETIMEDOUT => "ETIMEDOUT",
        libc::ECONNREFUSED => "ECONNREFUSED",
        libc::EHOSTDOWN => "EHOSTDOWN",
        libc::EHOSTUNREACH => "EHOSTUNREACH",
        libc::EALREADY => "EALREADY",
        libc::EINPROGRESS => "EINPROGRESS",
        libc::EPROTO => "EPROTO",
        _ => return None,
    })
}

/// The worker's table as the calls in their own modules see it.
impl super::live_fds::LiveFds for Sockets {
    fn raw(&self, fd: Fd) -> Option<RawFd> {
        self.fds.get(&fd).map(Sock::raw)
    }

    fn blocking(&self, fd: Fd) -> bool {
        self.fds.get(&fd).is_some_and(|s| !s.nonblock)
    }

    fn adopt(&mut self, fd: OwnedFd) -> Fd {
        let n = super::own::lowest_free_fd(&self.fds);
        self.fds.insert(n, Sock::new(fd));
        n
    }

    fn peer(&self) -> SocketAddr {
        script_addresses(self.v6.load(Ordering::Relaxed)).1
    }

    fn temp_dir(&self) -> std::path::PathBuf {
        self.tmp.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errno_names_cover_the_socket_errors() {
        assert_eq!(errno_name(libc::ECONNREFUSED), Some("ECONNREFUSED"));
        assert_eq!(errno_name(libc::EAGAIN), Some("EAGAIN"));
        assert_eq!(errno_name(libc::EINPROGRESS), Some("EINPROGRESS"));
        assert_eq!(errno_name(9999), None);
        assert_eq!(errno_return(9999).ret, Err("EUNKNOWN"));
    }

    #[test]
    fn kernel_release_is_not_empty() {
        assert!(!kernel_release().is_empty());
    }
}
