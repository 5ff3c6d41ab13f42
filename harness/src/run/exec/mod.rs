//! Target `exec:CMD`: a foreign TCP stack in its own process, behind a TUN
//! device in a namespace the harness creates (docs/architecture.md, "Scripts
//! and the runner" — live targets; the protocol: docs/exec-protocol.md).
//!
//! The wiring is `own-tun`'s: the scripted peer speaks through `tun0`, the
//! kernel of the namespace forwards to `tun1`, and the stack under test owns
//! `tun1` — here a foreign process, started inside the namespace with the
//! device as descriptor 3 and its addresses in `TCPCONFORM_*` environment
//! variables ([`ExecTarget::environment`]). The script, the trace and the
//! runner see the stack as 192.0.2.1 (2001:db8::1); the wire carries
//! 198.51.100.1 (2001:db8:1::1), translated at `tun0` exactly as for
//! `own-tun` ([`super::own_tun`], "Addresses").
//!
//! - **Socket calls** go to the process as one JSON line each on its stdin,
//!   and its stdout answers each with one line ([`protocol`]). A call the
//!   process cannot make is *not applicable* (the run ends so, with its
//!   reason). Packets-only scripts send no call at all.
//! - **Sysctl lines** that are local to a network namespace (the `linux`
//!   target's rule) are handed to the process, which applies them (the
//!   kernel shim writes `/proc/sys` in its namespace) or answers not
//!   applicable; host-wide ones are refused with a warning, as on `linux`.
//! - **Time** is real, as on `linux`: µs since the process said hello (its
//!   start-up does not count). The process is started lazily, at the
//!   runner's first step, because the script's IP version is in its
//!   environment.
//! - **Failures of the process** — it exits or is killed, gives no answer
//!   within the per-call timeout ([`DEFAULT_TIMEOUT`], `--exec-timeout`),
//!   prints something that is not an answer — make the target unusable; the
//!   runner reports them at the script line being played, with the request
//!   and the end of the process's stderr. Dropping the target kills the
//!   process group and removes the namespace and its TUN devices.

pub mod process;
pub mod protocol;
pub mod registry;

use super::linux::BASE_SLACK;
use super::own::{ip_version_is_v6, script_addresses, LOCAL_PORT, REMOTE_PORT};
use super::own_tun::{to_script, to_wire, Field};
use super::peer_tap::{blocked_after, linger_secs, PeerTap, ScriptClock};
use super::target::{CallOutcome, Micros, SocketCall, SysctlOutcome, Target, TargetError};
use crate::live::{LiveError, LiveNet, OWN_V4, OWN_V6, PEER_V4, PEER_V6, TUN_OWN};
use crate::script::IpVersion;
use process::Process;
use protocol::Answer;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

pub use registry::{configure, lookup, profile_of, ExecSpec};

/// How long the process may take to answer one request (and to say hello).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// A foreign process behind `tun1` as a [`Target`].
#[derive(Debug)]
pub struct ExecTarget {
    spec: ExecSpec,
    name: &'static str,
    v6: bool,
    /// Time zero: fixed when the process has said hello.
    clock: ScriptClock,
    tap: PeerTap,
    process: Option<Process>,
    /// What the process calls itself (its hello line).
    hello: Option<String>,
    /// Set once the process failed: every later step reports it.
    broken: Option<String>,
    /// The last call would block (or was a `poll` that found nothing).
    blocked: bool,
    /// The longest `SO_LINGER` the script set, in seconds (a lingering
    /// close may take that long to answer).
    max_linger: u64,
    next_id: u64,
    /// Last field: dropped after the process and the reader.
    net: Arc<LiveNet>,
}

impl ExecTarget {
    /// Creates the namespace, the TUN devices and the `tun0` reader; the
    /// process starts at the runner's first step. Fails with one sentence
    /// when this process cannot run live targets.
    pub fn new(spec: ExecSpec) -> Result<ExecTarget, TargetError> {
        crate::live::available().map_err(|e| TargetError::Setup(e.to_string()))?;
        let net = Arc::new(LiveNet::setup().map_err(|e| TargetError::Setup(e.to_string()))?);
        net.drain().map_err(|e| TargetError::Setup(e.to_string()))?;
        let clock = ScriptClock::default();
        let tap = PeerTap::start(&net, clock.clone(), |p| to_script(p, Field::Src))?;
        Ok(ExecTarget {
            name: registry::intern(spec.label()),
            spec,
            v6: false,
            clock,
            tap,
            process: None,
            hello: None,
            broken: None,
            blocked: false,
            max_linger: 0,
            next_id: 0,
            net,
        })
    }

