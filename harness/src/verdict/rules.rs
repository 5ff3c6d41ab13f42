//! The classification rules, one function each, tried in [`RULES`] order:
//! the first that decides gives the verdict. Every rule reads typed values
//! (the runner's [`Mismatch`], decoded packets, table rows and profile
//! parameters), never message text.
//!
//! Only two profiles may explain a behaviour: the RFC profile (the verdict
//! is *conforms* when its row or model predicts what the target did) and
//! the target's own profile (a departure it documents is reported at the
//! level of the rule it departs from, with the mechanism it names).

use super::case::{add_unique, ctl_of, emits, emitted, shown, Case, Rows};
use super::class::{Class, Divergence, Kind};
use super::wire_tcb::seg_len;
use crate::run::runner::{Field, Mismatch};
use crate::run::target::Micros;
use crate::run::trace::TraceKind;
use crate::run::wire::{self, WireSegment};
use crate::timers::history::{self, Dir, History, TimerEvent};
use tcp_spec::rto::RtoConfig;
use tcp_spec::{AckClass, Ctl, Event, Level, Profile, SeqClass};

/// A rule: `None` when it does not decide this case.
pub type Rule = fn(&Case<'_>) -> Option<Vec<Divergence>>;

/// The rules in the order they are tried, by name.
pub const RULES: &[(&str, Rule)] = &[
    ("undecodable", undecodable),
    ("timing-miss", timing_miss),
    ("socket-api", socket_api),
    ("syn-give-up", syn_give_up),
    ("call-time", call_time),
    ("senders-choice", senders_choice),
    ("zero-window-probe", zero_window_probe),
    ("fast-retransmit", fast_retransmit),
    ("early-syn", early_syn),
    ("time-wait-length", time_wait_length),
    ("timer-model", timer_model),
    ("immediate-ack", immediate_ack),
    ("new-data", new_data),
    ("send-window", send_window),
    ("delayed-ack", delayed_ack),
    ("rate-limit", rate_limit),
    ("response", response),
    ("timer-departure", timer_departure),
];

/// Classifies a case with `rules`; what no rule decides is inconclusive.
pub fn classify_with(c: &Case<'_>, rules: &[(&str, Rule)]) -> Vec<Divergence> {
    for (_, rule) in rules {
        if let Some(v) = rule(c) {
            return v;
        }
    }
    let mut d = c.base(kind_of(c));
    d.reason = "no rule decides this divergence".into();
    vec![d]
}

/// The kind a failure reports as.
fn kind_of(c: &Case<'_>) -> Kind {
    match &c.failure.mismatch {
        Mismatch::NotSent => Kind::Missing,
        Mismatch::Unexpected { .. } => Kind::Extra,
        Mismatch::Early { .. } | Mismatch::Late { .. } => Kind::Timing,
        Mismatch::CallTime { .. }
        | Mismatch::CallResult { .. }
        | Mismatch::CallBlocked
        | Mismatch::Code => Kind::Call,
        Mismatch::Differs { .. } | Mismatch::Undecodable => Kind::Response,
    }
}

fn one(d: Divergence) -> Option<Vec<Divergence>> {
    Some(vec![d])
}

// ----- harness limits -----------------------------------------------------

/// The target sent bytes the harness cannot decode: inconclusive.
pub fn undecodable(c: &Case<'_>) -> Option<Vec<Divergence>> {
    if c.failure.mismatch != Mismatch::Undecodable {
        return None;
    }
    let mut d = c.base(Kind::Response);
    d.reason = "the harness cannot decode the packet the target sent".into();
    one(d)
}

/// A packet or call that missed its window by less than one more
/// tolerance: the harness's clock, not the target, may be the cause.
pub fn timing_miss(c: &Case<'_>) -> Option<Vec<Divergence>> {
    let w = c.failure.window?;
    let near = match c.failure.mismatch {
        Mismatch::Late { .. } => true,
        Mismatch::Early { at } => at.saturating_add(w.tolerance) >= w.lo,
        Mismatch::CallTime { at } => {
            at.saturating_add(w.tolerance) >= w.lo && at <= w.hi.saturating_add(w.tolerance)
        }
        _ => false,
    };
    if !near {
        return None;
    }
    let mut d = c.base(Kind::Timing);
    d.reason = format!(
        "a timing miss within twice the tolerance ({} ms)",
        ms(w.tolerance)
    );
    one(d)
}

// ----- calls ----------------------------------------------------------------

/// A call failed with another errno: socket API semantics, which RFC 9293
/// §3.9.1 leaves to the implementation (its error texts carry no keyword).
pub fn socket_api(c: &Case<'_>) -> Option<Vec<Divergence>> {
    let Mismatch::CallResult { want, got } = &c.failure.mismatch else {
        return None;
    };
    let errno = |s: &str| s.trim_start().starts_with("-1");
    if !(errno(want) && errno(got)) {
        return None;
    }
    let mut d = c.base(Kind::Call);
    d.class = Class::Api;
    d.reason = format!(
        "the call failed with {got} instead of {want}: which errno reports a reset or closed connection is socket API, not TCP"
    );
    d.rfc = vec!["RFC9293 3.9.1".into()];
    d.continues = true;
    one(d)
}

/// An active open that gave up (connect fails with ETIMEDOUT) before three
/// minutes of SYN retransmission: R2 for a SYN must last at least 3
/// minutes (RFC 9293 §3.8.3, MUST-23; RFC 1122 §4.2.3.5). The target's
/// own profile documents it when its SYN schedule (`syn_retries`,
/// `syn_linear_timeouts`, the RTO bounds) predicts the time.
pub fn syn_give_up(c: &Case<'_>) -> Option<Vec<Divergence>> {
    let Mismatch::CallTime { at } = c.failure.mismatch else {
        return None;
    };
    let call = c.failure.call.as_ref()?;
    if call.name != "connect" || call.errno.as_deref() != Some("ETIMEDOUT") {
        return None;
    }
    let first_syn = c
        .outs()
        .into_iter()
        .find(|(_, _, w)| w.flags.syn && !w.flags.ack)
        .map(|(_, t, _)| t)?;
    let elapsed = at.saturating_sub(first_syn) as f64 / 1e6;
    let give_up = |p: Profile| {
        let params = &c.spec().profile(p).params;
        tcp_spec::rto::syn_give_up(
            RtoConfig::from_params(params),
            params.syn_retries.value,
            params.syn_linear_timeouts.value,
        )
    };
    let mut d = c.base(Kind::Call);
    d.rfc = vec!["RFC9293 3.8.3".into(), "RFC1122 4.2.3.5".into()];
    if elapsed + 1.0 >= tcp_spec::rto::SYN_R2_MIN {
        d.class = Class::Conforms;
        d.level = Some(Level::Must);
        d.reason =
            "connect() gave up after at least 3 minutes of SYN retransmission (MUST-23)".into();
        d.measured = Some(format!("gave up after {elapsed:.1} s"));
        return one(d);
    }
    let level = c.param_level(c.judge.rfc, "syn_retries");
    d.class = Class::departure(level);
    d.level = Some(level);
    d.reason = "connect() gave up before 3 minutes of SYN retransmission; R2 for a SYN must last at least 3 minutes (MUST-23)".into();
    d.measured = Some(format!("gave up after {elapsed:.1} s"));
    d.params = vec![c.param_text(c.judge.rfc, "syn_retries")];
    let predicted = give_up(c.profile);
    // Each expiry of a coarse timer wheel may fire late and the lateness
    // adds up over the schedule (about 2 s for 64 s timers on HZ=250).
    if c.profile != c.judge.rfc && (elapsed - predicted).abs() <= 2.0_f64.max(predicted * 0.06) {
        let params = &c.spec().profile(c.profile).params;
        d.params.push(c.param_text(c.profile, "syn_retries"));
        d.params
            .push(c.param_text(c.profile, "syn_linear_timeouts"));
        d.documented = Some(format!(
            "{}; {} (gives up after {predicted:.0} s)",
            params.syn_retries.source, params.syn_linear_timeouts.source
        ));
    }
    one(d)
}

/// A call that returned earlier or later than scripted while every packet
/// matched: when a call returns is the socket layer's report of a state
/// change the packets do not show, so the harness cannot judge it.
pub fn call_time(c: &Case<'_>) -> Option<Vec<Divergence>> {
    let (at, w) = match (&c.failure.mismatch, c.failure.window) {
        (Mismatch::CallTime { at }, Some(w)) => (*at, w),
        (Mismatch::CallBlocked, _) => {
            let mut d = c.base(Kind::Call);
            d.reason = "the call had not returned when the script needed it to; the packets before it matched".into();
            return one(d);
        }
        _ => return None,
    };
    let mut d = c.base(Kind::Call);
    let state = c
        .stimulus()
        .and_then(|i| c.reference_step(i))
        .map_or("?", |(_, to, _)| to.name());
    d.reason = format!(
        "the call returned {} than scripted (reference state {state}); the packets before it matched",
        if at < w.lo { "earlier" } else { "later" }
    );
    one(d)
}

// ----- the sender's choices ------------------------------------------------

/// Only the window, the options or PSH differ: choices the RFCs leave to
/// the sender (RFC 9293 §3.7.1 options and initial window, §3.8.6 the
/// receive window, §3.9.1.2 PSH), or timestamps on every segment once
/// negotiated (RFC 7323 §3.2).
pub fn senders_choice(c: &Case<'_>) -> Option<Vec<Divergence>> {
    let Mismatch::Differs { fields, .. } = &c.failure.mismatch else {
        return None;
    };
    let minor = |f: &Field| matches!(f, Field::Win | Field::Options | Field::Psh);
    if !fields.iter().all(minor) {
        return None;
    }
    let act = c.actual()?;
    let syn = act.flags.syn;
    let mut out = Vec::new();
    let mut push = |kind: Kind, reason: &str, rfc: &[&str], class: Class| {
        let mut d = c.base(kind);
        d.class = class;
        d.continues = class == Class::Allowed;
        d.reason = reason.to_string();
        d.rfc = rfc.iter().map(|s| s.to_string()).collect();
        out.push(d);
    };
    let sender = "options and initial window are the sender's choice";
    let sender_rfc = ["RFC9293 3.7.1", "RFC7323 2-3", "RFC2018 2"];
    if fields.contains(&Field::Psh) {
        push(
            Kind::Psh,
            "PSH is the sender's choice",
            &["RFC9293 3.9.1.2"],
            Class::Allowed,
        );
    }
    if fields.contains(&Field::Win) {
        if syn {
            push(Kind::Window, sender, &sender_rfc, Class::Allowed);
        } else {
            push(
                Kind::Window,
                "the advertised window is the receiver's choice",
                &["RFC9293 3.8.6"],
                Class::Allowed,
            );
        }
    }
    if fields.contains(&Field::Options) {
        let ts = act.options.as_ref().is_some_and(|o| {
            o.iter()
                .any(|x| matches!(x, crate::script::TcpOpt::Timestamp { .. }))
        });
        if syn {
            push(Kind::Options, sender, &sender_rfc, Class::Allowed);
        } else if ts {
            push(
                Kind::Options,
                "timestamps go on every segment once negotiated",
                &["RFC7323 3.2"],
                Class::Allowed,
            );
        } else {
            push(
                Kind::Options,
                "options other than timestamps differ on a segment without SYN: no rule of the table covers them",
                &[],
                Class::NotModelled,
            );
        }
    }
    Some(out)
}

// ----- timers -----------------------------------------------------------------

/// A timer-driven packet as observed: the gap since what armed it.
struct TimerObs {
    /// Earlier transmissions of the same segment (0: a first
    /// transmission after a stimulus).
    prior: usize,
    /// Observed gap (µs), or `None` when it was not sent in the window.
    observed: Option<f64>,
    /// The gap the script expects (µs), when it gives one.
    scripted: Option<f64>,
    /// What the estimator went through before the observation, in order:
    /// RTT samples (Karn-marked) and timer expiries.
    history: Vec<TimerEvent>,
    /// The script's tolerance (µs).
    tol: f64,
}

impl TimerObs {
    /// How far a model may be off: an eighth of its prediction (the
    /// estimator's own smoothing), 20 ms of scheduling and the tolerance.
    fn margin(&self, pred: f64) -> f64 {
        pred / 8.0 + 20_000.0 + self.tol
    }

    /// Whether a predicted gap explains the observation: the packet came
    /// when the model says, or (missing) the model fires after the window.
    fn fits(&self, pred: f64) -> bool {
        match (self.observed, self.scripted) {
            (Some(g), _) => (g - pred).abs() <= self.margin(pred),
            (None, Some(s)) => pred > s + self.margin(pred),
            (None, None) => false,
        }
    }

    /// Which transmission of the segment this is.
    fn transmission(&self) -> &'static str {
        if self.prior == 0 {
            "first transmission"
        } else {
            "retransmission"
        }
    }

    /// What happened, without measured numbers (they go in `measured`,
    /// outside the snapshots: a real clock jitters).
    fn what(&self) -> String {
        let what = self.transmission();
        match (self.observed, self.scripted) {
            (Some(g), Some(s)) if g < s => format!("{what} earlier than scripted"),
            (Some(_), Some(_)) => format!("{what} later than scripted"),
            (Some(_), None) => format!("unscripted {what}"),
            (None, _) => format!("no {what} in the scripted window"),
        }
    }

    /// The measured and scripted gaps in milliseconds.
    fn shown(&self) -> String {
        let what = self.transmission();
        match (self.observed, self.scripted) {
            (Some(g), Some(s)) => format!("{what} after {} ms instead of {} ms", ms_f(g), ms_f(s)),
            (Some(g), None) => format!("unscripted {what} after {} ms", ms_f(g)),
            (None, Some(s)) => format!("no {what} within {} ms", ms_f(s)),
            (None, None) => format!("no {what}"),
        }
    }
}

