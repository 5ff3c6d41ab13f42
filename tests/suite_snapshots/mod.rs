//! What the snapshot suites share (`tests/live.rs`, `tests/smoltcp.rs`):
//! where the suite and the snapshots are, how a script's snapshot is
//! named, and the committed snapshots of one target read back.

use std::path::{Path, PathBuf};
use tcp_harness::run::diff::{self, DiffOptions, ScriptDiff};
use tcp_harness::run::suite;

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn suite_dir() -> PathBuf {
    root().join("specs/scripts")
}

/// A script's path below `specs/scripts`, with `/`.
pub fn rel(path: &Path) -> String {
    path.strip_prefix(suite_dir())
        .unwrap_or(path)
        .to_string_lossy()
        .replace('\\', "/")
}

/// `matrix/listen.pkt` → `matrix__listen`.
pub fn snapshot_name(rel: &str) -> String {
    rel.trim_end_matches(".pkt").replace('/', "__")
}

/// The committed `<prefix>__*.snap` files, parsed, in script order.
pub fn committed(prefix: &str) -> Vec<ScriptDiff> {
    let dir = root().join("tests/snapshots");
    let start = format!("{prefix}__");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&start) && n.ends_with(".snap"))
        })
        .collect();
    files.sort();
    let mut diffs: Vec<ScriptDiff> = files
        .iter()
        .map(|p| {
            let text =
                std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            ScriptDiff::from_snapshot(&text).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        })
        .collect();
    diffs.sort_by(|a, b| a.script.cmp(&b.script));
    diffs
}

/// Runs `diff` on one script of the suite; its path below `specs/scripts`
/// and the classified report. Targets are made fresh for every run.
pub fn diff_script(path: &Path, opts: &DiffOptions) -> (String, ScriptDiff) {
    let rel = rel(path);
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{rel}: {e}"));
    let report = diff::diff_text(
        &format!("specs/scripts/{rel}"),
        &text,
        opts,
        &mut suite::make_target,
    );
    (rel, report)
}

/// `doc` is what the `<prefix>__*.snap` snapshots generate (`want`);
/// otherwise says how test `suite` regenerates it.
pub fn assert_doc_current(doc: &Path, want: &str, prefix: &str, suite: &str) {
    let have = std::fs::read_to_string(doc).unwrap_or_default();
    assert!(
        have == want,
        "{} is not what the {prefix}__*.snap snapshots give; regenerate it with\n  \
         cargo test -p tcpconform --test {suite} -- --ignored regenerate_divergences",
        doc.display()
    );
}
