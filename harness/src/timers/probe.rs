//! The driver of the timer probes: a target of the runner ([`Target`]: the
//! own stack in-process on its virtual clock, or the kernel behind a TUN
//! device in real time) and a scripted peer that answers, or does not, at
//! chosen times. Every packet either way is logged with its time, so the
//! observation code reads the same log a pcap would give.

use super::history::Dir;
use crate::run::own::OwnTarget;
use crate::run::target::{
    CallOutcome, CallReturn, Fd, Micros, OptValue, SockOpt, SocketCall, SysctlOutcome, Target,
    TargetError, O_NONBLOCK,
};
use crate::run::wire::{self, Outgoing, WireSegment};
use crate::script::{TcpFlags, TcpOpt};
use tcp_spec::Profile;
use tcp_stack::Faults;

pub use crate::drive::rig::{PEER_ADDR as PEER, STACK_ADDR as STACK, STACK_PORT};
/// The MSS the peer announces.
pub const PEER_MSS: u16 = 1000;
/// The peer's port (the one a target's `connect` goes to).
pub const PEER_PORT: u16 = 40_000;
/// The sysctl that turns Linux's tail loss probe off (`tcp_early_retrans`
/// 3, the default, enables it; 0 leaves plain RTO recovery).
pub const TLP_SYSCTL: (&str, &str) = ("net.ipv4.tcp_early_retrans", "0");
/// On a real clock, how often a wait looks at the socket's error.
const REAL_STEP: Micros = 50_000;

/// One logged packet.
#[derive(Clone, Debug)]
pub struct Logged {
    /// Time since the probe began (µs).
    pub at: Micros,
    pub dir: Dir,
    pub seg: WireSegment,
    pub bytes: Vec<u8>,
}

/// What a probe could not do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProbeError {
    #[error("target: {0}")]
    Target(String),
    #[error("packet: {0}")]
    Packet(String),
    #[error("{0}")]
    Stuck(String),
}

/// How the target under probe is built.
#[derive(Clone, Copy, Debug)]
pub struct StackSetup {
    pub profile: Profile,
    /// Seeded bugs (own only).
    pub faults: Faults,
    /// Seeds the own stack's ISN secret.
    pub seed: u64,
    /// The receive buffer to ask for (`SO_RCVBUF`; the own stack's
    /// configuration).
    pub recv_buf: usize,
    /// Which target.
    pub target: super::TimerTarget,
}

impl StackSetup {
    pub fn new(profile: Profile, faults: Faults, seed: u64) -> StackSetup {
        StackSetup {
            profile,
            faults,
            seed,
            recv_buf: 65535,
            target: super::TimerTarget::Own,
        }
    }
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

fn target_err(e: impl std::fmt::Display) -> ProbeError {
    ProbeError::Target(e.to_string())
}

/// One connection of the target and its peer.
pub struct Probe {
    target: Box<dyn Target>,
    pub log: Vec<Logged>,
    /// The socket of the connection under probe, once there is one.
    pub conn: Option<Fd>,
    listener: Option<Fd>,
    /// The peer's port of the connection.
    pub peer_port: u16,
    /// The stack's port of the connection.
    pub stack_port: u16,
    /// The peer's next sequence number and what it acknowledges.
    pub peer_nxt: u32,
    pub peer_ack: u32,
    /// The window the peer advertises.
    pub peer_wnd: u16,
    recv_buf: usize,
}

impl Probe {
    pub fn new(setup: StackSetup) -> Result<Probe, ProbeError> {
        let target: Box<dyn Target> = if setup.target == super::TimerTarget::Smoltcp {
            Box::new(crate::run::smoltcp_target::SmoltcpTarget::smoltcp())
        } else if setup.target == super::TimerTarget::Linux {
            let mut t = crate::run::linux::LinuxTarget::new().map_err(target_err)?;
            // RFC 8985's tail loss probe would retransmit at
            // min(2·SRTT + rto_min, RTO) before the RTO fires: off in the
            // probe's namespace, so that the first retransmission is the
            // RTO's (the timer RFC 6298 specifies).
            match t.sysctl(TLP_SYSCTL.0, TLP_SYSCTL.1) {
                SysctlOutcome::Applied => {}
                other => {
                    return Err(ProbeError::Target(format!(
                        "{}={}: {other:?}",
                        TLP_SYSCTL.0, TLP_SYSCTL.1
                    )))
                }
            }
            Box::new(t)
        } else {
            let mut rng = setup.seed;
            let mut secret = [0u8; 32];
            for chunk in secret.chunks_mut(8) {
                chunk.copy_from_slice(&splitmix(&mut rng).to_le_bytes());
            }
            Box::new(OwnTarget::new(setup.profile).with_config(|c| {
                c.recv_buf = setup.recv_buf;
                c.nagle = false;
                c.faults = setup.faults;
                c.secret = secret;
            }))
        };
        Ok(Probe {
            target,
            log: Vec::new(),
            conn: None,
            listener: None,
            peer_port: PEER_PORT,
            stack_port: STACK_PORT,
            peer_nxt: 1_000_000,
            peer_ack: 0,
            peer_wnd: 65_535,
            recv_buf: setup.recv_buf,
        })
    }

