//! The endpoint: demultiplexing of packets to connections and listeners
//! (RFC 9293 §3.10.7), timers, the transmit queue, the socket-shaped user
//! API (RFC 9293 §3.9.1) and the observer log of transitions.

use crate::conn::{
    closed_port_reply, connectionless_event, Cause, Conn, ConnInit, ConnParams, Ctx, Handle,
};
use crate::error::{Error, Result};
use crate::isn::IsnGenerator;
use crate::packet::{self, Flags, Payload, Segment, SegmentIn, Stats};
use crate::rto::RtoParams;
use crate::time::Instant;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use tcp_spec::{Event, Profile, State, Timeout, UserCall};

/// How an endpoint is set up.
#[derive(Clone, Debug)]
pub struct Config {
    /// The local addresses (IPv4 and/or IPv6) packets are accepted for.
    pub addrs: Vec<IpAddr>,
    /// Which rows of the table and which parameters to follow.
    pub profile: Profile,
    /// Receive buffer per connection in octets (bounds RCV.WND and the
    /// reassembly queue).
    pub recv_buf: usize,
    /// Send buffer per connection in octets.
    pub send_buf: usize,
    /// Secret key for ISNs (RFC 6528 §3). [`Config::new`] draws it from
    /// the operating system ([`crate::isn::os_secret`]); set a fixed one
    /// only where runs must replay identically (tests, fuzzing, the
    /// conformance harness).
    pub secret: [u8; 32],
    /// Upper bound for any listener's backlog of embryonic plus
    /// not-yet-accepted connections.
    pub backlog: usize,
    /// Link MTU; our MSS option is the MTU minus 40 (IPv4) or 60 (IPv6).
    pub mtu: u16,
    /// Nagle's algorithm (RFC 9293 §3.7.4).
    pub nagle: bool,
    /// Retransmissions of data or FIN before the connection is aborted as
    /// a user timeout (RFC 9293 §3.8.3 R2).
    pub max_retries: u32,
    /// R2 for a SYN or SYN-ACK as a count (RFC 9293 §3.8.3); `None` takes
    /// the profile's `syn_retries`.
    pub syn_retries: Option<u32>,
    /// Lower bound of a computed RTO in µs (RFC 6298 §2.4); `None` takes
    /// the profile's `rto_min_ms`.
    pub rto_min_us: Option<u64>,
    /// Upper bound of the RTO in µs (RFC 6298 §2.5); `None` takes the
    /// profile's `rto_max_ms`.
    pub rto_max_us: Option<u64>,
    /// Window scaling (RFC 7323 §2): offered on our SYN and echoed on our
    /// SYN-ACK. Off: neither, the peer's option is ignored and both
    /// directions stay unscaled (§2.2).
    pub window_scaling: bool,
    /// Selective acknowledgment: SACK-permitted offered on our SYN and
    /// echoed on our SYN-ACK when the peer's SYN carried it (RFC 2018 §2);
    /// once both sides permit it, our ACKs report out-of-order data in SACK
    /// blocks (RFC 2018 §4) and the peer's blocks drive loss recovery
    /// (RFC 6675). Off: neither option is sent, the peer's are ignored and
    /// recovery is NewReno (RFC 6582). Off by default (so the conformance
    /// suite's SYNs stay as scripted); the crate feature `sack-default`
    /// turns the default on, which is how the property suites run with it.
    pub sack: bool,
    /// RACK-TLP (RFC 8985) on connections that use SACK: losses are found
    /// by the time segments were sent (a lost retransmission, a loss with
    /// fewer than three segments after it) and a probe timeout of about
    /// two round trips sends one segment to expose a lost tail, instead of
    /// waiting for the retransmission timeout. Nothing changes without
    /// SACK. Off by default, like SACK (on with the feature
    /// `sack-default`).
    pub rack: bool,
    /// Keep the observer log of transitions ([`Endpoint::drain_transitions`]).
    /// Off by default: an embedder that never drains it would see it grow
    /// with every segment. Observers (tests, fuzzers, the conformance
    /// harness) turn it on and drain it.
    pub log_transitions: bool,
    /// Seeded bugs for tests of the wire-level checks; all off by default.
    #[doc(hidden)]
    pub faults: crate::Faults,
}

impl Config {
    /// Defaults: profile rfc9293, 64 KiB buffers, MTU 1500, backlog 128,
    /// Nagle on, 15 retries, the profile's SYN retries and RTO bounds,
    /// window scaling on, SACK off (on with the feature `sack-default`), no transition log, and an ISN secret drawn from
    /// the operating system (RFC 6528 §3).
    pub fn new(addrs: Vec<IpAddr>) -> Config {
        Config {
            addrs,
            profile: Profile::Rfc9293,
            recv_buf: 65535,
            send_buf: 65535,
            secret: crate::isn::os_secret(),
            backlog: 128,
            mtu: 1500,
            nagle: true,
            max_retries: 15,
            syn_retries: None,
            rto_min_us: None,
            rto_max_us: None,
            window_scaling: true,
            sack: cfg!(feature = "sack-default"),
            rack: cfg!(feature = "sack-default"),
            log_transitions: false,
            faults: crate::Faults::default(),
        }
    }
}

/// An endpoint that cannot be created.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// [`Config::addrs`] is empty.
    #[error("no local address configured")]
    NoAddress,
    /// A buffer size is zero.
    #[error("buffer sizes must be at least 1 octet")]
    BadBuffer,
}

/// A segment the stack emitted, as the observer log shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SegmentSummary {
    /// Control bits.
    pub flags: Flags,
    /// SEG.SEQ.
    pub seq: u32,
    /// SEG.ACK (meaningful when `flags.ack`).
    pub ack: u32,
    /// Payload octets.
    pub len: u32,
    /// Why it was sent.
    pub cause: Cause,
}

