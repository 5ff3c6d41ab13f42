//! The `linux` target of `tcpconform timers`: the same probes against the
//! kernel behind `tun0`, each scenario in a namespace of its own
//! (`run::linux`), in real time and side by side ([`super::plan::run`]).
//! Needs root. The full plan takes about seven minutes (the back-off
//! scenario waits for RTOs up to the kernel's 120 s cap); the quick plan
//! about two (it stops the back-off before the cap).

use super::estimate::Observations;
use super::plan::{self, Plan};
use super::probe::{ProbeError, StackSetup};
use tcp_spec::Profile;
use tcp_stack::Faults;

/// Runs the probes of `plan` against this machine's kernel; `progress`
/// hears of every scenario that ends.
pub fn probe(
    profile: Profile,
    seed: u64,
    plan: &Plan,
    progress: impl Fn(&str) + Sync,
) -> Result<Observations, ProbeError> {
    let mut setup = StackSetup::new(profile, Faults::default(), seed);
    setup.target = super::TimerTarget::Linux;
    plan::run(setup, plan, progress)
}
