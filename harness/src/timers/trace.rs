//! `tcpconform timers --pcap FILE`: the timer inference on any capture.
//! Per connection and direction: the Karn-valid RTT samples (RFC 6298 §3),
//! SRTT and RTTVAR implied after each (§2.2–2.3), and at every
//! retransmission the model's RTO beside the observed one (§5), with the
//! departures beyond the tolerance listed.
//!
//! Limits: a zero-window probe's timer starts when data is queued behind
//! the closed window, which the wire does not show; it is measured from the
//! window's closing and judged only when early. A probe that carries no
//! new data (Linux's, SEQ = SND.UNA − 1) is not seen. Every segment is timed to its first covering ACK (a stack that
//! times one segment per round trip takes fewer samples, so on bulk
//! transfers the implied SRTT is an approximation); no timestamps option.

use super::history::{Dir, TimerEvent};
use super::observe::observe;
use crate::run::target::Micros;
use crate::run::wire::{self, WireSegment};
use serde::Serialize;
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;
use tcp_spec::rto::{RtoConfig, RtoEstimator};

/// One RTT sample and the estimator after it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SampleRow {
    /// Seconds since the first packet of the capture.
    pub at: f64,
    pub rtt: f64,
    /// Karn: false for the ACK of a retransmitted segment (not used).
    pub valid: bool,
    pub srtt: Option<f64>,
    pub rttvar: f64,
    pub rto: f64,
}

/// One retransmission, observed and predicted.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ResendRow {
    pub at: f64,
    pub seq: u32,
    pub syn: bool,
    /// A zero-window probe (new data sent by the persist timer).
    pub probe: bool,
    pub observed: f64,
    pub predicted: f64,
    /// Outside the tolerance.
    pub departs: bool,
}

/// One direction of one connection.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SenderReport {
    pub sender: String,
    pub receiver: String,
    pub samples: Vec<SampleRow>,
    pub resends: Vec<ResendRow>,
}

impl SenderReport {
    pub fn departures(&self) -> usize {
        self.resends.iter().filter(|r| r.departs).count()
    }
}

/// The analysis of every sender in `packets` that sent data or a SYN.
/// Packets that are not TCP are skipped. A retransmission departs when it
/// comes more than `tol` s early or more than `tol` plus `rel` of the
/// predicted RTO late (a kernel's timer wheel fires up to 1/8 late).
pub fn analyse(
    packets: &[(Duration, Vec<u8>)],
    cfg: RtoConfig,
    linear: u64,
    tol: f64,
    rel: f64,
) -> Vec<SenderReport> {
    let base = packets.first().map(|(t, _)| *t).unwrap_or_default();
    let mut conns: BTreeMap<(SocketAddr, SocketAddr), Vec<(Micros, WireSegment)>> = BTreeMap::new();
    for (t, bytes) in packets {
        let Ok(w) = wire::decode(bytes) else { continue };
        let a = SocketAddr::new(w.src, w.src_port);
        let b = SocketAddr::new(w.dst, w.dst_port);
        let key = if a <= b { (a, b) } else { (b, a) };
        let at = t.saturating_sub(base).as_micros() as Micros;
        conns.entry(key).or_default().push((at, w));
    }
    let mut out = Vec::new();
    for ((a, b), segs) in conns {
        for (me, peer) in [(a, b), (b, a)] {
            let is_me = |w: &WireSegment| SocketAddr::new(w.src, w.src_port) == me;
            let flow = observe(segs.iter().map(|(at, w)| {
                let dir = if is_me(w) { Dir::Out } else { Dir::In };
                (*at, dir, w)
            }));
            if flow.events.is_empty() && flow.resends.is_empty() {
                continue;
            }
            let mut est = RtoEstimator::new(cfg);
            let mut samples = Vec::new();
            let mut syn_expiries = 0;
            for (at, ev) in &flow.events {
                match ev {
                    TimerEvent::Sample(s) => {
                        let used = est.on_sample(*s);
                        samples.push(SampleRow {
                            at: *at as f64 / 1e6,
                            rtt: s.rtt,
                            valid: used,
                            srtt: est.srtt(),
                            rttvar: est.rttvar(),
                            rto: est.rto(),
                        });
                    }
                    TimerEvent::Expiry { syn } => {
                        if !*syn || syn_expiries >= linear {
                            est.on_timeout();
                        }
                        if *syn {
                            syn_expiries += 1;
                        }
                    }
                }
            }
            let resends = flow
                .resends
                .iter()
                .map(|r| {
                    let predicted = flow.predicted(cfg, linear, r);
                    ResendRow {
                        at: r.at as f64 / 1e6,
                        seq: r.seq,
                        syn: r.syn,
                        probe: r.probe,
                        observed: r.observed(),
                        predicted,
                        // A probe's timer started when data was queued
                        // behind the zero window, which the wire does not
                        // show: measured from the window's closing it can
                        // only be judged early, not late.
                        departs: if r.probe {
                            r.observed() + tol < predicted
                        } else {
                            let d = r.observed() - predicted;
                            d < -tol || d > tol + rel * predicted
                        },
                    }
                })
                .collect();
            out.push(SenderReport {
                sender: shown(me),
                receiver: shown(peer),
                samples,
                resends,
            });
        }
    }
    out
}

fn shown(a: SocketAddr) -> String {
    match a.ip() {
        IpAddr::V4(_) => a.to_string(),
        IpAddr::V6(ip) => format!("[{ip}]:{}", a.port()),
    }
}

/// The text report of [`analyse`].
pub fn text(reports: &[SenderReport]) -> String {
    let mut s = String::new();
    for r in reports {
        s.push_str(&format!("{} -> {}\n", r.sender, r.receiver));
        let mut lines: Vec<(f64, String)> = Vec::new();
        for x in &r.samples {
            lines.push((
                x.at,
                format!(
                    "  {:>10.6}  sample {:>9.6} s {:<6}  SRTT {:>9}  RTTVAR {:>9.6}  RTO {:>9.6}\n",
                    x.at,
                    x.rtt,
                    if x.valid { "" } else { "(Karn)" },
                    x.srtt.map_or("-".into(), |v| format!("{v:.6}")),
                    x.rttvar,
                    x.rto
                ),
            ));
        }
        for x in &r.resends {
            lines.push((
                x.at,
                format!(
                    "  {:>10.6}  {}{} seq {}  observed RTO {:.6} s  predicted {:.6} s{}\n",
                    x.at,
                    if x.probe { "probe" } else { "resend" },
                    if x.syn { " SYN" } else { "" },
                    x.seq,
                    x.observed,
                    x.predicted,
                    if x.departs { "  DEPARTS" } else { "" }
                ),
            ));
        }
        lines.sort_by(|a, b| a.0.total_cmp(&b.0));
        for (_, l) in lines {
            s.push_str(&l);
        }
    }
    let n: usize = reports.iter().map(SenderReport::departures).sum();
    s.push_str(&format!(
        "{} senders, {} retransmissions, {} departures\n",
        reports.len(),
        reports.iter().map(|r| r.resends.len()).sum::<usize>(),
        n
    ));
    s
}