impl SegmentSummary {
    pub(crate) fn of<P: Payload>(seg: &Segment<P>, cause: Cause) -> Self {
        SegmentSummary {
            flags: seg.flags,
            seq: seg.seq.0,
            ack: seg.ack.0,
            len: seg.payload.octets() as u32,
            cause,
        }
    }
}

/// One step of a connection (or listener, or closed port) as the stack
/// took it: the abstract event, the table row its code path implements,
/// the state before and after, and what it sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transition {
    /// When the event was handled.
    pub at: Instant,
    /// The connection or listener; `None` for a segment to a closed port
    /// (no TCB).
    pub conn: Option<Handle>,
    /// The state before.
    pub from: State,
    /// The abstract event (a segment class, a user call or a timeout).
    pub event: Event,
    /// The id of the row the stack's branch implements.
    pub row: &'static str,
    /// The state after.
    pub to: State,
    /// The segments sent in response, in order.
    pub emitted: Vec<SegmentSummary>,
}

/// Which direction `shutdown` closes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shutdown {
    /// No more receiving: what arrives later is discarded.
    Read,
    /// No more sending: a FIN follows the queued data (RFC 9293 §3.10.4).
    Write,
    /// Both.
    Both,
}

/// A snapshot of a socket (RFC 9293 §3.10.6 STATUS).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Status {
    /// The state (RFC 9293 §3.3.2).
    pub state: State,
    /// The local address and port.
    pub local: SocketAddr,
    /// The peer; `None` for a listener.
    pub remote: Option<SocketAddr>,
    /// SND.UNA: the oldest unacknowledged sequence number.
    pub snd_una: u32,
    /// SND.NXT: the next sequence number to send.
    pub snd_nxt: u32,
    /// SND.WND: the peer's window, scaled.
    pub snd_wnd: u32,
    /// RCV.NXT: the next sequence number expected.
    pub rcv_nxt: u32,
    /// RCV.WND: the window offered.
    pub rcv_wnd: u32,
    /// SRTT in µs (RFC 6298 §2), once measured.
    pub srtt_us: Option<u64>,
    /// RTTVAR in µs (RFC 6298 §2).
    pub rttvar_us: u64,
    /// The current RTO in µs, back-off included.
    pub rto_us: u64,
    /// The congestion window and slow-start threshold (RFC 5681 §2).
    pub cwnd: u32,
    /// The slow-start threshold (RFC 5681 §3.1).
    pub ssthresh: u32,
    /// Effective send MSS.
    pub mss: u16,
    /// The shift applied to the peer's window (RFC 7323 §2.3).
    pub snd_wscale: u8,
    /// The shift applied to the window we offer.
    pub rcv_wscale: u8,
    /// Octets readable now.
    pub readable: usize,
    /// Octets queued for sending (unsent or unacknowledged).
    pub send_queued: usize,
    /// The peer has closed its direction (end of stream after `readable`).
    pub fin_received: bool,
    /// Our FIN has been sent and is not yet acknowledged (SEG.ACK = SND.NXT
    /// would acknowledge it).
    pub fin_outstanding: bool,
    /// The pending error, if the connection failed.
    pub error: Option<Error>,
}

#[derive(Clone, Debug)]
struct Listener {
    addr: Option<IpAddr>,
    port: u16,
    backlog: usize,
    accept: VecDeque<Handle>,
}

type Tuple = (IpAddr, u16, IpAddr, u16);

/// The sans-IO TCP endpoint: every connection and listener of a set of
/// local addresses. It owns no socket, thread or clock: the caller hands it
/// whole IP packets and the time, and takes back the packets to send and
/// the time of the next timer. A clone is an independent copy of every
/// connection, listener and queued packet (a fuzzer prepares an endpoint
/// once and runs each input on a copy).
///
/// Two endpoints wired back to back, a handshake (RFC 9293 §3.5) and one
/// message:
///
/// ```
/// use std::net::{IpAddr, Ipv4Addr, SocketAddr};
/// use tcp_stack::{Config, Endpoint, Instant};
///
/// let (a_ip, b_ip) = (
///     IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
///     IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2)),
/// );
/// let mut client = Endpoint::new(Config::new(vec![a_ip]))?;
/// let mut server = Endpoint::new(Config::new(vec![b_ip]))?;
/// let now = Instant::from_millis(1);
///
/// let listener = server.listen(now, None, 80, 16)?;
/// let conn = client.connect(now, SocketAddr::new(a_ip, 0), SocketAddr::new(b_ip, 80))?;
///
/// // The wire: move packets until neither side has any (SYN, SYN-ACK, ACK).
/// let wire = |a: &mut Endpoint, b: &mut Endpoint| loop {
///     let mut moved = false;
///     while let Some(p) = a.poll_transmit(now) {
///         b.handle_packet(now, &p);
///         moved = true;
///     }
///     while let Some(p) = b.poll_transmit(now) {
///         a.handle_packet(now, &p);
///         moved = true;
///     }
///     if !moved {
///         break;
///     }
/// };
/// wire(&mut client, &mut server);
///
/// let (accepted, peer) = server.accept(listener)?;
/// assert_eq!(peer.ip(), a_ip);
/// assert_eq!(client.status(conn)?.state, tcp_spec::State::Established);
///
/// client.send(now, conn, b"hello")?;
/// wire(&mut client, &mut server);
/// let mut buf = [0u8; 16];
/// let n = server.recv(now, accepted, &mut buf)?;
/// assert_eq!(&buf[..n], b"hello");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct Endpoint {
    config: Config,
    params: ConnParams,
    isn: IsnGenerator,
    next_id: u64,
    next_port: u16,
    conns: BTreeMap<Handle, Conn>,
    tuples: HashMap<Tuple, Handle>,
    /// The last entry of `tuples` found: a run of segments of one
    /// connection skips hashing its 4-tuple. Cleared whenever `tuples`
    /// changes.
    last_tuple: Option<(Tuple, Handle)>,
    listeners: BTreeMap<Handle, Listener>,
    tx: VecDeque<Vec<u8>>,
    /// Packet buffers handed back by the user, reused for output.
    spare: crate::spare::Spare,
    transitions: Vec<Transition>,
    stats: Stats,
}

