//! Renderings of the table for people and tools: an aligned text table,
//! JSON with stable field names, and a Graphviz state diagram.

use crate::model::{AckClass, SeqClass, State, Timeout, UserCall};
use crate::profile::Profile;
use crate::row::Row;
use crate::spec::Spec;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::fmt::Write;

/// A row's requirement level for the text table: the keyword, then the
/// RFC 9293 appendix B id when there is one (`MUST (MUST-13)`); `-` for a
/// row not graded yet.
pub fn level_cell(r: &Row) -> String {
    match (r.level, &r.requirement) {
        (Some(l), Some(id)) => format!("{l} ({id})"),
        (Some(l), None) => l.to_string(),
        (None, _) => "-".to_string(),
    }
}

/// A row's next state for the text table: `=` when it keeps the state.
pub fn next_cell(r: &Row) -> String {
    match r.next {
        crate::row::Next::Same => "=".to_string(),
        crate::row::Next::To(s) => s.name().to_string(),
    }
}

/// The segments a row sends, in order (`-` for none), marked when the ACK
/// may be delayed or the challenge ACK rate-limited.
pub fn emit_cell(r: &Row) -> String {
    if r.emit.is_empty() {
        return "-".to_string();
    }
    let e: Vec<String> = r.emit.iter().map(|t| t.to_string()).collect();
    let mut s = e.join(" ");
    if r.delayable {
        s.push_str(" (may delay)");
    }
    if r.rate_limited {
        s.push_str(" (rate-limited)");
    }
    s
}

/// The rows of `profile` as an aligned text table, grouped by source file
/// order, with a closing line counting rows and checked events.
pub fn text(spec: &Spec, profile: Profile) -> String {
    let rows: Vec<&Row> = spec.rows_of(profile).collect();
    let cells: Vec<[String; 6]> = rows
        .iter()
        .map(|r| {
            [
                r.id.clone(),
                level_cell(r),
                r.from
                    .iter()
                    .map(|s| s.short_name())
                    .collect::<Vec<_>>()
                    .join(","),
                r.event.to_string(),
                next_cell(r),
                emit_cell(r),
            ]
        })
        .collect();
    let head = ["ID", "LEVEL", "FROM", "EVENT", "NEXT", "EMIT"];
    let mut width = head.map(str::len);
    for c in &cells {
        for (w, s) in width.iter_mut().zip(c.iter()) {
            *w = (*w).max(s.chars().count());
        }
    }
    let mut out = String::new();
    let line = |out: &mut String, cols: [&str; 6], tail: &str| {
        for (i, c) in cols.iter().enumerate() {
            let _ = write!(out, "{c:<w$}  ", w = width[i]);
        }
        let _ = writeln!(out, "{tail}");
    };
    let _ = writeln!(
        out,
        "profile {profile}: {}",
        spec.profile(profile).description
    );
    let _ = writeln!(
        out,
        "states: SYN-RCVD = SYN-RECEIVED, ESTAB = ESTABLISHED, FW1/FW2 = FIN-WAIT-1/2, CW = CLOSE-WAIT, TW = TIME-WAIT; NEXT `=` keeps the state"
    );
    let _ = writeln!(
        out,
        "LEVEL: keyword of the rule the row implements (MUST, SHOULD, MAY, none) and its RFC 9293 appendix B id; `-` = not graded"
    );
    line(&mut out, head, "EFFECT [SOURCES]");
    for (r, c) in rows.iter().zip(&cells) {
        let tail = format!("{} [{}]", r.effect, r.rfc.join("; "));
        line(&mut out, [&c[0], &c[1], &c[2], &c[3], &c[4], &c[5]], &tail);
    }
    let problems = spec.check();
    let _ = writeln!(
        out,
        "{} rows; {} abstract events per profile; {} problems",
        rows.len(),
        Spec::event_count(),
        problems.len()
    );
    out
}

/// The whole table as JSON: states, event classes, profiles (with
/// parameters and per-profile coverage), and rows.
pub fn json(spec: &Spec, only: Option<Profile>) -> Value {
    let profiles: Vec<Profile> = only.map_or(Profile::ALL.to_vec(), |p| vec![p]);
    let problems = spec.check();
    let mut prof = serde_json::Map::new();
    for p in &profiles {
        let info = spec.profile(*p);
        let counts = spec.coverage_counts(*p);
        let holes: Vec<String> = problems
            .iter()
            .filter(|pr| matches!(pr, crate::spec::Problem::Hole { profile, .. } if profile == p))
            .map(|pr| pr.to_string())
            .collect();
        let overlaps: Vec<String> = problems
            .iter()
            .filter(
                |pr| matches!(pr, crate::spec::Problem::Overlap { profile, .. } if profile == p),
            )
            .map(|pr| pr.to_string())
            .collect();
        prof.insert(
            p.name().to_string(),
            json!({
                "description": info.description,
                "params": info.params,
                "rows": counts.len(),
                "events_checked": Spec::event_count(),
                "events_per_row": counts,
                "holes": holes,
                "overlaps": overlaps,
            }),
        );
    }
    let rows: Vec<&Row> = spec
        .rows()
        .iter()
        .filter(|r| profiles.iter().any(|p| r.profiles.contains(p)))
        .collect();
    json!({
        "states": State::ALL.iter().map(|s| s.name()).collect::<Vec<_>>(),
        "events": {
            "segment": {
                "flags": ["syn", "fin", "rst", "payload"],
                "seq": SeqClass::ALL.iter().map(|c| c.name()).collect::<Vec<_>>(),
                "ack": AckClass::ALL.iter().map(|c| c.name()).collect::<Vec<_>>(),
            },
            "call": UserCall::ALL.iter().map(|c| c.name()).collect::<Vec<_>>(),
            "timeout": Timeout::ALL.iter().map(|c| c.name()).collect::<Vec<_>>(),
        },
        "profiles": prof,
        "rows": rows,
    })
}

