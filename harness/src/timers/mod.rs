//! `tcpconform timers`: the RTT/RTO formulas of RFC 6298 (and the other
//! timers of RFC 9293 §3.8) checked on the wire. Probe scenarios drive a
//! target, the retransmission times are read off its packets, and a
//! fingerprint of its timer parameters is estimated and classified.
//!
//! Modules, one concern each: [`history`] (estimator inputs seen on the
//! wire and the model's prediction, shared with the verdict rules),
//! [`probe`] (the in-process driver), [`scenarios`] (what is probed),
//! [`observe`] (timer starts and retransmissions), [`estimate`] (the
//! fingerprint), [`checks`] (ISN, trimming, delayed-ACK), [`report`]
//! (text, JSON, SVG) and [`trace`] (the same inference on a pcap).

pub mod history;
pub mod observe;
pub mod probe;
pub mod scenarios;