impl Endpoint {
    /// Creates an endpoint. The profile's parameters are constants fixed
    /// at build time ([`tcp_spec::Profile::values`]); only an empty address
    /// list or a zero buffer size is refused.
    pub fn new(config: Config) -> std::result::Result<Endpoint, ConfigError> {
        if config.addrs.is_empty() {
            return Err(ConfigError::NoAddress);
        }
        if config.recv_buf == 0 || config.send_buf == 0 {
            return Err(ConfigError::BadBuffer);
        }
        let pp = config.profile.values();
        let to16 = |v: u64| u16::try_from(v).unwrap_or(u16::MAX);
        let mut rto = RtoParams::from_spec(&pp);
        if let Some(min) = config.rto_min_us {
            // Linux's tcp_rto_min also floors the variance term.
            if rto.var_floor_us > 0 {
                rto.var_floor_us = min;
            }
            rto.min_us = min;
        }
        rto.max_us = config.rto_max_us.unwrap_or(rto.max_us).max(1);
        let params = ConnParams {
            profile: config.profile,
            rto,
            time_wait_us: pp.time_wait_ms.saturating_mul(1000),
            delayed_ack_us: ConnParams::delayed_ack_timeout_us(
                pp.delayed_ack_max_ms.saturating_mul(1000),
                rto.min_us,
            ),
            challenge_per_sec: pp.challenge_ack_per_sec,
            syn_retries: config
                .syn_retries
                .unwrap_or(u32::try_from(pp.syn_retries).unwrap_or(u32::MAX)),
            max_retries: config.max_retries,
            default_mss_v4: to16(pp.default_mss_ipv4),
            default_mss_v6: to16(pp.default_mss_ipv6),
            mtu: config.mtu,
            recv_buf: config.recv_buf.min(65535 << 14),
            send_buf: config.send_buf,
            nagle: config.nagle,
            window_scaling: config.window_scaling,
            sack: config.sack,
            rack: config.rack,
            faults: config.faults,
        };
        let seed = u16::from_le_bytes([config.secret[0], config.secret[1]]);
        Ok(Endpoint {
            isn: IsnGenerator::new(config.secret).with_fixed(config.faults.fixed_isn),
            config,
            params,
            next_id: 1,
            next_port: 49152 + seed % 16384,
            conns: BTreeMap::new(),
            tuples: HashMap::new(),
            last_tuple: None,
            listeners: BTreeMap::new(),
            tx: VecDeque::new(),
            spare: crate::spare::Spare::default(),
            transitions: Vec::new(),
            stats: Stats::default(),
        })
    }

    /// The configuration it was created with.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The profile it follows.
    pub fn profile(&self) -> Profile {
        self.config.profile
    }

    /// Drop and event counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Takes the observer log accumulated so far.
    pub fn drain_transitions(&mut self) -> Vec<Transition> {
        if self.transitions.is_empty() {
            return Vec::new();
        }
        // The next log starts with room for as many (up to 64) as this
        // one held, so a caller that drains after each round of events
        // does not grow it again push by push.
        let room = self.transitions.len().min(64);
        std::mem::replace(&mut self.transitions, Vec::with_capacity(room))
    }

    /// Number of live TCBs (connections not yet deleted).
    pub fn connection_count(&self) -> usize {
        self.conns.len()
    }

    fn alloc_id(&mut self) -> Handle {
        let id = Handle(self.next_id);
        self.next_id = self.next_id.wrapping_add(1).max(1);
        id
    }

    // ----- packets ------------------------------------------------------------

    /// Feeds one whole IPv4 or IPv6 packet. Malformed or foreign packets
    /// are dropped and counted in [`Stats`].
    pub fn handle_packet(&mut self, now: Instant, bytes: &[u8]) {
        self.stats.packets_in = self.stats.packets_in.saturating_add(1);
        let addrs = &self.config.addrs;
        let seg = match packet::parse_in(bytes, |a| addrs.contains(&a)) {
            Ok(s) => s,
            Err(r) => {
                self.stats.count(r);
                return;
            }
        };
        let key = (seg.dst, seg.dst_port, seg.src, seg.src_port);
        if let Some(id) = self.find_conn(&key) {
            if let Some(conn) = self.conns.get(&id) {
                let ev = conn.classify(&seg, &self.params);
                if let Event::Segment(se) = ev {
                    self.run(now, id, ev, |c, ctx| c.on_segment(ctx, &seg, &se));
                }
                if self.conns.get(&id).is_some_and(Conn::held_fin_ready) {
                    // The held FIN is processed as the in-order FIN it now is.
                    let fin = Event::Segment(tcp_spec::SegmentEvent {
                        syn: false,
                        fin: true,
                        rst: false,
                        payload: false,
                        seq: tcp_spec::SeqClass::LeftEdge,
                        ack: tcp_spec::AckClass::Dup,
                    });
                    self.run(now, id, fin, |c, ctx| c.take_held_fin(ctx));
                }
                return;
            }
        }
        if let Some(lid) = self.find_listener(seg.dst, seg.dst_port) {
            self.listener_segment(now, lid, &seg);
            return;
        }
        // RFC 9293 §3.10.7.1: no TCB, the state is CLOSED.
        let mut ctx = Ctx::new(now, &self.params, &mut self.stats, &mut self.spare);
        closed_port_reply(&mut ctx, &seg);
        let (row, out) = (ctx.row, ctx.out);
        self.finish(
            now,
            None,
            (State::Closed, connectionless_event(&seg), State::Closed),
            row,
            out,
        );
    }

