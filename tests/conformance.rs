//! The conformance suite (`specs/scripts/*.pkt`) on target `own`, profile
//! rfc9293: every script must pass, and its ladder trace is recorded as an
//! insta snapshot named after the script, so any change in the stack's
//! behaviour (a packet, a timer, a table row taken) shows up as a diff.

use std::path::PathBuf;
use tcp_harness::run::{discover, run_file, OwnTarget, RunOptions};
use tcp_spec::Profile;

fn suite() -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("specs/scripts");
    match discover(&[dir]) {
        Ok(s) => s,
        Err(e) => panic!("cannot list the suite: {e}"),
    }
}

#[test]
fn every_script_passes_on_own_and_matches_its_snapshot() {
    let scripts = suite();
    assert!(scripts.len() >= 15, "suite has {} scripts", scripts.len());
    let mut failures = Vec::new();
    for path in &scripts {
        let mut target = OwnTarget::new(Profile::Rfc9293);
        let report = run_file(path, &mut target, &RunOptions::default());
        if !report.passed() {
            failures.push(report.details());
        }
        let name = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut settings = insta::Settings::clone_current();
        settings.set_snapshot_path("snapshots");
        settings.set_prepend_module_to_snapshot(false);
        settings.set_omit_expression(true);
        settings.bind(|| insta::assert_snapshot!(name, report.trace.ladder()));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
