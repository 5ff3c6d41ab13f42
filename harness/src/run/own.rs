//! Target `own`: the own stack (`tcp-stack`) in-process on a virtual clock.
//!
//! Time never sleeps: [`Target::advance`] jumps straight to the stack's next
//! timer (or to the deadline the runner asks for), so a script with
//! 1 s + 2 s + 4 s retransmission timeouts runs in microseconds of wall time
//! and every run is identical.
//!
//! Addresses follow packetdrill: the stack is [`LOCAL_ADDR`]:[`LOCAL_PORT`],
//! the scripted peer [`REMOTE_ADDR`]:[`REMOTE_PORT`] (with
//! `--ip_version=ipv6`, [`LOCAL_ADDR6`] and [`REMOTE_ADDR6`]). Script file
//! descriptors map onto stack handles: `socket()` makes a pending socket
//! (fds from 3 up, the lowest free one, as a kernel does), `listen` makes it
//! a listener, `accept` returns a new fd for an established connection and
//! `connect` makes an active OPEN.
//!
//! The stack's configuration is per endpoint, not per socket. The endpoint
//! is therefore created lazily, on the first `listen`, `connect` or
//! injected packet: `setsockopt` calls (SO_RCVBUF, SO_SNDBUF, TCP_NODELAY,
//! TCP_MAXSEG) and `sysctl` lines before that point configure it; later
//! socket options are reported as not applied, later sysctls (and sysctls
//! without a counterpart) make the script not applicable.

use super::adapter::{AdapterTarget, CallError, SockDefaults, SocketStatus, Stack};
use super::target::{
    Fd, How, Micros, OptValue, SockOpt, SysctlOutcome, TargetError, TargetTransition,
};
use crate::script::IpVersion;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use tcp_spec::Profile;
use tcp_stack::{Config, Endpoint, Error as StackError, Handle, Instant, Shutdown};

// A script's addresses are those of the kernel under test and the peer on
// `tun0` (crate::live), so a script runs unchanged on every target.
/// The stack's address (packetdrill's local address).
pub const LOCAL_ADDR: Ipv4Addr = crate::live::KERNEL_V4;
/// The scripted peer's address.
pub const REMOTE_ADDR: Ipv4Addr = crate::live::PEER_V4;
/// The stack's address in IPv6 scripts (RFC 3849 documentation prefix).
pub const LOCAL_ADDR6: Ipv6Addr = crate::live::KERNEL_V6;
/// The scripted peer's address in IPv6 scripts.
pub const REMOTE_ADDR6: Ipv6Addr = crate::live::PEER_V6;
/// The stack's port: `bind` and `connect` use it (packetdrill's 8080).
pub const LOCAL_PORT: u16 = 8080;
/// The scripted peer's port.
pub const REMOTE_PORT: u16 = 40000;
/// First file descriptor handed out (0–2 are stdio, as in a process).
pub const FIRST_FD: Fd = 3;

/// The descriptor a new socket gets: the lowest one not in use, as POSIX
/// requires of `socket` and `accept` (IEEE Std 1003.1, §2.14 "File
/// Descriptor Allocation"), counting from [`FIRST_FD`].
pub fn lowest_free_fd<V>(fds: &std::collections::BTreeMap<Fd, V>) -> Fd {
    let mut fd = FIRST_FD;
    while fds.contains_key(&fd) {
        fd += 1;
    }
    fd
}
/// The stack's and the scripted peer's socket addresses of a script, in
/// IPv6 or IPv4: the same on every target (live targets translate where
/// their wiring differs).
pub fn script_addresses(v6: bool) -> (SocketAddr, SocketAddr) {
    let (local, remote) = if v6 {
        (IpAddr::V6(LOCAL_ADDR6), IpAddr::V6(REMOTE_ADDR6))
    } else {
        (IpAddr::V4(LOCAL_ADDR), IpAddr::V4(REMOTE_ADDR))
    };
    (
        SocketAddr::new(local, LOCAL_PORT),
        SocketAddr::new(remote, REMOTE_PORT),
    )
}

/// Which IP versions a target can run a script in: `ipv4` and `ipv6`
/// (`ipv4-mapped-ipv6` is refused with the reason). Returns whether it is
/// IPv6.
pub fn ip_version_is_v6(v: IpVersion) -> Result<bool, TargetError> {
    match v {
        IpVersion::V4 => Ok(false),
        IpVersion::V6 => Ok(true),
        IpVersion::V4MappedV6 => Err(TargetError::NotApplicable(
            "--ip_version=ipv4-mapped-ipv6 is not supported (ipv4 and ipv6 are)".into(),
        )),
    }
}

/// The ISN secret (RFC 6528): fixed, so runs are reproducible.
const SECRET: [u8; 32] = *b"tcpconform own target isn secret";

