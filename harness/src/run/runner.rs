//! The runner: plays a script against a [`Target`] with packetdrill's
//! semantics and records a [`Trace`].
//!
//! Semantics (packetdrill is the reference):
//! - **Times.** `0.1` is absolute (from the start of the script), `+0.1` is
//!   relative to the previous event's *script* time (not to when it really
//!   happened, so lateness does not accumulate in the script). `*` matches
//!   any time, `a~b` a range; after `*` and ranges the actual time becomes
//!   the event's script time. `+0...0.3 call` starts the call at `+0` and
//!   expects it to return at `0.3` after the previous event (a relative end
//!   is anchored like the start); later events count from the start.
//! - **Tolerance.** packetdrill's rule: an event may be off by the larger of
//!   `--tolerance_usecs` (default [`DEFAULT_TOLERANCE_USECS`], packetdrill's
//!   value) and `--tolerance_percent` (default 0) of the scripted gap since
//!   the previous event; the command line may override either. It widens
//!   the window of every outbound packet and of every call's return. A
//!   packet that misses its window by less than one more tolerance is a
//!   [`Mismatch::Late`] or near [`Mismatch::Early`]: a timing miss the
//!   classifier reports as inconclusive, never as a divergence.
//! - **Sequence numbers.** A SYN's sequence number is absolute and defines
//!   that side's ISN: the peer's from the script's first inbound SYN, the
//!   stack's from the first SYN or SYN-ACK it sends. All other sequence and
//!   acknowledgment numbers (and SACK blocks) are relative to the ISN of the
//!   side that owns them; before an ISN is known it counts as 0.
//! - **Outbound packets** are compared on flags, sequence number, payload
//!   length, acknowledgment number, and — when the script gives them — the
//!   window and the options (exactly, in order; `<...>` skips the options;
//!   timestamp values TSval are not compared).
//! - **Calls** block on a blocking socket: the call stays pending while
//!   later events run and completes when the target can complete it; it
//!   must return within the tolerance of its scripted end time.
//! - **Strict mode** (default for `own`): every packet the target sends
//!   must be matched by a `>` line. Packets still unmatched when a later
//!   `<`, call or shell line runs fail the script, and so do packets sent
//!   within [`DRAIN_USECS`] after the last line. Retransmissions on the
//!   RFC 6298 timer (at least 1 s away) therefore need not be scripted
//!   after the end, but delayed ACKs (at most 500 ms, RFC 9293 3.8.6.3) and
//!   immediate answers must be. packetdrill merges captured segments until
//!   the expected length is reached, so it misses an extra pure ACK before a
//!   data segment; strict mode does not. Without strict mode unexpected
//!   packets are warnings.
//! - **Shell lines.** `sysctl name=value` is handed to the target, which
//!   applies it, refuses it (a host-wide knob on `linux`: a warning, the
//!   run goes on) or reports it not applicable: the target has no
//!   counterpart, so the run ends there as [`Outcome::NotApplicable`] —
//!   neither a pass nor a failure. Other commands are not applicable to an
//!   in-process target (a warning).

mod icmp_lines;
mod pd_flags;

pub use pd_flags::PdFlags;

use super::code::{self, Fragment};
use super::pdmap::{has_cookie, PdMap};
use super::target::{
    CallOutcome, CallReturn, Fd, Micros, ShellOutcome, SocketCall, SysctlOutcome, Target,
    TargetError,
};
use super::trace::{fmt_time, Trace, TraceKind};
use super::wire::{self, Outgoing, WireSegment};
use super::{msg, syscall};
use crate::script::{
    CodeBlock, Direction, Ecn, Event, EventKind, Opt, PacketSpec, Script, ShellCommand,
    SyscallSpec, TcpOpt, TimePoint, TimeSpec,
};
use std::collections::VecDeque;
use std::fmt;
use std::time::Duration;

/// packetdrill's default `--tolerance_usecs`.
pub const DEFAULT_TOLERANCE_USECS: u64 = 4000;
/// How long after the last line strict mode keeps watching for packets
/// (exclusive: a retransmission exactly 1 s later is not counted).
pub const DRAIN_USECS: u64 = 1_000_000;
/// How long past a line's window packetdrill's sniffer waits for each
/// further segment of an aggregate (`tolerance_secs` of its
/// `sniff_outbound_live_packet`).
pub const PD_SNIFF_USECS: u64 = 2_000_000;
/// How far a `*` outbound line looks ahead for its packet.
pub const WILDCARD_HORIZON_USECS: u64 = 600_000_000;
/// Steps the clock may take without moving before the run is abandoned.
const MAX_STEPS_AT_ONE_INSTANT: u32 = 10_000;
/// The window of injected packets that do not say `win N`.
pub const DEFAULT_INBOUND_WINDOW: u16 = 65535;

/// How to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunOptions {
    /// Fail on any outbound packet the script does not expect.
    pub strict: bool,
    /// Overrides the script's `--tolerance_usecs`.
    pub tolerance_usecs: Option<u64>,
    /// Overrides the script's `--tolerance_percent`.
    pub tolerance_percent: Option<u64>,
    /// packetdrill's `-D name=value` definitions, substituted for words.
    pub defines: crate::script::Defines,
    /// packetdrill's verdicts (`run --packetdrill`): an outbound packet no
    /// line expects fails only when a later `>` line meets it, and nothing
    /// is watched after the last line (no [`DRAIN_USECS`] wait).
    pub packetdrill: bool,
    /// packetdrill's `--ip_version` for a script that sets none.
    pub ip_version: Option<crate::script::IpVersion>,
    /// packetdrill's `--local_ip` and `--remote_ip`: the addresses the
    /// script's fast-open cookies were computed for (a script's own header
    /// options win); see [`super::pdmap`].
    pub script_local_ip: Option<std::net::IpAddr>,
    /// See [`RunOptions::script_local_ip`].
    pub script_remote_ip: Option<std::net::IpAddr>,
    /// packetdrill's `--mss`, `--strict_segments`, `--tcp_ts_tick_usecs`
    /// and `--tcp_ts_ecr_scaled` from the command line (a script's own
    /// header options apply where these are not given).
    pub pd_flags: PdFlags,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            strict: true,
            tolerance_usecs: None,
            tolerance_percent: None,
            defines: Default::default(),
            packetdrill: false,
            ip_version: None,
            script_local_ip: None,
            script_remote_ip: None,
            pd_flags: PdFlags::default(),
        }
    }
}

/// The target did something other than what the script expects.
///
/// The classifier (`crate::verdict`) reads only the typed fields
/// ([`Failure::mismatch`], [`Failure::window`], the packets and the call);
/// `message`, `expected` and `actual` are their rendering for people.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Failure {
    /// 1-based line of the script event.
    pub line: usize,
    /// 1-based column.
    pub col: usize,
    /// What went wrong.
    pub message: String,
    /// The expectation, in script syntax, when there is one.
    pub expected: Option<String>,
    /// What the target did, in script syntax.
    pub actual: Option<String>,
    /// What kind of departure this is.
    pub mismatch: Mismatch,
    /// When the event was due, for timed events.
    pub window: Option<Window>,
    /// The scripted packet (numbers relative to the ISNs).
    pub expected_packet: Option<PacketSpec>,
    /// The packet the target sent instead, rendered like the script.
    pub actual_packet: Option<PacketSpec>,
    /// The call that failed, when one did.
    pub call: Option<CallInfo>,
}

/// A call in a [`Failure`]: which, and the errno it failed with.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CallInfo {
    /// The call's name (`connect`, `write`, ...).
    pub name: String,
    /// The errno name of a `-1` return; `None` when it succeeded or has
    /// not returned.
    pub errno: Option<String>,
}