fn ms(us: Micros) -> String {
    format!("{}", us / 1000)
}

fn ms_f(us: f64) -> String {
    format!("{:.0}", (us / 1000.0).round())
}

/// Whether `w` is the same segment as `p` (sequence number, and it
/// occupies sequence space).
fn same_segment(w: &WireSegment, seq: u32) -> bool {
    w.seq == seq && seg_len(w) > 0
}

/// The estimator's history in the trace before `until`
/// ([`crate::timers::history`]).
fn timer_history(c: &Case<'_>, until: Micros) -> Vec<TimerEvent> {
    let mut h = History::new();
    for e in c.trace.entries.iter().filter(|e| e.at < until) {
        let (dir, bytes) = match &e.kind {
            TraceKind::PacketOut { bytes, .. } => (Dir::Out, bytes),
            TraceKind::PacketIn { bytes, .. } => (Dir::In, bytes),
            _ => continue,
        };
        if let Ok(w) = wire::decode(bytes) {
            h.push(e.at, dir, &w);
        }
    }
    h.events.into_iter().map(|(_, ev)| ev).collect()
}

/// The timer observation of this case, when the failing packet is one a
/// retransmission timer sends.
fn timer_obs(c: &Case<'_>) -> Option<TimerObs> {
    let outs = c.outs();
    let tol = c.tolerance() as f64;
    let (seq, observed_at, scripted_at) = match &c.failure.mismatch {
        // Sent before its window, or unscripted: the packet itself.
        Mismatch::Early { at } | Mismatch::Unexpected { at } => {
            let w = c.actual_wire()?;
            if seg_len(&w) == 0 {
                return None;
            }
            let scripted = match c.failure.mismatch {
                Mismatch::Early { .. } => c.failure.window.map(|w| w.script),
                _ => None,
            };
            (w.seq, Some(*at), scripted)
        }
        // Not sent: the scripted packet, when it is a retransmission.
        Mismatch::NotSent => {
            let e = c.expected()?;
            let (rel, _, len) = e.seq?;
            let occupies = len > 0 || e.flags.syn || e.flags.fin;
            if !occupies {
                return None;
            }
            let iss = c.tcb_before(c.trace.entries.len()).iss?;
            let abs = if e.flags.syn {
                rel
            } else {
                iss.wrapping_add(rel)
            };
            (abs, None, c.failure.window.map(|w| w.script))
        }
        _ => return None,
    };
    let cut = observed_at.unwrap_or(Micros::MAX);
    let prior: Vec<Micros> = outs
        .iter()
        .filter(|(_, at, w)| *at < cut && same_segment(w, seq))
        .map(|(_, at, _)| *at)
        .collect();
    if prior.is_empty() && observed_at.is_none() {
        return None;
    }
    // Measured from the previous transmission, else from the stimulus.
    let base = match prior.last() {
        Some(t) => *t,
        None => c
            .trace
            .entries
            .iter()
            .filter(|e| {
                matches!(e.kind, TraceKind::PacketIn { .. } | TraceKind::Call { .. }) && e.at <= cut
            })
            .map(|e| e.at)
            .next_back()?,
    };
    Some(TimerObs {
        prior: prior.len(),
        observed: observed_at.map(|t| t.saturating_sub(base) as f64),
        scripted: scripted_at.map(|t| t as f64 - base as f64),
        history: timer_history(c, cut),
        tol,
    })
}

