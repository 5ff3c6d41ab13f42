//! The `linux` target of `tcpconform timers`: not implemented yet. The
//! probes need a peer that answers in real time inside the harness's
//! network namespace (as `run::linux` does for scripts); until then the
//! target is refused with a usage error.

use super::estimate::Observations;
use super::probe::ProbeError;
use tcp_spec::Profile;

/// Refuses: the live probes of the kernel are not implemented.
pub fn probe(_profile: Profile, _seed: u64) -> Result<Observations, ProbeError> {
    Err(ProbeError::Stuck(
        "the linux target is not implemented yet (only own)".into(),
    ))
}
