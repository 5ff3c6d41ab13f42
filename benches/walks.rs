//! Executions per second of the `segment_input` fuzz logic (one walk per
//! input: preamble to a state, then up to 48 steps with every oracle), over
//! the committed seeds, in release mode without a sanitizer. libFuzzer's own
//! exec/s under AddressSanitizer is lower; see the README.

use std::path::Path;
use std::time::Instant;

fn main() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus/segment_input");
    let seeds: Vec<Vec<u8>> = std::fs::read_dir(&dir)
        .map(|d| {
            d.flatten()
                .filter(|e| e.path().is_file())
                .filter_map(|e| std::fs::read(e.path()).ok())
                .collect()
        })
        .unwrap_or_default();
    assert!(!seeds.is_empty(), "no seeds in {}", dir.display());
    tcp_harness::fuzzing::segment_input(&seeds[0]); // loads the table once
    let rounds = 200;
    let start = Instant::now();
    for _ in 0..rounds {
        for s in &seeds {
            tcp_harness::fuzzing::segment_input(s);
        }
    }
    let n = rounds * seeds.len();
    let secs = start.elapsed().as_secs_f64();
    println!("segment_input: {n} executions in {secs:.2} s = {:.0} exec/s (release, no sanitizer, {} seeds)", n as f64 / secs, seeds.len());
}
