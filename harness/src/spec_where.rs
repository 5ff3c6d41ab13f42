//! `tcpconform spec --where STATE EVENT`: the table rows a state × event
//! reaches (RFC 9293 §3.10 event processing as the table models it) and the
//! places in the own stack that record each row, in one step. The stack's
//! sources are embedded at build time, so the answer holds in a clean clone
//! and in an installed binary alike, and its line numbers are those of the
//! code the binary was built from.

use crate::source::non_test_lines;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::fmt::Write;
use tcp_spec::{render, AckClass, Event, Profile, SegmentEvent, Spec, State, Timeout, UserCall};

/// `(path from the repository root, text)` of each named file of
/// `stack/src`, embedded at build time.
macro_rules! stack_sources {
    ($($file:literal),* $(,)?) => {
        &[$((
            concat!("stack/src/", $file),
            include_str!(concat!("../../stack/src/", $file)),
        )),*]
    };
}

/// The stack's sources, as `(path from the repository root, text)`. A test
/// checks that every file of `stack/src` is here.
pub const STACK_SOURCES: &[(&str, &str)] = stack_sources!(
    "checksum.rs",
    "congestion.rs",
    "conn.rs",
    "conn/rack_tlp.rs",
    "conn/sack_loss.rs",
    "endpoint.rs",
    "error.rs",
    "faults.rs",
    "isn.rs",
    "lib.rs",
    "net.rs",
    "packet.rs",
    "rack.rs",
    "reassembly.rs",
    "recovery.rs",
    "ring.rs",
    "rto.rs",
    "sack.rs",
    "seq.rs",
    "spare.rs",
    "time.rs",
);

/// Files of `stack/src` that are tests only, never searched.
pub const STACK_TEST_FILES: &[&str] = &["stack/src/tests.rs"];

/// The event a user names: a call, a timeout, or a segment by its flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventQuery {
    /// A user call (`open-passive`, `send`, `close`, …).
    Call(UserCall),
    /// A timeout (`retransmission`, `time-wait`, `user`).
    Timeout(Timeout),
    /// An arriving segment: exactly these of SYN, FIN and RST; with ACK
    /// and data when named (either way when not).
    Segment {
        syn: bool,
        fin: bool,
        rst: bool,
        ack: bool,
        data: bool,
    },
}

const EVENT_HELP: &str = "segment flags SYN, FIN, RST, ACK, DATA joined by `-` or `+` (e.g. SYN, SYN-ACK, FIN+DATA; SYN, FIN and RST exactly as named, ACK and DATA either way unless named), a call (open-passive, open-active, send, receive, close, abort) or a timeout (retransmission, time-wait, user)";

impl EventQuery {
    /// Parses a name as `--where` takes it (case-insensitive).
    pub fn parse(text: &str) -> Result<EventQuery, String> {
        let s = text.trim().to_ascii_lowercase();
        if let Some(c) = UserCall::ALL.into_iter().find(|c| c.name() == s) {
            return Ok(EventQuery::Call(c));
        }
        let timeout = s
            .strip_suffix("-timeout")
            .or_else(|| s.strip_prefix("timeout:"))
            .unwrap_or(&s);
        if let Some(t) = Timeout::ALL.into_iter().find(|t| t.name() == timeout) {
            return Ok(EventQuery::Timeout(t));
        }
        let (mut syn, mut fin, mut rst, mut ack, mut data) = (false, false, false, false, false);
        for term in s.split(['-', '+', ',']) {
            let flag = match term {
                "syn" => &mut syn,
                "fin" => &mut fin,
                "rst" => &mut rst,
                "ack" => &mut ack,
                "data" | "payload" => &mut data,
                _ => return Err(format!("unknown event `{text}`: expected {EVENT_HELP}")),
            };
            *flag = true;
        }
        Ok(EventQuery::Segment {
            syn,
            fin,
            rst,
            ack,
            data,
        })
    }

    /// Whether `event` is one the query names.
    pub fn matches(&self, event: &Event) -> bool {
        match (self, event) {
            (EventQuery::Call(c), Event::Call { call }) => c == call,
            (EventQuery::Timeout(t), Event::Timeout { timeout }) => t == timeout,
            (
                EventQuery::Segment {
                    syn,
                    fin,
                    rst,
                    ack,
                    data,
                },
                Event::Segment(s),
            ) => segment_matches(s, *syn, *fin, *rst, *ack, *data),
            _ => false,
        }
    }
}

