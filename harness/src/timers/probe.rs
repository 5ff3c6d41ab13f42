//! The driver of the timer probes: the own stack in-process on a virtual
//! clock, and a scripted peer that answers (or does not) at chosen times.
//! Every packet either way is logged with its virtual time, so the
//! observation code reads the same log a pcap would give.

use super::history::Dir;
use crate::run::target::Micros;
use crate::run::wire::{self, Outgoing, WireSegment};
use crate::script::{TcpFlags, TcpOpt};
use std::net::SocketAddr;
use tcp_spec::Profile;
use tcp_stack::{Config, ConnId, Endpoint, Faults, Instant};

pub use crate::drive::rig::{PEER_ADDR as PEER, STACK_ADDR as STACK, STACK_PORT};
/// The MSS the peer announces and the size of its full-sized segments.
pub const PEER_MSS: u16 = 1000;

/// One logged packet.
#[derive(Clone, Debug)]
pub struct Logged {
    /// Virtual time since the probe began (µs).
    pub at: Micros,
    pub dir: Dir,
    pub seg: WireSegment,
    pub bytes: Vec<u8>,
}

/// What a probe could not do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProbeError {
    #[error("endpoint: {0}")]
    Endpoint(String),
    #[error("packet: {0}")]
    Packet(String),
    #[error("{0}")]
    Stuck(String),
}

/// How the stack under probe is built.
#[derive(Clone, Copy, Debug)]
pub struct StackSetup {
    pub profile: Profile,
    pub faults: Faults,
    /// Seeds the ISN secret.
    pub seed: u64,
    pub recv_buf: usize,
}

impl StackSetup {
    pub fn new(profile: Profile, faults: Faults, seed: u64) -> StackSetup {
        StackSetup {
            profile,
            faults,
            seed,
            recv_buf: 65535,
        }
    }
}

/// One connection of the own stack and its peer.
pub struct Probe {
    pub ep: Endpoint,
    now: Instant,
    start: Instant,
    pub log: Vec<Logged>,
    /// The stack's socket of the connection once there is one.
    pub conn: Option<ConnId>,
    pub listener: Option<ConnId>,
    /// The peer's port of the connection.
    pub peer_port: u16,
    /// The stack's port of the connection.
    pub stack_port: u16,
    /// The peer's next sequence number and what it acknowledges.
    pub peer_nxt: u32,
    pub peer_ack: u32,
    /// The window the peer advertises.
    pub peer_wnd: u16,
}

/// SplitMix64: a small deterministic generator for secrets and samples.
pub fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn flags(s: &str) -> TcpFlags {
    TcpFlags {
        syn: s.contains('S'),
        ack: s.contains('.'),
        fin: s.contains('F'),
        rst: s.contains('R'),
        psh: s.contains('P'),
        ..TcpFlags::default()
    }
}

impl Probe {
    pub fn new(setup: StackSetup) -> Result<Probe, ProbeError> {
        let mut config = Config::new(vec![STACK]);
        config.profile = setup.profile;
        config.recv_buf = setup.recv_buf;
        config.nagle = false;
        config.faults = setup.faults;
        let mut rng = setup.seed;
        for chunk in config.secret.chunks_mut(8) {
            chunk.copy_from_slice(&splitmix(&mut rng).to_le_bytes());
        }
        let ep = Endpoint::new(config).map_err(|e| ProbeError::Endpoint(e.to_string()))?;
        let start = Instant::from_micros(10_000_000);
        Ok(Probe {
            ep,
            now: start,
            start,
            log: Vec::new(),
            conn: None,
            listener: None,
            peer_port: 40_000,
            stack_port: STACK_PORT,
            peer_nxt: 1_000_000,
            peer_ack: 0,
            peer_wnd: 65_535,
        })
    }

    /// Virtual time since the probe began (µs).
    pub fn now(&self) -> Micros {
        self.now.as_micros() - self.start.as_micros()
    }

    /// Collects what the stack sends now; returns the new segments.
    pub fn drain(&mut self) -> Vec<WireSegment> {
        let mut out = Vec::new();
        while let Some(bytes) = self.ep.poll_transmit(self.now) {
            if let Ok(seg) = wire::decode(&bytes) {
                if seg.flags.syn {
                    self.stack_port = seg.src_port;
                }
                out.push(seg.clone());
                self.log.push(Logged {
                    at: self.now(),
                    dir: Dir::Out,
                    seg,
                    bytes,
                });
            }
        }
        out
    }

    /// Lets virtual time run to `to` (µs since the start), firing the
    /// stack's timers on the way; returns what it sent.
    pub fn advance_to(&mut self, to: Micros) -> Vec<WireSegment> {
        let limit = self.start.plus_micros(to);
        let mut out = self.drain();
        while let Some(t) = self.ep.poll_timeout() {
            if t > limit {
                break;
            }
            self.now = self.now.max(t);
            self.ep.handle_timeout(self.now);
            out.extend(self.drain());
        }
        self.now = self.now.max(limit);
        out.extend(self.drain());
        out
    }

