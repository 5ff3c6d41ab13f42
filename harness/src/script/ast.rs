//! The typed syntax tree of a script.
//!
//! The constructs are packetdrill's (the reference for compatibility): option
//! lines, timed events that are either a TCP packet to inject (`<`) or expect
//! (`>`), a socket system call with its expected result, or a backtick shell
//! command. Every event keeps the line and column it came from.
//!
//! `Display` prints each node back as valid script syntax, so a parsed script
//! round-trips: `parse(&script.to_string())` yields the same tree apart from
//! line and column numbers (see [`Script::eq_ignoring_locations`]). Comments
//! and layout are not kept.

use std::fmt;

/// Microseconds per second; script times are seconds with microsecond precision.
pub const MICROS_PER_SEC: u64 = 1_000_000;

/// A whole script: the `--option` lines at the top, then the events in order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Script {
    /// Command-line style options given at the top of the script.
    pub options: Vec<ScriptOption>,
    /// Events in script order.
    pub events: Vec<Event>,
}

impl Script {
    /// Whether two scripts say the same thing, ignoring where it was written
    /// (line and column numbers). `==` compares locations too.
    pub fn eq_ignoring_locations(&self, other: &Script) -> bool {
        self.options.len() == other.options.len()
            && self.events.len() == other.events.len()
            && self
                .options
                .iter()
                .zip(&other.options)
                .all(|(a, b)| a.opt == b.opt)
            && self
                .events
                .iter()
                .zip(&other.events)
                .all(|(a, b)| a.time == b.time && a.kind == b.kind)
    }

    /// The `--tolerance_usecs` value, if the script sets one (the last wins).
    pub fn tolerance_usecs(&self) -> Option<u64> {
        self.options.iter().rev().find_map(|o| match o.opt {
            Opt::ToleranceUsecs(t) => Some(t),
            _ => None,
        })
    }

    /// The `--tolerance_percent` value, if the script sets one (the last wins).
    pub fn tolerance_percent(&self) -> Option<u64> {
        self.options.iter().rev().find_map(|o| match o.opt {
            Opt::TolerancePercent(t) => Some(t),
            _ => None,
        })
    }

    /// The `--ip_version` value, if the script sets one (the last wins).
    pub fn ip_version(&self) -> Option<IpVersion> {
        self.options.iter().rev().find_map(|o| match o.opt {
            Opt::IpVersion(v) => Some(v),
            _ => None,
        })
    }
}

impl fmt::Display for Script {
    /// One option or event per line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for o in &self.options {
            writeln!(f, "{}", o.opt)?;
        }
        for e in &self.events {
            writeln!(f, "{e}")?;
        }
        Ok(())
    }
}

/// An option line such as `--tolerance_usecs=4000`, with its location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptOption {
    /// 1-based line of the `--`.
    pub line: usize,
    /// 1-based column of the `--`.
    pub col: usize,
    /// The option itself.
    pub opt: Opt,
}

/// A packetdrill command-line option written in the script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Opt {
    /// `--tolerance_usecs=N`: how far (µs) an event's actual time may be from
    /// the scripted time.
    ToleranceUsecs(u64),
    /// `--tolerance_percent=N`: packetdrill's relative tolerance; an event
    /// may also be off by N % of the scripted gap since the previous event.
    TolerancePercent(u64),
    /// `--ip_version=ipv4|ipv6|ipv4-mapped-ipv6`.
    IpVersion(IpVersion),
    /// Any other `--name=value` or `--flag`; kept so the runner can report
    /// (or honour) it.
    Other {
        /// Option name without the leading `--`.
        name: String,
        /// Raw value text after `=` (quotes kept), or `None` for a bare flag.
        value: Option<String>,
    },
}

impl fmt::Display for Opt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Opt::ToleranceUsecs(t) => write!(f, "--tolerance_usecs={t}"),
            Opt::TolerancePercent(t) => write!(f, "--tolerance_percent={t}"),
            Opt::IpVersion(v) => write!(f, "--ip_version={v}"),
            Opt::Other { name, value: None } => write!(f, "--{name}"),
            Opt::Other {
                name,
                value: Some(v),
            } => write!(f, "--{name}={v}"),
        }
    }
}

/// Address family the script's packets use (`--ip_version`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IpVersion {
    /// `ipv4`
    V4,
    /// `ipv6`
    V6,
    /// `ipv4-mapped-ipv6`: IPv4 on the wire, IPv4-mapped IPv6 addresses on the socket.
    V4MappedV6,
}