    /// The connection of a 4-tuple (local address, port, remote address,
    /// port).
    fn find_conn(&mut self, key: &Tuple) -> Option<Handle> {
        if let Some((k, id)) = &self.last_tuple {
            if k == key {
                return Some(*id);
            }
        }
        let id = *self.tuples.get(key)?;
        self.last_tuple = Some((*key, id));
        Some(id)
    }

    /// Enters a connection's 4-tuple.
    fn bind_tuple(&mut self, key: Tuple, id: Handle) {
        self.last_tuple = None;
        self.tuples.insert(key, id);
    }

    /// Takes a connection's 4-tuple out of the table, if it still names
    /// this connection (a newer incarnation may own it). The cache goes
    /// with it; when the tuple names another connection neither changes,
    /// since the cache only ever holds an entry of the table and no other
    /// entry can name `id`.
    fn unbind_tuple(&mut self, id: Handle) {
        let Some(c) = self.conns.get(&id) else {
            return;
        };
        let key = (c.local.ip(), c.local.port(), c.remote.ip(), c.remote.port());
        if self.tuples.get(&key) == Some(&id) {
            self.tuples.remove(&key);
            self.last_tuple = None;
        }
    }

    fn find_listener(&self, addr: IpAddr, port: u16) -> Option<Handle> {
        let mut wildcard = None;
        for (id, l) in &self.listeners {
            if l.port != port {
                continue;
            }
            match l.addr {
                Some(a) if a == addr => return Some(*id),
                None if wildcard.is_none() => wildcard = Some(*id),
                _ => {}
            }
        }
        wildcard
    }

    /// Backlog in use: embryonic plus established-but-not-accepted children.
    fn backlog_used(&self, lid: Handle) -> usize {
        self.conns
            .values()
            .filter(|c| c.listener == Some(lid) && !c.has_handle && c.state != State::Closed)
            .count()
    }

    /// Makes room in a full backlog by deleting the listener's oldest
    /// half-open child: a SYN-RECEIVED TCB with no handle (RFC 4987 §3.4,
    /// "recycling the oldest half-open TCB"). A flood of spoofed SYNs then
    /// churns through the backlog instead of filling it for as long as its
    /// SYN-ACKs are retransmitted, and a legitimate handshake completes as
    /// long as its ACK arrives before `backlog` newer SYNs do. The TCB goes
    /// silently, as a TCB that never left SYN-RECEIVED has nothing to tell
    /// its (probably forged) peer; no row is recorded, as for any TCB
    /// deleted outside the table's events. Returns whether one was evicted.
    fn evict_half_open(&mut self, lid: Handle) -> bool {
        // Ids grow with creation, so the first match is the oldest.
        let oldest = self.conns.iter().find(|(_, c)| {
            c.listener == Some(lid) && !c.has_handle && c.state == State::SynReceived
        });
        let Some(id) = oldest.map(|(&id, _)| id) else {
            return false;
        };
        self.unbind_tuple(id);
        self.conns.remove(&id);
        self.stats.half_open_evicted = self.stats.half_open_evicted.saturating_add(1);
        true
    }

    /// A segment for a listener (RFC 9293 §3.10.7.2).
    fn listener_segment(&mut self, now: Instant, lid: Handle, seg: &SegmentIn<'_>) {
        let ev = connectionless_event(seg);
        if seg.flags.rst
            || seg.flags.ack
            || !seg.flags.syn
            || (seg.flags.fin && self.config.profile == Profile::Linux)
        {
            let mut ctx = Ctx::new(now, &self.params, &mut self.stats, &mut self.spare);
            if seg.flags.rst {
                ctx.record("LISTEN.RST");
            } else if seg.flags.ack {
                ctx.record("LISTEN.ACK");
                ctx.emit(&crate::conn::rst_for_ack(seg), Cause::Response);
            } else if !seg.flags.syn {
                ctx.record("LISTEN.other");
            } else {
                ctx.record("LX.LISTEN.SYN-FIN");
            }
            let (row, out) = (ctx.row, ctx.out);
            self.finish(now, Some(lid), (State::Listen, ev, State::Listen), row, out);
            return;
        }
        let limit = self
            .listeners
            .get(&lid)
            .map(|l| l.backlog.min(self.config.backlog))
            .unwrap_or(0);
        if self.backlog_used(lid) >= limit && !self.evict_half_open(lid) {
            // Bounded backlog, all of it established and waiting for
            // accept: the SYN is dropped, the peer retries.
            self.stats.backlog_full = self.stats.backlog_full.saturating_add(1);
            return;
        }
        let id = self.alloc_id();
        let local = SocketAddr::new(seg.dst, seg.dst_port);
        let remote = SocketAddr::new(seg.src, seg.src_port);
        let iss = self
            .isn
            .isn(now, seg.dst, seg.dst_port, seg.src, seg.src_port);
        let mut conn = Conn::new(
            ConnInit {
                local,
                remote,
                iss,
                listener: Some(lid),
                has_handle: false,
            },
            &self.params,
            now,
        );
        conn.state = State::Listen;
        let mut ctx = Ctx::new(now, &self.params, &mut self.stats, &mut self.spare);
        conn.open_from_listen(&mut ctx, seg, seg.flags.fin);
        let (row, out) = (ctx.row, ctx.out);
        let to = conn.state;
        self.bind_tuple((seg.dst, seg.dst_port, seg.src, seg.src_port), id);
        self.conns.insert(id, conn);
        self.finish(now, Some(id), (State::Listen, ev, to), row, out);
    }

