//! Target `smoltcp`: smoltcp 0.14 from crates.io — its real `Interface` and
//! `tcp::Socket`, checksums computed and verified — behind the adapter
//! ([`super::adapter`]) on a virtual clock.
//!
//! The interface has the script's stack addresses (192.0.2.1/24 and
//! 2001:db8::1/64) on an IP-medium device whose queues the adapter fills
//! and empties. smoltcp has one socket per connection and no accept queue:
//! a script's listener is a set of smoltcp sockets on the port, one of
//! them in LISTEN at any time while the accept queue (connections that
//! left LISTEN and were not accepted yet) has room for `backlog + 1`, as
//! on Linux. smoltcp records no socket errors; the adapter derives them
//! from state changes it did not ask for (SYN-SENT to CLOSED: refused; a
//! synchronized state to CLOSED: reset).
//!
//! smoltcp cannot say which table row a transition took, so its runs do
//! not count towards table coverage. What it lacks is not applicable:
//! `shutdown(SHUT_RD)`, and the sysctls without a counterpart.

use super::adapter::{AdapterTarget, CallError, SockDefaults, SocketStatus, Stack};
use super::own::{LOCAL_ADDR, LOCAL_ADDR6};
use super::target::{How, Micros, OptValue, SockOpt, SysctlOutcome};
use ::smoltcp::iface::{Config, Interface, SocketHandle, SocketSet};
use ::smoltcp::phy::{self, ChecksumCapabilities, Device, DeviceCapabilities, Medium};
use ::smoltcp::socket::tcp::{self, State as SmolState};
use ::smoltcp::socket::AnySocket;
use ::smoltcp::time::Instant;
use ::smoltcp::wire::{HardwareAddress, IpAddress, IpCidr, IpEndpoint, IpListenEndpoint};
use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use tcp_spec::State;

/// Default buffer sizes and MTU: the own stack's, so windows and MSS start
/// alike.
const BUF: usize = 65535;
const MTU: usize = 1500;
/// The interface's random seed (ISNs, ports): fixed, so runs repeat.
const SEED: u64 = 0x7463_7063_6f6e_666f;
/// How often `poll` runs again at one instant while smoltcp says there is
/// more to do now.
const MAX_POLLS: usize = 16;

/// Target `smoltcp`.
pub type SmoltcpTarget = AdapterTarget<SmoltcpStack>;

impl AdapterTarget<SmoltcpStack> {
    /// A fresh smoltcp interface with no sockets at time 0.
    pub fn smoltcp() -> SmoltcpTarget {
        AdapterTarget::from_stack(SmoltcpStack::new())
    }
}

/// An IP-medium device whose queues are in memory.
#[derive(Debug, Default)]
struct Queues {
    rx: VecDeque<Vec<u8>>,
    tx: VecDeque<Vec<u8>>,
    mtu: usize,
}

struct Rx(Vec<u8>);
struct Tx<'a>(&'a mut VecDeque<Vec<u8>>);

impl phy::RxToken for Rx {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(&self.0)
    }
}

impl phy::TxToken for Tx<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let mut buf = vec![0; len];
        let r = f(&mut buf);
        self.0.push_back(buf);
        r
    }
}

impl Device for Queues {
    type RxToken<'a> = Rx;
    type TxToken<'a> = Tx<'a>;

    fn receive(&mut self, _t: Instant) -> Option<(Rx, Tx<'_>)> {
        let p = self.rx.pop_front()?;
        Some((Rx(p), Tx(&mut self.tx)))
    }

    fn transmit(&mut self, _t: Instant) -> Option<Tx<'_>> {
        Some(Tx(&mut self.tx))
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ip;
        caps.max_transmission_unit = self.mtu;
        // Compute and verify every checksum.
        caps.checksum = ChecksumCapabilities::default();
        caps
    }
}

/// A script socket as smoltcp sockets.
#[derive(Debug)]
enum Entry {
    /// A listener: its smoltcp sockets not yet accepted, in arrival order.
    Listener {
        port: u16,
        backlog: usize,
        socks: Vec<SocketHandle>,
    },
    /// A connection.
    Conn(Conn),
}

