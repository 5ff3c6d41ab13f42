//! Table coverage: which rows of the specification a set of script runs
//! took, laid out as the table's state × event matrix.
//!
//! The own stack reports the row id of every transition it takes (the
//! traceability requirement of the design); a run's [`Trace`] keeps them.
//! [`Coverage::of`] counts them per row and per (state, row), against the
//! rows of one profile. Rows the socket-level script language cannot reach
//! are listed in [`UNREACHABLE`] with the reason; every other row of the
//! `rfc9293` profile is expected to be hit by the bundled suite.
//!
//! [`Trace`]: super::trace::Trace

use super::runner::{Outcome, RunReport};
use super::suite;
use super::trace::TraceKind;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use tcp_spec::{Profile, Spec, State};

/// Rows no packetdrill-syntax script can reach on a socket API, with the
/// reason (shown for uncovered rows).
pub const UNREACHABLE: &[(&str, &str)] = &[
    (
        "LISTEN.OPEN.active",
        "needs an active OPEN on a listening TCB; connect() on a listening socket is EINVAL on a socket API",
    ),
    (
        "LISTEN.OPEN.passive",
        "needs a second passive OPEN on the same TCB; listen() on a listening socket only changes the backlog",
    ),
    (
        "CONN.OPEN",
        "needs an OPEN on a TCB that exists; connect() on a connected socket is EISCONN before the stack sees it",
    ),
    (
        "LISTEN.SEND",
        "needs a SEND on a listening TCB; write() on a listening socket is ENOTCONN before the stack sees it",
    ),
];

/// The reason a row is listed as unreachable, if it is.
pub fn unreachable_reason(row: &str) -> Option<&'static str> {
    UNREACHABLE
        .iter()
        .find(|(id, _)| *id == row)
        .map(|(_, why)| *why)
}

/// The reason shown for an uncovered row that is not in [`UNREACHABLE`].
pub const NOT_EXERCISED: &str = "not exercised by the scripts";

/// Row hits of a set of runs against one profile's table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Coverage {
    /// The profile whose rows are counted.
    pub profile: Profile,
    /// Every row id of the profile, in table order, with its states.
    pub rows: Vec<(String, Vec<State>)>,
    /// Hits per row id (only rows with at least one hit).
    pub covered: BTreeMap<String, u64>,
    /// Hits per (state the transition started in, row id).
    pub by_state: BTreeMap<(State, String), u64>,
    /// Row ids the runs reported that are not rows of the profile.
    pub foreign: BTreeMap<String, u64>,
    /// Scripts counted.
    pub scripts: usize,
    /// Scripts that did not pass (their rows still count).
    pub not_passed: Vec<String>,
}

/// An uncovered row and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Uncovered {
    pub row: String,
    pub reason: &'static str,
}

impl Coverage {
    /// Counts the transitions in `reports` against the rows of `profile`.
    pub fn of(spec: &Spec, profile: Profile, reports: &[RunReport]) -> Coverage {
        let rows: Vec<(String, Vec<State>)> = spec
            .rows_of(profile)
            .map(|r| (r.id.clone(), r.from.clone()))
            .collect();
        let mut c = Coverage {
            profile,
            rows,
            covered: BTreeMap::new(),
            by_state: BTreeMap::new(),
            foreign: BTreeMap::new(),
            scripts: reports.len(),
            not_passed: Vec::new(),
        };
        for r in reports {
            if !matches!(r.outcome, Outcome::Passed) {
                c.not_passed.push(r.path.clone());
            }
            for e in &r.trace.entries {
                if let TraceKind::Transition { from, row, .. } = e.kind {
                    if c.rows.iter().any(|(id, _)| id == row) {
                        *c.covered.entry(row.to_string()).or_default() += 1;
                        *c.by_state.entry((from, row.to_string())).or_default() += 1;
                    } else {
                        *c.foreign.entry(row.to_string()).or_default() += 1;
                    }
                }
            }
        }
        c
    }

    /// Number of rows in the profile.
    pub fn rows_total(&self) -> usize {
        self.rows.len()
    }

    /// Number of rows hit at least once.
    pub fn rows_covered(&self) -> usize {
        self.covered.len()
    }

    /// The rows not hit, in table order, with the reason.
    pub fn uncovered(&self) -> Vec<Uncovered> {
        self.rows
            .iter()
            .filter(|(id, _)| !self.covered.contains_key(id))
            .map(|(id, _)| Uncovered {
                row: id.clone(),
                reason: unreachable_reason(id).unwrap_or(NOT_EXERCISED),
            })
            .collect()
    }

    /// `N of M rows covered (profile P)`.
    pub fn summary_line(&self) -> String {
        let unreachable = self
            .uncovered()
            .iter()
            .filter(|u| u.reason != NOT_EXERCISED)
            .count();
        format!(
            "{} of {} rows covered (profile {}; {} unreachable from scripts, {} not exercised)",
            self.rows_covered(),
            self.rows_total(),
            self.profile,
            unreachable,
            self.rows_total() - self.rows_covered() - unreachable
        )
    }

