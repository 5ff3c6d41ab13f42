//! packetdrill's command line, accepted by `tcpconform run` so that a
//! run_all-style invocation (`packetdrill --ip_version=ipv4 -D NAME=VALUE
//! ... script.pkt`) works with the same names and meanings.
//!
//! Flags that choose packetdrill's addresses (`--local_ip`, `--remote_ip`,
//! `--gateway_ip`, `--netmask_ip`) are accepted: live targets always use
//! documentation prefixes (RFC 5737, RFC 3849), and `--local_ip` /
//! `--remote_ip` name the addresses the script's fast-open cookies were
//! computed for ([`super::pdmap`]).

use super::runner::{Outcome, RunOptions, RunReport};
use crate::script::IpVersion;

/// packetdrill-compatible flags of `tcpconform run`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct PacketdrillArgs {
    /// packetdrill's verdicts: unexpected packets fail only when a later `>`
    /// line meets them, nothing is watched after the last line.
    #[arg(long)]
    pub packetdrill: bool,
    /// `-D NAME=VALUE` (packetdrill's `--define`): NAME in scripts reads as VALUE.
    #[arg(short = 'D', long = "define", value_name = "NAME=VALUE")]
    pub define: Vec<String>,
    /// packetdrill's `--ip_version` for scripts that do not set one
    /// (ipv4, ipv6).
    #[arg(long = "ip_version", value_name = "VERSION")]
    pub ip_version: Option<String>,
    /// The kernel's address the script was written for (its fast-open
    /// cookies); the harness's addresses are fixed.
    #[arg(long = "local_ip", value_name = "ADDR")]
    pub local_ip: Option<String>,
    /// The peer's address the script was written for (its fast-open
    /// cookies); the harness's addresses are fixed.
    #[arg(long = "remote_ip", value_name = "ADDR")]
    pub remote_ip: Option<String>,
    /// Accepted for packetdrill compatibility; the harness's addresses are fixed.
    #[arg(long = "gateway_ip", value_name = "ADDR")]
    pub gateway_ip: Option<String>,
    /// Accepted for packetdrill compatibility; the harness's addresses are fixed.
    #[arg(long = "netmask_ip", value_name = "ADDR")]
    pub netmask_ip: Option<String>,
    /// Accepted for packetdrill compatibility (the harness frees nothing early).
    #[arg(long = "send_omit_free")]
    pub send_omit_free: bool,
    /// packetdrill's `--mss`: injected TCP segments carry it as their GSO
    /// size (with --packetdrill on linux).
    #[arg(long = "mss", value_name = "BYTES", value_parser = clap::value_parser!(u16).range(1..))]
    pub mss: Option<u16>,
    /// packetdrill's `--strict_segments`: never merge outbound segments up
    /// to a line's length.
    #[arg(long = "strict_segments")]
    pub strict_segments: bool,
    /// packetdrill's `--tcp_ts_tick_usecs`: check outbound TSvals at this
    /// many µs per tick.
    #[arg(
        long = "tcp_ts_tick_usecs",
        value_name = "USECS",
        value_parser = clap::value_parser!(u32).range(0..=1_000_000)
    )]
    pub tcp_ts_tick_usecs: Option<u32>,
    /// packetdrill's `--tcp_ts_ecr_scaled`: map injected TSecrs that name
    /// no sent TSval by the connection's first TSval.
    #[arg(long = "tcp_ts_ecr_scaled")]
    pub tcp_ts_ecr_scaled: bool,
}

