//! Replays the committed fuzz seeds and minimized reproducers
//! (`corpus/<target>/`, including `regressions/`) through the same entry
//! points the fuzz targets use, so a fixed crash stays fixed.

use std::path::Path;

fn inputs(target: &str) -> Vec<(String, Vec<u8>)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("corpus")
        .join(target);
    let mut out = Vec::new();
    let mut dirs = vec![root];
    while let Some(dir) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
            } else if let Ok(bytes) = std::fs::read(&path) {
                out.push((path.display().to_string(), bytes));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn script_parse_corpus_replays() {
    let all = inputs("script_parse");
    assert!(!all.is_empty(), "corpus/script_parse is empty");
    for (name, bytes) in &all {
        eprintln!("replaying {name}");
        tcp_harness::fuzzing::script_parse(bytes);
    }
}

#[test]
fn segment_input_corpus_replays() {
    let all = inputs("segment_input");
    assert!(!all.is_empty(), "corpus/segment_input is empty");
    for (name, bytes) in &all {
        eprintln!("replaying {name}");
        tcp_harness::fuzzing::segment_input(bytes);
    }
}

/// Regenerates `corpus/segment_input/row-*` (one seed per table row a
/// random walk reaches; the old `row-*` seeds go, `regressions/` stays):
/// `cargo test --release --test fuzz_replay -- --ignored regenerate`.
#[test]
#[ignore]
fn regenerate_segment_input_seeds() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus/segment_input");
    let seeds = tcp_harness::fuzzing::segment_input_seeds(300_000, 1);
    assert!(!seeds.is_empty(), "no walk reached a row");
    for entry in std::fs::read_dir(&dir)
        .expect("corpus/segment_input")
        .flatten()
    {
        if entry.file_name().to_string_lossy().starts_with("row-") {
            std::fs::remove_file(entry.path()).expect("remove an old seed");
        }
    }
    for (row, bytes) in &seeds {
        std::fs::write(dir.join(format!("row-{row}")), bytes).expect("write a seed");
    }
    eprintln!("{} rows seeded", seeds.len());
}

/// Each `row-<id>` seed is the input that reaches row `<id>`: a change to
/// the stack, the preambles or the walk that sends a seed elsewhere leaves
/// the fuzzer's starting corpus short of that row, so it fails here.
#[test]
fn segment_input_row_seeds_reach_their_rows() {
    let mut stale = Vec::new();
    let mut named = 0;
    for (name, bytes) in inputs("segment_input") {
        let Some(row) = Path::new(&name)
            .file_name()
            .and_then(|f| f.to_str())
            .and_then(|f| f.strip_prefix("row-"))
        else {
            continue;
        };
        named += 1;
        if !tcp_harness::fuzzing::segment_input_rows([&bytes[..]]).contains(row) {
            stale.push(row.to_string());
        }
    }
    assert!(named > 0, "no row-* seeds in corpus/segment_input");
    assert!(
        stale.is_empty(),
        "{} of {named} row seeds no longer reach their row: {stale:?}; regenerate them with \
         `cargo test --release --test fuzz_replay -- --ignored regenerate`",
        stale.len()
    );
}

/// Walks start from preambles built once and cloned: the first walk from a
/// preamble runs on the freshly built rig, a repeat on its clone. Every seed
/// walked twice must check the same rows with the same outcome.
#[test]
fn segment_input_walks_from_cloned_preambles_match_fresh_ones() {
    use arbitrary::{Arbitrary, Unstructured};
    use tcp_harness::drive::walk::{run, WalkInput};
    let all = inputs("segment_input");
    let mut walked = 0;
    for (name, bytes) in &all {
        let Ok(input) = WalkInput::arbitrary(&mut Unstructured::new(bytes)) else {
            continue;
        };
        let (first, again) = (run(&input), run(&input));
        assert_eq!(first, again, "{name}");
        walked += usize::from(first.is_ok_and(|rows| !rows.is_empty()));
    }
    assert!(walked > all.len() / 2, "only {walked} seeds walk");
}

/// Counts the table rows a corpus directory reaches, e.g. what a minute of
/// fuzzing from an empty corpus found: `SEGMENT_INPUT_CORPUS=DIR cargo test
/// --release --test fuzz_replay -- --ignored rows_reached --nocapture`.
#[test]
#[ignore]
fn rows_reached() {
    let dir = std::env::var("SEGMENT_INPUT_CORPUS").expect("set SEGMENT_INPUT_CORPUS=DIR");
    let files: Vec<Vec<u8>> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{dir}: {e}"))
        .flatten()
        .filter_map(|e| std::fs::read(e.path()).ok())
        .collect();
    let rows = tcp_harness::fuzzing::segment_input_rows(files.iter().map(|b| &b[..]));
    println!(
        "{dir}: {} inputs reach {} table rows",
        files.len(),
        rows.len()
    );
}