/// The own stack as an adapter [`Stack`]: the endpoint is created on first
/// use with the configuration so far.
#[derive(Debug)]
pub struct OwnStack {
    config: Config,
    ep: Option<Endpoint>,
    transitions: Vec<TargetTransition>,
}

/// Target `own`: the own stack behind the generic adapter.
pub type OwnTarget = AdapterTarget<OwnStack>;

impl AdapterTarget<OwnStack> {
    /// A target following `profile`; nothing runs until the first call.
    pub fn new(profile: Profile) -> OwnTarget {
        AdapterTarget::from_stack(OwnStack::new(profile))
    }

    /// Changes the stack's configuration before anything runs (the timer
    /// probes set seeded bugs, the ISN secret and buffer sizes with it).
    pub fn with_config(mut self, f: impl FnOnce(&mut Config)) -> OwnTarget {
        f(&mut self.stack_mut().config);
        self
    }
}

impl OwnStack {
    /// The own stack following `profile`, with the fixed ISN secret.
    pub fn new(profile: Profile) -> OwnStack {
        let mut config = Config::new(vec![IpAddr::V4(LOCAL_ADDR), IpAddr::V6(LOCAL_ADDR6)]);
        config.profile = profile;
        config.secret = SECRET;
        config.log_transitions = true;
        // SACK off unless a script turns it on (`tcp_sack`): the suite's
        // SYNs are scripted without SACK-permitted.
        config.sack = false;
        OwnStack {
            config,
            ep: None,
            transitions: Vec::new(),
        }
    }

    /// The endpoint, created on first use with the configuration so far.
    fn ep(&mut self) -> Result<&mut Endpoint, CallError> {
        if self.ep.is_none() {
            let ep = Endpoint::new(self.config.clone())
                .map_err(|e| CallError::Setup(format!("own stack: {e}")))?;
            self.ep = Some(ep);
        }
        self.ep
            .as_mut()
            .ok_or_else(|| CallError::Setup("own stack: no endpoint".into()))
    }

    /// The socket options as the configuration has them.
    fn defaults(&self) -> SockDefaults {
        SockDefaults {
            recv_buf: self.config.recv_buf,
            send_buf: self.config.send_buf,
            nagle: self.config.nagle,
            mtu: usize::from(self.config.mtu),
        }
    }

    /// Whether the endpoint already exists (configuration is fixed).
    fn started(&self) -> bool {
        self.ep.is_some()
    }
}

fn at(now: Micros) -> Instant {
    Instant::from_micros(now)
}

fn errno(e: StackError) -> CallError {
    match e {
        StackError::WouldBlock => CallError::WouldBlock,
        e => CallError::Errno(e.errno_name()),
    }
}

impl Stack for OwnStack {
    type Handle = Handle;

