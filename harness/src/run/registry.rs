//! The targets this build can run, by name: one typed registry for `run`,
//! `diff`, `check` and `coverage` (and their `--help`).
//!
//! A name is parsed and checked without starting anything, so a typo is a
//! usage error before any namespace is created. [`TargetName::make`] builds
//! a fresh target. Targets that carry data (a foreign process started by
//! a command, `exec:CMD`) are variants with fields: parsing goes through
//! [`std::str::FromStr`], which is where such a prefix is recognised.

use super::own::OwnTarget;
use super::smoltcp_target::SmoltcpTarget;
use super::target::Target;
use std::fmt;
use std::str::FromStr;
use tcp_spec::Profile;

/// A target by name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TargetName {
    /// The own stack in-process on a virtual clock (the reference).
    Own,
    /// smoltcp 0.14 in-process on a virtual clock.
    Smoltcp,
    /// The own stack behind `tun1` in a namespace, real time (root).
    OwnTun,
    /// This machine's kernel behind `tun0` in a namespace, real time (root).
    Linux,
    /// A foreign process behind TUN speaking docs/exec-protocol.md, named
    /// as written: `exec:CMD`, or a name from `--targets-file`
    /// ([`crate::run::exec`]); real time, root.
    Exec(String),
}

impl TargetName {
    /// Every target without parameters, in `--help` order.
    pub const BUILTIN: [TargetName; 4] = [
        TargetName::Own,
        TargetName::Smoltcp,
        TargetName::OwnTun,
        TargetName::Linux,
    ];

    /// The name as written on the command line and in reports.
    pub fn as_str(&self) -> &str {
        match self {
            TargetName::Own => "own",
            TargetName::Smoltcp => "smoltcp",
            TargetName::OwnTun => "own-tun",
            TargetName::Linux => "linux",
            TargetName::Exec(name) => name,
        }
    }

    /// One line for `--help`.
    pub fn about(&self) -> &'static str {
        match self {
            TargetName::Own => "the own stack in-process, virtual clock (the reference)",
            TargetName::Smoltcp => "smoltcp 0.14 in-process, virtual clock",
            TargetName::OwnTun => "the own stack behind TUN in a namespace, real time, root",
            TargetName::Linux => "this machine's kernel behind TUN in a namespace, real time, root",
            TargetName::Exec(_) => "a foreign process behind TUN (exec:CMD), real time, root",
        }
    }

    /// Whether the target runs on a virtual clock in-process: deterministic
    /// (never retried), no root needed.
    pub fn is_virtual(&self) -> bool {
        matches!(self, TargetName::Own | TargetName::Smoltcp)
    }

    /// A fresh target; `profile` is the one the own stack follows (other
    /// stacks behave as they do). A live target that cannot start says why.
    pub fn make(&self, profile: Profile) -> Result<Box<dyn Target>, String> {
        match self {
            TargetName::Own => Ok(Box::new(OwnTarget::new(profile))),
            TargetName::Smoltcp => Ok(Box::new(SmoltcpTarget::smoltcp())),
            TargetName::Linux => crate::run::linux::LinuxTarget::new()
                .map(|t| Box::new(t) as Box<dyn Target>)
                .map_err(|e| e.to_string()),
            TargetName::OwnTun => crate::run::own_tun::OwnTunTarget::new(profile)
                .map(|t| Box::new(t) as Box<dyn Target>)
                .map_err(|e| e.to_string()),
            TargetName::Exec(name) => crate::run::exec::ExecTarget::new(self.exec_spec(name)?)
                .map(|t| Box::new(t) as Box<dyn Target>)
                .map_err(|e| e.to_string()),
        }
    }

    /// Checks a name that only a targets file can resolve (after
    /// `--targets-file` is read); built-in targets always pass.
    pub fn check(&self) -> Result<(), String> {
        match self {
            TargetName::Exec(name) => self.exec_spec(name).map(|_| ()),
            _ => Ok(()),
        }
    }

    fn exec_spec(&self, name: &str) -> Result<crate::run::exec::ExecSpec, String> {
        crate::run::exec::lookup(name).unwrap_or_else(|| {
            Err(format!(
                "unknown target `{name}` (available: {}, exec:CMD, or a name from --targets-file)",
                TargetName::names()
            ))
        })
    }

    /// The names, comma-separated, for messages.
    pub fn names() -> String {
        let v: Vec<&str> = Self::BUILTIN.iter().map(|t| t.as_str()).collect();
        v.join(", ")
    }
}

impl fmt::Display for TargetName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for TargetName {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if let Some(t) = TargetName::BUILTIN.into_iter().find(|t| t.as_str() == s) {
            return Ok(t);
        }
        if let Some(spec) = crate::run::exec::ExecSpec::parse(s) {
            return spec.map(|_| TargetName::Exec(s.to_string()));
        }
        // A name a targets file may define: checked once the file is read
        // ([`TargetName::check`]).
        let plain = !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if plain {
            return Ok(TargetName::Exec(s.to_string()));
        }
        Err(format!(
            "unknown target `{s}` (available: {}, exec:CMD, or a name from --targets-file)",
            TargetName::names()
        ))
    }
}

/// clap's parser for [`TargetName`]: every built-in name is a possible
/// value (listed in `--help` with its description).
#[derive(Debug, Clone, Copy)]
pub struct TargetParser;

impl clap::builder::TypedValueParser for TargetParser {
    type Value = TargetName;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<TargetName, clap::Error> {
        let text = value.to_str().ok_or_else(|| {
            clap::Error::raw(
                clap::error::ErrorKind::InvalidUtf8,
                "target name is not UTF-8",
            )
        })?;
        text.parse().map_err(|e: String| {
            let what = arg.map(|a| a.to_string()).unwrap_or_default();
            clap::Error::raw(
                clap::error::ErrorKind::InvalidValue,
                format!("invalid value for {what}: {e}\n"),
            )
            .with_cmd(cmd)
        })
    }

    fn possible_values(
        &self,
    ) -> Option<Box<dyn Iterator<Item = clap::builder::PossibleValue> + '_>> {
        static BUILTIN: [TargetName; 4] = TargetName::BUILTIN;
        Some(Box::new(BUILTIN.iter().map(|t| {
            clap::builder::PossibleValue::new(t.as_str()).help(t.about())
        })))
    }
}

impl clap::builder::ValueParserFactory for TargetName {
    type Parser = TargetParser;

    fn value_parser() -> TargetParser {
        TargetParser
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_parses_back_and_unknown_names_list_the_known_ones() {
        for t in TargetName::BUILTIN {
            assert_eq!(t.as_str().parse::<TargetName>(), Ok(t.clone()));
        }
        // A plain name may come from a targets file: it parses, and the
        // check once the file is read (none here) lists the known ones.
        let t = "bsd".parse::<TargetName>();
        assert_eq!(t, Ok(TargetName::Exec("bsd".into())));
        let e = TargetName::Exec("bsd".into()).check().unwrap_err();
        assert!(
            e.contains("unknown target `bsd`") && e.contains("smoltcp"),
            "{e}"
        );
    }

    #[test]
    fn in_process_targets_start_without_privileges() {
        for t in TargetName::BUILTIN.iter().filter(|t| t.is_virtual()) {
            let made = t.make(Profile::Rfc9293).map(|m| m.name().to_string());
            assert_eq!(made.as_deref(), Ok(t.as_str()));
        }
    }
}
