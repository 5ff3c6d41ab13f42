//! Requirement levels: the keyword (RFC 2119, RFC 8174) of the rule a row
//! or parameter implements, and for a stack's profile the level of the rule
//! it departs from. Verdicts are reported at these levels.

use serde::{Deserialize, Serialize};
use std::fmt;

/// The keyword level of a rule.
///
/// In the RFC profiles (`rfc793`, `rfc9293`) a row's level is that of the
/// sentence the row implements. In a stack's profile (`linux`) a row that
/// overrides or adds to the RFC rows carries the level of the rule its
/// behaviour departs from; [`Level::None`] there means a permitted choice.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
pub enum Level {
    /// No keyword: lower-case text, a description, or a free choice.
    #[default]
    #[serde(rename = "none")]
    None,
    /// MAY / OPTIONAL.
    #[serde(rename = "MAY")]
    May,
    /// SHOULD / RECOMMENDED (and SHOULD NOT).
    #[serde(rename = "SHOULD")]
    Should,
    /// MUST / REQUIRED / SHALL (and MUST NOT).
    #[serde(rename = "MUST")]
    Must,
}

impl Level {
    /// All levels, weakest first.
    pub const ALL: [Level; 4] = [Level::None, Level::May, Level::Should, Level::Must];

    /// The keyword as written in the table.
    pub fn name(self) -> &'static str {
        match self {
            Level::None => "none",
            Level::May => "MAY",
            Level::Should => "SHOULD",
            Level::Must => "MUST",
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Where a stack implements a behaviour: the function (with its source
/// file), the sysctl that tunes it, and the versions that behave so.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mechanism {
    /// `path/file.c function()`, e.g.
    /// `net/ipv4/tcp_input.c tcp_rcv_synsent_state_process()`.
    pub function: String,
    /// The sysctl that changes it, when one exists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sysctl: Option<String>,
    /// Versions with this behaviour, e.g. `>= 6.18` or `4.0 ..`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub versions: Option<String>,
}

impl fmt::Display for Mechanism {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.function)?;
        if let Some(s) = &self.sysctl {
            write!(f, "; sysctl {s}")?;
        }
        if let Some(v) = &self.versions {
            write!(f, "; kernels {v}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_order_from_weakest_to_strongest() {
        let mut v = Level::ALL.to_vec();
        v.sort();
        assert_eq!(v, Level::ALL);
        assert!(Level::Must > Level::Should && Level::Should > Level::May);
    }

    #[test]
    fn level_names_round_trip_through_toml() {
        #[derive(Deserialize)]
        struct W {
            l: Level,
        }
        for l in Level::ALL {
            let w: W = toml::from_str(&format!("l = \"{}\"", l.name())).unwrap();
            assert_eq!(w.l, l);
        }
        assert!(toml::from_str::<W>("l = \"must\"").is_err());
    }
}
