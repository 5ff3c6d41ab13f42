//! The fingerprint: a target's timer parameters estimated from what its
//! packets show, each classified against the RFC at the level of the rule.
//!
//! α, β and K (RFC 6298 §2.3) are identified jointly: every pure-sample
//! scenario gives one equation RTO_obs = SRTT_n + K·RTTVAR_n, where SRTT_n
//! and RTTVAR_n follow from the observed samples through α and β (the first
//! sample rule of §2.2 fixed). Scenarios with distinct sample sequences make
//! the three identifiable; they are solved by least squares (a grid, then
//! Gauss–Newton) with 95 % intervals from the linearised covariance.

use super::history::TimerEvent;
use super::observe::Flow;
use super::scenarios::{DelAck, Family, Isns, Outcome, Trim};
use crate::verdict::Class;
use serde::Serialize;
use tcp_spec::rto::{RtoConfig, ALPHA, BETA, K, SYN_R2_MIN};
use tcp_spec::{Level, Params};

/// One estimated parameter and its verdict.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Estimate {
    pub name: &'static str,
    /// The estimate; `None` when the observations do not show it.
    pub value: Option<f64>,
    /// A 95 % confidence interval when the estimate is statistical.
    pub ci: Option<(f64, f64)>,
    pub unit: &'static str,
    /// What the RFC asks, in words.
    pub rfc_value: String,
    pub rfc: &'static str,
    pub level: Level,
    pub class: Class,
    pub note: String,
}

/// A relative tolerance for the gains: within 10 % of the RFC value.
pub const GAIN_TOLERANCE: f64 = 0.10;

/// One equation of the gain fit: the valid samples, then the observed RTO.
#[derive(Clone, Debug, PartialEq)]
pub struct Equation {
    pub samples: Vec<f64>,
    pub observed: f64,
}

/// SRTT + K·RTTVAR after `samples` under gains α, β (RFC 6298 §§2.2–2.3),
/// without the bounds.
pub fn model(samples: &[f64], alpha: f64, beta: f64, k: f64, g: f64) -> f64 {
    let Some((&first, rest)) = samples.split_first() else {
        return f64::NAN;
    };
    let (mut srtt, mut var) = (first, first / 2.0);
    for &r in rest {
        var = (1.0 - beta) * var + beta * (srtt - r).abs();
        srtt = (1.0 - alpha) * srtt + alpha * r;
    }
    srtt + g.max(k * var)
}

fn ssr(eqs: &[Equation], p: [f64; 3], g: f64) -> f64 {
    eqs.iter()
        .map(|e| (model(&e.samples, p[0], p[1], p[2], g) - e.observed).powi(2))
        .sum()
}

/// The fitted gains with their 95 % intervals.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Gains {
    pub alpha: (f64, (f64, f64)),
    pub beta: (f64, (f64, f64)),
    pub k: (f64, (f64, f64)),
    pub rms: f64,
}

/// Solves 3×3 `a·x = b` by Gaussian elimination with partial pivoting.
fn solve3(mut a: [[f64; 3]; 3], mut b: [f64; 3]) -> Option<[f64; 3]> {
    for c in 0..3 {
        let piv = (c..3).max_by(|&i, &j| a[i][c].abs().total_cmp(&a[j][c].abs()))?;
        if a[piv][c].abs() < 1e-300 {
            return None;
        }
        a.swap(c, piv);
        b.swap(c, piv);
        let (prow, pb) = (a[c], b[c]);
        for (r, (row, br)) in a.iter_mut().zip(b.iter_mut()).enumerate() {
            if r != c {
                let f = row[c] / prow[c];
                for (x, p) in row.iter_mut().zip(prow) {
                    *x -= f * p;
                }
                *br -= f * pb;
            }
        }
    }
    Some([b[0] / a[0][0], b[1] / a[1][1], b[2] / a[2][2]])
}