impl PacketdrillArgs {
    /// Adds the definitions and mode to `opts`; a definition without `=`
    /// is an error naming it.
    pub fn apply(&self, opts: &mut RunOptions) -> Result<(), String> {
        for d in &self.define {
            let Some((name, value)) = d.split_once('=') else {
                return Err(format!("-D {d}: expected NAME=VALUE"));
            };
            let ok = name
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !ok {
                return Err(format!("-D {d}: `{name}` is not a name"));
            }
            opts.defines.insert(name.to_string(), value.to_string());
        }
        for (flag, given, slot) in [
            ("local_ip", &self.local_ip, &mut opts.script_local_ip),
            ("remote_ip", &self.remote_ip, &mut opts.script_remote_ip),
        ] {
            if let Some(v) = given {
                let addr = v.split('/').next().and_then(|a| a.parse().ok());
                *slot = Some(addr.ok_or_else(|| format!("--{flag}={v}: not an IP address"))?);
            }
        }
        let f = &mut opts.pd_flags;
        if let Some(v) = self.mss {
            f.set("mss", Some(&v.to_string()))?;
        }
        if let Some(v) = self.tcp_ts_tick_usecs {
            f.set("tcp_ts_tick_usecs", Some(&v.to_string()))?;
        }
        if self.strict_segments {
            f.set("strict_segments", None)?;
        }
        if self.tcp_ts_ecr_scaled {
            f.set("tcp_ts_ecr_scaled", None)?;
        }
        opts.packetdrill |= self.packetdrill;
        if let Some(v) = &self.ip_version {
            opts.ip_version = Some(match v.as_str() {
                "ipv4" => IpVersion::V4,
                "ipv6" => IpVersion::V6,
                _ => return Err(format!("--ip_version={v}: expected ipv4 or ipv6")),
            });
        }
        Ok(())
    }
}

/// TAP version 13 for `reports`: `ok` for a pass (a flaky pass says so in
/// its diagnostic), `ok ... # SKIP` for not applicable, `not ok` for a
/// failure or error, each reason as a YAML block.
pub fn tap(reports: &[RunReport]) -> String {
    let mut out = format!("TAP version 13\n1..{}\n", reports.len());
    for (i, r) in reports.iter().enumerate() {
        let n = i + 1;
        let (status, skip, message) = match &r.outcome {
            Outcome::Passed if r.flaky() => (
                "ok",
                "",
                Some(format!("flaky: {}", r.earlier_failures.join("; "))),
            ),
            Outcome::Passed => ("ok", "", None),
            Outcome::NotApplicable(m) => ("ok", " # SKIP not applicable", Some(m.clone())),
            Outcome::Failed(f) => (
                "not ok",
                "",
                Some(format!("{}:{}:{}: {}", r.path, f.line, f.col, f.message)),
            ),
            Outcome::Error(m) => ("not ok", "", Some(format!("error: {m}"))),
        };
        out.push_str(&format!("{status} {n} - {} [{}]{skip}\n", r.path, r.target));
        if let Some(m) = message {
            out.push_str("  ---\n");
            out.push_str(&format!("  message: {}\n", yaml_string(&m)));
            if let Outcome::Failed(f) = &r.outcome {
                if let Some(e) = &f.expected {
                    out.push_str(&format!("  expected: {}\n", yaml_string(e)));
                }
                if let Some(a) = &f.actual {
                    out.push_str(&format!("  actual: {}\n", yaml_string(a)));
                }
            }
            out.push_str("  ...\n");
        }
    }
    out
}

/// A double-quoted YAML scalar.
fn yaml_string(s: &str) -> String {
    let mut q = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => q.push_str("\\\""),
            '\\' => q.push_str("\\\\"),
            '\n' => q.push_str("\\n"),
            '\t' => q.push_str("\\t"),
            c if c.is_control() => q.push_str(&format!("\\u{:04x}", c as u32)),
            c => q.push(c),
        }
    }
    q.push('"');
    q
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::trace::Trace;

    fn report(outcome: Outcome) -> RunReport {
        RunReport {
            outcome,
            ..RunReport::error("a.pkt", "linux", String::new())
        }
    }

    #[test]
    fn tap_lines_and_diagnostics() {
        let _ = Trace::default();
        let t = tap(&[
            report(Outcome::Passed),
            report(Outcome::NotApplicable("a.pkt:3:1: no \"sendto\"".into())),
            report(Outcome::Error("a.pkt:1:1: bad\nthing".into())),
        ]);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines[0], "TAP version 13");
        assert_eq!(lines[1], "1..3");
        assert_eq!(lines[2], "ok 1 - a.pkt [linux]");
        assert_eq!(lines[3], "ok 2 - a.pkt [linux] # SKIP not applicable");
        assert_eq!(lines[5], "  message: \"a.pkt:3:1: no \\\"sendto\\\"\"");
        assert_eq!(lines[7], "not ok 3 - a.pkt [linux]");
        assert_eq!(lines[9], "  message: \"error: a.pkt:1:1: bad\\nthing\"");
        assert_eq!(lines[10], "  ...");
    }
}
