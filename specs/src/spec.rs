//! The loaded table: rows, profiles, a per-profile lookup index, and the
//! consistency checks that make the table trustworthy as an oracle.

use crate::model::{Event, State};
use crate::profile::{Profile, ProfileInfo, ProfilesFile};
use crate::row::{RawRow, Row};
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet, HashSet, VecDeque};
use std::sync::OnceLock;

/// The table files compiled into the crate, in reading order.
pub const BUNDLED_FILES: &[(&str, &str)] = &[
    ("closed.toml", include_str!("../table/closed.toml")),
    ("listen.toml", include_str!("../table/listen.toml")),
    ("syn-sent.toml", include_str!("../table/syn-sent.toml")),
    (
        "seq-rst-syn.toml",
        include_str!("../table/seq-rst-syn.toml"),
    ),
    ("ack.toml", include_str!("../table/ack.toml")),
    ("text-fin.toml", include_str!("../table/text-fin.toml")),
    ("linux.toml", include_str!("../table/linux.toml")),
    ("calls.toml", include_str!("../table/calls.toml")),
    ("timeouts.toml", include_str!("../table/timeouts.toml")),
];

/// The profile file compiled into the crate.
pub const BUNDLED_PROFILES: &str = include_str!("../table/profiles.toml");

/// A table file that cannot be read as a table.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoadError {
    #[error("{file}: {message}")]
    /// A file is not valid TOML or does not have the table's shape.
    Toml {
        /// The file.
        file: String,
        /// What the TOML parser said.
        message: String,
    },
    #[error("{file}: row `{id}`: {message}")]
    /// A row is malformed.
    Row {
        /// The file.
        file: String,
        /// The row's id.
        id: String,
        /// What is wrong.
        message: String,
    },
    #[error("profiles: {0}")]
    /// The profiles file is malformed.
    Profiles(String),
}

/// Why `step` found no single row.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StepError {
    #[error("{event} cannot occur in {state}")]
    /// The event cannot occur in the state (e.g. an ACK class with no send space).
    Impossible {
        /// The state.
        state: State,
        /// The event.
        event: Event,
    },
    #[error("no row of profile {profile} covers {event} in {state} (a hole in the table)")]
    /// No row covers the event.
    Hole {
        /// The profile asked.
        profile: Profile,
        /// The state.
        state: State,
        /// The event.
        event: Event,
    },
    #[error("rows {rows:?} of profile {profile} all cover {event} in {state} (an overlap)")]
    /// More than one row covers the event.
    Overlap {
        /// The profile asked.
        profile: Profile,
        /// The state.
        state: State,
        /// The event.
        event: Event,
        /// The ids of the rows.
        rows: Vec<String>,
    },
    #[error("the bundled table does not load: {0}")]
    /// The bundled table does not load.
    Load(#[from] LoadError),
}

/// A defect found by [`Spec::check`], naming what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// No row of `profile` covers a possible `event` in `state`.
    Hole {
        /// The profile.
        profile: Profile,
        /// The state.
        state: State,
        /// The event.
        event: Event,
    },
    /// Several rows of `profile` cover `event` in `state`.
    Overlap {
        /// The profile.
        profile: Profile,
        /// The state.
        state: State,
        /// The event.
        event: Event,
        /// The ids of the rows.
        rows: Vec<String>,
    },
    /// Two rows share an id.
    DuplicateId(String),
    /// A row cites no source.
    NoSource(String),
    /// A row belongs to no profile.
    NoProfile(String),
    /// A row that answers no possible event under one of its profiles.
    DeadRow {
        /// The row's id.
        row: String,
        /// The profile under which it is dead.
        profile: Profile,
    },
    /// `overrides` / `overridden_by` name a row that does not exist or
    /// does not declare the other side.
    BadOverride {
        /// The row declaring the override.
        row: String,
        /// The row it names.
        target: String,
    },
    /// A state no event of the profile leads to.
    Unreachable {
        /// The profile.
        profile: Profile,
        /// The state.
        state: State,
    },
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Problem::Hole {
                profile,
                state,
                event,
            } => write!(f, "hole: [{profile}] {state} × {event}: no row"),
            Problem::Overlap {
                profile,
                state,
                event,
                rows,
            } => write!(f, "overlap: [{profile}] {state} × {event}: rows {}", rows.join(", ")),
            Problem::DuplicateId(id) => write!(f, "duplicate row id `{id}`"),
            Problem::NoSource(id) => write!(f, "row `{id}` cites no RFC section"),
            Problem::NoProfile(id) => write!(f, "row `{id}` belongs to no profile"),
            Problem::DeadRow { row, profile } => {
                write!(f, "row `{row}` answers no possible event under {profile}")
            }
            Problem::BadOverride { row, target } => write!(
                f,
                "row `{row}` and `{target}`: override declared on one side only (or `{target}` is missing)"
            ),
            Problem::Unreachable { profile, state } => {
                write!(f, "[{profile}] {state} is not reachable from CLOSED")
            }
        }
    }
}

