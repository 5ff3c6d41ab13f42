//! Divergence snapshots of the in-process `smoltcp` target (smoltcp 0.14
//! from crates.io behind the adapter, `tcp_harness::run::smoltcp_target`).
//!
//! Every script of the conformance suite runs on `own` (the reference,
//! profile rfc9293) and on `smoltcp`, and `tcp_harness::run::diff`
//! classifies each divergence against the RFC profile; a departure whose
//! cause was read in smoltcp's source names it (`verdict::stacks`). The
//! classified report of each script is the insta snapshot
//! `smoltcp__<script>` (path below `specs/scripts`, `/` → `__`). Virtual
//! time: no root, deterministic, milliseconds for the whole suite.
//!
//! `docs/divergences-smoltcp.md` is generated from the committed snapshots;
//! a test checks it is current. Regenerate it with
//! `cargo test -p tcpconform --test smoltcp -- --ignored regenerate_divergences`.
//!
//! The reproducers in `corpus/smoltcp/` each show one smoltcp bug: they
//! pass on `own` and fail on `smoltcp` (a fix upstream makes the test say
//! so).

use std::path::PathBuf;
use tcp_harness::run::diff::{DiffOptions, ScriptDiff};
use tcp_harness::run::{discover, run_file, OwnTarget, RunOptions, TargetName};
use tcp_harness::verdict::report::{markdown_from, Provenance};
use tcp_spec::Profile;

mod suite_snapshots;
use suite_snapshots::{root, snapshot_name, suite_dir};

fn committed() -> Vec<ScriptDiff> {
    suite_snapshots::committed("smoltcp")
}

fn generated_doc() -> String {
    markdown_from(&committed(), "smoltcp", &Provenance::SMOLTCP)
}

fn doc_path() -> PathBuf {
    root().join("docs/divergences-smoltcp.md")
}

/// Every script ends in a verdict on smoltcp — passed, not applicable with
/// its reason, or stopped with classified divergences — and the classified
/// report is the committed snapshot.
#[test]
fn smoltcp_divergences_match_their_snapshots() {
    let scripts = discover(&[suite_dir()]).unwrap_or_else(|e| panic!("suite: {e}"));
    assert!(scripts.len() >= 40, "suite has {} scripts", scripts.len());
    let opts = DiffOptions {
        targets: vec!["own".into(), TargetName::Smoltcp.to_string()],
        profile: Profile::Rfc9293,
        ..DiffOptions::default()
    };
    let mut unjudged = Vec::new();
    for path in &scripts {
        let (rel, report) = suite_snapshots::diff_script(path, &opts);
        let on_smoltcp = report
            .outcomes
            .iter()
            .find(|o| o.starts_with("smoltcp:"))
            .cloned()
            .unwrap_or_default();
        let judged = on_smoltcp == "smoltcp: passed"
            || on_smoltcp.starts_with("smoltcp: not applicable: ")
            || (on_smoltcp == "smoltcp: stopped"
                && report.divergences.iter().any(|d| d.target == "smoltcp"));
        if !judged || report.script_error || !report.skipped.is_empty() {
            unjudged.push(format!("{rel}: {on_smoltcp} {:?}", report.skipped));
        }
        let mut settings = insta::Settings::clone_current();
        settings.set_snapshot_path("snapshots");
        settings.set_omit_expression(true);
        settings.set_description(tcp_harness::verdict::stacks::SMOLTCP);
        let name = snapshot_name(&rel);
        settings.bind(|| insta::assert_snapshot!(name, report.snapshot()));
    }
    assert!(
        unjudged.is_empty(),
        "scripts without a verdict on smoltcp:\n{}",
        unjudged.join("\n")
    );
}

/// Every departure of smoltcp names the smoltcp source responsible.
#[test]
fn every_smoltcp_departure_names_its_source() {
    let bare: Vec<String> = committed()
        .iter()
        .flat_map(|sd| {
            sd.divergences
                .iter()
                .filter(|d| d.target == "smoltcp" && d.class.departs() && d.documented.is_none())
                .map(move |d| format!("{}:{} {}", sd.script, d.line, d.reason))
        })
        .collect();
    assert!(
        bare.is_empty(),
        "departures without a source:\n{}",
        bare.join("\n")
    );
}

#[test]
fn divergences_doc_matches_the_snapshots() {
    suite_snapshots::assert_doc_current(&doc_path(), &generated_doc(), "smoltcp", "smoltcp");
}

#[test]
#[ignore = "writes docs/divergences-smoltcp.md"]
fn regenerate_divergences() {
    std::fs::write(doc_path(), generated_doc())
        .unwrap_or_else(|e| panic!("docs/divergences-smoltcp.md: {e}"));
}

/// Each reproducer of `corpus/smoltcp/` passes on the own stack (the
/// script is what the RFC asks) and fails on smoltcp at the line its
/// header names.
#[test]
fn corpus_reproducers_fail_on_smoltcp_only() {
    let dir = root().join("corpus/smoltcp");
    let scripts = discover(&[dir]).unwrap_or_else(|e| panic!("corpus/smoltcp: {e}"));
    assert!(!scripts.is_empty(), "no reproducers in corpus/smoltcp");
    let opts = RunOptions::default();
    for path in &scripts {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let line: usize = text
            .lines()
            .find_map(|l| l.strip_prefix("// fails at line: "))
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or_else(|| panic!("{}: no `// fails at line: N` header", path.display()));
        let own = run_file(path, &mut OwnTarget::new(Profile::Rfc9293), &opts);
        assert!(own.passed(), "{}", own.details());
        let mut smol = TargetName::Smoltcp
            .make(Profile::Rfc9293)
            .unwrap_or_else(|e| panic!("{e}"));
        let on_smol = run_file(path, smol.as_mut(), &opts);
        match &on_smol.outcome {
            tcp_harness::run::Outcome::Failed(f) => assert_eq!(
                f.line,
                line,
                "{}: fails elsewhere:\n{}",
                path.display(),
                on_smol.details()
            ),
            o => panic!(
                "{}: no longer fails on smoltcp ({o}); fixed upstream?",
                path.display()
            ),
        }
    }
}