/// The RTO a model predicts for the observation (µs).
/// The first `linear` SYN expiries keep the RTO (linear SYN timeouts).
fn predict(cfg: RtoConfig, linear: u64, t: &TimerObs) -> f64 {
    history::predict(cfg, linear, &t.history)
}

/// The timer parameters a profile's model is built from, grouped by the
/// mechanism that sets them.
const TIMER_GROUPS: [&[&str]; 5] = [
    // Linux's tcp_rto_min is both the least RTO and the floor under the
    // variance term: one mechanism, one explanation.
    &["rto_min_ms", "rto_var_floor_ms"],
    &["rto_initial_ms"],
    &["rto_max_ms"],
    &["clock_granularity_ms"],
    &["syn_linear_timeouts"],
];

fn timer_model_of(c: &Case<'_>, p: Profile, t: &TimerObs) -> f64 {
    let params = &c.spec().profile(p).params;
    predict(
        RtoConfig::from_params(params),
        params.syn_linear_timeouts.value,
        t,
    )
}

/// RFC 6298: the RFC profile's model predicts the packet (conforms), or
/// only the target's own profile does: a documented departure, at the
/// strongest level among the parameters that make the difference.
pub fn timer_model(c: &Case<'_>) -> Option<Vec<Divergence>> {
    let t = timer_obs(c)?;
    let rfc = c.judge.rfc;
    let mut d = c.base(Kind::Timing);
    d.rfc = vec!["RFC6298 2".into(), "RFC6298 5".into()];
    if t.fits(timer_model_of(c, rfc, &t)) {
        d.class = Class::Conforms;
        d.continues = true;
        d.reason = format!("{}: the RFC 6298 model ({rfc}) predicts it", t.what());
        d.measured = Some(t.shown());
        return one(d);
    }
    if c.profile == rfc || !t.fits(timer_model_of(c, c.profile, &t)) {
        return None;
    }
    // The parameters whose own-profile value alone makes the RFC model fit,
    // else all that differ.
    let spec = c.spec();
    let a = &spec.profile(rfc).params;
    let b = &spec.profile(c.profile).params;
    // Groups of parameters one mechanism sets together, each reduced to
    // the members whose values differ between the two profiles.
    let groups: Vec<Vec<&str>> = TIMER_GROUPS
        .iter()
        .map(|g| {
            g.iter()
                .copied()
                .filter(|n| a.get(n).map(|s| s.value) != b.get(n).map(|s| s.value))
                .collect::<Vec<&str>>()
        })
        .filter(|g| !g.is_empty())
        .collect();
    let fits_with = |names: &[&str]| {
        let mut p = a.clone();
        for n in names {
            if let (Some(src), Some(dst)) = (b.get(n), p_get_mut(&mut p, n)) {
                dst.value = src.value;
            }
        }
        t.fits(predict(
            RtoConfig::from_params(&p),
            p.syn_linear_timeouts.value,
            &t,
        ))
    };
    // The first group that explains the time alone, else the first pair of
    // groups, else all that differ.
    let single = groups.iter().find(|g| fits_with(g)).cloned();
    let pair = groups.iter().enumerate().find_map(|(i, x)| {
        groups[i + 1..].iter().find_map(|y| {
            let both: Vec<&str> = x.iter().chain(y).copied().collect();
            fits_with(&both).then_some(both)
        })
    });
    let used: Vec<&str> = single.or(pair).unwrap_or_else(|| groups.concat());
    let level = used
        .iter()
        .map(|n| c.param_level(c.profile, n))
        .max()
        .unwrap_or(Level::None);
    d.class = Class::departure(level);
    d.level = Some(level);
    d.measured = Some(t.shown());
    d.reason = format!(
        "{}: the {} profile's timer predicts it ({}), the RFC 6298 model does not",
        t.what(),
        c.profile,
        used.join(", ")
    );
    d.params = used.iter().map(|n| c.param_text(c.profile, n)).collect();
    d.documented = Some(
        used.iter()
            .filter_map(|n| b.get(n).map(|s| s.source.clone()))
            .collect::<Vec<_>>()
            .join("; "),
    );
    d.continues = true;
    one(d)
}

