//! Generated probe scenarios (RFC 6298 and RFC 9293 §3.8) against the own
//! stack on the virtual clock: a peer that delays its ACKs by chosen
//! amounts feeds chosen RTT samples, then withholds an ACK and the
//! retransmission times are read off the wire; SYN retransmission and give
//! up, delayed ACKs, the persist timer, ISNs and window-edge trimming.

use super::history::Dir;
use super::observe::{observe, Flow};
use super::probe::{splitmix, Logged, Probe, ProbeError, StackSetup, PEER_MSS};
use crate::run::target::Micros;
use serde::Serialize;
use tcp_spec::rto::{RtoConfig, RtoEstimator, Sample};

/// A whole second in µs.
const S: Micros = 1_000_000;
/// How long a probe waits for the next packet before it calls it absent.
const PATIENCE: Micros = 400 * S;
/// Octets of each data segment of the RTO probes.
const CHUNK: usize = 100;

/// What a scenario exercises.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Family {
    /// The same RTT sample after sample.
    Steady,
    /// The RTT jumps up.
    StepUp,
    /// The RTT drops.
    StepDown,
    /// Samples far apart.
    HighVariance,
    /// Pseudo-random samples from the seed.
    Generated,
    /// Tiny samples: the RTO shows its lower bound.
    MinRto,
    /// Expiry after expiry: back-off factor and cap.
    Backoff,
    /// A retransmitted segment's ACK (Karn's rule).
    Karn,
    /// A valid sample after a back-off.
    AfterBackoff,
    /// An unanswered SYN.
    Syn,
    /// A SYN-ACK nobody acknowledges.
    SynAck,
    /// Zero-window probes.
    Persist,
}

/// One step of an RTO scenario after the handshake.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Step {
    /// The stack sends a segment; the peer ACKs it this many µs later.
    Rtt(Micros),
    /// The stack sends a segment; the peer lets the timer expire `expiries`
    /// times and ACKs `ack_after` µs after the last retransmission.
    Lose { expiries: usize, ack_after: Micros },
}

/// An RTO scenario: the handshake's ACK comes `first` µs after the
/// SYN-ACK, then the steps, then a segment whose ACK never comes and
/// `expiries` retransmissions of it are observed.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RtoScenario {
    pub name: String,
    pub family: Family,
    pub first: Micros,
    pub steps: Vec<Step>,
    pub expiries: usize,
}

impl RtoScenario {
    fn new(name: &str, family: Family, rtts_ms: &[u64], expiries: usize) -> RtoScenario {
        let mut it = rtts_ms.iter().map(|ms| ms * 1000);
        RtoScenario {
            name: name.into(),
            family,
            first: it.next().unwrap_or(S),
            steps: it.map(Step::Rtt).collect(),
            expiries,
        }
    }
}

