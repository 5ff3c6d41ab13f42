//! `tcpconform diff`: runs a script on several targets and has every
//! divergence classified ([`crate::verdict`]).
//!
//! A divergence is either a target departing from the script (the runner's
//! typed [`Failure`]) or two targets' traces differing where the script
//! leaves a field open (window, options). The `own` target runs first
//! under the active (RFC) profile: its trace names the table row of every
//! transition, which gives the state each stimulus arrived in.
//!
//! Keeping going: after a divergence whose line can be masked (a missing
//! packet removed, a window or option list opened, PSH or the packet the
//! target sent adopted) the script runs again, so later divergences show
//! too — on the reference as well, so a script that stops early on `own`
//! still gives a full reference trace for the other targets. At most
//! [`MAX_MASKS`] times per target.

use super::runner::{run_text, Failure, Mismatch, Outcome, RunOptions, RunReport};
use super::suite;
use super::target::{Micros, Target};
use super::trace::{Trace, TraceKind};
use super::wire;
use crate::script::TcpOpt;
use crate::verdict::case::normalize;
use crate::verdict::{self, Case, Judge, Kind};
use std::collections::BTreeMap;
use tcp_spec::{Profile, Spec};

pub use crate::verdict::report::{count, json_report, markdown, tally, tally_text};
pub use crate::verdict::{Class, Divergence, ScriptDiff};

/// How many times a line is masked and the script re-run per target.
pub const MAX_MASKS: usize = 6;
/// How often a live run is repeated after a timing miss (a miss within
/// twice the tolerance) before the miss is reported as inconclusive.
pub const TIMING_RETRIES: usize = 2;
/// The reference target: deterministic, and it logs table rows.
pub const REFERENCE: &str = "own";

/// What to compare.
#[derive(Debug, Clone)]
pub struct DiffOptions {
    /// Target names; `own` is added as the reference when missing.
    pub targets: Vec<String>,
    /// The RFC profile verdicts are relative to (and the own stack follows).
    pub profile: Profile,
    /// Live targets skip scripts whose timeline (on `own`) is longer.
    pub max_timeline_us: Option<Micros>,
    /// Strictness and timing tolerance of every run.
    pub run: RunOptions,
}

impl Default for DiffOptions {
    fn default() -> Self {
        DiffOptions {
            targets: vec!["own".into(), "linux".into()],
            profile: Profile::Rfc9293,
            max_timeline_us: None,
            run: RunOptions::default(),
        }
    }
}

/// Makes a fresh target by name.
pub type MakeTarget<'a> = dyn FnMut(&str, Profile) -> Result<Box<dyn Target>, String> + 'a;

/// Reads `path` and compares it on the targets of `opts`.
pub fn diff_file(path: &std::path::Path, opts: &DiffOptions) -> ScriptDiff {
    let shown = path.display().to_string();
    match crate::script::read_script(path) {
        Ok(text) => diff_text(&shown, &text, opts, &mut suite::make_target),
        Err(e) => {
            let mut d = ScriptDiff::new(&shown, opts.profile);
            d.skipped.push(format!("all: {e}"));
            d.script_error = true;
            d
        }
    }
}

/// One target's runs: every divergence found, masking and re-running,
/// the last run, and each failure with the script and trace it came from.
struct Runs {
    divergences: Vec<Divergence>,
    last: Option<RunReport>,
    cases: Vec<Recorded>,
    /// Runs repeated after a timing miss.
    retried: usize,
}

/// A failure as the classifier saw it: the (masked) script, the failure
/// and the target's trace. Recorded live, it makes a fixture that
/// classification tests replay without root.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Recorded {
    /// The script text the run used (after earlier masks).
    pub script: String,
    /// The departure.
    pub failure: Failure,
    /// The target's trace up to it.
    pub trace: Trace,
}

