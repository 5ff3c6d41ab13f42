//! Verdicts: what a divergence of a target means. A verdict is a claim
//! about someone else's code, so it is made only from typed evidence — the
//! runner's typed failure, the decoded packets, the table's rows and the
//! profiles' parameters — and only two profiles may explain a behaviour:
//! the RFC profile the verdict is relative to, and the target's own
//! profile, whose documented departures are still reported at the level of
//! the rule they depart from.
//!
//! - [`class`]: the classes (conforms, allowed, inconclusive, not
//!   modelled, API, deviation, SHOULD-deviation, MUST-violation).
//! - [`wire_tcb`]: the target's sequence variables as its packets show
//!   them, so events are classified in its own sequence space.
//! - [`case`]: what a rule looks at.
//! - [`rules`]: the classification rules, one function each.
//! - [`stacks`]: the source locations behind the departures of stacks
//!   without a profile of their own (smoltcp).
//! - [`report`]: text, Markdown and JSON renderings.

pub mod case;
pub mod class;
pub mod report;
pub mod rules;
pub mod stacks;
pub mod wire_tcb;

pub use case::{Case, Judge};
pub use class::{Class, Divergence, Kind};
pub use report::ScriptDiff;
pub use rules::{classify_with, Rule, RULES};

/// Classifies one failure with every rule.
pub fn classify(c: &Case<'_>) -> Vec<Divergence> {
    classify_with(c, RULES)
}

/// The profile a target's behaviour is documented in: `linux` for the
/// kernel, the active profile for the own stack (in-process or behind TUN).
pub fn target_profile(target: &str, active: tcp_spec::Profile) -> tcp_spec::Profile {
    match target {
        "linux" => tcp_spec::Profile::Linux,
        // An exec target named in a targets file may declare one.
        other => crate::run::exec::profile_of(other).unwrap_or(active),
    }
}