/// Lookup cell: which row (index into `rows`) covers an event, or why none.
#[derive(Clone, Debug, PartialEq)]
enum Cell {
    Impossible,
    Hole,
    One(u16),
    Many(Vec<u16>),
}

/// The whole specification.
#[derive(Debug)]
pub struct Spec {
    rows: Vec<Row>,
    profiles: BTreeMap<Profile, ProfileInfo>,
    /// `index[profile][state][event.index()]`.
    index: Vec<Vec<Vec<Cell>>>,
}

impl Spec {
    /// The table compiled into this crate, loaded once.
    pub fn bundled() -> Result<&'static Spec, LoadError> {
        static SPEC: OnceLock<Result<Spec, LoadError>> = OnceLock::new();
        SPEC.get_or_init(|| Spec::from_sources(BUNDLED_FILES, BUNDLED_PROFILES))
            .as_ref()
            .map_err(Clone::clone)
    }

    /// Loads a table from `(file name, TOML text)` pairs and a profiles file.
    pub fn from_sources(files: &[(&str, &str)], profiles: &str) -> Result<Spec, LoadError> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct TableFile {
            row: Vec<RawRow>,
        }
        let mut rows = Vec::new();
        for (file, text) in files {
            let parsed: TableFile = toml::from_str(text).map_err(|e| LoadError::Toml {
                file: file.to_string(),
                message: e.to_string(),
            })?;
            for raw in parsed.row {
                let id = raw.id.clone();
                rows.push(raw.into_row().map_err(|message| LoadError::Row {
                    file: file.to_string(),
                    id,
                    message,
                })?);
            }
        }
        let profiles: ProfilesFile =
            toml::from_str(profiles).map_err(|e| LoadError::Profiles(e.to_string()))?;
        for p in Profile::ALL {
            if !profiles.profile.contains_key(&p) {
                return Err(LoadError::Profiles(format!(
                    "profile `{p}` is not described"
                )));
            }
        }
        Ok(Spec::from_rows(rows, profiles.profile))
    }

    /// Builds the lookup index over `rows`.
    pub fn from_rows(rows: Vec<Row>, profiles: BTreeMap<Profile, ProfileInfo>) -> Spec {
        let index = Profile::ALL
            .iter()
            .map(|&profile| {
                State::ALL
                    .iter()
                    .map(|&state| {
                        let mut cells = vec![Cell::Impossible; Event::INDEX_SPACE];
                        for ev in Event::enumerate(state) {
                            let applying: Vec<u16> = rows
                                .iter()
                                .enumerate()
                                .filter(|(_, r)| r.applies(profile, state, &ev))
                                .map(|(i, _)| i as u16)
                                .collect();
                            // A row named in another applying row's
                            // `overrides` gives way to it.
                            let hits: Vec<u16> = applying
                                .iter()
                                .copied()
                                .filter(|&i| {
                                    !applying.iter().any(|&j| {
                                        rows[j as usize].overrides.contains(&rows[i as usize].id)
                                    })
                                })
                                .collect();
                            cells[ev.index()] = match hits.len() {
                                0 => Cell::Hole,
                                1 => Cell::One(hits[0]),
                                _ => Cell::Many(hits),
                            };
                        }
                        cells
                    })
                    .collect()
            })
            .collect();
        Spec {
            rows,
            profiles,
            index,
        }
    }

    /// Every row, in file order.
    pub fn rows(&self) -> &[Row] {
        &self.rows
    }

    /// The row with this id.
    pub fn row(&self, id: &str) -> Option<&Row> {
        self.rows.iter().find(|r| r.id == id)
    }

    /// The rows of one profile.
    pub fn rows_of(&self, profile: Profile) -> impl Iterator<Item = &Row> {
        self.rows
            .iter()
            .filter(move |r| r.profiles.contains(&profile))
    }

    /// A profile's description and parameters.
    pub fn profile(&self, profile: Profile) -> &ProfileInfo {
        // `from_sources` guarantees every profile is present; `from_rows`
        // callers pass the bundled map.
        &self.profiles[&profile]
    }

    /// Every profile.
    pub fn profiles(&self) -> &BTreeMap<Profile, ProfileInfo> {
        &self.profiles
    }

    /// The reference model: the one row that applies to `event` in `state`
    /// under `profile`.
    pub fn step(&self, profile: Profile, state: State, event: &Event) -> Result<&Row, StepError> {
        let cell = &self.index[profile as usize][state as usize][event.index()];
        match cell {
            Cell::One(i) => Ok(&self.rows[*i as usize]),
            Cell::Impossible => Err(StepError::Impossible {
                state,
                event: *event,
            }),
            Cell::Hole => Err(StepError::Hole {
                profile,
                state,
                event: *event,
            }),
            Cell::Many(ix) => Err(StepError::Overlap {
                profile,
                state,
                event: *event,
                rows: ix
                    .iter()
                    .map(|i| self.rows[*i as usize].id.clone())
                    .collect(),
            }),
        }
    }

    /// Number of abstract events checked per profile (all states).
    pub fn event_count() -> usize {
        State::ALL.iter().map(|s| Event::enumerate(*s).len()).sum()
    }

    /// Every defect of the table: holes and overlaps per profile (each naming
    /// the state × event tuple), duplicate ids, rows without sources or
    /// profiles, dead rows, states unreachable from CLOSED.
    pub fn check(&self) -> Vec<Problem> {
        let mut problems = Vec::new();
        let mut live: HashSet<(Profile, u16)> = HashSet::new();
        for &profile in &Profile::ALL {
            for &state in &State::ALL {
                for ev in Event::enumerate(state) {
                    match &self.index[profile as usize][state as usize][ev.index()] {
                        Cell::One(i) => {
                            live.insert((profile, *i));
                        }
                        Cell::Hole => problems.push(Problem::Hole {
                            profile,
                            state,
                            event: ev,
                        }),
                        Cell::Many(ix) => {
                            live.extend(ix.iter().map(|i| (profile, *i)));
                            problems.push(Problem::Overlap {
                                profile,
                                state,
                                event: ev,
                                rows: ix
                                    .iter()
                                    .map(|i| self.rows[*i as usize].id.clone())
                                    .collect(),
                            })
                        }
                        Cell::Impossible => {}
                    }
                }
            }
            for state in self.unreachable(profile) {
                problems.push(Problem::Unreachable { profile, state });
            }
        }
        let mut ids = HashSet::new();
        for (i, row) in self.rows.iter().enumerate() {
            if !ids.insert(row.id.as_str()) {
                problems.push(Problem::DuplicateId(row.id.clone()));
            }
            if row.rfc.is_empty() {
                problems.push(Problem::NoSource(row.id.clone()));
            }
            if row.profiles.is_empty() {
                problems.push(Problem::NoProfile(row.id.clone()));
            }
            for &profile in &row.profiles {
                if !live.contains(&(profile, i as u16)) {
                    problems.push(Problem::DeadRow {
                        row: row.id.clone(),
                        profile,
                    });
                }
            }
            let one_sided = row
                .overrides
                .iter()
                .filter(|t| {
                    !self
                        .row(t)
                        .is_some_and(|o| o.overridden_by.contains(&row.id))
                })
                .chain(
                    row.overridden_by
                        .iter()
                        .filter(|t| !self.row(t).is_some_and(|o| o.overrides.contains(&row.id))),
                );
            for target in one_sided {
                problems.push(Problem::BadOverride {
                    row: row.id.clone(),
                    target: target.clone(),
                });
            }
        }
        problems
    }

    /// States no chain of this profile's rows leads to from CLOSED.
    pub fn unreachable(&self, profile: Profile) -> BTreeSet<State> {
        let mut seen = BTreeSet::from([State::Closed]);
        let mut queue = VecDeque::from([State::Closed]);
        while let Some(s) = queue.pop_front() {
            for row in self.rows_of(profile).filter(|r| r.from.contains(&s)) {
                let n = row.next.resolve(s);
                if seen.insert(n) {
                    queue.push_back(n);
                }
            }
        }
        State::ALL
            .into_iter()
            .filter(|s| !seen.contains(s))
            .collect()
    }

    /// How many possible events each row of `profile` covers.
    pub fn coverage_counts(&self, profile: Profile) -> BTreeMap<&str, usize> {
        let mut counts: BTreeMap<&str, usize> =
            self.rows_of(profile).map(|r| (r.id.as_str(), 0)).collect();
        for &state in &State::ALL {
            for ev in Event::enumerate(state) {
                if let Cell::One(i) = &self.index[profile as usize][state as usize][ev.index()] {
                    *counts
                        .entry(self.rows[*i as usize].id.as_str())
                        .or_default() += 1;
                }
            }
        }
        counts
    }
}

