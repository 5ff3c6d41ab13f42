//! The interface every system under test implements.
//!
//! A [`Target`] is driven by the runner like packetdrill drives a kernel:
//! packets are injected as if they came from the scripted peer, packets the
//! target sends are collected, socket calls are made, and time moves on.
//! The runner never knows whether time is virtual (the in-process `own`
//! target jumps straight to the next event) or real (the live `linux` and
//! `own-tun` targets sleep and read a TUN device): it asks the target to
//! [`Target::advance`] towards a deadline and looks at what happened.
//!
//! Socket calls arrive already resolved from the script's syntax into a
//! typed [`SocketCall`], so a target only maps them onto its own API (the
//! own stack's socket-shaped calls, or real `libc` calls on a live target).

use crate::script::IpVersion;
use std::fmt;
use std::net::SocketAddr;

/// Microseconds since the start of the script, on the target's clock.
pub type Micros = u64;

/// A file descriptor number as the script writes it (`3`, `4`, ...).
pub type Fd = i64;

/// `O_RDWR` as Linux's `fcntl(F_GETFL)` reports it.
pub const O_RDWR: i64 = 0x2;
/// `O_NONBLOCK` on Linux.
pub const O_NONBLOCK: i64 = 0x800;

/// `poll(2)` event bits, Linux values.
pub mod pollbits {
    pub const POLLIN: i64 = 0x1;
    pub const POLLPRI: i64 = 0x2;
    pub const POLLOUT: i64 = 0x4;
    pub const POLLERR: i64 = 0x8;
    pub const POLLHUP: i64 = 0x10;
    pub const POLLNVAL: i64 = 0x20;
    pub const POLLRDNORM: i64 = 0x40;
    pub const POLLRDBAND: i64 = 0x80;
    pub const POLLWRNORM: i64 = 0x100;
    pub const POLLWRBAND: i64 = 0x200;
    pub const POLLRDHUP: i64 = 0x2000;

    /// The value of a `POLL*` name.
    pub fn by_name(name: &str) -> Option<i64> {
        Some(match name {
            "POLLIN" => POLLIN,
            "POLLPRI" => POLLPRI,
            "POLLOUT" => POLLOUT,
            "POLLERR" => POLLERR,
            "POLLHUP" => POLLHUP,
            "POLLNVAL" => POLLNVAL,
            "POLLRDNORM" => POLLRDNORM,
            "POLLRDBAND" => POLLRDBAND,
            "POLLWRNORM" => POLLWRNORM,
            "POLLWRBAND" => POLLWRBAND,
            "POLLRDHUP" => POLLRDHUP,
            _ => return None,
        })
    }
}

/// Which direction `shutdown(2)` closes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum How {
    /// `SHUT_RD`
    Read,
    /// `SHUT_WR`: our FIN (RFC 9293 3.10.4 CLOSE on the sending side).
    Write,
    /// `SHUT_RDWR`
    Both,
}

/// The socket options the runner understands (`setsockopt`/`getsockopt`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SockOpt {
    /// `SOL_SOCKET SO_REUSEADDR`
    ReuseAddr,
    /// `SOL_SOCKET SO_RCVBUF`
    RcvBuf,
    /// `SOL_SOCKET SO_SNDBUF`
    SndBuf,
    /// `SOL_SOCKET SO_LINGER` (`{l_onoff=1, l_linger=0}` makes close an ABORT).
    Linger,
    /// `IPPROTO_TCP TCP_NODELAY`: Nagle off (RFC 9293 3.7.4).
    NoDelay,
    /// `IPPROTO_TCP TCP_MAXSEG`: the MSS to announce (RFC 9293 3.7.1).
    MaxSeg,
    /// `SOL_SOCKET SO_ERROR`: the pending error, cleared on read.
    Error,
    /// Any other integer option a kernel has (`TCP_FASTOPEN`,
    /// `SO_ZEROCOPY`, `IP_TOS`, ...): level and name as Linux numbers them.
    /// Only live kernels take these; the own stack makes the script not
    /// applicable.
    Kernel {
        /// `SOL_SOCKET`, `SOL_TCP` or `SOL_IP`, as a number.
        level: i32,
        /// The option number.
        name: i32,
        /// Its C name.
        c_name: &'static str,
    },
}

