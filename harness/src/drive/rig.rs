//! A rig: one own-stack endpoint under test (192.0.2.1:8080) and a scripted
//! peer (192.0.2.2:40000) that can bring a connection into any of the eleven
//! states of RFC 9293 §3.3.2 by exchanging real packets with it. The
//! endpoint is the one node of an in-memory network ([`tcp_stack::net`]);
//! the peer stands outside it and reads what the stack sends there.

use super::concretize::{Concrete, TcbView};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use tcp_spec::{Profile, State};
use tcp_stack::net::{Net, NodeId, Perfect};
use tcp_stack::packet::{self, Flags, Segment, TcpOptions};
use tcp_stack::{Config, Endpoint, Handle, Instant, SeqNum, Status, Transition};

/// The stack's address (documentation range, RFC 5737).
pub const STACK_ADDR: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
/// The scripted peer's address.
pub const PEER_ADDR: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2));
pub const STACK_PORT: u16 = 8080;
pub const PEER_PORT: u16 = 40000;
/// The stack's node in the rig's network.
const STACK: NodeId = 0;
/// At most this many rounds of output at one instant (one node: two do).
const ROUNDS: usize = 16;

/// Parameters of a rig, chosen at random by the property suites.
#[derive(Clone, Debug)]
pub struct Setup {
    pub profile: Profile,
    pub peer_isn: u32,
    /// The window the peer advertises (unscaled; the peer never scales).
    pub peer_wnd: u16,
    pub peer_mss: u16,
    /// The stack's receive buffer (small values make zero windows easy).
    pub recv_buf: usize,
    pub secret: u8,
}

impl Setup {
    pub fn new(profile: Profile) -> Setup {
        Setup {
            profile,
            peer_isn: 1_000_000,
            peer_wnd: 16_384,
            peer_mss: 1460,
            recv_buf: 4096,
            secret: 1,
        }
    }
}

/// Extra conditions a preamble establishes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Variant {
    /// The stack has sent data the peer has not acknowledged.
    pub unacked_data: bool,
    /// The stack's receive window is closed (RCV.WND = 0).
    pub zero_window: bool,
    /// Reach the state by an active OPEN rather than a passive one.
    pub active: bool,
}

/// Why a rig could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DriveError {
    #[error("endpoint: {0}")]
    Endpoint(String),
    #[error("preamble to {want}: stack is in {got} ({detail})")]
    Preamble {
        want: State,
        got: String,
        detail: String,
    },
    #[error("{0} cannot be set up with this variant")]
    Unsupported(State),
}

/// The endpoint under test and the peer's knowledge of the connection.
#[derive(Clone)]
pub struct Rig {
    /// The network of the endpoint under test, its clock, and what the
    /// stack sent to the peer.
    pub net: Net<Perfect>,
    pub setup: Setup,
    pub listener: Option<Handle>,
    /// The connection under test, once one exists.
    pub conn: Option<Handle>,
    /// The stack's port of the connection (ephemeral after an active OPEN).
    pub stack_port: u16,
    /// The peer's next sequence number.
    pub peer_nxt: u32,
    /// The stack's initial sequence number, learned from its SYN.
    pub stack_iss: Option<u32>,
    /// Segments the stack has sent and the rig has not yet taken.
    pub emitted: Vec<Segment>,
    /// The row ids of every transition the stack logged, in order.
    pub rows: Vec<&'static str>,
    /// Whether the stack's packets are parsed into [`Rig::emitted`] (on by
    /// default). A walk, which checks each step's transitions and their
    /// segment summaries instead, turns it off: then only SYNs are parsed
    /// (for the ISS and port) and each packet's buffer goes back to the
    /// endpoint.
    pub keep_emitted: bool,
}

impl Rig {
    pub fn new(setup: Setup) -> Result<Rig, DriveError> {
        let mut config = Config::new(vec![STACK_ADDR]);
        config.profile = setup.profile;
        config.recv_buf = setup.recv_buf;
        config.secret = [setup.secret; 32];
        config.log_transitions = true;
        config.nagle = false;
        let ep = Endpoint::new(config).map_err(|e| DriveError::Endpoint(e.to_string()))?;
        let mut net = Net::new(Perfect, Instant::from_micros(5_000_000));
        net.keep_outside = true;
        net.add(ep, vec![STACK_ADDR]);
        Ok(Rig {
            net,
            peer_nxt: setup.peer_isn,
            setup,
            listener: None,
            conn: None,
            stack_port: STACK_PORT,
            stack_iss: None,
            emitted: Vec::new(),
            rows: Vec::new(),
            keep_emitted: true,
        })
    }