/// Every failure of target `name` on `text` (masking and re-running as
/// `diff` does), with the reference trace they are judged against.
pub fn record(
    path: &str,
    text: &str,
    name: &str,
    opts: &DiffOptions,
    make: &mut MakeTarget<'_>,
) -> Result<(Trace, Vec<Recorded>), String> {
    let spec = Spec::bundled().map_err(|e| e.to_string())?;
    let job = Job {
        spec,
        path,
        text,
        opts,
    };
    let mut skipped = Vec::new();
    let reference = run_masked(&job, REFERENCE, make, None, &mut skipped);
    let ref_trace = reference
        .last
        .map(|r| r.trace)
        .ok_or_else(|| skipped.join("; "))?;
    let runs = run_masked(&job, name, make, Some(&ref_trace), &mut skipped);
    if let Some(s) = skipped.first() {
        return Err(s.clone());
    }
    Ok((ref_trace, runs.cases))
}

/// One script to compare: the table, the script and the options.
struct Job<'a> {
    spec: &'a Spec,
    path: &'a str,
    text: &'a str,
    opts: &'a DiffOptions,
}

/// Runs the job's script on target `name` until it passes, a divergence
/// cannot be masked, or [`MAX_MASKS`] runs are used. `reference` is the
/// reference trace the cases are judged with (`None`: the run's own trace,
/// for the reference itself).
fn run_masked(
    job: &Job<'_>,
    name: &str,
    make: &mut MakeTarget<'_>,
    reference: Option<&Trace>,
    skipped: &mut Vec<String>,
) -> Runs {
    let Job {
        spec,
        path,
        text,
        opts,
    } = *job;
    let mut script = text.to_string();
    let mut out = Runs {
        divergences: Vec::new(),
        last: None,
        cases: Vec::new(),
        retried: 0,
    };
    let mut retries = TIMING_RETRIES;
    for _ in 0..=MAX_MASKS + TIMING_RETRIES {
        let asked = std::time::Instant::now();
        let mut target = match make(name, opts.profile) {
            Ok(t) => t,
            Err(e) => {
                skipped.push(format!("{name}: {e}"));
                break;
            }
        };
        let live = !target.is_virtual();
        let began = std::time::Instant::now();
        let report = run_text(path, &script, target.as_mut(), &opts.run);
        drop(target);
        if live && super::phases::enabled() {
            eprintln!(
                "timing: run {name} {path} {:.0} ms after {:.0} ms of set-up (timeline {:.0} ms, {})",
                super::phases::ms(began.elapsed()),
                super::phases::ms(began - asked),
                report.end_time as f64 / 1e3,
                outcome_text(&report)
            );
        }
        // A masked script that no longer runs: keep the last real run.
        if matches!(report.outcome, Outcome::Error(_)) && out.last.is_some() {
            break;
        }
        let Outcome::Failed(f) = &report.outcome else {
            out.last = Some(report);
            break;
        };
        let judge = Judge {
            spec,
            rfc: opts.profile,
            script: &script,
            reference: reference.unwrap_or(&report.trace),
        };
        let case = Case {
            judge: &judge,
            target: name,
            profile: verdict::target_profile(name, opts.profile),
            failure: f,
            trace: &report.trace,
        };
        let mut found = verdict::classify(&case);
        let stim = case.stimulus().and_then(|s| case.inbound(s));
        for d in &mut found {
            verdict::stacks::document(name, d, stim.as_ref());
        }
        // A timing miss on a real clock: run the same script again first.
        let timing_miss = found
            .iter()
            .all(|d| d.class == Class::Inconclusive && d.kind == Kind::Timing);
        if live && timing_miss && retries > 0 {
            retries -= 1;
            out.retried += 1;
            continue;
        }
        let masked = found
            .iter()
            .all(|d| d.continues)
            .then(|| mask(&script, f, &found))
            .flatten();
        out.divergences.extend(found);
        out.cases.push(Recorded {
            script: script.clone(),
            failure: (**f).clone(),
            trace: report.trace.clone(),
        });
        out.last = Some(report);
        match masked {
            Some(s) => script = s,
            None => break,
        }
    }
    out
}