    /// The matrix as text: per state, one line per row that applies in it
    /// with the hits taken from that state; then the uncovered rows with
    /// their reasons and the summary line.
    pub fn text(&self) -> String {
        let mut s = String::new();
        let width = self
            .rows
            .iter()
            .map(|(id, _)| id.len())
            .max()
            .unwrap_or(8)
            .max(8);
        let _ = writeln!(
            s,
            "coverage of profile {} by {} script(s)",
            self.profile, self.scripts
        );
        for state in State::ALL {
            let rows: Vec<&String> = self
                .rows
                .iter()
                .filter(|(_, from)| from.contains(&state))
                .map(|(id, _)| id)
                .collect();
            if rows.is_empty() {
                continue;
            }
            let hit = rows
                .iter()
                .filter(|id| self.by_state.contains_key(&(state, (**id).clone())))
                .count();
            let _ = writeln!(s, "{} ({hit} of {} rows hit here)", state, rows.len());
            for id in rows {
                let n = self
                    .by_state
                    .get(&(state, id.clone()))
                    .copied()
                    .unwrap_or(0);
                let mark = if n > 0 {
                    String::new()
                } else if self.covered.contains_key(id) {
                    "  (hit in another state)".to_string()
                } else {
                    format!(
                        "  UNCOVERED: {}",
                        unreachable_reason(id).unwrap_or(NOT_EXERCISED)
                    )
                };
                let _ = writeln!(s, "  {id:<width$}  {n:>5}{mark}");
            }
        }
        if !self.foreign.is_empty() {
            let _ = writeln!(s, "rows reported that are not in profile {}:", self.profile);
            for (id, n) in &self.foreign {
                let _ = writeln!(s, "  {id:<width$}  {n:>5}");
            }
        }
        let unc = self.uncovered();
        if !unc.is_empty() {
            let _ = writeln!(s, "uncovered rows:");
            for u in &unc {
                let _ = writeln!(s, "  {:<width$}  {}", u.row, u.reason);
            }
        }
        if !self.not_passed.is_empty() {
            let _ = writeln!(
                s,
                "note: {} script(s) did not pass; their rows are counted up to where they stopped:",
                self.not_passed.len()
            );
            for p in &self.not_passed {
                let _ = writeln!(s, "  {p}");
            }
        }
        let _ = writeln!(s, "{}", self.summary_line());
        s
    }

    /// Stable machine-readable form: `profile`, `rows_total`,
    /// `rows_covered`, `covered` (row → hits), `uncovered` (`row`,
    /// `reason`), plus `scripts`, `not_passed`, `by_state` and `foreign`.
    pub fn json(&self) -> serde_json::Value {
        let mut by_state = serde_json::Map::new();
        for state in State::ALL {
            let m: serde_json::Map<String, serde_json::Value> = self
                .by_state
                .iter()
                .filter(|((st, _), _)| *st == state)
                .map(|((_, id), n)| (id.clone(), serde_json::Value::from(*n)))
                .collect();
            if !m.is_empty() {
                by_state.insert(state.name().to_string(), serde_json::Value::Object(m));
            }
        }
        serde_json::json!({
            "profile": self.profile.name(),
            "rows_total": self.rows_total(),
            "rows_covered": self.rows_covered(),
            "covered": self.covered,
            "uncovered": self.uncovered().iter().map(|u| serde_json::json!({
                "row": u.row, "reason": u.reason,
            })).collect::<Vec<_>>(),
            "scripts": self.scripts,
            "not_passed": self.not_passed,
            "by_state": by_state,
            "foreign": self.foreign,
        })
    }
}

/// Runs every script under `paths` on a fresh `own` target with `profile`
/// and counts the rows taken.
pub fn run_own(paths: &[PathBuf], profile: Profile) -> Result<(Vec<RunReport>, Coverage), String> {
    run_on(paths, &super::TargetName::Own, profile)
}

/// Runs every script under `paths` on a fresh `target` each and counts the
/// rows it reports (none for a target that cannot say which row it took).
pub fn run_on(
    paths: &[PathBuf],
    target: &super::TargetName,
    profile: Profile,
) -> Result<(Vec<RunReport>, Coverage), String> {
    let spec = Spec::bundled().map_err(|e| format!("the specification does not load: {e}"))?;
    let scripts = suite::discover(paths)?;
    let opts = super::runner::RunOptions::default();
    let mut reports = Vec::with_capacity(scripts.len());
    for path in &scripts {
        let mut t = target.make(profile)?;
        reports.push(suite::run_file(path, t.as_mut(), &opts));
    }
    let cov = Coverage::of(spec, profile, &reports);
    Ok((reports, cov))
}
