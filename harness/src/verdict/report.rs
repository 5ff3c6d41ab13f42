//! The classified result of a script ([`ScriptDiff`]) and its renderings:
//! text for people, JSON for tools and snapshots, Markdown for
//! `docs/divergences.md`, and per-class-and-level counts.

use super::class::{Class, Divergence};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use tcp_spec::{Level, Profile, Spec};

/// The classified result of one script.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScriptDiff {
    /// The script's path as given.
    pub script: String,
    /// The RFC profile the verdicts are relative to.
    pub profile: Profile,
    /// Targets compared (the reference first).
    pub targets: Vec<String>,
    /// Targets skipped, with the reason.
    pub skipped: Vec<String>,
    /// Per target: how its last run ended, without times.
    pub outcomes: Vec<String>,
    /// What diverged, classified.
    pub divergences: Vec<Divergence>,
    /// The kernel a live run used (`uname -r`); kept in the snapshot's
    /// header, not its body, so a snapshot compares equal across kernels.
    #[serde(skip)]
    pub kernel: Option<String>,
    /// Live runs repeated after a timing miss (not in snapshots: it
    /// depends on the machine's load).
    #[serde(skip)]
    pub timing_retries: usize,
    /// The script could not be read or run at all (a usage error for the
    /// command line: exit 2).
    #[serde(skip)]
    pub script_error: bool,
}

impl ScriptDiff {
    /// A result with nothing compared yet.
    pub fn new(script: &str, profile: Profile) -> ScriptDiff {
        ScriptDiff {
            script: script.to_string(),
            profile,
            targets: Vec::new(),
            skipped: Vec::new(),
            outcomes: Vec::new(),
            divergences: Vec::new(),
            kernel: None,
            timing_retries: 0,
            script_error: false,
        }
    }