/// Least squares over `eqs` for (α, β, K); `resolution` (s) floors the
/// residual spread used for the intervals (the clock the times come from).
pub fn fit_gains(eqs: &[Equation], g: f64, resolution: f64) -> Option<Gains> {
    if eqs.len() < 4 {
        return None;
    }
    // A coarse grid finds the basin, Gauss–Newton refines.
    let mut best = ([0.5, 0.5, 2.0], f64::INFINITY);
    for i in 1..40 {
        for j in 1..40 {
            for kk in 1..=40 {
                let p = [i as f64 / 40.0, j as f64 / 40.0, kk as f64 / 4.0];
                let s = ssr(eqs, p, g);
                if s < best.1 {
                    best = (p, s);
                }
            }
        }
    }
    let mut p = best.0;
    let jac = |p: [f64; 3]| -> Vec<[f64; 3]> {
        eqs.iter()
            .map(|e| {
                let mut row = [0.0; 3];
                for (d, slot) in row.iter_mut().enumerate() {
                    let h = 1e-6;
                    let (mut hi, mut lo) = (p, p);
                    hi[d] += h;
                    lo[d] -= h;
                    *slot = (model(&e.samples, hi[0], hi[1], hi[2], g)
                        - model(&e.samples, lo[0], lo[1], lo[2], g))
                        / (2.0 * h);
                }
                row
            })
            .collect()
    };
    let normal = |p: [f64; 3]| -> ([[f64; 3]; 3], [f64; 3]) {
        let j = jac(p);
        let mut a = [[0.0; 3]; 3];
        let mut b = [0.0; 3];
        for (row, e) in j.iter().zip(eqs) {
            let r = e.observed - model(&e.samples, p[0], p[1], p[2], g);
            for x in 0..3 {
                b[x] += row[x] * r;
                for y in 0..3 {
                    a[x][y] += row[x] * row[y];
                }
            }
        }
        (a, b)
    };
    let mut lambda = 1e-3;
    for _ in 0..100 {
        let (a, b) = normal(p);
        let mut damped = a;
        for (d, row) in damped.iter_mut().enumerate() {
            row[d] *= 1.0 + lambda;
        }
        let Some(step) = solve3(damped, b) else { break };
        let cand = [p[0] + step[0], p[1] + step[1], p[2] + step[2]];
        if ssr(eqs, cand, g) < ssr(eqs, p, g) {
            p = cand;
            lambda = (lambda / 10.0).max(1e-12);
            if step.iter().all(|s| s.abs() < 1e-12) {
                break;
            }
        } else {
            lambda *= 10.0;
            if lambda > 1e12 {
                break;
            }
        }
    }
    let n = eqs.len() as f64;
    let s = ssr(eqs, p, g);
    let sigma2 = (s / (n - 3.0).max(1.0)).max(resolution * resolution / 12.0);
    let (a, _) = normal(p);
    let mut half = [f64::NAN; 3];
    for (d, h) in half.iter_mut().enumerate() {
        let mut e = [0.0; 3];
        e[d] = 1.0;
        if let Some(col) = solve3(a, e) {
            *h = 1.96 * (sigma2 * col[d]).max(0.0).sqrt();
        }
    }
    let ci = |d: usize| (p[d], (p[d] - half[d], p[d] + half[d]));
    Some(Gains {
        alpha: ci(0),
        beta: ci(1),
        k: ci(2),
        rms: (s / n).sqrt(),
    })
}

/// Everything the probes produced.
#[derive(Clone, Debug, Default)]
pub struct Observations {
    pub outcomes: Vec<Outcome>,
    pub delack: Option<DelAck>,
    pub isns: Option<Isns>,
    pub trim: Option<Trim>,
    /// Scenarios that could not run to the end: (name, reason). What
    /// they would have measured is inconclusive.
    pub failed: Vec<(String, String)>,
}

/// The target's timing tolerance and the reference it is judged against.
#[derive(Clone, Copy, Debug)]
pub struct Judging<'a> {
    /// The RFC profile's parameters (the reference of every verdict).
    pub rfc: &'a Params,
    /// Absolute tolerance of a time comparison (s).
    pub tol: f64,
    /// Resolution of the target's clock (s), for the intervals.
    pub resolution: f64,
    /// Relative lateness allowed on top of `tol`: a kernel's timer wheel
    /// fires a timeout up to 1/8 of it late (`run::linux`), never early.
    pub rel: f64,
}

