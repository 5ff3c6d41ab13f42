//! What the rules look at: one failure of one target, with the target's
//! trace, the reference trace and the two profiles that may explain it —
//! the RFC profile the verdicts are relative to, and the target's own
//! profile (its documented departures). Nothing here reads message text.

use super::class::{Divergence, Kind};
use super::wire_tcb::{seg_len, WireTcb};
use crate::run::runner::{Failure, Mismatch};
use crate::run::target::Micros;
use crate::run::trace::{Trace, TraceKind};
use crate::run::wire::{self, WireSegment};
use crate::script::PacketSpec;
use tcp_spec::{Ctl, Event, Level, Profile, Row, Spec, State};

/// What every case of one script shares.
pub struct Judge<'a> {
    /// The table.
    pub spec: &'a Spec,
    /// The profile verdicts are relative to (the RFC; `rfc9293` by default).
    pub rfc: Profile,
    /// The script text, for quoting lines.
    pub script: &'a str,
    /// The reference run (`own` under `rfc`): its transitions name the
    /// state each stimulus arrived in.
    pub reference: &'a Trace,
}

/// One failure of one target.
pub struct Case<'a> {
    /// Shared context.
    pub judge: &'a Judge<'a>,
    /// The target's name.
    pub target: &'a str,
    /// The target's own profile: only it may document a departure.
    pub profile: Profile,
    /// The departure from the script.
    pub failure: &'a Failure,
    /// The target's trace up to the failure.
    pub trace: &'a Trace,
}

/// The rows that answer a stimulus.
pub struct Rows<'a> {
    /// The state the stimulus arrived in (from the reference).
    pub state: State,
    /// The abstract event, classified in the target's own sequence space
    /// (`None` for calls: their event is the reference's row's).
    pub event: Option<Event>,
    /// The RFC profile's row.
    pub rfc: &'a Row,
    /// The target profile's row (the same row unless the target's profile
    /// documents a departure).
    pub own: &'a Row,
    /// An earlier row of the target's own profile that left the target in
    /// another state than the reference (`state` is the target's).
    pub diverted: Option<&'a Row>,
}

/// A stimulus: an injected packet or a completed call, by trace index.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum StimKind {
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

/// How soon after a stimulus a retransmitted segment still counts as the
/// answer to it (a SYN-ACK resent for a resent SYN) rather than the work of
/// a retransmission timer, whose shortest expiry is far longer.
pub const ANSWER_WINDOW_US: Micros = 50_000;

/// Replaces `TS val N ecr M` values by `*` so reports are stable.
pub fn normalize(text: &str) -> String {
    let mut out = Vec::new();
    let mut toks = text.split(' ').peekable();
    while let Some(t) = toks.next() {
        out.push(t.to_string());
        if t == "val" || t == "ecr" {
            if let Some(n) = toks.next() {
                let digits = n.len() - n.trim_start_matches(|c: char| c.is_ascii_digit()).len();
                out.push(format!("*{}", &n[digits..]));
            }
        }
    }
    out.join(" ")
}

/// Control bits the table's templates name, sorted.
pub fn ctl_of(w: &WireSegment) -> Vec<Ctl> {
    let mut v = Vec::new();
    for (on, c) in [
        (w.flags.syn, Ctl::Syn),
        (w.flags.ack, Ctl::Ack),
        (w.flags.fin, Ctl::Fin),
        (w.flags.rst, Ctl::Rst),
    ] {
        if on {
            v.push(c);
        }
    }
    v.sort();
    v
}

/// `SYN,ACK with data + ACK`, or `nothing`.
pub fn shown(segs: &[WireSegment]) -> String {
    if segs.is_empty() {
        return "nothing".into();
    }
    segs.iter()
        .map(|w| {
            let c: Vec<&str> = ctl_of(w).iter().map(|c| c.name()).collect();
            let data = if w.payload_len > 0 { " with data" } else { "" };
            format!(
                "{}{data}",
                if c.is_empty() {
                    "no flags".into()
                } else {
                    c.join(",")
                }
            )
        })
        .collect::<Vec<_>>()
        .join(" + ")
}

