//! `tcpconform diff`: runs a script on several targets and classifies every
//! divergence against the specification's profiles (DESIGN.md, "The spec":
//! *conforms*, *allowed variation*, *violation*).
//!
//! A divergence is either a target departing from the script (the runner's
//! [`Failure`]: expected vs actual) or two targets' normalized traces
//! differing where the script leaves a field open (window, options) or
//! beyond the timing tolerance. The `own` target always runs first under the
//! active profile: its trace names the table row of every transition, which
//! is how the abstract event behind a divergence is reconstructed.
//!
//! Classification rules, in order (each small enough to audit):
//! 1. **Sender's choice.** Only the window and/or options of a SYN or
//!    SYN-ACK differ: allowed, RFC 9293 §3.7.1 and RFC 7323 (options and
//!    initial window are the sender's choice). Only the window of another
//!    segment: allowed, RFC 9293 §3.8.6 (the receiver chooses its window).
//!    Only PSH differs: allowed, RFC 9293 §3.9.1.2.
//! 2. **Timers.** A packet early or late: the RTT samples the target's own
//!    trace contains are fed to the RFC 6298 model ([`tcp_spec::rto`]) of
//!    every profile, backed off once per earlier retransmission of the same
//!    segment. The active profile predicting the observed interval:
//!    conforms; another profile: allowed, naming the single parameter
//!    (`rto_min_ms`, …) whose value makes the difference.
//! 3. **Responses.** A different, missing or extra segment: the stimulus
//!    (the last injected packet or call) is located in the `own` trace,
//!    whose transition names the active row; the abstract events that row
//!    covers with the stimulus's control bits are asked of every other
//!    profile with [`tcp_spec::Spec::step`]. A row whose emitted control
//!    bits equal what the target sent explains it (allowed, naming the
//!    row). A missing challenge ACK of a `rate_limited` row is explained by
//!    a profile whose `challenge_ack_per_sec` suppresses it.
//! 4. Anything else: violation, "no profile explains it".
//!
//! After an allowed variation of kinds 1 and 3 (missing segment), the
//! offending line is masked (window dropped, options `<...>`, PSH adopted,
//! or the line removed) and the script runs again, so later divergences
//! show too; at most [`MAX_MASKS`] times per target.
//!
//! Reports hold no raw timestamps: intervals are rounded to 0.1 s and TS
//! values replaced by `*`, so they make stable snapshots.

use super::runner::{run_text, Failure, Outcome, RunOptions, RunReport};
use super::suite;
use super::target::{Micros, Target};
use super::trace::{Trace, TraceKind};
use super::wire;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use tcp_spec::rto::{RtoConfig, RtoEstimator, Sample};
use tcp_spec::{Ctl, Event, Profile, Row, Spec, State};

/// How many times a line is masked and the script re-run per target.
pub const MAX_MASKS: usize = 4;
/// The reference target: deterministic, and it logs table rows.
pub const REFERENCE: &str = "own";

/// How a divergence relates to the specification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Class {
    /// The target did what the active profile's row says.
    Conforms,
    /// Another profile's row or parameter (or an RFC-granted choice)
    /// explains it.
    Allowed,
    /// Nothing explains it.
    Violation,
}

impl Class {
    /// The name used in reports.
    pub fn name(self) -> &'static str {
        match self {
            Class::Conforms => "conforms",
            Class::Allowed => "allowed variation",
            Class::Violation => "violation",
        }
    }

    fn from_name(s: &str) -> Option<Class> {
        [Class::Conforms, Class::Allowed, Class::Violation]
            .into_iter()
            .find(|c| c.name() == s)
    }
}

/// One classified divergence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Divergence {
    /// The target that departs (or `own vs <target>` for trace diffs).
    pub target: String,
    /// `window`, `options`, `psh`, `timing`, `response`, `missing`,
    /// `extra`, `call`, `trace-window`, `trace-options`, `trace-timing`.
    pub kind: String,
    /// 1-based script line (0 when none applies).
    pub line: usize,
    /// The stimulus line (last `<` or call before it) and the line itself,
    /// as written in the script.
    pub lines: Vec<String>,
    /// Expected, in script syntax (normalized).
    pub expected: String,
    /// What the target did (normalized).
    pub actual: String,
    pub class: Class,
    /// Why: the rule, row or parameter that explains it, or why nothing does.
    pub reason: String,
    /// Table rows involved (the active row first).
    pub rows: Vec<String>,
    /// Profile parameters involved, `profile.param = value (source)`.
    pub params: Vec<String>,
    /// RFC sections involved.
    pub rfc: Vec<String>,
    /// The rest of the script still applies (same next state): the line
    /// can be masked and the script run on. Not part of the report.
    pub continues: bool,
}

impl Divergence {
    /// What makes two divergences the same for `docs/divergences.md`.
    pub fn key(&self) -> String {
        format!(
            "{}|{}|{}|{}",
            self.class.name(),
            self.kind.trim_start_matches("trace-"),
            self.reason,
            self.rows.join(",")
        )
    }
}

/// The classified result of one script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptDiff {
    /// The script's path as given.
    pub script: String,
    pub profile: Profile,
    /// Targets compared (the reference first).
    pub targets: Vec<String>,
    /// Targets skipped, with the reason.
    pub skipped: Vec<String>,
    /// Per target: how its last run ended, without times.
    pub outcomes: Vec<String>,
    pub divergences: Vec<Divergence>,
}

/// What to compare.
#[derive(Debug, Clone)]
pub struct DiffOptions {
    /// Target names; `own` is added as the reference when missing.
    pub targets: Vec<String>,
    pub profile: Profile,
    /// Live targets skip scripts whose timeline (on `own`) is longer.
    pub max_timeline_us: Option<Micros>,
}

impl Default for DiffOptions {
    fn default() -> Self {
        DiffOptions {
            targets: vec!["own".into(), "linux".into()],
            profile: Profile::Rfc9293,
            max_timeline_us: None,
        }
    }
}

/// Makes a fresh target by name.
pub type MakeTarget<'a> = dyn FnMut(&str, Profile) -> Result<Box<dyn Target>, String> + 'a;

/// Reads `path` and compares it on the targets of `opts`.
pub fn diff_file(path: &std::path::Path, opts: &DiffOptions) -> ScriptDiff {
    let shown = path.display().to_string();
    match std::fs::read_to_string(path) {
        Ok(text) => diff_text(&shown, &text, opts, &mut suite::make_target),
        Err(e) => ScriptDiff {
            script: shown.clone(),
            profile: opts.profile,
            targets: Vec::new(),
            skipped: vec![format!("all: cannot read {shown}: {e}")],
            outcomes: Vec::new(),
            divergences: Vec::new(),
        },
    }
}

