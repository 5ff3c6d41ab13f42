//! Namespace-local sysctls (docs/architecture.md, "Facts about the live Linux target":
//! scripts that need other values set them with backtick `sysctl` lines,
//! applied in the namespace only).
//!
//! `/proc/sys/net/...` resolves against the network namespace of the thread
//! that opens it, so writing from a thread inside the namespace changes only
//! that namespace. Keys that are global to the kernel are refused up front:
//! only an allowlist of per-namespace families is accepted, minus known global
//! keys that live under the same prefixes.

use std::io::{ErrorKind, Read, Write};
use std::path::PathBuf;

use super::error::{LiveError, Result};

/// Families of per-namespace keys.
const ALLOWED_PREFIXES: [&str; 8] = [
    "net.ipv4.tcp_",
    "net.ipv4.conf.",
    "net.ipv4.icmp_",
    "net.ipv4.ip_",
    "net.ipv4.udp_",
    "net.ipv4.neigh.",
    "net.ipv6.conf.",
    "net.ipv6.neigh.",
];

/// Individual per-namespace keys outside the families above.
const ALLOWED_KEYS: [&str; 12] = [
    "net.ipv4.ping_group_range",
    "net.ipv4.fwmark_reflect",
    "net.ipv6.fwmark_reflect",
    "net.ipv6.icmp.ratelimit",
    "net.ipv6.icmp.echo_ignore_all",
    "net.core.somaxconn",
    "net.core.optmem_max",
    "net.core.rmem_default",
    "net.core.rmem_max",
    "net.core.wmem_default",
    "net.core.wmem_max",
    "net.core.txrehash",
];

/// Keys under an allowed prefix that are nevertheless global (or whose write
/// changes global state).
const GLOBAL_KEYS: [&str; 5] = [
    "net.ipv4.tcp_mem",
    "net.ipv4.udp_mem",
    "net.ipv4.tcp_allowed_congestion_control",
    "net.ipv4.tcp_available_congestion_control",
    "net.ipv4.tcp_available_ulp",
];

/// Longest accepted value (the longest real net.* values are port ranges and
/// congestion-control names).
const MAX_VALUE_LEN: usize = 256;

/// Validates a sysctl name (dotted `net.ipv4.tcp_sack` or slashed
/// `net/ipv4/conf/eth0.1/rp_filter`) and returns its `/proc/sys` path.
pub(crate) fn check_name(name: &str) -> Result<PathBuf> {
    let invalid = |reason| LiveError::SysctlInvalid {
        name: name.to_string(),
        value: String::new(),
        reason,
    };
    let components: Vec<&str> = if name.contains('/') {
        name.split('/').collect()
    } else {
        name.split('.').collect()
    };
    if name.is_empty() || name.len() > 200 {
        return Err(invalid("the name is empty or too long"));
    }
    for c in &components {
        if c.is_empty() || *c == "." || *c == ".." {
            return Err(invalid("the name has an empty or relative component"));
        }
        if !c
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.')
        {
            return Err(invalid(
                "the name has characters other than letters, digits, `_`, `-` and `.`",
            ));
        }
    }
    let dotted = components.join(".");
    let allowed = (ALLOWED_PREFIXES.iter().any(|p| dotted.starts_with(p))
        || ALLOWED_KEYS.contains(&dotted.as_str())
        || dotted.starts_with("net.core.xfrm_"))
        && !GLOBAL_KEYS.contains(&dotted.as_str());
    if !allowed {
        return Err(LiveError::SysctlNotNamespaced {
            name: name.to_string(),
        });
    }
    let mut path = PathBuf::from("/proc/sys");
    path.extend(&components);
    Ok(path)
}

/// Validates a name and a value; returns the `/proc/sys` path.
pub(crate) fn check(name: &str, value: &str) -> Result<PathBuf> {
    let path = check_name(name)?;
    let invalid = |reason| LiveError::SysctlInvalid {
        name: name.to_string(),
        value: value.to_string(),
        reason,
    };
    if value.len() > MAX_VALUE_LEN {
        return Err(invalid("the value is longer than 256 bytes"));
    }
    if !value
        .bytes()
        .all(|b| b == b'\t' || (b' '..=b'~').contains(&b))
    {
        return Err(invalid("the value has non-printable characters"));
    }
    Ok(path)
}