impl Judging<'_> {
    /// Whether an observed time matches a predicted one.
    pub fn close(&self, observed: f64, predicted: f64) -> bool {
        let d = observed - predicted;
        -self.tol <= d && d <= self.tol + self.rel * predicted
    }

    /// Whether an observed ratio of successive intervals matches `want`
    /// (each interval may be late by `rel` of itself).
    pub fn ratio_close(&self, observed: f64, want: f64) -> bool {
        (observed - want).abs() <= 0.01 + self.rel * want
    }
}

fn verdict(ok: bool, level: Level) -> Class {
    if ok {
        Class::Conforms
    } else {
        Class::departure(level)
    }
}

/// The rival outcome of a Karn check: for the retransmission `r`, the
/// RTO had the last input before it gone the other way — the backed-off
/// RTO without the last valid sample, or the sample taken although the
/// segment was retransmitted.
fn rival(o: &Outcome, r: &super::observe::Resend, rfc: RtoConfig) -> f64 {
    let mut before = o.flow.before(r);
    if let Some(TimerEvent::Sample(s)) = before.last_mut() {
        s.retransmitted = !s.retransmitted;
    }
    super::history::predict(rfc, 0, &before) / 1e6
}

fn first_resend(o: &Outcome) -> Option<f64> {
    o.flow.resends.first().map(|r| r.observed())
}

/// The pure-sample equations of the gain fit: each scenario's valid
/// samples before its first retransmission and that retransmission's
/// interval, when it lies strictly between the bounds.
pub fn equations(outcomes: &[Outcome], min: f64, max: f64, tol: f64) -> Vec<Equation> {
    outcomes
        .iter()
        .filter(|o| {
            matches!(
                o.family,
                Family::Steady
                    | Family::StepUp
                    | Family::StepDown
                    | Family::HighVariance
                    | Family::Generated
            )
        })
        .filter_map(|o| {
            let r = o.flow.resends.first()?;
            let before = o.flow.before(r);
            if before
                .iter()
                .any(|e| matches!(e, TimerEvent::Expiry { .. }))
            {
                return None;
            }
            let samples = o.flow.valid_samples(r.events_before);
            let observed = r.observed();
            (observed > min + tol && observed < max - tol && !samples.is_empty())
                .then_some(Equation { samples, observed })
        })
        .collect()
}

/// The median of `xs` (0 for none).
fn median(xs: impl Iterator<Item = f64>) -> f64 {
    let mut v: Vec<f64> = xs.collect();
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

fn ratio_median(xs: &[f64]) -> Option<f64> {
    let mut r: Vec<f64> = xs.windows(2).map(|w| w[1] / w[0]).collect();
    r.sort_by(f64::total_cmp);
    r.get(r.len() / 2).copied()
}

fn get(o: &Observations, f: Family) -> Option<&Outcome> {
    o.outcomes.iter().find(|x| x.family == f)
}

/// The retransmission intervals of a family's flow (s), oldest first.
fn intervals(o: &Observations, f: Family) -> Vec<f64> {
    get(o, f)
        .map(|o| o.flow.resends.iter().map(|r| r.observed()).collect())
        .unwrap_or_default()
}

fn secs(v: u64) -> f64 {
    v as f64 / 1000.0
}

/// Records one estimate: name, value, confidence interval, unit, the RFC's
/// value, the RFC section, the level, whether the value conforms (`None`:
/// no claim) and a note.
type Push<'a> = dyn FnMut(
        &'static str,
        Option<f64>,
        Option<(f64, f64)>,
        &'static str,
        String,
        &'static str,
        Level,
        Option<bool>,
        String,
    ) + 'a;

/// The level a profile parameter's source gives (none when ungraded).
fn lvl(s: &tcp_spec::profile::Sourced) -> Level {
    s.level.unwrap_or(Level::None)
}