/// The kind of a [`Failure`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Mismatch {
    /// No packet by the end of the window (nor within one more tolerance).
    NotSent,
    /// A `%{ }%` block raised (an assertion on `tcpi_*` values failed).
    Code,
    /// The expected packet came after its window, by less than one more
    /// tolerance (a timing miss: the classifier calls it inconclusive).
    Late {
        /// When it was sent.
        at: Micros,
    },
    /// A packet came before the window opened.
    Early {
        /// When it was sent.
        at: Micros,
    },
    /// The packet in the window differs in these fields.
    Differs {
        /// When it was sent.
        at: Micros,
        /// The fields that differ.
        fields: Vec<Field>,
    },
    /// A packet no line expects (strict mode).
    Unexpected {
        /// When it was sent.
        at: Micros,
    },
    /// The target sent bytes that do not decode as TCP.
    Undecodable,
    /// A call returned outside its window.
    CallTime {
        /// When it returned.
        at: Micros,
    },
    /// A call returned another result (`want`, `got` as script text).
    CallResult {
        /// The scripted result.
        want: String,
        /// The result.
        got: String,
    },
    /// A call had not returned when it had to.
    CallBlocked,
}

/// A header field of an outbound packet that can differ from the script.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub enum Field {
    /// Control bits other than PSH.
    Flags,
    /// Only PSH differs.
    Psh,
    /// The sequence number.
    Seq,
    /// The payload length.
    Len,
    /// The acknowledgment number (or the ACK bit).
    Ack,
    /// The window field.
    Win,
    /// The urgent pointer.
    Urg,
    /// The TCP options.
    Options,
    /// The ICMP type or code of an `icmp` line.
    Icmp,
}

/// The time window of a timed event: the script time, the tolerance the
/// rule of [`RunOptions::tolerance_for`] gave it, and the bounds used
/// (`hi` includes any lateness a live target is allowed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Window {
    /// When the script puts the event.
    pub script: Micros,
    /// The earliest acceptable time.
    pub lo: Micros,
    /// The latest acceptable time.
    pub hi: Micros,
    /// The tolerance applied to this event.
    pub tolerance: Micros,
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Every expectation held.
    Passed,
    /// An expectation did not hold.
    Failed(Box<Failure>),
    /// The script cannot be run: malformed, or using something unsupported.
    /// The text is `path:line:col: message`.
    Error(String),
    /// The script asks for a setting the target has no counterpart for (a
    /// `sysctl` it cannot apply), so its expectations say nothing about
    /// this target: not a pass and not a failure. The text is
    /// `path:line:col: sysctl name=value not applicable on target: reason`.
    NotApplicable(String),
}

/// The result of running one script on one target.
#[derive(Debug, Clone)]
pub struct RunReport {
    /// The script's path as given.
    pub path: String,
    /// The target's name.
    pub target: &'static str,
    /// Passed, failed, error or not applicable.
    pub outcome: Outcome,
    /// Things not applied or not checked.
    pub warnings: Vec<String>,
    /// Everything that happened.
    pub trace: Trace,
    /// The target's clock at the end (virtual time for `own`).
    pub end_time: Micros,
    /// Wall-clock time the run took.
    pub wall: Duration,
    /// On a live target, the failures of earlier attempts of this script
    /// (`line N: message`); a pass after any of them is *flaky*.
    pub earlier_failures: Vec<String>,
    /// The error (an [`Outcome::Error`]) came from the environment: I/O
    /// with a live target or a foreign process failed mid-script. The run
    /// then exits 3, not 2.
    pub environment: bool,
}

impl RunReport {
    /// A run that could not start: the script does not parse or read.
    pub fn error(path: &str, target: &'static str, message: String) -> RunReport {
        RunReport {
            path: path.to_string(),
            target,
            outcome: Outcome::Error(message),
            warnings: Vec::new(),
            trace: Trace::default(),
            end_time: 0,
            wall: Duration::ZERO,
            earlier_failures: Vec::new(),
            environment: false,
        }
    }

    /// Passed, but only after failing on an earlier attempt.
    pub fn flaky(&self) -> bool {
        self.passed() && !self.earlier_failures.is_empty()
    }

    /// Whether the script passed.
    pub fn passed(&self) -> bool {
        self.outcome == Outcome::Passed
    }

    /// Whether the script does not apply to the target (see
    /// [`Outcome::NotApplicable`]).
    pub fn not_applicable(&self) -> bool {
        matches!(self.outcome, Outcome::NotApplicable(_))
    }

    /// The failure or error in full: `path:line:col: message`, expected and
    /// actual, and the ladder of what happened up to that point. Empty when
    /// the script passed.
    pub fn details(&self) -> String {
        match &self.outcome {
            Outcome::Passed => String::new(),
            Outcome::Error(e) => format!("{e}\n"),
            Outcome::NotApplicable(e) => format!("{e}\n"),
            Outcome::Failed(f) => {
                let mut s = format!("{}:{}:{}: {}\n", self.path, f.line, f.col, f.message);
                if let Some(e) = &f.expected {
                    s.push_str(&format!("  expected: {e}\n"));
                }
                if let Some(a) = &f.actual {
                    s.push_str(&format!("  actual:   {a}\n"));
                }
                s.push_str("trace so far:\n");
                s.push_str(&self.trace.ladder());
                s
            }
        }
    }

    /// A machine-readable summary.
    pub fn to_json(&self) -> serde_json::Value {
        let (outcome, message) = match &self.outcome {
            Outcome::Passed => ("passed", serde_json::Value::Null),
            Outcome::Failed(f) => (
                "failed",
                serde_json::json!({
                    "line": f.line, "col": f.col, "message": f.message,
                    "expected": f.expected, "actual": f.actual,
                }),
            ),
            Outcome::Error(e) => ("error", serde_json::Value::String(e.clone())),
            Outcome::NotApplicable(e) => ("not_applicable", serde_json::Value::String(e.clone())),
        };
        serde_json::json!({
            "path": self.path,
            "target": self.target,
            "outcome": outcome,
            "flaky": self.flaky(),
            "earlier_failures": self.earlier_failures,
            "failure": message,
            "warnings": self.warnings,
            "rows": self.trace.rows(),
            "end_time_us": self.end_time,
            "wall_us": u64::try_from(self.wall.as_micros()).unwrap_or(u64::MAX),
        })
    }
}

/// Why the run stopped early.
enum Stop {
    Fail(Box<Failure>),
    Error {
        line: usize,
        col: usize,
        message: String,
    },
    /// The target's environment broke (I/O with a live target or a
    /// foreign process failed): a run-time error, not the script's fault.
    Broken {
        line: usize,
        col: usize,
        message: String,
    },
    /// A sysctl the target has no counterpart for.
    NotApplicable {
        line: usize,
        col: usize,
        message: String,
    },
}

impl Stop {
    /// Locates an error the target raised without a line (while time
    /// moved or a packet went in) at the event being played.
    fn at(self, line: usize, col: usize) -> Stop {
        match self {
            Stop::Error {
                line: 0,
                col: 0,
                message,
            } => Stop::Error { line, col, message },
            Stop::Broken {
                line: 0,
                col: 0,
                message,
            } => Stop::Broken { line, col, message },
            other => other,
        }
    }
}

impl Stop {
    /// A target's error at a line (0:0 when the runner locates it later
    /// with [`Stop::at`]): failed I/O with a live target is [`Stop::Broken`],
    /// anything else an error of the script's run.
    fn target(e: &TargetError, line: usize, col: usize, message: String) -> Stop {
        match e {
            TargetError::Io(_) => Stop::Broken { line, col, message },
            _ => Stop::Error { line, col, message },
        }
    }

    /// A target's answer to a set-up the script asked for at `line:col`
    /// (its IP version, packetdrill's device): not applicable with the
    /// reason, or [`Stop::target`].
    fn setup(e: TargetError, name: &str, line: usize, col: usize) -> Stop {
        match e {
            TargetError::NotApplicable(why) => Stop::NotApplicable {
                line,
                col,
                message: format!("not applicable on {name}: {why}"),
            },
            e => Stop::target(&e, line, col, format!("{name} target: {e}")),
        }
    }
}

impl From<TargetError> for Stop {
    fn from(e: TargetError) -> Self {
        Stop::target(&e, 0, 0, e.to_string())
    }
}

