//! The in-process adapter: how any sans-IO or device-driven TCP stack
//! written in Rust becomes a target.
//!
//! A stack implements [`Stack`] — deliver an IP packet, hand out the packets
//! it sends, say when its next timer is due and fire it, and the socket
//! calls scripts use — and [`AdapterTarget`] turns it into a runner
//! [`Target`]: it keeps the script's file-descriptor table, gives blocking
//! calls their semantics (a blocking call that cannot complete waits; a
//! non-blocking one gets `EAGAIN`/`EINPROGRESS`/`EALREADY`), answers `poll`
//! and `fcntl`, drives the virtual clock (it jumps to the stack's next timer
//! or to the runner's deadline, so runs are deterministic and take
//! microseconds), and collects the packets for traces and pcap files. When
//! the stack can say which table row each transition took
//! ([`Stack::take_transitions`]) the runs count towards table coverage.
//!
//! A call a stack cannot make answers [`CallError::NotApplicable`] with the
//! reason; the runner then reports the script as not applicable there
//! (neither a pass nor a failure), as it does for a sysctl without a
//! counterpart.
//!
//! The stack's address and the peer's are those of every script
//! ([`super::own::script_addresses`]): the stack is 192.0.2.1:8080 (or
//! 2001:db8::1), the scripted peer 192.0.2.2:40000 (2001:db8::2).
//!
//! # Example
//!
//! A toy stack that can only refuse connections: it answers every SYN with
//! a RST (RFC 9293 §3.10.7.1, CLOSED state) and has no sockets.
//!
//! ```
//! use tcp_harness::run::adapter::{AdapterTarget, CallError, SocketStatus, Stack};
//! use tcp_harness::run::target::{How, Micros, OptValue, SockOpt};
//! use tcp_harness::run::{run_text, wire, RunOptions};
//! use tcp_harness::script::TcpFlags;
//! use std::net::SocketAddr;
//!
//! #[derive(Default)]
//! struct Refuser {
//!     out: Vec<Vec<u8>>,
//! }
//!
//! impl Stack for Refuser {
//!     type Handle = u32;
//!     fn name(&self) -> &'static str { "refuser" }
//!     fn deliver(&mut self, _now: Micros, packet: &[u8]) -> Result<(), String> {
//!         // A SYN without ACK gets <SEQ=0><ACK=SEG.SEQ+1><CTL=RST,ACK>.
//!         let Ok(seg) = wire::decode(packet) else { return Ok(()) };
//!         if seg.flags.syn && !seg.flags.ack {
//!             let flags = TcpFlags { rst: true, ack: true, ..TcpFlags::default() };
//!             let rst = wire::build(&wire::Outgoing {
//!                 src: seg.dst, dst: seg.src, src_port: seg.dst_port, dst_port: seg.src_port,
//!                 seq: 0, ack: seg.seq.wrapping_add(1), flags, win: 0, urg: 0,
//!                 options: &[], payload_len: 0, ecn: 0,
//!             })?;
//!             self.out.push(rst);
//!         }
//!         Ok(())
//!     }
//!     fn transmit(&mut self, _now: Micros) -> Option<Vec<u8>> { self.out.pop() }
//!     fn next_timer(&self) -> Option<Micros> { None }
//!     fn on_timer(&mut self, _now: Micros) {}
//!     fn listen(&mut self, _: Micros, _: SocketAddr, _: usize) -> Result<u32, CallError> {
//!         Err(CallError::NotApplicable("the refuser has no listeners".into()))
//!     }
//!     fn accept(&mut self, _: Micros, _: u32) -> Result<Option<u32>, CallError> { Ok(None) }
//!     fn connect(&mut self, _: Micros, _: SocketAddr, _: SocketAddr) -> Result<u32, CallError> {
//!         Err(CallError::Errno("ENETUNREACH"))
//!     }
//!     fn send(&mut self, _: Micros, _: u32, _: &[u8]) -> Result<usize, CallError> {
//!         Err(CallError::Errno("ENOTCONN"))
//!     }
//!     fn recv(&mut self, _: Micros, _: u32, _: &mut [u8]) -> Result<usize, CallError> {
//!         Err(CallError::Errno("ENOTCONN"))
//!     }
//!     fn shutdown(&mut self, _: Micros, _: u32, _: How) -> Result<(), CallError> { Ok(()) }
//!     fn close(&mut self, _: Micros, _: u32) -> Result<(), CallError> { Ok(()) }
//!     fn abort(&mut self, _: Micros, _: u32) -> Result<(), CallError> { Ok(()) }
//!     fn status(&mut self, _: u32) -> Result<SocketStatus, &'static str> { Err("EBADF") }
//!     fn take_error(&mut self, _: u32) -> Option<&'static str> { None }
//!     fn set_option(&mut self, _: SockOpt, _: OptValue) -> Option<String> { None }
//!     fn get_option(&self, _: SockOpt) -> OptValue { OptValue::Int(0) }
//! }
//!
//! let script = "0 < S 0:0(0) win 1000\n+0 > R. 0:0(0) ack 1 win 0\n";
//! let mut target = AdapterTarget::from_stack(Refuser::default());
//! let report = run_text("refuse.pkt", script, &mut target, &RunOptions::default());
//! assert!(report.passed(), "{}", report.details());
//! ```