/// The fingerprint of a target from its observations, one section of
/// estimates after another.
pub fn fingerprint(obs: &Observations, j: Judging<'_>) -> Vec<Estimate> {
    let rfc = RtoConfig::from_params(j.rfc);
    let mut out = Vec::new();
    let mut push = |name: &'static str,
                    value: Option<f64>,
                    ci: Option<(f64, f64)>,
                    unit: &'static str,
                    rfc_value: String,
                    rfc_ref: &'static str,
                    level: Level,
                    ok: Option<bool>,
                    note: String| {
        let class = match ok {
            Some(ok) => verdict(ok, level),
            None => Class::Inconclusive,
        };
        out.push(Estimate {
            name,
            value,
            ci,
            unit,
            rfc_value,
            rfc: rfc_ref,
            level,
            class,
            note,
        });
    };
    for section in [
        rto_bounds,
        gains,
        karn,
        syn_schedule,
        delayed_ack,
        persist,
        isns_and_trim,
    ] {
        section(obs, j, rfc, &mut push);
    }
    out
}

/// The initial, minimum and maximum RTO and the back-off factor (RFC 6298 §§2.1, 2.4, 2.5, 5.5).
fn rto_bounds(obs: &Observations, j: Judging<'_>, rfc: RtoConfig, push: &mut Push<'_>) {
    let tol = j.tol;
    // Initial RTO: the first SYN retransmission interval.
    let syn_iv = intervals(obs, Family::Syn);
    let init = syn_iv.first().copied();
    push(
        "initial RTO",
        init,
        None,
        "s",
        format!("{} s", rfc.initial),
        "RFC6298 2.1",
        lvl(&j.rfc.rto_initial_ms),
        init.map(|v| j.close(v, rfc.initial)),
        "first SYN retransmission interval".into(),
    );

    // Minimum RTO: tiny samples, the RTO shows its floor.
    let min = get(obs, Family::MinRto).and_then(first_resend);
    push(
        "min RTO",
        min,
        None,
        "s",
        format!("{} s", rfc.min),
        "RFC6298 2.4",
        lvl(&j.rfc.rto_min_ms),
        min.map(|v| v + tol >= rfc.min),
        "RTO after three 10 ms samples".into(),
    );

    // Back-off factor and cap: expiry after expiry.
    let bo = intervals(obs, Family::Backoff);
    let cap = bo
        .iter()
        .copied()
        .fold(None, |m: Option<f64>, v| Some(m.map_or(v, |m| m.max(v))));
    let capped = bo.len() >= 2
        && bo
            .windows(2)
            .last()
            .is_some_and(|w| j.close(w[1], w[0]) || j.close(w[0], w[1]));
    let growing: Vec<f64> = bo
        .iter()
        .copied()
        .take_while(|v| cap.is_none_or(|c| !(j.close(*v, c) || j.close(c, *v))))
        .collect();
    let factor = ratio_median(&growing);
    push(
        "backoff factor",
        factor,
        None,
        "x",
        "2".into(),
        "RFC6298 5.5",
        Level::Must,
        factor.map(|f| j.ratio_close(f, 2.0)),
        format!("median ratio of {} successive RTOs", growing.len()),
    );
    push(
        "max RTO (cap)",
        if capped { cap } else { None },
        None,
        "s",
        ">= 60 s".into(),
        "RFC6298 2.5",
        Level::Must,
        if capped {
            cap.map(|c| c + tol >= 60.0)
        } else {
            None
        },
        if capped {
            "the interval stopped growing".into()
        } else {
            "no cap reached in the scenario".into()
        },
    );
}

