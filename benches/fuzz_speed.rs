//! `segment_input` under libFuzzer: executions per second without a
//! sanitizer (as CI runs it) and with AddressSanitizer (cargo-fuzz's
//! default), and the table rows a minute of fuzzing reaches.
//!
//! `cargo bench --bench fuzz_speed` builds both binaries with cargo-fuzz
//! (RUSTC_BOOTSTRAP=1), then runs each for `FUZZ_BENCH_SECS` (default 60)
//! seconds from a scratch copy of `corpus/segment_input/`, back to back, and
//! the binary without a sanitizer once more from an empty corpus. For each
//! run it prints libFuzzer's exec/s, executions per CPU second of the
//! fuzzer process (steadier than exec/s on a loaded machine) and the load
//! average, and the rows of the table that the run's corpus reaches
//! (`tcp_harness::fuzzing::segment_input_rows`, preambles included).
//! `FUZZ_BENCH_FLAGS` adds cargo-fuzz build flags (e.g.
//! `--no-trace-compares`), `FUZZ_BENCH_OPTS` libFuzzer options to every run
//! (e.g. `-use_counters=0 -reduce_inputs=0`), `FUZZ_BENCH_SANITIZERS` picks
//! the builds (default `none address`); `FUZZ_BENCH_ROWS=DIR` only prints
//! the rows the inputs in DIR reach.

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    if let Some(dir) = std::env::var_os("FUZZ_BENCH_ROWS") {
        println!("{}", rows_in(Path::new(&dir)));
        return;
    }
    let secs: u64 = std::env::var("FUZZ_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let extra: Vec<String> = std::env::var("FUZZ_BENCH_FLAGS")
        .map(|s| s.split_whitespace().map(String::from).collect())
        .unwrap_or_default();
    let opts: Vec<String> = std::env::var("FUZZ_BENCH_OPTS")
        .map(|s| s.split_whitespace().map(String::from).collect())
        .unwrap_or_default();
    let sanitizers: Vec<String> = std::env::var("FUZZ_BENCH_SANITIZERS")
        .unwrap_or_else(|_| "none address".into())
        .split_whitespace()
        .map(String::from)
        .collect();
    let scratch = std::env::temp_dir().join(format!("fuzz_speed-{}", std::process::id()));
    let runs = [
        ("none", "seeds"),
        ("address", "seeds"),
        ("none", "empty corpus"),
    ];
    let mut binaries = Vec::new();
    for sanitizer in &sanitizers {
        match build(root, sanitizer, &extra, &scratch) {
            Ok(bin) => binaries.push((sanitizer.as_str(), bin)),
            Err(e) => {
                eprintln!("fuzz_speed: {e}");
                std::process::exit(1);
            }
        }
    }
    for (i, (sanitizer, from)) in runs.into_iter().enumerate() {
        let Some((_, bin)) = binaries.iter().find(|(s, _)| *s == sanitizer) else {
            continue;
        };
        let corpus = scratch.join(format!("corpus-{i}"));
        std::fs::create_dir_all(&corpus).expect("scratch corpus");
        if from == "seeds" {
            copy_seeds(&root.join("corpus/segment_input"), &corpus);
        }
        match fuzz(bin, &corpus, secs, &opts) {
            Ok(r) => {
                let rows = rows_in(&corpus);
                println!(
                    "segment_input -s {sanitizer:<7} from {from:<12} {secs} s: {:>7} exec/s, \
                     {:>7.0} exec per CPU second, {rows} rows reached, load {}",
                    r.exec_per_sec, r.per_cpu_second, r.load
                );
            }
            Err(e) => eprintln!("fuzz_speed: -s {sanitizer} from {from}: {e}"),
        }
    }
    let _ = std::fs::remove_dir_all(&scratch);
}

/// Builds `segment_input` with cargo-fuzz; returns a copy of the binary
/// (the next build overwrites cargo-fuzz's).
fn build(
    root: &Path,
    sanitizer: &str,
    extra: &[String],
    scratch: &Path,
) -> Result<PathBuf, String> {
    let status = Command::new("cargo")
        .current_dir(root.join("fuzz"))
        .env("RUSTC_BOOTSTRAP", "1")
        .args(["fuzz", "build", "-O", "-s", sanitizer])
        .args(extra)
        .arg("segment_input")
        .status()
        .map_err(|e| format!("cargo fuzz build: {e} (is cargo-fuzz installed?)"))?;
    if !status.success() {
        return Err(format!("cargo fuzz build -s {sanitizer}: {status}"));
    }
    let built = root.join("fuzz/target/x86_64-unknown-linux-gnu/release/segment_input");
    std::fs::create_dir_all(scratch).map_err(|e| format!("{}: {e}", scratch.display()))?;
    let copy = scratch.join(format!("segment_input-{sanitizer}"));
    std::fs::copy(&built, &copy).map_err(|e| format!("{}: {e}", built.display()))?;
    Ok(copy)
}

fn copy_seeds(from: &Path, to: &Path) {
    let mut dirs = vec![from.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
            } else if let Some(name) = path.file_name() {
                let _ = std::fs::copy(&path, to.join(name));
            }
        }
    }
}

struct Run {
    exec_per_sec: u64,
    per_cpu_second: f64,
    load: String,
}

/// One libFuzzer run of `secs` seconds into `corpus`.
fn fuzz(bin: &Path, corpus: &Path, secs: u64, opts: &[String]) -> Result<Run, String> {
    let cpu_before = children_cpu_seconds();
    let out = Command::new(bin)
        .arg(corpus)
        .args(opts)
        .arg(format!("-max_total_time={secs}"))
        .arg("-print_final_stats=1")
        .output()
        .map_err(|e| format!("{}: {e}", bin.display()))?;
    let cpu = children_cpu_seconds() - cpu_before;
    let log = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        return Err(format!("fuzzer failed ({}):\n{log}", out.status));
    }
    let stat = |name: &str| -> Option<u64> {
        log.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().parse().ok())
    };
    let units = stat("stat::number_of_executed_units:").ok_or("no final stats")?;
    let exec_per_sec = stat("stat::average_exec_per_sec:").ok_or("no final stats")?;
    let load = std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(String::from))
        .unwrap_or_else(|| "?".into());
    Ok(Run {
        exec_per_sec,
        per_cpu_second: units as f64 / cpu.max(0.01),
        load,
    })
}

/// User + system CPU time of this process's waited-for children
/// (`/proc/self/stat` fields 16 and 17, in clock ticks of 1/100 s).
fn children_cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which ends with the last ')').
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // fields[0] is field 3 (state), so field N is fields[N - 3].
    let tick = |n: usize| {
        fields
            .get(n - 3)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (tick(16) + tick(17)) / 100.0
}

/// The table rows the inputs in `corpus` reach.
fn rows_in(corpus: &Path) -> usize {
    let inputs: Vec<Vec<u8>> = std::fs::read_dir(corpus)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| std::fs::read(e.path()).ok())
        .collect();
    tcp_harness::fuzzing::segment_input_rows(inputs.iter().map(|b| &b[..])).len()
}
