//! Naming exec targets: `exec:CMD` on the command line, or a name from a
//! small TOML file of targets (`--targets-file`):
//!
//! ```toml
//! [targets.kernel-shim]
//! exec = "python3 harness/examples/exec_kernel.py"
//! timeout_ms = 5000          # optional: the per-call timeout
//! profile = "linux"          # optional: the target's own profile for verdicts
//! ```
//!
//! The file and `--exec-timeout` are read once by the command line
//! ([`configure`]); [`lookup`] then resolves a target name wherever targets
//! are built (`run::suite::make_target`).

use super::DEFAULT_TIMEOUT;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

/// The prefix of an exec target given on the command line.
pub const PREFIX: &str = "exec:";
/// Longest command accepted.
const MAX_CMD: usize = 4096;

/// A foreign process to run as a target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecSpec {
    /// The name from a targets file, if it came from one.
    pub name: Option<String>,
    /// The command, run as `/bin/sh -c CMD` inside the namespace.
    pub cmd: String,
    /// How long the process may take to answer one request.
    pub timeout: Duration,
    /// The target's own profile (docs/architecture.md, "Verdicts": it may
    /// explain a behaviour, as `linux` does for the kernel); from a targets
    /// file only.
    pub profile: Option<tcp_spec::Profile>,
}

impl ExecSpec {
    /// Parses `exec:CMD`; `None` when `s` does not start with `exec:`.
    pub fn parse(s: &str) -> Option<Result<ExecSpec, String>> {
        let cmd = s.strip_prefix(PREFIX)?;
        Some(ExecSpec::command(None, cmd, default_timeout()))
    }

    fn command(name: Option<String>, cmd: &str, timeout: Duration) -> Result<ExecSpec, String> {
        let cmd = cmd.trim();
        if cmd.is_empty() {
            return Err("exec: needs a command, e.g. exec:\"python3 exec_kernel.py\"".into());
        }
        if cmd.len() > MAX_CMD || cmd.contains('\0') {
            return Err(format!(
                "exec: the command must be under {MAX_CMD} bytes, without NUL"
            ));
        }
        Ok(ExecSpec {
            name,
            cmd: cmd.to_string(),
            timeout,
            profile: None,
        })
    }

    /// How the target is shown: its name from the file, or `exec:CMD`.
    pub fn label(&self) -> String {
        match &self.name {
            Some(n) => n.clone(),
            None => format!("{PREFIX}{}", self.cmd),
        }
    }
}

/// What `--targets-file` and `--exec-timeout` set.
#[derive(Debug, Default)]
struct Config {
    targets: BTreeMap<String, ExecSpec>,
    timeout: Option<Duration>,
}

static CONFIG: Mutex<Option<Config>> = Mutex::new(None);

fn default_timeout() -> Duration {
    let c = CONFIG.lock().unwrap_or_else(|e| e.into_inner());
    c.as_ref()
        .and_then(|c| c.timeout)
        .unwrap_or(DEFAULT_TIMEOUT)
}

/// The file's layout.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    targets: BTreeMap<String, FileTarget>,
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct FileTarget {
    exec: String,
    timeout_ms: Option<u64>,
    profile: Option<String>,
}

/// Names the built-in targets take; a file may not reuse them.
const RESERVED: [&str; 4] = ["own", "linux", "own-tun", "smoltcp"];

/// Reads the targets file (if any) and sets the default per-call timeout;
/// `Err` is one sentence naming the file and the problem.
pub fn configure(file: Option<&Path>, timeout: Option<Duration>) -> Result<(), String> {
    let mut cfg = Config {
        targets: BTreeMap::new(),
        timeout,
    };
    if let Some(path) = file {
        let shown = path.display();
        let text = std::fs::read_to_string(path).map_err(|e| format!("{shown}: {e}"))?;
        let parsed: File = toml::from_str(&text).map_err(|e| format!("{shown}: {e}"))?;
        for (name, t) in parsed.targets {
            let ok = !name.is_empty()
                && name.len() <= 64
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.');
            if !ok || RESERVED.contains(&name.as_str()) {
                return Err(format!(
                    "{shown}: target name `{name}`: use 1-64 letters, digits, `-`, `_` or `.`, \
                     and not a built-in target ({})",
                    RESERVED.join(", ")
                ));
            }
            let timeout = match t.timeout_ms {
                Some(0) => return Err(format!("{shown}: [targets.{name}] timeout_ms must be > 0")),
                Some(ms) => Duration::from_millis(ms),
                None => timeout.unwrap_or(DEFAULT_TIMEOUT),
            };
            let mut spec = ExecSpec::command(Some(name.clone()), &t.exec, timeout)
                .map_err(|e| format!("{shown}: [targets.{name}] {e}"))?;
            spec.profile = match t.profile.as_deref().map(str::parse) {
                None => None,
                Some(Ok(p)) => Some(p),
                Some(Err(e)) => return Err(format!("{shown}: [targets.{name}] profile: {e}")),
            };
            cfg.targets.insert(name, spec);
        }
    }
    *CONFIG.lock().unwrap_or_else(|e| e.into_inner()) = Some(cfg);
    Ok(())
}

