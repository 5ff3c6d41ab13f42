//! Running many scripts: finding them, choosing targets, summarising.

use super::own::OwnTarget;
use super::runner::{run_text, Outcome, RunOptions, RunReport};
use super::target::Target;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tcp_spec::Profile;

/// The targets this build can run.
pub const TARGETS: [&str; 3] = ["own", "linux", "own-tun"];

/// The targets `tcpconform check` runs the suite on. `linux` differs from the
/// rfc9293 scripts where the kernel legitimately does (window, options,
/// 200 ms min RTO): it joins once divergences are classified against the
/// table's profiles.
pub const CHECK_TARGETS: [&str; 1] = ["own"];

/// A fresh target by name; `Err` names the known ones.
pub fn make_target(name: &str, profile: Profile) -> Result<Box<dyn Target>, String> {
    match name {
        "own" => Ok(Box::new(OwnTarget::new(profile))),
        // The kernel behaves as it does: the profile does not apply.
        "linux" => crate::run::linux::LinuxTarget::new()
            .map(|t| Box::new(t) as Box<dyn Target>)
            .map_err(|e| e.to_string()),
        "own-tun" => crate::run::own_tun::OwnTunTarget::new(profile)
            .map(|t| Box::new(t) as Box<dyn Target>)
            .map_err(|e| e.to_string()),
        other => Err(format!(
            "unknown target `{other}` (available: {})",
            TARGETS.join(", ")
        )),
    }
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

/// Reads and runs one script file.
pub fn run_file(path: &Path, target: &mut dyn Target, opts: &RunOptions) -> RunReport {
    let shown = path.display().to_string();
    match std::fs::read(path) {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            run_text(&shown, &text, target, opts)
        }
        Err(e) => RunReport {
            path: shown.clone(),
            target: target.name(),
            outcome: Outcome::Error(format!("{shown}: cannot read: {e}")),
            warnings: Vec::new(),
            trace: Default::default(),
            end_time: 0,
            wall: Duration::ZERO,
        },
    }
}

/// Counts over a set of runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    pub passed: usize,
    pub failed: usize,
    pub errors: usize,
    /// Wall-clock time of all runs.
    pub wall: Duration,
}

impl Summary {
    /// Counts `reports`.
    pub fn of(reports: &[RunReport]) -> Summary {
        let mut s = Summary::default();
        for r in reports {
            match r.outcome {
                Outcome::Passed => s.passed += 1,
                Outcome::Failed(_) => s.failed += 1,
                Outcome::Error(_) => s.errors += 1,
            }
            s.wall += r.wall;
        }
        s
    }

    /// The exit code: 0 all passed, 1 any failed, 2 any script error.
    pub fn exit_code(&self) -> u8 {
        if self.errors > 0 {
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
    let _ = writeln!(
        s,
        "{:<width$}  {:<6}  {:<7}  {:>12}  {:>10}",
        "script", "target", "result", "virtual", "wall"
    );
    for r in reports {
        let result = match r.outcome {
            Outcome::Passed => "passed",
            Outcome::Failed(_) => "FAILED",
            Outcome::Error(_) => "ERROR",
        };
        let _ = writeln!(
            s,
            "{:<width$}  {:<6}  {:<7}  {:>11.3}s  {:>8.1}ms",
            r.path,
            r.target,
            result,
            r.end_time as f64 / 1e6,
            r.wall.as_secs_f64() * 1e3
        );
    }
    let sum = Summary::of(reports);
    let _ = writeln!(
        s,
        "{} passed, {} failed, {} errors in {:.1} ms",
        sum.passed,
        sum.failed,
        sum.errors,
        sum.wall.as_secs_f64() * 1e3
    );
    s
}
