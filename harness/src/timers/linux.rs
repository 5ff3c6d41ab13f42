//! The `linux` target of `tcpconform timers`: the same probes against the
//! kernel behind `tun0` in a namespace of its own (`run::linux`), in real
//! time. Needs root. UNTESTED: no test runs it (the live suites are run
//! elsewhere), and a full probe takes several minutes of real time (the
//! back-off scenario alone waits for RTOs up to the 120 s cap).

use super::estimate::Observations;
use super::probe::{ProbeError, StackSetup};
use tcp_spec::Profile;
use tcp_stack::Faults;

/// Runs every probe against this machine's kernel.
pub fn probe(profile: Profile, seed: u64) -> Result<Observations, ProbeError> {
    let mut setup = StackSetup::new(profile, Faults::default(), seed);
    setup.linux = true;
    super::probe_all(setup)
}