    /// The namespace the process runs in.
    pub fn netns_name(&self) -> &str {
        self.net.netns().name()
    }

    /// What the process called itself in its hello line, once started.
    pub fn hello(&self) -> Option<&str> {
        self.hello.as_deref()
    }

    /// The process id, once started.
    pub fn pid(&self) -> Option<u32> {
        self.process.as_ref().map(Process::pid)
    }

    /// The environment the process gets besides `PATH`
    /// (docs/exec-protocol.md, "Environment").
    pub fn environment(&self) -> Vec<(String, String)> {
        let (addr, peer) = if self.v6 {
            (OWN_V6.to_string(), PEER_V6.to_string())
        } else {
            (OWN_V4.to_string(), PEER_V4.to_string())
        };
        [
            ("TCPCONFORM_PROTOCOL", protocol::VERSION.to_string()),
            ("TCPCONFORM_NETNS", self.netns_name().to_string()),
            ("TCPCONFORM_TUN", TUN_OWN.to_string()),
            ("TCPCONFORM_TUN_FD", process::TUN_FD.to_string()),
            ("TCPCONFORM_MTU", "1500".to_string()),
            (
                "TCPCONFORM_IP_VERSION",
                if self.v6 { "6" } else { "4" }.to_string(),
            ),
            ("TCPCONFORM_ADDR", addr),
            ("TCPCONFORM_PORT", LOCAL_PORT.to_string()),
            ("TCPCONFORM_PEER_ADDR", peer),
            ("TCPCONFORM_PEER_PORT", REMOTE_PORT.to_string()),
            (
                "TCPCONFORM_TIMEOUT_MS",
                self.spec.timeout.as_millis().to_string(),
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }

    /// Marks the target unusable with what the process did.
    fn fail(&mut self, what: &str, request: Option<&str>) -> TargetError {
        let mut msg = format!("exec target `{}`: the process", self.spec.cmd);
        if let Some(p) = &self.process {
            msg.push_str(&format!(" (pid {})", p.pid()));
        }
        msg.push(' ');
        msg.push_str(what);
        if let Some(r) = request {
            msg.push_str(&format!("; request: {r}"));
        }
        let tail = self.process.as_ref().map(Process::stderr_tail);
        if let Some(t) = tail.filter(|t| !t.is_empty()) {
            let t: String = t
                .chars()
                .rev()
                .take(400)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            msg.push_str(&format!("; its stderr ends: {t:?}"));
        }
        self.broken = Some(msg.clone());
        TargetError::Io(msg)
    }

    /// Starts the process on first use and checks it is still well.
    fn ready(&mut self) -> Result<(), TargetError> {
        if let Some(why) = &self.broken {
            return Err(TargetError::Io(why.clone()));
        }
        if let Some(p) = self.process.as_mut() {
            return match p.check() {
                Ok(()) => Ok(()),
                Err(why) => Err(self.fail(&why, None)),
            };
        }
        let ns = std::fs::File::open(self.net.netns().path()).map_err(|e| {
            TargetError::Setup(format!(
                "opening {}: {e}",
                self.net.netns().path().display()
            ))
        })?;
        let env = self.environment();
        let p = Process::spawn(&self.spec.cmd, &env, &ns, self.net.tun1().raw_fd())
            .map_err(|why| self.fail(&why, None))?;
        self.process = Some(p);
        let timeout = self.spec.timeout;
        let hello = match self.process.as_mut().map(|p| p.recv(timeout)) {
            Some(Ok(line)) => protocol::parse_hello(&line),
            Some(Err(why)) => Err(format!("{why} before its hello line")),
            None => Err("did not start".into()),
        };
        match hello {
            Ok(h) => {
                self.hello = Some(h);
                self.clock.origin();
                Ok(())
            }
            Err(why) => Err(self.fail(&why, None)),
        }
    }

    /// Sends one request line and reads and checks its answer.
    fn ask(&mut self, line: String, call: Option<&SocketCall>) -> Result<Answer, TargetError> {
        self.ready()?;
        let timeout = self.spec.timeout + Duration::from_secs(self.max_linger);
        let id = self.next_id;
        let Some(p) = self.process.as_mut() else {
            return Err(self.fail("is not running", Some(&line)));
        };
        let answer = p
            .send(&line)
            .and_then(|()| p.recv(timeout))
            .and_then(|a| protocol::parse_answer(&a, id, call));
        answer.map_err(|why| self.fail(&why, Some(&line)))
    }
}

impl Drop for ExecTarget {
    fn drop(&mut self) {
        // The process first (it holds tun1), then the reader; `net` last.
        self.process = None;
        self.tap.stop();
    }
}

impl Target for ExecTarget {
    fn name(&self) -> &'static str {
        self.name
    }

    fn is_virtual(&self) -> bool {
        false
    }

    /// 0 until the process has said hello, then real µs since.
    fn now(&self) -> Micros {
        if self.clock.started() {
            self.clock.now()
        } else {
            0
        }
    }

    /// The script's addresses (192.0.2.1 / 2001:db8::1 and the peer's);
    /// the wire carries the process's address, see the module docs.
    fn addresses(&self) -> (SocketAddr, SocketAddr) {
        script_addresses(self.v6)
    }

    fn set_ip_version(&mut self, v: IpVersion) -> Result<(), TargetError> {
        let v6 = ip_version_is_v6(v)?;
        if self.process.is_some() && v6 != self.v6 {
            return Err(TargetError::NotApplicable(
                "the IP version cannot change once the process runs".into(),
            ));
        }
        self.v6 = v6;
        Ok(())
    }

    fn advance(&mut self, until: Micros) -> Result<Micros, TargetError> {
        self.ready()?;
        self.tap.wait(until, self.blocked)
    }

    fn inject(&mut self, packet: &[u8]) -> Result<(), TargetError> {
        self.ready()?;
        let mut p = packet.to_vec();
        to_wire(&mut p, Field::Dst);
        self.net
            .tun0()
            .send(&p)
            .map_err(|e| TargetError::Io(e.to_string()))?;
        // What the stack answered during the write is stamped now, as on
        // `linux` (see `PeerTap::sync`).
        self.tap.sync()
    }

    fn take_outbound(&mut self) -> Vec<(Micros, Vec<u8>)> {
        self.tap.take_outbound()
    }

    fn call(&mut self, call: &SocketCall) -> Result<CallOutcome, TargetError> {
        let call = &*call.portable();
        if let Some(why) = call.kernel_only() {
            return Err(TargetError::NotApplicable(format!(
                "the line protocol has {why}"
            )));
        }
        if let Some(secs) = linger_secs(call) {
            self.max_linger = self.max_linger.max(secs);
        }
        self.next_id += 1;
        let line = protocol::request(self.next_id, call);
        let outcome = match self.ask(line, Some(call))? {
            Answer::Done(r) => CallOutcome::Done(r),
            Answer::WouldBlock => CallOutcome::WouldBlock,
            Answer::NotApplicable(why) => return Err(TargetError::NotApplicable(why)),
        };
        // What the call made the stack send is stamped before the next
        // event, as on `linux`.
        self.tap.sync()?;
        self.blocked = blocked_after(&outcome, call);
        Ok(outcome)
    }

    /// Namespace-local sysctls go to the process (applied, or not
    /// applicable with its reason); host-wide ones are refused, as on
    /// `linux`. A process that fails here is reported at the next step.
    fn sysctl(&mut self, name: &str, value: &str) -> SysctlOutcome {
        match crate::live::check_sysctl(name, value) {
            Ok(()) => {}
            Err(e @ LiveError::SysctlNotNamespaced { .. }) => {
                return SysctlOutcome::Refused(e.to_string())
            }
            Err(e) => return SysctlOutcome::NotApplicable(e.to_string()),
        }
        self.next_id += 1;
        let line = protocol::sysctl_request(self.next_id, name, value);
        match self.ask(line, None) {
            Ok(Answer::Done(r)) => match r.ret {
                Ok(_) => SysctlOutcome::Applied,
                Err(e) => SysctlOutcome::NotApplicable(format!(
                    "sysctl {name}={value}: the process answered -1 {e}"
                )),
            },
            Ok(Answer::NotApplicable(why)) => SysctlOutcome::NotApplicable(format!(
                "sysctl {name}={value} not applicable on {}: {why}",
                self.name
            )),
            Ok(Answer::WouldBlock) => {
                let e = self.fail("answered a sysctl with would_block", None);
                SysctlOutcome::Refused(e.to_string())
            }
            Err(e) => SysctlOutcome::Refused(e.to_string()),
        }
    }

    /// The `linux` target's allowance (`gap / 8` plus [`BASE_SLACK`]): the
    /// process may be the kernel itself, and a userspace stack's timers
    /// run on its own polling loop.
    fn timing_slack(&self, gap: Duration) -> Duration {
        BASE_SLACK + gap / 8
    }
}