impl IpVersion {
    /// The spelling used by `--ip_version`.
    pub fn as_str(self) -> &'static str {
        match self {
            IpVersion::V4 => "ipv4",
            IpVersion::V6 => "ipv6",
            IpVersion::V4MappedV6 => "ipv4-mapped-ipv6",
        }
    }
}

impl fmt::Display for IpVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One point in script time: seconds with microsecond precision, either
/// absolute (`0.100`, from the start of the script) or relative (`+0.1`, from
/// the previous event's scripted time, as in packetdrill).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimePoint {
    /// `true` when written with a leading `+`.
    pub relative: bool,
    /// The number, in microseconds.
    pub usecs: u64,
}

impl fmt::Display for TimePoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.relative {
            f.write_str("+")?;
        }
        let secs = self.usecs / MICROS_PER_SEC;
        let frac = self.usecs % MICROS_PER_SEC;
        if frac == 0 {
            write!(f, "{secs}")
        } else {
            let digits = format!("{frac:06}");
            write!(f, "{secs}.{}", digits.trim_end_matches('0'))
        }
    }
}

/// When an event happens, as packetdrill writes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeSpec {
    /// No time written. Only backtick commands may omit the time (packetdrill
    /// allows it for the initial command); the runner treats it as `+0`.
    Unspecified,
    /// `0.100` or `+0.1`: at that time (within the tolerance).
    At(TimePoint),
    /// `*`: at any time (packetdrill's wildcard, used for outbound packets).
    Any,
    /// `0.1~0.2` or `+0.1~+0.2`: anywhere in the range.
    Range {
        /// Earliest time.
        start: TimePoint,
        /// Latest time.
        end: TimePoint,
    },
    /// `+0...0.040`: a blocking system call that starts at `start` and returns
    /// at `end`. As in packetdrill the end is written after `...`; it is kept
    /// as written (relative when it has a `+`).
    Blocking {
        /// When the call is made.
        start: TimePoint,
        /// When the call is expected to return.
        end: TimePoint,
    },
}

impl fmt::Display for TimeSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TimeSpec::Unspecified => Ok(()),
            TimeSpec::At(p) => write!(f, "{p}"),
            TimeSpec::Any => f.write_str("*"),
            TimeSpec::Range { start, end } => write!(f, "{start}~{end}"),
            TimeSpec::Blocking { start, end } => write!(f, "{start}...{end}"),
        }
    }
}

/// One timed line of a script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// When it happens.
    pub time: TimeSpec,
    /// 1-based line where the event starts.
    pub line: usize,
    /// 1-based column where the event starts.
    pub col: usize,
    /// What happens.
    pub kind: EventKind,
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.time {
            TimeSpec::Unspecified => write!(f, "{}", self.kind),
            t => write!(f, "{t} {}", self.kind),
        }
    }
}

/// What an event does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventKind {
    /// A TCP segment injected (`<`) or expected (`>`).
    Packet(PacketSpec),
    /// A socket system call and its expected result.
    Syscall(SyscallSpec),
    /// A `` `shell command` ``.
    Shell(ShellCommand),
    /// A `%{ python }%` block (packetdrill's code event).
    Code(CodeBlock),
    /// An ICMP packet quoting a TCP segment of the connection.
    Icmp(IcmpSpec),
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EventKind::Packet(p) => write!(f, "{p}"),
            EventKind::Syscall(s) => write!(f, "{s}"),
            EventKind::Shell(s) => write!(f, "{s}"),
            EventKind::Code(c) => write!(f, "{c}"),
            EventKind::Icmp(i) => write!(f, "{i}"),
        }
    }
}

/// Which way a scripted packet travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Direction {
    /// `<`: the script injects it into the stack under test.
    Inbound,
    /// `>`: the stack under test is expected to send it.
    Outbound,
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Direction::Inbound => "<",
            Direction::Outbound => ">",
        })
    }
}

/// TCP header flags (RFC 9293 3.1, RFC 3168 6.1 for ECE/CWR), written as
/// packetdrill letters: `F` FIN, `S` SYN, `R` RST, `P` PSH, `.` ACK, `U` URG,
/// `E` ECE, `W` CWR; `-` means none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct TcpFlags {
    /// `F`
    pub fin: bool,
    /// `S`
    pub syn: bool,
    /// `R`
    pub rst: bool,
    /// `P`
    pub psh: bool,
    /// `.`
    pub ack: bool,
    /// `U`
    pub urg: bool,
    /// `E`
    pub ece: bool,
    /// `W`
    pub cwr: bool,
}