use super::own::{ip_version_is_v6, lowest_free_fd, script_addresses, LOCAL_PORT};
use super::target::{
    pollbits::*, CallOutcome, CallReturn, Fd, How, Micros, OptValue, SockOpt, SocketCall,
    SysctlOutcome, Target, TargetError, TargetTransition, O_NONBLOCK, O_RDWR,
};
use crate::script::IpVersion;
use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use tcp_spec::State;

/// Why a socket call of a [`Stack`] did not complete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallError {
    /// It cannot complete yet (no data, no connection, no buffer space):
    /// a blocking socket waits, a non-blocking one gets `EAGAIN`.
    WouldBlock,
    /// It failed with this errno, named as in scripts (`ECONNRESET`).
    Errno(&'static str),
    /// The stack has no counterpart for the call: the script is not
    /// applicable to this target (the reason is reported).
    NotApplicable(String),
    /// The stack cannot run at all (bad configuration): a target error.
    Setup(String),
}

/// What the adapter needs to know about one connection: enough for
/// `poll(2)`, a pending `connect` and `SO_ERROR`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SocketStatus {
    /// Its state (RFC 9293 §3.3.2).
    pub state: State,
    /// Octets a `read` would return now.
    pub readable: usize,
    /// The peer's FIN has arrived (end of stream after `readable`).
    pub fin_received: bool,
    /// A `write` would accept data now (send buffer not full).
    pub writable: bool,
    /// An error is pending (`SO_ERROR`).
    pub error: bool,
}

/// The socket options a stack keeps as plain values: what `getsockopt`
/// reports for an option never set, and what an integer `setsockopt`
/// changes (buffer sizes, Nagle's algorithm of RFC 9293 §3.7.4, the MSS
/// announced, RFC 9293 §3.7.1, as MTU − 40).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SockDefaults {
    /// `SO_RCVBUF`.
    pub recv_buf: usize,
    /// `SO_SNDBUF`.
    pub send_buf: usize,
    /// Nagle on (`TCP_NODELAY` = 0).
    pub nagle: bool,
    /// The MTU (`TCP_MAXSEG` + 40).
    pub mtu: usize,
}

impl SockDefaults {
    /// The value of `opt`.
    pub fn get(&self, opt: SockOpt) -> OptValue {
        match opt {
            SockOpt::RcvBuf => OptValue::Int(to_i64(self.recv_buf)),
            SockOpt::SndBuf => OptValue::Int(to_i64(self.send_buf)),
            SockOpt::NoDelay => OptValue::Int(i64::from(!self.nagle)),
            SockOpt::MaxSeg => OptValue::Int(to_i64(self.mtu) - 40),
            SockOpt::Linger => OptValue::Linger {
                onoff: false,
                secs: 0,
            },
            // Kernel-only options never get here (`SocketCall::kernel_only`).
            SockOpt::ReuseAddr | SockOpt::Error | SockOpt::Kernel { .. } => OptValue::Int(0),
        }
    }