/// Whether `row`'s emitted segments are, in order, what was sent in
/// `state`: the same control bits, and data where the template retransmits
/// some. In a synchronized state a RST may carry the ACK bit too: once a
/// connection is established every segment carries it (RFC 9293 §3.1),
/// and a RST is validated by its sequence number alone (§3.5.3).
pub fn emits(row: &Row, sent: &[WireSegment], state: State) -> bool {
    let synchronized = !matches!(state, State::Closed | State::Listen | State::SynSent);
    row.emit.len() == sent.len()
        && row.emit.iter().zip(sent).all(|(t, w)| {
            let mut want = t.ctl.clone();
            want.sort();
            let have = ctl_of(w);
            let same = want == have
                || (synchronized && want == [Ctl::Rst] && have == [Ctl::Ack, Ctl::Rst]);
            same && (t.carries.is_none() || seg_len(w) > 0)
        })
}

/// The template list of a row, or `nothing`.
pub fn emitted(row: &Row) -> String {
    if row.emit.is_empty() {
        return "nothing".into();
    }
    row.emit
        .iter()
        .map(|t| t.to_string())
        .collect::<Vec<_>>()
        .join(" ")
}

impl Case<'_> {
    /// The table.
    pub fn spec(&self) -> &Spec {
        self.judge.spec
    }

    /// A line of the script, trimmed.
    pub fn script_line(&self, n: usize) -> String {
        self.judge
            .script
            .lines()
            .nth(n.saturating_sub(1))
            .map(|l| l.trim().to_string())
            .unwrap_or_default()
    }

    /// The last `<` or call line before `line` in the script.
    fn stimulus_line(&self, line: usize) -> Option<usize> {
        let lines: Vec<&str> = self.judge.script.lines().collect();
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

    /// A divergence of `kind` at the failure's line, not yet classified
    /// (inconclusive until a rule says more).
    pub fn base(&self, kind: Kind) -> Divergence {
        let f = self.failure;
        let mut lines = Vec::new();
        if let Some(s) = self.stimulus_line(f.line) {
            lines.push(format!("{s}: {}", self.script_line(s)));
        }
        lines.push(format!("{}: {}", f.line, self.script_line(f.line)));
        let mut d = Divergence::new(
            self.target.to_string(),
            kind,
            normalize(f.expected.as_deref().unwrap_or("")),
            normalize(f.actual.as_deref().unwrap_or("")),
        );
        d.line = f.line;
        d.lines = lines;
        d
    }

    /// The scripted packet.
    pub fn expected(&self) -> Option<&PacketSpec> {
        self.failure.expected_packet.as_ref()
    }

    /// The packet the target sent instead.
    pub fn actual(&self) -> Option<&PacketSpec> {
        self.failure.actual_packet.as_ref()
    }

    /// When the failing packet was sent, when one was.
    pub fn sent_at(&self) -> Option<Micros> {
        match self.failure.mismatch {
            Mismatch::Early { at }
            | Mismatch::Late { at }
            | Mismatch::Differs { at, .. }
            | Mismatch::Unexpected { at } => Some(at),
            _ => None,
        }
    }

    /// The trace index of the failing outbound packet.
    pub fn out_index(&self) -> Option<usize> {
        let at = self.sent_at()?;
        let text = self.failure.actual.as_deref()?;
        self.trace.entries.iter().position(|e| {
            e.at == at && matches!(&e.kind, TraceKind::PacketOut { text: t, .. } if t == text)
        })
    }

    /// The failing outbound packet, decoded.
    pub fn actual_wire(&self) -> Option<WireSegment> {
        match &self.trace.entries.get(self.out_index()?)?.kind {
            TraceKind::PacketOut { bytes, .. } => wire::decode(bytes).ok(),
            _ => None,
        }
    }

    /// The stimulus the failure answers: the last injected packet or
    /// completed call before the failing packet (or before the end) that
    /// the reference took a row for. A blocking call that merely returned
    /// (connect, accept) took none: the packet before it is the stimulus.
    pub fn stimulus(&self) -> Option<usize> {
        let upto = self.out_index().unwrap_or(self.trace.entries.len());
        let stims: Vec<usize> = (0..upto)
            .filter(|&i| stim_kind(&self.trace.entries[i].kind).is_some())
            .collect();
        stims
            .iter()
            .rev()
            .copied()
            .find(|&i| self.reference_step(i).is_some())
            .or(stims.last().copied())
    }

    /// The reference's transition for the stimulus at `idx` of the
    /// target's trace, matched by position (the n-th injected packet or
    /// the n-th call): (state before, state after, row).
    pub fn reference_step(&self, idx: usize) -> Option<(State, State, &'static str)> {
        let kind = stim_kind(&self.trace.entries.get(idx)?.kind)?;
        let n = self.trace.entries[..=idx]
            .iter()
            .filter(|e| stim_kind(&e.kind) == Some(kind))
            .count();
        let reference = self.judge.reference;
        let ridx = reference
            .entries
            .iter()
            .enumerate()
            .filter(|(_, e)| stim_kind(&e.kind) == Some(kind))
            .nth(n.checked_sub(1)?)
            .map(|(i, _)| i)?;
        for e in &reference.entries[ridx + 1..] {
            match &e.kind {
                TraceKind::Transition { from, to, row, .. } => return Some((*from, *to, row)),
                TraceKind::PacketIn { .. } | TraceKind::Call { .. } => break,
                _ => {}
            }
        }
        None
    }

    /// The injected packet at `idx`, decoded.
    pub fn inbound(&self, idx: usize) -> Option<WireSegment> {
        match &self.trace.entries.get(idx)?.kind {
            TraceKind::PacketIn { bytes, .. } => wire::decode(bytes).ok(),
            _ => None,
        }
    }

    /// The target's sequence variables before entry `idx`.
    pub fn tcb_before(&self, idx: usize) -> WireTcb {
        WireTcb::before(self.trace, idx)
    }

    /// The rows of both profiles for the stimulus at `idx`, in the state
    /// the target was in ([`Case::target_state`]).
    pub fn rows(&self, idx: usize) -> Option<Rows<'_>> {
        let (state, diverted) = self.target_state(idx)?;
        let mut rows = self.rows_in(idx, state)?;
        rows.diverted = diverted;
        Some(rows)
    }

    /// The rows of both profiles for the stimulus at `idx` arriving in
    /// `state`: a packet is classified in the target's own sequence space;
    /// a call is the user call the reference's row answered.
    fn rows_in(&self, idx: usize, state: State) -> Option<Rows<'_>> {
        let spec = self.spec();
        let inbound = self.inbound(idx);
        let events: Vec<Event> = match &inbound {
            Some(w) => vec![self.tcb_before(idx).classify(w, state)],
            None => {
                let (_, _, ref_row) = self.reference_step(idx)?;
                match &spec.row(ref_row)?.event {
                    tcp_spec::EventPattern::Call { call } => {
                        call.iter().map(|c| Event::Call { call: *c }).collect()
                    }
                    _ => return None,
                }
            }
        };
        // For a call the row covering several calls is ambiguous: prefer
        // the one where the target's profile departs.
        let pick = events
            .iter()
            .filter_map(|e| {
                let rfc = spec.step(self.judge.rfc, state, e).ok()?;
                let own = spec.step(self.profile, state, e).ok()?;
                Some((e, rfc, own))
            })
            .max_by_key(|(_, rfc, own)| rfc.id != own.id)?;
        let (event, rfc, own) = pick;
        Some(Rows {
            state,
            event: inbound.map(|_| *event),
            rfc,
            own,
            diverted: None,
        })
    }

    /// The target's state when the stimulus at `idx` arrived: the
    /// reference's, unless an earlier stimulus took a row of the target's
    /// own profile (its answer fits that row, or neither row) that leads
    /// to another state than the reference went to — then that state, and
    /// the row that diverted it.
    pub fn target_state(&self, idx: usize) -> Option<(State, Option<&Row>)> {
        let mut diverted: Option<(State, &Row)> = None;
        for i in 0..idx {
            if stim_kind(&self.trace.entries[i].kind).is_none() {
                continue;
            }
            let Some((from_ref, to_ref, _)) = self.reference_step(i) else {
                continue;
            };
            let from = diverted.map_or(from_ref, |d| d.0);
            let Some(rows) = self.rows_in(i, from) else {
                diverted = None;
                continue;
            };
            // Follow the target's own row only where its answer fits that
            // row (a row of an older kernel may document what this one no
            // longer does).
            let sent = self.sent_after(i);
            let own_fits = emits(rows.own, &sent, from) || !emits(rows.rfc, &sent, from);
            let next = if own_fits {
                rows.own.next.resolve(from)
            } else {
                rows.rfc.next.resolve(from)
            };
            diverted = match diverted {
                _ if next == to_ref => None,
                Some((_, r)) if rows.own.id == rows.rfc.id => Some((next, r)),
                _ => Some((next, rows.own)),
            };
        }
        let (from_ref, _, _) = self.reference_step(idx)?;
        Some(match diverted {
            Some((s, r)) => (s, Some(r)),
            None => (from_ref, None),
        })
    }

    /// What the target sent in answer to the stimulus at `idx`: its
    /// packets up to the next stimulus (a blocking call that merely
    /// returned is none) or the end, less retransmissions that came later
    /// than [`ANSWER_WINDOW_US`] (a timer sent those; the timer rules
    /// judge them).
    pub fn sent_after(&self, idx: usize) -> Vec<WireSegment> {
        let stim_at = self.trace.entries.get(idx).map_or(0, |e| e.at);
        let mut out = Vec::new();
        for (i, e) in self.trace.entries.iter().enumerate().skip(idx + 1) {
            match &e.kind {
                TraceKind::PacketOut { bytes, .. } => {
                    let Ok(w) = wire::decode(bytes) else { continue };
                    let resent = seg_len(&w) > 0
                        && e.at.saturating_sub(stim_at) > ANSWER_WINDOW_US
                        && self.trace.entries[..i].iter().any(|x| match &x.kind {
                            TraceKind::PacketOut { bytes, .. } => {
                                wire::decode(bytes).is_ok_and(|o| o.seq == w.seq && seg_len(&o) > 0)
                            }
                            _ => false,
                        });
                    if !resent {
                        out.push(w);
                    }
                }
                TraceKind::PacketIn { .. } => break,
                TraceKind::Call { .. } if self.reference_step(i).is_some() => break,
                _ => {}
            }
        }
        out
    }

    /// The target's outbound packets with their times and indexes.
    pub fn outs(&self) -> Vec<(usize, Micros, WireSegment)> {
        self.trace
            .entries
            .iter()
            .enumerate()
            .filter_map(|(i, e)| match &e.kind {
                TraceKind::PacketOut { bytes, .. } => {
                    wire::decode(bytes).ok().map(|w| (i, e.at, w))
                }
                _ => None,
            })
            .collect()
    }

    /// A parameter of `p` as reports show it: `p.name = value (source)`.
    pub fn param_text(&self, p: Profile, name: &str) -> String {
        match self.spec().profile(p).params.get(name) {
            Some(s) => format!("{p}.{name} = {} ({})", s.value, s.source),
            None => format!("{p}.{name}"),
        }
    }

    /// The level a parameter of the target's profile records.
    pub fn param_level(&self, p: Profile, name: &str) -> Level {
        self.spec()
            .profile(p)
            .params
            .get(name)
            .and_then(|s| s.level)
            .unwrap_or(Level::None)
    }

    /// The script's tolerance for the failing event (µs).
    pub fn tolerance(&self) -> Micros {
        self.failure
            .window
            .map_or(crate::run::DEFAULT_TOLERANCE_USECS, |w| w.tolerance)
    }
}

/// Adds `s` to `v` unless it is there.
pub fn add_unique(v: &mut Vec<String>, s: impl Into<String>) {
    let s = s.into();
    if !v.contains(&s) {
        v.push(s);
    }
}