/// The script time an outbound line leaves behind: when the packet was
/// seen for a `*` or ranged time, else the line's own time.
fn matched_time(e: &Event, seen: Micros, start: Micros) -> Micros {
    match e.time {
        TimeSpec::Any | TimeSpec::Range { .. } => seen,
        _ => start,
    }
}

/// A call that had not returned when it had to.
fn blocked(line: usize, col: usize, message: impl Into<String>) -> Stop {
    Stop::Fail(Box::new(Failure {
        line,
        col,
        message: message.into(),
        expected: None,
        actual: None,
        mismatch: Mismatch::CallBlocked,
        window: None,
        expected_packet: None,
        actual_packet: None,
        call: None,
    }))
}

/// A call waiting for the target.
struct Pending {
    line: usize,
    col: usize,
    spec: SyscallSpec,
    call: SocketCall,
    /// Earliest and latest acceptable return.
    lo: Micros,
    hi: Micros,
    /// The window as the failure reports it.
    window: Window,
    /// For `poll` with a timeout: when it returns 0.
    poll_deadline: Option<Micros>,
}

/// An outbound packet not yet matched.
struct Sent {
    at: Micros,
    seg: Result<WireSegment, String>,
    /// The segment as script syntax (ISN-relative), when it decodes.
    spec: Option<PacketSpec>,
    text: String,
    /// `(type, code)` when the packet is ICMP (see [`icmp_lines`]).
    icmp: Option<(u8, u8)>,
}

struct Runner<'a> {
    target: &'a mut dyn Target,
    strict: bool,
    /// [`RunOptions::packetdrill`].
    packetdrill: bool,
    /// The absolute tolerance (µs).
    tol: u64,
    /// The relative tolerance (% of the scripted gap).
    tol_percent: u64,
    trace: Trace,
    warnings: Vec<String>,
    queue: VecDeque<Sent>,
    stack_isn: Option<u32>,
    peer_isn: Option<u32>,
    peer_nxt: u32,
    pending: Option<Pending>,
    last_time: Micros,
    /// How late the previous event really happened after its script time
    /// (real clocks only; see [`Runner::late_room`]).
    lag: Micros,
    /// The script's directory: the working directory of shell commands.
    script_dir: std::path::PathBuf,
    /// The script's path, for `%{ }%` error messages.
    path: String,
    /// The socket under test: the last one `socket` or `accept` returned
    /// (packetdrill's), read by `%{ }%` blocks.
    sut: Option<Fd>,
    /// `%{ }%` blocks with the values taken when they ran.
    code: Vec<Fragment>,
    /// Script fd → target fd, from `socket`/`accept` returns (packetdrill's
    /// mapping: the script's number names whatever the target returned).
    fds: std::collections::BTreeMap<Fd, Fd>,
    /// Timestamps (RFC 7323 3): script TSval → the TSval the target really
    /// sent on that line, so an injected TSecr echoes a live value.
    ts_vals: std::collections::HashMap<u32, u32>,
    /// Under `--packetdrill`: the stack's port, learned from its latest
    /// active SYN (packetdrill maps each new connection's port and ISN).
    stack_port: Option<u16>,
    /// Under `--packetdrill`: the script's ISN and fast-open cookies.
    pd: PdMap,
    /// The script has `> icmp` lines: ICMP the target sends is queued
    /// for them (else it only goes to the trace).
    watch_icmp: bool,
    /// packetdrill's segment and timestamp flags in force.
    flags: PdFlags,
    /// The first outbound TSval of the connection under test: (the stack's
    /// ISN, the script's TSval, the live TSval), packetdrill's baseline.
    first_ts: Option<(u32, u32, u32)>,
}

/// Parses and runs a script text. Parse errors are [`Outcome::Error`].
pub fn run_text(path: &str, text: &str, target: &mut dyn Target, opts: &RunOptions) -> RunReport {
    match crate::script::parse_with_defines(path, text, &opts.defines) {
        Ok(script) => run_script(path, &script, target, opts),
        Err(e) => RunReport::error(path, target.name(), e.to_string()),
    }
}

/// Runs a parsed script on `target`. Never panics on any script.
pub fn run_script(
    path: &str,
    script: &Script,
    target: &mut dyn Target,
    opts: &RunOptions,
) -> RunReport {
    let started = std::time::Instant::now();
    let name = target.name();
    let tol = opts
        .tolerance_usecs
        .or(script.tolerance_usecs())
        .unwrap_or(DEFAULT_TOLERANCE_USECS);
    let tol_percent = opts
        .tolerance_percent
        .or(script.tolerance_percent())
        .unwrap_or(0);
    let mut r = Runner {
        target,
        strict: opts.strict,
        packetdrill: opts.packetdrill,
        tol,
        tol_percent,
        trace: Trace::default(),
        warnings: Vec::new(),
        queue: VecDeque::new(),
        stack_isn: None,
        peer_isn: None,
        peer_nxt: 0,
        pending: None,
        last_time: 0,
        lag: 0,
        script_dir: match std::path::Path::new(path).parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => std::path::PathBuf::from("."),
        },
        path: path.to_string(),
        sut: None,
        code: Vec::new(),
        fds: Default::default(),
        ts_vals: Default::default(),
        stack_port: None,
        pd: PdMap::new(opts),
        watch_icmp: icmp_lines::expects_icmp(script),
        flags: opts.pd_flags,
        first_ts: None,
    };
    let result = r.run(script, opts);
    let environment = matches!(result, Err(Stop::Broken { .. }));
    let outcome = match result {
        Ok(()) => Outcome::Passed,
        Err(Stop::Fail(f)) => Outcome::Failed(f),
        Err(Stop::Error { line, col, message } | Stop::Broken { line, col, message }) => {
            Outcome::Error(format!("{path}:{line}:{col}: {message}"))
        }
        Err(Stop::NotApplicable { line, col, message }) => {
            Outcome::NotApplicable(format!("{path}:{line}:{col}: {message}"))
        }
    };
    RunReport {
        path: path.to_string(),
        target: name,
        outcome,
        warnings: r.warnings,
        end_time: r.target.now(),
        trace: r.trace,
        wall: started.elapsed(),
        earlier_failures: Vec::new(),
        environment,
    }
}