impl SockOpt {
    /// The option's C name.
    pub fn name(self) -> &'static str {
        match self {
            SockOpt::ReuseAddr => "SO_REUSEADDR",
            SockOpt::RcvBuf => "SO_RCVBUF",
            SockOpt::SndBuf => "SO_SNDBUF",
            SockOpt::Linger => "SO_LINGER",
            SockOpt::NoDelay => "TCP_NODELAY",
            SockOpt::MaxSeg => "TCP_MAXSEG",
            SockOpt::Error => "SO_ERROR",
            SockOpt::Kernel { c_name, .. } => c_name,
        }
    }
}

/// A socket option value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OptValue {
    /// An integer option.
    Int(i64),
    /// `struct linger`.
    Linger {
        /// `l_onoff`
        onoff: bool,
        /// `l_linger` in seconds.
        secs: i64,
    },
    /// `SO_ERROR`: the errno name, or `None` for 0.
    Errno(Option<&'static str>),
}

/// A socket call, resolved from the script into what the target must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SocketCall {
    /// `socket(..., SOCK_STREAM, IPPROTO_TCP)`: a new, unconnected socket.
    Socket,
    /// `bind(fd, ..., ...)`: to the target's local address and port.
    Bind { fd: Fd },
    /// `listen(fd, backlog)`: passive OPEN (RFC 9293 3.10.1).
    Listen { fd: Fd, backlog: i64 },
    /// `accept(fd, ..., ...)`: the next established connection.
    Accept { fd: Fd },
    /// `connect(fd, ..., ...)`: active OPEN towards the scripted peer.
    Connect { fd: Fd },
    /// `write`/`send`: SEND of `len` octets (RFC 9293 3.10.2).
    Write { fd: Fd, len: usize },
    /// `read`/`recv`: RECEIVE of up to `len` octets (RFC 9293 3.10.3).
    Read { fd: Fd, len: usize },
    /// `close(fd)`: CLOSE (or ABORT with a zero linger), RFC 9293 3.10.4–5.
    Close { fd: Fd },
    /// `shutdown(fd, how)`.
    Shutdown { fd: Fd, how: How },
    /// `setsockopt(fd, level, opt, value, len)`.
    SetSockOpt {
        fd: Fd,
        opt: SockOpt,
        value: OptValue,
    },
    /// `getsockopt(fd, level, opt, value, len)`.
    GetSockOpt { fd: Fd, opt: SockOpt },
    /// `fcntl(fd, F_GETFL)`.
    GetFl { fd: Fd },
    /// `fcntl(fd, F_SETFL, flags)`.
    SetFl { fd: Fd, flags: i64 },
    /// `poll(fds, n, timeout)`: one `(fd, events)` per entry.
    Poll {
        fds: Vec<(Fd, i64)>,
        timeout_ms: i64,
    },
    /// `send`/`sendto` with flags (`MSG_*`): SEND of `len` octets; `to_peer`
    /// names the scripted peer's address (`sendto`, e.g. with
    /// `MSG_FASTOPEN`). Plain `write`s are [`SocketCall::Write`].
    Send {
        fd: Fd,
        len: usize,
        /// Linux `MSG_*` bits.
        flags: i64,
        to_peer: bool,
    },
    /// `getsockopt(fd, SOL_TCP, TCP_INFO)` for a `%{ }%` block: the raw
    /// `struct tcp_info` comes back in [`CallReturn::data`].
    TcpInfo { fd: Fd },
    /// `sendmsg`/`recvmsg` with packetdrill's `struct msghdr`
    /// ([`super::msg`]).
    Msg(super::msg::MsgCall),
    /// `epoll_create`/`epoll_ctl`/`epoll_wait` ([`super::epoll`]).
    Epoll(super::epoll::EpollCall),
    /// A read or write with a `NULL` buffer or an `AF_UNSPEC` address
    /// ([`super::pointers`]).
    Pointer(super::pointers::PointerCall),
    /// `ioctl`, `open`/`sendfile`, `pipe`/`splice` ([`super::files`]).
    File(super::files::FileCall),
}