fn p_get_mut<'a>(
    p: &'a mut tcp_spec::Params,
    name: &str,
) -> Option<&'a mut tcp_spec::profile::Sourced> {
    Some(match name {
        "rto_initial_ms" => &mut p.rto_initial_ms,
        "rto_min_ms" => &mut p.rto_min_ms,
        "rto_max_ms" => &mut p.rto_max_ms,
        "clock_granularity_ms" => &mut p.clock_granularity_ms,
        "rto_var_floor_ms" => &mut p.rto_var_floor_ms,
        "syn_linear_timeouts" => &mut p.syn_linear_timeouts,
        _ => return None,
    })
}

/// A retransmission no model predicts, and no row explains: a departure
/// from RFC 6298 §5.5 (the timer MUST be backed off on each expiry).
pub fn timer_departure(c: &Case<'_>) -> Option<Vec<Divergence>> {
    let t = timer_obs(c)?;
    if t.prior == 0 {
        return None;
    }
    let mut d = c.base(Kind::Timing);
    d.class = Class::MustViolation;
    d.level = Some(Level::Must);
    d.measured = Some(t.shown());
    d.reason = format!(
        "{}: neither the RFC 6298 model ({}) nor the {} profile's timer predicts it",
        t.what(),
        c.judge.rfc,
        c.profile
    );
    d.rfc = vec!["RFC6298 5.5".into(), "RFC6298 2".into()];
    d.continues = true;
    one(d)
}

/// Zero-window probing (RFC 9293 §3.8.6.1): while the peer's window is
/// zero, the probe should carry one octet of new data (lower-case text;
/// probing itself is MUST-36). A bare ACK with SEQ = SND.UNA − 1 probes
/// without data: judged by the `zero_window_probe_octets` parameter of the
/// RFC profile and of the target's own profile. The persist timer's
/// interval is not in the table.
pub fn zero_window_probe(c: &Case<'_>) -> Option<Vec<Divergence>> {
    if !matches!(
        c.failure.mismatch,
        Mismatch::Early { .. } | Mismatch::Unexpected { .. } | Mismatch::Differs { .. }
    ) {
        return None;
    }
    let idx = c.out_index()?;
    let tcb = c.tcb_before(idx);
    if tcb.snd_wnd != 0 || tcb.iss.is_none() {
        return None;
    }
    let w = c.actual_wire()?;
    let bare = w.payload_len == 0 && w.seq == tcb.snd_una.wrapping_sub(1) && !w.flags.syn;
    let one_octet = w.payload_len == 1;
    if !bare && !one_octet {
        return None;
    }
    let octets = u64::from(one_octet);
    let param = "zero_window_probe_octets";
    let rfc = c.judge.rfc;
    let rfc_v = c.spec().profile(rfc).params.get(param)?.value;
    let own = c.spec().profile(c.profile).params.get(param)?;
    let mut d = c.base(Kind::Response);
    d.rfc = vec!["RFC9293 3.8.6.1".into()];
    let form = if bare {
        "a bare ACK with SEQ = SND.UNA - 1"
    } else {
        "one octet of new data"
    };
    d.continues = true;
    if octets == rfc_v {
        d.class = Class::Conforms;
        d.reason = format!("zero-window probe as {form}, as the RFC describes (its interval is not judged: the persist timer is not in the table)");
        return one(d);
    }
    let level = c.param_level(rfc, param);
    d.class = Class::departure(level);
    d.level = Some(level);
    d.params = vec![c.param_text(rfc, param)];
    if own.value == octets && c.profile != rfc {
        d.params.push(c.param_text(c.profile, param));
        d.documented = Some(own.source.clone());
    }
    d.reason = format!(
        "zero-window probe as {form} instead of one octet of new data (probing itself, MUST-36, is done; its interval is not judged)"
    );
    one(d)
}

