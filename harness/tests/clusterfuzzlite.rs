//! The ClusterFuzzLite / OSS-Fuzz configuration: `.clusterfuzzlite/build.sh`
//! run outside Docker into a temporary `$OUT` must produce fuzz binaries that
//! run their own seed corpora, and the GitHub Actions workflows must run the
//! ClusterFuzzLite modes (code-change on pull requests, batch, prune,
//! coverage) on Rust builds.
//!
//! Needs cargo-fuzz (`.ci/setup` installs it) and python3 with PyYAML (to
//! read the workflows; `.ci/setup` installs it too).

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const TARGETS: [&str; 2] = ["segment_input", "script_parse"];

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("harness/ has a parent")
        .to_path_buf()
}

/// A directory removed when the test ends, whatever its outcome.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("tcpconform-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn text(out: &Output) -> String {
    format!(
        "status {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The build script with a clean environment for the variables it reads.
fn build_script() -> Command {
    let mut cmd = Command::new("bash");
    cmd.arg(repo().join(".clusterfuzzlite/build.sh"));
    for var in [
        "OUT",
        "SRC",
        "SANITIZER",
        "CARGO_BUILD_TARGET",
        "CARGO_TARGET_DIR",
    ] {
        cmd.env_remove(var);
    }
    cmd
}

fn files_under(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| match e.path() {
                    p if p.is_dir() => files_under(&p),
                    _ => 1,
                })
                .sum()
        })
        .unwrap_or(0)
}

/// Runs the build script as ClusterFuzzLite lays the checkout out
/// (`$SRC/tcpconform`) without AddressSanitizer — the build `.ci/run`'s
/// `cargo fuzz run -s none` reuses — then each binary over its unpacked seed
/// corpus for 100 runs.
#[test]
fn build_script_produces_fuzzers_that_run_their_seeds() {
    let cargo_fuzz = Command::new("cargo").args(["fuzz", "--version"]).output();
    assert!(
        cargo_fuzz.is_ok_and(|o| o.status.success()),
        "cargo-fuzz is not installed: run .ci/setup"
    );
    let tmp = TempDir::new("cflite");
    let (src, out) = (tmp.0.join("src"), tmp.0.join("out"));
    std::fs::create_dir_all(&src).unwrap();
    std::os::unix::fs::symlink(repo(), src.join("tcpconform")).unwrap();
    let built = build_script()
        .env("SRC", &src)
        .env("OUT", &out)
        .env("SANITIZER", "none")
        .output()
        .expect("run bash");
    assert!(built.status.success(), "build.sh failed: {}", text(&built));

    for target in TARGETS {
        let bin = out.join(target);
        assert!(bin.is_file(), "{} missing", bin.display());
        let zip = out.join(format!("{target}_seed_corpus.zip"));
        let seeds = tmp.0.join(format!("seeds-{target}"));
        let unzip = Command::new("unzip")
            .arg("-q")
            .arg(&zip)
            .arg("-d")
            .arg(&seeds)
            .output()
            .expect("run unzip");
        assert!(
            unzip.status.success(),
            "{}: {}",
            zip.display(),
            text(&unzip)
        );
        let committed = files_under(&repo().join("corpus").join(target));
        assert_eq!(
            files_under(&seeds),
            committed,
            "{} does not hold every file of corpus/{target}",
            zip.display()
        );

        let run = Command::new(&bin)
            .arg("-runs=100")
            .arg(&seeds)
            .output()
            .expect("run fuzz binary");
        let log = text(&run);
        assert!(run.status.success(), "{target}: {log}");
        // libFuzzer read the seeds, then ran 100 inputs of its own.
        assert!(
            log.contains("INITED"),
            "{target} did not load its seeds: {log}"
        );
        assert!(log.contains("Done 100 runs"), "{target}: {log}");
    }
    let options = std::fs::read_to_string(out.join("script_parse.options")).unwrap();
    assert!(options.starts_with("[libfuzzer]"), "{options}");
}

#[test]
fn build_script_without_out_says_so() {
    let run = build_script().output().expect("run bash");
    assert_eq!(run.status.code(), Some(2), "{}", text(&run));
    assert!(
        String::from_utf8_lossy(&run.stderr).contains("OUT is not set"),
        "{}",
        text(&run)
    );
}

#[test]
fn build_script_rejects_an_unknown_sanitizer() {
    let tmp = TempDir::new("cflite-bad");
    let run = build_script()
        .env("OUT", &tmp.0)
        .env("SANITIZER", "thread-ish")
        .output()
        .expect("run bash");
    assert_eq!(run.status.code(), Some(2), "{}", text(&run));
    assert!(
        String::from_utf8_lossy(&run.stderr).contains("unsupported SANITIZER=thread-ish"),
        "{}",
        text(&run)
    );
}