    fn name(&self) -> &'static str {
        "own"
    }

    fn deliver(&mut self, now: Micros, packet: &[u8]) -> Result<(), String> {
        match self.ep() {
            Ok(ep) => {
                ep.handle_packet(at(now), packet);
                Ok(())
            }
            Err(CallError::Setup(e)) => Err(e),
            Err(e) => Err(format!("own stack: {e:?}")),
        }
    }

    /// Packets, and the transitions logged with them.
    fn transmit(&mut self, now: Micros) -> Option<Vec<u8>> {
        let ep = self.ep.as_mut()?;
        for t in ep.drain_transitions() {
            self.transitions.push(TargetTransition {
                at: t.at.as_micros(),
                conn: t.conn.map_or(0, |h| h.0),
                from: t.from,
                to: t.to,
                row: t.row,
            });
        }
        ep.poll_transmit(at(now))
    }

    fn next_timer(&self) -> Option<Micros> {
        self.ep
            .as_ref()
            .and_then(|ep| ep.poll_timeout())
            .map(|t| t.as_micros())
    }

    fn on_timer(&mut self, now: Micros) {
        if let Some(ep) = self.ep.as_mut() {
            ep.handle_timeout(at(now));
        }
    }

    fn listen(
        &mut self,
        now: Micros,
        local: SocketAddr,
        backlog: usize,
    ) -> Result<Handle, CallError> {
        self.ep()?
            .listen(at(now), None, local.port(), backlog)
            .map_err(errno)
    }

    fn accept(&mut self, _now: Micros, listener: Handle) -> Result<Option<Handle>, CallError> {
        Ok(self.ep()?.accept(listener).ok().map(|(c, _)| c))
    }

    fn connect(
        &mut self,
        now: Micros,
        local: SocketAddr,
        remote: SocketAddr,
    ) -> Result<Handle, CallError> {
        self.ep()?.connect(at(now), local, remote).map_err(errno)
    }

    fn send(&mut self, now: Micros, h: Handle, data: &[u8]) -> Result<usize, CallError> {
        self.ep()?.send(at(now), h, data).map_err(errno)
    }

    fn recv(&mut self, now: Micros, h: Handle, buf: &mut [u8]) -> Result<usize, CallError> {
        self.ep()?.recv(at(now), h, buf).map_err(errno)
    }

    fn shutdown(&mut self, now: Micros, h: Handle, how: How) -> Result<(), CallError> {
        let how = match how {
            How::Read => Shutdown::Read,
            How::Write => Shutdown::Write,
            How::Both => Shutdown::Both,
        };
        self.ep()?.shutdown(at(now), h, how).map_err(errno)
    }

    fn close(&mut self, now: Micros, h: Handle) -> Result<(), CallError> {
        self.ep()?.close(at(now), h).map_err(errno)
    }

    fn abort(&mut self, now: Micros, h: Handle) -> Result<(), CallError> {
        self.ep()?.abort(at(now), h).map_err(errno)
    }

    fn status(&mut self, h: Handle) -> Result<SocketStatus, &'static str> {
        let send_buf = self.config.send_buf;
        let ep = self.ep().map_err(|_| "EBADF")?;
        let s = ep.status(h).map_err(StackError::errno_name)?;
        Ok(SocketStatus {
            state: s.state,
            readable: s.readable,
            fin_received: s.fin_received,
            writable: s.send_queued < send_buf,
            error: s.error.is_some(),
        })
    }

    fn take_error(&mut self, h: Handle) -> Option<&'static str> {
        let ep = self.ep.as_mut()?;
        ep.take_error(h).ok().flatten().map(StackError::errno_name)
    }

    /// Applies a socket option to the endpoint configuration if the endpoint
    /// does not exist yet; returns a note when it cannot be honoured.
    fn set_option(&mut self, opt: SockOpt, value: OptValue) -> Option<String> {
        let OptValue::Int(_) = value else {
            return None;
        };
        if self.started() {
            return Some(format!(
                "{} not applied: the own stack configures it per endpoint, and the endpoint is already running",
                opt.name()
            ));
        }
        let mut d = self.defaults();
        let note = d.set(opt, value);
        let c = &mut self.config;
        (c.recv_buf, c.send_buf, c.nagle) = (d.recv_buf, d.send_buf, d.nagle);
        c.mtu = u16::try_from(d.mtu).unwrap_or(u16::MAX);
        note
    }

    fn get_option(&self, opt: SockOpt) -> OptValue {
        self.defaults().get(opt)
    }

    /// The Linux sysctls with a counterpart in the own stack's [`Config`],
    /// honoured before the endpoint starts:
    /// - `net.ipv4.tcp_retries2`: R2 for data and FIN (RFC 9293 §3.8.3);
    /// - `net.ipv4.tcp_syn_retries`: R2 for a SYN or SYN-ACK, as a count;
    /// - `net.ipv4.tcp_rto_min_us`, `net.ipv4.tcp_rto_max_ms`: the RTO bounds
    ///   (RFC 6298 §§2.4–2.5); the minimum also caps the delayed-ACK timer,
    ///   as on Linux;
    /// - `net.ipv4.tcp_window_scaling`: window scaling (RFC 7323) on or off;
    /// - `net.ipv4.tcp_rmem`/`tcp_wmem`: the default (middle) value is the
    ///   buffer size;
    /// - `net.ipv4.tcp_sack`: SACK (RFC 2018, RFC 6675) on (1) or off (0,
    ///   the target's default);
    /// - `net.ipv4.tcp_timestamps`: the stack offers no timestamps, so 0 is
    ///   applied as what it already does (even once running) and any other
    ///   value is not applicable.
    ///
    /// Anything else, a value out of range, or a knob after the endpoint
    /// started is not applicable, with the reason; the runner then reports
    /// the script as not applicable on `own`.
    fn sysctl(&mut self, name: &str, value: &str) -> SysctlOutcome {
        let key = name.replace('/', ".");
        let v = value.trim();
        let not_applicable = SysctlOutcome::NotApplicable;
        if key == "net.ipv4.tcp_sack" && v == "0" && !self.config.sack {
            return SysctlOutcome::Applied; // what it already does
        }
        if key == "net.ipv4.tcp_timestamps" {
            let feature = "timestamps (RFC 7323 section 3)";
            return if v == "0" {
                SysctlOutcome::Applied
            } else {
                not_applicable(format!(
                    "the own stack does not implement {feature}; only 0 (off) applies"
                ))
            };
        }
        if self.started() {
            return not_applicable("the own stack's endpoint is already running".into());
        }
        let int = |lo: u64, hi: u64| v.parse::<u64>().ok().filter(|x| (lo..=hi).contains(x));
        let c = &mut self.config;
        let applied = match key.as_str() {
            "net.ipv4.tcp_retries2" => int(0, u64::from(u32::MAX))
                .and_then(|x| u32::try_from(x).ok())
                .map(|x| c.max_retries = x),
            "net.ipv4.tcp_syn_retries" => int(1, 127)
                .and_then(|x| u32::try_from(x).ok())
                .map(|x| c.syn_retries = Some(x)),
            "net.ipv4.tcp_rto_min_us" => int(1, i32::MAX as u64).map(|x| c.rto_min_us = Some(x)),
            "net.ipv4.tcp_rto_max_ms" => int(1000, 120_000).map(|x| c.rto_max_us = Some(x * 1000)),
            "net.ipv4.tcp_window_scaling" => int(0, 1).map(|x| c.window_scaling = x == 1),
            "net.ipv4.tcp_sack" => int(0, 1).map(|x| c.sack = x == 1),
            "net.ipv4.tcp_rmem" | "net.ipv4.tcp_wmem" => {
                let parts: Vec<&str> = v.split_whitespace().collect();
                let size = parts
                    .get(1)
                    .or(parts.first())
                    .and_then(|x| x.parse::<usize>().ok())
                    .filter(|x| *x > 0);
                let buf = if key.ends_with("rmem") {
                    &mut c.recv_buf
                } else {
                    &mut c.send_buf
                };
                size.map(|x| *buf = x)
            }
            _ => {
                return not_applicable(format!(
                    "no counterpart in the own stack's configuration (profile {})",
                    c.profile
                ))
            }
        };
        match applied {
            Some(()) => SysctlOutcome::Applied,
            None => not_applicable(format!("bad value `{value}`")),
        }
    }

    fn take_transitions(&mut self) -> Vec<TargetTransition> {
        std::mem::take(&mut self.transitions)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::target::Target;

    fn applied(t: &mut OwnTarget, name: &str, value: &str) {
        assert_eq!(
            t.sysctl(name, value),
            SysctlOutcome::Applied,
            "{name}={value}"
        );
    }

    fn not_applicable(t: &mut OwnTarget, name: &str, value: &str, why: &str) {
        match t.sysctl(name, value) {
            SysctlOutcome::NotApplicable(w) => assert!(w.contains(why), "{name}={value}: {w}"),
            o => panic!("{name}={value}: {o:?}"),
        }
    }

    /// Every knob with a counterpart lands in the endpoint's configuration
    /// (dotted or slashed names); missing features apply only when off.
    #[test]
    fn sysctls_with_a_counterpart_configure_the_stack() {
        let mut t = OwnTarget::new(Profile::Rfc9293);
        applied(&mut t, "net.ipv4.tcp_retries2", "3");
        applied(&mut t, "net/ipv4/tcp_syn_retries", "4");
        applied(&mut t, "net.ipv4.tcp_rto_min_us", "5000");
        applied(&mut t, "net.ipv4.tcp_rto_max_ms", "30000");
        applied(&mut t, "net.ipv4.tcp_window_scaling", "0");
        applied(&mut t, "net.ipv4.tcp_rmem", "4096 131072 6291456");
        applied(&mut t, "net.ipv4.tcp_wmem", "8192");
        applied(&mut t, "net.ipv4.tcp_sack", "0");
        assert!(!t.stack().config.sack);
        applied(&mut t, "net.ipv4.tcp_sack", "1");
        applied(&mut t, "net.ipv4.tcp_timestamps", "0");
        let c = &t.stack().config;
        assert!(c.sack);
        assert_eq!(c.max_retries, 3);
        assert_eq!(c.syn_retries, Some(4));
        assert_eq!((c.rto_min_us, c.rto_max_us), (Some(5000), Some(30_000_000)));
        assert!(!c.window_scaling);
        assert_eq!((c.recv_buf, c.send_buf), (131072, 8192));
    }

    #[test]
    fn sysctls_without_a_counterpart_are_not_applicable_with_the_reason() {
        let mut t = OwnTarget::new(Profile::Rfc9293);
        not_applicable(&mut t, "net.ipv4.tcp_sack", "2", "bad value");
        not_applicable(&mut t, "net.ipv4.tcp_timestamps", "1", "timestamps");
        not_applicable(&mut t, "net.ipv4.tcp_ecn", "1", "no counterpart");
        not_applicable(&mut t, "net.ipv4.tcp_syn_retries", "0", "bad value");
        not_applicable(&mut t, "net.ipv4.tcp_rto_max_ms", "500", "bad value");
        not_applicable(&mut t, "net.ipv4.tcp_window_scaling", "2", "bad value");
        assert!(t.stack().config.window_scaling);
        assert_eq!(t.stack().config.syn_retries, None);
        // Once the endpoint runs its configuration is fixed; what it
        // already does still applies.
        t.stack_mut().ep().expect("endpoint");
        not_applicable(&mut t, "net.ipv4.tcp_retries2", "3", "already running");
        applied(&mut t, "net.ipv4.tcp_timestamps", "0");
    }
}