impl Runner<'_> {
    /// Runs the script in IP version `v` (asked at `line:col`): a version
    /// the target lacks makes the script not applicable there.
    fn set_ip_version(
        &mut self,
        v: crate::script::IpVersion,
        line: usize,
        col: usize,
    ) -> Result<(), Stop> {
        let name = self.target.name();
        self.target
            .set_ip_version(v)
            .map_err(|e| Stop::setup(e, name, line, col))
    }

    fn run(&mut self, script: &Script, opts: &RunOptions) -> Result<(), Stop> {
        crate::script::check_timeline(script).map_err(|(line, col, message)| Stop::Error {
            line,
            col,
            message,
        })?;
        if let (Some(v), None) = (opts.ip_version, script.ip_version()) {
            self.set_ip_version(v, 1, 1)?;
        }
        for o in &script.options {
            match &o.opt {
                Opt::ToleranceUsecs(_) | Opt::TolerancePercent(_) => {}
                Opt::IpVersion(v) => {
                    self.set_ip_version(*v, o.line, o.col)?;
                }
                Opt::Other { name, value } if self.pd.header_option(name, value.as_deref()) => {}
                Opt::Other { name, value } if PdFlags::is_flag(name) => {
                    let mut given = PdFlags::default();
                    given
                        .set(name, value.as_deref())
                        .map_err(|message| Stop::Error {
                            line: o.line,
                            col: o.col,
                            message,
                        })?;
                    self.flags = self.flags.or_script(given);
                }
                // Before the clock starts (see the init command below).
                Opt::Other { .. } => self.warn_at(
                    true,
                    format!("line {}: option `{}` is ignored", o.line, o.opt),
                ),
            }
        }
        self.device(script)?;
        // packetdrill's init command: backtick lines without a time before
        // the first event run before the script's clock starts, so the
        // time they take (sourcing sysctl files, seconds) does not count.
        let init = script
            .events
            .iter()
            .take_while(|e| {
                e.time == TimeSpec::Unspecified && matches!(e.kind, EventKind::Shell(_))
            })
            .count();
        for e in &script.events[..init] {
            if let EventKind::Shell(cmd) = &e.kind {
                self.shell(e, cmd, true).map_err(|s| s.at(e.line, e.col))?;
            }
        }
        for e in &script.events[init..] {
            self.event(e).map_err(|s| s.at(e.line, e.col))?;
        }
        let (line, col) = script.events.last().map_or((0, 0), |e| (e.line, e.col));
        self.finish(script).map_err(|s| s.at(line, col))
    }

    fn warn(&mut self, w: String) {
        self.warn_at(false, w);
    }

    fn abs(&self, p: TimePoint) -> Micros {
        if p.relative {
            self.last_time.saturating_add(p.usecs)
        } else {
            p.usecs
        }
    }

    /// packetdrill's tolerance for an event scripted at `t`: the larger of
    /// the absolute tolerance and the relative share of the scripted gap
    /// since the previous event.
    fn tolerance_for(&self, t: Micros) -> Micros {
        let gap = t.saturating_sub(self.last_time);
        self.tol.max(gap.saturating_mul(self.tol_percent) / 100)
    }

    fn event(&mut self, e: &Event) -> Result<(), Stop> {
        let script_t = match e.time {
            TimeSpec::At(p) => self.abs(p),
            TimeSpec::Range { end: p, .. } => self.abs(p),
            TimeSpec::Blocking { start, end } if start.relative || end.relative => {
                self.last_time.saturating_add(end.usecs)
            }
            TimeSpec::Blocking { end, .. } => end.usecs,
            TimeSpec::Unspecified | TimeSpec::Any => self.last_time,
        };
        let tol = self.tolerance_for(script_t);
        // (start, lo, hi) of the event: when it happens or may happen.
        let (start, lo, hi) = match e.time {
            TimeSpec::Unspecified => (self.last_time, self.last_time, self.last_time),
            TimeSpec::At(p) => {
                let t = self.abs(p);
                (t, t.saturating_sub(tol), t.saturating_add(tol))
            }
            TimeSpec::Any => {
                let now = self.target.now();
                (now, now, now.saturating_add(WILDCARD_HORIZON_USECS))
            }
            TimeSpec::Range { start, end } => {
                let (a, b) = (self.abs(start), self.abs(end));
                if b < a {
                    return Err(Stop::Error {
                        line: e.line,
                        col: e.col,
                        message: format!("time range {} ends before it starts", e.time),
                    });
                }
                (a, a.saturating_sub(tol), b.saturating_add(tol))
            }
            TimeSpec::Blocking { start, end } => {
                let a = self.abs(start);
                // packetdrill anchors a relative start's end like the start.
                let b = if start.relative || end.relative {
                    self.last_time.saturating_add(end.usecs)
                } else {
                    end.usecs
                };
                if b < a {
                    return Err(Stop::Error {
                        line: e.line,
                        col: e.col,
                        message: format!("blocking call ends ({}) before it starts", e.time),
                    });
                }
                (a, b.saturating_sub(tol), b.saturating_add(tol))
            }
        };
        if matches!(e.time, TimeSpec::Blocking { .. }) && !matches!(e.kind, EventKind::Syscall(_)) {
            return Err(Stop::Error {
                line: e.line,
                col: e.col,
                message: "only system calls can have a `...` blocking time".into(),
            });
        }
        let hi = match e.time {
            TimeSpec::Any => hi,
            _ => hi.saturating_add(self.late_room(hi.saturating_sub(tol))),
        };
        let window = Window {
            script: script_t,
            lo,
            hi,
            tolerance: tol,
        };
        let result = match &e.kind {
            EventKind::Shell(cmd) => {
                self.last_time = start;
                self.shell(e, cmd, false)
            }
            EventKind::Code(c) => {
                self.last_time = start;
                self.code_event(e, c)
            }
            EventKind::Icmp(i) if i.dir == Direction::Inbound => {
                definite_time(e)?;
                self.last_time = start;
                self.icmp_in(e, i, start)
            }
            EventKind::Icmp(i) => {
                let at = self.icmp_out(e, i, window)?;
                self.last_time = matched_time(e, at, start);
                Ok(())
            }
            EventKind::Packet(p) if p.dir == Direction::Inbound => {
                definite_time(e)?;
                self.last_time = start;
                self.inbound(e, p, start)
            }
            EventKind::Packet(p) => {
                let at = self.outbound(e, p, window)?;
                self.last_time = matched_time(e, at, start);
                Ok(())
            }
            EventKind::Syscall(s) => {
                self.last_time = start;
                let w = match e.time {
                    TimeSpec::Unspecified => Window {
                        lo: start,
                        hi: start.saturating_add(tol),
                        ..window
                    },
                    _ => window,
                };
                self.syscall(e, s, start, w)
            }
        };
        self.lag = self.target.now().saturating_sub(self.last_time);
        result
    }

    /// Real clocks only: room above an event's window ending at script time
    /// `end` — the target's [`Target::timing_slack`] for the scripted gap
    /// since the previous event, plus how late that event really happened
    /// (a late timer delays everything after it, while relative times stay
    /// anchored on script times). Never widens the window downwards.
    fn late_room(&self, end: Micros) -> Micros {
        if self.target.is_virtual() {
            return 0;
        }
        let gap = Duration::from_micros(end.saturating_sub(self.last_time));
        let slack = self.target.timing_slack(gap).as_micros();
        u64::try_from(slack)
            .unwrap_or(u64::MAX)
            .saturating_add(self.lag)
    }

    // ----- time --------------------------------------------------------------

    /// Moves the target's clock to `until`, stopping early when
    /// `stop_on_packet` and a packet is waiting. Pending calls are retried
    /// after every step and fail when their window closes.
    fn advance(&mut self, until: Micros, stop_on_packet: bool) -> Result<(), Stop> {
        let mut stalled = 0u32;
        let mut last = None;
        loop {
            let now = self.target.now();
            if now >= until || (stop_on_packet && !self.queue.is_empty()) {
                return Ok(());
            }
            // A timer that fires without ever clearing would hold time still.
            if last == Some(now) {
                stalled += 1;
                if stalled > MAX_STEPS_AT_ONE_INSTANT {
                    return Err(Stop::Error {
                        line: 0,
                        col: 0,
                        message: format!(
                            "target {} makes no progress at {} (a timer that never clears?)",
                            self.target.name(),
                            fmt_time(now)
                        ),
                    });
                }
            } else {
                stalled = 0;
                last = Some(now);
            }
            let mut step = until;
            if let Some(p) = &self.pending {
                step = step.min(p.hi.max(now + 1));
                if let Some(d) = p.poll_deadline {
                    if d > now {
                        step = step.min(d);
                    }
                }
            }
            self.target.advance(step)?;
            self.pump();
            self.retry_pending()?;
        }
    }

    /// Moves the clock to `until` before an event that fails on any packet
    /// already queued (strict mode, [`Runner::check_unexpected`]): with no
    /// call pending, nothing between the first such packet and `until` can
    /// change that failure, so the run stops waiting at the packet. The
    /// verdict, line and packet are those of waiting out the gap; a live
    /// run that fails this way ends sooner (`diff`'s masked re-runs on
    /// `linux` most of all).
    fn advance_watching(&mut self, until: Micros) -> Result<(), Stop> {
        let fails_on_packet = self.strict && !self.packetdrill && self.pending.is_none();
        self.advance(until, fails_on_packet)
    }

    /// Advances until a packet of the connection under test is queued or
    /// `until`. Under `--packetdrill`, packets of other connections are
    /// dropped, as packetdrill's sniffer ignores what is not the socket
    /// under test's (they stay in the trace).
    fn wait_packet(&mut self, until: Micros) -> Result<(), Stop> {
        loop {
            self.advance(until, true)?;
            if self.packetdrill {
                let pd = &self.pd;
                while let Some(Ok(s)) = self.queue.front().map(|q| &q.seg) {
                    if !pd.foreign(s.src_port, s.dst_port, s.flags.syn && !s.flags.ack) {
                        break;
                    }
                    self.queue.pop_front();
                }
            }
            if !self.queue.is_empty() || self.target.now() >= until {
                return Ok(());
            }
        }
    }

    /// Moves outbound packets and transitions from the target to the trace.
    fn pump(&mut self) {
        for t in self.target.take_transitions() {
            self.trace.push(
                t.at,
                TraceKind::Transition {
                    conn: t.conn,
                    from: t.from,
                    to: t.to,
                    row: t.row,
                },
            );
        }
        for (at, bytes) in self.target.take_outbound() {
            let icmp = super::icmp::decode(&bytes);
            if icmp.is_some() && !self.watch_icmp {
                self.icmp_to_trace(at, bytes);
                continue;
            }
            let seg = wire::decode(&bytes);
            if let Ok(s) = &seg {
                let new_conn = self.packetdrill
                    && s.flags.syn
                    && self.stack_isn.is_some_and(|isn| isn != s.seq);
                if new_conn {
                    // A new connection: packetdrill numbers it afresh (a
                    // passive one keeps the peer ISN its SYN set).
                    self.stack_isn = None;
                    if !s.flags.ack {
                        self.peer_isn = None;
                    }
                }
                if s.flags.syn && self.stack_isn.is_none() {
                    self.stack_isn = Some(s.seq);
                }
                if self.packetdrill && s.flags.syn && !s.flags.ack {
                    self.stack_port = Some(s.src_port);
                    self.pd.new_active(s.src_port, s.dst_port);
                }
            }
            let spec = seg
                .as_ref()
                .ok()
                .map(|s| self.render(s, Direction::Outbound));
            let text = match (&spec, &seg, icmp) {
                (_, _, Some(tc)) => icmp_lines::show(tc),
                (Some(p), _, _) => p.to_string(),
                (None, Err(e), _) => format!("> (undecodable packet: {e})"),
                (None, Ok(_), _) => "> (undecodable packet)".to_string(),
            };
            self.trace.push(
                at,
                TraceKind::PacketOut {
                    text: text.clone(),
                    bytes,
                },
            );
            self.queue.push_back(Sent {
                at,
                seg,
                spec,
                text,
                icmp,
            });
        }
    }

    /// Strict mode: nothing may be waiting unmatched when a non-`>` event
    /// runs (or after the last line, which ended at `after_end`: a packet
    /// sent by then, e.g. during a blocking call, is said to be before its
    /// end, not after it).
    fn check_unexpected(
        &mut self,
        line: usize,
        col: usize,
        after_end: Option<Micros>,
    ) -> Result<(), Stop> {
        let Some(first) = self.queue.front() else {
            return Ok(());
        };
        if self.packetdrill {
            // packetdrill leaves them to the next `>` line (none after the end).
            return Ok(());
        }
        let when = match after_end {
            Some(end) if first.at <= end => {
                format!(
                    "before the last line (line {line}) ended at {}",
                    fmt_time(end)
                )
            }
            Some(_) => format!("within {} s after the last line", fmt_time(DRAIN_USECS)),
            None => format!("before line {line}"),
        };
        let message = format!(
            "unexpected outbound packet at {}: the script expects none {when}",
            fmt_time(first.at)
        );
        if self.strict {
            return Err(Stop::Fail(Box::new(Failure {
                line,
                col,
                message: format!("{message} (strict mode)"),
                expected: Some("no packet".into()),
                actual: Some(first.text.clone()),
                mismatch: Mismatch::Unexpected { at: first.at },
                window: None,
                expected_packet: None,
                actual_packet: first.spec.clone(),
                call: None,
            })));
        }
        let texts: Vec<String> = self.queue.drain(..).map(|s| s.text).collect();
        for t in texts {
            self.warn(format!("{message}: {t}"));
        }
        Ok(())
    }

    // ----- numbering ------------------------------------------------------------

    /// A wire segment in script syntax, numbers relative to the ISNs.
    fn render(&self, s: &WireSegment, dir: Direction) -> PacketSpec {
        let (own, other) = match dir {
            Direction::Outbound => (self.stack_isn, self.peer_isn),
            Direction::Inbound => (self.peer_isn, self.stack_isn),
        };
        let own = own.unwrap_or(0);
        let other = other.unwrap_or(0);
        // A RST with SEQ=0 answers a segment without ACK (RFC 9293
        // 3.10.7.1): its 0 is absolute, not a number of this connection.
        let pd_syn = self.packetdrill && s.flags.syn;
        let seq = if s.flags.rst && s.seq == 0 {
            0
        } else if pd_syn && dir == Direction::Outbound {
            // packetdrill: a SYN's number is the script's ISN plus the
            // live offset, its ACK absolute (the peer's ISN is the script's).
            s.seq.wrapping_sub(own).wrapping_add(self.pd.script_isn)
        } else {
            s.seq.wrapping_sub(own)
        };
        let other = if pd_syn && dir == Direction::Outbound {
            0
        } else {
            other
        };
        PacketSpec {
            dir,
            ecn: Ecn::from_bits(s.ecn),
            flags: s.flags,
            seq: Some((seq, seq.wrapping_add(s.payload_len), s.payload_len)),
            ack: s.flags.ack.then(|| s.ack.wrapping_sub(other)),
            win: Some(s.win),
            urg: (s.flags.urg || s.urg != 0).then_some(s.urg),
            options: Some(
                s.options
                    .iter()
                    .map(|o| match o {
                        TcpOpt::Sack(b) => TcpOpt::Sack(
                            b.iter()
                                .map(|(l, r)| (l.wrapping_sub(other), r.wrapping_sub(other)))
                                .collect(),
                        ),
                        o => o.clone(),
                    })
                    .collect(),
            ),
        }
    }

    // ----- events ------------------------------------------------------------------

    /// A backtick line; `init` for one before the clock starts (nothing is
    /// waited for, its trace entry is at time 0).
    fn shell(&mut self, e: &Event, cmd: &ShellCommand, init: bool) -> Result<(), Stop> {
        if !init {
            self.advance_watching(self.last_time)?;
            self.check_unexpected(e.line, e.col, None)?;
        }
        // A command may set another fast-open key.
        self.pd.forget_cookies();
        let target = self.target.name();
        match cmd.sysctls() {
            Some(pairs) => {
                for (name, value) in pairs {
                    match self.target.sysctl(&name, &value) {
                        SysctlOutcome::Applied => {
                            let at = self.shell_time(init);
                            self.trace.push(
                                at,
                                TraceKind::Note {
                                    text: format!("sysctl {name}={value} applied"),
                                },
                            );
                        }
                        SysctlOutcome::Refused(why) => self.warn_at(
                            init,
                            format!(
                                "line {}: sysctl {name}={value} not applied on {target}, \
                             the run goes on with the value in force: {why}",
                                e.line
                            ),
                        ),
                        SysctlOutcome::NotApplicable(why) => {
                            return Err(Stop::NotApplicable {
                                line: e.line,
                                col: e.col,
                                message: format!(
                                    "sysctl {name}={value} not applicable on {target}: {why}"
                                ),
                            })
                        }
                    }
                }
            }
            None => match self.target.shell(&cmd.cmd, &self.script_dir) {
                ShellOutcome::Ran => {
                    let at = self.shell_time(init);
                    self.trace.push(
                        at,
                        TraceKind::Note {
                            text: format!("ran {cmd}"),
                        },
                    );
                }
                ShellOutcome::Failed(why) => {
                    return Err(Stop::Error {
                        line: e.line,
                        col: e.col,
                        message: format!("error executing {cmd} in the test namespace: {why}"),
                    })
                }
                ShellOutcome::NotRun(why) => self.warn_at(
                    init,
                    format!(
                        "line {}: shell command not applicable on {target} ({why}): {cmd}",
                        e.line
                    ),
                ),
            },
        }
        Ok(())
    }

    /// When a shell line's effects are noted: 0 before the clock starts.
    fn shell_time(&self, init: bool) -> Micros {
        if init {
            0
        } else {
            self.target.now()
        }
    }

    /// [`Runner::warn`], at time 0 before the clock starts.
    fn warn_at(&mut self, init: bool, w: String) {
        let at = self.shell_time(init);
        self.trace.push(at, TraceKind::Note { text: w.clone() });
        self.warnings.push(w);
    }

    /// A `%{ }%` block: at its time, the `tcpi_*` values of the socket under
    /// test are kept with it; all blocks run after the script
    /// ([`code::execute`]). A target without TCP_INFO makes the script not
    /// applicable.
    fn code_event(&mut self, e: &Event, c: &CodeBlock) -> Result<(), Stop> {
        self.advance_watching(self.last_time)?;
        self.check_unexpected(e.line, e.col, None)?;
        let located = |message: String| Stop::Error {
            line: e.line,
            col: e.col,
            message,
        };
        let Some(fd) = self.sut else {
            return Err(located("no socket to use for the `%{ }%` block".into()));
        };
        let live = self.fds.get(&fd).copied().unwrap_or(fd);
        let r = match self.target.call(&SocketCall::TcpInfo { fd: live }) {
            Ok(CallOutcome::Done(r)) => r,
            Ok(CallOutcome::WouldBlock) => {
                return Err(located("getsockopt(TCP_INFO) would block".into()))
            }
            Err(TargetError::NotApplicable(why)) => {
                return Err(Stop::NotApplicable {
                    line: e.line,
                    col: e.col,
                    message: format!(
                        "`%{{ }}%` block not applicable on {}: {why}",
                        self.target.name()
                    ),
                })
            }
            Err(other) => return Err(other.into()),
        };
        if let Err(errno) = r.ret {
            return Err(located(format!(
                "getsockopt({fd}, SOL_TCP, TCP_INFO) for the `%{{ }}%` block failed: {errno}"
            )));
        }
        self.code.push(Fragment {
            line: e.line,
            col: e.col,
            info: code::decode_tcp_info(&r.data),
            code: c.code.clone(),
        });
        Ok(())
    }

    fn inbound(&mut self, e: &Event, p: &PacketSpec, t: Micros) -> Result<(), Stop> {
        self.advance_watching(t)?;
        self.check_unexpected(e.line, e.col, None)?;
        let err = |message: String| Stop::Error {
            line: e.line,
            col: e.col,
            message,
        };
        let Some(opts) = &p.options else {
            return Err(err(
                "`<...>` (any options) cannot be injected: write the options".into(),
            ));
        };
        let (seq, len) = match p.seq {
            Some((s, _, len)) if p.flags.syn => {
                // packetdrill: a SYN to the listening socket under test
                // starts a new connection, numbered from its ISN.
                let new_passive = self.packetdrill && !p.flags.ack && self.pd.listening;
                if new_passive {
                    let (local, peer) = self.target.addresses();
                    self.stack_port = None;
                    self.pd.new_passive(local.port(), peer.port());
                    self.stack_isn = None;
                }
                if self.peer_isn.is_none() || new_passive {
                    self.peer_isn = Some(s);
                }
                (s, len)
            }
            Some((s, _, len)) => (self.peer_isn.unwrap_or(0).wrapping_add(s), len),
            None => (self.peer_nxt, 0),
        };
        let stack_isn = self.stack_isn.unwrap_or(0);
        // packetdrill maps an ACK number left out of an ACK segment like
        // one written 0 (relative): the stack's ISN.
        let unwritten = (self.packetdrill && p.flags.ack).then_some(0);
        let ack = p
            .ack
            .or(unwritten)
            .map(|a| stack_isn.wrapping_add(self.pd.inbound_ack_offset(p.flags.syn, a)))
            .unwrap_or(0);
        let cookies = if self.packetdrill && has_cookie(opts) {
            self.pd.cookies(self.target)
        } else {
            None
        };
        let opts: Vec<TcpOpt> = opts
            .iter()
            .map(|o| match o {
                // packetdrill's mapping: a TSecr the script took from one
                // of its `>` lines echoes what the target really sent.
                TcpOpt::Timestamp { val, ecr } if p.flags.ack => TcpOpt::Timestamp {
                    val: *val,
                    ecr: self.live_ecr(*ecr),
                },
                TcpOpt::Sack(b) => TcpOpt::Sack(
                    b.iter()
                        .map(|(l, r)| (stack_isn.wrapping_add(*l), stack_isn.wrapping_add(*r)))
                        .collect(),
                ),
                TcpOpt::FastOpen { exp, cookie } => TcpOpt::FastOpen {
                    exp: *exp,
                    cookie: cookies
                        .as_ref()
                        .map_or(cookie.clone(), |m| m.to_live(cookie)),
                },
                o => o.clone(),
            })
            .collect();
        let (local, peer) = self.target.addresses();
        let out = Outgoing {
            src: peer.ip(),
            dst: local.ip(),
            src_port: self.pd.peer_port(peer.port()),
            dst_port: self.stack_port.unwrap_or(local.port()),
            seq,
            ack,
            flags: p.flags,
            win: p.win.unwrap_or(DEFAULT_INBOUND_WINDOW),
            urg: p.urg.unwrap_or(0),
            options: &opts,
            payload_len: len,
            ecn: p.ecn.and_then(|e| e.bits()).unwrap_or(0),
        };
        let bytes = wire::build(&out).map_err(err)?;
        self.peer_nxt = seq
            .wrapping_add(len)
            .wrapping_add(u32::from(p.flags.syn))
            .wrapping_add(u32::from(p.flags.fin));
        let text = match wire::decode(&bytes) {
            Ok(s) => self.render(&s, Direction::Inbound).to_string(),
            Err(_) => p.to_string(),
        };
        let now = self.target.now();
        self.trace.push(
            now,
            TraceKind::PacketIn {
                text,
                bytes: bytes.clone(),
            },
        );
        self.target.inject(&bytes)?;
        self.pump();
        self.retry_pending()
    }

    /// Waits for the next outbound packet within the window and compares
    /// it; returns when it was sent. A packet just past the window (by at
    /// most one more tolerance) that matches is [`Mismatch::Late`].
    fn outbound(&mut self, e: &Event, p: &PacketSpec, w: Window) -> Result<Micros, Stop> {
        self.wait_packet(w.hi)?;
        if self.queue.is_empty() {
            self.wait_packet(w.hi.saturating_add(w.tolerance))?;
        }
        let not_sent = |r: &Self| {
            Stop::Fail(Box::new(Failure {
                line: e.line,
                col: e.col,
                message: format!(
                    "expected packet not sent by {} (scripted {})",
                    fmt_time(w.hi),
                    window_text(w.lo, w.hi)
                ),
                expected: Some(p.to_string()),
                actual: Some("no packet".into()),
                mismatch: Mismatch::NotSent,
                window: Some(w),
                expected_packet: Some(p.clone()),
                actual_packet: r.queue.front().and_then(|q| q.spec.clone()),
                call: None,
            }))
        };
        let Some(mut sent) = self.queue.pop_front() else {
            return Err(not_sent(self));
        };
        let mismatch = |mismatch: Mismatch, message: String, sent: &Sent| {
            Stop::Fail(Box::new(Failure {
                line: e.line,
                col: e.col,
                message,
                expected: Some(p.to_string()),
                actual: Some(sent.text.clone()),
                mismatch,
                window: Some(w),
                expected_packet: Some(p.clone()),
                actual_packet: sent.spec.clone(),
                call: None,
            }))
        };
        let mut seg = match &sent.seg {
            Ok(s) => s.clone(),
            Err(why) => {
                return Err(mismatch(
                    Mismatch::Undecodable,
                    format!("the target sent an undecodable packet: {why}"),
                    &sent,
                ))
            }
        };
        if self.packetdrill && !self.flags.strict_segments {
            // packetdrill times an aggregate by its last segment.
            sent.at = self
                .coalesce(p, &mut seg, w.hi.saturating_add(PD_SNIFF_USECS))?
                .unwrap_or(sent.at);
            if let (true, Some((isn, _, _))) = (p.flags.syn, p.seq) {
                self.pd.script_isn = isn;
            }
            if has_cookie(&seg.options) {
                if let Some(m) = self.pd.cookies(self.target) {
                    seg.options = m.options_to_script(&seg.options);
                }
            }
        }
        if let (Some(script), Some(live)) = (
            p.options.as_deref().and_then(timestamp),
            timestamp(&seg.options),
        ) {
            self.ts_vals.insert(script.0, live.0);
        }
        let mut fields = self.compare(p, &seg);
        fields.extend(self.ts_tick_check(p, &seg, w.script));
        if sent.at > w.hi {
            if fields.is_empty() {
                return Err(mismatch(
                    Mismatch::Late { at: sent.at },
                    format!(
                        "packet sent at {}, late (scripted {}; within one more tolerance)",
                        fmt_time(sent.at),
                        window_text(w.lo, w.hi)
                    ),
                    &sent,
                ));
            }
            self.queue.push_front(sent);
            return Err(not_sent(self));
        }
        if sent.at < w.lo {
            return Err(mismatch(
                Mismatch::Early { at: sent.at },
                format!(
                    "packet sent at {}, too early (scripted {})",
                    fmt_time(sent.at),
                    window_text(w.lo, w.hi)
                ),
                &sent,
            ));
        }
        if !fields.is_empty() {
            let shown: Vec<String> = fields.iter().map(|(_, t)| t.clone()).collect();
            return Err(mismatch(
                Mismatch::Differs {
                    at: sent.at,
                    fields: fields.iter().map(|(f, _)| *f).collect(),
                },
                format!("outbound packet differs: {}", shown.join("; ")),
                &sent,
            ));
        }
        Ok(sent.at)
    }

    /// packetdrill's aggregation (unless `--strict_segments`): when the
    /// line expects more payload than `seg` has, the contiguous segments
    /// that follow by `hi` (same ACK, no SYN or RST) are merged into it:
    /// flags, window and options are the last one's (its CWR bit the
    /// first's), as packetdrill's `aggregate_packets` builds them.
    /// Returns when the last merged segment was sent (`None`: none was). On
    /// `linux` the device has real segmentation offload
    /// ([`Target::packetdrill_device`]), so the segments merged are the
    /// kernel's own TSO segments, as packetdrill's sniffer merges them; on
    /// a target without offload this also stands in for TSO.
    fn coalesce(
        &mut self,
        p: &PacketSpec,
        seg: &mut WireSegment,
        hi: Micros,
    ) -> Result<Option<Micros>, Stop> {
        let Some((_, _, want)) = p.seq else {
            return Ok(None);
        };
        let mut last = None;
        while seg.payload_len < want && !seg.flags.fin {
            if self.queue.is_empty() {
                self.wait_packet(hi)?;
            }
            let next = match self.queue.front().map(|q| &q.seg) {
                Some(Ok(n))
                    if n.seq == seg.seq.wrapping_add(seg.payload_len)
                        && n.ack == seg.ack
                        && n.flags.ack == seg.flags.ack
                        && !n.flags.syn
                        && !n.flags.rst
                        && n.payload_len > 0 =>
                {
                    n.clone()
                }
                _ => return Ok(last),
            };
            last = self.queue.pop_front().map(|q| q.at);
            seg.payload_len += next.payload_len;
            // packetdrill's aggregate has the last segment's headers, but
            // the first one's sequence number and CWR bit.
            let cwr = seg.flags.cwr;
            seg.flags = next.flags;
            seg.flags.cwr = cwr;
            seg.win = next.win;
            seg.options = next.options;
        }
        Ok(last)
    }

    /// The differences between an expected and an actual outbound packet,
    /// each with its rendering.
    fn compare(&self, p: &PacketSpec, s: &WireSegment) -> Vec<(Field, String)> {
        let actual = self.render(s, Direction::Outbound);
        let mut d = Vec::new();
        if p.flags != s.flags {
            let mut a = s.flags;
            a.psh = p.flags.psh;
            let field = if a == p.flags {
                Field::Psh
            } else {
                Field::Flags
            };
            d.push((field, format!("flags {} != expected {}", s.flags, p.flags)));
        }
        if let (Some((seq, _, len)), Some((aseq, _, alen))) = (p.seq, actual.seq) {
            if seq != aseq {
                d.push((Field::Seq, format!("seq {aseq} != expected {seq}")));
            }
            if len != alen {
                d.push((
                    Field::Len,
                    format!("payload length {alen} != expected {len}"),
                ));
            }
        }
        if let Some(ack) = p.ack {
            match actual.ack {
                Some(a) if a == ack => {}
                Some(a) => d.push((Field::Ack, format!("ack {a} != expected {ack}"))),
                None => d.push((Field::Ack, format!("no ACK flag, expected ack {ack}"))),
            }
        }
        if let Some(want) = p.ecn {
            let ok = match want.bits() {
                Some(b) => b == s.ecn,
                None => s.ecn == 1 || s.ecn == 2,
            };
            if !ok {
                d.push((
                    Field::Flags,
                    format!(
                        "IP ECN field {} != expected [{}]",
                        Ecn::from_bits(s.ecn).map_or("?", |e| e.as_str()),
                        want.as_str()
                    ),
                ));
            }
        }
        if let Some(w) = p.win {
            if w != s.win {
                d.push((Field::Win, format!("win {} != expected {w}", s.win)));
            }
        }
        if let Some(u) = p.urg {
            if u != s.urg {
                d.push((Field::Urg, format!("urg {} != expected {u}", s.urg)));
            }
        }
        if let (Some(want), Some(got)) = (&p.options, &actual.options) {
            let norm = |v: &[TcpOpt]| -> Vec<TcpOpt> {
                v.iter()
                    .filter(|o| **o != TcpOpt::Eol)
                    .map(|o| match o {
                        TcpOpt::Timestamp { ecr, .. } => TcpOpt::Timestamp { val: 0, ecr: *ecr },
                        o => o.clone(),
                    })
                    .collect()
            };
            if norm(want) != norm(got) || !s.unknown_options.is_empty() {
                d.push((Field::Options, "options differ".into()));
            }
        }
        d
    }

    fn syscall(
        &mut self,
        e: &Event,
        s: &SyscallSpec,
        start: Micros,
        w: Window,
    ) -> Result<(), Stop> {
        let call = syscall::resolve(s).map_err(|message| {
            // A call or option the runner cannot make: the script says
            // nothing about this target (never skipped silently).
            if message.ends_with("is not supported") || message.ends_with("are not supported") {
                Stop::NotApplicable {
                    line: e.line,
                    col: e.col,
                    message: format!("not applicable on {}: {message}", self.target.name()),
                }
            } else {
                Stop::Error {
                    line: e.line,
                    col: e.col,
                    message,
                }
            }
        })?;
        let mut call = call.map_fds(|fd| self.fds.get(&fd).copied().unwrap_or(fd));
        super::files::place_paths(&mut call, &self.script_dir);
        self.advance_watching(start)?;
        self.settle_pending()?;
        if let Some(p) = &self.pending {
            return Err(blocked(
                p.line,
                p.col,
                format!(
                    "call `{}` still blocked when the next call (line {}) is due at {}",
                    p.spec.name,
                    e.line,
                    fmt_time(start)
                ),
            ));
        }
        self.check_unexpected(e.line, e.col, None)?;
        let poll_deadline = match call.wait_ms() {
            Some(ms) if ms > 0 => {
                let ms = u64::try_from(ms).unwrap_or(0);
                Some(start.saturating_add(ms.saturating_mul(1000)))
            }
            Some(ms) if ms < 0 => Some(Micros::MAX),
            _ => None,
        };
        self.pending = Some(Pending {
            line: e.line,
            col: e.col,
            spec: s.clone(),
            call,
            lo: w.lo,
            hi: w.hi,
            window: w,
            poll_deadline,
        });
        self.retry_pending()
    }

    /// Real clocks only: a call still pending when the next one is due may
    /// yet return within its own window (a helper thread or the scheduler
    /// made it late); as packetdrill waits for its system call thread, the
    /// next call waits until then. Virtual clocks are exact: no wait.
    fn settle_pending(&mut self) -> Result<(), Stop> {
        if self.target.is_virtual() {
            return Ok(());
        }
        while let Some(hi) = self.pending.as_ref().map(|p| p.hi) {
            if self.target.now() >= hi {
                break;
            }
            self.target.advance(hi)?;
            self.pump();
            self.retry_pending()?;
        }
        Ok(())
    }

    /// Makes the pending call (again); checks it when it completes.
    fn retry_pending(&mut self) -> Result<(), Stop> {
        let Some(p) = self.pending.take() else {
            return Ok(());
        };
        let now = self.target.now();
        // A call the target cannot make is not applicable; a target that
        // fails on the call (a foreign process that died or hung) is
        // located at the call's line.
        let outcome = match self.target.call(&p.call) {
            Ok(o) => o,
            Err(TargetError::NotApplicable(why)) => {
                return Err(Stop::NotApplicable {
                    line: p.line,
                    col: p.col,
                    message: format!(
                        "`{}` not applicable on {}: {why}",
                        p.spec.name,
                        self.target.name()
                    ),
                })
            }
            Err(e) => {
                let message = format!("`{}`: {e}", p.spec);
                return Err(Stop::target(&e, p.line, p.col, message));
            }
        };
        let done = match outcome {
            CallOutcome::Done(r) => match (p.poll_deadline, &r.ret) {
                // A poll that found nothing waits for its timeout.
                (Some(d), Ok(0)) if now < d => None,
                _ => Some(r),
            },
            CallOutcome::WouldBlock => None,
        };
        let Some(r) = done else {
            if now >= p.hi {
                let line = p.line;
                let col = p.col;
                let message = format!(
                    "call did not return by {} (scripted {})",
                    fmt_time(p.hi),
                    window_text(p.lo, p.hi)
                );
                return Err(Stop::Fail(Box::new(Failure {
                    line,
                    col,
                    message,
                    expected: Some(p.spec.to_string()),
                    actual: Some("still blocked".into()),
                    mismatch: Mismatch::CallBlocked,
                    window: None,
                    expected_packet: None,
                    actual_packet: None,
                    call: Some(CallInfo {
                        name: p.spec.name.clone(),
                        errno: None,
                    }),
                })));
            }
            self.pending = Some(p);
            return Ok(());
        };
        self.complete(p, r, now)
    }

    fn complete(&mut self, p: Pending, mut r: CallReturn, now: Micros) -> Result<(), Stop> {
        if let (true, Ok(fd)) = (p.call.opens_fd(), r.ret) {
            // The script's number stands for the target's from now on.
            let script_fd = if p.spec.result >= 0 && p.spec.errno.is_none() {
                p.spec.result
            } else {
                fd
            };
            self.fds.insert(script_fd, fd);
            if matches!(p.call, SocketCall::Socket | SocketCall::Accept { .. }) {
                self.sut = Some(script_fd);
            }
            r.ret = Ok(script_fd);
        }
        super::epoll::to_script_fds(&p.spec, &mut r, &self.fds);
        super::files::record_fds(&p.call, &r, &mut self.fds);
        self.pd.on_call(&p.call, r.ret.is_ok());
        let text = shown_call(&p.spec, &r);
        self.trace.push(now, TraceKind::Call { text: text.clone() });
        self.pump();
        if let Some(n) = &r.note {
            self.warn(format!("line {}: {n}", p.line));
        }
        if now < p.lo || now > p.hi {
            return Err(Stop::Fail(Box::new(Failure {
                line: p.line,
                col: p.col,
                message: format!(
                    "call returned at {} (scripted {})",
                    fmt_time(now),
                    window_text(p.lo, p.hi)
                ),
                expected: Some(p.spec.to_string()),
                actual: Some(text),
                mismatch: Mismatch::CallTime { at: now },
                window: Some(p.window),
                expected_packet: None,
                actual_packet: None,
                call: Some(CallInfo {
                    name: p.spec.name.clone(),
                    errno: r.ret.err().map(str::to_string),
                }),
            })));
        }
        let checked = syscall::check(&p.spec, &r);
        if let Err((want, got)) =
            checked.and_then(|()| msg::check(&p.call, &r, (p.window.tolerance, self.lag)))
        {
            return Err(Stop::Fail(Box::new(Failure {
                line: p.line,
                col: p.col,
                message: format!("{} returned {got}, expected {want}", p.spec.name),
                expected: Some(p.spec.to_string()),
                actual: Some(text),
                mismatch: Mismatch::CallResult { want, got },
                window: None,
                expected_packet: None,
                actual_packet: None,
                call: Some(CallInfo {
                    name: p.spec.name.clone(),
                    errno: r.ret.err().map(str::to_string),
                }),
            })));
        }
        Ok(())
    }

    fn finish(&mut self, script: &Script) -> Result<(), Stop> {
        let (line, col) = script
            .events
            .last()
            .map(|e| (e.line, e.col))
            .unwrap_or((1, 1));
        if let Some(hi) = self.pending.as_ref().map(|p| p.hi) {
            self.advance(hi, false)?;
            if let Some(p) = self.pending.take() {
                return Err(blocked(
                    p.line,
                    p.col,
                    format!(
                        "call still blocked at the end of the script ({})",
                        fmt_time(hi)
                    ),
                ));
            }
        }
        let end = self.target.now().max(self.last_time);
        self.check_unexpected(line, col, Some(end))?;
        if self.strict && !self.packetdrill {
            self.advance_watching(end.saturating_add(DRAIN_USECS - 1))?;
            self.check_unexpected(line, col, Some(end))?;
        }
        code::execute(&self.path, &self.code).map_err(|f| {
            Stop::Fail(Box::new(Failure {
                line: f.line,
                col: f.col,
                message: f.message,
                expected: None,
                actual: None,
                mismatch: Mismatch::Code,
                window: None,
                expected_packet: None,
                actual_packet: None,
                call: None,
            }))
        })
    }
}