    /// Runs the stack's timers until it sends something or `limit` µs
    /// pass; returns what it sent (empty when nothing came).
    pub fn next_output(&mut self, limit: Micros) -> Vec<WireSegment> {
        let end = self.now() + limit;
        loop {
            let out = self.drain();
            if !out.is_empty() {
                return out;
            }
            match self.ep.poll_timeout() {
                Some(t) if t <= self.start.plus_micros(end) => {
                    self.now = self.now.max(t);
                    self.ep.handle_timeout(self.now);
                }
                _ => {
                    self.now = self.now.max(self.start.plus_micros(end));
                    return Vec::new();
                }
            }
        }
    }

    /// Fires the stack's next timer if it is due by `limit` µs; returns
    /// whether it did.
    pub fn fire_next(&mut self, limit: Micros) -> bool {
        match self.ep.poll_timeout() {
            Some(t) if t <= self.start.plus_micros(limit) => {
                self.now = self.now.max(t);
                self.ep.handle_timeout(self.now);
                self.drain();
                true
            }
            _ => false,
        }
    }

    /// Sends a segment from the peer: `f` in packetdrill letters.
    pub fn inject(
        &mut self,
        f: &str,
        seq: u32,
        ack: u32,
        len: u32,
        opts: &[TcpOpt],
    ) -> Result<Vec<WireSegment>, ProbeError> {
        let o = Outgoing {
            src: PEER,
            dst: STACK,
            src_port: self.peer_port,
            dst_port: self.stack_port,
            seq,
            ack,
            flags: flags(f),
            win: self.peer_wnd,
            urg: 0,
            options: opts,
            payload_len: len,
        };
        let bytes = wire::build(&o).map_err(ProbeError::Packet)?;
        let seg = wire::decode(&bytes).map_err(ProbeError::Packet)?;
        self.log.push(Logged {
            at: self.now(),
            dir: Dir::In,
            seg,
            bytes: bytes.clone(),
        });
        self.ep.handle_packet(self.now, &bytes);
        Ok(self.drain())
    }

    /// An ACK from the peer for everything up to `ack`.
    pub fn ack(&mut self, ack: u32) -> Result<Vec<WireSegment>, ProbeError> {
        self.peer_ack = ack;
        self.inject(".", self.peer_nxt, ack, 0, &[])
    }

    /// Data from the peer at its SND.NXT, then SND.NXT advances.
    pub fn data(&mut self, len: u32) -> Result<Vec<WireSegment>, ProbeError> {
        let seq = self.peer_nxt;
        self.peer_nxt = self.peer_nxt.wrapping_add(len);
        self.inject(".", seq, self.peer_ack, len, &[])
    }

    /// Passive open on the stack, the peer's SYN at once and its ACK of the
    /// SYN-ACK `delay` µs later (the first RTT sample). Returns the stack's
    /// ISN.
    pub fn open(&mut self, delay: Micros) -> Result<u32, ProbeError> {
        if self.listener.is_none() {
            let l = self
                .ep
                .listen(self.now, Some(STACK), STACK_PORT, 128)
                .map_err(|e| ProbeError::Endpoint(e.to_string()))?;
            self.listener = Some(l);
        }
        self.stack_port = STACK_PORT;
        let isn = self.peer_nxt;
        let out = self.inject("S", isn, 0, 0, &[TcpOpt::Mss(PEER_MSS)])?;
        self.peer_nxt = isn.wrapping_add(1);
        let synack = out
            .iter()
            .find(|s| s.flags.syn && s.flags.ack)
            .ok_or_else(|| ProbeError::Stuck("no SYN-ACK to the peer's SYN".into()))?
            .clone();
        let to = self.now() + delay;
        self.advance_to(to);
        self.ack(synack.seq.wrapping_add(1))?;
        let l = self
            .listener
            .ok_or_else(|| ProbeError::Stuck("no listener".into()))?;
        let (c, _) = self
            .ep
            .accept(l)
            .map_err(|e| ProbeError::Stuck(format!("accept: {e}")))?;
        self.conn = Some(c);
        Ok(synack.seq)
    }

    /// The application on the stack writes `len` octets.
    pub fn send(&mut self, len: usize) -> Result<Vec<WireSegment>, ProbeError> {
        let c = self
            .conn
            .ok_or_else(|| ProbeError::Stuck("no connection".into()))?;
        let data = vec![b'x'; len];
        self.ep
            .send(self.now, c, &data)
            .map_err(|e| ProbeError::Endpoint(e.to_string()))?;
        Ok(self.drain())
    }

    /// Active open from the stack to the peer (for SYN probes).
    pub fn connect(&mut self) -> Result<Vec<WireSegment>, ProbeError> {
        let c = self
            .ep
            .connect(
                self.now,
                SocketAddr::new(STACK, 0),
                SocketAddr::new(PEER, self.peer_port),
            )
            .map_err(|e| ProbeError::Endpoint(e.to_string()))?;
        self.conn = Some(c);
        Ok(self.drain())
    }

    /// Whether the connection is gone (given up, reset or closed).
    pub fn closed(&self) -> bool {
        match self.conn {
            Some(c) => self
                .ep
                .status(c)
                .map(|s| s.state == tcp_spec::State::Closed)
                .unwrap_or(true),
            None => true,
        }
    }

    /// The packets logged, as (time, direction, segment).
    pub fn segments(&self) -> impl Iterator<Item = (Micros, Dir, &WireSegment)> {
        self.log.iter().map(|l| (l.at, l.dir, &l.seg))
    }
}
