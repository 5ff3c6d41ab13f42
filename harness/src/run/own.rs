//! Target `own`: the own stack (`tcp-stack`) in-process on a virtual clock.
//!
//! Time never sleeps: [`Target::advance`] jumps straight to the stack's next
//! timer (or to the deadline the runner asks for), so a script with
//! 1 s + 2 s + 4 s retransmission timeouts runs in microseconds of wall time
//! and every run is identical.
//!
//! Addresses follow packetdrill: the stack is [`LOCAL_ADDR`]:[`LOCAL_PORT`],
//! the scripted peer [`REMOTE_ADDR`]:[`REMOTE_PORT`] (with
//! `--ip_version=ipv6`, [`LOCAL_ADDR6`] and [`REMOTE_ADDR6`]). Script file
//! descriptors map onto stack handles: `socket()` makes a pending socket
//! (fds from 3 up, the lowest free one, as a kernel does), `listen` makes it
//! a listener, `accept` returns a new fd for an established connection and
//! `connect` makes an active OPEN.
//!
//! The stack's configuration is per endpoint, not per socket. The endpoint
//! is therefore created lazily, on the first `listen`, `connect` or
//! injected packet: `setsockopt` calls (SO_RCVBUF, SO_SNDBUF, TCP_NODELAY,
//! TCP_MAXSEG) and `sysctl` lines before that point configure it; later
//! socket options are reported as not applied, later sysctls (and sysctls
//! without a counterpart) make the script not applicable.