    /// Runs `f` on connection `id` as the handling of `event`, logs the
    /// transition, queues emitted packets and tidies up afterwards.
    fn run<R>(
        &mut self,
        now: Instant,
        id: Handle,
        event: Event,
        f: impl FnOnce(&mut Conn, &mut Ctx<'_>) -> R,
    ) -> Option<R> {
        let conn = self.conns.get_mut(&id)?;
        let mut ctx = Ctx::new(now, &self.params, &mut self.stats, &mut self.spare);
        let from = conn.state;
        let r = f(conn, &mut ctx);
        let to = conn.state;
        let (row, out) = (ctx.row, ctx.out);
        self.finish(now, Some(id), (from, event, to), row, out);
        self.after(id);
        Some(r)
    }

    /// Queues the emitted packets and logs the transition `hop` =
    /// (from, event, to) when a row was recorded.
    fn finish(
        &mut self,
        now: Instant,
        conn: Option<Handle>,
        hop: (State, Event, State),
        row: Option<&'static str>,
        mut out: crate::spare::Emitted,
    ) {
        let (from, event, to) = hop;
        // Only a logged row gets a list of what it emitted: no allocation
        // for the log when it is off or the event took no row.
        let row = row.filter(|_| self.config.log_transitions);
        let mut emitted = Vec::new();
        if row.is_some() && !out.is_empty() {
            emitted.reserve_exact(out.len());
        }
        for (packet, summary) in out.drain(..) {
            if row.is_some() {
                emitted.push(summary);
            }
            self.stats.packets_out = self.stats.packets_out.saturating_add(1);
            self.tx.push_back(packet);
        }
        self.spare.give_list(out);
        if let Some(row) = row {
            self.transitions.push(Transition {
                at: now,
                conn,
                from,
                event,
                row,
                to,
                emitted,
            });
        }
    }

    /// Bookkeeping after an event: accept queue, listener attachment of a
    /// new incarnation, deletion of closed TCBs.
    fn after(&mut self, id: Handle) {
        let Some(conn) = self.conns.get_mut(&id) else {
            return;
        };
        if conn.reincarnated {
            conn.reincarnated = false;
            let (ip, port) = (conn.local.ip(), conn.local.port());
            let lid = self.find_listener(ip, port);
            if let Some(conn) = self.conns.get_mut(&id) {
                conn.listener = lid;
                if lid.is_some() {
                    conn.has_handle = false;
                    conn.queued_for_accept = false;
                }
            }
        }
        let Some(conn) = self.conns.get_mut(&id) else {
            return;
        };
        let state = conn.state;
        if state == State::Closed {
            let (has_handle, lid) = (conn.has_handle, conn.listener);
            self.unbind_tuple(id);
            if !has_handle {
                self.conns.remove(&id);
                if let Some(l) = lid.and_then(|l| self.listeners.get_mut(&l)) {
                    l.accept.retain(|c| *c != id);
                }
            }
            return;
        }
        if state != State::SynReceived && !conn.has_handle && !conn.queued_for_accept {
            if let Some(l) = conn.listener.and_then(|l| self.listeners.get_mut(&l)) {
                conn.queued_for_accept = true;
                l.accept.push_back(id);
            }
        }
    }

    /// The next packet to send, if any (whole IP packet, checksums set).
    pub fn poll_transmit(&mut self, _now: Instant) -> Option<Vec<u8>> {
        self.tx.pop_front()
    }

    /// Gives a packet from [`Endpoint::poll_transmit`] back once it is sent,
    /// so that its allocation carries a later packet (optional; a few
    /// buffers are kept, the rest freed).
    pub fn recycle(&mut self, packet: Vec<u8>) {
        self.spare.give_packet(packet);
    }

    /// When [`Endpoint::handle_timeout`] should be called next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.conns
            .values()
            .flat_map(|c| [c.rtx_deadline, c.delack_deadline, c.tw_deadline])
            .flatten()
            .min()
    }

    /// Fires every timer due at `now` (RFC 9293 §3.10.8).
    pub fn handle_timeout(&mut self, now: Instant) {
        let due: Vec<Handle> = self
            .conns
            .iter()
            .filter(|(_, c)| {
                [c.rtx_deadline, c.delack_deadline, c.tw_deadline]
                    .iter()
                    .flatten()
                    .any(|d| *d <= now)
            })
            .map(|(id, _)| *id)
            .collect();
        for id in due {
            let Some(conn) = self.conns.get(&id) else {
                continue;
            };
            if conn.tw_deadline.is_some_and(|d| d <= now) {
                let ev = Event::Timeout {
                    timeout: Timeout::TimeWait,
                };
                self.run(now, id, ev, |c, ctx| {
                    c.tw_deadline = None;
                    c.on_time_wait_timeout(ctx)
                });
                continue;
            }
            if conn.delack_deadline.is_some_and(|d| d <= now) {
                self.run(
                    now,
                    id,
                    Event::Timeout {
                        timeout: Timeout::User,
                    },
                    |c, ctx| c.on_delack_timeout(ctx),
                );
            }
            let Some(conn) = self.conns.get(&id) else {
                continue;
            };
            if conn.rtx_deadline.is_some_and(|d| d <= now) {
                if conn.retries_exhausted(&self.params) && conn.timer_is_rto() {
                    let ev = Event::Timeout {
                        timeout: Timeout::User,
                    };
                    self.run(now, id, ev, |c, ctx| {
                        c.rtx_deadline = None;
                        c.on_user_timeout(ctx)
                    });
                } else {
                    let ev = Event::Timeout {
                        timeout: Timeout::Retransmission,
                    };
                    self.run(now, id, ev, |c, ctx| {
                        c.on_rtx_timeout(ctx);
                    });
                }
            }
        }
    }