fn segment_matches(
    s: &SegmentEvent,
    syn: bool,
    fin: bool,
    rst: bool,
    ack: bool,
    data: bool,
) -> bool {
    s.syn == syn
        && s.fin == fin
        && s.rst == rst
        && (!ack || s.ack != AckClass::Absent)
        && (!data || s.payload)
}

/// Parses a state by its RFC name or the table's short name
/// (`ESTABLISHED`, `ESTAB`, `syn_received`).
pub fn parse_state(text: &str) -> Result<State, String> {
    State::from_name(text)
        .or_else(|| {
            State::ALL
                .into_iter()
                .find(|s| s.short_name().eq_ignore_ascii_case(text.trim()))
        })
        .ok_or_else(|| {
            let names: Vec<&str> = State::ALL.iter().map(|s| s.name()).collect();
            format!(
                "unknown state `{text}` (expected one of {})",
                names.join(", ")
            )
        })
}

/// One row a state × event reaches.
#[derive(Debug, Clone)]
pub struct Hit<'a> {
    pub row: &'a tcp_spec::Row,
    /// How many of the matching abstract events the row takes.
    pub events: usize,
    /// `path:line` of every non-test stack line naming the row id.
    pub recorded_at: Vec<String>,
}

/// The rows `profile`'s table gives for the events in `state` that `query`
/// names, in table order, each with where the stack records it. Errs when
/// no possible event matches (e.g. a timeout that cannot occur there).
pub fn lookup<'a>(
    spec: &'a Spec,
    profile: Profile,
    state: State,
    query: EventQuery,
) -> Result<(usize, Vec<Hit<'a>>), String> {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    let mut total = 0;
    for ev in Event::possible(state).iter().filter(|e| query.matches(e)) {
        total += 1;
        let row = spec.step(profile, state, ev).map_err(|e| e.to_string())?;
        *counts.entry(row.id.as_str()).or_default() += 1;
    }
    if total == 0 {
        return Err(format!("no such event can occur in {state}"));
    }
    let hits = spec
        .rows_of(profile)
        .filter_map(|row| {
            let events = *counts.get(row.id.as_str())?;
            Some(Hit {
                row,
                events,
                recorded_at: recorded_at(&row.id),
            })
        })
        .collect();
    Ok((total, hits))
}

/// `path:line` of every line outside test modules of the stack's sources
/// that names `id` as a string literal.
pub fn recorded_at(id: &str) -> Vec<String> {
    let quoted = format!("\"{id}\"");
    let mut out = Vec::new();
    for (path, text) in STACK_SOURCES {
        for (n, line) in non_test_lines(text) {
            if line.contains(&quoted) {
                out.push(format!("{path}:{n}"));
            }
        }
    }
    out
}

/// The answer as text: a heading, then per row its id, level, next state,
/// emitted segments, effect, sources and the stack's lines.
pub fn text(profile: Profile, state: State, what: &str, total: usize, hits: &[Hit<'_>]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{state} × {what} (profile {profile}): {total} abstract events, {} rows",
        hits.len()
    );
    for h in hits {
        let r = h.row;
        let _ = writeln!(
            out,
            "\n{}  level {}  next {}  emit {}  ({} of {total} events)",
            r.id,
            render::level_cell(r),
            render::next_cell(r),
            render::emit_cell(r),
            h.events
        );
        let _ = writeln!(out, "  effect: {} [{}]", r.effect, r.rfc.join("; "));
        if h.recorded_at.is_empty() {
            let _ = writeln!(out, "  recorded: nowhere in stack/src");
        }
        for at in &h.recorded_at {
            let _ = writeln!(out, "  recorded at {at}");
        }
    }
    out
}