    /// Collects the stack's output and transition log after an action;
    /// returns the transitions of that action.
    fn settle(&mut self) -> Vec<Transition> {
        self.net.collect_output();
        for bytes in std::mem::take(&mut self.net.outside) {
            let parsed = (self.keep_emitted || carries_syn(&bytes))
                .then(|| packet::parse_in(&bytes, |a| a == PEER_ADDR).ok())
                .flatten();
            if let Some(seg) = parsed {
                // Every SYN carries the ISS of its incarnation.
                if seg.flags.syn {
                    self.stack_iss = Some(seg.seq.0);
                    self.stack_port = seg.src_port;
                }
                if self.keep_emitted {
                    self.emitted.push(seg.owned());
                }
            }
            if !self.keep_emitted {
                self.ep_mut().recycle(bytes);
            }
        }
        let t = self.ep_mut().drain_transitions();
        if self.conn.is_none() {
            // A passive open's connection appears in its first transition.
            self.conn = t
                .iter()
                .find(|t| t.from == State::Listen && t.to == State::SynReceived)
                .and_then(|t| t.conn);
        }
        self.rows.extend(t.iter().map(|t| t.row));
        t
    }

    /// The endpoint under test.
    pub fn ep(&self) -> &Endpoint {
        &self.net.eps[STACK]
    }

    fn ep_mut(&mut self) -> &mut Endpoint {
        &mut self.net.eps[STACK]
    }

    /// The rig's virtual clock.
    pub fn now(&self) -> Instant {
        self.net.now
    }

    /// Takes the segments the stack has sent so far.
    pub fn take_emitted(&mut self) -> Vec<Segment> {
        std::mem::take(&mut self.emitted)
    }

    /// Sends a segment from the peer; returns the transitions it caused.
    pub fn inject(&mut self, c: &Concrete) -> Vec<Transition> {
        let bytes = self.segment_bytes(c);
        self.inject_bytes(&bytes)
    }

    /// The IPv4 packet the peer would send for `c` (empty if it cannot be
    /// built).
    pub fn segment_bytes(&self, c: &Concrete) -> Vec<u8> {
        let seg = Segment {
            src: PEER_ADDR,
            dst: STACK_ADDR,
            src_port: PEER_PORT,
            dst_port: self.stack_port,
            seq: SeqNum(c.seq),
            ack: SeqNum(c.ack.unwrap_or(0)),
            flags: Flags {
                syn: c.syn,
                ack: c.ack.is_some(),
                fin: c.fin,
                rst: c.rst,
                psh: c.payload_len > 0,
                urg: false,
            },
            window: self.setup.peer_wnd,
            options: TcpOptions {
                mss: c.syn.then_some(self.setup.peer_mss),
                ..TcpOptions::default()
            },
            payload: vec![b'x'; c.payload_len],
        };
        packet::build(&seg).unwrap_or_default()
    }

    /// Hands raw bytes to the stack as an arriving packet.
    pub fn inject_bytes(&mut self, bytes: &[u8]) -> Vec<Transition> {
        self.net.inject(STACK, bytes);
        self.settle()
    }

    /// Moves the clock forward by `us` microseconds, firing due timers.
    pub fn advance(&mut self, us: u64) -> Vec<Transition> {
        let until = self.now().plus_micros(us);
        self.net.advance_to(until, ROUNDS);
        self.settle()
    }

    /// Jumps to the stack's next timer and fires it.
    pub fn fire_next_timer(&mut self) -> Vec<Transition> {
        match self.ep().poll_timeout() {
            Some(t) => {
                self.net.now = self.net.now.max(t);
                self.net.fire_due_timers();
                self.settle()
            }
            None => Vec::new(),
        }
    }

    /// Runs a user call on the connection under test (or the endpoint).
    pub fn with_ep<R>(
        &mut self,
        f: impl FnOnce(&mut Endpoint, Instant, Option<Handle>) -> R,
    ) -> (R, Vec<Transition>) {
        let r = f(&mut self.net.eps[STACK], self.net.now, self.conn);
        (r, self.settle())
    }

    /// The status of the connection under test, or of the listener while
    /// there is no connection (`None` once it is gone).
    pub fn status(&self) -> Option<Status> {
        self.conn
            .or(self.listener)
            .and_then(|c| self.ep().status(c).ok())
    }

    /// The connection's state (CLOSED when there is none).
    pub fn state(&self) -> State {
        state_of(self.status().as_ref())
    }