    /// Whether the target runs on a virtual clock (waiting costs nothing).
    pub fn is_virtual(&self) -> bool {
        self.target.is_virtual()
    }

    /// Time since the probe began (µs).
    pub fn now(&self) -> Micros {
        self.target.now()
    }

    /// Collects what the target sent; returns the new segments.
    pub fn drain(&mut self) -> Vec<WireSegment> {
        let mut out = Vec::new();
        for (at, bytes) in self.target.take_outbound() {
            if let Ok(seg) = wire::decode(&bytes) {
                if seg.flags.syn {
                    self.stack_port = seg.src_port;
                }
                out.push(seg.clone());
                self.log.push(Logged {
                    at,
                    dir: Dir::Out,
                    seg,
                    bytes,
                });
            }
        }
        out
    }

    /// One step of time towards `until` (the target stops early when
    /// something happens); returns what it sent.
    fn step(&mut self, until: Micros) -> Result<Vec<WireSegment>, ProbeError> {
        let until = if self.target.is_virtual() {
            until
        } else {
            until.min(self.now() + REAL_STEP)
        };
        self.target.advance(until).map_err(target_err)?;
        Ok(self.drain())
    }

    /// Lets time run to `to` (µs since the start); returns what was sent.
    pub fn advance_to(&mut self, to: Micros) -> Result<Vec<WireSegment>, ProbeError> {
        let mut out = self.drain();
        while self.now() < to {
            out.extend(self.step(to)?);
        }
        Ok(out)
    }

    /// Runs until the target sends something or `limit` µs pass; returns
    /// what it sent (empty when nothing came).
    pub fn next_output(&mut self, limit: Micros) -> Result<Vec<WireSegment>, ProbeError> {
        let end = self.now() + limit;
        let mut out = self.drain();
        while out.is_empty() && self.now() < end {
            out = self.step(end)?;
        }
        Ok(out)
    }

    /// Runs until the connection reports an error (`SO_ERROR`), or `limit`
    /// µs since the start; returns whether it did.
    pub fn until_error(&mut self, limit: Micros) -> Result<bool, ProbeError> {
        while self.now() < limit {
            self.step(limit)?;
            if self.socket_error()?.is_some() {
                return Ok(true);
            }
        }
        Ok(false)
    }

    fn call(&mut self, call: SocketCall) -> Result<CallReturn, ProbeError> {
        let name = call.name();
        let outcome = match self.target.call(&call) {
            Ok(o) => o,
            Err(TargetError::NotApplicable(why)) => {
                return Err(ProbeError::Stuck(format!("{name} not applicable: {why}")))
            }
            Err(e) => return Err(target_err(e)),
        };
        match outcome {
            CallOutcome::Done(r) => Ok(r),
            CallOutcome::WouldBlock => Err(ProbeError::Stuck(format!("{name} would block"))),
        }
    }

    fn fd_call(&mut self, call: SocketCall) -> Result<Fd, ProbeError> {
        let name = call.name();
        self.call(call)?
            .ret
            .map_err(|e| ProbeError::Stuck(format!("{name}: {e}")))
    }

    fn socket_error(&mut self) -> Result<Option<&'static str>, ProbeError> {
        let Some(fd) = self.conn else { return Ok(None) };
        let r = self.call(SocketCall::GetSockOpt {
            fd,
            opt: SockOpt::Error,
        })?;
        Ok(match r.value {
            Some(OptValue::Errno(e)) => e,
            _ => None,
        })
    }

