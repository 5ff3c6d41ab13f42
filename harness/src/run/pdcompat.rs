//! packetdrill's command line, accepted by `tcpconform run` so that a
//! run_all-style invocation (`packetdrill --ip_version=ipv4 -D NAME=VALUE
//! ... script.pkt`) works with the same names and meanings.
//!
//! Flags that choose the harness's own addresses (`--local_ip`,
//! `--remote_ip`, `--gateway_ip`, `--netmask_ip`) are accepted and reported:
//! live targets always use documentation prefixes (RFC 5737, RFC 3849).

use super::runner::RunOptions;
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
    /// Accepted for packetdrill compatibility; the harness's addresses are fixed.
    #[arg(long = "local_ip", value_name = "ADDR")]
    pub local_ip: Option<String>,
    /// Accepted for packetdrill compatibility; the harness's addresses are fixed.
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