/// Writes `value` to `path`; must run on a thread inside the namespace.
pub(crate) fn write(path: &std::path::Path, name: &str, value: &str) -> Result<()> {
    let mut file = match std::fs::OpenOptions::new().write(true).open(path) {
        Ok(f) => f,
        Err(e) => return Err(open_for_write_error(name, e)),
    };
    file.write_all(value.as_bytes())
        .map_err(|e| match e.raw_os_error() {
            Some(libc::EINVAL) | Some(libc::ERANGE) | Some(libc::ENOENT) => {
                LiveError::SysctlInvalid {
                    name: name.to_string(),
                    value: value.to_string(),
                    reason: "the kernel rejected the value",
                }
            }
            _ => LiveError::io(format!("setting sysctl {name}={value}"), e),
        })
}

/// Why opening sysctl `name` for writing failed. This runs as root (the
/// namespace exists), so EACCES/EPERM is not a missing privilege: the
/// kernel makes the key read-only inside a namespace because it is
/// host-wide (`net.core.rmem_max` and `wmem_max` since Linux 6.x).
fn open_for_write_error(name: &str, e: std::io::Error) -> LiveError {
    let name = name.to_string();
    match e.raw_os_error() {
        Some(libc::ENOENT) => LiveError::SysctlUnknown { name },
        Some(libc::EACCES) | Some(libc::EPERM) => LiveError::SysctlHostGlobal { name },
        _ => LiveError::io(format!("opening sysctl {name}"), e),
    }
}

/// Reads `path`; must run on a thread inside the namespace.
pub(crate) fn read(path: &std::path::Path, name: &str) -> Result<String> {
    let mut file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == ErrorKind::NotFound => {
            return Err(LiveError::SysctlUnknown {
                name: name.to_string(),
            })
        }
        Err(e) => return Err(LiveError::io(format!("opening sysctl {name}"), e)),
    };
    let mut s = String::new();
    file.read_to_string(&mut s)
        .map_err(|e| LiveError::io(format!("reading sysctl {name}"), e))?;
    Ok(s.trim_end().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_namespace_names_map_to_proc_sys() {
        assert_eq!(
            check("net.ipv4.tcp_rto_min_us", "1000000").ok(),
            Some(PathBuf::from("/proc/sys/net/ipv4/tcp_rto_min_us"))
        );
        assert_eq!(
            check_name("net.ipv4.ip_forward").ok(),
            Some(PathBuf::from("/proc/sys/net/ipv4/ip_forward"))
        );
        assert_eq!(
            check_name("net/ipv6/conf/tun0.5/accept_ra").ok(),
            Some(PathBuf::from("/proc/sys/net/ipv6/conf/tun0.5/accept_ra"))
        );
        assert!(check("net.ipv4.ip_local_port_range", "32768\t60999").is_ok());
    }

    #[test]
    fn global_or_foreign_names_are_refused() {
        for name in [
            "kernel.panic",
            "vm.swappiness",
            "net.ipv4.tcp_mem",
            "net.ipv4.tcp_allowed_congestion_control",
            "net.core.netdev_max_backlog",
            "fs.file-max",
        ] {
            assert!(
                matches!(check_name(name), Err(LiveError::SysctlNotNamespaced { .. })),
                "{name}"
            );
        }
    }

    /// As root in a namespace, EACCES on a key the kernel shows read-only
    /// there says the key is host-wide and the script not applicable —
    /// never "permission denied … run as root".
    #[test]
    fn a_read_only_key_is_host_global_not_a_privilege_problem() {
        let e = open_for_write_error(
            "net.core.rmem_max",
            std::io::Error::from_raw_os_error(libc::EACCES),
        );
        let msg = e.to_string();
        assert!(matches!(e, LiveError::SysctlHostGlobal { .. }), "{msg}");
        assert!(
            msg.contains("not per-namespace") && msg.contains("not applicable"),
            "{msg}"
        );
        assert!(!msg.contains("run as root"), "{msg}");
        let e = open_for_write_error(
            "net.ipv4.tcp_x",
            std::io::Error::from_raw_os_error(libc::ENOENT),
        );
        assert!(matches!(e, LiveError::SysctlUnknown { .. }));
    }

    #[test]
    fn malformed_names_and_values_are_refused() {
        for name in [
            "",
            "net..ipv4",
            "net/ipv4/../../kernel/panic",
            "net.ipv4.tcp_x y",
            "net.ipv4.tcp_\u{e9}",
        ] {
            assert!(
                matches!(check_name(name), Err(LiveError::SysctlInvalid { .. })),
                "{name:?}"
            );
        }
        assert!(matches!(
            check("net.ipv4.tcp_sack", "1\n0"),
            Err(LiveError::SysctlInvalid { .. })
        ));
        assert!(matches!(
            check("net.ipv4.tcp_sack", &"1".repeat(300)),
            Err(LiveError::SysctlInvalid { .. })
        ));
    }
}