    /// Applies an integer value; a note when it is out of range (nothing
    /// changes then). Other options and values are not these: `None`.
    pub fn set(&mut self, opt: SockOpt, value: OptValue) -> Option<String> {
        let OptValue::Int(v) = value else {
            return None;
        };
        let pos = usize::try_from(v).ok().filter(|v| *v > 0);
        match (opt, pos) {
            (SockOpt::RcvBuf, Some(v)) => self.recv_buf = v,
            (SockOpt::SndBuf, Some(v)) => self.send_buf = v,
            (SockOpt::NoDelay, _) => self.nagle = v == 0,
            (SockOpt::MaxSeg, Some(v)) => self.mtu = v.saturating_add(40),
            (SockOpt::RcvBuf | SockOpt::SndBuf | SockOpt::MaxSeg, None) => {
                return Some(format!("{} = {v} not applied (out of range)", opt.name()))
            }
            _ => {}
        }
        None
    }
}

/// A TCP stack the harness can drive in-process on a virtual clock.
///
/// Times are microseconds since the start of the script. Packets are
/// whole IP packets (IPv4 or IPv6, checksums included). Every method is
/// called with the current virtual time; the stack never reads a clock of
/// its own. After every delivery, call and timer the adapter drains
/// [`Stack::transmit`] until it returns `None`.
///
/// Socket handles are the stack's own; the adapter maps script file
/// descriptors onto them. A listener's connections come out of
/// [`Stack::accept`] one at a time.
pub trait Stack {
    /// The stack's socket handle.
    type Handle: Copy + Eq + std::fmt::Debug;

    /// The target's short name (`own`, `smoltcp`).
    fn name(&self) -> &'static str;

    /// Delivers one IP packet from the scripted peer. `Err` only when the
    /// stack cannot run at all (a setup error), never for a bad packet:
    /// those are the stack's to drop.
    fn deliver(&mut self, now: Micros, packet: &[u8]) -> Result<(), String>;

    /// The next packet the stack sends, if any.
    fn transmit(&mut self, now: Micros) -> Option<Vec<u8>>;

    /// When the stack's next timer is due (`None`: no timer armed).
    fn next_timer(&self) -> Option<Micros>;

    /// Fires the timers due at `now` (retransmission, persist, delayed ACK,
    /// TIME-WAIT; RFC 9293 §3.10.8).
    fn on_timer(&mut self, now: Micros);

    /// Passive OPEN (RFC 9293 §3.10.1) on `local` with room for `backlog`
    /// connections not yet accepted.
    fn listen(
        &mut self,
        now: Micros,
        local: SocketAddr,
        backlog: usize,
    ) -> Result<Self::Handle, CallError>;

    /// The next established connection of `listener`; `Ok(None)` when none
    /// is ready.
    fn accept(
        &mut self,
        now: Micros,
        listener: Self::Handle,
    ) -> Result<Option<Self::Handle>, CallError>;

    /// Active OPEN (RFC 9293 §3.10.1) from `local` to `remote`; returns at
    /// once, the adapter waits on [`Stack::status`] for the handshake.
    fn connect(
        &mut self,
        now: Micros,
        local: SocketAddr,
        remote: SocketAddr,
    ) -> Result<Self::Handle, CallError>;

    /// SEND (RFC 9293 §3.10.2): queues what fits, returns how much.
    fn send(&mut self, now: Micros, h: Self::Handle, data: &[u8]) -> Result<usize, CallError>;

    /// RECEIVE (RFC 9293 §3.10.3): `Ok(0)` is the end of the stream.
    fn recv(&mut self, now: Micros, h: Self::Handle, buf: &mut [u8]) -> Result<usize, CallError>;

    /// `shutdown(2)`: `How::Write` is CLOSE of the sending side.
    fn shutdown(&mut self, now: Micros, h: Self::Handle, how: How) -> Result<(), CallError>;

    /// CLOSE (RFC 9293 §3.10.4) of a connection or a listener; the handle
    /// is no longer the script's afterwards.
    fn close(&mut self, now: Micros, h: Self::Handle) -> Result<(), CallError>;

    /// ABORT (RFC 9293 §3.10.5): a RST where the state calls for one.
    fn abort(&mut self, now: Micros, h: Self::Handle) -> Result<(), CallError>;

    /// A connection's status; an errno name (`EBADF`) when the handle is
    /// unknown.
    fn status(&mut self, h: Self::Handle) -> Result<SocketStatus, &'static str>;