    /// A fresh socket with the receive buffer of the setup.
    fn socket(&mut self) -> Result<Fd, ProbeError> {
        let fd = self.fd_call(SocketCall::Socket)?;
        if self.recv_buf < 65535 {
            self.call(SocketCall::SetSockOpt {
                fd,
                opt: SockOpt::RcvBuf,
                value: OptValue::Int(self.recv_buf as i64),
            })?;
        }
        Ok(fd)
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
            ecn: 0,
        };
        let bytes = wire::build(&o).map_err(ProbeError::Packet)?;
        let seg = wire::decode(&bytes).map_err(ProbeError::Packet)?;
        self.drain();
        self.log.push(Logged {
            at: self.now(),
            dir: Dir::In,
            seg,
            bytes: bytes.clone(),
        });
        self.target.inject(&bytes).map_err(target_err)?;
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

    /// A listening socket on the stack's port (once).
    pub fn listen(&mut self) -> Result<(), ProbeError> {
        if self.listener.is_none() {
            let fd = self.socket()?;
            self.fd_call(SocketCall::Bind { fd })?;
            self.fd_call(SocketCall::Listen { fd, backlog: 128 })?;
            self.listener = Some(fd);
        }
        Ok(())
    }

    /// Passive open on the stack, the peer's SYN at once and its ACK of the
    /// SYN-ACK `delay` µs later (the first RTT sample). Returns the stack's
    /// ISN.
    pub fn open(&mut self, delay: Micros) -> Result<u32, ProbeError> {
        self.listen()?;
        self.stack_port = STACK_PORT;
        let isn = self.peer_nxt;
        let out = self.inject("S", isn, 0, 0, &[TcpOpt::Mss(PEER_MSS)])?;
        self.peer_nxt = isn.wrapping_add(1);
        let synack = self.syn_ack(out)?;
        let to = self.now() + delay;
        self.advance_to(to)?;
        self.ack(synack.seq.wrapping_add(1))?;
        let l = self
            .listener
            .ok_or_else(|| ProbeError::Stuck("no listener".into()))?;
        let c = self.fd_call(SocketCall::Accept { fd: l })?;
        self.conn = Some(c);
        Ok(synack.seq)
    }

    /// The SYN-ACK answering a SYN the peer just sent: in `out`, or (on a
    /// real clock, where it may leave a moment after the write) within a
    /// second.
    pub fn syn_ack(&mut self, mut out: Vec<WireSegment>) -> Result<WireSegment, ProbeError> {
        let deadline = self.now() + 1_000_000;
        loop {
            if let Some(s) = out.iter().find(|s| s.flags.syn && s.flags.ack) {
                return Ok(s.clone());
            }
            if self.now() >= deadline {
                return Err(ProbeError::Stuck("no SYN-ACK to the peer's SYN".into()));
            }
            out = self.next_output(deadline - self.now())?;
        }
    }

    /// The application on the stack writes `len` octets.
    pub fn send(&mut self, len: usize) -> Result<Vec<WireSegment>, ProbeError> {
        let fd = self
            .conn
            .ok_or_else(|| ProbeError::Stuck("no connection".into()))?;
        self.fd_call(SocketCall::Write { fd, len })?;
        Ok(self.drain())
    }

    /// The application reads what has arrived (up to 64 KiB).
    pub fn read(&mut self) -> Result<(), ProbeError> {
        if let Some(fd) = self.conn {
            self.call(SocketCall::Read { fd, len: 65536 })?;
        }
        Ok(())
    }

    /// Active open from the stack to the peer (non-blocking, for SYN
    /// probes).
    pub fn connect(&mut self) -> Result<Vec<WireSegment>, ProbeError> {
        let fd = self.socket()?;
        self.call(SocketCall::SetFl {
            fd,
            flags: O_NONBLOCK,
        })?;
        // EINPROGRESS: the SYN is out.
        let _ = self.call(SocketCall::Connect { fd })?;
        self.conn = Some(fd);
        Ok(self.drain())
    }

    /// The packets logged, as (time, direction, segment).
    pub fn segments(&self) -> impl Iterator<Item = (Micros, Dir, &WireSegment)> {
        self.log.iter().map(|l| (l.at, l.dir, &l.seg))
    }
}
