//! What a divergence means: its [`Class`], the level of the rule involved,
//! and the [`Divergence`] record that reports carry.

use serde::{Deserialize, Serialize};
use tcp_spec::Level;

/// How a divergence relates to the RFCs (DESIGN of the verdicts: a claim
/// about someone else's code is right or says that it does not know).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Class {
    /// The target did what the RFC profile's row or model says; the script
    /// expected something else.
    #[serde(rename = "conforms")]
    Conforms,
    /// A MAY, or a choice the RFCs leave to the implementation (window
    /// size, options, PSH, how much data to send, delaying an ACK).
    #[serde(rename = "allowed")]
    Allowed,
    /// The harness cannot decide (a timing miss within twice the
    /// tolerance, a packet it cannot read); never counted as a departure.
    #[serde(rename = "inconclusive")]
    Inconclusive,
    /// The table does not model the behaviour (fast retransmit, the persist
    /// timer): no claim either way.
    #[serde(rename = "not modelled")]
    NotModelled,
    /// Socket API semantics (which errno, when a call returns), not TCP.
    #[serde(rename = "API")]
    Api,
    /// A departure from a rule written without a keyword.
    #[serde(rename = "deviation")]
    Deviation,
    /// A departure from a SHOULD.
    #[serde(rename = "SHOULD-deviation")]
    ShouldDeviation,
    /// A departure from a MUST.
    #[serde(rename = "MUST-violation")]
    MustViolation,
}

impl Class {
    /// Every class, in report order (least severe first).
    pub const ALL: [Class; 8] = [
        Class::Conforms,
        Class::Allowed,
        Class::Inconclusive,
        Class::NotModelled,
        Class::Api,
        Class::Deviation,
        Class::ShouldDeviation,
        Class::MustViolation,
    ];

    /// The name used in reports.
    pub fn name(self) -> &'static str {
        match self {
            Class::Conforms => "conforms",
            Class::Allowed => "allowed",
            Class::Inconclusive => "inconclusive",
            Class::NotModelled => "not modelled",
            Class::Api => "API",
            Class::Deviation => "deviation",
            Class::ShouldDeviation => "SHOULD-deviation",
            Class::MustViolation => "MUST-violation",
        }
    }

    /// The class of behaviour that departs from a rule of `level`: a MAY
    /// leaves the choice open, so departing from it is allowed.
    pub fn departure(level: Level) -> Class {
        match level {
            Level::Must => Class::MustViolation,
            Level::Should => Class::ShouldDeviation,
            Level::May => Class::Allowed,
            Level::None => Class::Deviation,
        }
    }

    /// A departure from the RFCs (deviation, SHOULD-deviation or
    /// MUST-violation): what makes `diff` exit 1.
    pub fn departs(self) -> bool {
        matches!(
            self,
            Class::Deviation | Class::ShouldDeviation | Class::MustViolation
        )
    }
}

impl std::fmt::Display for Class {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Which part of the behaviour diverges.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// The advertised window.
    Window,
    /// The TCP options.
    Options,
    /// The PSH bit.
    Psh,
    /// When a packet was sent.
    Timing,
    /// A different packet in answer to a stimulus.
    Response,
    /// An expected packet that was not sent.
    Missing,
    /// A packet the script does not expect.
    Extra,
    /// A socket call's result or return time.
    Call,
    /// Trace comparison with the reference: windows differ.
    TraceWindow,
    /// Trace comparison with the reference: options differ.
    TraceOptions,
}

impl Kind {
    /// The name used in reports.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Window => "window",
            Kind::Options => "options",
            Kind::Psh => "psh",
            Kind::Timing => "timing",
            Kind::Response => "response",
            Kind::Missing => "missing",
            Kind::Extra => "extra",
            Kind::Call => "call",
            Kind::TraceWindow => "trace-window",
            Kind::TraceOptions => "trace-options",
        }
    }

    /// The same kind whether seen in a run or in a trace comparison.
    pub fn base(self) -> Kind {
        match self {
            Kind::TraceWindow => Kind::Window,
            Kind::TraceOptions => Kind::Options,
            k => k,
        }
    }
}

/// One classified divergence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Divergence {
    /// The target that departs (or `own vs <target>` for trace diffs).
    pub target: String,
    /// Which part of the behaviour.
    pub kind: Kind,
    /// 1-based script line (0 when none applies).
    pub line: usize,
    /// The stimulus line (last `<` or call before it) and the line itself,
    /// as written in the script.
    pub lines: Vec<String>,
    /// Expected, in script syntax (normalized).
    pub expected: String,
    /// What the target did (normalized).
    pub actual: String,
    /// What it means.
    pub class: Class,
    /// The keyword level of the rule involved, when one is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level: Option<Level>,
    /// Why: the rule, row or parameter that decides, or why nothing does.
    /// No measured times: those vary from run to run on a real clock.
    pub reason: String,
    /// What was measured (times in ms): shown in text reports, not kept
    /// in snapshots.
    #[serde(skip)]
    pub measured: Option<String>,
    /// The target's own profile documents the behaviour: the mechanism
    /// (function, sysctl, versions) named there. A documented departure is
    /// still reported at its level.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub documented: Option<String>,
    /// Table rows involved (the RFC profile's row first).
    pub rows: Vec<String>,
    /// Profile parameters involved, `profile.param = value (source)`.
    pub params: Vec<String>,
    /// RFC sections involved.
    pub rfc: Vec<String>,
    /// The rest of the script still applies (same next state): the line
    /// was masked and the script run on.
    #[serde(rename = "continued", default)]
    pub continues: bool,
}

impl Divergence {
    /// An unclassified (inconclusive) divergence of `target`'s `kind`.
    pub fn new(target: String, kind: Kind, expected: String, actual: String) -> Divergence {
        Divergence {
            target,
            kind,
            line: 0,
            lines: Vec::new(),
            expected,
            actual,
            class: Class::Inconclusive,
            level: None,
            reason: String::new(),
            measured: None,
            documented: None,
            rows: Vec::new(),
            params: Vec::new(),
            rfc: Vec::new(),
            continues: false,
        }
    }

    /// What makes two divergences the same for `docs/divergences.md`.
    pub fn key(&self) -> String {
        format!(
            "{}|{}|{}|{}",
            self.class.name(),
            self.kind.base().name(),
            self.reason,
            self.rows.join(",")
        )
    }

    /// The class with its level and whether it is documented, as a
    /// heading: `MUST-violation (documented)`.
    pub fn verdict(&self) -> String {
        let mut s = self.class.name().to_string();
        if self.documented.is_some() && self.class.departs() {
            s.push_str(" (documented)");
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn departure_classes_follow_the_level() {
        assert_eq!(Class::departure(Level::Must), Class::MustViolation);
        assert_eq!(Class::departure(Level::Should), Class::ShouldDeviation);
        assert_eq!(Class::departure(Level::May), Class::Allowed);
        assert_eq!(Class::departure(Level::None), Class::Deviation);
        let departs: Vec<Class> = Class::ALL.into_iter().filter(|c| c.departs()).collect();
        assert_eq!(
            departs,
            [
                Class::Deviation,
                Class::ShouldDeviation,
                Class::MustViolation
            ]
        );
    }

    #[test]
    fn class_names_are_their_serde_names() {
        for c in Class::ALL {
            let json = serde_json::to_string(&c).unwrap_or_default();
            assert_eq!(json, format!("\"{}\"", c.name()));
        }
    }
}