    /// Takes the pending error of a connection (`SO_ERROR`, and what a
    /// failed `connect` returns), as an errno name.
    fn take_error(&mut self, h: Self::Handle) -> Option<&'static str>;

    /// `setsockopt` of a buffer size, `TCP_NODELAY` or `TCP_MAXSEG`
    /// (`SO_LINGER` is the adapter's: a zero linger makes close an abort).
    /// Returns a note when the value is not honoured.
    fn set_option(&mut self, opt: SockOpt, value: OptValue) -> Option<String>;

    /// The value `getsockopt` reports for an option never set.
    fn get_option(&self, opt: SockOpt) -> OptValue;

    /// A backtick `sysctl name=value` line: by default the stack has no
    /// counterpart and the script is not applicable.
    fn sysctl(&mut self, name: &str, value: &str) -> SysctlOutcome {
        let _ = value;
        SysctlOutcome::NotApplicable(format!(
            "{name}: no counterpart in the {} stack",
            self.name()
        ))
    }

    /// The transitions since the last call, with the table row each took
    /// (optional: stacks that cannot say return none and are not counted
    /// in table coverage).
    fn take_transitions(&mut self) -> Vec<TargetTransition> {
        Vec::new()
    }
}

#[derive(Debug)]
enum Kind<H> {
    /// `socket()` done, not yet listening or connecting.
    Fresh { bound: bool },
    /// A listener with connections taken from the stack by `poll` and not
    /// yet handed out by `accept`.
    Listener { h: H, ready: VecDeque<H> },
    /// A connection; `connecting` while an active OPEN has not completed.
    Conn { h: H, connecting: bool },
}

#[derive(Debug)]
struct Socket<H> {
    kind: Kind<H>,
    nonblock: bool,
    opts: BTreeMap<SockOpt, OptValue>,
}

/// Any [`Stack`] as a runner [`Target`] on a virtual clock.
#[derive(Debug)]
pub struct AdapterTarget<S: Stack> {
    stack: S,
    now: Micros,
    fds: BTreeMap<Fd, Socket<S::Handle>>,
    out: Vec<(Micros, Vec<u8>)>,
    transitions: Vec<TargetTransition>,
    /// The script runs over IPv6 (`--ip_version=ipv6`).
    v6: bool,
}

type CallResult = Result<CallOutcome, TargetError>;

fn done(r: CallReturn) -> CallResult {
    Ok(CallOutcome::Done(r))
}

/// A stack's answer to a call as the runner's outcome: `block` is what a
/// [`CallError::WouldBlock`] becomes.
fn failed(e: CallError, block: CallResult) -> CallResult {
    match e {
        CallError::WouldBlock => block,
        CallError::Errno(n) => done(CallReturn::err(n)),
        CallError::NotApplicable(why) => Err(TargetError::NotApplicable(why)),
        CallError::Setup(why) => Err(TargetError::Setup(why)),
    }
}

impl<S: Stack> AdapterTarget<S> {
    /// The stack at time 0, with no sockets.
    pub fn from_stack(stack: S) -> AdapterTarget<S> {
        AdapterTarget {
            stack,
            now: 0,
            fds: BTreeMap::new(),
            out: Vec::new(),
            transitions: Vec::new(),
            v6: false,
        }
    }

    /// The stack inside.
    pub fn stack(&self) -> &S {
        &self.stack
    }

    /// The stack inside, mutably.
    pub fn stack_mut(&mut self) -> &mut S {
        &mut self.stack
    }

    /// Moves packets and transitions out of the stack into our queues.
    fn collect(&mut self) {
        while let Some(p) = self.stack.transmit(self.now) {
            self.out.push((self.now, p));
        }
        self.transitions.extend(self.stack.take_transitions());
    }

    fn set_kind(&mut self, fd: Fd, kind: Kind<S::Handle>) {
        if let Some(s) = self.fds.get_mut(&fd) {
            s.kind = kind;
        }
    }

    fn new_socket(&mut self, kind: Kind<S::Handle>) -> Fd {
        let fd = lowest_free_fd(&self.fds);
        self.fds.insert(
            fd,
            Socket {
                kind,
                nonblock: false,
                opts: BTreeMap::new(),
            },
        );
        fd
    }