impl SocketCall {
    /// Why a target without a kernel's socket API cannot make this call
    /// (`TCP_INFO`, `send` with flags, kernel-only socket options), or
    /// `None` when any stack can: in-process and foreign stacks answer such
    /// a call not applicable.
    pub fn kernel_only(&self) -> Option<String> {
        match self {
            SocketCall::TcpInfo { .. } => Some("no TCP_INFO for `%{ }%` blocks".into()),
            SocketCall::Send { .. } => Some(format!("no {} with flags", self.name())),
            SocketCall::Epoll(_) => Some("no epoll".into()),
            SocketCall::Pointer(_) => Some("no raw pointer to pass (NULL, AF_UNSPEC)".into()),
            SocketCall::File(c) => Some(format!("no {}", c.name())),
            SocketCall::SetSockOpt {
                opt: opt @ SockOpt::Kernel { .. },
                ..
            }
            | SocketCall::GetSockOpt {
                opt: opt @ SockOpt::Kernel { .. },
                ..
            } => Some(format!("no socket option {}", opt.name())),
            SocketCall::Msg(m) => m.kernel_only(),
            _ => None,
        }
    }

    /// The call's name as scripts write it.
    pub fn name(&self) -> &'static str {
        match self {
            SocketCall::Socket => "socket",
            SocketCall::Bind { .. } => "bind",
            SocketCall::Listen { .. } => "listen",
            SocketCall::Accept { .. } => "accept",
            SocketCall::Connect { .. } => "connect",
            SocketCall::Write { .. } => "write",
            SocketCall::Read { .. } => "read",
            SocketCall::Close { .. } => "close",
            SocketCall::Shutdown { .. } => "shutdown",
            SocketCall::SetSockOpt { .. } => "setsockopt",
            SocketCall::GetSockOpt { .. } => "getsockopt",
            SocketCall::GetFl { .. } | SocketCall::SetFl { .. } => "fcntl",
            SocketCall::Poll { .. } => "poll",
            SocketCall::TcpInfo { .. } => "getsockopt(TCP_INFO)",
            SocketCall::Send { to_peer: true, .. } => "sendto",
            SocketCall::Send { .. } => "send",
            SocketCall::Msg(m) => m.name(),
            SocketCall::Epoll(c) => c.name(),
            SocketCall::Pointer(c) => c.op.name(),
            SocketCall::File(c) => c.name(),
        }
    }

    /// The call with every socket it names replaced by `f(fd)` (the script's
    /// numbers mapped to the target's, as packetdrill maps them).
    pub fn map_fds(&self, f: impl Fn(Fd) -> Fd) -> SocketCall {
        let mut c = self.clone();
        if let SocketCall::Poll { fds, .. } = &mut c {
            fds.iter_mut().for_each(|(fd, _)| *fd = f(*fd));
        } else if let SocketCall::Epoll(e) = &mut c {
            e.map_fds(&f);
        } else if let SocketCall::File(e) = &mut c {
            e.map_fds(&f);
        } else if let Some(fd) = c.fd_mut() {
            *fd = f(*fd);
        }
        c
    }

    /// Whether a successful return is a new descriptor, whose script
    /// number then names the target's (packetdrill's mapping).
    pub fn opens_fd(&self) -> bool {
        matches!(
            self,
            SocketCall::Socket
                | SocketCall::Accept { .. }
                | SocketCall::Epoll(super::epoll::EpollCall::Create { .. })
                | SocketCall::File(super::files::FileCall::Open { .. })
        )
    }

    /// How long the call may wait for readiness (`poll`, `epoll_wait`):
    /// the runner makes it again until then (negative: no limit).
    pub fn wait_ms(&self) -> Option<i64> {
        match self {
            SocketCall::Poll { timeout_ms, .. } => Some(*timeout_ms),
            SocketCall::Epoll(e) => e.timeout_ms(),
            _ => None,
        }
    }

    /// The one socket the call is on (`socket` and `poll` have none).
    pub fn fd(&self) -> Option<Fd> {
        self.clone().fd_mut().copied()
    }

    /// The one socket the call is on, to rewrite (`socket` and `poll` have
    /// none).
    fn fd_mut(&mut self) -> Option<&mut Fd> {
        match self {
            SocketCall::Socket
            | SocketCall::Poll { .. }
            | SocketCall::Epoll(_)
            | SocketCall::File(_) => None,
            SocketCall::Pointer(c) => Some(&mut c.fd),
            SocketCall::Bind { fd }
            | SocketCall::Listen { fd, .. }
            | SocketCall::Accept { fd }
            | SocketCall::Connect { fd }
            | SocketCall::Write { fd, .. }
            | SocketCall::Read { fd, .. }
            | SocketCall::Close { fd }
            | SocketCall::Shutdown { fd, .. }
            | SocketCall::SetSockOpt { fd, .. }
            | SocketCall::GetSockOpt { fd, .. }
            | SocketCall::GetFl { fd }
            | SocketCall::SetFl { fd, .. }
            | SocketCall::TcpInfo { fd }
            | SocketCall::Send { fd, .. } => Some(fd),
            SocketCall::Msg(m) => Some(m.fd_mut()),
        }
    }

    /// The call as a target without a kernel's socket API makes it: a
    /// plain `sendmsg`/`recvmsg` as a write/read
    /// ([`super::msg::MsgCall::portable`]), any other call as it is.
    pub fn portable(&self) -> std::borrow::Cow<'_, SocketCall> {
        match self {
            SocketCall::Msg(m) => m
                .portable()
                .map_or(std::borrow::Cow::Borrowed(self), std::borrow::Cow::Owned),
            _ => std::borrow::Cow::Borrowed(self),
        }
    }
}