#[derive(Debug)]
struct Conn {
    sock: SocketHandle,
    /// The state at the last look.
    last: SmolState,
    /// The script closed or aborted it: a later CLOSED is no error.
    closed: bool,
    /// The pending error (`SO_ERROR`, what the next call returns).
    error: Option<&'static str>,
    /// Why a synchronized connection died without the script closing it
    /// (what writes keep returning).
    cause: Option<&'static str>,
    /// It reached a synchronized state at some point.
    synced: bool,
}

/// smoltcp as an adapter [`Stack`].
pub struct SmoltcpStack {
    iface: Interface,
    dev: Queues,
    sockets: SocketSet<'static>,
    entries: Vec<Entry>,
    /// Buffer sizes and Nagle for new sockets, the MTU of the device.
    opts: SockDefaults,
    next: Option<Micros>,
}

impl std::fmt::Debug for SmoltcpStack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmoltcpStack")
            .field("entries", &self.entries)
            .field("next", &self.next)
            .finish_non_exhaustive()
    }
}

fn instant(now: Micros) -> Instant {
    Instant::from_micros(i64::try_from(now).unwrap_or(i64::MAX))
}

fn micros(t: Instant) -> Micros {
    u64::try_from(t.total_micros()).unwrap_or(0)
}

/// smoltcp's state as the table's (RFC 9293 §3.3.2: the same eleven).
fn state_of(s: SmolState) -> State {
    match s {
        SmolState::Closed => State::Closed,
        SmolState::Listen => State::Listen,
        SmolState::SynSent => State::SynSent,
        SmolState::SynReceived => State::SynReceived,
        SmolState::Established => State::Established,
        SmolState::FinWait1 => State::FinWait1,
        SmolState::FinWait2 => State::FinWait2,
        SmolState::CloseWait => State::CloseWait,
        SmolState::Closing => State::Closing,
        SmolState::LastAck => State::LastAck,
        SmolState::TimeWait => State::TimeWait,
    }
}

fn ip(a: IpAddr) -> IpAddress {
    match a {
        IpAddr::V4(v) => IpAddress::Ipv4(v),
        IpAddr::V6(v) => IpAddress::Ipv6(v),
    }
}

impl Default for SmoltcpStack {
    fn default() -> Self {
        SmoltcpStack::new()
    }
}

impl SmoltcpStack {
    /// The interface with the script's addresses and no sockets.
    pub fn new() -> SmoltcpStack {
        let mut dev = Queues {
            mtu: MTU,
            ..Queues::default()
        };
        let mut config = Config::new(HardwareAddress::Ip);
        config.random_seed = SEED;
        let mut iface = Interface::new(config, &mut dev, instant(0));
        iface.update_ip_addrs(|a| {
            let _ = a.push(IpCidr::new(IpAddress::Ipv4(LOCAL_ADDR), 24));
            let _ = a.push(IpCidr::new(IpAddress::Ipv6(LOCAL_ADDR6), 64));
        });
        SmoltcpStack {
            iface,
            dev,
            sockets: SocketSet::new(Vec::new()),
            entries: Vec::new(),
            opts: SockDefaults {
                recv_buf: BUF,
                send_buf: BUF,
                nagle: true,
                mtu: MTU,
            },
            next: None,
        }
    }

    fn new_socket(&mut self) -> SocketHandle {
        let mut s = tcp::Socket::new(
            tcp::SocketBuffer::new(vec![0; self.opts.recv_buf]),
            tcp::SocketBuffer::new(vec![0; self.opts.send_buf]),
        );
        s.set_nagle_enabled(self.opts.nagle);
        self.sockets.add(s)
    }

