//! The reports of `tcpconform timers`: a text table, JSON, and an SVG of
//! observed against predicted retransmission times per scenario.

use super::estimate::{fingerprint, Estimate, Judging, Observations};
use super::observe::Flow;
use crate::verdict::Class;
use serde::Serialize;
use tcp_spec::rto::RtoConfig;
use tcp_spec::{Params, Profile};

/// One retransmission of a scenario: observed and predicted RTO (s).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Point {
    pub observed: f64,
    pub predicted: f64,
}

/// One scenario's retransmissions.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ScenarioPoints {
    pub name: String,
    pub family: super::scenarios::Family,
    pub points: Vec<Point>,
}

/// Everything `timers` says about one target.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TargetReport {
    pub target: String,
    pub profile: Profile,
    pub fingerprint: Vec<Estimate>,
    pub scenarios: Vec<ScenarioPoints>,
    /// The tolerance of the time comparisons (s).
    pub tolerance: f64,
    /// Lateness allowed on top, as a share of the predicted time.
    pub rel: f64,
    /// Scenarios that could not run to the end: (name, reason).
    pub failed: Vec<(String, String)>,
    /// For a stack's profile (not an RFC one): what the profile's table
    /// says of an estimated parameter, with its source and level — the
    /// link from a departure to the stack's mechanism. (estimate, text)
    pub profile_says: Vec<(String, String)>,
}

/// The profile parameter behind each estimate that has one.
const PROFILE_PARAMS: [(&str, &[&str]); 7] = [
    ("initial RTO", &["rto_initial_ms"]),
    ("min RTO", &["rto_min_ms", "rto_var_floor_ms"]),
    ("max RTO (cap)", &["rto_max_ms"]),
    ("K", &["rto_var_floor_ms"]),
    ("SYN schedule", &["syn_linear_timeouts"]),
    ("SYN give-up time", &["syn_retries", "syn_linear_timeouts"]),
    ("delayed-ACK timeout", &["delayed_ack_max_ms"]),
];

/// What a stack profile's table says of the estimates (empty for the
/// RFC profiles, whose values are the RFC column already).
fn profile_says(profile: Profile, active: &Params) -> Vec<(String, String)> {
    if matches!(profile, Profile::Rfc793 | Profile::Rfc9293) {
        return Vec::new();
    }
    PROFILE_PARAMS
        .iter()
        .map(|(est, keys)| {
            let said: Vec<String> = keys
                .iter()
                .filter_map(|k| active.get(k).map(|p| (k, p)))
                .map(|(k, p)| {
                    let level = p.level.map_or(String::new(), |l| format!(", {l}"));
                    format!("{k} = {} ({}{level})", p.value, p.source)
                })
                .collect();
            (est.to_string(), said.join("; "))
        })
        .collect()
}

impl TargetReport {
    /// Judges `obs` against the RFC profile; the scenario predictions
    /// follow the active profile's model (its RTO bounds and linear SYN
    /// timeouts).
    pub fn new(
        target: &str,
        profile: Profile,
        active: &Params,
        obs: &Observations,
        j: Judging<'_>,
    ) -> TargetReport {
        let cfg = RtoConfig::from_params(active);
        let linear = active.syn_linear_timeouts.value;
        TargetReport {
            target: target.into(),
            profile,
            fingerprint: fingerprint(obs, j),
            tolerance: j.tol,
            rel: j.rel,
            failed: obs.failed.clone(),
            profile_says: profile_says(profile, active),
            scenarios: obs
                .outcomes
                .iter()
                .map(|o| ScenarioPoints {
                    name: o.name.clone(),
                    family: o.family,
                    points: points(&o.flow, cfg, linear),
                })
                .collect(),
        }
    }

    /// The worst class of the fingerprint.
    pub fn worst(&self) -> Option<Class> {
        self.fingerprint.iter().map(|e| e.class).max()
    }
}

fn points(flow: &Flow, cfg: RtoConfig, linear: u64) -> Vec<Point> {
    flow.resends
        .iter()
        .map(|r| Point {
            observed: r.observed(),
            predicted: flow.predicted(cfg, linear, r),
        })
        .collect()
}