/// A Graphviz state diagram of `profile`: one edge per (from, to) pair of
/// states, labelled with the row ids that take it. Rows that keep the state
/// are left out to keep the picture readable.
pub fn dot(spec: &Spec, profile: Profile) -> String {
    let mut edges: BTreeMap<(State, State), Vec<&str>> = BTreeMap::new();
    for row in spec.rows_of(profile) {
        for &from in &row.from {
            let to = row.next.resolve(from);
            if to != from {
                edges.entry((from, to)).or_default().push(&row.id);
            }
        }
    }
    let mut out = String::new();
    let _ = writeln!(out, "digraph tcp_{} {{", profile.name());
    let _ = writeln!(
        out,
        "  label=\"TCP state transitions, profile {profile} (tcpconform spec)\";"
    );
    let _ = writeln!(out, "  labelloc=t; rankdir=TB; nodesep=0.5;");
    let _ = writeln!(
        out,
        "  node [shape=box, style=rounded, fontname=\"Helvetica\"];"
    );
    let _ = writeln!(out, "  edge [fontname=\"Helvetica\", fontsize=9];");
    for s in State::ALL {
        let _ = writeln!(out, "  \"{0}\" [label=\"{0}\"];", s.name());
    }
    for ((from, to), ids) in edges {
        let _ = writeln!(
            out,
            "  \"{}\" -> \"{}\" [label=\"{}\"];",
            from.name(),
            to.name(),
            ids.join("\\n")
        );
    }
    out.push_str("}\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bundled() -> &'static Spec {
        match Spec::bundled() {
            Ok(s) => s,
            Err(e) => panic!("bundled table does not load: {e}"),
        }
    }

    fn line_of<'a>(text: &'a str, id: &str) -> &'a str {
        text.lines()
            .find(|l| l.split_whitespace().next() == Some(id))
            .unwrap_or_else(|| panic!("no line for {id} in\n{text}"))
    }

    /// The text table shows each row's level, with the appendix B id when
    /// the row has one.
    #[test]
    fn text_shows_the_level_of_each_row() {
        let text = text(bundled(), Profile::Rfc9293);
        let head = text.lines().find(|l| l.starts_with("ID ")).unwrap_or("");
        assert!(head.contains(" LEVEL "), "{head}");
        let col = |id: &str| {
            line_of(&text, id)
                .split("  ")
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .nth(1)
                .unwrap_or("")
                .to_string()
        };
        assert_eq!(col("TW.2MSL"), "MUST (MUST-13)");
        assert_eq!(col("SYNC.RST.challenge"), "MUST");
        assert_eq!(col("SYNC.RST.outside"), "SHOULD");
        assert_eq!(col("CLOSED.RST"), "none");
        for r in bundled().rows_of(Profile::Rfc9293) {
            let c = col(&r.id);
            assert!(
                ["MUST", "SHOULD", "MAY", "none"]
                    .iter()
                    .any(|k| c == *k || c.starts_with(&format!("{k} ("))),
                "{}: level column `{c}`",
                r.id
            );
        }
    }

    /// JSON keeps the field names `level` and `requirement`.
    #[test]
    fn json_rows_carry_level_and_requirement() {
        let v = json(bundled(), Some(Profile::Rfc793));
        let rows = v["rows"].as_array().cloned().unwrap_or_default();
        let row = |id: &str| {
            rows.iter()
                .find(|r| r["id"] == id)
                .cloned()
                .unwrap_or_else(|| panic!("no row {id}"))
        };
        assert_eq!(row("SS.SYN.simultaneous")["level"], "MUST");
        assert_eq!(row("SS.SYN.simultaneous")["requirement"], "MUST-10");
        assert_eq!(row("793.OPEN.RST")["level"], "none");
        assert!(row("793.OPEN.RST").get("requirement").is_none());
        assert_eq!(
            v["profiles"]["rfc793"]["params"]["time_wait_ms"]["level"],
            "MUST"
        );
    }
}