/// A workflow file as JSON (PyYAML reads it; `on` becomes `true` in YAML 1.1).
fn workflow(name: &str) -> Value {
    let path = repo().join(".github/workflows").join(name);
    let out = Command::new("python3")
        .args([
            "-c",
            "import json, sys, yaml; json.dump(yaml.safe_load(open(sys.argv[1])), sys.stdout)",
        ])
        .arg(&path)
        .output()
        .expect("python3 is needed to read the workflows (.ci/setup)");
    assert!(out.status.success(), "{}: {}", path.display(), text(&out));
    serde_json::from_slice(&out.stdout).expect("JSON from python3")
}

fn triggers(wf: &Value) -> &Value {
    wf.get("on").or_else(|| wf.get("true")).expect("no `on:`")
}

/// One ClusterFuzzLite run of a job: the sanitizer it built with and the
/// inputs of its run step, with `${{ matrix.sanitizer }}` expanded.
struct CfliteRun {
    build_sanitizer: String,
    language: String,
    mode: String,
    run_sanitizer: String,
    fuzz_seconds: u64,
}

fn cflite_runs(wf: &Value) -> Vec<CfliteRun> {
    let mut runs = Vec::new();
    for (job_name, job) in wf["jobs"].as_object().expect("jobs") {
        let matrix: Vec<String> = match job["strategy"]["matrix"]["sanitizer"].as_array() {
            Some(list) => list
                .iter()
                .map(|s| s.as_str().unwrap().to_string())
                .collect(),
            None => vec![String::new()],
        };
        let steps = job["steps"].as_array().expect("steps");
        let with = |action: &str| {
            let found: Vec<&Value> = steps
                .iter()
                .filter(|s| {
                    s["uses"]
                        .as_str()
                        .is_some_and(|u| u == format!("google/clusterfuzzlite/actions/{action}@v1"))
                })
                .collect();
            assert_eq!(found.len(), 1, "job {job_name}: one {action} step");
            found[0]["with"].clone()
        };
        let (build, run) = (with("build_fuzzers"), with("run_fuzzers"));
        for m in &matrix {
            let get = |v: &Value, key: &str| {
                v[key]
                    .as_str()
                    .unwrap_or_default()
                    .replace("${{ matrix.sanitizer }}", m)
            };
            runs.push(CfliteRun {
                build_sanitizer: get(&build, "sanitizer"),
                language: get(&build, "language"),
                mode: get(&run, "mode"),
                run_sanitizer: get(&run, "sanitizer"),
                fuzz_seconds: run["fuzz-seconds"].as_u64().unwrap_or(0),
            });
        }
    }
    runs
}

#[test]
fn workflows_run_every_clusterfuzzlite_mode_on_rust_builds() {
    let pr = workflow("cflite_pr.yml");
    assert!(
        triggers(&pr).get("pull_request").is_some(),
        "PR workflow trigger"
    );
    let batch = workflow("cflite_batch.yml");
    let cron = workflow("cflite_cron.yml");
    for wf in [&batch, &cron] {
        assert!(triggers(wf)["schedule"][0]["cron"].is_string(), "scheduled");
    }
    let mut modes = Vec::new();
    for (name, wf) in [("pr", &pr), ("batch", &batch), ("cron", &cron)] {
        for r in cflite_runs(wf) {
            assert_eq!(r.language, "rust", "{name}");
            assert_eq!(r.build_sanitizer, r.run_sanitizer, "{name} {}", r.mode);
            let want = if r.mode == "coverage" {
                "coverage"
            } else {
                "address"
            };
            assert_eq!(r.run_sanitizer, want, "{name} {}", r.mode);
            assert!(r.fuzz_seconds > 0, "{name} {}: fuzz-seconds", r.mode);
            modes.push((name, r.mode, r.fuzz_seconds));
        }
    }
    let has = |wf: &str, mode: &str| modes.iter().any(|(n, m, _)| *n == wf && m == mode);
    assert!(
        has("pr", "code-change") && has("batch", "batch"),
        "{modes:?}"
    );
    assert!(has("cron", "prune") && has("cron", "coverage"), "{modes:?}");
    // Pull requests get a short run; the nightly batch a long one.
    let secs = |mode: &str| modes.iter().find(|(_, m, _)| m == mode).unwrap().2;
    assert!(
        secs("code-change") <= 600 && secs("batch") >= 1800,
        "{modes:?}"
    );
}
