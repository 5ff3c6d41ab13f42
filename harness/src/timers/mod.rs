//! `tcpconform timers`: the RTT/RTO formulas of RFC 6298 (and the other
//! timers of RFC 9293 §3.8) checked on the wire. Probe scenarios drive a
//! target, the retransmission times are read off its packets, and a
//! fingerprint of its timer parameters is estimated and classified.
//!
//! Modules, one concern each: [`history`] (estimator inputs seen on the
//! wire and the model's prediction, shared with the verdict rules),
//! [`probe`] (the driver of a runner target and a scripted peer),
//! [`scenarios`] (what is probed: RTO shapes, Karn, back-off, SYN,
//! persist, delayed ACK, ISNs, window trimming), [`observe`] (timer starts
//! and retransmissions), [`estimate`] (the fingerprint and its verdicts),
//! [`report`] (text, JSON, Markdown, SVG), [`trace`] (the same inference on
//! a pcap) and [`linux`] (the live kernel target; untested).

pub mod estimate;
pub mod history;
pub mod linux;
pub mod observe;
pub mod probe;
pub mod report;
pub mod scenarios;
pub mod trace;

use probe::{ProbeError, StackSetup};
use tcp_spec::Profile;
use tcp_stack::Faults;

/// Generated RTO scenarios beside the fixed shapes.
pub const GENERATED: usize = 12;

/// Runs every probe against the own stack (profile, seeded bugs, seed).
pub fn probe_own(
    profile: Profile,
    faults: Faults,
    seed: u64,
) -> Result<estimate::Observations, ProbeError> {
    probe_all(StackSetup::new(profile, faults, seed))
}

/// Runs every probe against the target of `setup`.
pub fn probe_all(setup: StackSetup) -> Result<estimate::Observations, ProbeError> {
    let seed = setup.seed;
    let mut outcomes = Vec::new();
    for sc in scenarios::rto_scenarios(seed, GENERATED) {
        outcomes.push(scenarios::run_rto(setup, &sc)?);
    }
    outcomes.push(scenarios::run_syn(setup)?);
    outcomes.push(scenarios::run_synack(setup)?);
    outcomes.push(scenarios::run_persist(setup, 5)?);
    let (delack, _) = scenarios::run_delack(setup, 3)?;
    let isns = scenarios::run_isn(setup, 16)?;
    let (trim, _) = scenarios::run_trim(setup)?;
    Ok(estimate::Observations {
        outcomes,
        delack: Some(delack),
        isns: Some(isns),
        trim: Some(trim),
    })
}

#[cfg(test)]
mod tests;