    // ----- user calls ----------------------------------------------------------

    fn call_event(call: UserCall) -> Event {
        Event::Call { call }
    }

    /// Passive OPEN (RFC 9293 §3.10.1): listens on `port` of `addr` (or of
    /// every local address when `None`).
    pub fn listen(
        &mut self,
        now: Instant,
        addr: Option<IpAddr>,
        port: u16,
        backlog: usize,
    ) -> Result<Handle> {
        if port == 0 {
            return Err(Error::InvalidInput);
        }
        if let Some(a) = addr {
            if !self.config.addrs.contains(&a) {
                return Err(Error::AddrNotAvailable);
            }
        }
        if self
            .listeners
            .values()
            .any(|l| l.port == port && (l.addr.is_none() || addr.is_none() || l.addr == addr))
        {
            return Err(Error::AlreadyExists);
        }
        let id = self.alloc_id();
        self.listeners.insert(
            id,
            Listener {
                addr,
                port,
                backlog: backlog.max(1),
                accept: VecDeque::new(),
            },
        );
        let mut ctx = Ctx::new(now, &self.params, &mut self.stats, &mut self.spare);
        ctx.record("CLOSED.OPEN.passive");
        let (row, out) = (ctx.row, ctx.out);
        self.finish(
            now,
            Some(id),
            (
                State::Closed,
                Self::call_event(UserCall::OpenPassive),
                State::Listen,
            ),
            row,
            out,
        );
        Ok(id)
    }

    /// Logs a user call that changes nothing but is answered by `row`.
    fn log_call(
        &mut self,
        now: Instant,
        h: Handle,
        state: State,
        call: UserCall,
        row: &'static str,
    ) {
        let mut ctx = Ctx::new(now, &self.params, &mut self.stats, &mut self.spare);
        ctx.record(row);
        let (row, out) = (ctx.row, ctx.out);
        self.finish(
            now,
            Some(h),
            (state, Self::call_event(call), state),
            row,
            out,
        );
    }

    /// OPEN on a socket that already exists (RFC 9293 §3.10.1). On a
    /// connection it is an error (`CONN.OPEN`). On a listener a passive OPEN
    /// is an error (`LISTEN.OPEN.passive`), and an active OPEN (`remote`
    /// given) turns the listener into an active connection from the same
    /// port (`LISTEN.OPEN.active`): the RFC lets a passive OPEN become active
    /// once the foreign socket is known. Returns the (unchanged) handle.
    pub fn reopen(
        &mut self,
        now: Instant,
        h: Handle,
        remote: Option<SocketAddr>,
    ) -> Result<Handle> {
        let call = if remote.is_some() {
            UserCall::OpenActive
        } else {
            UserCall::OpenPassive
        };
        if let Some(l) = self.listeners.get(&h) {
            let Some(remote) = remote else {
                self.log_call(now, h, State::Listen, call, "LISTEN.OPEN.passive");
                return Err(Error::AlreadyExists);
            };
            let lip = match l.addr {
                Some(a) => a,
                None => *self
                    .config
                    .addrs
                    .iter()
                    .find(|a| a.is_ipv4() == remote.is_ipv4())
                    .ok_or(Error::AddrNotAvailable)?,
            };
            if lip.is_ipv4() != remote.is_ipv4()
                || remote.port() == 0
                || remote.ip().is_unspecified()
            {
                return Err(Error::InvalidInput);
            }
            let key = (lip, l.port, remote.ip(), remote.port());
            if self.tuples.contains_key(&key) {
                return Err(Error::AlreadyExists);
            }
            self.listeners.remove(&h);
            let iss = self.isn.isn(now, lip, key.1, remote.ip(), remote.port());
            let init = ConnInit {
                local: SocketAddr::new(lip, key.1),
                remote,
                iss,
                listener: None,
                has_handle: true,
            };
            self.conns.insert(h, Conn::new(init, &self.params, now));
            self.bind_tuple(key, h);
            let mut ctx = Ctx::new(now, &self.params, &mut self.stats, &mut self.spare);
            if let Some(c) = self.conns.get_mut(&h) {
                c.open_active_as(&mut ctx, "LISTEN.OPEN.active");
            }
            let (row, out) = (ctx.row, ctx.out);
            self.finish(
                now,
                Some(h),
                (State::Listen, Self::call_event(call), State::SynSent),
                row,
                out,
            );
            self.after(h);
            return Ok(h);
        }
        self.user_conn(h)?;
        let state = self.conns.get(&h).map_or(State::Closed, |c| c.state);
        if state == State::Closed {
            return Err(Error::InvalidInput);
        }
        self.log_call(now, h, state, call, "CONN.OPEN");
        Err(Error::AlreadyConnected)
    }

    /// Takes the next established connection from a listener's queue.
    pub fn accept(&mut self, listener: Handle) -> Result<(Handle, SocketAddr)> {
        let l = self.listeners.get_mut(&listener).ok_or_else(|| {
            if self.conns.contains_key(&listener) {
                Error::InvalidInput
            } else {
                Error::InvalidHandle
            }
        })?;
        while let Some(id) = l.accept.pop_front() {
            if let Some(c) = self.conns.get_mut(&id) {
                c.has_handle = true;
                return Ok((id, c.remote));
            }
        }
        Err(Error::WouldBlock)
    }