/// The estimator's gains α, β and K, fitted to the first retransmissions (RFC 6298 §2.3).
fn gains(obs: &Observations, j: Judging<'_>, rfc: RtoConfig, push: &mut Push<'_>) {
    let tol = j.tol;
    // α, β, K.
    let eqs = equations(&obs.outcomes, rfc.min, rfc.max, tol);
    let gains = fit_gains(&eqs, rfc.granularity, j.resolution);
    // The fit pins a gain down only when the model explains the intervals
    // to within the timer's own slack; otherwise no claim is made.
    let slack = tol + j.rel * median(eqs.iter().map(|e| e.observed));
    // ... and puts every first retransmission where the clock allows.
    let misses = |g: &Gains| {
        eqs.iter()
            .filter(|e| {
                let p = model(&e.samples, g.alpha.0, g.beta.0, g.k.0, rfc.granularity);
                !j.close(e.observed, p)
            })
            .count()
    };
    let explains = |g: &Gains| g.rms <= slack && misses(g) == 0;
    for (name, want, pick) in [
        ("SRTT gain alpha", ALPHA, 0usize),
        ("RTTVAR gain beta", BETA, 1),
        ("K", K, 2),
    ] {
        let v = gains.map(|g| [g.alpha, g.beta, g.k][pick]);
        let near = |x: f64| (x - want).abs() <= GAIN_TOLERANCE * want;
        let ok = match (v, gains) {
            (Some((x, (lo, hi))), Some(g)) if explains(&g) => {
                if near(x) {
                    Some(true)
                } else {
                    // A departure only when the whole interval is off.
                    (!near(lo) && !near(hi) && (lo > want || hi < want)).then_some(false)
                }
            }
            _ => None,
        };
        push(
            name,
            v.map(|v| v.0),
            v.map(|v| v.1),
            "",
            format!("{want}"),
            "RFC6298 2.3",
            Level::Must,
            ok,
            format!(
                "least squares over {} scenarios{}{}",
                eqs.len(),
                gains.map_or(String::new(), |g| format!(", rms {:.1} us", g.rms * 1e6)),
                if let Some(g) = gains.filter(|g| !explains(g)) {
                    format!(
                        "; with no gains does the RFC 6298 model put every interval within the \
                         clock's slack ({} of {} missed), so no claim on the gains",
                        misses(&g),
                        eqs.len()
                    )
                } else {
                    String::new()
                }
            ),
        );
    }
}

/// Karn's algorithm and the RTO recomputed after back-off (RFC 6298 §§3, 5.7).
fn karn(obs: &Observations, j: Judging<'_>, rfc: RtoConfig, push: &mut Push<'_>) {
    // Karn: the retransmitted segment's ACK must not give a sample, the
    // backed-off RTO stays (RFC 6298 §3, §5.7). A valid sample after
    // back-off recomputes RTO (RFC 6298 §2.3, §5.7).
    for (family, name, what, rfc_ref, note) in [
        (
            Family::Karn,
            "Karn's algorithm",
            "backed off",
            "RFC6298 3",
            "RTO after an ACK of a retransmitted segment",
        ),
        (
            Family::AfterBackoff,
            "RTO recomputed after back-off",
            "recomputed",
            "RFC6298 2.3, 5.7",
            "RTO after a valid sample that follows two expiries",
        ),
    ] {
        let last = get(obs, family).and_then(|o| {
            let r = o.flow.resends.last()?;
            Some((r.observed(), o.flow.predicted(rfc, 0, r), rival(o, r, rfc)))
        });
        push(
            name,
            last.map(|k| k.0),
            None,
            "s",
            last.map_or(what.into(), |k| format!("{:.3} s ({what})", k.1)),
            rfc_ref,
            Level::Must,
            // On a real clock the stack's own estimator may differ from
            // the RFC's: what is judged is which of the two outcomes
            // (backed off, recomputed) the interval is nearer.
            last.map(|(o, p, other)| {
                j.close(o, p) || (j.rel > 0.0 && (o - p).abs() < (o - other).abs())
            }),
            note.into(),
        );
    }
}

