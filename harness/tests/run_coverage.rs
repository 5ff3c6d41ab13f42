//! Table coverage of the bundled suite (`tcpconform coverage`): every row
//! of the rfc9293 profile is hit by some script, except the rows listed
//! in `coverage::UNREACHABLE`, and those are listed only because they are
//! not hit.

use std::path::{Path, PathBuf};
use std::process::Command;
use tcp_harness::run::coverage::{self, UNREACHABLE};
use tcp_spec::{Profile, Spec};

fn suite_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../specs/scripts")
}

#[test]
fn bundled_suite_covers_every_rfc9293_row_but_the_unreachable_ones() {
    let (reports, cov) = match coverage::run_own(&[suite_dir()], Profile::Rfc9293) {
        Ok(r) => r,
        Err(e) => panic!("{e}"),
    };
    assert!(reports.len() >= 40, "{} scripts", reports.len());
    let uncovered: Vec<String> = cov.uncovered().into_iter().map(|u| u.row).collect();
    let mut listed: Vec<String> = UNREACHABLE.iter().map(|(r, _)| r.to_string()).collect();
    let mut got = uncovered.clone();
    listed.sort();
    got.sort();
    assert_eq!(
        got, listed,
        "uncovered rows vs the rows listed as unreachable"
    );
    for (row, _) in UNREACHABLE {
        assert!(
            !cov.covered.contains_key(*row),
            "{row} is listed as unreachable but a script hits it"
        );
    }
    assert!(
        cov.foreign.is_empty(),
        "rows outside rfc9293: {:?}",
        cov.foreign
    );
    assert_eq!(cov.rows_covered() + UNREACHABLE.len(), cov.rows_total());
}

#[test]
fn unreachable_rows_are_rows_of_the_table() {
    let spec = match Spec::bundled() {
        Ok(s) => s,
        Err(e) => panic!("{e}"),
    };
    for (row, why) in UNREACHABLE {
        assert!(spec.row(row).is_some(), "{row} is not a row");
        assert!(!why.is_empty());
    }
}

#[test]
fn coverage_cli_json_has_the_stable_fields() {
    let out = match Command::new(env!("CARGO_BIN_EXE_tcpconform"))
        .args(["coverage", "--format", "json", "--profile", "rfc9293"])
        .arg(suite_dir())
        .output()
    {
        Ok(o) => o,
        Err(e) => panic!("cannot run tcpconform: {e}"),
    };
    let v: serde_json::Value = match serde_json::from_slice(&out.stdout) {
        Ok(v) => v,
        Err(e) => panic!("not JSON: {e}: {}", String::from_utf8_lossy(&out.stdout)),
    };
    assert_eq!(v["profile"], "rfc9293");
    let total = v["rows_total"].as_u64().unwrap_or(0);
    let covered = v["rows_covered"].as_u64().unwrap_or(0);
    assert!(total > 0 && covered > 0 && covered <= total);
    let map = v["covered"].as_object().map(|m| m.len()).unwrap_or(0);
    assert_eq!(map as u64, covered);
    let unc = v["uncovered"].as_array().cloned().unwrap_or_default();
    assert_eq!(unc.len() as u64, total - covered);
    for u in &unc {
        assert!(u["row"].is_string() && u["reason"].is_string(), "{u}");
    }
}

#[test]
fn coverage_cli_text_groups_by_state_and_ends_with_the_summary() {
    let out = match Command::new(env!("CARGO_BIN_EXE_tcpconform"))
        .arg("coverage")
        .arg(suite_dir().join("passive_open.pkt"))
        .output()
    {
        Ok(o) => o,
        Err(e) => panic!("cannot run tcpconform: {e}"),
    };
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("\nLISTEN ("), "{text}");
    assert!(text.contains("LISTEN.SYN"), "{text}");
    let last = text.lines().last().unwrap_or("");
    assert!(last.contains("rows covered (profile rfc9293"), "{last}");
    assert!(text.contains("LISTEN.OPEN.active"), "{text}");
}

#[test]
fn coverage_cli_rejects_a_missing_path() {
    let out = match Command::new(env!("CARGO_BIN_EXE_tcpconform"))
        .args(["coverage", "/nonexistent/dir"])
        .output()
    {
        Ok(o) => o,
        Err(e) => panic!("cannot run tcpconform: {e}"),
    };
    assert_eq!(out.status.code(), Some(2));
}