    fn do_call(&mut self, call: &SocketCall) -> CallResult {
        let now = self.now;
        let fd = match call {
            SocketCall::Socket => {
                return done(CallReturn::ok(
                    self.new_socket(Kind::Fresh { bound: false }),
                ))
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
                done(CallReturn::err(errno_name))
            } else {
                Ok(CallOutcome::WouldBlock)
            }
        };
        let conn = match sock.kind {
            Kind::Conn { h, .. } => Some(h),
            _ => None,
        };
        match call {
            SocketCall::Bind { .. } => match self.fds.get_mut(&fd).map(|s| &mut s.kind) {
                Some(Kind::Fresh { bound }) if !*bound => {
                    *bound = true;
                    done(CallReturn::ok(0))
                }
                _ => done(CallReturn::err("EINVAL")),
            },
            SocketCall::Listen { backlog, .. } => self.listen(fd, *backlog),
            SocketCall::Accept { .. } => {
                let Kind::Listener { h, .. } = sock.kind else {
                    return done(CallReturn::err("EINVAL"));
                };
                match self.next_accepted(fd, h) {
                    Ok(Some(c)) => done(CallReturn::ok(self.new_socket(Kind::Conn {
                        h: c,
                        connecting: false,
                    }))),
                    Ok(None) => block("EAGAIN"),
                    Err(e) => failed(e, block("EAGAIN")),
                }
            }
            SocketCall::Connect { .. } => self.connect(fd, nonblock),
            SocketCall::Write { len, .. } => {
                let Some(h) = conn else {
                    return done(CallReturn::err("ENOTCONN"));
                };
                let data: Vec<u8> = (0..*len).map(|i| b'A' + (i % 26) as u8).collect();
                match self.stack.send(now, h, &data) {
                    Ok(n) => done(CallReturn::ok(to_i64(n))),
                    Err(e) => failed(e, block("EAGAIN")),
                }
            }
            SocketCall::Read { len, .. } => {
                let Some(h) = conn else {
                    return done(CallReturn::err("ENOTCONN"));
                };
                let mut buf = vec![0u8; *len];
                match self.stack.recv(now, h, &mut buf) {
                    Ok(n) => done(CallReturn::ok(to_i64(n))),
                    Err(e) => failed(e, block("EAGAIN")),
                }
            }
            SocketCall::Close { .. } => self.close(fd),
            SocketCall::Shutdown { how, .. } => {
                let Some(h) = conn else {
                    return done(CallReturn::err("ENOTCONN"));
                };
                match self.stack.shutdown(now, h, *how) {
                    Ok(()) => done(CallReturn::ok(0)),
                    Err(e) => failed(e, block("EAGAIN")),
                }
            }
            SocketCall::SetSockOpt { opt, value, .. } => self.setsockopt(fd, *opt, *value),
            SocketCall::GetSockOpt { opt, .. } => self.getsockopt(fd, *opt),
            SocketCall::GetFl { .. } => done(CallReturn::ok(
                O_RDWR | if nonblock { O_NONBLOCK } else { 0 },
            )),
            SocketCall::SetFl { flags, .. } => {
                if let Some(s) = self.fds.get_mut(&fd) {
                    s.nonblock = flags & O_NONBLOCK != 0;
                }
                done(CallReturn::ok(0))
            }
            SocketCall::Socket | SocketCall::Poll { .. } => done(CallReturn::err("EINVAL")),
            // Answered not applicable before dispatch (`kernel_only`).
            SocketCall::Send { .. }
            | SocketCall::TcpInfo { .. }
            | SocketCall::Msg(_)
            | SocketCall::Epoll(_)
            | SocketCall::Pointer(_)
            | SocketCall::File(_) => Err(TargetError::NotApplicable(call.name().into())),
        }
    }

    /// `setsockopt`: plain options go to the stack, every value is kept
    /// per socket for `getsockopt` (and `SO_LINGER` for `close`).
    fn setsockopt(&mut self, fd: Fd, opt: SockOpt, value: OptValue) -> CallResult {
        let note = match opt {
            SockOpt::RcvBuf | SockOpt::SndBuf | SockOpt::NoDelay | SockOpt::MaxSeg => {
                self.stack.set_option(opt, value)
            }
            _ => None,
        };
        if let Some(s) = self.fds.get_mut(&fd) {
            s.opts.insert(opt, value);
        }
        let r = CallReturn::ok(0);
        done(match note {
            Some(n) => r.with_note(n),
            None => r,
        })
    }