/// The RTO scenarios for a seed: fixed shapes (the back-off one with
/// `backoff` expiries) plus `generated` random
/// sample sequences (RTTs between 0.3 and 3 s, so that the RTO stays above
/// a 1 s floor and SRTT, RTTVAR and K all leave their mark). The first
/// sample, the handshake's, is always below the initial RTO of 1 s.
pub fn rto_scenarios(seed: u64, generated: usize, backoff: usize) -> Vec<RtoScenario> {
    let mut v = vec![
        RtoScenario::new("steady 0.8 s", Family::Steady, &[800, 800, 800, 800], 1),
        RtoScenario::new("single 0.9 s", Family::Steady, &[900], 1),
        RtoScenario::new(
            "step up 0.8 -> 2.5 s",
            Family::StepUp,
            &[800, 800, 1800, 2500],
            1,
        ),
        RtoScenario::new("step up 0.5 -> 1.3 s", Family::StepUp, &[500, 1300], 1),
        RtoScenario::new(
            "step down 2.5 -> 1 s",
            Family::StepDown,
            &[900, 2000, 2500, 1000],
            1,
        ),
        RtoScenario::new(
            "step down 2 -> 0.6 s",
            Family::StepDown,
            &[700, 2000, 600, 600],
            1,
        ),
        RtoScenario::new(
            "high variance",
            Family::HighVariance,
            &[900, 2500, 500, 2500, 800],
            1,
        ),
        RtoScenario::new("min RTO", Family::MinRto, &[10, 10, 10], 1),
        RtoScenario::new("backoff to the cap", Family::Backoff, &[900], backoff),
        RtoScenario {
            name: "Karn: ACK of a retransmission".into(),
            family: Family::Karn,
            first: 900_000,
            steps: vec![Step::Lose {
                expiries: 1,
                ack_after: 100_000,
            }],
            expiries: 1,
        },
        RtoScenario {
            name: "sample after backoff".into(),
            family: Family::AfterBackoff,
            first: 900_000,
            steps: vec![
                Step::Lose {
                    expiries: 2,
                    ack_after: 200_000,
                },
                Step::Rtt(800_000),
            ],
            expiries: 1,
        },
    ];
    let mut rng = seed ^ 0x7469_6d65_7273;
    for i in 0..generated {
        let n = 1 + (splitmix(&mut rng) % 5) as usize;
        // The handshake's sample stays under the initial RTO of 1 s and
        // every later one under 90 % of the RFC model's RTO at that point,
        // or the segment would be retransmitted and its sample void (Karn).
        let mut model = RtoEstimator::new(RtoConfig::RFC6298);
        let mut rtts = Vec::new();
        for i in 0..=n {
            let top = if i == 0 {
                900
            } else {
                ((model.rto() * 900.0) as u64).min(3000)
            };
            let ms = 300 + splitmix(&mut rng) % top.saturating_sub(300).max(1);
            model.on_sample(Sample {
                rtt: ms as f64 / 1000.0,
                retransmitted: false,
            });
            rtts.push(ms);
        }
        v.push(RtoScenario::new(
            &format!("generated #{i}"),
            Family::Generated,
            &rtts,
            1,
        ));
    }
    v
}

/// What one scenario showed.
#[derive(Clone, Debug)]
pub struct Outcome {
    pub name: String,
    pub family: Family,
    pub flow: Flow,
    pub log: Vec<Logged>,
    /// For the SYN scenario: when the stack gave the open up (µs after the
    /// first SYN), if it did.
    pub gave_up: Option<Micros>,
    /// For the persist scenario: when the window closed (µs).
    pub zero_window_at: Option<Micros>,
}

fn outcome(p: Probe, name: &str, family: Family) -> Outcome {
    let flow = observe(p.segments());
    Outcome {
        name: name.into(),
        family,
        flow,
        log: p.log,
        gave_up: None,
        zero_window_at: None,
    }
}

/// Sends one chunk and returns the end of its sequence range (on a real
/// clock the segment may come out a moment after the call).
fn send_chunk(p: &mut Probe) -> Result<u32, ProbeError> {
    let mut out = p.send(CHUNK)?;
    loop {
        if let Some(s) = out.iter().find(|s| s.payload_len > 0) {
            return Ok(s.seq.wrapping_add(s.payload_len));
        }
        out = p.next_output(S)?;
        if out.is_empty() {
            return Err(ProbeError::Stuck("the stack sent no data".into()));
        }
    }
}

/// Waits for `n` retransmissions (segments with data or SYN, or with
/// `any`, every segment: a zero-window probe may carry no data); returns
/// how many came.
fn await_resends(p: &mut Probe, n: usize, any: bool) -> Result<usize, ProbeError> {
    let mut got = 0;
    while got < n {
        let out = p.next_output(PATIENCE)?;
        if out.is_empty() {
            break;
        }
        got += out
            .iter()
            .filter(|s| any || s.payload_len > 0 || s.flags.syn)
            .count();
    }
    Ok(got)
}

/// Runs an RTO scenario.
pub fn run_rto(setup: StackSetup, sc: &RtoScenario) -> Result<Outcome, ProbeError> {
    let mut p = Probe::new(setup)?;
    p.open(sc.first)?;
    for step in &sc.steps {
        match *step {
            Step::Rtt(d) => {
                let end = send_chunk(&mut p)?;
                let t = p.now() + d;
                p.advance_to(t)?;
                p.ack(end)?;
            }
            Step::Lose {
                expiries,
                ack_after,
            } => {
                let end = send_chunk(&mut p)?;
                await_resends(&mut p, expiries, false)?;
                let t = p.now() + ack_after;
                p.advance_to(t)?;
                p.ack(end)?;
            }
        }
    }
    send_chunk(&mut p)?;
    await_resends(&mut p, sc.expiries, false)?;
    Ok(outcome(p, &sc.name, sc.family))
}

