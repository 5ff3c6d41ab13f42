//! `tcpconform timers`: the RTT/RTO formulas of RFC 6298 (and the other
//! timers of RFC 9293 §3.8) checked on the wire. Probe scenarios drive a
//! target, the retransmission times are read off its packets, and a
//! fingerprint of its timer parameters is estimated and classified.
//!
//! Modules, one concern each: [`history`] (estimator inputs seen on the
//! wire and the model's prediction, shared with the verdict rules),
//! [`probe`] (the driver of a runner target and a scripted peer),
//! [`scenarios`] (what is probed: RTO shapes, Karn, back-off, SYN,
//! persist, delayed ACK, ISNs, window trimming), [`plan`] (how many of
//! each, and running them one after another or side by side),
//! [`observe`] (timer starts and retransmissions), [`estimate`] (the
//! fingerprint and its verdicts), [`report`] (text, JSON, Markdown, SVG),
//! [`trace`] (the same inference on a pcap) and [`linux`] (the live
//! kernel target).

pub mod estimate;
pub mod history;
pub mod linux;
pub mod observe;
pub mod plan;
pub mod probe;
pub mod report;
pub mod scenarios;
pub mod trace;

use crate::run::TargetName;
pub use plan::Plan;
use probe::{ProbeError, StackSetup};
use tcp_spec::Profile;
use tcp_stack::Faults;

/// Runs every probe of the full plan against the own stack (profile,
/// seeded bugs, seed), on its virtual clock.
pub fn probe_own(
    profile: Profile,
    faults: Faults,
    seed: u64,
) -> Result<estimate::Observations, ProbeError> {
    plan::run(
        StackSetup::new(profile, faults, seed),
        &Plan::full(),
        |_| {},
    )
}

/// A target `tcpconform timers` can probe.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimerTarget {
    /// The own stack, in-process on its virtual clock.
    Own,
    /// smoltcp 0.14, in-process on a virtual clock (`run::smoltcp_target`).
    Smoltcp,
    /// This machine's kernel, one namespace per scenario, in real time.
    Linux,
}

impl TimerTarget {
    /// Every target the timers can probe.
    pub const ALL: [TimerTarget; 3] = [TimerTarget::Own, TimerTarget::Smoltcp, TimerTarget::Linux];

    /// The run target ([`TargetName`]) this prober drives: the names and
    /// the targets are the registry's, not a second list.
    pub fn target(self) -> TargetName {
        match self {
            TimerTarget::Own => TargetName::Own,
            TimerTarget::Smoltcp => TargetName::Smoltcp,
            TimerTarget::Linux => TargetName::Linux,
        }
    }

    /// The names of [`TimerTarget::ALL`], comma-separated, for messages.
    pub fn names() -> String {
        let v: Vec<TargetName> = Self::ALL.iter().map(|p| p.target()).collect();
        v.iter()
            .map(TargetName::as_str)
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The prober of the target named `name`, if the timers can probe it.
    pub fn parse(name: &str) -> Option<TimerTarget> {
        let t: TargetName = name.parse().ok()?;
        Self::ALL.into_iter().find(|p| p.target() == t)
    }

    /// Probes the target and judges its fingerprint against RFC 9293 /
    /// RFC 6298. The own stack follows `profile`; the kernel's
    /// retransmission times are predicted by the linux profile's model.
    /// `tol_ms` overrides the timing tolerance (2 ms on the virtual clock,
    /// 30 ms plus 1/8 of the interval for the kernel's timer wheel).
    pub fn report(
        self,
        spec: &tcp_spec::Spec,
        profile: Profile,
        seed: u64,
        plan: &Plan,
        tol_ms: Option<f64>,
    ) -> Result<report::TargetReport, ProbeError> {
        let obs = match self {
            TimerTarget::Own | TimerTarget::Smoltcp => {
                let mut setup = StackSetup::new(profile, Faults::default(), seed);
                setup.target = self;
                plan::run(setup, plan, |_| {})?
            }
            TimerTarget::Linux => linux::probe(Profile::Linux, seed, plan, |line| {
                eprintln!("timers: linux {line}")
            })?,
        };
        self.judge_as(spec, profile, obs, tol_ms)
    }

    /// Judges observations of the target ([`TimerTarget::report`]), with
    /// the linux profile's model for the kernel.
    pub fn judge(
        self,
        spec: &tcp_spec::Spec,
        obs: estimate::Observations,
        tol_ms: Option<f64>,
    ) -> Result<report::TargetReport, ProbeError> {
        self.judge_as(spec, Profile::Rfc9293, obs, tol_ms)
    }

    fn judge_as(
        self,
        spec: &tcp_spec::Spec,
        profile: Profile,
        obs: estimate::Observations,
        tol_ms: Option<f64>,
    ) -> Result<report::TargetReport, ProbeError> {
        let (profile, tol, rel, resolution) = match self {
            TimerTarget::Own => (profile, 0.002, 0.0, 1e-6),
            // Another stack's model is the RFC's; smoltcp keeps its
            // estimator in whole milliseconds (`socket/tcp.rs`
            // `RttEstimator`), so its RTOs round by a few ms.
            TimerTarget::Smoltcp => (Profile::Rfc9293, 0.010, 0.0, 1e-3),
            TimerTarget::Linux => (Profile::Linux, 0.030, 0.125, 1e-3),
        };
        let j = estimate::Judging {
            rfc: &spec.profile(Profile::Rfc9293).params,
            tol: tol_ms.map_or(tol, |ms| ms / 1000.0),
            resolution,
            rel,
        };
        let active = &spec.profile(profile).params;
        Ok(report::TargetReport::new(
            self.target().as_str(),
            profile,
            active,
            &obs,
            j,
        ))
    }
}

#[cfg(test)]
mod tests;
