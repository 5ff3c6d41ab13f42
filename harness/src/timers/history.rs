//! What drives a sender's retransmission timer, as its packets show it, and
//! what the RFC 6298 model predicts from that: shared by the verdict rules
//! (`verdict::rules`), the timer probes and the pcap checker.
//!
//! Rules read from the wire: each segment that occupies sequence space is
//! timed to the first acknowledgment covering it, and a sample from a
//! segment sent more than once is marked ambiguous (Karn's rule, RFC 6298
//! §3); each resend of a segment is one expiry of the timer (§5.5), so a
//! backed-off RTO holds until a valid sample (§5.7).

use crate::run::target::Micros;
use crate::run::wire::WireSegment;
use crate::verdict::wire_tcb::seg_len;
use tcp_spec::rto::{RtoConfig, RtoEstimator, Sample};

/// One input of the estimator.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum TimerEvent {
    /// An RTT measurement (RFC 6298 §3; Karn-marked).
    Sample(Sample),
    /// A retransmission: the timer expired (RFC 6298 §5.5); `syn` when it
    /// resent an active open's SYN (not a SYN-ACK: a profile's linear SYN
    /// timeouts apply to the active open only).
    Expiry { syn: bool },
}

/// Which way a packet travels relative to the sender whose timer is read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dir {
    /// Sent by the sender under study.
    Out,
    /// Received by it (the acknowledgments).
    In,
}

/// A segment the sender has sent and not yet seen acknowledged.
#[derive(Clone, Debug)]
struct Pending {
    first: Micros,
    seq: u32,
    end: u32,
    times: usize,
}

/// Folds packets, in order, into the estimator's inputs.
#[derive(Clone, Debug, Default)]
pub struct History {
    pending: Vec<Pending>,
    /// Each input with the time of the packet that caused it.
    pub events: Vec<(Micros, TimerEvent)>,
}

impl History {
    pub fn new() -> History {
        History::default()
    }

    /// Takes one packet: a resend is an expiry, a covering ACK a sample.
    pub fn push(&mut self, at: Micros, dir: Dir, w: &WireSegment) {
        match dir {
            Dir::Out => {
                let len = seg_len(w);
                if len == 0 {
                    return;
                }
                match self.pending.iter_mut().find(|s| s.seq == w.seq) {
                    Some(s) => {
                        s.times += 1;
                        self.events.push((
                            at,
                            TimerEvent::Expiry {
                                syn: w.flags.syn && !w.flags.ack,
                            },
                        ));
                    }
                    None => self.pending.push(Pending {
                        first: at,
                        seq: w.seq,
                        end: w.seq.wrapping_add(len),
                        times: 1,
                    }),
                }
            }
            Dir::In => {
                if !w.flags.ack {
                    return;
                }
                let events = &mut self.events;
                self.pending.retain(|s| {
                    let covered = (w.ack.wrapping_sub(s.end) as i32) >= 0;
                    if covered {
                        events.push((
                            at,
                            TimerEvent::Sample(Sample {
                                rtt: at.saturating_sub(s.first) as f64 / 1e6,
                                retransmitted: s.times > 1,
                            }),
                        ));
                    }
                    !covered
                });
            }
        }
    }

    /// A timer expiry that sent new data rather than a retransmission: a
    /// zero-window probe, which backs the timer off like a retransmission
    /// (RFC 9293 §3.8.6.1: the probe interval grows exponentially).
    pub fn expire(&mut self, at: Micros) {
        self.events.push((at, TimerEvent::Expiry { syn: false }));
    }

    /// Whether a segment is sent and not yet acknowledged.
    pub fn outstanding(&self) -> bool {
        !self.pending.is_empty()
    }
}

/// Runs the model over `events`: the estimator after them. The first
/// `linear` SYN expiries keep the RTO (Linux's linear SYN timeouts); every
/// other expiry doubles it.
pub fn replay(cfg: RtoConfig, linear: u64, events: &[TimerEvent]) -> RtoEstimator {
    let mut est = RtoEstimator::new(cfg);
    let mut syn_expiries = 0;
    for ev in events {
        match *ev {
            TimerEvent::Sample(s) => {
                est.on_sample(s);
            }
            TimerEvent::Expiry { syn: true } => {
                if syn_expiries >= linear {
                    est.on_timeout();
                }
                syn_expiries += 1;
            }
            TimerEvent::Expiry { syn: false } => est.on_timeout(),
        }
    }
    est
}

/// The RTO (µs) the model predicts after `events` ([`replay`]).
pub fn predict(cfg: RtoConfig, linear: u64, events: &[TimerEvent]) -> f64 {
    replay(cfg, linear, events).rto() * 1e6
}
