//! Profiles: the places where the RFCs leave a choice or where a real stack
//! legitimately differs. Each profile selects its own rows of the table and
//! its own parameter values (`specs/table/profiles.toml`); every value names
//! where it is documented.

use crate::level::Level;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

/// The profiles of the table.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Profile {
    /// RFC 793 as first published: any in-window RST resets, an in-window SYN
    /// resets, no challenge ACKs.
    Rfc793,
    /// The default: RFC 9293 with RFC 5961's challenge ACKs and the RFC 1122
    /// corrections.
    #[default]
    Rfc9293,
    /// Documented choices of the Linux kernel.
    Linux,
}

impl Profile {
    /// Every profile.
    pub const ALL: [Profile; 3] = [Profile::Rfc793, Profile::Rfc9293, Profile::Linux];

    /// The profile's name as written on the command line and in the table.
    pub fn name(self) -> &'static str {
        match self {
            Profile::Rfc793 => "rfc793",
            Profile::Rfc9293 => "rfc9293",
            Profile::Linux => "linux",
        }
    }
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An unknown profile name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown profile `{0}` (known: rfc793, rfc9293, linux)")]
pub struct UnknownProfile(pub String);

impl FromStr for Profile {
    type Err = UnknownProfile;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Profile::ALL
            .into_iter()
            .find(|p| p.name().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| UnknownProfile(s.to_string()))
    }
}

/// One parameter value and where it is documented.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sourced {
    /// The value, in the unit its name gives.
    pub value: u64,
    /// Where the value is documented (an RFC section or a source file).
    pub source: String,
    /// RFC profiles: the keyword level of the rule that sets the value. A
    /// stack's profile: the level of the rule the value departs from
    /// (`none` when it does not depart). `None` while not graded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level: Option<Level>,
}

/// The numeric parameters of a profile (all times in milliseconds).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// RTO before any RTT sample (RFC 6298 §2.1).
    pub rto_initial_ms: Sourced,
    /// Lower bound of a computed RTO (RFC 6298 §2.4).
    pub rto_min_ms: Sourced,
    /// Upper bound of RTO (RFC 6298 §2.5).
    pub rto_max_ms: Sourced,
    /// Clock granularity G (RFC 6298 §2).
    pub clock_granularity_ms: Sourced,
    /// Maximum segment lifetime (RFC 9293 §3.4.2).
    pub msl_ms: Sourced,
    /// How long TIME-WAIT lasts (2·MSL in the RFCs).
    pub time_wait_ms: Sourced,
    /// Upper bound for delaying an ACK (RFC 1122 §4.2.3.2, RFC 9293 §3.8.6.3).
    pub delayed_ack_max_ms: Sourced,
    /// Challenge ACKs sent at most this often per second (RFC 5961 §10);
    /// 0 = unlimited.
    pub challenge_ack_per_sec: Sourced,
    /// R2 for a SYN as a count (RFC 9293 §3.8.3, RFC 1122 §4.2.3.5): how
    /// often an unanswered SYN or SYN-ACK is retransmitted before the open
    /// fails, one RTO after the last. Under the RFC profiles the count must
    /// keep a SYN going for at least three minutes (MUST-23) with the
    /// profile's RTO schedule (`rto::syn_schedule`).
    pub syn_retries: Sourced,
    /// Default send MSS over IPv4 when the peer sends no MSS option
    /// (RFC 9293 §3.7.1, RFC 1122 §4.2.2.6).
    pub default_mss_ipv4: Sourced,
    /// Default send MSS over IPv6 (RFC 8200 §5 minimum MTU minus headers).
    pub default_mss_ipv6: Sourced,
    /// A floor under the variance term of the RTO (0: RFC 6298 §2.3 as
    /// written; Linux: its minimum RTO).
    pub rto_var_floor_ms: Sourced,
    /// SYN retransmissions that keep the initial RTO before doubling
    /// starts (0: RFC 6298 §5.5 doubles at every expiry).
    pub syn_linear_timeouts: Sourced,
    /// One timestamp for every rate-limited reply to an out-of-window or
    /// otherwise unacceptable segment: at most one such reply per this many
    /// ms (0: no such shared limiter; challenge ACKs are still limited by
    /// `challenge_ack_per_sec`).
    pub oow_ack_interval_ms: Sourced,
    /// Octets of new data a zero-window probe carries (RFC 9293 §3.8.6.1:
    /// 1); 0 = a bare ACK with SEQ = SND.UNA − 1, which elicits an ACK
    /// without data.
    pub zero_window_probe_octets: Sourced,
    /// After an acknowledgment outside (ISS, SND.NXT] in SYN-SENT, the SYN
    /// is resent this many ms later (0: only the retransmission timer
    /// resends it; RFC 9293 §3.10.7.3 discards the segment and returns).
    pub syn_resend_after_bad_ack_ms: Sourced,
}

impl Params {
    /// The parameter called `name`.
    pub fn get(&self, name: &str) -> Option<&Sourced> {
        self.entries()
            .into_iter()
            .find(|(n, _)| *n == name)
            .map(|(_, s)| s)
    }
}

