//! `--shard I/N` on the command line (`harness/src/run/parallel.rs`): the
//! shards of the bundled suite are disjoint, together they are the suite,
//! and each script keeps its result.

use std::collections::BTreeSet;
use std::process::Command;

fn suite_dir() -> String {
    concat!(env!("CARGO_MANIFEST_DIR"), "/../specs/scripts").to_string()
}

/// The (script, result) rows `tcpconform run` prints for `args`.
fn rows(args: &[&str]) -> Vec<(String, String)> {
    let out = Command::new(env!("CARGO_BIN_EXE_tcpconform"))
        .arg("run")
        .args(args)
        .arg(suite_dir())
        .output()
        .expect("tcpconform runs");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let rows: Vec<(String, String)> = text
        .lines()
        .filter(|l| l.contains(".pkt  "))
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f[0].to_string(), f[2].to_string())
        })
        .collect();
    assert!(!rows.is_empty(), "no rows for {args:?}:\n{text}");
    rows
}

#[test]
fn shards_split_the_suite_disjointly_and_completely() {
    let all = rows(&[]);
    for n in [1usize, 2, 3] {
        let mut union: Vec<(String, String)> = Vec::new();
        let mut seen = BTreeSet::new();
        for i in 1..=n {
            let shard = format!("{i}/{n}");
            let part = rows(&["--shard", &shard]);
            // Shard i holds positions i-1, i-1+n, … of the sorted suite.
            let expected: Vec<(String, String)> =
                all.iter().skip(i - 1).step_by(n).cloned().collect();
            assert_eq!(part, expected, "shard {shard}");
            for r in &part {
                assert!(seen.insert(r.0.clone()), "{} in two shards", r.0);
            }
            union.extend(part);
        }
        union.sort();
        let mut sorted = all.clone();
        sorted.sort();
        assert_eq!(union, sorted, "{n} shards together");
    }
}

#[test]
fn a_bad_shard_is_a_usage_error_naming_the_form() {
    for bad in ["0/2", "3/2", "x"] {
        let out = Command::new(env!("CARGO_BIN_EXE_tcpconform"))
            .args(["run", "--shard", bad])
            .arg(suite_dir())
            .output()
            .expect("tcpconform runs");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{bad}: {err}");
        assert!(err.contains("expected I/N"), "{bad}: {err}");
    }
}
