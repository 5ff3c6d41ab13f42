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
    pub const ALL: [Profile; 3] = [Profile::Rfc793, Profile::Rfc9293, Profile::Linux];

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
    pub value: u64,
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
}

/// A profile's description and parameters as stored in the table.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfileInfo {
    pub description: String,
    pub params: Params,
}

/// The contents of `profiles.toml`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ProfilesFile {
    pub profile: BTreeMap<Profile, ProfileInfo>,
}