    /// What the peer knows of the connection under test, for aiming
    /// segments (`None` without a connection).
    pub fn view(&self) -> Option<TcbView> {
        self.view_of(&self.status()?)
    }

    /// [`Rig::view`] from a [`Rig::status`] taken since the last action
    /// (one status serves every check of a step).
    pub fn view_of(&self, s: &Status) -> Option<TcbView> {
        self.conn?;
        Some(TcbView {
            rcv_nxt: s.rcv_nxt,
            rcv_wnd: s.rcv_wnd,
            snd_una: s.snd_una,
            snd_nxt: s.snd_nxt,
            // The peer never advertises more than its fixed, unscaled window.
            max_snd_wnd: u32::from(self.setup.peer_wnd),
            fin_outstanding: s.fin_outstanding,
            iss: self.stack_iss.unwrap_or(0),
        })
    }

    // --- preamble steps -------------------------------------------------

    fn peer_segment(
        &mut self,
        syn: bool,
        fin: bool,
        ack: Option<u32>,
        payload_len: usize,
    ) -> Vec<Transition> {
        let c = Concrete {
            syn,
            fin,
            rst: false,
            ack,
            seq: self.peer_nxt,
            payload_len,
        };
        self.peer_nxt = self.peer_nxt.wrapping_add(c.seg_len());
        self.inject(&c)
    }

    fn listen(&mut self) -> Result<(), DriveError> {
        let (r, _) = self.with_ep(|ep, now, _| ep.listen(now, Some(STACK_ADDR), STACK_PORT, 8));
        self.listener = Some(r.map_err(|e| DriveError::Endpoint(e.to_string()))?);
        Ok(())
    }

    fn una(&self) -> u32 {
        self.view().map_or(0, |v| v.snd_una)
    }

    fn nxt(&self) -> u32 {
        self.view().map_or(0, |v| v.snd_nxt)
    }

    fn app_send(&mut self, n: usize) {
        let data = vec![b'd'; n];
        let _ = self.with_ep(|ep, now, c| c.map(|c| ep.send(now, c, &data)));
    }

    /// CLOSE in RFC 9293's sense (§3.10.4: no more data from us) keeps the
    /// socket; with sockets that is `shutdown(SHUT_WR)`.
    fn app_close(&mut self) {
        let _ =
            self.with_ep(|ep, now, c| c.map(|c| ep.shutdown(now, c, tcp_stack::Shutdown::Write)));
    }

    /// Fills the stack's receive window with in-order data it never reads.
    fn fill_window(&mut self) {
        for _ in 0..64 {
            let wnd = self.view().map_or(0, |v| v.rcv_wnd);
            if wnd == 0 {
                break;
            }
            let n = (wnd as usize).min(usize::from(self.setup.peer_mss));
            let ack = self.una();
            self.peer_segment(false, false, Some(ack), n);
        }
    }

    fn established(&mut self, v: Variant) -> Result<(), DriveError> {
        if v.active {
            let remote = SocketAddr::new(PEER_ADDR, PEER_PORT);
            let (r, _) =
                self.with_ep(|ep, now, _| ep.connect(now, SocketAddr::new(STACK_ADDR, 0), remote));
            self.conn = Some(r.map_err(|e| DriveError::Endpoint(e.to_string()))?);
            let iss = self.stack_iss.unwrap_or(0);
            self.peer_segment(true, false, Some(iss.wrapping_add(1)), 0);
        } else {
            self.listen()?;
            self.peer_segment(true, false, None, 0);
            let iss = self.stack_iss.unwrap_or(0);
            self.peer_segment(false, false, Some(iss.wrapping_add(1)), 0);
            let listener = self.listener;
            let (r, _) = self.with_ep(|ep, _, _| listener.map(|l| ep.accept(l)));
            if let Some(Ok((c, _))) = r {
                self.conn = Some(c);
            }
        }
        if v.zero_window {
            self.fill_window();
        }
        Ok(())
    }