/// The profiles whose rows and parameters must all carry a requirement
/// level (a stack's profile is graded separately, row by row).
pub const GRADED_PROFILES: [Profile; 2] = [Profile::Rfc793, Profile::Rfc9293];

impl Spec {
    /// What keeps the RFC profiles ([`GRADED_PROFILES`]) from being fully
    /// graded: a row of theirs without `level`, a parameter of theirs
    /// without `level`, and (in any row) a `requirement` that is not an
    /// RFC 9293 appendix B id (`MUST-n`, `SHLD-n`, `MAY-n`, `REC-n`) or that
    /// comes without a `level`. Empty when the table is graded.
    pub fn grading_gaps(&self) -> Vec<String> {
        let mut gaps = Vec::new();
        for row in &self.rows {
            let graded: Vec<&str> = GRADED_PROFILES
                .iter()
                .filter(|p| row.profiles.contains(p))
                .map(|p| p.name())
                .collect();
            if row.level.is_none() && !graded.is_empty() {
                gaps.push(format!(
                    "row `{}` ({}) has no level",
                    row.id,
                    graded.join(", ")
                ));
            }
            // A stack's own rows document departures: the level departed
            // from and the code that behaves so.
            let stack_only = row.profiles.iter().all(|p| !GRADED_PROFILES.contains(p));
            if stack_only && (row.level.is_none() || row.mechanism.is_none()) {
                gaps.push(format!(
                    "row `{}` of a stack's profile lacks its level or mechanism",
                    row.id
                ));
            }
            if let Some(req) = &row.requirement {
                if !is_requirement_id(req) {
                    gaps.push(format!(
                        "row `{}`: requirement `{req}` is not MUST-n, SHLD-n, MAY-n or REC-n",
                        row.id
                    ));
                }
                if row.level.is_none() {
                    gaps.push(format!(
                        "row `{}`: requirement `{req}` without a level",
                        row.id
                    ));
                }
            }
        }
        for p in Profile::ALL {
            if let Some(info) = self.profiles.get(&p) {
                for (name, v) in info.params.entries() {
                    if v.level.is_none() {
                        gaps.push(format!("parameter {p}.{name} has no level"));
                    }
                }
            }
        }
        gaps
    }
}