    fn pick_port(&mut self, local: IpAddr, remote: SocketAddr) -> Result<u16> {
        for _ in 0..16384 {
            let p = self.next_port;
            self.next_port = if p == u16::MAX { 49152 } else { p + 1 };
            let used = self
                .tuples
                .contains_key(&(local, p, remote.ip(), remote.port()))
                || self.listeners.values().any(|l| l.port == p);
            if !used {
                return Ok(p);
            }
        }
        Err(Error::NoPortAvailable)
    }

    /// Active OPEN (RFC 9293 §3.10.1): sends a SYN. An unspecified local
    /// address picks the first configured one of the remote's family; port
    /// 0 picks an ephemeral port. Completion shows in [`Endpoint::status`].
    pub fn connect(
        &mut self,
        now: Instant,
        local: SocketAddr,
        remote: SocketAddr,
    ) -> Result<Handle> {
        let lip = if local.ip().is_unspecified() {
            *self
                .config
                .addrs
                .iter()
                .find(|a| a.is_ipv4() == remote.is_ipv4())
                .ok_or(Error::AddrNotAvailable)?
        } else if self.config.addrs.contains(&local.ip()) {
            local.ip()
        } else {
            return Err(Error::AddrNotAvailable);
        };
        if lip.is_ipv4() != remote.is_ipv4() || remote.port() == 0 || remote.ip().is_unspecified() {
            return Err(Error::InvalidInput);
        }
        let lport = if local.port() == 0 {
            self.pick_port(lip, remote)?
        } else {
            local.port()
        };
        let key = (lip, lport, remote.ip(), remote.port());
        if self.tuples.contains_key(&key) {
            return Err(Error::AlreadyExists);
        }
        let id = self.alloc_id();
        let iss = self.isn.isn(now, lip, lport, remote.ip(), remote.port());
        let conn = Conn::new(
            ConnInit {
                local: SocketAddr::new(lip, lport),
                remote,
                iss,
                listener: None,
                has_handle: true,
            },
            &self.params,
            now,
        );
        self.conns.insert(id, conn);
        self.bind_tuple(key, id);
        self.run(now, id, Self::call_event(UserCall::OpenActive), |c, ctx| {
            c.open_active(ctx)
        });
        Ok(id)
    }

    /// SEND (RFC 9293 §3.10.2): queues data and sends what the window
    /// allows; returns the octets taken.
    pub fn send(&mut self, now: Instant, h: Handle, data: &[u8]) -> Result<usize> {
        if self.listeners.contains_key(&h) {
            self.log_call(now, h, State::Listen, UserCall::Send, "LISTEN.SEND");
            return Err(Error::NotConnected);
        }
        self.user_conn(h)?;
        self.run(now, h, Self::call_event(UserCall::Send), |c, ctx| {
            c.send(ctx, data)
        })
        .unwrap_or(Err(Error::InvalidHandle))
    }

    /// RECEIVE (RFC 9293 §3.10.3): `Ok(0)` is the end of the stream.
    pub fn recv(&mut self, now: Instant, h: Handle, buf: &mut [u8]) -> Result<usize> {
        self.recv_into(now, h, buf)
    }

    /// RECEIVE without a copy by the stack (RFC 9293 §3.10.3): `f` is
    /// shown the readable octets in place (the first contiguous piece of
    /// the receive queue; call again for the rest) and returns how many it
    /// consumed, which leave the queue as [`Endpoint::recv`] would take
    /// them (window updates included). `Ok(0)` is the end of the stream;
    /// nothing readable yet is [`Error::WouldBlock`], and `f` is not
    /// called then.
    pub fn recv_with(
        &mut self,
        now: Instant,
        h: Handle,
        f: impl FnOnce(&[u8]) -> usize,
    ) -> Result<usize> {
        self.recv_into(now, h, crate::ring::InPlace(f))
    }

    fn recv_into(&mut self, now: Instant, h: Handle, buf: impl crate::ring::Sink) -> Result<usize> {
        if self.listeners.contains_key(&h) {
            self.log_call(now, h, State::Listen, UserCall::Receive, "PRE.RECEIVE");
            return Err(Error::NotConnected);
        }
        self.user_conn(h)?;
        self.run(now, h, Self::call_event(UserCall::Receive), |c, ctx| {
            c.receive(ctx, buf)
        })
        .unwrap_or(Err(Error::InvalidHandle))
    }

    fn user_conn(&self, h: Handle) -> Result<()> {
        match self.conns.get(&h) {
            Some(c) if c.has_handle => Ok(()),
            _ => Err(Error::InvalidHandle),
        }
    }

    /// Half-close: `Write` is CLOSE (RFC 9293 §3.10.4, our FIN follows the
    /// data); `Read` discards further input locally.
    pub fn shutdown(&mut self, now: Instant, h: Handle, how: Shutdown) -> Result<()> {
        if self.listeners.contains_key(&h) {
            return Err(Error::NotConnected);
        }
        self.user_conn(h)?;
        if matches!(how, Shutdown::Read | Shutdown::Both) {
            if let Some(c) = self.conns.get_mut(&h) {
                c.shutdown_read();
            }
        }
        if matches!(how, Shutdown::Write | Shutdown::Both) {
            let state = self.conns.get(&h).map(|c| c.state);
            if matches!(state, Some(State::Listen | State::SynSent | State::Closed)) {
                return Err(Error::NotConnected);
            }
            return self
                .run(now, h, Self::call_event(UserCall::Close), |c, ctx| {
                    c.close(ctx)
                })
                .unwrap_or(Err(Error::InvalidHandle));
        }
        Ok(())
    }