/// The answer as JSON, with the table's field names.
pub fn json(profile: Profile, state: State, what: &str, total: usize, hits: &[Hit<'_>]) -> Value {
    let rows: Vec<Value> = hits
        .iter()
        .map(|h| {
            json!({
                "id": h.row.id,
                "level": render::level_cell(h.row),
                "next": render::next_cell(h.row),
                "emit": render::emit_cell(h.row),
                "effect": h.row.effect,
                "rfc": h.row.rfc,
                "events": h.events,
                "recorded_at": h.recorded_at,
            })
        })
        .collect();
    json!({
        "profile": profile.name(),
        "state": state.name(),
        "event": what,
        "events": total,
        "rows": rows,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every file of `stack/src` is embedded or a test file: a new stack
    /// module cannot be missed by `--where`.
    #[test]
    fn every_stack_source_is_embedded() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let mut on_disk: Vec<String> = Vec::new();
        let mut dirs = vec![root.join("stack/src")];
        while let Some(dir) = dirs.pop() {
            let entries =
                std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
            for path in entries.filter_map(|e| e.ok()).map(|e| e.path()) {
                if path.is_dir() {
                    dirs.push(path);
                } else if path.extension().is_some_and(|x| x == "rs") {
                    let rel = path.strip_prefix(&root).expect("under the root");
                    on_disk.push(rel.to_string_lossy().into_owned());
                }
            }
        }
        on_disk.sort();
        let mut listed: Vec<String> = STACK_SOURCES
            .iter()
            .map(|(p, _)| p.to_string())
            .chain(STACK_TEST_FILES.iter().map(|p| p.to_string()))
            .collect();
        listed.sort();
        assert_eq!(listed, on_disk);
    }

    #[test]
    fn events_parse_as_documented() {
        assert_eq!(
            EventQuery::parse("close"),
            Ok(EventQuery::Call(UserCall::Close))
        );
        assert_eq!(
            EventQuery::parse("user-timeout"),
            Ok(EventQuery::Timeout(Timeout::User))
        );
        assert_eq!(
            EventQuery::parse("SYN-ACK"),
            Ok(EventQuery::Segment {
                syn: true,
                fin: false,
                rst: false,
                ack: true,
                data: false
            })
        );
        let e = EventQuery::parse("SYNC").err().unwrap_or_default();
        assert!(e.contains("unknown event `SYNC`"), "{e}");
        assert_eq!(parse_state("estab"), Ok(State::Established));
        assert!(parse_state("OPEN").is_err());
    }

    /// Every row the stack records is found at a line that records it, and
    /// every row a state × event reaches is one `step` gives for one of
    /// those events.
    #[test]
    fn a_syn_in_established_reaches_the_syn_rows_recorded_in_conn_rs() {
        let spec = Spec::bundled().expect("table");
        let q = EventQuery::parse("SYN").expect("query");
        let (total, hits) = lookup(spec, Profile::Rfc9293, State::Established, q).expect("lookup");
        let want: std::collections::BTreeSet<&str> = Event::possible(State::Established)
            .iter()
            .filter(|e| matches!(e, Event::Segment(s) if s.syn && !s.fin && !s.rst))
            .map(|e| {
                spec.step(Profile::Rfc9293, State::Established, e)
                    .map(|r| r.id.as_str())
                    .expect("step")
            })
            .collect();
        let got: std::collections::BTreeSet<&str> =
            hits.iter().map(|h| h.row.id.as_str()).collect();
        assert_eq!(got, want);
        assert_eq!(hits.iter().map(|h| h.events).sum::<usize>(), total);
        assert!(got.contains("SYNC.SYN.challenge"), "{got:?}");
        for h in &hits {
            for at in &h.recorded_at {
                let (path, line) = at.rsplit_once(':').expect("path:line");
                let n: usize = line.parse().expect("line number");
                let text = STACK_SOURCES
                    .iter()
                    .find(|(p, _)| *p == path)
                    .map(|(_, t)| *t)
                    .expect("embedded");
                let l = text.lines().nth(n - 1).unwrap_or_default();
                assert!(l.contains(&format!("\"{}\"", h.row.id)), "{at}: {l}");
            }
        }
        let challenge = hits
            .iter()
            .find(|h| h.row.id == "SYNC.SYN.challenge")
            .expect("challenge row");
        assert!(
            challenge
                .recorded_at
                .iter()
                .any(|a| a.starts_with("stack/src/conn.rs:")),
            "{:?}",
            challenge.recorded_at
        );
    }

    #[test]
    fn an_impossible_event_is_an_error() {
        let spec = Spec::bundled().expect("table");
        let q = EventQuery::parse("time-wait").expect("query");
        let e = lookup(spec, Profile::Rfc9293, State::Listen, q)
            .err()
            .unwrap_or_default();
        assert!(e.contains("no such event can occur in LISTEN"), "{e}");
    }
}