    /// Everything, with stable field names.
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }

    /// Reads [`ScriptDiff::to_json`] back.
    pub fn from_json(v: &Value) -> Result<ScriptDiff, String> {
        ScriptDiff::deserialize(v).map_err(|e| e.to_string())
    }

    /// Parses [`ScriptDiff::snapshot`] text: an insta `.snap` file (its
    /// `description:` header names the kernel) or the bare body.
    pub fn from_snapshot(text: &str) -> Result<ScriptDiff, String> {
        let (header, body) = match text.strip_prefix("---") {
            Some(rest) => rest.split_once("\n---\n").unwrap_or(("", text)),
            None => ("", text),
        };
        let v: Value = serde_json::from_str(body).map_err(|e| format!("snapshot: {e}"))?;
        let mut d = ScriptDiff::from_json(&v)?;
        d.kernel = header
            .lines()
            .find_map(|l| l.strip_prefix("description: kernel "))
            .map(|k| k.trim().to_string());
        Ok(d)
    }

    /// The stable text recorded as a snapshot: pretty JSON, no raw times.
    pub fn snapshot(&self) -> String {
        serde_json::to_string_pretty(&self.to_json()).unwrap_or_default()
    }

    /// The most severe class found, or `None` without divergences.
    pub fn worst(&self) -> Option<Class> {
        self.divergences.iter().map(|d| d.class).max()
    }

    /// A human-readable report.
    pub fn text(&self) -> String {
        let mut s = format!(
            "{} (relative to {}; targets {})\n",
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
        if self.timing_retries > 0 {
            let _ = writeln!(
                s,
                "  {} live run(s) repeated after a timing miss",
                self.timing_retries
            );
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
            let level = d.level.map(|l| format!(", level {l}")).unwrap_or_default();
            let _ = writeln!(
                s,
                "  [{}{level}] {} {at} ({}): {}",
                d.verdict(),
                d.target,
                d.kind.name(),
                d.reason
            );
            if !d.expected.is_empty() {
                let _ = writeln!(s, "      expected: {}", d.expected);
            }
            if !d.actual.is_empty() {
                let _ = writeln!(s, "      actual:   {}", d.actual);
            }
            if let Some(m) = &d.measured {
                let _ = writeln!(s, "      measured: {m}");
            }
            if let Some(m) = &d.documented {
                let _ = writeln!(s, "      documented: {m}");
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

/// How many divergences of `class` the diffs hold.
pub fn count(diffs: &[ScriptDiff], class: Class) -> usize {
    diffs
        .iter()
        .flat_map(|d| &d.divergences)
        .filter(|x| x.class == class)
        .count()
}

/// Distinct divergences (as `docs/divergences.md` groups them) of
/// `target` per (class, level).
pub fn tally(diffs: &[ScriptDiff], target: &str) -> BTreeMap<(Class, Option<Level>), usize> {
    let mut out = BTreeMap::new();
    for (class, items) in groups(diffs, target).values().map(|v| (v[0].1.class, v)) {
        *out.entry((class, items[0].1.level)).or_insert(0) += 1;
    }
    out
}

/// One line per class and level: `MUST-violation (MUST): 3`.
pub fn tally_text(t: &BTreeMap<(Class, Option<Level>), usize>) -> String {
    let mut s = String::new();
    for ((class, level), n) in t.iter().rev() {
        let l = level.map(|l| format!(" ({l})")).unwrap_or_default();
        let _ = writeln!(s, "  {}{l}: {n}", class.name());
    }
    s
}

/// The `--format json` form of several script diffs.
pub fn json_report(diffs: &[ScriptDiff]) -> Value {
    let counts: serde_json::Map<String, Value> = Class::ALL
        .into_iter()
        .map(|c| (c.name().to_string(), json!(count(diffs, c))))
        .collect();
    json!({
        "scripts": diffs.iter().map(ScriptDiff::to_json).collect::<Vec<_>>(),
        "counts": counts,
        "departures": diffs.iter().flat_map(|d| &d.divergences).filter(|d| d.class.departs()).count(),
    })
}

type Groups<'a> = BTreeMap<(Class, String), Vec<(&'a ScriptDiff, &'a Divergence)>>;

fn groups<'a>(diffs: &'a [ScriptDiff], target: &str) -> Groups<'a> {
    let mut groups: Groups<'a> = BTreeMap::new();
    let trace = format!("own vs {target}");
    for sd in diffs {
        for d in &sd.divergences {
            if d.target == target || d.target == trace {
                groups.entry((d.class, d.key())).or_default().push((sd, d));
            }
        }
    }
    groups
}

/// The requirement id of the first row named, when it has one.
fn requirement(d: &Divergence) -> Option<String> {
    let spec = Spec::bundled().ok()?;
    d.rows
        .iter()
        .find_map(|r| spec.row(r).and_then(|row| row.requirement.clone()))
}

/// `docs/divergences.md`: one entry per distinct divergence of `target`
/// across `diffs`, most severe first, each with its class and level, the
/// RFC sections, the mechanism its profile names, the kernel it was seen
/// on and the script lines that show it.
pub fn markdown(diffs: &[ScriptDiff], target: &str) -> String {
    markdown_from(diffs, target, &Provenance::LIVE)
}

/// Where a divergences document comes from, for its header.
#[derive(Debug, Clone, Copy)]
pub struct Provenance<'a> {
    /// The snapshot files it is generated from.
    pub snapshots: &'a str,
    /// The command that regenerates it.
    pub regenerate: &'a str,
    /// What explains a departure: the target's own profile, or source
    /// locations read in the stack ([`super::stacks`]).
    pub explained_by: &'a str,
    /// The label of a [`Divergence::documented`] line.
    pub documented: &'a str,
}

impl Provenance<'static> {
    /// The live `linux` snapshots (`docs/divergences.md`).
    pub const LIVE: Provenance<'static> = Provenance {
        snapshots: "tests/snapshots/live__*.snap",
        regenerate: "cargo test -p tcpconform --test live -- --ignored regenerate_divergences",
        explained_by: "the\ntarget's own profile documents its departures",
        documented: "documented in the {target} profile",
    };

    /// The in-process `smoltcp` snapshots (`docs/divergences-smoltcp.md`).
    pub const SMOLTCP: Provenance<'static> = Provenance {
        snapshots: "tests/snapshots/smoltcp__*.snap",
        regenerate: "cargo test -p tcpconform --test smoltcp -- --ignored regenerate_divergences",
        explained_by: "the\nsmoltcp source responsible is named for each departure",
        documented: "source",
    };
}

