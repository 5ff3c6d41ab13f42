//! The conformance suite on the virtual clock: runs every script of
//! `specs/scripts` (recursively) on target `own` several times and prints
//! the wall time against the sum of the scripts' own timelines, i.e. what
//! a tool driving a real stack in real time would need. Goal: a ratio of
//! at least 1000×. Benchmarks measure; nothing is asserted.

use std::path::PathBuf;
use std::time::{Duration, Instant};
use tcp_harness::run::{discover, run_file, OwnTarget, RunOptions};
use tcp_spec::Profile;

const ROUNDS: usize = 10;

fn main() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("specs/scripts");
    let scripts = match discover(&[dir]) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("suite bench: {e}");
            return;
        }
    };
    let opts = RunOptions::default();
    // Warm-up: loads the table once, fills caches.
    let mut timeline_us: u64 = 0;
    let mut passed = 0usize;
    for p in &scripts {
        let mut t = OwnTarget::new(Profile::Rfc9293);
        let r = run_file(p, &mut t, &opts);
        timeline_us += r.end_time;
        passed += usize::from(r.passed());
    }
    let mut walls = Vec::with_capacity(ROUNDS);
    for _ in 0..ROUNDS {
        let start = Instant::now();
        for p in &scripts {
            let mut t = OwnTarget::new(Profile::Rfc9293);
            let r = run_file(p, &mut t, &opts);
            std::hint::black_box(&r);
        }
        walls.push(start.elapsed());
    }
    walls.sort();
    let median = walls[walls.len() / 2];
    let best = walls[0];
    let timeline = Duration::from_micros(timeline_us);
    let ratio = |w: Duration| timeline.as_secs_f64() / w.as_secs_f64().max(1e-9);
    println!(
        "suite: {} scripts ({passed} passed), profile rfc9293, target own, {ROUNDS} rounds",
        scripts.len()
    );
    println!(
        "timeline sum (real-time tool): {:.3} s",
        timeline.as_secs_f64()
    );
    println!(
        "wall per suite run: median {:.3} ms, best {:.3} ms ({:.1} µs per script)",
        median.as_secs_f64() * 1e3,
        best.as_secs_f64() * 1e3,
        median.as_secs_f64() * 1e6 / scripts.len().max(1) as f64
    );
    println!(
        "speed-up over real time: median {:.0}x, best {:.0}x (goal >= 1000x)",
        ratio(median),
        ratio(best)
    );
}