fn ci(e: &Estimate) -> String {
    e.ci.map_or(String::new(), |(lo, hi)| format!("[{lo:.6}, {hi:.6}]"))
}

fn value(e: &Estimate) -> String {
    match e.value {
        None => "-".into(),
        Some(v) if e.unit == "s" => format!("{v:.3} s"),
        Some(v) if e.unit.is_empty() => format!("{v:.6}"),
        Some(v) => format!("{v:.3} {}", e.unit),
    }
}

/// The fingerprint tables, one per target.
pub fn text(reports: &[TargetReport]) -> String {
    let mut s = String::new();
    for r in reports {
        s.push_str(&format!("timers: {} (profile {})\n", r.target, r.profile));
        s.push_str(&format!(
            "{:<31} {:<15} {:<22} {:<21} {:<7} {:<17} {}\n",
            "PARAMETER", "ESTIMATE", "95% CI", "RFC", "LEVEL", "CLASS", "SOURCE"
        ));
        for e in &r.fingerprint {
            s.push_str(&format!(
                "{:<31} {:<15} {:<22} {:<21} {:<7} {:<17} {}\n",
                e.name,
                value(e),
                ci(e),
                e.rfc_value,
                e.level.to_string(),
                e.class.name(),
                e.rfc
            ));
        }
        for (name, says) in &r.profile_says {
            s.push_str(&format!("{} profile, {name}: {says}\n", r.profile));
        }
        for (name, why) in &r.failed {
            s.push_str(&format!("scenario {name:?} could not run: {why}\n"));
        }
        let departs = r.fingerprint.iter().filter(|e| e.class.departs()).count();
        s.push_str(&format!("{departs} departures\n"));
        let (all, off) = agreement(r);
        s.push_str(&format!("{}\n", agreement_line(r, all, off.len())));
        for (name, n, p) in off {
            s.push_str(&format!(
                "  {name} #{n}: observed {:.6} s, predicted {:.6} s\n",
                p.observed, p.predicted
            ));
        }
        s.push('\n');
    }
    s
}

/// The retransmissions of every scenario, and those the active profile's
/// model does not put where they were seen: (total, [(scenario, n, point)]).
fn agreement(r: &TargetReport) -> (usize, Vec<(&str, usize, &Point)>) {
    let all: Vec<(&str, usize, &Point)> = r
        .scenarios
        .iter()
        .flat_map(|sc| {
            sc.points
                .iter()
                .enumerate()
                .map(move |(n, p)| (sc.name.as_str(), n + 1, p))
        })
        .collect();
    let total = all.len();
    let off = all
        .into_iter()
        .filter(|(_, _, p)| {
            let d = p.observed - p.predicted;
            d < -r.tolerance || d > r.tolerance + r.rel * p.predicted
        })
        .collect();
    (total, off)
}

fn agreement_line(r: &TargetReport, all: usize, off: usize) -> String {
    let late = if r.rel > 0.0 {
        format!(" (+{:.1} % late)", r.rel * 100.0)
    } else {
        String::new()
    };
    format!(
        "{} of {all} retransmissions at the time the {} model predicts (within {} ms{late})",
        all - off,
        r.profile,
        r.tolerance * 1e3
    )
}