/// The exec target `name` stands for: `exec:CMD`, or a name from the
/// targets file. `None`: not an exec target.
pub fn lookup(name: &str) -> Option<Result<ExecSpec, String>> {
    if let Some(r) = ExecSpec::parse(name) {
        return Some(r);
    }
    let c = CONFIG.lock().unwrap_or_else(|e| e.into_inner());
    c.as_ref()
        .and_then(|c| c.targets.get(name))
        .map(|s| Ok(s.clone()))
}

/// The own profile of target `name` when the targets file gives one.
pub fn profile_of(name: &str) -> Option<tcp_spec::Profile> {
    lookup(name).and_then(Result::ok).and_then(|s| s.profile)
}

/// The names defined in the targets file.
pub fn file_targets() -> Vec<String> {
    let c = CONFIG.lock().unwrap_or_else(|e| e.into_inner());
    c.as_ref()
        .map(|c| c.targets.keys().cloned().collect())
        .unwrap_or_default()
}

/// A `&'static str` for a target's label (reports keep target names as
/// such); each distinct label is allocated once per process.
pub(crate) fn intern(label: String) -> &'static str {
    static NAMES: Mutex<BTreeSet<&'static str>> = Mutex::new(BTreeSet::new());
    let mut names = NAMES.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(n) = names.get(label.as_str()) {
        return n;
    }
    let leaked: &'static str = Box::leak(label.into_boxed_str());
    names.insert(leaked);
    leaked
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exec_specs_parse() {
        assert!(ExecSpec::parse("own").is_none());
        let s = ExecSpec::parse("exec: python3 shim.py ").unwrap().unwrap();
        assert_eq!(s.cmd, "python3 shim.py");
        assert_eq!(s.label(), "exec:python3 shim.py");
        assert!(ExecSpec::parse("exec:").unwrap().is_err());
        assert!(ExecSpec::parse("exec:a\0b").unwrap().is_err());
    }

    #[test]
    fn interned_names_are_shared() {
        let a = intern("exec:x".into());
        let b = intern("exec:x".into());
        assert!(std::ptr::eq(a, b));
    }

    #[test]
    fn a_targets_file_names_commands() {
        let dir = std::env::temp_dir().join(format!("tcpconform-targets-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let good = dir.join("good.toml");
        std::fs::write(
            &good,
            "[targets.shim]\nexec = \"python3 shim.py\"\ntimeout_ms = 1500\nprofile = \"linux\"\n",
        )
        .unwrap();
        let bad = dir.join("bad.toml");
        std::fs::write(&bad, "[targets.linux]\nexec = \"x\"\n").unwrap();
        let typo = dir.join("typo.toml");
        std::fs::write(&typo, "[targets.a]\nexc = \"x\"\n").unwrap();
        // One test owns the process-wide configuration.
        configure(Some(&good), None).unwrap();
        let s = lookup("shim").unwrap().unwrap();
        assert_eq!(
            (s.cmd.as_str(), s.timeout),
            ("python3 shim.py", Duration::from_millis(1500))
        );
        assert_eq!(s.label(), "shim");
        assert_eq!(profile_of("shim"), Some(tcp_spec::Profile::Linux));
        assert_eq!(profile_of("exec:x"), None);
        assert_eq!(file_targets(), vec!["shim".to_string()]);
        assert!(lookup("nope").is_none());
        let e = configure(Some(&bad), None).unwrap_err();
        assert!(e.contains("built-in"), "{e}");
        let e = configure(Some(&typo), None).unwrap_err();
        assert!(e.contains("typo.toml"), "{e}");
        configure(None, Some(Duration::from_secs(2))).unwrap();
        assert_eq!(
            ExecSpec::parse("exec:x").unwrap().unwrap().timeout,
            Duration::from_secs(2)
        );
        configure(None, None).unwrap();
        let _ = std::fs::remove_dir_all(&dir);
    }
}
