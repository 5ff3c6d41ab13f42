//! The conformance suite (`specs/scripts/**/*.pkt`, including the state ×
//! event matrix in `specs/scripts/matrix/`) on target `own`, profile
//! rfc9293: every script must pass. The ladder trace of every script is recorded as an insta
//! snapshot named after its path below `specs/scripts` (`/` → `__`), so
//! any change in the stack's behaviour (a packet, a timer, a table row
//! taken) shows up as a diff.

use std::path::{Path, PathBuf};
use tcp_harness::run::{discover, run_file, OwnTarget, RunOptions};
use tcp_spec::Profile;

fn suite_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("specs/scripts")
}

fn suite() -> Vec<PathBuf> {
    match discover(&[suite_dir()]) {
        Ok(s) => s,
        Err(e) => panic!("cannot list the suite: {e}"),
    }
}

/// `matrix/established_rst.pkt` for a script under the suite directory.
fn rel(path: &Path) -> String {
    let dir = suite_dir();
    path.strip_prefix(&dir)
        .unwrap_or(path)
        .to_string_lossy()
        .replace('\\', "/")
}

#[test]
fn every_script_passes_on_own_and_matches_its_snapshot() {
    let scripts = suite();
    assert!(scripts.len() >= 40, "suite has {} scripts", scripts.len());
    let mut failures = Vec::new();
    for path in &scripts {
        let rel = rel(path);
        let mut target = OwnTarget::new(Profile::Rfc9293);
        let report = run_file(path, &mut target, &RunOptions::default());
        if !report.passed() {
            failures.push(report.details());
        }
        let name = rel.trim_end_matches(".pkt").replace('/', "__");
        let mut settings = insta::Settings::clone_current();
        settings.set_snapshot_path("snapshots");
        settings.set_prepend_module_to_snapshot(false);
        settings.set_omit_expression(true);
        settings.bind(|| insta::assert_snapshot!(name, report.trace.ladder()));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