/// A SYN resent shortly after an acknowledgment outside (ISS, SND.NXT]
/// arrived in SYN-SENT: RFC 9293 §3.10.7.3 answers (or drops) such a
/// segment and returns, so only the retransmission timer resends the SYN.
/// A profile's `syn_resend_after_bad_ack_ms` documents a stack that
/// re-arms its timer to resend early.
pub fn early_syn(c: &Case<'_>) -> Option<Vec<Divergence>> {
    let at = match c.failure.mismatch {
        Mismatch::Unexpected { at } | Mismatch::Early { at } => at,
        _ => return None,
    };
    let w = c.actual_wire()?;
    if !w.flags.syn || w.flags.ack {
        return None;
    }
    let s = c.stimulus()?;
    let rows = c.rows(s)?;
    let bad_ack = matches!(
        rows.event,
        Some(Event::Segment(e)) if e.ack != AckClass::New && e.ack != AckClass::Absent
    );
    if rows.state != tcp_spec::State::SynSent || !bad_ack {
        return None;
    }
    let gap = at.saturating_sub(c.trace.entries[s].at) as f64;
    let name = "syn_resend_after_bad_ack_ms";
    let own = c.spec().profile(c.profile).params.get(name)?;
    let mut d = c.base(Kind::Extra);
    d.rfc = vec!["RFC9293 3.10.7.3".into(), "RFC6298 5".into()];
    let predicted = own.value as f64 * 1000.0;
    let level = c.param_level(c.judge.rfc, name);
    d.class = Class::departure(level);
    d.level = Some(level);
    d.params = vec![c.param_text(c.judge.rfc, name)];
    if own.value > 0 && (gap - predicted).abs() <= 20_000.0 + c.tolerance() as f64 {
        d.params.push(c.param_text(c.profile, name));
        d.documented = Some(own.source.clone());
    }
    d.reason = "the SYN was resent right after an acknowledgment outside (ISS, SND.NXT] instead of when the retransmission timer expires".into();
    d.measured = Some(format!("SYN resent {} ms after the segment", ms_f(gap)));
    d.continues = true;
    one(d)
}

/// The phrase every reason of [`time_wait_length`] carries (the smoltcp
/// source note in `stacks.rs` is found by it).
pub const TIME_WAIT_ENDED: &str = "TIME-WAIT ended before the RFC's 2·MSL";

/// A segment the reference answers from TIME-WAIT that the target answers
/// with a RST, as a closed port: the target left TIME-WAIT before the RFC
/// profile's `time_wait_ms` (2·MSL with the 2-minute MSL).
///
/// A deviation (level none), not a MUST-violation. RFC 9293 §3.6 (MUST-13;
/// RFC 1122 §4.2.2.13 before it) requires an active closer to stay in
/// TIME-WAIT for twice the MSL, and leaves the MSL to §3.4.2 (RFC 793
/// §3.3): two minutes, called there an engineering choice open to change
/// when experience suggests it, with no keyword. A TIME-WAIT of length T
/// is 2·MSL for an MSL of T/2, so a short one departs from the MSL value,
/// and the level is the RFC profile's `msl_ms` level. (`time_wait_ms`
/// keeps MUST in the RFC profiles: it stands for MUST-13's 2·MSL, and
/// every profile keeps it at twice its `msl_ms`.)
///
/// No threshold makes a short MSL a MUST-violation again: no RFC bounds
/// the MSL from below; the MSL bounds how long a segment lives in the
/// network, and the harness's network (namespaces, or in-process) delivers
/// in microseconds, so no MSL it could observe is too short for it; a
/// floor of our choosing (Linux's 30 s, an RTO) would be this tool's policy
/// presented as the RFC's. From the wire the harness learns only T < the
/// time elapsed, so a stack with no TIME-WAIT at all (which would break
/// MUST-13) would read as the same deviation with a small bound on its MSL.
///
/// The target's profile documents the TIME-WAIT when its `time_wait_ms` had
/// run out by then, and the reason names the MSL it implies: Linux's
/// TCP_TIMEWAIT_LEN (include/net/tcp.h) is 60 s, MSL 30 s. A stack without
/// a profile gets the bound half the time elapsed; smoltcp's CLOSE_DELAY of
/// 10 s (MSL 5 s) is named by `stacks.rs`. Not inconclusive: that the
/// TIME-WAIT ended before 240 s is observed, and it is the same departure.
pub fn time_wait_length(c: &Case<'_>) -> Option<Vec<Divergence>> {
    if !matches!(
        c.failure.mismatch,
        Mismatch::Differs { .. } | Mismatch::Unexpected { .. }
    ) {
        return None;
    }
    let w = c.actual_wire()?;
    let s = c.stimulus()?;
    // A segment, not a call: an ABORT in TIME-WAIT is row END.ABORT's.
    c.inbound(s)?;
    let (state, _, _) = c.reference_step(s)?;
    if !w.flags.rst || state != tcp_spec::State::TimeWait {
        return None;
    }
    let entered = c
        .judge
        .reference
        .entries
        .iter()
        .find_map(|e| match e.kind {
            TraceKind::Transition {
                to: tcp_spec::State::TimeWait,
                ..
            } => Some(e.at),
            _ => None,
        })?;
    let elapsed_ms = c.trace.entries[s].at.saturating_sub(entered) / 1000;
    let rfc = &c.spec().profile(c.judge.rfc).params;
    if elapsed_ms >= rfc.time_wait_ms.value {
        return None;
    }
    let (tw, msl) = ("time_wait_ms", "msl_ms");
    let level = c.param_level(c.judge.rfc, msl);
    let mut d = c.base(Kind::Response);
    d.class = Class::departure(level);
    d.level = Some(level);
    d.rfc = vec![
        "RFC9293 3.6".into(),
        "RFC9293 3.4.2".into(),
        "RFC1122 4.2.2.13".into(),
    ];
    d.params = vec![
        c.param_text(c.judge.rfc, tw),
        c.param_text(c.judge.rfc, msl),
    ];
    let elapsed_s = (elapsed_ms + 2_500) / 5_000 * 5;
    let own = &c.spec().profile(c.profile).params.time_wait_ms;
    let implied = if c.profile != c.judge.rfc && own.value <= elapsed_ms {
        d.params.push(c.param_text(c.profile, tw));
        d.params.push(c.param_text(c.profile, msl));
        d.documented = Some(own.source.clone());
        format!(
            "the {} profile's {} s is 2·MSL for an MSL of {} s",
            c.profile,
            secs(own.value),
            secs(own.value / 2)
        )
    } else {
        format!("it is 2·MSL for an MSL under ≈{} s", secs(elapsed_s * 500))
    };
    d.reason = format!(
        "a segment ≈{elapsed_s} s into TIME-WAIT met a closed port: {TIME_WAIT_ENDED} ({} s); \
         {implied}, not the {} s of RFC 9293 3.4.2, a value stated without a keyword: \
         MUST-13 holds for that MSL",
        secs(rfc.time_wait_ms.value),
        secs(rfc.msl_ms.value)
    );
    one(d)
}