/// Compares `text` on every target of `opts`, one at a time.
pub fn diff_text(
    path: &str,
    text: &str,
    opts: &DiffOptions,
    make: &mut MakeTarget<'_>,
) -> ScriptDiff {
    let mut out = ScriptDiff {
        script: path.to_string(),
        profile: opts.profile,
        targets: vec![REFERENCE.to_string()],
        skipped: Vec::new(),
        outcomes: Vec::new(),
        divergences: Vec::new(),
    };
    let spec = match Spec::bundled() {
        Ok(s) => s,
        Err(e) => {
            out.skipped
                .push(format!("all: the table does not load: {e}"));
            return out;
        }
    };
    let reference = match make(REFERENCE, opts.profile) {
        Ok(mut t) => run_text(path, text, t.as_mut(), &RunOptions::default()),
        Err(e) => {
            out.skipped.push(format!("{REFERENCE}: {e}"));
            return out;
        }
    };
    let ctx = Ctx {
        spec,
        profile: opts.profile,
        script: text,
        reference: &reference.trace,
    };
    let mut reports = vec![(REFERENCE.to_string(), reference.clone())];
    out.outcomes
        .push(format!("{REFERENCE}: {}", outcome_text(&reference)));
    if let Outcome::Failed(f) = &reference.outcome {
        out.divergences
            .extend(ctx.classify(REFERENCE, f, &reference.trace));
    }
    for name in &opts.targets {
        if name == REFERENCE || out.targets.contains(name) {
            continue;
        }
        if let Some(max) = opts.max_timeline_us {
            if reference.end_time > max {
                out.skipped.push(format!(
                    "{name}: timeline {:.0} s is longer than {:.0} s",
                    reference.end_time as f64 / 1e6,
                    max as f64 / 1e6
                ));
                continue;
            }
        }
        let mut script = text.to_string();
        let mut last = None;
        for _ in 0..=MAX_MASKS {
            let mut target = match make(name, opts.profile) {
                Ok(t) => t,
                Err(e) => {
                    out.skipped.push(format!("{name}: {e}"));
                    break;
                }
            };
            let report = run_text(path, &script, target.as_mut(), &RunOptions::default());
            drop(target);
            let Outcome::Failed(f) = &report.outcome else {
                last = Some(report);
                break;
            };
            let found = ctx.classify(name, f, &report.trace);
            let masked = found
                .iter()
                .all(|d| d.class != Class::Violation)
                .then(|| mask(&script, f, &found))
                .flatten();
            out.divergences.extend(found);
            match masked {
                Some(s) => {
                    script = s;
                    last = Some(report);
                }
                None => {
                    last = Some(report);
                    break;
                }
            }
        }
        if let Some(r) = last {
            out.targets.push(name.clone());
            out.outcomes.push(format!("{name}: {}", outcome_text(&r)));
            out.divergences
                .extend(ctx.compare_traces(name, &r.trace, &reference.trace));
            reports.push((name.clone(), r));
        }
    }
    out
}

/// The outcome without times or raw numbers.
fn outcome_text(r: &RunReport) -> String {
    match &r.outcome {
        Outcome::Passed => "passed".into(),
        // The line is in the divergences; where a run stops can race.
        Outcome::Failed(_) => "stopped".into(),
        Outcome::NotApplicable(e) => format!("not applicable: {e}"),
        Outcome::Error(e) => format!(
            "error: {}",
            strip_times(e.split(" (scripted").next().unwrap_or(e))
        ),
    }
}

/// The script with the line of `f` masked so that the allowed variation no
/// longer stops the run; `None` when it cannot be masked.
fn mask(script: &str, f: &Failure, found: &[Divergence]) -> Option<String> {
    let mut lines: Vec<String> = script.lines().map(str::to_string).collect();
    let line = lines.get_mut(f.line.checked_sub(1)?)?;
    let before = line.clone();
    for d in found {
        match d.kind.as_str() {
            "missing" if d.continues => *line = String::new(),
            "window" => {
                let toks: Vec<&str> = line.split_whitespace().collect();
                if let Some(i) = toks.iter().position(|t| *t == "win") {
                    let w = format!(" win {}", toks.get(i + 1)?);
                    *line = line.replacen(&w, "", 1);
                }
            }
            "options" => {
                let start = line.find("> ")? + 2;
                if let Some(o) = line[start..].find('<') {
                    let o = start + o;
                    let close = line.rfind('>')?;
                    if close > o {
                        line.replace_range(o..=close, "<...>");
                    }
                }
            }
            "psh" => {
                let actual = PacketText::parse(&d.actual)?;
                let start = line.find("> ")? + 2;
                let end = start + line[start..].find(' ')?;
                line.replace_range(start..end, &actual.flags);
            }
            _ => return None,
        }
    }
    (*line != before).then(|| lines.join("\n") + "\n")
}

/// A packet in script syntax, split into its fields.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct PacketText {
    flags: String,
    seq: String,
    ack: Option<String>,
    win: Option<String>,
    options: Option<String>,
}

impl PacketText {
    fn parse(text: &str) -> Option<PacketText> {
        let text = text.trim();
        let rest = text
            .strip_prefix("> ")
            .or_else(|| text.strip_prefix("< "))?;
        let (head, options) = match rest.find('<') {
            Some(i) => (&rest[..i], Some(rest[i..].trim().to_string())),
            None => (rest, None),
        };
        let toks: Vec<&str> = head.split_whitespace().collect();
        let after = |k: &str| {
            toks.iter()
                .position(|t| *t == k)
                .and_then(|i| toks.get(i + 1))
                .map(|s| s.to_string())
        };
        Some(PacketText {
            flags: toks.first()?.to_string(),
            seq: toks.get(1).map(|s| s.to_string()).unwrap_or_default(),
            ack: after("ack"),
            win: after("win"),
            options,
        })
    }

    /// Control bits that the table's templates name, in a fixed order.
    fn ctl(&self) -> Vec<Ctl> {
        ctl_of(&self.flags)
    }

    /// Carries payload: `a:b(len)` with len > 0.
    fn occupies(&self) -> bool {
        self.seq
            .split_once('(')
            .is_some_and(|(_, l)| l.trim_end_matches(')') != "0")
    }

    fn has_syn(&self) -> bool {
        self.flags.contains('S')
    }

    /// The sequence number just past this segment: the end of its payload,
    /// plus one for a SYN or FIN (RFC 9293 3.4).
    fn end(&self) -> Option<u64> {
        let (_, rest) = self.seq.split_once(':')?;
        let (end, _) = rest.split_once('(')?;
        let ctl = u64::from(self.flags.contains('S')) + u64::from(self.flags.contains('F'));
        Some(end.parse::<u64>().ok()? + ctl)
    }
}

fn ctl_of(flags: &str) -> Vec<Ctl> {
    let mut v = Vec::new();
    for (c, ctl) in [
        ('S', Ctl::Syn),
        ('.', Ctl::Ack),
        ('F', Ctl::Fin),
        ('R', Ctl::Rst),
    ] {
        if flags.contains(c) {
            v.push(ctl);
        }
    }
    v.sort();
    v
}

fn ctl_text(v: &[Ctl]) -> String {
    if v.is_empty() {
        return "nothing".into();
    }
    v.iter().map(|c| c.name()).collect::<Vec<_>>().join(",")
}

/// Replaces `TS val N ecr M` values and bare `S.ssssss` times by `*`.
pub fn normalize(text: &str) -> String {
    let mut out = Vec::new();
    let mut toks = text.split(' ').peekable();
    while let Some(t) = toks.next() {
        out.push(t.to_string());
        if t == "val" || t == "ecr" {
            if let Some(n) = toks.next() {
                let digits = n.len() - n.trim_start_matches(|c: char| c.is_ascii_digit()).len();
                let tail = &n[digits..];
                out.push(format!("*{tail}"));
            }
        }
    }
    out.join(" ")
}