use super::target::{
    pollbits::*, CallOutcome, CallReturn, Fd, How, Micros, OptValue, SockOpt, SocketCall,
    SysctlOutcome, Target, TargetError, TargetTransition, O_NONBLOCK, O_RDWR,
};
use crate::script::IpVersion;
use std::collections::{BTreeMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use tcp_spec::{Profile, State};
use tcp_stack::{Config, Endpoint, Error as StackError, Handle, Instant, Shutdown};

// A script's addresses are those of the kernel under test and the peer on
// `tun0` (crate::live), so a script runs unchanged on every target.
/// The stack's address (packetdrill's local address).
pub const LOCAL_ADDR: Ipv4Addr = crate::live::KERNEL_V4;
/// The scripted peer's address.
pub const REMOTE_ADDR: Ipv4Addr = crate::live::PEER_V4;
/// The stack's address in IPv6 scripts (RFC 3849 documentation prefix).
pub const LOCAL_ADDR6: Ipv6Addr = crate::live::KERNEL_V6;
/// The scripted peer's address in IPv6 scripts.
pub const REMOTE_ADDR6: Ipv6Addr = crate::live::PEER_V6;
/// The stack's port: `bind` and `connect` use it (packetdrill's 8080).
pub const LOCAL_PORT: u16 = 8080;
/// The scripted peer's port.
pub const REMOTE_PORT: u16 = 40000;
/// First file descriptor handed out (0–2 are stdio, as in a process).
pub const FIRST_FD: Fd = 3;
/// The stack's and the scripted peer's socket addresses of a script, in
/// IPv6 or IPv4: the same on every target (live targets translate where
/// their wiring differs).
pub fn script_addresses(v6: bool) -> (SocketAddr, SocketAddr) {
    let (local, remote) = if v6 {
        (IpAddr::V6(LOCAL_ADDR6), IpAddr::V6(REMOTE_ADDR6))
    } else {
        (IpAddr::V4(LOCAL_ADDR), IpAddr::V4(REMOTE_ADDR))
    };
    (
        SocketAddr::new(local, LOCAL_PORT),
        SocketAddr::new(remote, REMOTE_PORT),
    )
}

/// Which IP versions a target can run a script in: `ipv4` and `ipv6`
/// (`ipv4-mapped-ipv6` is refused with the reason). Returns whether it is
/// IPv6.
pub fn ip_version_is_v6(v: IpVersion) -> Result<bool, TargetError> {
    match v {
        IpVersion::V4 => Ok(false),
        IpVersion::V6 => Ok(true),
        IpVersion::V4MappedV6 => Err(TargetError::Unsupported(
            "--ip_version=ipv4-mapped-ipv6 is not supported (ipv4 and ipv6 are)".into(),
        )),
    }
}

/// The ISN secret (RFC 6528): fixed, so runs are reproducible.
const SECRET: [u8; 32] = *b"tcpconform own target isn secret";

#[derive(Debug)]
enum Kind {
    /// `socket()` done, not yet listening or connecting.
    Fresh { bound: bool },
    /// A listener with connections taken from the stack by `poll` and not
    /// yet handed out by `accept`.
    Listener { h: Handle, ready: VecDeque<Handle> },
    /// A connection; `connecting` while an active OPEN has not completed.
    Conn { h: Handle, connecting: bool },
}

#[derive(Debug)]
struct Socket {
    kind: Kind,
    nonblock: bool,
    opts: BTreeMap<SockOpt, OptValue>,
}

/// The own stack on a virtual clock.
#[derive(Debug)]
pub struct OwnTarget {
    config: Config,
    ep: Option<Endpoint>,
    now: Micros,
    fds: BTreeMap<Fd, Socket>,
    out: Vec<(Micros, Vec<u8>)>,
    transitions: Vec<TargetTransition>,
    /// The script runs over IPv6 (`--ip_version=ipv6`).
    v6: bool,
}

/// What the own stack has no counterpart for (the script is then not
/// applicable): `TCP_INFO`, send flags, kernel-only socket options.
fn unsupported(call: &SocketCall) -> Option<String> {
    match call {
        SocketCall::TcpInfo { .. } => {
            Some("the own stack has no TCP_INFO for `%{ }%` blocks".into())
        }
        SocketCall::Send { .. } => Some(format!("the own stack has no {} with flags", call.name())),
        SocketCall::SetSockOpt {
            opt: opt @ SockOpt::Kernel { .. },
            ..
        }
        | SocketCall::GetSockOpt {
            opt: opt @ SockOpt::Kernel { .. },
            ..
        } => Some(format!("the own stack has no socket option {}", opt.name())),
        _ => None,
    }
}

impl OwnTarget {
    /// A target following `profile`; nothing runs until the first call.
    pub fn new(profile: Profile) -> OwnTarget {
        let mut config = Config::new(vec![IpAddr::V4(LOCAL_ADDR), IpAddr::V6(LOCAL_ADDR6)]);
        config.profile = profile;
        config.secret = SECRET;
        OwnTarget {
            config,
            ep: None,
            now: 0,
            fds: BTreeMap::new(),
            out: Vec::new(),
            transitions: Vec::new(),
            v6: false,
        }
    }

    /// Changes the stack's configuration before anything runs (the timer
    /// probes set seeded bugs, the ISN secret and buffer sizes with it).
    pub fn with_config(mut self, f: impl FnOnce(&mut Config)) -> OwnTarget {
        f(&mut self.config);
        self
    }

    fn instant(&self) -> Instant {
        Instant::from_micros(self.now)
    }

    /// The endpoint, created on first use with the configuration so far.
    fn ep(&mut self) -> Result<&mut Endpoint, TargetError> {
        if self.ep.is_none() {
            let ep = Endpoint::new(self.config.clone())
                .map_err(|e| TargetError::Setup(format!("own stack: {e}")))?;
            self.ep = Some(ep);
        }
        self.ep
            .as_mut()
            .ok_or_else(|| TargetError::Setup("own stack: no endpoint".into()))
    }

    /// Moves packets and transitions out of the stack into our queues.
    fn collect(&mut self) {
        let now = self.now;
        let at = self.instant();
        let Some(ep) = self.ep.as_mut() else { return };
        while let Some(p) = ep.poll_transmit(at) {
            self.out.push((now, p));
        }
        for t in ep.drain_transitions() {
            self.transitions.push(TargetTransition {
                at: t.at.as_micros(),
                conn: t.conn.0,
                from: t.from,
                to: t.to,
                row: t.row,
            });
        }
    }

    fn lowest_free_fd(&self) -> Fd {
        let mut fd = FIRST_FD;
        while self.fds.contains_key(&fd) {
            fd += 1;
        }
        fd
    }

    /// Whether the endpoint already exists (configuration is fixed).
    fn started(&self) -> bool {
        self.ep.is_some()
    }

    fn do_call(&mut self, call: &SocketCall) -> Result<CallOutcome, TargetError> {
        if let Some(why) = unsupported(call) {
            return Err(TargetError::Unsupported(why));
        }
        let now = self.instant();
        let done = |r: CallReturn| Ok(CallOutcome::Done(r));
        let errno = |e: StackError| Ok(CallOutcome::Done(CallReturn::err(e.errno_name())));
        let fd = match call {
            SocketCall::Socket => {
                let fd = self.lowest_free_fd();
                self.fds.insert(
                    fd,
                    Socket {
                        kind: Kind::Fresh { bound: false },
                        nonblock: false,
                        opts: BTreeMap::new(),
                    },
                );
                return done(CallReturn::ok(fd));
            }
            SocketCall::Poll { fds, .. } => return self.poll(fds),
            // Every other call names its socket; -1 is never one (EBADF).
            _ => call.fd().unwrap_or(-1),
        };
        let Some(sock) = self.fds.get(&fd) else {
            return done(CallReturn::err("EBADF"));
        };
        let nonblock = sock.nonblock;
        let block = |errno_name: &'static str| {
            if nonblock {
                Ok(CallOutcome::Done(CallReturn::err(errno_name)))
            } else {
                Ok(CallOutcome::WouldBlock)
            }
        };
        match call {
            SocketCall::Bind { .. } => match &mut self.fds.get_mut(&fd).map(|s| &mut s.kind) {
                Some(Kind::Fresh { bound }) if !*bound => {
                    *bound = true;
                    done(CallReturn::ok(0))
                }
                _ => done(CallReturn::err("EINVAL")),
            },
            SocketCall::Listen { backlog, .. } => {
                match sock.kind {
                    Kind::Fresh { .. } => {}
                    Kind::Listener { .. } => return done(CallReturn::ok(0)),
                    Kind::Conn { .. } => return done(CallReturn::err("EINVAL")),
                }
                let backlog = usize::try_from(*backlog).unwrap_or(0);
                match self.ep()?.listen(now, None, LOCAL_PORT, backlog) {
                    Ok(h) => {
                        self.set_kind(
                            fd,
                            Kind::Listener {
                                h,
                                ready: VecDeque::new(),
                            },
                        );
                        done(CallReturn::ok(0))
                    }
                    Err(e) => errno(e),
                }
            }
            SocketCall::Accept { .. } => {
                let Kind::Listener { h, .. } = sock.kind else {
                    return done(CallReturn::err("EINVAL"));
                };
                match self.next_accepted(fd, h)? {
                    Some(conn) => {
                        let new_fd = self.lowest_free_fd();
                        self.fds.insert(
                            new_fd,
                            Socket {
                                kind: Kind::Conn {
                                    h: conn,
                                    connecting: false,
                                },
                                nonblock: false,
                                opts: BTreeMap::new(),
                            },
                        );
                        done(CallReturn::ok(new_fd))
                    }
                    None => block("EAGAIN"),
                }
            }
            SocketCall::Connect { .. } => match sock.kind {
                Kind::Fresh { .. } => {
                    let (local, remote) = script_addresses(self.v6);
                    match self.ep()?.connect(now, local, remote) {
                        Ok(h) => {
                            self.set_kind(
                                fd,
                                Kind::Conn {
                                    h,
                                    connecting: true,
                                },
                            );
                            if nonblock {
                                done(CallReturn::err("EINPROGRESS"))
                            } else {
                                self.connect_progress(fd, h, false)
                            }
                        }
                        Err(e) => errno(e),
                    }
                }
                Kind::Conn {
                    h,
                    connecting: true,
                } => self.connect_progress(fd, h, nonblock),
                Kind::Conn { .. } => done(CallReturn::err("EISCONN")),
                Kind::Listener { .. } => done(CallReturn::err("EINVAL")),
            },
            SocketCall::Write { len, .. } => {
                let h = match sock.kind {
                    Kind::Conn { h, .. } => h,
                    _ => return done(CallReturn::err("ENOTCONN")),
                };
                let data: Vec<u8> = (0..*len).map(|i| b'A' + (i % 26) as u8).collect();
                match self.ep()?.send(now, h, &data) {
                    Ok(n) => done(CallReturn::ok(i64::try_from(n).unwrap_or(i64::MAX))),
                    Err(StackError::WouldBlock) => block("EAGAIN"),
                    Err(e) => errno(e),
                }
            }
            SocketCall::Read { len, .. } => {
                let h = match sock.kind {
                    Kind::Conn { h, .. } => h,
                    _ => return done(CallReturn::err("ENOTCONN")),
                };
                let mut buf = vec![0u8; *len];
                match self.ep()?.recv(now, h, &mut buf) {
                    Ok(n) => done(CallReturn::ok(i64::try_from(n).unwrap_or(i64::MAX))),
                    Err(StackError::WouldBlock) => block("EAGAIN"),
                    Err(e) => errno(e),
                }
            }
            SocketCall::Close { .. } => {
                let linger0 = matches!(
                    sock.opts.get(&SockOpt::Linger),
                    Some(OptValue::Linger {
                        onoff: true,
                        secs: 0
                    })
                );
                let kind = match self.fds.remove(&fd) {
                    Some(s) => s.kind,
                    None => return done(CallReturn::err("EBADF")),
                };
                let r = match kind {
                    Kind::Fresh { .. } => Ok(()),
                    Kind::Listener { h, ready } => {
                        let ep = self.ep()?;
                        for c in ready {
                            let _ = ep.abort(now, c);
                        }
                        ep.close(now, h)
                    }
                    // SO_LINGER with a zero timeout: close is an ABORT
                    // (RFC 9293 3.10.5), the RST goes out at once.
                    Kind::Conn { h, .. } if linger0 => self.ep()?.abort(now, h),
                    Kind::Conn { h, .. } => self.ep()?.close(now, h),
                };
                match r {
                    Ok(()) => done(CallReturn::ok(0)),
                    Err(e) => errno(e),
                }
            }
            SocketCall::Shutdown { how, .. } => {
                let h = match sock.kind {
                    Kind::Conn { h, .. } => h,
                    _ => return done(CallReturn::err("ENOTCONN")),
                };
                let how = match how {
                    How::Read => Shutdown::Read,
                    How::Write => Shutdown::Write,
                    How::Both => Shutdown::Both,
                };
                match self.ep()?.shutdown(now, h, how) {
                    Ok(()) => done(CallReturn::ok(0)),
                    Err(e) => errno(e),
                }
            }
            SocketCall::SetSockOpt { opt, value, .. } => {
                let note = self.configure(*opt, *value);
                if let Some(s) = self.fds.get_mut(&fd) {
                    s.opts.insert(*opt, *value);
                }
                let r = CallReturn::ok(0);
                done(match note {
                    Some(n) => r.with_note(n),
                    None => r,
                })
            }
            SocketCall::GetSockOpt { opt, .. } => {
                let value = match opt {
                    SockOpt::Error => {
                        let h = match sock.kind {
                            Kind::Conn { h, .. } | Kind::Listener { h, .. } => Some(h),
                            Kind::Fresh { .. } => None,
                        };
                        let e = match (h, self.ep.as_mut()) {
                            (Some(h), Some(ep)) => ep.take_error(h).ok().flatten(),
                            _ => None,
                        };
                        OptValue::Errno(e.map(|e| e.errno_name()))
                    }
                    o => sock.opts.get(o).copied().unwrap_or(match o {
                        SockOpt::RcvBuf => OptValue::Int(to_i64(self.config.recv_buf)),
                        SockOpt::SndBuf => OptValue::Int(to_i64(self.config.send_buf)),
                        SockOpt::NoDelay => OptValue::Int(i64::from(!self.config.nagle)),
                        SockOpt::MaxSeg => OptValue::Int(i64::from(self.config.mtu) - 40),
                        SockOpt::Linger => OptValue::Linger {
                            onoff: false,
                            secs: 0,
                        },
                        SockOpt::ReuseAddr | SockOpt::Error | SockOpt::Kernel { .. } => {
                            OptValue::Int(0)
                        }
                    }),
                };
                let mut r = CallReturn::ok(0);
                r.value = Some(value);
                done(r)
            }
            SocketCall::GetFl { .. } => done(CallReturn::ok(
                O_RDWR | if nonblock { O_NONBLOCK } else { 0 },
            )),
            SocketCall::SetFl { flags, .. } => {
                if let Some(s) = self.fds.get_mut(&fd) {
                    s.nonblock = flags & O_NONBLOCK != 0;
                }
                done(CallReturn::ok(0))
            }
            SocketCall::Socket
            | SocketCall::Poll { .. }
            | SocketCall::TcpInfo { .. }
            | SocketCall::Send { .. } => done(CallReturn::err("EINVAL")),
        }
    }

    fn set_kind(&mut self, fd: Fd, kind: Kind) {
        if let Some(s) = self.fds.get_mut(&fd) {
            s.kind = kind;
        }
    }

    /// Where a pending active OPEN stands: done, failed, or still waiting.
    fn connect_progress(
        &mut self,
        fd: Fd,
        h: Handle,
        nonblock: bool,
    ) -> Result<CallOutcome, TargetError> {
        let st = self.ep()?.status(h);
        match st {
            Ok(s) if matches!(s.state, State::SynSent | State::SynReceived) => {
                if nonblock {
                    Ok(CallOutcome::Done(CallReturn::err("EALREADY")))
                } else {
                    Ok(CallOutcome::WouldBlock)
                }
            }
            Ok(s) if s.state == State::Closed => {
                let e = self.ep()?.take_error(h).ok().flatten();
                self.set_kind(
                    fd,
                    Kind::Conn {
                        h,
                        connecting: false,
                    },
                );
                Ok(CallOutcome::Done(CallReturn::err(
                    e.map(|e| e.errno_name()).unwrap_or("ECONNREFUSED"),
                )))
            }
            Ok(_) => {
                self.set_kind(
                    fd,
                    Kind::Conn {
                        h,
                        connecting: false,
                    },
                );
                Ok(CallOutcome::Done(CallReturn::ok(0)))
            }
            Err(e) => Ok(CallOutcome::Done(CallReturn::err(e.errno_name()))),
        }
    }

    /// The next connection for `accept` on listener `fd`: one `poll` already
    /// took from the stack, or a fresh one.
    fn next_accepted(&mut self, fd: Fd, h: Handle) -> Result<Option<Handle>, TargetError> {
        if let Some(Socket {
            kind: Kind::Listener { ready, .. },
            ..
        }) = self.fds.get_mut(&fd)
        {
            if let Some(c) = ready.pop_front() {
                return Ok(Some(c));
            }
        }
        match self.ep()?.accept(h) {
            Ok((c, _)) => Ok(Some(c)),
            Err(_) => Ok(None),
        }
    }

    /// Applies a socket option to the endpoint configuration if the endpoint
    /// does not exist yet; returns a note when it cannot be honoured.
    fn configure(&mut self, opt: SockOpt, value: OptValue) -> Option<String> {
        let OptValue::Int(v) = value else {
            return None;
        };
        let applies = matches!(
            opt,
            SockOpt::RcvBuf | SockOpt::SndBuf | SockOpt::NoDelay | SockOpt::MaxSeg
        );
        if !applies {
            return None;
        }
        if self.started() {
            return Some(format!(
                "{} not applied: the own stack configures it per endpoint, and the endpoint is already running",
                opt.name()
            ));
        }
        let pos = usize::try_from(v).ok().filter(|v| *v > 0);
        match (opt, pos) {
            (SockOpt::RcvBuf, Some(v)) => self.config.recv_buf = v,
            (SockOpt::SndBuf, Some(v)) => self.config.send_buf = v,
            (SockOpt::NoDelay, _) => self.config.nagle = v == 0,
            (SockOpt::MaxSeg, Some(v)) => {
                self.config.mtu = u16::try_from(v.saturating_add(40)).unwrap_or(u16::MAX)
            }
            _ => return Some(format!("{} = {v} not applied (out of range)", opt.name())),
        }
        None
    }

    /// `poll`: readiness in Linux's terms (`tcp_poll`), masked by the
    /// requested events plus POLLERR/POLLHUP/POLLNVAL.
    fn poll(&mut self, fds: &[(Fd, i64)]) -> Result<CallOutcome, TargetError> {
        let mut revents = Vec::with_capacity(fds.len());
        for &(fd, events) in fds {
            let bits = self.readiness(fd)?;
            revents.push(bits & (events | POLLERR | POLLHUP | POLLNVAL));
        }
        let n = revents.iter().filter(|r| **r != 0).count();
        let mut r = CallReturn::ok(i64::try_from(n).unwrap_or(0));
        r.revents = revents;
        Ok(CallOutcome::Done(r))
    }

    fn readiness(&mut self, fd: Fd) -> Result<i64, TargetError> {
        let h = match self.fds.get(&fd).map(|s| &s.kind) {
            None => return Ok(POLLNVAL),
            Some(Kind::Fresh { .. }) => return Ok(POLLOUT | POLLWRNORM | POLLHUP),
            Some(Kind::Listener { h, .. }) => {
                let h = *h;
                if let Some(c) = self.next_accepted(fd, h)? {
                    if let Some(Socket {
                        kind: Kind::Listener { ready, .. },
                        ..
                    }) = self.fds.get_mut(&fd)
                    {
                        ready.push_front(c);
                    }
                    return Ok(POLLIN | POLLRDNORM);
                }
                return Ok(0);
            }
            Some(Kind::Conn { h, .. }) => *h,
        };
        let send_buf = self.config.send_buf;
        let Ok(s) = self.ep()?.status(h) else {
            return Ok(POLLNVAL);
        };
        let mut bits = 0;
        if s.error.is_some() {
            bits |= POLLERR;
        }
        if s.state == State::Closed {
            bits |= POLLHUP | POLLIN | POLLRDNORM | POLLRDHUP | POLLOUT | POLLWRNORM;
            return Ok(bits);
        }
        if matches!(s.state, State::SynSent | State::SynReceived) {
            return Ok(bits);
        }
        if s.readable > 0 {
            bits |= POLLIN | POLLRDNORM;
        }
        if s.fin_received {
            bits |= POLLIN | POLLRDNORM | POLLRDHUP;
        }
        let can_send = matches!(s.state, State::Established | State::CloseWait);
        if !can_send || s.send_queued < send_buf {
            // After our FIN, writes fail at once: Linux reports POLLOUT.
            bits |= POLLOUT | POLLWRNORM;
        }
        Ok(bits)
    }
}