    fn sock(&mut self, h: SocketHandle) -> &mut tcp::Socket<'static> {
        self.sockets.get_mut::<tcp::Socket>(h)
    }

    /// Runs the interface at `now` until it has nothing more to do now,
    /// then looks at what changed and when it wants to run next.
    fn poll(&mut self, now: Micros) {
        let t = instant(now);
        for _ in 0..MAX_POLLS {
            self.iface.poll(t, &mut self.dev, &mut self.sockets);
            self.observe();
            self.next = self
                .iface
                .poll_at(t, &self.sockets)
                .map(micros)
                .map(|n| n.max(now));
            if self.next != Some(now) {
                return;
            }
        }
        // Still due now after every poll: look again a millisecond later
        // rather than hold the clock still.
        self.next = Some(now + 1000);
    }

    /// Derives errors from state changes and keeps one socket of every
    /// listener in LISTEN while its accept queue has room.
    fn observe(&mut self) {
        for i in 0..self.entries.len() {
            match &self.entries[i] {
                Entry::Conn(c) => {
                    let (sock, last, closed) = (c.sock, c.last, c.closed);
                    let now = self.sock(sock).state();
                    let error = match (last, now) {
                        (l, SmolState::Closed) if l != SmolState::Closed && !closed => match l {
                            SmolState::SynSent => Some("ECONNREFUSED"),
                            SmolState::TimeWait => None,
                            _ => Some("ECONNRESET"),
                        },
                        _ => None,
                    };
                    if let Entry::Conn(c) = &mut self.entries[i] {
                        c.last = now;
                        c.error = error.or(c.error);
                        c.synced |= !matches!(
                            now,
                            SmolState::Closed | SmolState::Listen | SmolState::SynSent
                        );
                        if c.synced && error.is_some() {
                            c.cause = error;
                        }
                    }
                }
                Entry::Listener {
                    port,
                    backlog,
                    socks,
                } => {
                    let (port, backlog, mut socks) = (*port, *backlog, socks.clone());
                    socks.retain(|s| self.sock(*s).state() != SmolState::Closed);
                    let listening = socks
                        .iter()
                        .any(|s| self.sock(*s).state() == SmolState::Listen);
                    if !listening && socks.len() <= backlog {
                        let s = self.new_socket();
                        if self.sock(s).listen(port).is_ok() {
                            socks.push(s);
                        }
                    }
                    if let Entry::Listener { socks: old, .. } = &mut self.entries[i] {
                        *old = socks;
                    }
                }
            }
        }
    }

    fn conn(&mut self, h: usize) -> Result<&mut Conn, CallError> {
        match self.entries.get_mut(h) {
            Some(Entry::Conn(c)) => Ok(c),
            _ => Err(CallError::Errno("EBADF")),
        }
    }

    fn add_conn(&mut self, sock: SocketHandle) -> usize {
        let last = self.sock(sock).state();
        self.entries.push(Entry::Conn(Conn {
            sock,
            last,
            closed: false,
            error: None,
            cause: None,
            synced: !matches!(last, SmolState::Closed | SmolState::SynSent),
        }));
        self.entries.len() - 1
    }

    /// A call on connection `h` at `now`, then the interface runs.
    fn with_conn<T>(
        &mut self,
        now: Micros,
        h: usize,
        f: impl FnOnce(&mut tcp::Socket<'static>, &mut Conn) -> Result<T, CallError>,
    ) -> Result<T, CallError> {
        let Some(Entry::Conn(c)) = self.entries.get_mut(h) else {
            return Err(CallError::Errno("EBADF"));
        };
        let r = f(self.sockets.get_mut::<tcp::Socket>(c.sock), c);
        self.poll(now);
        r
    }
}

impl Stack for SmoltcpStack {
    type Handle = usize;