/// The SYN and SYN-ACK retransmission schedules and the SYN give-up time (RFC 6298 §5.5, RFC 9293 §3.8.3).
fn syn_schedule(obs: &Observations, j: Judging<'_>, rfc: RtoConfig, push: &mut Push<'_>) {
    let tol = j.tol;
    // SYN schedule and give-up.
    let (want_sched, _) = tcp_spec::rto::syn_schedule(rfc, j.rfc.syn_retries.value);
    let want_iv: Vec<f64> = want_sched.windows(2).map(|w| w[1] - w[0]).collect();
    // The SYN-ACK follows the same schedule (RFC 9293 §3.8.3: R2 for a
    // SYN-ACK as for a SYN).
    let syn_iv = intervals(obs, Family::Syn);
    let synack_iv = intervals(obs, Family::SynAck);
    for (name, iv) in [("SYN schedule", &syn_iv), ("SYN-ACK schedule", &synack_iv)] {
        let ok = iv.len() == want_iv.len() && iv.iter().zip(&want_iv).all(|(a, b)| j.close(*a, *b));
        push(
            name,
            iv.get(1).zip(iv.first()).map(|(b, a)| b / a),
            None,
            "x",
            joined(&want_iv, 0, 1.0),
            "RFC6298 5.5, RFC9293 3.8.3",
            lvl(&j.rfc.syn_linear_timeouts),
            (!iv.is_empty()).then_some(ok),
            format!(
                "intervals {} s: {} retransmissions over {:.1} s, the RFC schedule has {}",
                joined(iv, 3, 1.0),
                iv.len(),
                iv.iter().sum::<f64>(),
                want_iv.len()
            ),
        );
    }
    let give_up = get(obs, Family::Syn)
        .and_then(|o| o.gave_up)
        .map(|us| us as f64 / 1e6);
    push(
        "SYN give-up time",
        give_up,
        None,
        "s",
        format!(">= {SYN_R2_MIN} s"),
        "RFC9293 3.8.3 (MUST-23)",
        lvl(&j.rfc.syn_retries),
        give_up.map(|g| g + tol >= SYN_R2_MIN),
        format!("{} SYNs sent", syn_iv.len() + 1),
    );
}

/// The delayed-ACK timeout and the ACK of every second full segment (RFC 9293 §3.8.6.3, RFC 5681 §4.2).
fn delayed_ack(obs: &Observations, j: Judging<'_>, _rfc: RtoConfig, push: &mut Push<'_>) {
    let tol = j.tol;
    // Delayed ACK.
    if let Some(d) = &obs.delack {
        let bound = secs(j.rfc.delayed_ack_max_ms.value);
        let lone: Vec<f64> = d.lone.iter().flatten().map(|&us| us as f64 / 1e6).collect();
        let worst = lone
            .iter()
            .copied()
            .fold(None, |m: Option<f64>, v| Some(m.map_or(v, |m| m.max(v))));
        push(
            "delayed-ACK timeout",
            worst,
            None,
            "s",
            format!("< {bound} s"),
            "RFC9293 3.8.6.3 (MUST-40)",
            lvl(&j.rfc.delayed_ack_max_ms),
            (lone.len() == d.lone.len() && !lone.is_empty())
                .then(|| worst.is_some_and(|w| w < bound)),
            format!("{} lone full-sized segments", d.lone.len()),
        );
        let pairs: Vec<f64> = d.pair.iter().flatten().map(|&us| us as f64 / 1e6).collect();
        let at_once = pairs.iter().filter(|&&v| v <= tol).count();
        push(
            "ACK every 2nd full segment",
            Some(at_once as f64 / d.pair.len().max(1) as f64),
            None,
            "share",
            "1".into(),
            "RFC9293 3.8.6.3 (SHLD-19), RFC5681 4.2",
            Level::Should,
            (!d.pair.is_empty()).then_some(at_once == d.pair.len()),
            format!(
                "ACK delays after the 2nd segment: {} ms",
                joined(&pairs, 0, 1e3)
            ),
        );
    }
}