    /// CLOSE and release the handle (RFC 9293 §3.10.4): the connection
    /// finishes on its own (FIN, TIME-WAIT) after the handle is gone. On a
    /// listener: stops listening and aborts unaccepted connections.
    pub fn close(&mut self, now: Instant, h: Handle) -> Result<()> {
        if self.listeners.contains_key(&h) {
            self.close_listener(now, h, UserCall::Close);
            return Ok(());
        }
        self.user_conn(h)?;
        let r = self
            .run(now, h, Self::call_event(UserCall::Close), |c, ctx| {
                let r = c.close(ctx);
                c.has_handle = false;
                r
            })
            .unwrap_or(Err(Error::InvalidHandle));
        self.reap(h);
        r
    }

    /// ABORT (RFC 9293 §3.10.5): a RST where the state calls for one, the
    /// TCB and the handle are gone.
    pub fn abort(&mut self, now: Instant, h: Handle) -> Result<()> {
        if self.listeners.contains_key(&h) {
            self.close_listener(now, h, UserCall::Abort);
            return Ok(());
        }
        self.user_conn(h)?;
        self.run(now, h, Self::call_event(UserCall::Abort), |c, ctx| {
            c.abort(ctx);
            c.has_handle = false;
        });
        self.reap(h);
        Ok(())
    }

    /// Deletes a TCB that is closed and has no handle.
    fn reap(&mut self, id: Handle) {
        if self
            .conns
            .get(&id)
            .is_some_and(|c| c.state == State::Closed && !c.has_handle)
        {
            self.conns.remove(&id);
        }
    }

    fn close_listener(&mut self, now: Instant, lid: Handle, call: UserCall) {
        let mut ctx = Ctx::new(now, &self.params, &mut self.stats, &mut self.spare);
        if call == UserCall::Abort {
            ctx.record("PRE.ABORT");
        } else {
            ctx.record("LISTEN.CLOSE");
        }
        let (row, out) = (ctx.row, ctx.out);
        self.finish(
            now,
            Some(lid),
            (State::Listen, Self::call_event(call), State::Closed),
            row,
            out,
        );
        self.listeners.remove(&lid);
        let children: Vec<Handle> = self
            .conns
            .iter()
            .filter(|(_, c)| c.listener == Some(lid) && !c.has_handle)
            .map(|(id, _)| *id)
            .collect();
        for id in children {
            self.run(now, id, Self::call_event(UserCall::Abort), |c, ctx| {
                c.abort(ctx)
            });
            self.reap(id);
        }
    }

    /// The pending error of a connection (like `SO_ERROR`), cleared.
    pub fn take_error(&mut self, h: Handle) -> Result<Option<Error>> {
        match self.conns.get_mut(&h) {
            Some(c) if c.has_handle => Ok(c.error.take()),
            _ if self.listeners.contains_key(&h) => Ok(None),
            _ => Err(Error::InvalidHandle),
        }
    }

    /// STATUS (RFC 9293 §3.10.6): the TCB variables of a socket.
    pub fn status(&self, h: Handle) -> Result<Status> {
        if let Some(l) = self.listeners.get(&h) {
            let ip = l.addr.or_else(|| self.config.addrs.first().copied());
            let local = SocketAddr::new(
                ip.unwrap_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED)),
                l.port,
            );
            return Ok(Status {
                state: State::Listen,
                local,
                remote: None,
                snd_una: 0,
                snd_nxt: 0,
                snd_wnd: 0,
                rcv_nxt: 0,
                rcv_wnd: 0,
                srtt_us: None,
                rttvar_us: 0,
                rto_us: crate::rto::RtoEstimator::new(self.params.rto).rto_us(),
                cwnd: 0,
                ssthresh: 0,
                mss: 0,
                snd_wscale: 0,
                rcv_wscale: 0,
                readable: 0,
                send_queued: 0,
                fin_received: false,
                fin_outstanding: false,
                error: None,
            });
        }
        let c = self.conns.get(&h).ok_or(Error::InvalidHandle)?;
        Ok(Status {
            state: c.state,
            local: c.local,
            remote: Some(c.remote),
            snd_una: c.snd_una.0,
            snd_nxt: c.snd_nxt.0,
            snd_wnd: c.snd_wnd,
            rcv_nxt: c.rcv_nxt.0,
            rcv_wnd: c.rcv_wnd(&self.params),
            srtt_us: c.rto.srtt_us(),
            rttvar_us: c.rto.rttvar_us(),
            rto_us: c.rto.rto_us(),
            cwnd: c.cc.cwnd,
            ssthresh: c.cc.ssthresh,
            mss: c.snd_mss,
            snd_wscale: c.snd_wscale,
            rcv_wscale: c.rcv_wscale,
            readable: c.readable(),
            send_queued: c.send_queued(),
            fin_received: c.fin_received,
            fin_outstanding: c.fin_outstanding(),
            error: c.error,
        })
    }

    /// Checks internal invariants (for tests and fuzzers): SND.UNA ≤
    /// SND.NXT, buffers within their bounds. Returns a description of the
    /// first violation.
    pub fn check_invariants(&self) -> std::result::Result<(), String> {
        for (id, c) in &self.conns {
            if c.snd_una.gt(c.snd_nxt) {
                return Err(format!(
                    "{id:?}: SND.UNA {} > SND.NXT {}",
                    c.snd_una, c.snd_nxt
                ));
            }
            if c.readable().saturating_add(c.reasm_len()) > self.params.recv_buf {
                return Err(format!("{id:?}: receive memory beyond the buffer"));
            }
            if c.send_queued() > self.params.send_buf {
                return Err(format!("{id:?}: send queue beyond the buffer"));
            }
        }
        Ok(())
    }
}
