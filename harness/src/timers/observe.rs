//! From a sender's packets to timer observations: the retransmission
//! timer's starts (RFC 6298 §5.1: on sending data while it is off; §5.3:
//! restarted by an ACK of new data while data is outstanding, stopped when
//! none is; §5.4–5.6: restarted at each retransmission) and each
//! retransmission's interval, beside the estimator inputs of
//! [`super::history`] that preceded it.

use super::history::{self, Dir, History, TimerEvent};
use crate::run::target::Micros;
use crate::run::wire::WireSegment;
use crate::verdict::wire_tcb::seg_len;
use serde::Serialize;
use tcp_spec::rto::RtoConfig;

/// One retransmission as the wire shows it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Resend {
    /// When it was sent (µs).
    pub at: Micros,
    /// When the timer that fired was started (µs).
    pub start: Micros,
    pub seq: u32,
    pub syn: bool,
    /// A zero-window probe of new data (the persist timer's first firing)
    /// rather than a retransmission.
    pub probe: bool,
    /// How many estimator inputs ([`Flow::events`]) came before it.
    pub events_before: usize,
}

impl Resend {
    /// The observed RTO in seconds.
    pub fn observed(&self) -> f64 {
        self.at.saturating_sub(self.start) as f64 / 1e6
    }
}

/// One direction of a connection: the sender's timer inputs and its
/// retransmissions.
#[derive(Clone, Debug, Default)]
pub struct Flow {
    pub events: Vec<(Micros, TimerEvent)>,
    pub resends: Vec<Resend>,
}

impl Flow {
    /// The inputs before the `i`-th resend.
    pub fn before(&self, r: &Resend) -> Vec<TimerEvent> {
        self.events
            .iter()
            .take(r.events_before)
            .map(|(_, e)| *e)
            .collect()
    }

    /// The model's RTO (seconds) for a resend.
    pub fn predicted(&self, cfg: RtoConfig, linear: u64, r: &Resend) -> f64 {
        history::predict(cfg, linear, &self.before(r)) / 1e6
    }

    /// The valid (Karn) RTT samples, in seconds, before input `n`.
    pub fn valid_samples(&self, n: usize) -> Vec<f64> {
        self.events
            .iter()
            .take(n)
            .filter_map(|(_, e)| match e {
                TimerEvent::Sample(s) if !s.retransmitted => Some(s.rtt),
                _ => None,
            })
            .collect()
    }
}

/// Signed distance `a - b` in sequence space.
fn diff(a: u32, b: u32) -> i32 {
    a.wrapping_sub(b) as i32
}

/// Reads one sender's packets (`Out` its own, `In` the other side's) in
/// time order.
pub fn observe<'a>(packets: impl IntoIterator<Item = (Micros, Dir, &'a WireSegment)>) -> Flow {
    let mut h = History::new();
    let mut resends = Vec::new();
    let mut una: Option<u32> = None;
    let mut max: Option<u32> = None;
    let mut timer: Option<Micros> = None;
    // Since when the receiver's window has been zero.
    let mut zero_since: Option<Micros> = None;
    for (at, dir, w) in packets {
        match dir {
            Dir::Out => {
                let len = seg_len(w);
                if len == 0 {
                    // A zero-window probe without data (one octet below
                    // SND.UNA, as Linux sends it: RFC 9293 §3.8.6.1
                    // leaves the probe's form open).
                    let below = una.is_some_and(|u| w.seq == u.wrapping_sub(1));
                    if zero_since.is_some() && below && !w.flags.rst {
                        resends.push(Resend {
                            at,
                            start: timer.or(zero_since).unwrap_or(at),
                            seq: w.seq,
                            syn: false,
                            probe: true,
                            events_before: h.events.len(),
                        });
                        timer = Some(at);
                        h.expire(at);
                    }
                    continue;
                }
                let end = w.seq.wrapping_add(len);
                let resend = max.is_some_and(|m| diff(w.seq, m) < 0);
                let probe = !resend && w.payload_len > 0 && zero_since.is_some();
                if resend || probe {
                    resends.push(Resend {
                        at,
                        start: timer.or(zero_since).unwrap_or(at),
                        seq: w.seq,
                        syn: w.flags.syn,
                        probe,
                        events_before: h.events.len(),
                    });
                    timer = Some(at);
                    if probe {
                        h.expire(at);
                    }
                } else if timer.is_none() {
                    timer = Some(at);
                }
                if una.is_none() {
                    una = Some(w.seq);
                }
                if max.is_none_or(|m| diff(end, m) > 0) {
                    max = Some(end);
                }
                h.push(at, dir, w);
            }
            Dir::In => {
                // A zero window (scaled or not) is zero.
                if w.win == 0 && !w.flags.syn && !w.flags.rst {
                    zero_since = zero_since.or(Some(at));
                } else if !w.flags.rst {
                    zero_since = None;
                }
                if w.flags.ack {
                    if let (Some(u), Some(m)) = (una, max) {
                        if diff(w.ack, u) > 0 && diff(w.ack, m) <= 0 {
                            una = Some(w.ack);
                            timer = if w.ack == m { None } else { Some(at) };
                        }
                    }
                }
                h.push(at, dir, w);
            }
        }
    }
    Flow {
        events: h.events,
        resends,
    }
}