/// [`markdown`] with the header and labels of `from`.
pub fn markdown_from(diffs: &[ScriptDiff], target: &str, from: &Provenance<'_>) -> String {
    let groups = groups(diffs, target);
    let profile = diffs.first().map_or(Profile::Rfc9293, |d| d.profile);
    let mut s = String::new();
    let _ = writeln!(s, "# Divergences of `{target}` from the specification\n");
    let _ = writeln!(
        s,
        "Generated by `tcp_harness::verdict::report::markdown` from the snapshots in\n\
         `{}` (verdicts relative to profile `{profile}`; {}); do not edit by hand.\n\
         Regenerate: `{}`.\n",
        from.snapshots, from.explained_by, from.regenerate
    );
    let _ = writeln!(s, "{} distinct divergences:\n", groups.len());
    let t = tally(diffs, target);
    s.push_str(&tally_text(&t).replace("  ", "- "));
    s.push('\n');
    let mut ordered: Vec<_> = groups.iter().collect();
    ordered.sort_by(|a, b| b.0 .0.cmp(&a.0 .0).then(a.0 .1.cmp(&b.0 .1)));
    for (n, ((class, _), items)) in (1..).zip(ordered) {
        let (sd, d) = items[0];
        let at = if d.line > 0 {
            let first = d
                .lines
                .first()
                .and_then(|l| l.split(':').next())
                .and_then(|x| x.parse::<usize>().ok())
                .unwrap_or(d.line);
            if first < d.line {
                format!("lines {first}-{}", d.line)
            } else {
                format!("line {}", d.line)
            }
        } else {
            "trace comparison".into()
        };
        let _ = writeln!(s, "## {n}. {} — {}\n", d.verdict(), d.kind.name());
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
        let level = match (d.level, requirement(d)) {
            (Some(l), Some(r)) => format!("{l} ({r})"),
            (Some(l), None) => l.to_string(),
            (None, _) => "— (no rule's keyword applies)".into(),
        };
        let _ = writeln!(s, "- class: {}; level: {level}", class.name());
        if !d.rfc.is_empty() {
            let _ = writeln!(s, "- RFC: {}", d.rfc.join(", "));
        }
        if let Some(m) = &d.documented {
            let label = from.documented.replace("{target}", target);
            let _ = writeln!(s, "- {label}: {m}");
        }
        let list = |v: &[String]| {
            v.iter()
                .map(|r| format!("`{r}`"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        if !d.rows.is_empty() {
            let _ = writeln!(s, "- rows: {}", list(&d.rows));
        }
        if !d.params.is_empty() {
            let _ = writeln!(s, "- parameters: {}", list(&d.params));
        }
        let mut kernels: Vec<&str> = items
            .iter()
            .filter_map(|(sd, _)| sd.kernel.as_deref())
            .collect();
        kernels.sort_unstable();
        kernels.dedup();
        if !kernels.is_empty() {
            let _ = writeln!(s, "- kernel: {}", kernels.join(", "));
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
    let clean: Vec<String> = diffs
        .iter()
        .filter(|d| d.targets.iter().any(|t| t == target) && d.divergences.is_empty())
        .map(|d| format!("`{}`", d.script))
        .collect();
    if !clean.is_empty() {
        let _ = writeln!(s, "## No divergence\n\n{}\n", clean.join(", "));
    }
    let skipped: Vec<String> = diffs
        .iter()
        .flat_map(|d| {
            let prefix = format!("{target}: ");
            d.skipped.iter().filter_map(move |k| {
                k.strip_prefix(&prefix)
                    .map(|r| format!("- `{}`: {r}", d.script))
            })
        })
        .collect();
    if !skipped.is_empty() {
        let _ = writeln!(s, "## Not run\n\n{}\n", skipped.join("\n"));
    }
    s
}
