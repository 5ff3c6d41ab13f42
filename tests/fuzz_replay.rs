//! Replays the committed fuzz seeds and minimized reproducers
//! (`corpus/<target>/`, including `regressions/`) through the same entry
//! points the fuzz targets use, so a fixed crash stays fixed.

use std::path::Path;

fn inputs(target: &str) -> Vec<(String, Vec<u8>)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus").join(target);
    let mut out = Vec::new();
    let mut dirs = vec![root];
    while let Some(dir) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
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
