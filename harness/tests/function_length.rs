//! No function outside tests is longer than [`LIMIT`] lines: a longer one
//! is split along its natural steps (issue 13). Test code (files named
//! `tests.rs`, `tests/` folders, `#[cfg(test)]` modules) is not measured.

use std::path::{Path, PathBuf};
use tcp_harness::source::functions;

/// The most lines a function may span, from `fn` to its closing brace.
const LIMIT: usize = 120;

/// The folders of non-test Rust sources, from the repository root.
const DIRS: &[&str] = &["specs/src", "stack/src", "harness/src", "fuzz/fuzz_targets"];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => panic!("{}: {e}", dir.display()),
    };
    for e in entries.filter_map(Result::ok) {
        let p = e.path();
        let name = e.file_name().to_string_lossy().into_owned();
        if p.is_dir() && name != "tests" && name != "testdata" {
            rust_files(&p, out);
        } else if name.ends_with(".rs") && name != "tests.rs" {
            out.push(p);
        }
    }
}

#[test]
fn no_function_outside_tests_is_longer_than_the_limit() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut files = Vec::new();
    for d in DIRS {
        rust_files(&root.join(d), &mut files);
    }
    assert!(files.len() > 50, "only {} files found", files.len());
    let mut long = Vec::new();
    let mut measured = 0;
    for f in &files {
        let src = std::fs::read_to_string(f).unwrap_or_default();
        for s in functions(&src) {
            measured += 1;
            if s.lines > LIMIT {
                let rel = f.strip_prefix(&root).unwrap_or(f);
                long.push(format!(
                    "{}:{} {} ({} lines)",
                    rel.display(),
                    s.line,
                    s.name,
                    s.lines
                ));
            }
        }
    }
    assert!(measured > 500, "only {measured} functions found");
    assert!(
        long.is_empty(),
        "functions over {LIMIT} lines (split them along their steps):\n{}",
        long.join("\n")
    );
}
