//! `tcpconform spec`: the rendered table, as a user or a tool sees it.

use std::path::Path;
use std::process::{Command, Output, Stdio};

fn tcpconform(args: &[&str]) -> Output {
    match Command::new(env!("CARGO_BIN_EXE_tcpconform"))
        .args(args)
        .output()
    {
        Ok(o) => o,
        Err(e) => panic!("cannot run tcpconform: {e}"),
    }
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn json_lists_states_and_covers_every_event_once_per_profile() {
    let out = tcpconform(&["spec", "--format", "json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = match serde_json::from_slice(&out.stdout) {
        Ok(v) => v,
        Err(e) => panic!("not JSON: {e}"),
    };
    assert_eq!(v["states"].as_array().map(Vec::len), Some(11));
    for p in ["rfc793", "rfc9293", "linux"] {
        let prof = &v["profiles"][p];
        assert_eq!(prof["holes"].as_array().map(Vec::len), Some(0), "{p}");
        assert_eq!(prof["overlaps"].as_array().map(Vec::len), Some(0), "{p}");
        let per_row = prof["events_per_row"]
            .as_object()
            .map(|m| m.values().filter_map(|n| n.as_u64()).sum::<u64>());
        assert_eq!(
            per_row,
            prof["events_checked"].as_u64(),
            "{p}: rows partition the events"
        );
        assert!(per_row.unwrap_or(0) > 5000, "{p}: {per_row:?} events");
    }
    let rows = v["rows"].as_array().map(Vec::len).unwrap_or(0);
    assert!(rows > 80, "{rows} rows");
}

#[test]
fn text_table_has_one_line_per_row() {
    let out = tcpconform(&["spec", "--profile", "rfc793"]);
    assert!(out.status.success());
    let text = stdout(&out);
    assert!(text.contains("793.OPEN.RST"));
    assert!(
        !text.contains("SYNC.RST.challenge"),
        "rfc5961 row shown under rfc793"
    );
    assert!(
        text.trim_end().ends_with("0 problems"),
        "{}",
        text.lines().last().unwrap_or("")
    );
}

#[test]
fn bad_arguments_exit_2_with_a_reason() {
    for args in [
        &["spec", "--profile", "bsd"][..],
        &["spec", "--format", "yaml"],
        &["nonsense"],
        &[],
    ] {
        let out = tcpconform(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!err.trim().is_empty(), "{args:?}: no message");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
    let err =
        String::from_utf8_lossy(&tcpconform(&["spec", "--profile", "bsd"]).stderr).into_owned();
    assert!(err.contains("unknown profile `bsd`"), "{err}");
}

#[test]
fn dot_renders_with_graphviz() {
    let out = tcpconform(&["spec", "--format", "dot", "--profile", "linux"]);
    assert!(out.status.success());
    let mut dot = match Command::new("dot")
        .arg("-Tsvg")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(c) => c,
        Err(e) => panic!("graphviz `dot` is needed for this test (.ci/run installs it): {e}"),
    };
    if let Some(mut stdin) = dot.stdin.take() {
        use std::io::Write;
        let _ = stdin.write_all(&out.stdout);
    }
    let svg = match dot.wait_with_output() {
        Ok(o) => o,
        Err(e) => panic!("dot failed: {e}"),
    };
    assert!(
        svg.status.success(),
        "{}",
        String::from_utf8_lossy(&svg.stderr)
    );
    let svg = String::from_utf8_lossy(&svg.stdout);
    assert!(svg.contains("<svg") && svg.contains("TIME&#45;WAIT"));
    assert!(svg.contains("LX.TW.SYN.new"), "linux edge missing");
}

/// The diagram in the README is regenerated with `docs/regen-diagram.sh`;
/// its DOT source must match the table.
#[test]
fn committed_diagram_source_is_current() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let committed =
        std::fs::read_to_string(root.join("docs/state-diagram.dot")).unwrap_or_default();
    let fresh = stdout(&tcpconform(&["spec", "--format", "dot"]));
    assert!(
        committed == fresh,
        "docs/state-diagram.dot is stale: run docs/regen-diagram.sh"
    );
}

/// `spec --where STATE EVENT` names the rows and the stack lines that
/// record them; each named line, read from the checkout, holds the row id.
#[test]
fn where_prints_the_rows_and_the_stack_lines_that_record_them() {
    let out = tcpconform(&["spec", "--where", "ESTABLISHED", "SYN"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = stdout(&out);
    assert!(text.contains("SYNC.SYN.challenge  level MUST"), "{text}");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut row = "";
    let mut located = 0;
    for line in text.lines() {
        if !line.starts_with(' ') && line.contains("  level ") {
            row = line.split_whitespace().next().unwrap_or_default();
        }
        if let Some(at) = line.trim().strip_prefix("recorded at ") {
            let (path, n) = at.rsplit_once(':').unwrap_or_default();
            let n: usize = n.parse().unwrap_or(0);
            let src = std::fs::read_to_string(root.join(path)).unwrap_or_default();
            let l = src.lines().nth(n.saturating_sub(1)).unwrap_or_default();
            assert!(l.contains(&format!("\"{row}\"")), "{at}: {l}");
            located += 1;
        }
    }
    assert!(located >= 2, "{text}");
}

#[test]
fn where_with_an_unknown_state_is_a_usage_error() {
    let out = tcpconform(&["spec", "--where", "OPEN", "SYN"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("unknown state `OPEN`"), "{err}");
}
