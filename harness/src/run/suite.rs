//! Running many scripts: finding them, choosing targets, summarising.

use super::registry::TargetName;
use super::runner::{run_text, Outcome, RunOptions, RunReport};
use super::target::Target;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tcp_spec::Profile;

/// A fresh target by name (see [`TargetName`]); `Err` names the known ones
/// or says why a live target cannot start.
pub fn make_target(name: &str, profile: Profile) -> Result<Box<dyn Target>, String> {
    name.parse::<TargetName>()?.make(profile)
}

/// The scripts named by `paths`: files as given, directories searched
/// recursively for `*.pkt`; sorted, without duplicates.
pub fn discover(paths: &[PathBuf]) -> Result<Vec<PathBuf>, String> {
    let mut out = Vec::new();
    for p in paths {
        let meta = std::fs::metadata(p).map_err(|e| format!("{}: {e}", p.display()))?;
        if meta.is_dir() {
            walk(p, &mut out, 0)?;
        } else {
            out.push(p.clone());
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>, depth: usize) -> Result<(), String> {
    if depth > 32 {
        return Err(format!("{}: directories nested too deeply", dir.display()));
    }
    let rd = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    for entry in rd {
        let entry = entry.map_err(|e| format!("{}: {e}", dir.display()))?;
        let path = entry.path();
        let ft = entry
            .file_type()
            .map_err(|e| format!("{}: {e}", path.display()))?;
        if ft.is_dir() {
            walk(&path, out, depth + 1)?;
        } else if path.extension().is_some_and(|x| x == "pkt") {
            out.push(path);
        }
    }
    Ok(())
}

/// Reads (see [`crate::script::read_script`]: regular UTF-8 files of
/// bounded size only) and runs one script file.
pub fn run_file(path: &Path, target: &mut dyn Target, opts: &RunOptions) -> RunReport {
    let shown = path.display().to_string();
    match crate::script::read_script(path) {
        Ok(text) => run_text(&shown, &text, target, opts),
        Err(e) => RunReport::error(&shown, target.name(), e),
    }
}

/// How often a failed script is retried on a live target: real time on a
/// loaded machine can push a packet past the tolerance once in a while.
pub const LIVE_RETRIES: usize = 2;

/// Runs one script on a fresh target named `target`. On a live target
/// (anything but the deterministic in-process ones) a failure is retried up to
/// [`LIVE_RETRIES`] times, each on a fresh target; the report is that of
/// the last attempt, with the failures before it in `earlier_failures`, so
/// a pass after a failure shows as flaky and a script failing every time
/// as failed. Errors (the script does not parse) are never retried.
pub fn run_script_file(
    path: &Path,
    target: &str,
    profile: Profile,
    opts: &RunOptions,
) -> Result<RunReport, String> {
    let name: TargetName = target.parse()?;
    let attempts = if name.is_virtual() {
        1
    } else {
        1 + LIVE_RETRIES
    };
    run_with_retries(path, attempts, opts, || make_target(target, profile))
}

/// Runs `path` on targets from `fresh` until it does not fail or
/// `attempts` runs are used up (see [`run_script_file`]).
pub fn run_with_retries(
    path: &Path,
    attempts: usize,
    opts: &RunOptions,
    mut fresh: impl FnMut() -> Result<Box<dyn Target>, String>,
) -> Result<RunReport, String> {
    let mut earlier = Vec::new();
    loop {
        let mut report = run_file(path, fresh()?.as_mut(), opts);
        let failure = match &report.outcome {
            Outcome::Failed(f) => Some(format!("line {}: {}", f.line, f.message)),
            _ => None,
        };
        match failure {
            Some(why) if earlier.len() + 1 < attempts => earlier.push(why),
            _ => {
                report.earlier_failures = earlier;
                return Ok(report);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::own::OwnTarget;

    /// challenge_ack_rst.pkt passes under rfc9293 and fails under rfc793
    /// (an in-window RST resets instead of drawing a challenge ACK): a
    /// target that behaves like rfc793 first and rfc9293 afterwards is a
    /// flaky one; rfc793 every time is a failure after every retry.
    fn script() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../specs/scripts/challenge_ack_rst.pkt")
    }

    fn own(p: Profile) -> Result<Box<dyn Target>, String> {
        Ok(Box::new(OwnTarget::new(p)))
    }

    #[test]
    fn a_pass_after_a_failure_is_flaky() {
        let mut profiles = [Profile::Rfc793, Profile::Rfc9293].into_iter();
        let opts = RunOptions::default();
        let r = run_with_retries(&script(), 3, &opts, || own(profiles.next().unwrap()));
        let r = r.unwrap();
        assert!(r.passed() && r.flaky(), "{:?}", r.outcome);
        assert_eq!(r.earlier_failures.len(), 1);
        let sum = Summary::of(std::slice::from_ref(&r));
        assert_eq!((sum.passed, sum.flaky, sum.failed), (1, 1, 0));
        assert!(table(&[r]).contains("flaky"));
    }

    #[test]
    fn a_failure_every_time_is_failed_after_the_retries() {
        let mut made = 0;
        let opts = RunOptions::default();
        let r = run_with_retries(&script(), 1 + LIVE_RETRIES, &opts, || {
            made += 1;
            own(Profile::Rfc793)
        });
        let r = r.unwrap();
        assert!(matches!(r.outcome, Outcome::Failed(_)));
        assert!(!r.flaky());
        assert_eq!(made, 1 + LIVE_RETRIES);
        assert_eq!(r.earlier_failures.len(), LIVE_RETRIES);
    }

    #[test]
    fn a_pass_is_not_retried_and_own_is_never_retried() {
        let mut made = 0;
        let opts = RunOptions::default();
        let r = run_with_retries(&script(), 3, &opts, || {
            made += 1;
            own(Profile::Rfc9293)
        });
        assert!(r.unwrap().passed());
        assert_eq!(made, 1);
        let r = run_script_file(&script(), "own", Profile::Rfc793, &opts).unwrap();
        assert!(r.earlier_failures.is_empty() && !r.passed());
    }

    /// A script's error exits 2; an error its environment caused (a live
    /// target's I/O) exits 3, and wins over the others.
    #[test]
    fn an_environment_error_exits_3() {
        let script_error = RunReport::error("a.pkt", "linux", "a.pkt:3:1: bad".into());
        let mut broken = RunReport::error("b.pkt", "linux", "b.pkt:8:1: tun0 gone".into());
        broken.environment = true;
        assert_eq!(
            Summary::of(std::slice::from_ref(&script_error)).exit_code(),
            2
        );
        let both = Summary::of(&[script_error, broken]);
        assert_eq!((both.errors, both.env_errors), (2, 1));
        assert_eq!(both.exit_code(), 3);
    }
}

/// Counts over a set of runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    pub passed: usize,
    /// Of `passed`, those that failed on an earlier attempt.
    pub flaky: usize,
    pub failed: usize,
    pub errors: usize,
    /// Of `errors`, those the environment caused ([`RunReport::environment`]).
    pub env_errors: usize,
    /// Scripts the target cannot run as written (a sysctl without a
    /// counterpart): neither passed nor failed.
    pub not_applicable: usize,
    /// Wall-clock time of all runs.
    pub wall: Duration,
}

impl Summary {
    /// Counts `reports`.
    pub fn of(reports: &[RunReport]) -> Summary {
        let mut s = Summary::default();
        for r in reports {
            match r.outcome {
                Outcome::Passed => {
                    s.passed += 1;
                    s.flaky += usize::from(r.flaky());
                }
                Outcome::Failed(_) => s.failed += 1,
                Outcome::Error(_) => {
                    s.errors += 1;
                    s.env_errors += usize::from(r.environment);
                }
                Outcome::NotApplicable(_) => s.not_applicable += 1,
            }
            s.wall += r.wall;
        }
        s
    }

    /// The exit code: 0 nothing failed (every script passed or does not
    /// apply to its target: a script that is not applicable is no verdict
    /// on the target, so not a failure), 1 any failed, 2 any script error,
    /// 3 any error the environment caused (a live target's I/O failed).
    pub fn exit_code(&self) -> u8 {
        if self.env_errors > 0 {
            3
        } else if self.errors > 0 {
            2
        } else if self.failed > 0 {
            1
        } else {
            0
        }
    }
}

/// A plain-text table: one line per script, then the totals.
pub fn table(reports: &[RunReport]) -> String {
    let width = reports
        .iter()
        .map(|r| r.path.chars().count())
        .max()
        .unwrap_or(6)
        .max(6);
    let mut s = String::new();
    let tw = reports
        .iter()
        .map(|r| r.target.len())
        .max()
        .unwrap_or(6)
        .max(6);
    let _ = writeln!(
        s,
        "{:<width$}  {:<tw$}  {:<14}  {:>12}  {:>10}",
        "script", "target", "result", "timeline", "wall"
    );
    for r in reports {
        let result = match r.outcome {
            Outcome::Passed if r.flaky() => "flaky",
            Outcome::Passed => "passed",
            Outcome::Failed(_) => "FAILED",
            Outcome::Error(_) => "ERROR",
            Outcome::NotApplicable(_) => "not applicable",
        };
        let _ = writeln!(
            s,
            "{:<width$}  {:<tw$}  {:<14}  {:>11.3}s  {:>8.1}ms",
            r.path,
            r.target,
            result,
            r.end_time as f64 / 1e6,
            r.wall.as_secs_f64() * 1e3
        );
    }
    let sum = Summary::of(reports);
    let flaky = match sum.flaky {
        0 => String::new(),
        n => format!(" ({n} flaky)"),
    };
    let not_applicable = match sum.not_applicable {
        0 => String::new(),
        n => format!(", {n} not applicable"),
    };
    let _ = writeln!(
        s,
        "{} passed{flaky}, {} failed, {} errors{not_applicable} in {:.1} ms",
        sum.passed,
        sum.failed,
        sum.errors,
        sum.wall.as_secs_f64() * 1e3
    );
    s
}