fn to_i64(v: usize) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

impl Target for OwnTarget {
    fn name(&self) -> &'static str {
        "own"
    }

    fn is_virtual(&self) -> bool {
        true
    }

    fn now(&self) -> Micros {
        self.now
    }

    fn addresses(&self) -> (SocketAddr, SocketAddr) {
        script_addresses(self.v6)
    }

    fn set_ip_version(&mut self, v: IpVersion) -> Result<(), TargetError> {
        self.v6 = ip_version_is_v6(v)?;
        Ok(())
    }

    /// Jumps to the stack's next timer if it is due by `until` (and fires
    /// it), else straight to `until`.
    fn advance(&mut self, until: Micros) -> Result<Micros, TargetError> {
        if until <= self.now {
            return Ok(self.now);
        }
        let next = self
            .ep
            .as_ref()
            .and_then(|ep| ep.poll_timeout())
            .map(|t| t.as_micros().max(self.now));
        match next {
            Some(t) if t <= until => {
                self.now = t;
                let at = self.instant();
                if let Some(ep) = self.ep.as_mut() {
                    ep.handle_timeout(at);
                }
                self.collect();
            }
            _ => self.now = until,
        }
        Ok(self.now)
    }

    fn inject(&mut self, packet: &[u8]) -> Result<(), TargetError> {
        let at = self.instant();
        self.ep()?.handle_packet(at, packet);
        self.collect();
        Ok(())
    }

    fn take_outbound(&mut self) -> Vec<(Micros, Vec<u8>)> {
        std::mem::take(&mut self.out)
    }

    fn call(&mut self, call: &SocketCall) -> Result<CallOutcome, TargetError> {
        let r = self.do_call(call);
        self.collect();
        r
    }

    /// The Linux sysctls with a counterpart in the own stack's [`Config`],
    /// honoured before the endpoint starts:
    /// - `net.ipv4.tcp_retries2`: R2 for data and FIN (RFC 9293 §3.8.3);
    /// - `net.ipv4.tcp_syn_retries`: R2 for a SYN or SYN-ACK, as a count;
    /// - `net.ipv4.tcp_rto_min_us`, `net.ipv4.tcp_rto_max_ms`: the RTO bounds
    ///   (RFC 6298 §§2.4–2.5); the minimum also caps the delayed-ACK timer,
    ///   as on Linux;
    /// - `net.ipv4.tcp_window_scaling`: window scaling (RFC 7323) on or off;
    /// - `net.ipv4.tcp_rmem`/`tcp_wmem`: the default (middle) value is the
    ///   buffer size;
    /// - `net.ipv4.tcp_sack`, `net.ipv4.tcp_timestamps`: the stack offers
    ///   neither SACK-permitted nor timestamps, so 0 is applied as what it
    ///   already does (even once running) and any other value is not
    ///   applicable.
    ///
    /// Anything else, a value out of range, or a knob after the endpoint
    /// started is not applicable, with the reason; the runner then reports
    /// the script as not applicable on `own`.
    fn sysctl(&mut self, name: &str, value: &str) -> SysctlOutcome {
        let key = name.replace('/', ".");
        let v = value.trim();
        let not_applicable = SysctlOutcome::NotApplicable;
        let missing = match key.as_str() {
            "net.ipv4.tcp_sack" => Some("SACK (RFC 2018)"),
            "net.ipv4.tcp_timestamps" => Some("timestamps (RFC 7323 section 3)"),
            _ => None,
        };
        if let Some(feature) = missing {
            return if v == "0" {
                SysctlOutcome::Applied
            } else {
                not_applicable(format!(
                    "the own stack does not implement {feature}; only 0 (off) applies"
                ))
            };
        }
        if self.started() {
            return not_applicable("the own stack's endpoint is already running".into());
        }
        let int = |lo: u64, hi: u64| v.parse::<u64>().ok().filter(|x| (lo..=hi).contains(x));
        let c = &mut self.config;
        let applied = match key.as_str() {
            "net.ipv4.tcp_retries2" => int(0, u64::from(u32::MAX))
                .and_then(|x| u32::try_from(x).ok())
                .map(|x| c.max_retries = x),
            "net.ipv4.tcp_syn_retries" => int(1, 127)
                .and_then(|x| u32::try_from(x).ok())
                .map(|x| c.syn_retries = Some(x)),
            "net.ipv4.tcp_rto_min_us" => int(1, i32::MAX as u64).map(|x| c.rto_min_us = Some(x)),
            "net.ipv4.tcp_rto_max_ms" => int(1000, 120_000).map(|x| c.rto_max_us = Some(x * 1000)),
            "net.ipv4.tcp_window_scaling" => int(0, 1).map(|x| c.window_scaling = x == 1),
            "net.ipv4.tcp_rmem" | "net.ipv4.tcp_wmem" => {
                let parts: Vec<&str> = v.split_whitespace().collect();
                let size = parts
                    .get(1)
                    .or(parts.first())
                    .and_then(|x| x.parse::<usize>().ok())
                    .filter(|x| *x > 0);
                let buf = if key.ends_with("rmem") {
                    &mut c.recv_buf
                } else {
                    &mut c.send_buf
                };
                size.map(|x| *buf = x)
            }
            _ => {
                return not_applicable(format!(
                    "no counterpart in the own stack's configuration (profile {})",
                    c.profile
                ))
            }
        };
        match applied {
            Some(()) => SysctlOutcome::Applied,
            None => not_applicable(format!("bad value `{value}`")),
        }
    }

    fn take_transitions(&mut self) -> Vec<TargetTransition> {
        std::mem::take(&mut self.transitions)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn applied(t: &mut OwnTarget, name: &str, value: &str) {
        assert_eq!(
            t.sysctl(name, value),
            SysctlOutcome::Applied,
            "{name}={value}"
        );
    }

    fn not_applicable(t: &mut OwnTarget, name: &str, value: &str, why: &str) {
        match t.sysctl(name, value) {
            SysctlOutcome::NotApplicable(w) => assert!(w.contains(why), "{name}={value}: {w}"),
            o => panic!("{name}={value}: {o:?}"),
        }
    }

    /// Every knob with a counterpart lands in the endpoint's configuration
    /// (dotted or slashed names); missing features apply only when off.
    #[test]
    fn sysctls_with_a_counterpart_configure_the_stack() {
        let mut t = OwnTarget::new(Profile::Rfc9293);
        applied(&mut t, "net.ipv4.tcp_retries2", "3");
        applied(&mut t, "net/ipv4/tcp_syn_retries", "4");
        applied(&mut t, "net.ipv4.tcp_rto_min_us", "5000");
        applied(&mut t, "net.ipv4.tcp_rto_max_ms", "30000");
        applied(&mut t, "net.ipv4.tcp_window_scaling", "0");
        applied(&mut t, "net.ipv4.tcp_rmem", "4096 131072 6291456");
        applied(&mut t, "net.ipv4.tcp_wmem", "8192");
        applied(&mut t, "net.ipv4.tcp_sack", "0");
        applied(&mut t, "net.ipv4.tcp_timestamps", "0");
        let c = &t.config;
        assert_eq!(c.max_retries, 3);
        assert_eq!(c.syn_retries, Some(4));
        assert_eq!((c.rto_min_us, c.rto_max_us), (Some(5000), Some(30_000_000)));
        assert!(!c.window_scaling);
        assert_eq!((c.recv_buf, c.send_buf), (131072, 8192));
    }

    #[test]
    fn sysctls_without_a_counterpart_are_not_applicable_with_the_reason() {
        let mut t = OwnTarget::new(Profile::Rfc9293);
        not_applicable(&mut t, "net.ipv4.tcp_sack", "1", "SACK");
        not_applicable(&mut t, "net.ipv4.tcp_timestamps", "1", "timestamps");
        not_applicable(&mut t, "net.ipv4.tcp_ecn", "1", "no counterpart");
        not_applicable(&mut t, "net.ipv4.tcp_syn_retries", "0", "bad value");
        not_applicable(&mut t, "net.ipv4.tcp_rto_max_ms", "500", "bad value");
        not_applicable(&mut t, "net.ipv4.tcp_window_scaling", "2", "bad value");
        assert!(t.config.window_scaling);
        assert_eq!(t.config.syn_retries, None);
        // Once the endpoint runs its configuration is fixed; what it
        // already does still applies.
        t.ep().expect("endpoint");
        not_applicable(&mut t, "net.ipv4.tcp_retries2", "3", "already running");
        applied(&mut t, "net.ipv4.tcp_timestamps", "0");
    }
}