    /// A fresh rig whose connection is in `state` under `variant`.
    pub fn to_state(setup: Setup, state: State, v: Variant) -> Result<Rig, DriveError> {
        let mut rig = Rig::new(setup)?;
        let passive_only = !v.active;
        match state {
            State::Closed => {}
            State::Listen => rig.listen()?,
            State::SynSent => {
                let remote = SocketAddr::new(PEER_ADDR, PEER_PORT);
                let (r, _) = rig
                    .with_ep(|ep, now, _| ep.connect(now, SocketAddr::new(STACK_ADDR, 0), remote));
                rig.conn = Some(r.map_err(|e| DriveError::Endpoint(e.to_string()))?);
            }
            State::SynReceived if passive_only => {
                rig.listen()?;
                rig.peer_segment(true, false, None, 0);
            }
            State::SynReceived => {
                // Simultaneous open (RFC 9293 §3.5): our SYN crosses the peer's.
                let remote = SocketAddr::new(PEER_ADDR, PEER_PORT);
                let (r, _) = rig
                    .with_ep(|ep, now, _| ep.connect(now, SocketAddr::new(STACK_ADDR, 0), remote));
                rig.conn = Some(r.map_err(|e| DriveError::Endpoint(e.to_string()))?);
                rig.peer_segment(true, false, None, 0);
            }
            _ => {
                rig.established(v)?;
                let want_data = v.unacked_data;
                match state {
                    State::Established => {
                        if want_data {
                            rig.app_send(100);
                        }
                    }
                    State::FinWait1 | State::FinWait2 | State::Closing | State::TimeWait => {
                        if want_data && matches!(state, State::FinWait1 | State::Closing) {
                            rig.app_send(100);
                        }
                        rig.app_close();
                        match state {
                            State::FinWait2 => {
                                let n = rig.nxt();
                                rig.peer_segment(false, false, Some(n), 0);
                            }
                            State::Closing => {
                                let u = rig.una();
                                rig.peer_segment(false, true, Some(u), 0);
                            }
                            State::TimeWait => {
                                let n = rig.nxt();
                                rig.peer_segment(false, false, Some(n), 0);
                                rig.peer_segment(false, true, Some(n), 0);
                            }
                            _ => {}
                        }
                    }
                    State::CloseWait | State::LastAck => {
                        let u = rig.una();
                        rig.peer_segment(false, true, Some(u), 0);
                        if want_data {
                            rig.app_send(100);
                        }
                        if state == State::LastAck {
                            rig.app_close();
                        }
                    }
                    _ => return Err(DriveError::Unsupported(state)),
                }
            }
        }
        let got = rig.state();
        let window_ok = !v.zero_window || rig.view().is_some_and(|t| t.rcv_wnd == 0);
        let data_ok = !v.unacked_data
            || rig
                .view()
                .is_some_and(|t| t.snd_nxt.wrapping_sub(t.snd_una) > u32::from(t.fin_outstanding));
        if got != state || !window_ok || !data_ok {
            return Err(DriveError::Preamble {
                want: state,
                got: got.name().to_string(),
                detail: format!("{v:?}, view {:?}", rig.view()),
            });
        }
        rig.emitted.clear();
        Ok(rig)
    }
}

/// Whether a packet the stack sent has the SYN bit (RFC 9293 §3.1: the
/// control bits are in the 14th octet of the TCP header), read in place; a
/// packet too short to tell counts as one, so that the parser decides.
fn carries_syn(packet: &[u8]) -> bool {
    let ip_header = match packet.first().map(|b| b >> 4) {
        Some(4) => usize::from(packet[0] & 0x0f) * 4,
        _ => 40, // IPv6 without extension headers (the stack sends none)
    };
    packet
        .get(ip_header + 13)
        .is_none_or(|flags| flags & 0x02 != 0)
}

/// The state a [`Rig::status`] shows (CLOSED without a connection).
pub fn state_of(status: Option<&Status>) -> State {
    status.map_or(State::Closed, |s| s.state)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_state_is_reachable() {
        let mut failures = Vec::new();
        for profile in Profile::ALL {
            for state in State::ALL {
                for v in [
                    Variant::default(),
                    Variant {
                        unacked_data: true,
                        ..Variant::default()
                    },
                    Variant {
                        active: true,
                        ..Variant::default()
                    },
                ] {
                    let needs_conn = !matches!(
                        state,
                        State::Closed | State::Listen | State::SynSent | State::SynReceived
                    );
                    if (v.unacked_data || v.active) && !needs_conn
                        || (v.unacked_data && matches!(state, State::FinWait2 | State::TimeWait))
                    {
                        continue;
                    }
                    if let Err(e) = Rig::to_state(Setup::new(profile), state, v) {
                        failures.push(format!("{profile} {state} {v:?}: {e}"));
                    }
                }
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }

    #[test]
    fn zero_window_in_established() {
        let rig = Rig::to_state(
            Setup::new(Profile::Rfc9293),
            State::Established,
            Variant {
                zero_window: true,
                ..Variant::default()
            },
        );
        assert!(rig.is_ok(), "{:?}", rig.err());
    }
}