    fn name(&self) -> &'static str {
        "smoltcp"
    }

    fn deliver(&mut self, now: Micros, packet: &[u8]) -> Result<(), String> {
        self.dev.rx.push_back(packet.to_vec());
        self.poll(now);
        Ok(())
    }

    fn transmit(&mut self, _now: Micros) -> Option<Vec<u8>> {
        self.dev.tx.pop_front()
    }

    fn next_timer(&self) -> Option<Micros> {
        self.next
    }

    fn on_timer(&mut self, now: Micros) {
        self.poll(now);
    }

    fn listen(
        &mut self,
        now: Micros,
        local: SocketAddr,
        backlog: usize,
    ) -> Result<usize, CallError> {
        let s = self.new_socket();
        let at = IpListenEndpoint {
            addr: None,
            port: local.port(),
        };
        if self.sock(s).listen(at).is_err() {
            self.sockets.remove(s);
            return Err(CallError::Errno("EADDRINUSE"));
        }
        self.entries.push(Entry::Listener {
            port: local.port(),
            backlog,
            socks: vec![s],
        });
        self.poll(now);
        Ok(self.entries.len() - 1)
    }

    /// The oldest connection of the listener past the handshake.
    fn accept(&mut self, now: Micros, listener: usize) -> Result<Option<usize>, CallError> {
        let Some(Entry::Listener { socks, .. }) = self.entries.get(listener) else {
            return Err(CallError::Errno("EINVAL"));
        };
        let ready = socks.iter().position(|s| {
            !matches!(
                self.sockets.get::<tcp::Socket>(*s).state(),
                SmolState::Listen | SmolState::SynReceived | SmolState::Closed
            )
        });
        let Some(i) = ready else { return Ok(None) };
        let sock = match self.entries.get_mut(listener) {
            Some(Entry::Listener { socks, .. }) => socks.remove(i),
            _ => return Ok(None),
        };
        let h = self.add_conn(sock);
        self.poll(now);
        Ok(Some(h))
    }

    fn connect(
        &mut self,
        now: Micros,
        local: SocketAddr,
        remote: SocketAddr,
    ) -> Result<usize, CallError> {
        let s = self.new_socket();
        let remote = IpEndpoint::new(ip(remote.ip()), remote.port());
        let local = IpListenEndpoint {
            addr: Some(ip(local.ip())),
            port: local.port(),
        };
        let cx = self.iface.context();
        if let Err(e) = self
            .sockets
            .get_mut::<tcp::Socket>(s)
            .connect(cx, remote, local)
        {
            self.sockets.remove(s);
            return Err(CallError::NotApplicable(format!("smoltcp connect: {e}")));
        }
        let h = self.add_conn(s);
        self.poll(now);
        Ok(h)
    }

    /// Writes what fits. smoltcp queues no data before the handshake is
    /// done (the call waits); a connection that never got there is
    /// `ENOTCONN`, one reset keeps answering `ECONNRESET`, and after our FIN
    /// it is `EPIPE`, as on Linux.
    fn send(&mut self, now: Micros, h: usize, data: &[u8]) -> Result<usize, CallError> {
        self.with_conn(now, h, |s, c| {
            match s.state() {
                SmolState::SynSent | SmolState::SynReceived => return Err(CallError::WouldBlock),
                SmolState::Closed if !c.synced => return Err(CallError::Errno("ENOTCONN")),
                SmolState::Closed => {
                    c.error = None;
                    return Err(CallError::Errno(c.cause.unwrap_or("EPIPE")));
                }
                _ => {}
            }
            if !s.may_send() {
                return Err(CallError::Errno(c.error.take().unwrap_or("EPIPE")));
            }
            match s.send_slice(data) {
                Ok(0) if !data.is_empty() => Err(CallError::WouldBlock),
                Ok(n) => Ok(n),
                Err(_) => Err(CallError::Errno("EPIPE")),
            }
        })
    }

    /// Reads what is buffered; 0 at the end of the stream, the pending
    /// error after a reset.
    fn recv(&mut self, now: Micros, h: usize, buf: &mut [u8]) -> Result<usize, CallError> {
        self.with_conn(now, h, |s, c| {
            if s.recv_queue() > 0 {
                return s
                    .recv_slice(buf)
                    .map_err(|_| CallError::Errno("ECONNRESET"));
            }
            if let Some(e) = c.error.take() {
                return Err(CallError::Errno(e));
            }
            match s.state() {
                SmolState::Closed | SmolState::TimeWait => Ok(0),
                _ if !s.may_recv() && s.state() != SmolState::SynSent => Ok(0),
                _ => Err(CallError::WouldBlock),
            }
        })
    }

    /// `SHUT_WR` (and `SHUT_RDWR`) queue our FIN; smoltcp has no way to
    /// close only the receiving side.
    fn shutdown(&mut self, now: Micros, h: usize, how: How) -> Result<(), CallError> {
        if how == How::Read {
            return Err(CallError::NotApplicable(
                "smoltcp has no shutdown of the receiving side (SHUT_RD)".into(),
            ));
        }
        self.with_conn(now, h, |s, _| {
            s.close();
            Ok(())
        })
    }

    fn close(&mut self, now: Micros, h: usize) -> Result<(), CallError> {
        match self.entries.get_mut(h) {
            Some(Entry::Listener { socks, .. }) => {
                let socks = std::mem::take(socks);
                for s in socks {
                    let sock = self.sock(s);
                    if sock.state() == SmolState::Listen {
                        sock.close();
                    } else {
                        sock.abort();
                    }
                }
                self.poll(now);
                Ok(())
            }
            Some(Entry::Conn(_)) => self.with_conn(now, h, |s, c| {
                c.closed = true;
                s.close();
                Ok(())
            }),
            None => Err(CallError::Errno("EBADF")),
        }
    }

    fn abort(&mut self, now: Micros, h: usize) -> Result<(), CallError> {
        self.with_conn(now, h, |s, c| {
            c.closed = true;
            s.abort();
            Ok(())
        })
    }

    fn status(&mut self, h: usize) -> Result<SocketStatus, &'static str> {
        let tx_buf = self.opts.send_buf;
        let c = self.conn(h).map_err(|_| "EBADF")?;
        let (sock, error) = (c.sock, c.error.is_some());
        let s = self.sock(sock);
        let state = s.state();
        Ok(SocketStatus {
            state: state_of(state),
            readable: s.recv_queue(),
            fin_received: matches!(
                state,
                SmolState::CloseWait
                    | SmolState::LastAck
                    | SmolState::Closing
                    | SmolState::TimeWait
            ),
            writable: s.send_queue() < tx_buf,
            error,
        })
    }

    fn take_error(&mut self, h: usize) -> Option<&'static str> {
        self.conn(h).ok()?.error.take()
    }

    /// Buffer sizes apply to the smoltcp sockets made from now on (it sizes
    /// a socket's buffers when it is created); `TCP_NODELAY` to every
    /// socket; `TCP_MAXSEG` sets the interface MTU (smoltcp derives its MSS
    /// from it).
    fn set_option(&mut self, opt: SockOpt, value: OptValue) -> Option<String> {
        let note = self.opts.set(opt, value);
        self.dev.mtu = self.opts.mtu;
        let nagle = self.opts.nagle;
        for (_, s) in self.sockets.iter_mut() {
            if let Some(s) = tcp::Socket::downcast_mut(s) {
                s.set_nagle_enabled(nagle);
            }
        }
        note
    }

    fn get_option(&self, opt: SockOpt) -> OptValue {
        self.opts.get(opt)
    }

    /// The sysctls whose value is what smoltcp does anyway:
    /// `tcp_timestamps=0` (it sends timestamps only with a generator set),
    /// `tcp_rto_min_us=1000000` (its least RTO is 1 s, RFC 6298 §2.4).
    /// `tcp_sack=0` runs on with a warning: smoltcp has no switch and
    /// offers SACK-permitted in its SYN. Anything else is not applicable.
    fn sysctl(&mut self, name: &str, value: &str) -> SysctlOutcome {
        let key = name.replace('/', ".");
        match (key.as_str(), value.trim()) {
            ("net.ipv4.tcp_timestamps", "0") | ("net.ipv4.tcp_rto_min_us", "1000000") => {
                SysctlOutcome::Applied
            }
            ("net.ipv4.tcp_sack", "0") => SysctlOutcome::Refused(
                "smoltcp has no switch for SACK: it offers SACK-permitted in its SYN".into(),
            ),
            _ => SysctlOutcome::NotApplicable(format!(
                "{key}={value}: no counterpart in smoltcp 0.14"
            )),
        }
    }
}