/// Milliseconds as seconds, with one decimal when they are not whole.
fn secs(ms: u64) -> String {
    if ms.is_multiple_of(1000) {
        (ms / 1000).to_string()
    } else {
        format!("{:.1}", ms as f64 / 1000.0)
    }
}

/// A data segment the script expected that was not sent.
struct MissingData {
    /// Its absolute sequence number.
    seq: u32,
    /// The target sent it before (so this one is a retransmission).
    sent_before: bool,
    /// Earlier data of the target is unacknowledged.
    in_flight: bool,
}

/// The expected data segment of a [`Mismatch::NotSent`] (no SYN or FIN).
fn missing_data(c: &Case<'_>) -> Option<MissingData> {
    if c.failure.mismatch != Mismatch::NotSent {
        return None;
    }
    let e = c.expected()?;
    let (rel, _, len) = e.seq?;
    if len == 0 || e.flags.syn || e.flags.fin {
        return None;
    }
    let tcb = c.tcb_before(c.trace.entries.len());
    let seq = tcb.iss?.wrapping_add(rel);
    Some(MissingData {
        seq,
        sent_before: c.outs().iter().any(|(_, _, w)| same_segment(w, seq)),
        in_flight: tcb.snd_nxt != tcb.snd_una,
    })
}

/// A retransmission the script expects after duplicate ACKs: fast
/// retransmit (RFC 5681 §3.2) is not in the table. With fewer than three
/// duplicates none is due, so not sending one conforms to RFC 5681.
pub fn fast_retransmit(c: &Case<'_>) -> Option<Vec<Divergence>> {
    let m = missing_data(c)?;
    if !m.sent_before {
        return None;
    }
    let seq = m.seq;
    let acks: Vec<WireSegment> = c
        .trace
        .entries
        .iter()
        .filter_map(|x| match &x.kind {
            TraceKind::PacketIn { bytes, .. } => wire::decode(bytes).ok(),
            _ => None,
        })
        .filter(|w| w.flags.ack && w.ack == seq && seg_len(w) == 0)
        .collect();
    let dups = acks.len().saturating_sub(1);
    if dups == 0 {
        return None;
    }
    let mut d = c.base(Kind::Missing);
    d.rfc = vec!["RFC5681 3.2".into()];
    if dups >= 3 {
        d.class = Class::NotModelled;
        d.reason = format!(
            "a fast retransmit after {dups} duplicate ACKs: fast retransmit is not in the table"
        );
    } else {
        d.class = Class::Conforms;
        d.level = Some(Level::Should);
        d.reason = format!(
            "only {dups} duplicate ACK(s): fast retransmit waits for the third, so none is due"
        );
        d.continues = true;
    }
    one(d)
}

// ----- acknowledgments and new data --------------------------------------

/// The first acknowledgment of what the peer sent, earlier than the script
/// expected it: the row that took the data in asks for it, and may delay
/// it but need not (RFC 9293 §3.8.6.3, RFC 1122 §4.2.3.2) — as long as the
/// delay stays under 0.5 s (MUST-40).
pub fn immediate_ack(c: &Case<'_>) -> Option<Vec<Divergence>> {
    let at = match c.failure.mismatch {
        Mismatch::Unexpected { at } | Mismatch::Differs { at, .. } => at,
        _ => return None,
    };
    let w = c.actual_wire()?;
    if ctl_of(&w) != [Ctl::Ack] || w.payload_len > 0 {
        return None;
    }
    let idx = c.out_index()?;
    let acked_input = c.trace.entries[..idx]
        .iter()
        .rev()
        .find_map(|e| match &e.kind {
            TraceKind::PacketIn { bytes, .. } => wire::decode(bytes)
                .ok()
                .filter(|i| seg_len(i) > 0 && i.seq.wrapping_add(seg_len(i)) == w.ack)
                .map(|_| e.at),
            _ => None,
        })?;
    let acked_before = c
        .outs()
        .iter()
        .any(|(i, _, o)| *i < idx && o.flags.ack && o.ack == w.ack);
    if acked_before {
        return None;
    }
    let delay = at.saturating_sub(acked_input);
    let mut d = c.base(kind_of(c));
    d.rfc = vec!["RFC9293 3.8.6.3".into(), "RFC1122 4.2.3.2".into()];
    if delay >= 500_000 {
        d.class = Class::MustViolation;
        d.level = Some(Level::Must);
        d.reason = "the acknowledgment of received data came 0.5 s or more after the data (MUST-40: less than 0.5 s)".into();
        return one(d);
    }
    d.class = Class::Conforms;
    d.continues = true;
    d.reason = "the acknowledgment of received data, sent at once or after a delay under 0.5 s (either is allowed), where the script expected it later".into();
    one(d)
}