/// Drops `S.ssssss` times from a message.
fn strip_times(s: &str) -> String {
    s.split(' ')
        .map(|w| {
            let core = w.trim_matches(|c: char| !c.is_ascii_digit() && c != '.');
            let is_time = core.len() > 7
                && core.split_once('.').is_some_and(|(a, b)| {
                    b.len() == 6
                        && a.chars().all(|c| c.is_ascii_digit())
                        && b.chars().all(|c| c.is_ascii_digit())
                });
            if is_time {
                w.replace(core, "*")
            } else {
                w.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Seconds rounded to 0.1 s, as `≈0.3 s`.
fn secs(us: f64) -> String {
    format!("≈{:.1} s", (us / 1e5).round() / 10.0)
}

fn param_text(spec: &Spec, p: Profile, name: &str) -> String {
    let params = &spec.profile(p).params;
    let s = match name {
        "rto_initial_ms" => &params.rto_initial_ms,
        "rto_min_ms" => &params.rto_min_ms,
        "rto_max_ms" => &params.rto_max_ms,
        "clock_granularity_ms" => &params.clock_granularity_ms,
        "challenge_ack_per_sec" => &params.challenge_ack_per_sec,
        "delayed_ack_max_ms" => &params.delayed_ack_max_ms,
        _ => return format!("{p}.{name}"),
    };
    format!("{p}.{name} = {} ({})", s.value, s.source)
}

/// What the classifier works with.
struct Ctx<'a> {
    spec: &'a Spec,
    profile: Profile,
    script: &'a str,
    reference: &'a Trace,
}

/// A stimulus: an injected packet or a completed call.
#[derive(Clone, Copy, PartialEq, Eq)]
enum StimKind {
    In,
    Call,
}

fn stim_kind(k: &TraceKind) -> Option<StimKind> {
    match k {
        TraceKind::PacketIn { .. } => Some(StimKind::In),
        TraceKind::Call { .. } => Some(StimKind::Call),
        _ => None,
    }
}

impl Ctx<'_> {
    fn script_line(&self, n: usize) -> String {
        self.script
            .lines()
            .nth(n.saturating_sub(1))
            .map(|l| l.trim().to_string())
            .unwrap_or_default()
    }

    /// The last `<` or call line before `line` in the script.
    fn stimulus_line(&self, line: usize) -> Option<usize> {
        let lines: Vec<&str> = self.script.lines().collect();
        (1..line).rev().find(|&n| {
            let l = lines.get(n - 1).map(|l| l.trim()).unwrap_or("");
            if l.is_empty() || l.starts_with("//") || l.starts_with("--") {
                return false;
            }
            let body = l
                .split_once(char::is_whitespace)
                .map_or("", |(_, b)| b)
                .trim();
            body.starts_with('<') || body.contains('(')
        })
    }

    fn base(&self, target: &str, kind: &str, f: &Failure) -> Divergence {
        let mut lines = Vec::new();
        if let Some(s) = self.stimulus_line(f.line) {
            lines.push(format!("{s}: {}", self.script_line(s)));
        }
        lines.push(format!("{}: {}", f.line, self.script_line(f.line)));
        Divergence {
            target: target.to_string(),
            kind: kind.to_string(),
            line: f.line,
            lines,
            expected: normalize(f.expected.as_deref().unwrap_or("")),
            actual: normalize(f.actual.as_deref().unwrap_or("")),
            class: Class::Violation,
            reason: String::new(),
            rows: Vec::new(),
            params: Vec::new(),
            rfc: Vec::new(),
            continues: false,
        }
    }

    /// Classifies a departure from the script.
    fn classify(&self, target: &str, f: &Failure, trace: &Trace) -> Vec<Divergence> {
        let m = f.message.as_str();
        if let Some(list) = m.strip_prefix("outbound packet differs: ") {
            return self.field_diffs(target, f, trace, list);
        }
        if m.contains("too early") || m.starts_with("expected packet not sent") {
            let early = m.contains("too early");
            let mut out = Vec::new();
            let exp = f.expected.as_deref().and_then(PacketText::parse);
            let act = f.actual.as_deref().and_then(PacketText::parse);
            if let Some(t) = self.timing(target, f, trace) {
                out.push(t);
            }
            if early {
                if let (Some(e), Some(a)) = (&exp, &act) {
                    if e.seq != a.seq || e.ctl() != a.ctl() || e.ack != a.ack {
                        out.push(self.response(target, "response", f, trace, Some(a), true));
                    }
                }
                return out;
            }
            if out.is_empty() {
                out.push(self.response(target, "missing", f, trace, None, false));
            }
            return out;
        }
        if m.starts_with("unexpected outbound packet") {
            let Some(act) = f.actual.as_deref().and_then(PacketText::parse) else {
                return vec![self.response(target, "extra", f, trace, None, false)];
            };
            return self.unscripted(target, f, trace, &act, "extra");
        }
        let mut d = self.base(target, "call", f);
        let (state, row) = self.active_row_at(trace, trace.entries.len());
        if let Some(r) = row {
            d.rows.push(r.to_string());
        }
        let what = match m.strip_prefix("call returned at ") {
            Some(rest) => {
                let at = rest.split_whitespace().next().and_then(parse_secs);
                let lo = rest
                    .split_once("(scripted ")
                    .and_then(|(_, r)| r.split_once(".."))
                    .and_then(|(lo, _)| parse_secs(lo));
                match (at, lo) {
                    (Some(a), Some(l)) if a < l => {
                        "the call returned earlier than scripted".to_string()
                    }
                    _ => "the call returned later than scripted".to_string(),
                }
            }
            None => strip_times(m.split(" (scripted").next().unwrap_or(m)),
        };
        d.reason = format!(
            "no profile explains it: {what} (state {})",
            state.map_or("?", |s| s.name())
        );
        vec![d]
    }

    /// Rule 1 (sender's choice) or rule 3 for a packet that differs.
    fn field_diffs(&self, target: &str, f: &Failure, trace: &Trace, list: &str) -> Vec<Divergence> {
        let exp = f.expected.as_deref().and_then(PacketText::parse);
        let act = f.actual.as_deref().and_then(PacketText::parse);
        let (Some(exp), Some(act)) = (exp, act) else {
            let mut d = self.base(target, "response", f);
            d.reason = "no profile explains it: the packet cannot be read".into();
            return vec![d];
        };
        let items: Vec<&str> = list.split("; ").collect();
        let field = |i: &&str| i.split_whitespace().next().unwrap_or("").to_string();
        let psh_only = exp.flags.replace('P', "") == act.flags.replace('P', "");
        let open: Vec<String> = items
            .iter()
            .filter(|i| !(field(i) == "flags" && psh_only))
            .map(field)
            .collect();
        let minor = open.iter().all(|k| k == "win" || k == "options");
        if !minor {
            return self.unscripted(target, f, trace, &act, "response");
        }
        let syn = act.has_syn();
        let mut out = Vec::new();
        let mut push = |kind: &str, reason: &str, rfc: &[&str], ok: bool| {
            let mut d = self.base(target, kind, f);
            d.class = if ok { Class::Allowed } else { Class::Violation };
            d.continues = ok;
            d.reason = reason.to_string();
            d.rfc = rfc.iter().map(|s| s.to_string()).collect();
            out.push(d);
        };
        if items.iter().any(|i| field(i) == "flags") {
            push(
                "psh",
                "PSH is the sender's choice",
                &["RFC9293 3.9.1.2"],
                true,
            );
        }
        let sender = "options and initial window are the sender's choice";
        let sender_rfc = ["RFC9293 3.7.1", "RFC7323 2-3", "RFC2018 2"];
        if open.iter().any(|k| k == "win") {
            if syn {
                push("window", sender, &sender_rfc, true);
            } else {
                push(
                    "window",
                    "the advertised window is the receiver's choice",
                    &["RFC9293 3.8.6"],
                    true,
                );
            }
        }
        if open.iter().any(|k| k == "options") {
            let ts = act.options.as_deref().unwrap_or("").contains("TS val");
            if syn {
                push("options", sender, &sender_rfc, true);
            } else if ts {
                push(
                    "options",
                    "timestamps go on every segment once negotiated",
                    &["RFC7323 3.2"],
                    true,
                );
            } else {
                push(
                    "options",
                    "no profile explains it: options differ on a segment without SYN",
                    &[],
                    false,
                );
            }
        }
        out
    }

    /// A packet the script did not expect here: a retransmission (rule 2,
    /// measured from its previous transmission), new data (the sender's
    /// choice of how much to send), or an answer (rule 3).
    fn unscripted(
        &self,
        target: &str,
        f: &Failure,
        trace: &Trace,
        act: &PacketText,
        kind: &str,
    ) -> Vec<Divergence> {
        let occupies = act.occupies() || act.flags.contains(['S', 'F']);
        let sent_before = trace
            .entries
            .iter()
            .filter(|e| matches!(&e.kind, TraceKind::PacketOut { text, .. } if PacketText::parse(text).is_some_and(|p| p.seq == act.seq)))
            .count()
            > 1;
        if occupies && sent_before {
            let mut g = f.clone();
            g.message = "unscripted retransmission".into();
            if let Some(mut d) = self.timing(target, &g, trace) {
                if d.class != Class::Violation {
                    // Anchored on the line of the original transmission:
                    // where a timer-driven packet lands among the later
                    // lines is a race.
                    if let Some(n) = self.original_line(act) {
                        d.line = n;
                        d.lines = vec![format!("{n}: {}", self.script_line(n))];
                    }
                    return vec![d];
                }
            }
        }
        if act.ctl() == [Ctl::Ack] && !act.occupies() && Self::first_ack_of_input(trace, act) {
            // The first acknowledgment of what the peer sent: the row that
            // took it in asked for this ACK, and may delay it (RFC 9293
            // 3.8.6.3, RFC 1122 4.2.3.2) but need not; when the script
            // expected it later (or piggybacked), sending it at once
            // conforms.
            let mut d = self.base(target, kind, f);
            d.class = Class::Conforms;
            d.reason = "the acknowledgment of received data, sent at once instead of delayed (or carried by a later segment)".into();
            d.rfc = vec!["RFC9293 3.8.6.3".into(), "RFC1122 4.2.3.2".into()];
            return vec![d];
        }
        if act.occupies() && !sent_before {
            let mut d = self.base(target, kind, f);
            d.class = Class::Allowed;
            d.reason =
                "how much new data to send at once is the sender's choice within the peer's window"
                    .into();
            d.rfc = vec!["RFC9293 3.8.6.2.1".into(), "RFC5681 3.1".into()];
            return vec![d];
        }
        let values = f.message.contains("seq ") || f.message.contains("ack ");
        let mut d = self.response(target, kind, f, trace, Some(act), false);
        if values && d.class != Class::Violation {
            let same_ctl = f
                .expected
                .as_deref()
                .and_then(PacketText::parse)
                .is_some_and(|e| e.ctl() == act.ctl());
            if same_ctl && d.class == Class::Conforms {
                d.class = Class::Violation;
                d.reason = format!(
                    "no profile explains it: the control bits are row {}'s, but its SEQ/ACK are not what the target sent",
                    d.rows.first().map_or("?", String::as_str)
                );
            }
        }
        vec![d]
    }

    /// Whether `act` is the first acknowledgment of an inbound segment:
    /// its number is where some inbound packet of `trace` ended, and no
    /// outbound packet before the last one carried it yet.
    fn first_ack_of_input(trace: &Trace, act: &PacketText) -> bool {
        let Some(ack) = act.ack.as_deref().and_then(|a| a.parse::<u64>().ok()) else {
            return false;
        };
        let parsed = |inbound: bool| -> Vec<PacketText> {
            trace
                .entries
                .iter()
                .filter_map(|e| match &e.kind {
                    TraceKind::PacketOut { text, .. } if !inbound => PacketText::parse(text),
                    TraceKind::PacketIn { text, .. } if inbound => PacketText::parse(text),
                    _ => None,
                })
                .collect()
        };
        let outs = parsed(false);
        let earlier = &outs[..outs.len().saturating_sub(1)];
        let acked_before = earlier.iter().any(|p| p.ack == act.ack);
        let ends_input = parsed(true).iter().any(|p| p.end() == Some(ack));
        ends_input && !acked_before
    }

    /// The first `>` line of the script with the same control bits and
    /// sequence numbers as `p` (PSH and ACK values aside).
    fn original_line(&self, p: &PacketText) -> Option<usize> {
        self.script.lines().enumerate().find_map(|(i, l)| {
            let body = l.trim().split_once(char::is_whitespace)?.1.trim();
            let q = PacketText::parse(body).filter(|_| body.starts_with('>'))?;
            (q.ctl() == p.ctl() && q.seq == p.seq).then_some(i + 1)
        })
    }

    /// The reference's transition for the stimulus at entry `idx` of the
    /// target's `trace` (matched by position: the n-th injected packet or
    /// the n-th call): (state before, state after, row).
    fn reference_step(&self, trace: &Trace, idx: usize) -> Option<(State, State, &'static str)> {
        let kind = stim_kind(&trace.entries.get(idx)?.kind)?;
        let n = trace.entries[..=idx]
            .iter()
            .filter(|e| stim_kind(&e.kind) == Some(kind))
            .count();
        let ridx = self
            .reference
            .entries
            .iter()
            .enumerate()
            .filter(|(_, e)| stim_kind(&e.kind) == Some(kind))
            .nth(n.checked_sub(1)?)
            .map(|(i, _)| i)?;
        for e in &self.reference.entries[ridx + 1..] {
            match &e.kind {
                TraceKind::Transition { from, to, row, .. } => return Some((*from, *to, row)),
                TraceKind::PacketIn { .. } | TraceKind::Call { .. } => break,
                _ => {}
            }
        }
        None
    }

    /// The latest stimulus in `trace` the reference logged a row for: the
    /// later of the last injected packet and the last call, else the other.
    fn last_stimulus(&self, trace: &Trace) -> Option<(usize, (State, State, &'static str))> {
        let last = |k: StimKind| {
            trace
                .entries
                .iter()
                .rposition(|e| stim_kind(&e.kind) == Some(k))
        };
        let mut idx: Vec<usize> = [last(StimKind::In), last(StimKind::Call)]
            .into_iter()
            .flatten()
            .collect();
        idx.sort_unstable_by(|a, b| b.cmp(a));
        idx.into_iter()
            .find_map(|i| self.reference_step(trace, i).map(|s| (i, s)))
    }

    /// The state and active row for the latest stimulus of `trace`.
    fn active_row_at(&self, trace: &Trace, _upto: usize) -> (Option<State>, Option<&'static str>) {
        match self.last_stimulus(trace) {
            Some((_, (from, _, row))) => (Some(from), Some(row)),
            None => (None, None),
        }
    }

    /// Rule 3: which profile's row predicts what the target sent in answer
    /// to the last stimulus (`actual`: the packet that differs, or none).
    /// With `timer`, the event is the retransmission timeout in the state
    /// the last stimulus left.
    fn response(
        &self,
        target: &str,
        kind: &str,
        f: &Failure,
        trace: &Trace,
        actual: Option<&PacketText>,
        timer: bool,
    ) -> Divergence {
        let mut d = self.base(target, kind, f);
        let found = self.last_stimulus(trace);
        // (control bits, occupies sequence space) of what the target sent.
        let mut observed: Vec<(Vec<Ctl>, bool)> = Vec::new();
        let mut stim_flags = None;
        let mut stim_at = 0;
        let stim = found.map(|(i, _)| i);
        if timer {
            if let Some(a) = actual {
                observed.push((a.ctl(), a.occupies() || a.flags.contains(['S', 'F'])));
            }
        } else if let Some(s) = stim {
            stim_at = trace.entries[s].at;
            if let TraceKind::PacketIn { bytes, .. } = &trace.entries[s].kind {
                stim_flags = wire::decode(bytes).ok();
            }
            for e in &trace.entries[s + 1..] {
                if let TraceKind::PacketOut { text, .. } = &e.kind {
                    if let Some(p) = PacketText::parse(text) {
                        observed.push((p.ctl(), p.occupies() || p.flags.contains(['S', 'F'])));
                    }
                }
            }
        }
        let seen = if observed.is_empty() {
            "nothing".to_string()
        } else {
            observed
                .iter()
                .map(|(c, data)| {
                    let data = *data && !c.contains(&Ctl::Syn) && !c.contains(&Ctl::Fin);
                    format!("{}{}", ctl_text(c), if data { " with data" } else { "" })
                })
                .collect::<Vec<_>>()
                .join(" + ")
        };
        let Some((_, (from, to, stim_row))) = found else {
            d.reason = format!(
                "no profile explains it: the target sent {seen}, and the reference logged no row for the stimulus"
            );
            return d;
        };
        let (state, row_id, candidates): (State, &str, Vec<Event>) = if timer {
            let ev = Event::Timeout {
                timeout: tcp_spec::Timeout::Retransmission,
            };
            match self.spec.step(self.profile, to, &ev) {
                Ok(r) => (to, r.id.as_str(), vec![ev]),
                Err(e) => {
                    d.reason = format!("no profile explains it: {e}");
                    return d;
                }
            }
        } else {
            // The abstract events the active row covers with these bits.
            let c = Event::possible(from)
                .iter()
                .filter(|e| match (e, &stim_flags) {
                    (Event::Segment(s), Some(w)) => {
                        s.syn == w.flags.syn
                            && s.fin == w.flags.fin
                            && s.rst == w.flags.rst
                            && s.payload == (w.payload_len > 0)
                            && (s.ack != tcp_spec::AckClass::Absent) == w.flags.ack
                    }
                    (Event::Segment(_), None) => false,
                    (_, None) => true,
                    _ => false,
                })
                .filter(|e| {
                    self.spec
                        .step(self.profile, from, e)
                        .is_ok_and(|r| r.id == stim_row)
                })
                .copied()
                .collect();
            (from, stim_row, c)
        };
        let Some(active) = self.spec.row(row_id) else {
            d.reason = format!("no profile explains it: unknown row {row_id}");
            return d;
        };
        d.rows.push(row_id.to_string());
        d.rfc.extend(active.rfc.iter().cloned());
        let matches = |r: &Row| {
            r.emit.len() == observed.len()
                && r.emit.iter().zip(&observed).all(|(t, (c, data))| {
                    let mut want = t.ctl.clone();
                    want.sort();
                    want == *c && (t.carries.is_none() || *data)
                })
        };
        if matches(active) {
            d.class = Class::Conforms;
            d.continues = true;
            d.reason = format!(
                "row {row_id} ({}) emits {seen}, as the target did: the script expects a segment the table does not prescribe here",
                self.profile
            );
            return d;
        }
        // Rate-limited challenge ACKs.
        if kind == "missing" && active.rate_limited {
            let last_ack = trace.entries[..stim.unwrap_or(0)]
                .iter()
                .rev()
                .find_map(|e| match &e.kind {
                    TraceKind::PacketOut { text, .. }
                        if PacketText::parse(text).is_some_and(|p| p.flags == ".") =>
                    {
                        Some(e.at)
                    }
                    _ => None,
                });
            if let Some(t) = last_ack {
                let gap_ms = stim_at.saturating_sub(t) / 1000;
                let suppresses = |p: Profile| {
                    let c = self.spec.profile(p).params.challenge_ack_per_sec.value;
                    // 5 % margin: the target's clock is not ours.
                    c > 0 && gap_ms * 20 < 19 * 1000 / c
                };
                let active_sup = suppresses(self.profile);
                if let Some(q) = Profile::ALL
                    .into_iter()
                    .find(|&q| q != self.profile && suppresses(q) && !active_sup)
                {
                    d.class = Class::Allowed;
                    d.continues = true;
                    d.reason = format!(
                        "the challenge ACK of row {row_id} is rate-limited: the {q} profile allows at most {} per second",
                        self.spec.profile(q).params.challenge_ack_per_sec.value
                    );
                    d.params
                        .push(param_text(self.spec, q, "challenge_ack_per_sec"));
                    if !d.rfc.iter().any(|r| r == "RFC5961 7") {
                        d.rfc.push("RFC5961 7".into());
                    }
                    return d;
                }
                if active_sup {
                    d.class = Class::Conforms;
                    d.continues = true;
                    d.reason = format!("row {row_id} is rate-limited under {}", self.profile);
                    d.params
                        .push(param_text(self.spec, self.profile, "challenge_ack_per_sec"));
                    return d;
                }
            }
        }
        // Another profile's row for the same events.
        let what = if timer {
            "the retransmission timeout".to_string()
        } else {
            stim_flags
                .as_ref()
                .map_or_else(|| "the call".to_string(), |w| format!("{}", w.flags))
        };
        for q in Profile::ALL {
            if q == self.profile {
                continue;
            }
            let mut rows: Vec<&Row> = candidates
                .iter()
                .filter_map(|e| self.spec.step(q, state, e).ok())
                .filter(|r| r.id != row_id)
                .collect();
            rows.sort_by(|a, b| a.id.cmp(&b.id));
            rows.dedup_by(|a, b| a.id == b.id);
            if let Some(r) = rows.into_iter().find(|r| matches(r)) {
                d.class = Class::Allowed;
                d.continues = r.next.resolve(state) == active.next.resolve(state);
                d.reason = format!(
                    "row {} ({q}) answers {what} in {state} with {seen}: {}",
                    r.id, r.effect
                );
                d.rows.push(r.id.clone());
                for s in &r.rfc {
                    if !d.rfc.contains(s) {
                        d.rfc.push(s.clone());
                    }
                }
                return d;
            }
        }
        let want = if active.emit.is_empty() {
            "nothing".to_string()
        } else {
            active
                .emit
                .iter()
                .map(|t| t.to_string())
                .collect::<Vec<_>>()
                .join(" ")
        };
        d.reason = format!(
            "no profile explains it: on {what} in {state}, row {row_id} emits {want}; the target sent {seen}"
        );
        d
    }

    /// Rule 2: a packet early or missing in its window, explained by the
    /// RTO model of some profile. `None` when the packet is not timer-driven
    /// (no earlier packet to measure from, or no model fits and it is not a
    /// retransmission).
    fn timing(&self, target: &str, f: &Failure, trace: &Trace) -> Option<Divergence> {
        // An unscripted retransmission is measured against the actual packet.
        let unscripted = !f.message.contains("(scripted ");
        let seg = if unscripted { &f.actual } else { &f.expected };
        let exp = PacketText::parse(seg.as_deref()?)?;
        let tol = tolerance(self.script);
        // The scripted time: "(scripted lo..hi)", lo = t - tolerance.
        let t_exp = f
            .message
            .split_once("(scripted ")
            .and_then(|(_, r)| r.trim_end_matches(')').split_once(".."))
            .and_then(|(lo, _)| parse_secs(lo))
            .map(|t| t + tol);
        let outs: Vec<(Micros, wire::WireSegment, String)> = trace
            .entries
            .iter()
            .filter_map(|e| match &e.kind {
                TraceKind::PacketOut { bytes, text } => {
                    wire::decode(bytes).ok().map(|w| (e.at, w, text.clone()))
                }
                _ => None,
            })
            .collect();
        let early = unscripted || f.message.contains("too early");
        // The observed packet: the one that differs (early), or none.
        let (t_obs, prior): (Option<Micros>, Vec<Micros>) = {
            let same = |t: &str| {
                PacketText::parse(t).is_some_and(|p| {
                    p.seq == exp.seq && (p.occupies() || p.flags.contains(['S', 'F']))
                })
            };
            let obs = if early {
                outs.iter()
                    .rev()
                    .find(|(_, _, t)| Some(t.as_str()) == f.actual.as_deref())
            } else {
                None
            };
            let cut = obs.map_or(Micros::MAX, |o| o.0);
            let prior = outs
                .iter()
                .filter(|(at, _, t)| *at < cut && same(t))
                .map(|o| o.0)
                .collect();
            (obs.map(|o| o.0), prior)
        };
        // Measured from the previous transmission of the segment, else from
        // the previous stimulus (the call or packet that armed the timer).
        let last_stim = trace
            .entries
            .iter()
            .filter(|e| stim_kind(&e.kind).is_some() && t_obs.is_none_or(|t| e.at <= t))
            .map(|e| e.at)
            .next_back();
        let base = prior.last().copied().or(last_stim)?;
        if prior.is_empty() && !early {
            return None;
        }
        let backoffs = prior.len().saturating_sub(1) as i32;
        let samples = rtt_samples(trace, t_obs.unwrap_or(Micros::MAX));
        let predict = |cfg: RtoConfig| {
            let mut est = RtoEstimator::new(cfg);
            for s in &samples {
                est.on_sample(*s);
            }
            for _ in 0..backoffs {
                est.on_timeout();
            }
            est.rto() * 1e6
        };
        let cfg_of = |p: Profile| RtoConfig::from_params(&self.spec.profile(p).params);
        let expected_gap = match t_exp {
            Some(t) => t as f64 - base as f64,
            None if prior.is_empty() => return None,
            None => predict(cfg_of(self.profile)),
        };
        let observed_gap = t_obs.map(|t| t.saturating_sub(base) as f64);
        let fits = |pred: f64| match observed_gap {
            Some(g) => (g - pred).abs() <= pred / 8.0 + 20_000.0 + tol as f64,
            // Missing: the profile's timer would fire after the window.
            None => pred > expected_gap + pred / 8.0 + 20_000.0 + tol as f64,
        };
        let mut d = self.base(target, "timing", f);
        let what = if prior.is_empty() {
            "first transmission"
        } else {
            "retransmission"
        };
        let shown = match observed_gap {
            Some(g) if unscripted => format!(
                "unscripted {what} after {} ({} expected)",
                secs(g),
                secs(expected_gap)
            ),
            Some(g) => format!("{what} after {} instead of {}", secs(g), secs(expected_gap)),
            None => format!("no {what} within {}", secs(expected_gap)),
        };
        d.rfc = vec!["RFC6298 2".into(), "RFC6298 5".into()];
        if observed_gap.is_none() {
            // Only a line the active RTO model itself predicts is timer-driven.
            let p = predict(cfg_of(self.profile));
            if (expected_gap - p).abs() > p / 8.0 + 20_000.0 + tol as f64 {
                return None;
            }
        }
        if fits(predict(cfg_of(self.profile))) {
            d.class = Class::Conforms;
            d.reason = format!("{shown}: the {} RTO model predicts it", self.profile);
            return Some(d);
        }
        let names = [
            "rto_min_ms",
            "rto_initial_ms",
            "rto_max_ms",
            "clock_granularity_ms",
        ];
        for q in Profile::ALL {
            if q == self.profile || !fits(predict(cfg_of(q))) {
                continue;
            }
            let a = cfg_of(self.profile);
            let b = cfg_of(q);
            let single: Vec<&str> = names
                .iter()
                .copied()
                .filter(|n| {
                    let mut c = a;
                    match *n {
                        "rto_min_ms" => c.min = b.min,
                        "rto_initial_ms" => c.initial = b.initial,
                        "rto_max_ms" => c.max = b.max,
                        _ => c.granularity = b.granularity,
                    }
                    fits(predict(c))
                })
                .collect();
            let used: Vec<&str> = if single.is_empty() {
                let differs = [
                    a.min != b.min,
                    a.initial != b.initial,
                    a.max != b.max,
                    a.granularity != b.granularity,
                ];
                names
                    .iter()
                    .zip(differs)
                    .filter(|(_, d)| *d)
                    .map(|(n, _)| *n)
                    .collect()
            } else {
                single
            };
            d.class = Class::Allowed;
            d.reason = format!(
                "{shown}: the {q} RTO model predicts it ({})",
                used.join(", ")
            );
            d.params = used.iter().map(|n| param_text(self.spec, q, n)).collect();
            return Some(d);
        }
        if prior.is_empty() && !early {
            return None;
        }
        d.reason = format!("no profile explains it: {shown} (no profile's RTO model predicts it)");
        Some(d)
    }

    /// Differences between a target's trace and the reference's where the
    /// script leaves fields open, aggregated per kind.
    fn compare_traces(&self, target: &str, trace: &Trace, reference: &Trace) -> Vec<Divergence> {
        let outs = |t: &Trace| -> Vec<(Micros, String)> {
            t.entries
                .iter()
                .filter_map(|e| match &e.kind {
                    TraceKind::PacketOut { text, .. } => Some((e.at, text.clone())),
                    _ => None,
                })
                .collect()
        };
        let (a, b) = (outs(reference), outs(trace));
        let mut found: BTreeMap<&'static str, (usize, String, String, bool)> = BTreeMap::new();
        for ((_, ra), (_, rb)) in a.iter().zip(b.iter()) {
            let (Some(pa), Some(pb)) = (PacketText::parse(ra), PacketText::parse(rb)) else {
                break;
            };
            if pa.flags.replace('P', "") != pb.flags.replace('P', "")
                || pa.seq != pb.seq
                || pa.ack != pb.ack
            {
                break;
            }
            let syn = pa.has_syn();
            let mut note = |k: &'static str| {
                let e = found
                    .entry(k)
                    .or_insert((0, normalize(ra), normalize(rb), syn));
                e.0 += 1;
            };
            if pa.win != pb.win {
                note("trace-window");
            }
            let strip_ts = |o: &Option<String>| o.as_deref().map(normalize);
            if strip_ts(&pa.options) != strip_ts(&pb.options) {
                note("trace-options");
            }
        }
        let mut out = Vec::new();
        for (kind, (_n, ra, rb, syn)) in found {
            let mut d = Divergence {
                target: format!("{REFERENCE} vs {target}"),
                kind: kind.to_string(),
                line: 0,
                lines: Vec::new(),
                expected: ra,
                actual: rb,
                class: Class::Allowed,
                reason: String::new(),
                rows: Vec::new(),
                params: Vec::new(),
                rfc: Vec::new(),
                continues: false,
            };
            match (kind, syn) {
                ("trace-options", false) if !d.actual.contains("TS val") => {
                    d.class = Class::Violation;
                    d.reason =
                        "no profile explains it: options differ on a segment without SYN".into();
                }
                ("trace-options", false) => {
                    d.reason = "timestamps go on every segment once negotiated".into();
                    d.rfc = vec!["RFC7323 3.2".into()];
                }
                (_, true) => {
                    d.reason = "options and initial window are the sender's choice".into();
                    d.rfc = vec![
                        "RFC9293 3.7.1".into(),
                        "RFC7323 2-3".into(),
                        "RFC2018 2".into(),
                    ];
                }
                _ => {
                    d.reason = "the advertised window is the receiver's choice".into();
                    d.rfc = vec!["RFC9293 3.8.6".into()];
                }
            }
            out.push(d);
        }
        out
    }
}

/// The script's `--tolerance_usecs` (µs).
fn tolerance(script: &str) -> u64 {
    crate::script::parse("", script)
        .ok()
        .and_then(|s| s.tolerance_usecs())
        .unwrap_or(super::DEFAULT_TOLERANCE_USECS)
}

fn parse_secs(s: &str) -> Option<Micros> {
    let (a, b) = s.trim().split_once('.')?;
    Some(a.parse::<u64>().ok()? * 1_000_000 + b.parse::<u64>().ok()?)
}

/// RTT samples (RFC 6298 §3) in a trace before `until`: each segment that
/// occupies sequence space and was sent once, timed to the first injected
/// ACK covering it. Karn: a retransmitted segment gives no sample.
fn rtt_samples(trace: &Trace, until: Micros) -> Vec<Sample> {
    let mut sent: Vec<(Micros, u32, u32, usize)> = Vec::new(); // at, seq, end, count
    let mut out = Vec::new();
    for e in trace.entries.iter().filter(|e| e.at < until) {
        match &e.kind {
            TraceKind::PacketOut { bytes, .. } => {
                let Ok(w) = wire::decode(bytes) else { continue };
                let len = w.payload_len + u32::from(w.flags.syn) + u32::from(w.flags.fin);
                if len == 0 {
                    continue;
                }
                match sent.iter_mut().find(|s| s.1 == w.seq) {
                    Some(s) => s.3 += 1,
                    None => sent.push((e.at, w.seq, w.seq.wrapping_add(len), 1)),
                }
            }
            TraceKind::PacketIn { bytes, .. } => {
                let Ok(w) = wire::decode(bytes) else { continue };
                if !w.flags.ack {
                    continue;
                }
                sent.retain(|s| {
                    let covered = (w.ack.wrapping_sub(s.2) as i32) >= 0;
                    if covered {
                        out.push(Sample {
                            rtt: e.at.saturating_sub(s.0) as f64 / 1e6,
                            retransmitted: s.3 > 1,
                        });
                    }
                    !covered
                });
            }
            _ => {}
        }
    }
    out
}

// ----- reports -------------------------------------------------------------

impl Divergence {
    fn to_json(&self) -> Value {
        json!({
            "target": self.target,
            "kind": self.kind,
            "line": self.line,
            "lines": self.lines,
            "expected": self.expected,
            "actual": self.actual,
            "class": self.class.name(),
            "reason": self.reason,
            "rows": self.rows,
            "params": self.params,
            "rfc": self.rfc,
        })
    }

    fn from_json(v: &Value) -> Result<Divergence, String> {
        let s = |k: &str| {
            v.get(k)
                .and_then(Value::as_str)
                .map(str::to_string)
                .ok_or_else(|| format!("divergence: `{k}` missing"))
        };
        let list = |k: &str| -> Result<Vec<String>, String> {
            v.get(k)
                .and_then(Value::as_array)
                .ok_or_else(|| format!("divergence: `{k}` missing"))?
                .iter()
                .map(|x| {
                    x.as_str()
                        .map(str::to_string)
                        .ok_or_else(|| format!("divergence: `{k}` holds a non-string"))
                })
                .collect()
        };
        let class = s("class")?;
        Ok(Divergence {
            target: s("target")?,
            kind: s("kind")?,
            line: v.get("line").and_then(Value::as_u64).unwrap_or(0) as usize,
            lines: list("lines")?,
            expected: s("expected")?,
            actual: s("actual")?,
            class: Class::from_name(&class).ok_or_else(|| format!("unknown class `{class}`"))?,
            reason: s("reason")?,
            rows: list("rows")?,
            params: list("params")?,
            rfc: list("rfc")?,
            continues: false,
        })
    }
}

impl ScriptDiff {
    /// Everything, with stable field names.
    pub fn to_json(&self) -> Value {
        json!({
            "script": self.script,
            "profile": self.profile.name(),
            "targets": self.targets,
            "skipped": self.skipped,
            "outcomes": self.outcomes,
            "divergences": self.divergences.iter().map(Divergence::to_json).collect::<Vec<_>>(),
        })
    }

    /// Reads [`ScriptDiff::to_json`] back.
    pub fn from_json(v: &Value) -> Result<ScriptDiff, String> {
        let strs = |k: &str| -> Vec<String> {
            v.get(k)
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|x| x.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default()
        };
        let profile = v
            .get("profile")
            .and_then(Value::as_str)
            .ok_or("`profile` missing")?
            .parse::<Profile>()
            .map_err(|e| e.to_string())?;
        Ok(ScriptDiff {
            script: v
                .get("script")
                .and_then(Value::as_str)
                .ok_or("`script` missing")?
                .to_string(),
            profile,
            targets: strs("targets"),
            skipped: strs("skipped"),
            outcomes: strs("outcomes"),
            divergences: v
                .get("divergences")
                .and_then(Value::as_array)
                .ok_or("`divergences` missing")?
                .iter()
                .map(Divergence::from_json)
                .collect::<Result<_, _>>()?,
        })
    }

    /// Parses [`ScriptDiff::snapshot`] text (an insta `.snap` file's body or
    /// the whole file with its `---` header).
    pub fn from_snapshot(text: &str) -> Result<ScriptDiff, String> {
        let body = match text.strip_prefix("---") {
            Some(rest) => rest.split_once("\n---\n").map_or(text, |(_, b)| b),
            None => text,
        };
        let v: Value = serde_json::from_str(body).map_err(|e| format!("snapshot: {e}"))?;
        ScriptDiff::from_json(&v)
    }

    /// The stable text recorded as a snapshot: pretty JSON, no raw times.
    pub fn snapshot(&self) -> String {
        serde_json::to_string_pretty(&self.to_json()).unwrap_or_default()
    }

    /// The worst class found, or `None` without divergences.
    pub fn worst(&self) -> Option<Class> {
        self.divergences.iter().map(|d| d.class).max()
    }

    /// A human-readable report.
    pub fn text(&self) -> String {
        let mut s = format!(
            "{} (profile {}; targets {})\n",
            self.script,
            self.profile,
            self.targets.join(", ")
        );
        for k in &self.skipped {
            let _ = writeln!(s, "  skipped: {k}");
        }
        for o in &self.outcomes {
            let _ = writeln!(s, "  run {o}");
        }
        if self.divergences.is_empty() && self.targets.len() > 1 {
            s.push_str("  no divergence\n");
        }
        for d in &self.divergences {
            let at = if d.line > 0 {
                format!("line {}", d.line)
            } else {
                "trace".into()
            };
            let _ = writeln!(
                s,
                "  [{}] {} {at} ({}): {}",
                d.class.name(),
                d.target,
                d.kind,
                d.reason
            );
            if !d.expected.is_empty() {
                let _ = writeln!(s, "      expected: {}", d.expected);
            }
            if !d.actual.is_empty() {
                let _ = writeln!(s, "      actual:   {}", d.actual);
            }
            for (label, v) in [("rows", &d.rows), ("params", &d.params), ("rfc", &d.rfc)] {
                if !v.is_empty() {
                    let _ = writeln!(s, "      {label}: {}", v.join("; "));
                }
            }
        }
        s
    }
}

/// `docs/divergences.md`: one entry per distinct divergence of `target`
/// across `diffs`, with the script lines that show it.
pub fn markdown(diffs: &[ScriptDiff], target: &str) -> String {
    let mut groups: BTreeMap<(Class, String), Vec<(&ScriptDiff, &Divergence)>> = BTreeMap::new();
    for sd in diffs {
        for d in &sd.divergences {
            if d.target == target || d.target == format!("{REFERENCE} vs {target}") {
                groups.entry((d.class, d.key())).or_default().push((sd, d));
            }
        }
    }
    let profile = diffs.first().map_or(Profile::Rfc9293, |d| d.profile);
    let mut s = String::new();
    let _ = writeln!(s, "# Divergences of `{target}` from the specification\n");
    let _ = writeln!(
        s,
        "Generated by `tcp_harness::run::diff::markdown` from the snapshots in\n\
         `tests/snapshots/live__*.snap` (profile `{profile}`); do not edit by hand.\n\
         Regenerate: `cargo test -p tcpconform --test live -- --ignored regenerate_divergences`.\n"
    );
    let count = |c: Class| groups.keys().filter(|(k, _)| *k == c).count();
    let _ = writeln!(
        s,
        "{} distinct divergences: {} violations, {} allowed variations, {} conforming.\n",
        groups.len(),
        count(Class::Violation),
        count(Class::Allowed),
        count(Class::Conforms)
    );
    let skipped: Vec<String> = diffs
        .iter()
        .flat_map(|d| {
            d.skipped
                .iter()
                .filter(|k| k.starts_with(&format!("{target}:")))
                .map(move |k| {
                    format!(
                        "- `{}`: {}",
                        d.script,
                        k.trim_start_matches(&format!("{target}: "))
                    )
                })
        })
        .collect();
    let clean: Vec<String> = diffs
        .iter()
        .filter(|d| d.targets.iter().any(|t| t == target) && d.divergences.is_empty())
        .map(|d| format!("`{}`", d.script))
        .collect();
    for (n, ((class, _), items)) in (1..).zip(&groups) {
        let (sd, d) = items[0];
        let at = if d.line > 0 {
            format!("line {}", d.line)
        } else {
            "trace comparison".into()
        };
        let _ = writeln!(s, "## {n}. {} — {}\n", class.name(), d.kind);
        let _ = writeln!(s, "{}\n", d.reason);
        let _ = writeln!(s, "Shown by `{}` {at}:\n", sd.script);
        s.push_str("```\n");
        for l in &d.lines {
            let _ = writeln!(s, "{l}");
        }
        if !d.expected.is_empty() {
            let _ = writeln!(s, "expected: {}", d.expected);
        }
        if !d.actual.is_empty() {
            let _ = writeln!(s, "actual:   {}", d.actual);
        }
        s.push_str("```\n\n");
        if !d.rows.is_empty() {
            let _ = writeln!(
                s,
                "- rows: {}",
                d.rows
                    .iter()
                    .map(|r| format!("`{r}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        if !d.params.is_empty() {
            let _ = writeln!(
                s,
                "- parameters: {}",
                d.params
                    .iter()
                    .map(|r| format!("`{r}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        if !d.rfc.is_empty() {
            let _ = writeln!(s, "- RFC: {}", d.rfc.join(", "));
        }
        let mut scripts: Vec<String> = items
            .iter()
            .map(|(sd, d)| {
                if d.line > 0 {
                    format!("`{}`:{}", sd.script, d.line)
                } else {
                    format!("`{}`", sd.script)
                }
            })
            .collect();
        scripts.dedup();
        let _ = writeln!(s, "- seen in: {}\n", scripts.join(", "));
    }
    if !clean.is_empty() {
        let _ = writeln!(s, "## No divergence\n\n{}\n", clean.join(", "));
    }
    if !skipped.is_empty() {
        let _ = writeln!(s, "## Not run\n\n{}\n", skipped.join("\n"));
    }
    s
}

/// How many divergences of `class` the diffs hold.
pub fn count(diffs: &[ScriptDiff], class: Class) -> usize {
    diffs
        .iter()
        .flat_map(|d| &d.divergences)
        .filter(|x| x.class == class)
        .count()
}

/// The `--json` form of several script diffs.
pub fn json_report(diffs: &[ScriptDiff]) -> Value {
    let count = |c: Class| count(diffs, c);
    json!({
        "scripts": diffs.iter().map(ScriptDiff::to_json).collect::<Vec<_>>(),
        "violations": count(Class::Violation),
        "allowed": count(Class::Allowed),
        "conforms": count(Class::Conforms),
    })
}