    /// `getsockopt`: `SO_ERROR` takes the pending error; others are what
    /// the script set or the stack's default.
    fn getsockopt(&mut self, fd: Fd, opt: SockOpt) -> CallResult {
        let Some(sock) = self.fds.get(&fd) else {
            return done(CallReturn::err("EBADF"));
        };
        let value = match opt {
            SockOpt::Error => {
                let h = match sock.kind {
                    Kind::Conn { h, .. } | Kind::Listener { h, .. } => Some(h),
                    Kind::Fresh { .. } => None,
                };
                OptValue::Errno(h.and_then(|h| self.stack.take_error(h)))
            }
            o => match sock.opts.get(&o) {
                Some(v) => *v,
                None => self.stack.get_option(o),
            },
        };
        let mut r = CallReturn::ok(0);
        r.value = Some(value);
        done(r)
    }

    fn listen(&mut self, fd: Fd, backlog: i64) -> CallResult {
        match self.fds.get(&fd).map(|s| &s.kind) {
            Some(Kind::Fresh { .. }) => {}
            Some(Kind::Listener { .. }) => return done(CallReturn::ok(0)),
            _ => return done(CallReturn::err("EINVAL")),
        }
        let backlog = usize::try_from(backlog).unwrap_or(0);
        let local = SocketAddr::new(script_addresses(self.v6).0.ip(), LOCAL_PORT);
        match self.stack.listen(self.now, local, backlog) {
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
            Err(e) => failed(e, done(CallReturn::err("EAGAIN"))),
        }
    }

    fn connect(&mut self, fd: Fd, nonblock: bool) -> CallResult {
        match self.fds.get(&fd).map(|s| &s.kind) {
            Some(Kind::Fresh { .. }) => {
                let (local, remote) = script_addresses(self.v6);
                match self.stack.connect(self.now, local, remote) {
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
                    Err(e) => failed(e, done(CallReturn::err("EAGAIN"))),
                }
            }
            Some(Kind::Conn {
                h,
                connecting: true,
            }) => {
                let h = *h;
                self.connect_progress(fd, h, nonblock)
            }
            Some(Kind::Conn { .. }) => done(CallReturn::err("EISCONN")),
            _ => done(CallReturn::err("EINVAL")),
        }
    }

    /// `close(fd)`: CLOSE, or ABORT under a zero `SO_LINGER` (RFC 9293
    /// §3.10.5, the RST goes out at once); a listener's connections not yet
    /// accepted are aborted.
    fn close(&mut self, fd: Fd) -> CallResult {
        let now = self.now;
        let Some(sock) = self.fds.remove(&fd) else {
            return done(CallReturn::err("EBADF"));
        };
        let linger0 = matches!(
            sock.opts.get(&SockOpt::Linger),
            Some(OptValue::Linger {
                onoff: true,
                secs: 0
            })
        );
        let r = match sock.kind {
            Kind::Fresh { .. } => Ok(()),
            Kind::Listener { h, ready } => {
                for c in ready {
                    let _ = self.stack.abort(now, c);
                }
                self.stack.close(now, h)
            }
            Kind::Conn { h, .. } if linger0 => self.stack.abort(now, h),
            Kind::Conn { h, .. } => self.stack.close(now, h),
        };
        match r {
            Ok(()) => done(CallReturn::ok(0)),
            Err(e) => failed(e, done(CallReturn::err("EAGAIN"))),
        }
    }

    /// Where a pending active OPEN stands: done, failed, or still waiting.
    fn connect_progress(&mut self, fd: Fd, h: S::Handle, nonblock: bool) -> CallResult {
        let st = self.stack.status(h);
        let settled = Kind::Conn {
            h,
            connecting: false,
        };
        match st {
            Ok(s) if matches!(s.state, State::SynSent | State::SynReceived) => {
                if nonblock {
                    done(CallReturn::err("EALREADY"))
                } else {
                    Ok(CallOutcome::WouldBlock)
                }
            }
            Ok(s) if s.state == State::Closed => {
                let e = self.stack.take_error(h);
                self.set_kind(fd, settled);
                done(CallReturn::err(e.unwrap_or("ECONNREFUSED")))
            }
            Ok(_) => {
                self.set_kind(fd, settled);
                done(CallReturn::ok(0))
            }
            Err(e) => done(CallReturn::err(e)),
        }
    }

