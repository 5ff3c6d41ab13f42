//! The conformance suite on the live targets: every script of
//! `specs/scripts` whose timeline on `own` is at most 30 s runs on `linux`
//! and on `own-tun`, each in a fresh namespace. Prints, per target, the
//! wall time against the sum of the scripts' timelines, the set-up time of
//! a target (namespace, TUN devices, sysctls, threads) and the per-script
//! overhead (wall − timeline), in ms. Benchmarks measure; nothing is
//! asserted.
//!
//! Run with `cargo bench --bench live_suite` as root; without the
//! privileges for namespaces and TUN devices it prints `skipped: <reason>`.

use std::path::PathBuf;
use std::time::{Duration, Instant};
use tcp_harness::live;
use tcp_harness::run::{discover, run_file, suite, OwnTarget, RunOptions};
use tcp_spec::Profile;

const MAX_TIMELINE_US: u64 = 30_000_000;

fn main() {
    if let Err(e) = live::available() {
        println!("skipped: {e}");
        return;
    }
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("specs/scripts");
    let scripts = match discover(&[dir]) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("live suite bench: {e}");
            return;
        }
    };
    let opts = RunOptions::default();
    let short: Vec<PathBuf> = scripts
        .iter()
        .filter(|p| {
            let r = run_file(p, &mut OwnTarget::new(Profile::Rfc9293), &opts);
            r.end_time <= MAX_TIMELINE_US
        })
        .cloned()
        .collect();
    println!(
        "live suite: {} of {} scripts (timeline on own <= 30 s), one fresh namespace each",
        short.len(),
        scripts.len()
    );
    for target in ["linux", "own-tun"] {
        let (mut setup, mut wall, mut timeline) = (Duration::ZERO, Duration::ZERO, 0u64);
        let mut passed = 0;
        let started = Instant::now();
        for p in &short {
            let t0 = Instant::now();
            let mut t = match suite::make_target(target, Profile::Rfc9293) {
                Ok(t) => t,
                Err(e) => {
                    eprintln!("{target}: {e}");
                    return;
                }
            };
            setup += t0.elapsed();
            let r = run_file(p, t.as_mut(), &opts);
            wall += r.wall;
            timeline += r.end_time;
            passed += usize::from(r.passed());
        }
        let total = started.elapsed();
        let n = short.len().max(1) as f64;
        let timeline_s = timeline as f64 / 1e6;
        println!(
            "{target:8} total {:.1} s (runs {:.1} s) vs timelines {timeline_s:.1} s; \
             set-up {:.0} ms per script; overhead (wall − timeline) {:.0} ms per script, \
             teardown and set-up included {:.0} ms; {passed} passed as scripted",
            total.as_secs_f64(),
            wall.as_secs_f64(),
            setup.as_secs_f64() * 1e3 / n,
            (wall.as_secs_f64() - timeline_s) * 1e3 / n,
            (total.as_secs_f64() - timeline_s) * 1e3 / n,
        );
    }
}