/// `MUST-23`, `SHLD-31`, `MAY-12`, `REC-1`: the labels of RFC 9293 §2.1.
fn is_requirement_id(s: &str) -> bool {
    s.split_once('-').is_some_and(|(kind, n)| {
        matches!(kind, "MUST" | "SHLD" | "MAY" | "REC")
            && !n.is_empty()
            && !n.starts_with('0')
            && n.bytes().all(|b| b.is_ascii_digit())
    })
}

/// The reference model over the bundled table: the one row that applies to
/// `event` in `state` under `profile`.
pub fn step(profile: Profile, state: State, event: &Event) -> Result<&'static Row, StepError> {
    Spec::bundled()?.step(profile, state, event)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{AckClass, SegmentEvent, SeqClass};

    fn bundled() -> &'static Spec {
        match Spec::bundled() {
            Ok(s) => s,
            Err(e) => panic!("bundled table does not load: {e}"),
        }
    }

    fn report(problems: &[Problem]) -> String {
        let mut s = format!("{} problems:\n", problems.len());
        for p in problems.iter().take(40) {
            s.push_str(&format!("  {p}\n"));
        }
        s
    }

    /// Exactly one row per possible event under every profile, unique ids,
    /// sources everywhere, no dead rows, every state reachable.
    #[test]
    fn table_is_complete_and_consistent() {
        let spec = bundled();
        let problems = spec.check();
        assert!(problems.is_empty(), "{}", report(&problems));
        for p in Profile::ALL {
            let n = spec.rows_of(p).count();
            eprintln!(
                "profile {p}: {n} rows, {} events checked",
                Spec::event_count()
            );
        }
    }

    /// The check is sensitive: deleting any single row leaves a hole (or an
    /// unreachable state), duplicating any row gives an overlap and a
    /// duplicate id.
    #[test]
    fn deleting_or_duplicating_any_row_is_caught() {
        let spec = bundled();
        for (i, row) in spec.rows().iter().enumerate() {
            let mut fewer = spec.rows().to_vec();
            fewer.remove(i);
            let broken = Spec::from_rows(fewer, spec.profiles().clone());
            let problems = broken.check();
            assert!(
                problems.iter().any(|p| matches!(
                    p,
                    Problem::Hole { .. }
                        | Problem::Unreachable { .. }
                        | Problem::BadOverride { .. }
                )),
                "deleting `{}` went unnoticed",
                row.id
            );
            let hole = problems.iter().find(|p| matches!(p, Problem::Hole { .. }));
            if let Some(h) = hole {
                let text = h.to_string();
                assert!(
                    text.contains("hole: ["),
                    "hole report names the tuple: {text}"
                );
            }

            let mut more = spec.rows().to_vec();
            more.push(row.clone());
            let broken = Spec::from_rows(more, spec.profiles().clone());
            let problems = broken.check();
            assert!(problems.contains(&Problem::DuplicateId(row.id.clone())));
            assert!(
                problems.iter().any(|p| matches!(p, Problem::Overlap { rows, .. } if rows.iter().filter(|r| **r == row.id).count() == 2)),
                "duplicating `{}` gave no overlap",
                row.id
            );
        }
    }

    #[test]
    fn a_hole_names_profile_state_and_event() {
        let spec = bundled();
        let rows: Vec<Row> = spec
            .rows()
            .iter()
            .filter(|r| r.id != "OPEN.RST.exact")
            .cloned()
            .collect();
        let broken = Spec::from_rows(rows, spec.profiles().clone());
        let text: Vec<String> = broken.check().iter().map(|p| p.to_string()).collect();
        assert!(
            text.iter()
                .any(|t| t.contains("[rfc9293] ESTABLISHED × segment R. seq=left-edge")),
            "{text:?}"
        );
    }

    #[test]
    fn step_answers_known_cases() {
        let rst = |seq| {
            Event::Segment(SegmentEvent {
                syn: false,
                fin: false,
                rst: true,
                payload: seq == SeqClass::Overlap,
                seq,
                ack: AckClass::Absent,
            })
        };
        let id = |p, s, e: Event| match step(p, s, &e) {
            Ok(r) => r.id.clone(),
            Err(err) => panic!("{err}"),
        };
        assert_eq!(
            id(
                Profile::Rfc9293,
                State::Established,
                rst(SeqClass::LeftEdge)
            ),
            "OPEN.RST.exact"
        );
        assert_eq!(
            id(Profile::Rfc9293, State::Established, rst(SeqClass::Inside)),
            "SYNC.RST.challenge"
        );
        assert_eq!(
            id(Profile::Rfc793, State::Established, rst(SeqClass::Inside)),
            "793.OPEN.RST"
        );
        assert_eq!(
            id(Profile::Linux, State::Established, rst(SeqClass::Overlap)),
            "LX.RST.overlap"
        );
        assert_eq!(
            id(Profile::Rfc9293, State::Established, rst(SeqClass::Beyond)),
            "SYNC.RST.outside"
        );
        assert!(matches!(
            step(Profile::Rfc9293, State::Listen, &rst(SeqClass::Inside)),
            Err(StepError::Impossible { .. })
        ));
    }

    /// Rows that replace another for part of its events take exactly
    /// those: the simultaneous-open SYN-ACK, and the Linux rows for a
    /// SYN-ACK with FIN, a FIN after the peer's FIN and ABORT in TIME-WAIT.
    #[test]
    fn overriding_rows_take_exactly_their_events() {
        let seg = |syn, fin, seq, ack| {
            Event::Segment(SegmentEvent {
                syn,
                fin,
                rst: false,
                payload: false,
                seq,
                ack,
            })
        };
        let with_data = |e: Event| match e {
            Event::Segment(s) => Event::Segment(SegmentEvent { payload: true, ..s }),
            other => other,
        };
        let abort = Event::Call {
            call: crate::model::UserCall::Abort,
        };
        use AckClass::{Absent, Dup, New, TooOld};
        use Profile::{Linux, Rfc793, Rfc9293};
        use SeqClass::{Below, Inside, LeftEdge, NotApplicable, Overlap};
        use State::{CloseWait, LastAck, SynReceived, SynSent, TimeWait};
        let cases = [
            (
                Rfc793,
                SynReceived,
                seg(true, false, Below, New),
                "SR.SYN-ACK.simultaneous",
            ),
            (
                Rfc9293,
                SynReceived,
                seg(true, false, Below, New),
                "SR.SYN-ACK.simultaneous",
            ),
            (
                Linux,
                SynReceived,
                seg(true, false, Below, New),
                "SR.SYN-ACK.simultaneous",
            ),
            (
                Rfc9293,
                SynReceived,
                seg(true, true, Below, New),
                "SYNC.SEQ.unacceptable",
            ),
            (
                Rfc9293,
                SynReceived,
                seg(true, false, Below, Absent),
                "SYNC.SEQ.unacceptable",
            ),
            (
                Linux,
                SynReceived,
                seg(true, false, Below, Absent),
                "LX.SR.SYN.retransmitted",
            ),
            (
                Rfc9293,
                SynSent,
                seg(true, true, NotApplicable, New),
                "SS.SYN-ACK-FIN",
            ),
            (
                Linux,
                SynSent,
                seg(true, true, NotApplicable, New),
                "LX.SS.SYN-ACK-FIN",
            ),
            (
                Linux,
                CloseWait,
                seg(false, true, LeftEdge, Dup),
                "LX.END.FIN.new",
            ),
            (
                Linux,
                LastAck,
                seg(false, true, Inside, New),
                "LX.END.FIN.new",
            ),
            (
                Linux,
                CloseWait,
                with_data(seg(false, true, Overlap, Dup)),
                "END.FIN",
            ),
            (Linux, TimeWait, seg(false, true, LeftEdge, Dup), "END.FIN"),
            (
                Linux,
                CloseWait,
                seg(false, true, LeftEdge, TooOld),
                "SYNC.ACK.too-old",
            ),
            (
                Rfc9293,
                CloseWait,
                seg(false, true, LeftEdge, Dup),
                "END.FIN",
            ),
            (Linux, TimeWait, abort, "LX.TW.ABORT"),
            (Linux, LastAck, abort, "END.ABORT"),
            (Rfc9293, TimeWait, abort, "END.ABORT"),
        ];
        for (profile, state, event, want) in cases {
            match step(profile, state, &event) {
                Ok(row) => assert_eq!(row.id, want, "[{profile}] {state} × {event}"),
                Err(e) => panic!("{e}"),
            }
        }
    }

    #[test]
    fn every_profile_has_parameters_with_sources() {
        let spec = bundled();
        for p in Profile::ALL {
            let info = spec.profile(p);
            assert!(!info.description.is_empty());
            assert!(!info.params.rto_min_ms.source.is_empty());
        }
        assert_eq!(spec.profile(Profile::Linux).params.rto_min_ms.value, 200);
        assert_eq!(spec.profile(Profile::Rfc9293).params.rto_min_ms.value, 1000);
    }

    /// Every row and parameter of the RFC profiles carries its requirement
    /// level (and any requirement id is well formed).
    #[test]
    fn every_rfc_row_and_parameter_has_a_level() {
        let gaps = bundled().grading_gaps();
        assert!(gaps.is_empty(), "ungraded:\n{}", gaps.join("\n"));
    }

    /// The check is sensitive: taking the level off any one RFC row or any
    /// one RFC parameter is reported, naming it.
    #[test]
    fn removing_any_one_level_is_caught() {
        let spec = bundled();
        let mut checked = 0;
        for (i, row) in spec.rows().iter().enumerate() {
            if !GRADED_PROFILES.iter().any(|p| row.profiles.contains(p)) {
                continue;
            }
            let mut rows = spec.rows().to_vec();
            rows[i].level = None;
            let gaps = Spec::from_rows(rows, spec.profiles().clone()).grading_gaps();
            assert!(
                gaps.iter().any(|g| g.contains(&format!("`{}`", row.id))),
                "removing the level of `{}` went unnoticed: {gaps:?}",
                row.id
            );
            checked += 1;
        }
        assert!(checked > 80, "{checked} RFC rows");
        for p in GRADED_PROFILES {
            let names: Vec<&str> = spec
                .profile(p)
                .params
                .entries()
                .iter()
                .map(|(n, _)| *n)
                .collect();
            for name in names {
                // Drop the key as if it had been deleted from profiles.toml.
                let mut v = match serde_json::to_value(spec.profile(p)) {
                    Ok(v) => v,
                    Err(e) => panic!("{e}"),
                };
                let removed = v["params"][name]
                    .as_object_mut()
                    .and_then(|o| o.remove("level"));
                assert!(removed.is_some(), "{p}.{name} had no level to remove");
                let info: ProfileInfo = match serde_json::from_value(v) {
                    Ok(i) => i,
                    Err(e) => panic!("{e}"),
                };
                let mut profiles = spec.profiles().clone();
                profiles.insert(p, info);
                let gaps = Spec::from_rows(spec.rows().to_vec(), profiles).grading_gaps();
                assert_eq!(
                    gaps,
                    vec![format!("parameter {p}.{name} has no level")],
                    "removing the level of {p}.{name}"
                );
            }
        }
    }

    #[test]
    fn requirement_ids_are_checked() {
        for good in ["MUST-1", "MUST-23", "SHLD-31", "MAY-12", "REC-1"] {
            assert!(is_requirement_id(good), "{good}");
        }
        for bad in [
            "MUST", "MUST-", "MUST-01", "SHOULD-3", "must-2", "MUST 13", "MAY-1a",
        ] {
            assert!(!is_requirement_id(bad), "{bad}");
        }
        let spec = bundled();
        let mut rows = spec.rows().to_vec();
        let i = rows.iter().position(|r| r.id == "TW.2MSL").unwrap_or(0);
        rows[i].requirement = Some("RFC1122 4.2.2.13".into());
        let gaps = Spec::from_rows(rows, spec.profiles().clone()).grading_gaps();
        assert!(
            gaps.iter()
                .any(|g| g.contains("TW.2MSL") && g.contains("not MUST-n")),
            "{gaps:?}"
        );
    }

    #[test]
    fn malformed_tables_are_rejected_with_location() {
        let bad = [("x.toml", "[[row]]\nid = \"A\"\nfrom = [\"NOPE\"]\n")];
        let err = Spec::from_sources(&bad, BUNDLED_PROFILES).err();
        assert!(
            matches!(err, Some(LoadError::Toml { ref file, .. }) if file == "x.toml"),
            "{err:?}"
        );
        let bad = [(
            "y.toml",
            "[[row]]\nid = \"B\"\nfrom = [\"CLOSED\"]\non = \"call\"\nrst = true\ncall = [\"send\"]\nnext = \"same\"\neffect = \"e\"\nrfc = [\"x\"]\nprofiles = [\"rfc793\"]\n",
        )];
        let err = Spec::from_sources(&bad, BUNDLED_PROFILES).err();
        assert!(
            matches!(err, Some(LoadError::Row { ref id, .. }) if id == "B"),
            "{err:?}"
        );
    }
}