impl TcpFlags {
    /// Whether no flag is set (written `-`).
    pub fn is_empty(&self) -> bool {
        *self == TcpFlags::default()
    }
}

impl fmt::Display for TcpFlags {
    /// packetdrill's order: `F S R P . U E W`, e.g. `S.`, `FP.`, `S.E`, `SEW`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return f.write_str("-");
        }
        for (on, c) in [
            (self.fin, 'F'),
            (self.syn, 'S'),
            (self.rst, 'R'),
            (self.psh, 'P'),
            (self.ack, '.'),
            (self.urg, 'U'),
            (self.ece, 'E'),
            (self.cwr, 'W'),
        ] {
            if on {
                write!(f, "{c}")?;
            }
        }
        Ok(())
    }
}

/// A scripted TCP segment:
/// `< S 0:0(0) win 32792 <mss 1000,sackOK,nop,nop,nop,wscale 7>`.
///
/// Sequence and acknowledgment numbers are relative to the initial sequence
/// numbers, as in packetdrill.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PacketSpec {
    /// Inbound or outbound.
    pub dir: Direction,
    /// Header flags.
    pub flags: TcpFlags,
    /// `start:end(len)`: first sequence number, the one after the payload, and
    /// the payload length (`end - start == len`, modulo 2^32). `None` when the
    /// range is omitted (`< . ack 1 win 257`).
    pub seq: Option<(u32, u32, u32)>,
    /// `ack N`
    pub ack: Option<u32>,
    /// `win N`: the raw 16-bit window field.
    pub win: Option<u16>,
    /// `urg N`: the urgent pointer.
    pub urg: Option<u16>,
    /// TCP options in `<...>`. `None` is the wildcard `<...>` ("do not check
    /// options"); `Some(vec![])` means none were written.
    pub options: Option<Vec<TcpOpt>>,
    /// The `[noecn]`, `[ect0]`, `[ect1]`, `[ce]` or `[ect01]` annotation:
    /// the ECN field of the IP header (RFC 3168 5), when written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ecn: Option<Ecn>,
}

/// The ECN codepoint of an IP header (RFC 3168 5), as packetdrill writes it
/// in brackets before the TCP flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Ecn {
    /// `[noecn]`: 00, not ECN-capable.
    NoEcn,
    /// `[ect1]`: 01.
    Ect1,
    /// `[ect0]`: 10.
    Ect0,
    /// `[ce]`: 11, congestion experienced.
    Ce,
    /// `[ect01]`: either ECT codepoint (expected packets only).
    Ect01,
}

impl Ecn {
    /// The spelling inside the brackets.
    pub fn as_str(self) -> &'static str {
        match self {
            Ecn::NoEcn => "noecn",
            Ecn::Ect1 => "ect1",
            Ecn::Ect0 => "ect0",
            Ecn::Ce => "ce",
            Ecn::Ect01 => "ect01",
        }
    }

    /// The annotation spelled `word`.
    pub fn by_name(word: &str) -> Option<Ecn> {
        [Ecn::NoEcn, Ecn::Ect1, Ecn::Ect0, Ecn::Ce, Ecn::Ect01]
            .into_iter()
            .find(|e| e.as_str() == word)
    }

    /// The annotation of the two ECN bits `b` of an IP header, when they
    /// are not 00 (an unannotated line means not-ECT).
    pub fn from_bits(b: u8) -> Option<Ecn> {
        match b & 3 {
            1 => Some(Ecn::Ect1),
            2 => Some(Ecn::Ect0),
            3 => Some(Ecn::Ce),
            _ => None,
        }
    }

    /// The two ECN bits of the IP header; `None` for `ect01`, which names two.
    pub fn bits(self) -> Option<u8> {
        match self {
            Ecn::NoEcn => Some(0),
            Ecn::Ect1 => Some(1),
            Ecn::Ect0 => Some(2),
            Ecn::Ce => Some(3),
            Ecn::Ect01 => None,
        }
    }
}