/// New data the script did not expect yet: how much to send at once is
/// the sender's choice within the peer's window and its congestion window
/// (RFC 9293 §3.8.6.2.1, RFC 5681 §3.1).
pub fn new_data(c: &Case<'_>) -> Option<Vec<Divergence>> {
    if !matches!(c.failure.mismatch, Mismatch::Unexpected { .. }) {
        return None;
    }
    let w = c.actual_wire()?;
    let idx = c.out_index()?;
    if w.payload_len == 0
        || c.outs()
            .iter()
            .any(|(i, _, o)| *i < idx && same_segment(o, w.seq))
    {
        return None;
    }
    let mut d = c.base(Kind::Extra);
    d.class = Class::Allowed;
    d.reason =
        "how much new data to send at once is the sender's choice within the peer's window".into();
    d.rfc = vec!["RFC9293 3.8.6.2.1".into(), "RFC5681 3.1".into()];
    one(d)
}

/// New data the script expected that was not sent while earlier data is
/// still unacknowledged: the sender may hold it back — its congestion
/// window allows an initial window of up to four segments (RFC 5681 §3.1;
/// ten is RFC 6928, experimental) and grows with acknowledgments.
pub fn send_window(c: &Case<'_>) -> Option<Vec<Divergence>> {
    let m = missing_data(c)?;
    if m.sent_before || !m.in_flight {
        return None;
    }
    let mut d = c.base(Kind::Missing);
    d.class = Class::Allowed;
    d.reason = "new data held back while earlier data is unacknowledged: how much to send is the sender's choice within its congestion window".into();
    d.rfc = vec!["RFC5681 3.1".into(), "RFC6928 2".into()];
    d.continues = true;
    one(d)
}

/// The rows of the stimulus, when it is an injected packet.
fn packet_rows<'c>(c: &'c Case<'_>) -> Option<(usize, Rows<'c>)> {
    let s = c.stimulus()?;
    let r = c.rows(s)?;
    Some((s, r))
}

/// A missing pure ACK the target's row may delay (RFC 1122 §4.2.3.2: an
/// ACK may wait, less than 0.5 s).
pub fn delayed_ack(c: &Case<'_>) -> Option<Vec<Divergence>> {
    if c.failure.mismatch != Mismatch::NotSent {
        return None;
    }
    let e = c.expected()?;
    if e.flags.syn || e.flags.fin || e.flags.rst || e.seq.is_some_and(|(_, _, l)| l > 0) {
        return None;
    }
    let (_, rows) = packet_rows(c)?;
    if !rows.own.delayable {
        return None;
    }
    let mut d = c.base(Kind::Missing);
    d.class = Class::Allowed;
    d.reason = format!(
        "row {} lets the ACK wait (less than {} ms)",
        rows.own.id,
        c.spec().profile(c.profile).params.delayed_ack_max_ms.value
    );
    d.rows.push(rows.own.id.clone());
    d.rfc = vec!["RFC1122 4.2.3.2".into(), "RFC9293 3.8.6.3".into()];
    d.continues = true;
    one(d)
}

/// Whether profile `p` rate-limits the reply the RFC row `row` gives to
/// `ev`: challenge ACKs (`rate_limited` rows, RFC 5961 §7) wherever `p`
/// limits them; and with a shared out-of-window limiter
/// (`oow_ack_interval_ms`, Linux's `tcp_oow_rate_limited`) also the ACK to
/// an unacceptable segment without data or FIN (or with SYN), and the
/// challenge ACK to an acknowledgment of unsent or too old data
/// (RFC 5961 §5.2).
fn limited(c: &Case<'_>, p: Profile, row: &tcp_spec::Row, ev: Option<&Event>) -> bool {
    let params = &c.spec().profile(p).params;
    let oow = params.oow_ack_interval_ms.value > 0;
    if row.rate_limited {
        return oow || params.challenge_ack_per_sec.value > 0;
    }
    let Some(Event::Segment(s)) = ev else {
        return false;
    };
    let unacceptable = matches!(
        s.seq,
        SeqClass::Below | SeqClass::Beyond | SeqClass::ZeroWindowOff
    );
    let bad_ack = matches!(s.ack, AckClass::TooOld | AckClass::Beyond);
    oow && !s.rst && ((unacceptable && ((!s.payload && !s.fin) || s.syn)) || bad_ack)
}

/// Times of the target's replies to earlier stimuli that `p`'s limiter
/// covers (a pure ACK sent right after such a stimulus). The limiter's
/// clock restarts only when a reply goes out.
fn limited_replies(c: &Case<'_>, p: Profile, before: usize) -> Vec<Micros> {
    let mut out = Vec::new();
    for (i, e) in c.trace.entries.iter().enumerate().take(before) {
        if !matches!(e.kind, TraceKind::PacketIn { .. }) {
            continue;
        }
        let Some(rows) = c.rows(i) else { continue };
        if !limited(c, p, rows.rfc, rows.event.as_ref()) {
            continue;
        }
        let replied = c.trace.entries[i + 1..]
            .iter()
            .take_while(|x| !matches!(x.kind, TraceKind::PacketIn { .. } | TraceKind::Call { .. }))
            .find_map(|x| match &x.kind {
                TraceKind::PacketOut { bytes, .. } => wire::decode(bytes)
                    .ok()
                    .filter(|w| ctl_of(w) == [Ctl::Ack] && w.payload_len == 0)
                    .map(|_| x.at),
                _ => None,
            });
        out.extend(replied);
    }
    out
}