/// An inbound packet is injected at one time: `*` or a range is an error.
fn definite_time(e: &Event) -> Result<(), Stop> {
    if matches!(e.time, TimeSpec::Any | TimeSpec::Range { .. }) {
        return Err(Stop::Error {
            line: e.line,
            col: e.col,
            message: "an inbound packet needs a definite time, not `*` or a range".into(),
        });
    }
    Ok(())
}

/// `(TSval, TSecr)` of the timestamps option among `opts`.
fn timestamp(opts: &[TcpOpt]) -> Option<(u32, u32)> {
    opts.iter().find_map(|o| match o {
        TcpOpt::Timestamp { val, ecr } => Some((*val, *ecr)),
        _ => None,
    })
}

fn window_text(lo: Micros, hi: Micros) -> String {
    if hi >= lo.saturating_add(WILDCARD_HORIZON_USECS) {
        format!("any time from {}", fmt_time(lo))
    } else {
        format!("{}..{}", fmt_time(lo), fmt_time(hi))
    }
}

/// The call as script text with its actual result.
fn shown_call(spec: &SyscallSpec, r: &CallReturn) -> String {
    let args: Vec<String> = spec.args.iter().map(|a| a.to_string()).collect();
    let mut s = format!("{}({}) = {r}", spec.name, args.join(", "));
    if let Some(v) = r.value {
        s.push_str(&format!(" [value {}]", syscall::show_value(v)));
    }
    if let Some(m) = &r.msg {
        s.push_str(&msg::show_return(m));
    }
    if !r.revents.is_empty() && spec.name == "poll" {
        let ev: Vec<String> = r.revents.iter().map(|b| syscall::show_poll(*b)).collect();
        s.push_str(&format!(" [revents {}]", ev.join(", ")));
    }
    s
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Passed => f.write_str("passed"),
            Outcome::Failed(x) => write!(f, "failed: line {}: {}", x.line, x.message),
            Outcome::Error(e) => write!(f, "error: {e}"),
            Outcome::NotApplicable(e) => write!(f, "not applicable: {e}"),
        }
    }
}