impl fmt::Display for PacketSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.dir)?;
        if let Some(e) = self.ecn {
            write!(f, " [{}]", e.as_str())?;
        }
        write!(f, " {}", self.flags)?;
        if let Some((start, end, len)) = self.seq {
            write!(f, " {start}:{end}({len})")?;
        }
        if let Some(a) = self.ack {
            write!(f, " ack {a}")?;
        }
        if let Some(w) = self.win {
            write!(f, " win {w}")?;
        }
        if let Some(u) = self.urg {
            write!(f, " urg {u}")?;
        }
        match &self.options {
            None => f.write_str(" <...>"),
            Some(opts) if opts.is_empty() => Ok(()),
            Some(opts) => {
                f.write_str(" <")?;
                for (i, o) in opts.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    write!(f, "{o}")?;
                }
                f.write_str(">")
            }
        }
    }
}

/// One TCP option as packetdrill writes it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum TcpOpt {
    /// `nop`: no-operation (RFC 9293 3.2).
    Nop,
    /// `eol`: end of option list (RFC 9293 3.2).
    Eol,
    /// `mss N`: maximum segment size (RFC 9293 3.7.1).
    Mss(u16),
    /// `wscale N`: window scale shift (RFC 7323 2).
    WScale(u8),
    /// `sackOK`: SACK permitted (RFC 2018 2).
    SackPermitted,
    /// `sack a:b c:d`: SACK blocks, left and right edges (RFC 2018 3).
    Sack(Vec<(u32, u32)>),
    /// `TS val X ecr Y`: timestamps (RFC 7323 3).
    Timestamp {
        /// TSval
        val: u32,
        /// TSecr
        ecr: u32,
    },
    /// `FO [cookie]` (kind 34, RFC 7413 4.1.1) or `FOEXP [cookie]` (the
    /// experimental kind 254 with magic 0xF989, RFC 7413 4.1.1 and RFC 6994).
    /// An empty cookie is a cookie request.
    FastOpen {
        /// `FOEXP`: the experimental encoding.
        exp: bool,
        /// The cookie octets, written in hex.
        cookie: Vec<u8>,
    },
    /// `md5 <32 hex digits>`: the TCP MD5 signature option (kind 19, RFC 2385 3.0).
    Md5(Vec<u8>),
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl fmt::Display for TcpOpt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TcpOpt::Nop => f.write_str("nop"),
            TcpOpt::Eol => f.write_str("eol"),
            TcpOpt::Mss(m) => write!(f, "mss {m}"),
            TcpOpt::WScale(w) => write!(f, "wscale {w}"),
            TcpOpt::SackPermitted => f.write_str("sackOK"),
            TcpOpt::Sack(blocks) => {
                f.write_str("sack")?;
                for (l, r) in blocks {
                    write!(f, " {l}:{r}")?;
                }
                Ok(())
            }
            TcpOpt::Timestamp { val, ecr } => write!(f, "TS val {val} ecr {ecr}"),
            TcpOpt::FastOpen { exp, cookie } => {
                f.write_str(if *exp { "FOEXP" } else { "FO" })?;
                if !cookie.is_empty() {
                    write!(f, " {}", hex(cookie))?;
                }
                Ok(())
            }
            TcpOpt::Md5(sig) => write!(f, "md5 {}", hex(sig)),
        }
    }
}

/// A system call and its expected outcome:
/// `connect(3, ..., ...) = -1 EINPROGRESS (Operation now in progress)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyscallSpec {
    /// Call name (`socket`, `accept`, `write`, ...); the runner decides which it supports.
    pub name: String,
    /// Arguments as written.
    pub args: Vec<Expr>,
    /// Expected return value.
    pub result: i64,
    /// Expected errno name (`EINPROGRESS`), when given.
    pub errno: Option<String>,
    /// The free-text note in parentheses after the errno, when given (not checked).
    pub note: Option<String>,
}

impl fmt::Display for SyscallSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}(", self.name)?;
        write_list(f, &self.args)?;
        write!(f, ") = {}", self.result)?;
        if let Some(e) = &self.errno {
            write!(f, " {e}")?;
        }
        if let Some(n) = &self.note {
            write!(f, " ({n})")?;
        }
        Ok(())
    }
}

fn write_list(f: &mut fmt::Formatter<'_>, items: &[Expr]) -> fmt::Result {
    for (i, a) in items.iter().enumerate() {
        if i > 0 {
            f.write_str(", ")?;
        }
        write!(f, "{a}")?;
    }
    Ok(())
}