/// The fingerprint as a Markdown table (for the README), with what the
/// target's profile documents of each parameter.
pub fn markdown(r: &TargetReport) -> String {
    let mut s = format!(
        "**{}** (model: {} profile)\n\n| parameter | estimate | 95 % CI | RFC | level | class | note |\n|---|---|---|---|---|---|---|\n",
        r.target, r.profile
    );
    for e in &r.fingerprint {
        let says = r
            .profile_says
            .iter()
            .find(|(n, _)| n == e.name)
            .map_or(String::new(), |(_, t)| {
                format!("; {} profile: {t}", r.profile)
            });
        s.push_str(&format!(
            "| {} | {} | {} | {} ({}) | {} | {} | {}{} |\n",
            e.name,
            value(e),
            ci(e),
            e.rfc_value,
            e.rfc,
            e.level,
            e.class.name(),
            e.note.replace('|', "/"),
            says.replace('|', "/")
        ));
    }
    for (name, why) in &r.failed {
        s.push_str(&format!("\nScenario {name:?} could not run: {why}\n"));
    }
    let (all, off) = agreement(r);
    s.push_str(&format!("\n{}.\n\n", agreement_line(r, all, off.len())));
    s
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Observed against predicted RTO, one panel per target: every
/// retransmission of every scenario is a point (hover for the scenario),
/// on log axes, with the line where they agree.
pub fn svg(reports: &[TargetReport]) -> String {
    const W: f64 = 520.0;
    const H: f64 = 520.0;
    const M: f64 = 60.0;
    let (lo, hi) = (0.1f64.ln(), 200f64.ln());
    let x = |v: f64| M + (v.clamp(0.1, 200.0).ln() - lo) / (hi - lo) * (W - 2.0 * M);
    let y = |v: f64| H - M - (v.clamp(0.1, 200.0).ln() - lo) / (hi - lo) * (H - 2.0 * M);
    let palette = [
        "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
        "#bcbd22", "#17becf", "#000000",
    ];
    let width = W * reports.len().max(1) as f64;
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{H}\" font-family=\"sans-serif\" font-size=\"11\">\n"
    );
    for (i, r) in reports.iter().enumerate() {
        let off = W * i as f64;
        s.push_str(&format!("<g transform=\"translate({off},0)\">\n"));
        s.push_str(&format!(
            "<text x=\"{}\" y=\"20\" text-anchor=\"middle\" font-size=\"14\">{} (profile {}): observed vs predicted RTO</text>\n",
            W / 2.0,
            esc(&r.target),
            r.profile
        ));
        s.push_str(&format!(
            "<rect x=\"{M}\" y=\"{M}\" width=\"{}\" height=\"{}\" fill=\"none\" stroke=\"#999\"/>\n",
            W - 2.0 * M,
            H - 2.0 * M
        ));
        for t in [0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 60.0, 120.0] {
            s.push_str(&format!(
                "<line x1=\"{0:.1}\" y1=\"{1}\" x2=\"{0:.1}\" y2=\"{2}\" stroke=\"#eee\"/><text x=\"{0:.1}\" y=\"{3}\" text-anchor=\"middle\">{t}</text>\n",
                x(t),
                M,
                H - M,
                H - M + 14.0
            ));
            s.push_str(&format!(
                "<line x1=\"{1}\" y1=\"{0:.1}\" x2=\"{2}\" y2=\"{0:.1}\" stroke=\"#eee\"/><text x=\"{3}\" y=\"{0:.1}\" text-anchor=\"end\">{t}</text>\n",
                y(t),
                M,
                W - M,
                M - 4.0
            ));
        }
        s.push_str(&format!(
            "<line x1=\"{:.1}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\" stroke=\"#444\" stroke-dasharray=\"4 3\"/>\n",
            x(0.5),
            y(0.5),
            x(200.0),
            y(200.0)
        ));
        s.push_str(&format!(
            "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">predicted RTO (s, model of profile {})</text>\n",
            W / 2.0,
            H - 20.0,
            r.profile
        ));
        s.push_str(&format!(
            "<text x=\"16\" y=\"{}\" text-anchor=\"middle\" transform=\"rotate(-90 16 {})\">observed RTO (s)</text>\n",
            H / 2.0,
            H / 2.0
        ));
        for (k, sc) in r.scenarios.iter().enumerate() {
            let color = palette[k % palette.len()];
            for (n, p) in sc.points.iter().enumerate() {
                s.push_str(&format!(
                    "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"4\" fill=\"{color}\" fill-opacity=\"0.7\"><title>{} #{}: observed {:.6} s, predicted {:.6} s</title></circle>\n",
                    x(p.predicted),
                    y(p.observed),
                    esc(&sc.name),
                    n + 1,
                    p.observed,
                    p.predicted
                ));
            }
        }
        s.push_str("</g>\n");
    }
    s.push_str("</svg>\n");
    s
}