/// What a completed call returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallReturn {
    /// The return value, or the errno name of a `-1` return.
    pub ret: Result<i64, &'static str>,
    /// The value `getsockopt` wrote.
    pub value: Option<OptValue>,
    /// The `revents` `poll` wrote, one per entry.
    pub revents: Vec<i64>,
    /// Something the target could not honour exactly (reported as a warning).
    pub note: Option<String>,
    /// Raw bytes a call returned ([`SocketCall::TcpInfo`]).
    pub data: Vec<u8>,
    /// What `recvmsg` wrote back besides the count.
    pub msg: Option<Box<super::msg::MsgReturn>>,
}

impl CallReturn {
    /// A plain return value.
    pub fn ok(v: i64) -> Self {
        CallReturn {
            ret: Ok(v),
            value: None,
            revents: Vec::new(),
            note: None,
            data: Vec::new(),
            msg: None,
        }
    }

    /// `-1` with `errno`.
    pub fn err(errno: &'static str) -> Self {
        CallReturn {
            ret: Err(errno),
            ..CallReturn::ok(-1)
        }
    }

    /// Adds a note.
    pub fn with_note(mut self, note: impl Into<String>) -> Self {
        self.note = Some(note.into());
        self
    }
}

impl fmt::Display for CallReturn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.ret {
            Ok(v) => write!(f, "{v}"),
            Err(e) => write!(f, "-1 {e}"),
        }
    }
}

/// The outcome of making a call now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallOutcome {
    /// The call returned.
    Done(CallReturn),
    /// The socket is blocking and the call cannot complete yet; the runner
    /// makes the same call again after time moves or packets arrive.
    WouldBlock,
}

/// What became of a backtick `sysctl name=value` for this target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SysctlOutcome {
    /// Applied (on a live target: in the test namespace).
    Applied,
    /// The target has no counterpart for the knob or the value, so it
    /// cannot run the script as written: the run ends as
    /// [`super::Outcome::NotApplicable`] with the reason.
    NotApplicable(String),
    /// The knob exists but the harness will not set it here (a host-wide
    /// sysctl is never written from a test): the run goes on with the value
    /// in force, with a warning.
    Refused(String),
}

/// What became of a backtick command other than a plain `sysctl`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShellOutcome {
    /// It ran and exited 0.
    Ran,
    /// It ran and failed: the exit status and the end of its error output.
    Failed(String),
    /// The target runs no shell commands (the runner warns and goes on).
    NotRun(String),
}

/// One state transition the target reports (the own stack's observer log).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetTransition {
    /// When it happened.
    pub at: Micros,
    /// Connection number (stable within a run).
    pub conn: u64,
    /// State before.
    pub from: tcp_spec::State,
    /// State after.
    pub to: tcp_spec::State,
    /// The id of the table row taken.
    pub row: &'static str,
}

/// A failure of the target itself (not of the stack's behaviour).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    /// The target cannot be set up (bad configuration, missing device).
    #[error("target setup: {0}")]
    Setup(String),
    /// I/O with a live target failed.
    #[error("target I/O: {0}")]
    Io(String),
    /// The target has no counterpart for what the script asks (a socket
    /// call or option an in-process stack lacks, an IP version, a knob):
    /// the run ends as [`super::Outcome::NotApplicable`] with the reason
    /// and the line that asked. The one way a target says "not applicable".
    #[error("not applicable: {0}")]
    NotApplicable(String),
}

/// A system under test, driven by the runner.
pub trait Target {
    /// Short name (`own`, `linux`, `own-tun`).
    fn name(&self) -> &'static str;