/// A system-call argument expression (packetdrill's expression grammar,
/// restricted to what socket calls need).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expr {
    /// An integer, decimal or `0x` hex, possibly negative.
    Int(i64),
    /// `...`: "whatever the call needs" (a buffer, an address, its length).
    Ellipsis,
    /// A symbolic constant such as `SOCK_STREAM` or `POLLIN`.
    Ident(String),
    /// A `"string"`.
    Str(String),
    /// `A|B|C`: bitwise or of the operands.
    BitOr(Vec<Expr>),
    /// `[a, b]`: an array, or a pointer to a value (`[1]`).
    List(Vec<Expr>),
    /// `{name=value, ...}`: a struct, e.g. `{fd=4, events=POLLIN}`. A field
    /// written without a name (`{..., 0}`, packetdrill's iovec) has the name
    /// `""`; a name may carry packetdrill's length suffix (`msg_iov(1)`).
    Struct(Vec<(String, Expr)>),
    /// `name(args)`, e.g. `htons(8080)`.
    Call {
        /// Function name.
        name: String,
        /// Its arguments.
        args: Vec<Expr>,
    },
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expr::Int(i) => write!(f, "{i}"),
            Expr::Ellipsis => f.write_str("..."),
            Expr::Ident(s) => f.write_str(s),
            Expr::Str(s) => {
                f.write_str("\"")?;
                for c in s.chars() {
                    match c {
                        '"' => f.write_str("\\\"")?,
                        '\\' => f.write_str("\\\\")?,
                        '\n' => f.write_str("\\n")?,
                        '\t' => f.write_str("\\t")?,
                        '\r' => f.write_str("\\r")?,
                        '\0' => f.write_str("\\0")?,
                        c if (c as u32) < 0x20 || (0x7f..0x100).contains(&(c as u32)) => {
                            write!(f, "\\x{:02x}", c as u32)?
                        }
                        c => write!(f, "{c}")?,
                    }
                }
                f.write_str("\"")
            }
            Expr::BitOr(parts) => {
                for (i, p) in parts.iter().enumerate() {
                    if i > 0 {
                        f.write_str("|")?;
                    }
                    write!(f, "{p}")?;
                }
                Ok(())
            }
            Expr::List(items) => {
                f.write_str("[")?;
                write_list(f, items)?;
                f.write_str("]")
            }
            Expr::Struct(fields) => {
                f.write_str("{")?;
                for (i, (k, v)) in fields.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    if k.is_empty() {
                        write!(f, "{v}")?;
                    } else {
                        write!(f, "{k}={v}")?;
                    }
                }
                f.write_str("}")
            }
            Expr::Call { name, args } => {
                write!(f, "{name}(")?;
                write_list(f, args)?;
                f.write_str(")")
            }
        }
    }
}

/// A `` `shell command` `` line. packetdrill runs it with `/bin/sh -c`; the
/// harness runs it inside the test namespace, and recognises `sysctl`
/// assignments (see [`ShellCommand::sysctls`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShellCommand {
    /// The raw text between the backticks (backslash escapes kept as written).
    pub cmd: String,
}

impl fmt::Display for ShellCommand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}`", self.cmd)
    }
}

/// A `%{ ... }%` block: Python code packetdrill runs after the script, with
/// the `tcpi_*` values of `getsockopt(TCP_INFO)` taken when the block's
/// time came.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeBlock {
    /// The code between `%{` and `}%`, surrounding blank space trimmed.
    pub code: String,
}

impl fmt::Display for CodeBlock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "%{{ {} }}%", self.code)
    }
}

/// An ICMP packet: `< icmp unreachable frag_needed mtu 1200 [0:1000(1000)]`.
/// packetdrill quotes the TCP header of the connection in it; the bracket
/// gives the quoted segment's sequence range (relative, as on TCP lines).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IcmpSpec {
    /// Inbound or outbound.
    pub dir: Direction,
    /// `unreachable`, `packet_too_big`, `time_exceeded`, ...
    pub icmp_type: String,
    /// `frag_needed`, `host_unreachable`, ..., when written.
    pub code: Option<String>,
    /// `mtu N`, when written.
    pub mtu: Option<u32>,
    /// `[start:end(len)]`: the quoted segment, when written.
    pub seq: Option<(u32, u32, u32)>,
}

impl fmt::Display for IcmpSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} icmp {}", self.dir, self.icmp_type)?;
        if let Some(c) = &self.code {
            write!(f, " {c}")?;
        }
        if let Some(m) = self.mtu {
            write!(f, " mtu {m}")?;
        }
        if let Some((s, e, l)) = self.seq {
            write!(f, " [{s}:{e}({l})]")?;
        }
        Ok(())
    }
}