/// An active open nobody answers: every SYN and the time the stack gives
/// up (RFC 9293 §3.8.3, RFC 6298 §5.5).
pub fn run_syn(setup: StackSetup) -> Result<Outcome, ProbeError> {
    let mut p = Probe::new(setup)?;
    p.connect()?;
    let first = p.log.first().map(|l| l.at).unwrap_or(0);
    let limit = first + 2 * PATIENCE;
    let gave_up = p.until_error(limit)?.then(|| p.now().saturating_sub(first));
    let mut o = outcome(p, "SYN unanswered", Family::Syn);
    o.gave_up = gave_up;
    Ok(o)
}

/// A passive open whose SYN-ACK the peer never acknowledges: every
/// SYN-ACK (RFC 9293 §3.8.3, RFC 6298 §5.5).
pub fn run_synack(setup: StackSetup) -> Result<Outcome, ProbeError> {
    let mut p = Probe::new(setup)?;
    p.listen()?;
    let isn = p.peer_nxt;
    p.inject("S", isn, 0, 0, &[crate::script::TcpOpt::Mss(PEER_MSS)])?;
    let mut last = (p.now(), S);
    // A stack that never gives the SYN-ACK up is read for 16 of them.
    for _ in 0..16 {
        // On a real clock, a silence of three times the last interval (a
        // doubling back-off would have sent again within two) means the
        // stack has given up; a virtual clock can afford the full patience.
        let quiet = if p.is_virtual() {
            PATIENCE
        } else {
            (3 * last.1).clamp(3 * S, PATIENCE)
        };
        if p.next_output(quiet)?.is_empty() {
            break;
        }
        last = (p.now(), p.now().saturating_sub(last.0));
    }
    Ok(outcome(p, "SYN-ACK unacknowledged", Family::SynAck))
}

/// The peer closes its window and never opens it: the stack's zero-window
/// probes (RFC 9293 §3.8.6.1), `probes` of them.
pub fn run_persist(setup: StackSetup, probes: usize) -> Result<Outcome, ProbeError> {
    let mut p = Probe::new(setup)?;
    p.open(900_000)?;
    p.peer_wnd = 0;
    let una = p.peer_ack;
    p.ack(una)?;
    p.send(CHUNK)?;
    let closed_at = p.now();
    await_resends(&mut p, probes, true)?;
    let mut o = outcome(p, "zero window", Family::Persist);
    o.zero_window_at = Some(closed_at);
    Ok(o)
}

/// The delayed-ACK policy as the wire shows it (RFC 9293 §3.8.6.3,
/// RFC 5681 §4.2).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DelAck {
    /// Delay of the ACK of a lone full-sized segment, per trial (µs).
    pub lone: Vec<Option<Micros>>,
    /// Delay of the first ACK after the second of two back-to-back
    /// full-sized segments, per trial (µs).
    pub pair: Vec<Option<Micros>>,
    /// The full-sized segment (the stack's MSS).
    pub mss: u32,
}

/// The first ACK the stack sends covering `upto`, and its delay.
fn ack_delay(
    p: &mut Probe,
    upto: u32,
    from: Micros,
    limit: Micros,
) -> Result<Option<Micros>, ProbeError> {
    let seen = |p: &Probe| {
        p.log
            .iter()
            .filter(|l| l.dir == Dir::Out && l.at >= from)
            .find(|l| l.seg.flags.ack && (l.seg.ack.wrapping_sub(upto) as i32) >= 0)
            .map(|l| l.at - from)
    };
    if let Some(d) = seen(p) {
        return Ok(Some(d));
    }
    loop {
        let out = p.next_output(limit.saturating_sub(p.now() - from))?;
        if let Some(d) = seen(p) {
            return Ok(Some(d));
        }
        if out.is_empty() || p.now() - from >= limit {
            return Ok(None);
        }
    }
}