/// Compares `text` on every target of `opts`, one at a time.
pub fn diff_text(
    path: &str,
    text: &str,
    opts: &DiffOptions,
    make: &mut MakeTarget<'_>,
) -> ScriptDiff {
    let mut out = ScriptDiff::new(path, opts.profile);
    out.targets.push(REFERENCE.to_string());
    let spec = match Spec::bundled() {
        Ok(s) => s,
        Err(e) => {
            out.skipped
                .push(format!("all: the table does not load: {e}"));
            return out;
        }
    };
    let job = Job {
        spec,
        path,
        text,
        opts,
    };
    let reference = run_masked(&job, REFERENCE, make, None, &mut out.skipped);
    let Some(ref_report) = reference.last else {
        return out;
    };
    out.outcomes
        .push(format!("{REFERENCE}: {}", outcome_text(&ref_report)));
    if matches!(ref_report.outcome, Outcome::Error(_)) {
        out.script_error = true;
        return out;
    }
    out.divergences.extend(reference.divergences);
    for name in &opts.targets {
        if name == REFERENCE || out.targets.contains(name) {
            continue;
        }
        if let Some(max) = opts.max_timeline_us {
            if ref_report.end_time > max {
                out.skipped.push(format!(
                    "{name}: timeline {:.0} s is longer than {:.0} s",
                    ref_report.end_time as f64 / 1e6,
                    max as f64 / 1e6
                ));
                continue;
            }
        }
        let runs = run_masked(&job, name, make, Some(&ref_report.trace), &mut out.skipped);
        out.divergences.extend(runs.divergences);
        if let Some(r) = runs.last {
            out.targets.push(name.clone());
            out.outcomes.push(format!("{name}: {}", outcome_text(&r)));
            out.timing_retries += runs.retried;
            out.divergences
                .extend(compare_traces(name, &r.trace, &ref_report.trace));
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
        Outcome::NotApplicable(e) => format!("not applicable: {}", strip_times(e)),
        Outcome::Error(e) => {
            let e = e.split(" (scripted").next().unwrap_or(e);
            format!("error: {}", strip_times(e))
        }
    }
}

/// Drops `S.ssssss` times from a message.
fn strip_times(s: &str) -> String {
    s.split(' ')
        .map(|w| {
            let core = w.trim_matches(|c: char| !c.is_ascii_digit() && c != '.');
            let is_time = core.split_once('.').is_some_and(|(a, b)| {
                b.len() == 6
                    && !a.is_empty()
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

/// The script with the line of `f` masked so that the divergences `found`
/// no longer stop the run; `None` when it cannot be masked. Packets are
/// rewritten from the typed expected and actual packets.
fn mask(script: &str, f: &Failure, found: &[Divergence]) -> Option<String> {
    let mut lines: Vec<String> = script.lines().map(str::to_string).collect();
    let line = lines.get_mut(f.line.checked_sub(1)?)?;
    let before = line.clone();
    let time_end = line
        .find(['<', '>'])
        .filter(|_| f.expected_packet.is_some());
    for d in found {
        match d.kind {
            Kind::Missing => *line = String::new(),
            Kind::Window | Kind::Options | Kind::Psh | Kind::Response => {
                let (Some(at), Some(mut p)) = (time_end, f.expected_packet.clone()) else {
                    return None;
                };
                let act = f.actual_packet.as_ref()?;
                match d.kind {
                    Kind::Window => p.win = None,
                    Kind::Options => p.options = None,
                    Kind::Psh => p.flags.psh = act.flags.psh,
                    _ => {
                        // Adopt what the target sent (its options left open).
                        p = act.clone();
                        p.win = None;
                        p.options = None;
                    }
                }
                *line = format!("{}{p}", &line[..at]);
            }
            // A packet before its window: any time, as it came (later
            // relative times then count from when it was sent).
            Kind::Timing if matches!(f.mismatch, Mismatch::Early { .. }) => {
                let rest = line.trim_start().split_once(char::is_whitespace)?.1;
                *line = format!("* {rest}");
            }
            _ => return None,
        }
    }
    if matches!(f.mismatch, Mismatch::Early { .. }) && !found.iter().any(|d| d.kind == Kind::Timing)
    {
        return None;
    }
    (*line != before).then(|| lines.join("\n") + "\n")
}

/// The outbound packets of a trace with their text and their sequence and
/// acknowledgment numbers relative to the two ISNs.
fn relative_outs(t: &Trace) -> Vec<(String, wire::WireSegment, (u32, u32))> {
    let (mut iss, mut irs) = (None, None);
    let mut out = Vec::new();
    for e in &t.entries {
        let (TraceKind::PacketOut { bytes, text } | TraceKind::PacketIn { bytes, text }) = &e.kind
        else {
            continue;
        };
        let Ok(w) = wire::decode(bytes) else { continue };
        let outbound = matches!(e.kind, TraceKind::PacketOut { .. });
        if w.flags.syn {
            if outbound {
                iss.get_or_insert(w.seq);
            } else {
                irs.get_or_insert(w.seq);
            }
        }
        if outbound {
            let rel = (
                w.seq.wrapping_sub(iss.unwrap_or(0)),
                if w.flags.ack {
                    w.ack.wrapping_sub(irs.unwrap_or(0))
                } else {
                    0
                },
            );
            out.push((text.clone(), w, rel));
        }
    }
    out
}

/// Differences between a target's trace and the reference's where the
/// script leaves fields open, one per kind: options and the initial
/// window are the sender's choice on a SYN (RFC 9293 §3.7.1, RFC 7323,
/// RFC 2018), the window the receiver's elsewhere (§3.8.6), timestamps go
/// on every segment once negotiated (RFC 7323 §3.2).
fn compare_traces(target: &str, trace: &Trace, reference: &Trace) -> Vec<Divergence> {
    let (a, b) = (relative_outs(reference), relative_outs(trace));
    let mut found: BTreeMap<Kind, (String, String, bool, bool)> = BTreeMap::new();
    for ((ta, wa, sa), (tb, wb, sb)) in a.iter().zip(b.iter()) {
        let (mut fa, mut fb) = (wa.flags, wb.flags);
        fa.psh = false;
        fb.psh = false;
        if fa != fb || sa != sb || wa.payload_len != wb.payload_len {
            break;
        }
        let mut note = |k: Kind, ts: bool| {
            found
                .entry(k)
                .or_insert((normalize(ta), normalize(tb), wa.flags.syn, ts));
        };
        if wa.win != wb.win {
            note(Kind::TraceWindow, false);
        }
        let strip = |w: &wire::WireSegment| -> Vec<TcpOpt> {
            w.options
                .iter()
                .filter(|o| !matches!(o, TcpOpt::Timestamp { .. } | TcpOpt::Nop))
                .cloned()
                .collect()
        };
        let has_ts = |w: &wire::WireSegment| {
            w.options
                .iter()
                .any(|o| matches!(o, TcpOpt::Timestamp { .. }))
        };
        let (oa, ob) = (strip(wa), strip(wb));
        if oa != ob || has_ts(wa) != has_ts(wb) {
            note(Kind::TraceOptions, oa == ob);
        }
    }
    found
        .into_iter()
        .map(|(kind, (ra, rb, syn, only_ts))| {
            let mut d = Divergence::new(format!("{REFERENCE} vs {target}"), kind, ra, rb);
            d.class = Class::Allowed;
            match (kind, syn) {
                (Kind::TraceOptions, false) if !only_ts => {
                    d.class = Class::NotModelled;
                    d.reason =
                        "options other than timestamps differ on a segment without SYN: no rule of the table covers them".into();
                }
                (Kind::TraceOptions, false) => {
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
            d
        })
        .collect()
}