/// The persist timer: first probe and back-off (RFC 9293 §3.8.6.1).
fn persist(obs: &Observations, j: Judging<'_>, rfc: RtoConfig, push: &mut Push<'_>) {
    // Persist timer.
    if let Some(o) = get(obs, Family::Persist) {
        let zw = o.zero_window_at.unwrap_or(0);
        // Probes of new data and their retransmissions, or probes without
        // data below SND.UNA ([`super::observe`]).
        let probes: Vec<u64> = o
            .flow
            .resends
            .iter()
            .filter(|r| r.at > zw)
            .map(|r| r.at)
            .collect();
        let first = probes.first().map(|&t| (t - zw) as f64 / 1e6);
        let rto_then = super::history::replay(
            rfc,
            0,
            &o.flow
                .events
                .iter()
                .filter(|(t, _)| *t <= zw)
                .map(|(_, e)| *e)
                .collect::<Vec<_>>(),
        )
        .rto();
        push(
            "persist: first probe",
            first,
            None,
            "s",
            format!("RTO = {rto_then:.3} s"),
            "RFC9293 3.8.6.1 (SHLD-29, MUST-36)",
            if first.is_none() {
                Level::Must
            } else {
                Level::Should
            },
            Some(first.is_some_and(|f| j.close(f, rto_then))),
            format!("{} probes", probes.len()),
        );
        let iv: Vec<f64> = probes
            .windows(2)
            .map(|w| w[1].saturating_sub(w[0]) as f64 / 1e6)
            .collect();
        let f = ratio_median(&iv);
        push(
            "persist: backoff factor",
            f,
            None,
            "x",
            "exponential (2)".into(),
            "RFC9293 3.8.6.1 (SHLD-30)",
            Level::Should,
            f.map(|f| f > 1.0 + 0.01),
            "median ratio of successive probe intervals".into(),
        );
    }
}

/// ISN clock and unguessability (RFC 9293 §3.4.1, RFC 6528 §3) and trimming to the window (RFC 9293 §3.10.7.4).
fn isns_and_trim(obs: &Observations, _j: Judging<'_>, _rfc: RtoConfig, push: &mut Push<'_>) {
    // ISNs.
    if let Some(i) = &obs.isns {
        let moves = i.same.windows(2).all(|w| w[0] != w[1]);
        push(
            "ISN clock (same 4-tuple)",
            Some(distinct(&i.same) as f64),
            None,
            "distinct",
            format!("{}", i.same.len()),
            "RFC9293 3.4.1 (MUST-8)",
            Level::Must,
            Some(moves && i.same.len() >= 2),
            "ISNs of reconnections one second apart".into(),
        );
        let guessed = linear_guesses(&i.distinct);
        push(
            "ISN unguessable (new 4-tuples)",
            Some(guessed as f64 / i.distinct.len().saturating_sub(2).max(1) as f64),
            None,
            "guessed",
            "0".into(),
            "RFC6528 3, RFC9293 3.4.1 (SHLD-1)",
            Level::Should,
            Some(guessed * 4 < i.distinct.len().max(1)),
            "share of ISNs a linear extrapolation of the two before guesses within 2^16".into(),
        );
    }

    // Window-edge trimming.
    if let Some(t) = &obs.trim {
        push(
            "trimmed to RCV.WND",
            t.acked.map(f64::from),
            None,
            "octets",
            format!("<= {}", t.window),
            "RFC9293 3.10.7.4",
            Level::None,
            t.acked.map(|a| a <= t.window),
            format!("{} octets sent into a {}-octet window", t.sent, t.window),
        );
    }
}

/// `xs` scaled by `scale`, with `prec` decimals, comma-separated.
fn joined(xs: &[f64], prec: usize, scale: f64) -> String {
    xs.iter()
        .map(|v| format!("{:.prec$}", v * scale))
        .collect::<Vec<_>>()
        .join(",")
}

fn distinct(v: &[u32]) -> usize {
    let mut s = v.to_vec();
    s.sort_unstable();
    s.dedup();
    s.len()
}

/// How many ISNs the line through the two before predicts within 2^16
/// (a blind attacker's window): a fixed or linear generator is guessed
/// every time, RFC 6528's keyed hash practically never.
pub fn linear_guesses(isns: &[u32]) -> usize {
    isns.windows(3)
        .filter(|w| {
            let guess = w[1].wrapping_add(w[1].wrapping_sub(w[0]));
            (w[2].wrapping_sub(guess) as i32).unsigned_abs() < 1 << 16
        })
        .count()
}

/// The predicted and observed interval of every retransmission in a flow.
pub fn points(flow: &Flow, cfg: RtoConfig, linear: u64) -> Vec<(f64, f64)> {
    flow.resends
        .iter()
        .map(|r| (r.observed(), flow.predicted(cfg, linear, r)))
        .collect()
}