/// A missing ACK that the target's own profile rate-limits: challenge ACKs
/// (RFC 5961 §7 asks for throttling, so this conforms) or, with Linux's
/// shared out-of-window limiter, the ACK to an unacceptable segment
/// (a documented departure at the level the parameter records).
pub fn rate_limit(c: &Case<'_>) -> Option<Vec<Divergence>> {
    if c.failure.mismatch != Mismatch::NotSent {
        return None;
    }
    let e = c.expected()?;
    if e.flags.syn || e.flags.fin || e.flags.rst {
        return None;
    }
    let (s, rows) = packet_rows(c)?;
    if !limited(c, c.profile, rows.rfc, rows.event.as_ref()) {
        return None;
    }
    let stim_at = c.trace.entries[s].at;
    let params = &c.spec().profile(c.profile).params;
    let interval_ms = match params.oow_ack_interval_ms.value {
        0 => 1000 / params.challenge_ack_per_sec.value.max(1),
        v => v,
    };
    let last = limited_replies(c, c.profile, s).into_iter().next_back()?;
    let gap_ms = stim_at.saturating_sub(last) / 1000;
    // 5 % either side of the interval: the target's clock is not ours.
    if gap_ms * 20 >= interval_ms * 21 {
        return None;
    }
    let mut d = c.base(Kind::Missing);
    d.rows.push(rows.rfc.id.clone());
    d.continues = true;
    d.measured = Some(format!("{gap_ms} ms after the last limited reply"));
    if gap_ms * 20 > interval_ms * 19 {
        d.reason = format!(
            "the reply is missing at the edge of the {interval_ms} ms limit after the last rate-limited one"
        );
        return one(d);
    }
    let name = if params.oow_ack_interval_ms.value > 0 {
        "oow_ack_interval_ms"
    } else {
        "challenge_ack_per_sec"
    };
    d.params.push(c.param_text(c.profile, name));
    let challenge = rows.rfc.rate_limited
        || matches!(&rows.event, Some(Event::Segment(e)) if matches!(e.ack, AckClass::TooOld | AckClass::Beyond));
    if challenge {
        d.class = Class::Conforms;
        d.level = Some(Level::Should);
        d.reason = format!(
            "the challenge ACK of row {} is rate-limited (the {} profile allows one per {interval_ms} ms)",
            rows.rfc.id, c.profile
        );
        d.rfc = vec!["RFC5961 7".into()];
    } else {
        let level = c.param_level(c.profile, name);
        d.class = Class::departure(level);
        d.level = Some(level);
        d.reason = format!(
            "the ACK row {} asks for is suppressed by the {} profile's shared out-of-window limiter (one reply per {interval_ms} ms)",
            rows.rfc.id, c.profile
        );
        d.documented = Some(params.oow_ack_interval_ms.source.clone());
        d.rfc = vec!["RFC9293 3.10.7.4".into(), "RFC5961 7".into()];
    }
    one(d)
}

// ----- responses ------------------------------------------------------------

/// The answer to the stimulus, judged by rows: what the RFC profile's row
/// emits (conforms), what a row of the target's own profile emits (a
/// documented departure at that row's level), or neither (a departure at
/// the RFC row's level). The event is classified in the target's own
/// sequence space and window.
pub fn response(c: &Case<'_>) -> Option<Vec<Divergence>> {
    let kind = kind_of(c);
    let s = c.stimulus()?;
    let rows = c.rows(s);
    let mut d = c.base(if kind == Kind::Timing {
        Kind::Response
    } else {
        kind
    });
    let Some(rows) = rows else {
        d.class = Class::NotModelled;
        d.reason = "the table has no row for the stimulus in the target's state (or the reference logged none)".into();
        return one(d);
    };
    let sent = c.sent_after(s);
    let seen = shown(&sent);
    let what = match c.inbound(s) {
        Some(w) => format!("{}", w.flags),
        None => "the call".into(),
    };
    let state = rows.state;
    d.rows.push(rows.rfc.id.clone());
    d.rfc.extend(rows.rfc.rfc.iter().cloned());
    // The values differ while the control bits are the row's.
    let values = matches!(&c.failure.mismatch, Mismatch::Differs { fields, .. }
        if fields.iter().any(|f| matches!(f, Field::Seq | Field::Ack | Field::Len)));
    let rfc_fits = emits(rows.rfc, &sent, state) && !values;
    if let Some(via) = rows
        .diverted
        .filter(|_| rfc_fits || emits(rows.own, &sent, state))
    {
        // An earlier documented departure left the target in another
        // state; in that state it answers as the rows say.
        let level = via.level.unwrap_or(Level::None);
        d.class = Class::departure(level);
        d.level = Some(level);
        d.rows = vec![via.id.clone(), rows.own.id.clone()];
        d.documented = via.mechanism.as_ref().map(|m| m.to_string());
        d.continues = true;
        d.reason = format!(
            "row {} ({}) left the connection in {state}, where {what} draws {seen} (row {}): {}",
            via.id, c.profile, rows.own.id, via.effect
        );
        return one(d);
    }
    if rfc_fits {
        d.class = Class::Conforms;
        d.level = rows.rfc.level;
        d.continues = true;
        d.reason = format!(
            "row {} ({}) emits {seen}, as the target did: the script expects what the table does not prescribe here",
            rows.rfc.id, c.judge.rfc
        );
        return one(d);
    }
    if rows.own.id != rows.rfc.id && emits(rows.own, &sent, state) {
        let level = rows.own.level.unwrap_or(Level::None);
        d.class = Class::departure(level);
        d.level = Some(level);
        d.rows.push(rows.own.id.clone());
        for r in &rows.own.rfc {
            add_unique(&mut d.rfc, r.clone());
        }
        d.documented = rows
            .own
            .mechanism
            .as_ref()
            .map(|m| m.to_string())
            .or_else(|| Some(rows.own.rfc.join(", ")));
        d.continues = rows.own.next.resolve(state) == rows.rfc.next.resolve(state);
        d.reason = format!(
            "row {} ({}) answers {what} in {state} with {seen}: {}",
            rows.own.id, c.profile, rows.own.effect
        );
        return one(d);
    }
    let level = rows.rfc.level.unwrap_or(Level::None);
    d.class = Class::departure(level);
    d.level = Some(level);
    d.continues = true;
    d.reason = if values && emits(rows.rfc, &sent, state) {
        format!(
            "the control bits are row {}'s, but its SEQ/ACK/length are not what the row prescribes",
            rows.rfc.id
        )
    } else {
        format!(
            "on {what} in {state}, row {} emits {}; the target sent {seen}",
            rows.rfc.id,
            emitted(rows.rfc)
        )
    };
    one(d)
}