    /// The next connection for `accept` on listener `fd`: one `poll` already
    /// took from the stack, or a fresh one.
    fn next_accepted(&mut self, fd: Fd, h: S::Handle) -> Result<Option<S::Handle>, CallError> {
        if let Some(Socket {
            kind: Kind::Listener { ready, .. },
            ..
        }) = self.fds.get_mut(&fd)
        {
            if let Some(c) = ready.pop_front() {
                return Ok(Some(c));
            }
        }
        self.stack.accept(self.now, h)
    }

    /// `poll`: readiness in Linux's terms (`tcp_poll`), masked by the
    /// requested events plus POLLERR/POLLHUP/POLLNVAL.
    fn poll(&mut self, fds: &[(Fd, i64)]) -> CallResult {
        let mut revents = Vec::with_capacity(fds.len());
        for &(fd, events) in fds {
            let bits = match self.readiness(fd) {
                Ok(b) => b,
                Err(e) => return failed(e, done(CallReturn::err("EAGAIN"))),
            };
            revents.push(bits & (events | POLLERR | POLLHUP | POLLNVAL));
        }
        let n = revents.iter().filter(|r| **r != 0).count();
        let mut r = CallReturn::ok(to_i64(n));
        r.revents = revents;
        done(r)
    }

    fn readiness(&mut self, fd: Fd) -> Result<i64, CallError> {
        let h = match self.fds.get(&fd).map(|s| &s.kind) {
            None => return Ok(POLLNVAL),
            Some(Kind::Fresh { .. }) => return Ok(POLLOUT | POLLWRNORM | POLLHUP),
            Some(Kind::Listener { h, .. }) => {
                let h = *h;
                let Some(c) = self.next_accepted(fd, h)? else {
                    return Ok(0);
                };
                if let Some(Socket {
                    kind: Kind::Listener { ready, .. },
                    ..
                }) = self.fds.get_mut(&fd)
                {
                    ready.push_front(c);
                }
                return Ok(POLLIN | POLLRDNORM);
            }
            Some(Kind::Conn { h, .. }) => *h,
        };
        let Ok(s) = self.stack.status(h) else {
            return Ok(POLLNVAL);
        };
        let mut bits = 0;
        if s.error {
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
        if !can_send || s.writable {
            // After our FIN, writes fail at once: Linux reports POLLOUT.
            bits |= POLLOUT | POLLWRNORM;
        }
        Ok(bits)
    }
}

fn to_i64(v: usize) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

impl<S: Stack> Target for AdapterTarget<S> {
    fn name(&self) -> &'static str {
        self.stack.name()
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
        match self.stack.next_timer().map(|t| t.max(self.now)) {
            Some(t) if t <= until => {
                self.now = t;
                self.stack.on_timer(t);
                self.collect();
            }
            _ => self.now = until,
        }
        Ok(self.now)
    }

    fn inject(&mut self, packet: &[u8]) -> Result<(), TargetError> {
        self.stack
            .deliver(self.now, packet)
            .map_err(TargetError::Setup)?;
        self.collect();
        Ok(())
    }

    fn take_outbound(&mut self) -> Vec<(Micros, Vec<u8>)> {
        std::mem::take(&mut self.out)
    }

    fn call(&mut self, call: &SocketCall) -> Result<CallOutcome, TargetError> {
        let call = &*call.portable();
        if let Some(why) = call.kernel_only() {
            return Err(TargetError::NotApplicable(format!(
                "{} has {why}",
                self.stack.name()
            )));
        }
        let r = self.do_call(call);
        self.collect();
        r
    }

    fn sysctl(&mut self, name: &str, value: &str) -> SysctlOutcome {
        self.stack.sysctl(name, value)
    }

    fn take_transitions(&mut self) -> Vec<TargetTransition> {
        std::mem::take(&mut self.transitions)
    }
}