/// The numeric values of a profile's parameters ([`Params`] without the
/// sources and levels), as constants: `build.rs` reads them from
/// `table/profiles.toml` at build time, so a stack gets them with no
/// run-time parse ([`Profile::values`]). The field meanings are those of
/// [`Params`]; a test holds the two equal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(missing_docs)] // each field is documented on `Params`
pub struct ParamValues {
    pub rto_initial_ms: u64,
    pub rto_min_ms: u64,
    pub rto_max_ms: u64,
    pub clock_granularity_ms: u64,
    pub msl_ms: u64,
    pub time_wait_ms: u64,
    pub delayed_ack_max_ms: u64,
    pub challenge_ack_per_sec: u64,
    pub syn_retries: u64,
    pub default_mss_ipv4: u64,
    pub default_mss_ipv6: u64,
    pub rto_var_floor_ms: u64,
    pub syn_linear_timeouts: u64,
    pub oow_ack_interval_ms: u64,
    pub zero_window_probe_octets: u64,
    pub syn_resend_after_bad_ack_ms: u64,
}

mod generated {
    use super::ParamValues;
    include!(concat!(env!("OUT_DIR"), "/param_values.rs"));
}

impl Profile {
    /// The profile's parameter values, fixed at build time from
    /// `table/profiles.toml`.
    pub const fn values(self) -> ParamValues {
        match self {
            Profile::Rfc793 => generated::RFC793,
            Profile::Rfc9293 => generated::RFC9293,
            Profile::Linux => generated::LINUX,
        }
    }
}

impl Params {
    /// The values without their sources.
    pub fn values(&self) -> ParamValues {
        ParamValues {
            rto_initial_ms: self.rto_initial_ms.value,
            rto_min_ms: self.rto_min_ms.value,
            rto_max_ms: self.rto_max_ms.value,
            clock_granularity_ms: self.clock_granularity_ms.value,
            msl_ms: self.msl_ms.value,
            time_wait_ms: self.time_wait_ms.value,
            delayed_ack_max_ms: self.delayed_ack_max_ms.value,
            challenge_ack_per_sec: self.challenge_ack_per_sec.value,
            syn_retries: self.syn_retries.value,
            default_mss_ipv4: self.default_mss_ipv4.value,
            default_mss_ipv6: self.default_mss_ipv6.value,
            rto_var_floor_ms: self.rto_var_floor_ms.value,
            syn_linear_timeouts: self.syn_linear_timeouts.value,
            oow_ack_interval_ms: self.oow_ack_interval_ms.value,
            zero_window_probe_octets: self.zero_window_probe_octets.value,
            syn_resend_after_bad_ack_ms: self.syn_resend_after_bad_ack_ms.value,
        }
    }

    /// Every parameter with its name as written in `profiles.toml`. The
    /// destructuring names every field, so a new parameter cannot be left
    /// out of this list (and out of the checks that walk it).
    pub fn entries(&self) -> [(&'static str, &Sourced); 16] {
        let Params {
            rto_initial_ms,
            rto_min_ms,
            rto_max_ms,
            clock_granularity_ms,
            msl_ms,
            time_wait_ms,
            delayed_ack_max_ms,
            challenge_ack_per_sec,
            syn_retries,
            default_mss_ipv4,
            default_mss_ipv6,
            rto_var_floor_ms,
            syn_linear_timeouts,
            oow_ack_interval_ms,
            zero_window_probe_octets,
            syn_resend_after_bad_ack_ms,
        } = self;
        [
            ("rto_initial_ms", rto_initial_ms),
            ("rto_min_ms", rto_min_ms),
            ("rto_max_ms", rto_max_ms),
            ("clock_granularity_ms", clock_granularity_ms),
            ("msl_ms", msl_ms),
            ("time_wait_ms", time_wait_ms),
            ("delayed_ack_max_ms", delayed_ack_max_ms),
            ("challenge_ack_per_sec", challenge_ack_per_sec),
            ("syn_retries", syn_retries),
            ("default_mss_ipv4", default_mss_ipv4),
            ("default_mss_ipv6", default_mss_ipv6),
            ("rto_var_floor_ms", rto_var_floor_ms),
            ("syn_linear_timeouts", syn_linear_timeouts),
            ("oow_ack_interval_ms", oow_ack_interval_ms),
            ("zero_window_probe_octets", zero_window_probe_octets),
            ("syn_resend_after_bad_ack_ms", syn_resend_after_bad_ack_ms),
        ]
    }
}

/// A profile's description and parameters as stored in the table.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfileInfo {
    /// One sentence on what the profile is.
    pub description: String,
    /// Its parameters.
    pub params: Params,
}

/// The contents of `profiles.toml`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ProfilesFile {
    pub profile: BTreeMap<Profile, ProfileInfo>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The build-time constants are the values the table loads with.
    #[test]
    fn build_time_values_equal_the_loaded_table() {
        let spec = match crate::Spec::bundled() {
            Ok(s) => s,
            Err(e) => panic!("bundled table: {e}"),
        };
        for p in Profile::ALL {
            assert_eq!(p.values(), spec.profile(p).params.values(), "{p}");
        }
    }

    /// Every profile's TIME-WAIT is twice its MSL (RFC 9293 §3.6 MUST-13):
    /// a stack's shorter TIME-WAIT then departs only from the MSL value,
    /// which RFC 9293 §3.4.2 states without a keyword.
    #[test]
    fn time_wait_is_twice_the_msl_in_every_profile() {
        for p in Profile::ALL {
            let v = p.values();
            assert_eq!(v.time_wait_ms, 2 * v.msl_ms, "{p}");
        }
    }
}