    /// Whether the clock is virtual (jumps, deterministic) or real.
    fn is_virtual(&self) -> bool;

    /// The current time, µs since the start of the script.
    fn now(&self) -> Micros;

    /// The stack's address and the scripted peer's address: inbound packets
    /// go from the second to the first.
    fn addresses(&self) -> (SocketAddr, SocketAddr);

    /// Chooses the script's IP version (`--ip_version`) before anything
    /// else happens: IPv4 (the default) or IPv6 (stack 2001:db8::1, peer
    /// 2001:db8::2). A version the target cannot run is an error with the
    /// reason.
    fn set_ip_version(&mut self, v: IpVersion) -> Result<(), TargetError>;

    /// Moves time forward towards `until` and returns the new time. The
    /// target may stop earlier when something happened (a timer fired, a
    /// packet came out); the runner then looks at the outbound queue and
    /// calls again. Never moves past `until`; returns at once when
    /// `until <= now()`.
    fn advance(&mut self, until: Micros) -> Result<Micros, TargetError>;

    /// Delivers one whole IP packet from the scripted peer, now.
    fn inject(&mut self, packet: &[u8]) -> Result<(), TargetError>;

    /// Delivers one ICMP message (an IP packet, RFC 792 / RFC 4443) from the
    /// scripted peer, now. Targets that take TCP segments only say
    /// [`TargetError::NotApplicable`] with the reason.
    fn inject_icmp(&mut self, packet: &[u8]) -> Result<(), TargetError> {
        let _ = packet;
        Err(TargetError::NotApplicable(format!(
            "{} is driven with TCP segments only; it does not act on ICMP errors \
             (RFC 1122 4.2.3.9, RFC 5927)",
            self.name()
        )))
    }

    /// packetdrill's device (`run --packetdrill`), switched on before the
    /// script starts: segmentation and checksum offload on the device the
    /// scripted peer's packets cross, so the stack's TCP super-segments
    /// reach the runner whole, as on packetdrill's TUN device; and, with
    /// `gso_mss` (packetdrill's `--mss`), injected TCP segments marked as
    /// received in segments of that size. A target without such a device
    /// has nothing to switch; a GSO size is then not applicable.
    fn packetdrill_device(&mut self, gso_mss: Option<u16>) -> Result<(), TargetError> {
        match gso_mss {
            None => Ok(()),
            Some(m) => Err(TargetError::NotApplicable(format!(
                "{} has no device to mark injected segments with a GSO size (--mss={m})",
                self.name()
            ))),
        }
    }

    /// Takes the packets the target sent since the last call, oldest first,
    /// each with the time it was sent.
    fn take_outbound(&mut self) -> Vec<(Micros, Vec<u8>)>;

    /// Makes a socket call now.
    fn call(&mut self, call: &SocketCall) -> Result<CallOutcome, TargetError>;

    /// Applies a `sysctl name=value` from a backtick line.
    fn sysctl(&mut self, name: &str, value: &str) -> SysctlOutcome;

    /// The TCP Fast Open key the target's kernel derives server cookies
    /// from (RFC 7413 4.1.2), as stored (see [`super::tfo_cookie`]); `None`
    /// for a target without one.
    fn fastopen_key(&mut self) -> Option<[u8; 16]> {
        None
    }

    /// Runs a backtick command as packetdrill does (`/bin/sh -c`, the
    /// script's directory `cwd` as working directory, `PACKETDRILL_PID`
    /// set), inside the target's namespace only. Targets without one run
    /// nothing.
    fn shell(&mut self, cmd: &str, cwd: &std::path::Path) -> ShellOutcome {
        let _ = (cmd, cwd);
        ShellOutcome::NotRun(format!("{} runs no shell commands", self.name()))
    }

    /// Takes the state transitions since the last call (empty for targets
    /// that cannot observe them).
    fn take_transitions(&mut self) -> Vec<TargetTransition> {
        Vec::new()
    }

    /// Extra lateness, beyond the script's tolerance, allowed for an event
    /// scripted `gap` after the previous one. A real clock's timers fire
    /// late (Linux's timer wheel rounds a timeout up by up to 1/8 of it);
    /// a virtual clock is exact: none.
    fn timing_slack(&self, gap: std::time::Duration) -> std::time::Duration {
        let _ = gap;
        std::time::Duration::ZERO
    }
}