/// Sends lone full-sized segments and pairs of them, `trials` of each.
pub fn run_delack(setup: StackSetup, trials: usize) -> Result<(DelAck, Vec<Logged>), ProbeError> {
    let mut p = Probe::new(setup)?;
    p.open(1000)?;
    // Full-sized for the stack is its own advertised MSS (RFC 9293
    // §3.7.1), from its SYN-ACK.
    let full = p
        .log
        .iter()
        .find(|l| l.seg.flags.syn)
        .and_then(|l| {
            l.seg.options.iter().find_map(|o| match o {
                crate::script::TcpOpt::Mss(m) => Some(u32::from(*m)),
                _ => None,
            })
        })
        .unwrap_or(536);
    let mut d = DelAck {
        lone: Vec::new(),
        pair: Vec::new(),
        mss: full,
    };
    for _ in 0..trials {
        let t = p.now() + S;
        p.advance_to(t)?;
        let from = p.now();
        p.data(full)?;
        let upto = p.peer_nxt;
        d.lone.push(ack_delay(&mut p, upto, from, 2 * S)?);
        p.read()?;
        let t = p.now() + S;
        p.advance_to(t)?;
        p.data(full)?;
        let from = p.now();
        p.data(full)?;
        let upto = p.peer_nxt;
        d.pair.push(ack_delay(&mut p, upto, from, 2 * S)?);
        p.read()?;
    }
    Ok((d, p.log))
}

/// ISNs of many connections (RFC 6528 §3; RFC 9293 §3.4.1).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Isns {
    /// Connections from distinct peer ports, one per second.
    pub distinct: Vec<u32>,
    /// Connections from one peer port, one per second.
    pub same: Vec<u32>,
}

/// Opens `n` connections from distinct 4-tuples and `n` from the same one
/// (each answered with a RST after the SYN-ACK).
pub fn run_isn(setup: StackSetup, n: usize) -> Result<Isns, ProbeError> {
    let mut p = Probe::new(setup)?;
    p.open(1000)?;
    let mut isns = Isns {
        distinct: Vec::new(),
        same: Vec::new(),
    };
    for (i, same) in (0..2 * n).map(|i| (i, i >= n)) {
        let t = p.now() + S;
        p.advance_to(t)?;
        p.peer_port = if same { 50_000 } else { 41_000 + i as u16 };
        p.stack_port = super::probe::STACK_PORT;
        let isn = p.peer_nxt.wrapping_add(100_000);
        let out = p.inject("S", isn, 0, 0, &[crate::script::TcpOpt::Mss(PEER_MSS)])?;
        let iss = p.syn_ack(out)?.seq;
        p.inject("R", isn.wrapping_add(1), 0, 0, &[])?;
        if same {
            isns.same.push(iss);
        } else {
            isns.distinct.push(iss);
        }
    }
    Ok(isns)
}

/// Window-edge trimming (RFC 9293 §3.10.7.4): the peer sends more than the
/// stack's window at RCV.NXT.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Trim {
    /// The window the stack advertised before the segment.
    pub window: u32,
    /// Octets the peer sent at RCV.NXT.
    pub sent: u32,
    /// Octets the stack acknowledged of them.
    pub acked: Option<u32>,
}

pub fn run_trim(mut setup: StackSetup) -> Result<(Trim, Vec<Logged>), ProbeError> {
    setup.recv_buf = 600;
    let mut p = Probe::new(setup)?;
    p.open(1000)?;
    let window = p
        .log
        .iter()
        .rev()
        .find(|l| l.dir == Dir::Out)
        .map(|l| u32::from(l.seg.win))
        .ok_or_else(|| ProbeError::Stuck("no window advertised".into()))?;
    let start = p.peer_nxt;
    let sent = window + 400;
    let from = p.now();
    p.data(sent)?;
    let t = from + S;
    p.advance_to(t)?;
    let acked = p
        .log
        .iter()
        .filter(|l| l.dir == Dir::Out && l.at >= from && l.seg.flags.ack)
        .map(|l| l.seg.ack.wrapping_sub(start))
        .max();
    Ok((
        Trim {
            window,
            sent,
            acked,
        },
        p.log,
    ))
}
