//! Typed errors of the live layer (docs/architecture.md, "Bad input": a clear error,
//! never a panic, never a hang, never a leaked namespace or TUN device).
//!
//! Every message is one sentence that says what went wrong and, where the
//! cause is the environment (no root, no `/dev/net/tun`, no `ip`), how to fix it.

use std::io;
use std::time::Duration;

/// Everything that can go wrong while creating, configuring, using or removing
/// a live network namespace.
#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    /// The process lacks the privileges to create namespaces and TUN devices.
    #[error(
        "live targets need root (or the capabilities CAP_NET_ADMIN and CAP_SYS_ADMIN): \
         run tcpconform as root, e.g. with sudo, or grant those capabilities"
    )]
    NotPrivileged,

    /// `/dev/net/tun` does not exist.
    #[error(
        "/dev/net/tun is missing: load the tun module with `modprobe tun`, or pass the \
         device into the container (e.g. `--device /dev/net/tun`)"
    )]
    NoTunDevice,

    /// `/dev/net/tun` exists but cannot be opened.
    #[error(
        "/dev/net/tun cannot be opened ({0}): run as root or make the device readable \
         and writable for this user"
    )]
    TunUnusable(#[source] io::Error),

    /// The iproute2 `ip` binary was not found.
    #[error(
        "the iproute2 `ip` command was not found in PATH, /usr/sbin, /sbin, /usr/bin or /bin: \
         install iproute2 (e.g. `apt-get install iproute2`)"
    )]
    NoIpTool,

    /// The kernel refused an operation with EPERM/EACCES.
    #[error(
        "permission denied while {action}: run as root or grant CAP_NET_ADMIN and CAP_SYS_ADMIN"
    )]
    PermissionDenied {
        /// What the harness was doing.
        action: String,
    },

    /// An `ip` invocation exited unsuccessfully.
    #[error("`ip {args}` failed with {status}: {stderr}")]
    IpCommand {
        /// The arguments (and batch input, if any).
        args: String,
        /// Exit status as text.
        status: String,
        /// The first line of the command's standard error.
        stderr: String,
    },

    /// A bounded wait expired.
    #[error("{action} did not finish within {timeout:?}, so the harness gave up")]
    Timeout {
        /// What the harness was waiting for.
        action: String,
        /// The bound that expired.
        timeout: Duration,
    },

    /// A thread that should be inside the namespace is not (setns had no effect).
    #[error("a worker thread is not inside namespace {name} after setns, so the harness refuses to continue")]
    NotInNamespace {
        /// The namespace name.
        name: String,
    },

    /// The sysctl name is well formed but is not network-namespace local.
    #[error(
        "sysctl `{name}` is not local to a network namespace, so the harness refuses to set it \
         (allowed: net.ipv4.tcp_*, net.ipv4.ip_forward, net.ipv4.conf.*, net.ipv6.conf.*, \
         and a few other per-namespace net.* keys)"
    )]
    SysctlNotNamespaced {
        /// The rejected name.
        name: String,
    },

    /// The kernel shows the key inside the namespace but refuses to set it
    /// there (read-only outside the initial namespace, e.g.
    /// `net.core.rmem_max`): its value is the host's.
    #[error(
        "sysctl `{name}` is not per-namespace: the kernel keeps one host-wide value and \
         refuses to set it inside a network namespace, so the script is not applicable here"
    )]
    SysctlHostGlobal {
        /// The name as given.
        name: String,
    },

    /// The sysctl name or value is malformed.
    #[error("sysctl `{name}` = `{value}` is malformed: {reason}")]
    SysctlInvalid {
        /// The name as given.
        name: String,
        /// The value as given.
        value: String,
        /// Why it was rejected.
        reason: &'static str,
    },

    /// The sysctl is allowed but does not exist in this kernel/namespace.
    #[error("sysctl `{name}` does not exist inside the namespace on this kernel")]
    SysctlUnknown {
        /// The name as given.
        name: String,
    },

    /// A packet handed to a TUN device names an address outside the
    /// documentation ranges the harness is allowed to use.
    #[error(
        "refusing to inject a packet from {src} to {dst}: live traffic may only use \
         192.0.2.0/24, 198.51.100.0/24 and 2001:db8::/32"
    )]
    ForbiddenAddress {
        /// Source address of the packet.
        src: String,
        /// Destination address of the packet.
        dst: String,
    },

    /// Any other operating-system error, with what the harness was doing.
    #[error("{action} failed: {source}")]
    Io {
        /// What the harness was doing.
        action: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
}

impl LiveError {
    /// Wraps an `io::Error`, turning EPERM/EACCES into [`LiveError::PermissionDenied`].
    pub(crate) fn io(action: impl Into<String>, source: io::Error) -> Self {
        let action = action.into();
        match source.raw_os_error() {
            Some(libc::EPERM) | Some(libc::EACCES) => LiveError::PermissionDenied { action },
            _ => LiveError::Io { action, source },
        }
    }
}

/// Result alias of the live layer.
pub type Result<T, E = LiveError> = std::result::Result<T, E>;
