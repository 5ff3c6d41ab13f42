//! Command-line interface: argument parsing and the subcommands.
//!
//! Exit codes: [`exit`] (the same table is in every command's `--help` and
//! in the README). A script that is not applicable to its target (a sysctl
//! the target has no counterpart for) is reported as such and does not fail
//! the run.

use crate::run::parallel::{self, ParallelArgs};
use crate::run::{self, suite, RunOptions, RunReport, TargetName};
use clap::{Parser, Subcommand, ValueEnum};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use tcp_spec::{render, Profile, Spec};

/// The exit codes of every command: verdicts, bad input and a broken
/// environment are told apart by a script or CI job.
pub mod exit {
    /// Everything passed (or was not applicable), no departure found.
    pub const OK: u8 = 0;
    /// A verdict: a script failed, or a departure was found.
    pub const VERDICT: u8 = 1;
    /// Bad arguments or bad input: unknown target, no scripts, a script
    /// that cannot be read or parsed, or a run that ended in an error
    /// located at its line.
    pub const USAGE: u8 = 2;
    /// The environment: missing privilege, no `/dev/net/tun` or `ip`, a
    /// namespace or TUN set-up failure, a live target that cannot start or
    /// whose I/O fails mid-script (a foreign process that dies), output
    /// that cannot be written.
    pub const ENVIRONMENT: u8 = 3;
    /// The table shown after every command's `--help`.
    pub const TABLE: &str = "\
Exit codes:
  0    success: every script passed or is not applicable, no departure found
  1    verdict: a script failed, or a departure (deviation, SHOULD-deviation,
       MUST-violation) was found
  2    usage or input: bad arguments, unknown target, no scripts, a script that
       cannot be read or parsed, or a run that ended in a located error (the
       message, on stderr, names file:line:col)
  3    environment: missing privilege, no /dev/net/tun or `ip`, a namespace or
       TUN set-up failure, a live target that cannot start or whose I/O fails
       mid-script (located like a script error), unwritable output
  130  serve stopped by SIGINT (143: SIGTERM)";
}

/// TCP conformance fuzzer and test harness.
#[derive(Debug, Parser)]
#[command(name = "tcpconform", version, about, after_help = exit::TABLE)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print the transition table of the specification.
    #[command(after_help = exit::TABLE)]
    Spec(SpecArgs),
    /// Run packetdrill-syntax scripts against a target.
    #[command(after_help = exit::TABLE)]
    Run(RunArgs),
    /// Run the bundled conformance suite (specs/scripts) on every available
    /// target and print the table coverage: the command to run first.
    #[command(after_help = exit::TABLE)]
    Check(CheckArgs),
    /// Run scripts on `own` and print which rows of the table they hit,
    /// as the state × event matrix.
    #[command(after_help = exit::TABLE)]
    Coverage(CoverageArgs),
    /// Run scripts on several targets and classify every divergence
    /// against the table's profiles (conforms, allowed variation,
    /// violation).
    #[command(after_help = exit::TABLE)]
    Diff(DiffArgs),
    /// Serve with the own stack on tun1 inside a fresh network namespace,
    /// for real clients (curl, nc, a kernel socket) in that namespace;
    /// optionally impaired at the TUN boundary. Needs root.
    #[command(after_help = exit::TABLE)]
    Serve(ServeArgs),
    /// Probe the retransmission, delayed-ACK and persist timers of targets
    /// on the wire and print their fingerprint (RFC 6298 α, β, K, RTO
    /// bounds, back-off, Karn; SYN schedule; ISNs; window trimming), or
    /// check the timers of the connections in a pcap file.
    #[command(after_help = exit::TABLE)]
    Timers(TimersArgs),
}

/// Output formats of `tcpconform timers`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TimersFormat {
    /// The fingerprint table per target (or the per-connection analysis
    /// of a pcap).
    Text,
    /// Fingerprints and per-scenario retransmission times.
    Json,
    /// Observed vs predicted RTO per scenario, one panel per target.
    Svg,
    /// The fingerprint tables in Markdown (as in the README).
    Markdown,
}

/// Arguments of `tcpconform timers`.
#[derive(Debug, clap::Args)]
pub struct TimersArgs {
    /// Targets to probe, comma-separated: own and smoltcp (in-process,
    /// virtual clock), linux (this machine's kernel, one namespace per scenario, real
    /// time, root; about 7 minutes, 2 with --quick).
    #[arg(long, value_delimiter = ',', default_value = "own")]
    pub targets: Vec<String>,
    /// The profile whose model predicts the retransmission times (and that
    /// the own stack follows); verdicts are always against the RFC.
    #[arg(long, default_value_t = Profile::Rfc9293)]
    pub profile: Profile,
    /// Output format.
    #[arg(long, value_enum, default_value_t = TimersFormat::Text)]
    pub format: TimersFormat,
    /// Seed of the generated scenarios and the own stack's ISN secret.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Analyse the TCP connections in this pcap file instead of probing
    /// (raw IP or Ethernet link type).
    #[arg(long, value_name = "FILE")]
    pub pcap: Option<PathBuf>,
    /// Tolerance of a time comparison in ms (default: 2 for own, 10 for a
    /// pcap, 30 for linux).
    #[arg(long, value_name = "MS")]
    pub tolerance_ms: Option<f64>,
    /// Also write the SVG plot to FILE (whatever --format says).
    #[arg(long, value_name = "FILE")]
    pub svg: Option<PathBuf>,
    /// With --pcap: lateness allowed on top of the tolerance, in percent
    /// of the predicted RTO (12.5 for a Linux capture: its timer wheel
    /// fires up to 1/8 late).
    #[arg(long, value_name = "PERCENT", default_value_t = 0.0)]
    pub timer_slack_percent: f64,
    /// Fewer scenarios and the back-off stopped before the RTO cap (which
    /// is then not estimated): for real-time targets in a hurry.
    #[arg(long)]
    pub quick: bool,
}

/// Arguments of `tcpconform serve`.
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("mode").required(true).args(["echo", "http", "discard"])))]
pub struct ServeArgs {
    /// Echo every byte back to the client.
    #[arg(long)]
    pub echo: bool,
    /// Serve the files of DIR over HTTP/1.0 GET.
    #[arg(long, value_name = "DIR")]
    pub http: Option<PathBuf>,
    /// Read and drop everything (a sink for throughput tests).
    #[arg(long)]
    pub discard: bool,
    /// Impair packets in both directions at the TUN boundary, e.g.
    /// loss=0.05,reorder=0.02,dup=0.01,seed=7.
    #[arg(long, value_name = "SPEC")]
    pub impair: Option<String>,
    /// TCP port to listen on (default 8080).
    #[arg(long)]
    pub port: Option<u16>,
    /// Stop after this many seconds (default: serve until Ctrl-C).
    #[arg(long, value_name = "SECS")]
    pub duration: Option<f64>,
    /// The stack's timers: `realistic` (200 ms minimum RTO, SACK with
    /// RFC 6675 recovery) or `rfc` (the profile's 1 s minimum RTO, NewReno).
    #[arg(long, value_enum, default_value_t = crate::serve::ServeTimers::Realistic)]
    pub timers: crate::serve::ServeTimers,
}

/// packetdrill's timing tolerance: an event may be off by the larger of an
/// absolute tolerance and a share of the scripted gap since the previous
/// event. Both override what the scripts say.
#[derive(Debug, Clone, Copy, Default, clap::Args)]
pub struct ToleranceArgs {
    /// Absolute tolerance in µs (packetdrill's `--tolerance_usecs`;
    /// default 4000).
    #[arg(long, alias = "tolerance_usecs", value_name = "USECS")]
    pub tolerance_usecs: Option<u64>,
    /// Relative tolerance in % of the gap since the previous event
    /// (packetdrill's `--tolerance_percent`; default 0).
    #[arg(long, alias = "tolerance_percent", value_name = "PERCENT",
          value_parser = clap::value_parser!(u64).range(0..=100))]
    pub tolerance_percent: Option<u64>,
}

impl ToleranceArgs {
    /// Strict run options with these tolerances.
    pub fn run_options(self) -> RunOptions {
        RunOptions {
            tolerance_usecs: self.tolerance_usecs,
            tolerance_percent: self.tolerance_percent,
            ..RunOptions::default()
        }
    }
}

/// Foreign-process targets (`exec:CMD` or a name from a targets file;
/// docs/exec-protocol.md).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ExecArgs {
    /// A TOML file naming exec targets: `[targets.NAME]` with
    /// `exec = "CMD"` (and optionally `timeout_ms = N`).
    #[arg(long, value_name = "FILE")]
    pub targets_file: Option<PathBuf>,
    /// How long an exec target's process may take to answer one call, in
    /// seconds (default 5).
    #[arg(long, value_name = "SECS")]
    pub exec_timeout: Option<f64>,
}

impl ExecArgs {
    /// Makes the targets file's names and the timeout known to
    /// `suite::make_target`.
    fn apply(&self) -> Result<(), String> {
        let timeout = match self.exec_timeout {
            None => None,
            Some(s) if s.is_finite() && s > 0.0 && s <= 3600.0 => {
                Some(std::time::Duration::from_secs_f64(s))
            }
            Some(s) => return Err(format!("--exec-timeout {s}: expected 0 < SECS <= 3600")),
        };
        run::exec::configure(self.targets_file.as_deref(), timeout)
    }
}

/// Arguments of `tcpconform diff`.
#[derive(Debug, clap::Args)]
pub struct DiffArgs {
    /// Targets to compare, comma-separated: own (always the reference),
    /// smoltcp, linux, own-tun, exec:CMD or a name from --targets-file.
    /// Live targets run one at a time; an unavailable own-tun is skipped
    /// with a note.
    #[arg(long, value_delimiter = ',', default_value = "own,linux")]
    pub targets: Vec<TargetName>,
    #[command(flatten)]
    pub exec: ExecArgs,
    /// The active profile: divergences are classified against its rows.
    #[arg(long, default_value_t = Profile::Rfc9293)]
    pub profile: Profile,
    /// Output format.
    #[arg(long, value_enum, default_value_t = DiffFormat::Text)]
    pub format: DiffFormat,
    /// Skip live targets for scripts whose timeline is longer (seconds).
    #[arg(long, value_name = "SECS")]
    pub max_timeline: Option<u64>,
    #[command(flatten)]
    pub tolerance: ToleranceArgs,
    #[command(flatten)]
    pub parallel: ParallelArgs,
    /// Script files, or directories searched for *.pkt.
    #[arg(required = true, value_name = "PATHS")]
    pub paths: Vec<PathBuf>,
}

/// Output formats of `tcpconform diff`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DiffFormat {
    /// Per script, each target's divergences and their classes; then the
    /// count per class.
    Text,
    /// Machine-readable results.
    Json,
    /// The distinct divergences of the first non-reference target (the
    /// format of docs/divergences.md).
    Markdown,
}

/// Output formats of `tcpconform run`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RunFormat {
    /// Warnings, failures with their ladders, then one line per script.
    Text,
    /// Machine-readable results.
    Json,
    /// TAP version 13: one `ok`/`not ok` line per script, the reason as a
    /// YAML diagnostic (as packetdrill's runner and kselftest print).
    Tap,
}

/// Output formats of `tcpconform check`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CheckFormat {
    /// The per-script table, the divergence tallies, the coverage line.
    Text,
    /// Machine-readable results.
    Json,
}

/// Output formats of `tcpconform coverage`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CoverageFormat {
    /// Per state, one line per row with its hit count; then the summary.
    Text,
    /// Stable fields: profile, rows_total, rows_covered, covered, uncovered.
    Json,
}

#[derive(Debug, clap::Args)]
pub struct CoverageArgs {
    /// The target whose rows are counted: only targets that report the
    /// table row of each transition (own) count any.
    #[arg(long, default_value = "own")]
    pub target: TargetName,
    /// Profile whose rows are counted (and that the own stack follows).
    #[arg(long, default_value_t = Profile::Rfc9293)]
    pub profile: Profile,
    /// Output format.
    #[arg(long, value_enum, default_value_t = CoverageFormat::Text)]
    pub format: CoverageFormat,
    /// Script files, or directories searched for *.pkt (default: the
    /// bundled specs/scripts).
    #[arg(value_name = "PATHS")]
    pub paths: Vec<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// The target to run the scripts on (exec:CMD: a foreign process
    /// behind TUN speaking docs/exec-protocol.md; or a name from
    /// --targets-file).
    #[arg(long, default_value = "own")]
    pub target: TargetName,
    #[command(flatten)]
    pub exec: ExecArgs,
    /// Profile of the own stack: rfc793, rfc9293 (default) or linux.
    #[arg(long, default_value_t = Profile::Rfc9293)]
    pub profile: Profile,
    /// Report outbound packets the script does not expect as warnings
    /// only (by default, on every target, such a packet fails the script).
    #[arg(long)]
    pub no_strict: bool,
    #[command(flatten)]
    pub tolerance: ToleranceArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = RunFormat::Text)]
    pub format: RunFormat,
    #[command(flatten)]
    pub parallel: ParallelArgs,
    /// Write `<script-name>.pcap` for every script into this directory.
    #[arg(long, value_name = "DIR")]
    pub pcap: Option<PathBuf>,
    /// Print the ladder diagram of every script, not only of failures.
    #[arg(long)]
    pub trace: bool,
    #[command(flatten)]
    pub packetdrill: crate::run::pdcompat::PacketdrillArgs,
    /// Script files, or directories searched for *.pkt.
    #[arg(required = true, value_name = "PATHS")]
    pub paths: Vec<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// Profile of the own stack; linux divergences are classified against it.
    #[arg(long, default_value_t = Profile::Rfc9293)]
    pub profile: Profile,
    /// Only the in-process targets (own, smoltcp), even where live targets
    /// can run.
    #[arg(long)]
    pub no_live: bool,
    /// Skip the in-process smoltcp target.
    #[arg(long)]
    pub no_smoltcp: bool,
    /// Live targets skip scripts whose timeline on `own` is longer.
    #[arg(long, value_name = "SECS", default_value_t = 30)]
    pub max_timeline: u64,
    /// The suite directory (default: the bundled specs/scripts).
    #[arg(long, value_name = "DIR")]
    pub suite: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = CheckFormat::Text)]
    pub format: CheckFormat,
    #[command(flatten)]
    pub tolerance: ToleranceArgs,
    #[command(flatten)]
    pub parallel: ParallelArgs,
}

/// Output formats of `tcpconform spec`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SpecFormat {
    /// An aligned text table, one row per line.
    Text,
    /// Everything, with stable field names, for tools.
    Json,
    /// A Graphviz state diagram (`| dot -Tsvg`).
    Dot,
}

#[derive(Debug, clap::Args)]
pub struct SpecArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t = SpecFormat::Text)]
    pub format: SpecFormat,
    /// Profile: rfc793, rfc9293 (default) or linux. JSON without --profile
    /// lists all profiles.
    #[arg(long)]
    pub profile: Option<Profile>,
    /// Only the rows a state × event reaches, each with the stack's source
    /// lines that record it: `--where ESTABLISHED SYN`. EVENT is segment
    /// flags (SYN, FIN, RST, ACK, DATA joined by `-` or `+`), a call
    /// (open-passive, send, close, …) or a timeout (retransmission,
    /// time-wait, user). Text or JSON.
    #[arg(long = "where", num_args = 2, value_names = ["STATE", "EVENT"])]
    pub where_: Option<Vec<String>>,
}

/// `spec --where STATE EVENT` ([`crate::spec_where`]).
fn spec_where(spec: &Spec, args: &SpecArgs, w: &[String]) -> Result<ExitCode, CliError> {
    use crate::spec_where::{json, lookup, parse_state, text, EventQuery};
    let profile = args.profile.unwrap_or_default();
    let (state, event) = match w {
        [s, e] => (s, e),
        _ => return usage_error("--where takes STATE EVENT"),
    };
    let parsed = parse_state(state).and_then(|s| Ok((s, EventQuery::parse(event)?)));
    let found = parsed.and_then(|(s, q)| Ok((s, lookup(spec, profile, s, q)?)));
    let (state, (total, hits)) = match found {
        Ok(f) => f,
        Err(e) => return usage_error(format!("--where: {e}")),
    };
    let out = match args.format {
        SpecFormat::Text => text(profile, state, event, total, &hits),
        SpecFormat::Json => {
            let mut s = serde_json::to_string_pretty(&json(profile, state, event, total, &hits))?;
            s.push('\n');
            s
        }
        SpecFormat::Dot => return usage_error("--where prints text or json, not dot"),
    };
    write_out(&out)?;
    Ok(ExitCode::SUCCESS)
}

/// Runs the tool and maps the outcome to an exit code.
pub fn main() -> ExitCode {
    // Before any thread: helper programs only from absolute directories.
    crate::live::sanitise_process_path();
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(exit::USAGE)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("tcpconform: {e}");
            ExitCode::from(exit::ENVIRONMENT)
        }
    }
}

/// Errors the binary reports with context (all exit with
/// [`exit::ENVIRONMENT`]).
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("the specification table does not load: {0}")]
    Spec(#[from] tcp_spec::LoadError),
    #[error("cannot write output: {0}")]
    Io(#[from] std::io::Error),
    #[error("cannot encode JSON: {0}")]
    Json(#[from] serde_json::Error),
}

fn run(cli: Cli) -> Result<ExitCode, CliError> {
    match cli.command {
        Command::Spec(args) => spec(args),
        Command::Run(args) => run_cmd(args),
        Command::Check(args) => check(args),
        Command::Coverage(args) => coverage_cmd(args),
        Command::Diff(args) => diff_cmd(args),
        Command::Serve(args) => serve_cmd(args),
        Command::Timers(args) => timers_cmd(args),
    }
}

/// `tcpconform timers`: exit 1 when a fingerprint or a pcap shows a
/// departure or a scenario could not run, 2 on usage errors.
fn timers_cmd(args: TimersArgs) -> Result<ExitCode, CliError> {
    use crate::timers::{self, report, trace};
    let spec = Spec::bundled()?;
    let active = &spec.profile(args.profile).params;
    let tol_ms = args
        .tolerance_ms
        .unwrap_or(if args.pcap.is_some() { 10.0 } else { 2.0 });
    if !(tol_ms.is_finite() && tol_ms >= 0.0) {
        return usage_error(format!(
            "--tolerance-ms {tol_ms}: expected a non-negative number"
        ));
    }
    let tol = tol_ms / 1000.0;
    let mut out = std::io::stdout().lock();
    if let Some(file) = &args.pcap {
        let packets = match std::fs::File::open(file)
            .map_err(crate::pcap::PcapError::from)
            .and_then(crate::pcap::read)
        {
            Ok(p) => p,
            Err(e) => return usage_error(format!("{}: {e}", file.display())),
        };
        let cfg = tcp_spec::rto::RtoConfig::from_params(active);
        let reports = trace::analyse(
            &packets,
            cfg,
            active.syn_linear_timeouts.value,
            tol,
            args.timer_slack_percent / 100.0,
        );
        match args.format {
            TimersFormat::Text => write!(out, "{}", trace::text(&reports))?,
            TimersFormat::Json => writeln!(out, "{}", serde_json::to_string_pretty(&reports)?)?,
            TimersFormat::Svg | TimersFormat::Markdown => {
                return usage_error("--format svg and markdown need probed targets, not --pcap")
            }
        }
        let departs = reports.iter().any(|r| r.departures() > 0);
        return Ok(if departs {
            ExitCode::from(exit::VERDICT)
        } else {
            ExitCode::SUCCESS
        });
    }
    let plan = if args.quick {
        timers::Plan::quick()
    } else {
        timers::Plan::full()
    };
    let mut reports = Vec::new();
    for target in &args.targets {
        let t = match timers::TimerTarget::parse(target) {
            Some(t) => t,
            None => {
                return usage_error(format!(
                    "timers: unknown target {target} ({})",
                    timers::TimerTarget::names()
                ))
            }
        };
        if t == timers::TimerTarget::Linux {
            // Once, not once per scenario.
            if let Err(e) = crate::live::available() {
                return env_error(format!("timers: {target}: {e}"));
            }
        }
        match t.report(spec, args.profile, args.seed, &plan, args.tolerance_ms) {
            Ok(r) => reports.push(r),
            Err(e) => return env_error(format!("timers: {target}: {e}")),
        }
    }
    if let Some(file) = &args.svg {
        if let Err(e) = std::fs::write(file, report::svg(&reports)) {
            return env_error(format!("--svg {}: {e}", file.display()));
        }
    }
    match args.format {
        TimersFormat::Text => write!(out, "{}", report::text(&reports))?,
        TimersFormat::Json => writeln!(out, "{}", serde_json::to_string_pretty(&reports)?)?,
        TimersFormat::Svg => write!(out, "{}", report::svg(&reports))?,
        TimersFormat::Markdown => {
            for r in &reports {
                write!(out, "{}", report::markdown(r))?;
            }
        }
    }
    let departs = reports
        .iter()
        .any(|r| !r.failed.is_empty() || r.worst().is_some_and(|c| c.departs()));
    Ok(if departs {
        ExitCode::from(exit::VERDICT)
    } else {
        ExitCode::SUCCESS
    })
}

/// `tcpconform serve`: exit 0 after a clean stop; with one sentence, 2 on
/// bad arguments (a bad impairment or duration), 3 when the server cannot
/// start or fails (no privileges, no /dev/net/tun).
fn serve_cmd(args: ServeArgs) -> Result<ExitCode, CliError> {
    use crate::serve::{run_cli, ServeMode};
    let mode = match (&args.http, args.echo) {
        (Some(dir), _) => ServeMode::Http(dir.clone()),
        (None, true) => ServeMode::Echo,
        (None, false) => ServeMode::Discard,
    };
    let duration = match args.duration {
        None => None,
        Some(secs) if secs.is_finite() && secs > 0.0 => {
            Some(std::time::Duration::from_secs_f64(secs))
        }
        Some(secs) => {
            return usage_error(format!(
                "--duration {secs}: expected a positive number of seconds"
            ))
        }
    };
    if let Some(Err(e)) = args
        .impair
        .as_deref()
        .map(str::parse::<crate::impair::Impairment>)
    {
        return usage_error(format!("--impair: {e}"));
    }
    if let Some(dir) = args.http.as_ref().filter(|d| !d.is_dir()) {
        return usage_error(format!("--http {}: not a directory", dir.display()));
    }
    match run_cli(
        mode,
        args.impair.as_deref(),
        args.port,
        duration,
        args.timers,
    ) {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(e) => env_error(e),
    }
}

/// The bundled conformance suite, as found in the source tree.
pub fn bundled_suite_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../specs/scripts"))
}

/// `path` as a user would type it from the current directory: relative
/// when it lies below it, otherwise absolute without `..` components; as
/// given when it cannot be resolved.
pub fn shown_path(path: &std::path::Path) -> PathBuf {
    let Ok(abs) = std::fs::canonicalize(path) else {
        return path.to_path_buf();
    };
    let cwd = std::env::current_dir().and_then(std::fs::canonicalize);
    match cwd {
        Ok(cwd) => match abs.strip_prefix(&cwd) {
            Ok(rel) if rel.as_os_str().is_empty() => PathBuf::from("."),
            Ok(rel) => rel.to_path_buf(),
            Err(_) => abs,
        },
        Err(_) => abs,
    }
}

/// Writes to standard output; a closed pipe (`| head`) is not an error.
fn write_out(text: &str) -> Result<(), CliError> {
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(text.as_bytes()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}

/// Runs `scripts` on a fresh `target` each (live targets retry failures,
/// see [`suite::run_script_file`]; several at once, see
/// [`parallel::map_scripts`]); writes pcaps when asked.
fn run_all(
    scripts: &[PathBuf],
    target: &TargetName,
    profile: Profile,
    opts: &RunOptions,
    pcap: Option<&PathBuf>,
    par: &ParallelArgs,
) -> Result<Vec<RunReport>, String> {
    let mut reports = Vec::new();
    let mut used = std::collections::BTreeSet::new();
    let run = |p: &PathBuf| suite::run_script_file(p, target.as_str(), profile, opts);
    let live = !target.is_virtual();
    let label = target.to_string();
    let ran = parallel::map_scripts(scripts, live, par, profile, opts, &label, &run);
    for (path, report) in scripts.iter().zip(ran) {
        let report = report?;
        if let Some(dir) = pcap {
            let stem = path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "script".into());
            // Scripts in different directories may share a name.
            let mut name = stem.clone();
            let mut n = 1;
            while !used.insert(name.clone()) {
                n += 1;
                name = format!("{stem}-{n}");
            }
            let file = dir.join(format!("{name}.pcap"));
            let f = std::fs::File::create(&file).map_err(|e| format!("{}: {e}", file.display()))?;
            report
                .trace
                .write_pcap(std::io::BufWriter::new(f))
                .map_err(|e| format!("{}: {e}", file.display()))?;
        }
        reports.push(report);
    }
    Ok(reports)
}

/// The `--format json` form of `reports`.
fn render_json(reports: &[RunReport]) -> Result<String, CliError> {
    let sum = suite::Summary::of(reports);
    let v = serde_json::json!({
        "scripts": reports.iter().map(RunReport::to_json).collect::<Vec<_>>(),
        "passed": sum.passed,
        "flaky": sum.flaky,
        "failed": sum.failed,
        "errors": sum.errors,
        "not_applicable": sum.not_applicable,
    });
    let mut s = serde_json::to_string_pretty(&v)?;
    s.push('\n');
    Ok(s)
}

/// Writes the warnings and the located errors (`file:line:col: reason`)
/// of `reports` to standard error, whatever the output format.
fn report_errors(reports: &[RunReport]) {
    let mut err = std::io::stderr().lock();
    for r in reports {
        for w in &r.warnings {
            let _ = writeln!(err, "{}: warning: {w}", r.path);
        }
        if let run::Outcome::Error(e) = &r.outcome {
            let _ = writeln!(err, "{e}");
        }
    }
}

/// The text form of `reports`: failures with their ladders (and, with
/// `ladders`, every passing script's), then the table. Warnings and errors
/// go to standard error ([`report_errors`]).
fn render_reports(reports: &[RunReport], ladders: bool) -> String {
    let mut s = String::new();
    for r in reports {
        for (i, why) in r.earlier_failures.iter().enumerate() {
            s.push_str(&format!(
                "{}: attempt {} on {} failed ({why}); retried\n",
                r.path,
                i + 1,
                r.target
            ));
        }
        match &r.outcome {
            run::Outcome::Passed if ladders => {
                s.push_str(&format!("{}:\n{}\n", r.path, r.trace.ladder()));
            }
            run::Outcome::Passed | run::Outcome::Error(_) => {}
            run::Outcome::Failed(_) | run::Outcome::NotApplicable(_) => {
                s.push_str(&r.details());
                s.push('\n');
            }
        }
    }
    s.push_str(&suite::table(reports));
    s
}

/// Prints `msg` and exits with [`exit::USAGE`].
fn usage_error(msg: impl std::fmt::Display) -> Result<ExitCode, CliError> {
    eprintln!("tcpconform: {msg}");
    Ok(ExitCode::from(exit::USAGE))
}

/// Prints `msg` and exits with [`exit::ENVIRONMENT`].
fn env_error(msg: impl std::fmt::Display) -> Result<ExitCode, CliError> {
    eprintln!("tcpconform: {msg}");
    Ok(ExitCode::from(exit::ENVIRONMENT))
}

fn run_cmd(args: RunArgs) -> Result<ExitCode, CliError> {
    if let Err(e) = args.exec.apply() {
        return usage_error(e);
    }
    if let Err(e) = args.target.check() {
        return usage_error(format!("target {}: {e}", args.target));
    }
    if let Err(e) = args.target.make(args.profile) {
        return env_error(format!("target {}: {e}", args.target));
    }
    let scripts = match suite::discover(&args.paths) {
        Ok(s) if s.is_empty() => return usage_error("no *.pkt scripts found"),
        Ok(s) => args.parallel.select(s),
        Err(e) => return usage_error(e),
    };
    if let Some(dir) = &args.pcap {
        if let Err(e) = std::fs::create_dir_all(dir) {
            return env_error(format!("{}: {e}", dir.display()));
        }
    }
    let mut opts = RunOptions {
        strict: !args.no_strict,
        ..args.tolerance.run_options()
    };
    if let Err(e) = args.packetdrill.apply(&mut opts) {
        return usage_error(e);
    }
    let reports = match run_all(
        &scripts,
        &args.target,
        args.profile,
        &opts,
        args.pcap.as_ref(),
        &args.parallel,
    ) {
        Ok(r) => r,
        Err(e) => return env_error(e),
    };
    report_errors(&reports);
    match args.format {
        RunFormat::Tap => write_out(&crate::run::pdcompat::tap(&reports))?,
        RunFormat::Json => write_out(&render_json(&reports)?)?,
        RunFormat::Text => write_out(&render_reports(&reports, args.trace))?,
    }
    Ok(ExitCode::from(suite::Summary::of(&reports).exit_code()))
}

/// `tcpconform check`: the bundled suite on `own`; where live targets can
/// run (root, /dev/net/tun), also on `own-tun`, which must pass like `own`,
/// and on `linux`, whose divergences are classified against the profile
/// and reported (they are findings about the kernel, not failures of the
/// check). Exit 0 when every `own`/`own-tun` script passes or is not
/// applicable there.
fn check(args: CheckArgs) -> Result<ExitCode, CliError> {
    use crate::run::diff::{self, DiffOptions};
    let mut phases = crate::run::phases::Phases::start();
    let dir = shown_path(&args.suite.unwrap_or_else(bundled_suite_dir));
    let scripts = match suite::discover(std::slice::from_ref(&dir)) {
        Ok(s) if s.is_empty() => {
            return usage_error(format!("{}: no *.pkt scripts", dir.display()))
        }
        Ok(s) => args.parallel.select(s),
        Err(e) => return usage_error(e),
    };
    let opts = args.tolerance.run_options();
    let serial = ParallelArgs::default();
    let mut all = match run_all(
        &scripts,
        &TargetName::Own,
        args.profile,
        &opts,
        None,
        &serial,
    ) {
        Ok(r) => r,
        Err(e) => return env_error(e),
    };
    phases.mark("own");
    let max_us = args.max_timeline.saturating_mul(1_000_000);
    let live = match (args.no_live, crate::live::available()) {
        (true, _) => Err("--no-live".to_string()),
        (false, Err(e)) => Err(e.to_string()),
        (false, Ok(())) => Ok(()),
    };
    // smoltcp needs no privileges: its divergences are findings about
    // smoltcp, classified like the kernel's, not failures of the check.
    let smoltcp_opts = (!args.no_smoltcp).then(|| DiffOptions {
        targets: vec![diff::REFERENCE.into(), TargetName::Smoltcp.to_string()],
        profile: args.profile,
        max_timeline_us: None,
        run: opts.clone(),
    });
    let linux_opts = live.is_ok().then(|| DiffOptions {
        targets: vec![diff::REFERENCE.into(), "linux".into()],
        profile: args.profile,
        max_timeline_us: Some(max_us),
        run: opts.clone(),
    });
    // own-tun runs and linux diffs share one pool of --jobs workers; the
    // in-memory smoltcp diffs (about a second of CPU) run beside it on a
    // low-priority thread, while the pool's scripts mostly sleep.
    let timelines: Vec<_> = all.iter().map(|r| r.end_time).collect();
    let (smoltcp, ran) = std::thread::scope(|s| {
        let smoltcp = s.spawn(|| {
            let d = smoltcp_opts.as_ref()?;
            crate::live::lower_current_thread();
            let began = std::time::Instant::now();
            let r: Vec<_> = scripts.iter().map(|p| diff::diff_file(p, d)).collect();
            crate::run::phases::note("smoltcp (beside the live pool)", began.elapsed());
            Some(r)
        });
        let ran = linux_opts
            .as_ref()
            .map(|d| parallel::check_live(&scripts, &timelines, d, &args.parallel));
        let smoltcp = smoltcp
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p));
        (smoltcp, ran)
    });
    phases.mark("smoltcp and the live pool");
    let mut targets = vec!["own"];
    if smoltcp.is_some() {
        targets.push("smoltcp");
    }
    let mut linux: Vec<diff::ScriptDiff> = Vec::new();
    if let Some(ran) = ran {
        match ran {
            Ok((tun, lin)) => {
                all.extend(tun);
                linux = lin;
            }
            Err(e) => return env_error(format!("target own-tun: {e}")),
        }
        targets.extend(["own-tun", "linux"]);
    }
    let spec = Spec::bundled()?;
    let own: Vec<RunReport> = all.iter().filter(|r| r.target == "own").cloned().collect();
    let cov = run::Coverage::of(spec, args.profile, &own);
    report_errors(&all);
    let results = CheckResults {
        dir: &dir,
        profile: args.profile,
        targets: &targets,
        live: &live,
        all: &all,
        linux: &linux,
        smoltcp: smoltcp.as_deref(),
        cov: &cov,
    };
    let out = match args.format {
        CheckFormat::Json => results.json()?,
        CheckFormat::Text => results.text(),
    };
    write_out(&out)?;
    phases.mark("report");
    Ok(ExitCode::from(suite::Summary::of(&all).exit_code()))
}

/// What `check` found, ready to print.
struct CheckResults<'a> {
    dir: &'a std::path::Path,
    profile: Profile,
    targets: &'a [&'a str],
    live: &'a Result<(), String>,
    all: &'a [RunReport],
    linux: &'a [crate::run::diff::ScriptDiff],
    /// The smoltcp diffs, unless `--no-smoltcp`.
    smoltcp: Option<&'a [crate::run::diff::ScriptDiff]>,
    cov: &'a run::Coverage,
}

impl CheckResults<'_> {
    /// `--format json`.
    fn json(&self) -> Result<String, CliError> {
        use crate::run::diff;
        let sum = suite::Summary::of(self.all);
        let v = serde_json::json!({
            "targets": self.targets,
            "live_skipped": self.live.as_ref().err(),
            "scripts": self.all.iter().map(RunReport::to_json).collect::<Vec<_>>(),
            "passed": sum.passed,
            "flaky": sum.flaky,
            "failed": sum.failed,
            "errors": sum.errors,
            "not_applicable": sum.not_applicable,
            "linux": diff::json_report(self.linux),
            "smoltcp": diff::json_report(self.smoltcp.unwrap_or(&[])),
            "coverage": self.cov.json(),
        });
        let mut s = serde_json::to_string_pretty(&v)?;
        s.push('\n');
        Ok(s)
    }

    /// `--format text`: the scripts' table, then one tally per target.
    fn text(&self) -> String {
        use crate::run::diff;
        let mut out = render_reports(self.all, false);
        out.push_str(&format!(
            "conformance suite {} on {} (profile {})\n",
            self.dir.display(),
            self.targets.join(", "),
            self.profile
        ));
        if let Some(smoltcp) = self.smoltcp {
            out.push_str(&format!(
                "smoltcp: distinct divergences over {} scripts, per class and level \
             (details: tcpconform diff --targets own,smoltcp {}):\n{}",
                smoltcp.len(),
                self.dir.display(),
                diff::tally_text(&diff::tally(smoltcp, "smoltcp"))
            ));
        }
        match self.live {
            Ok(()) => out.push_str(&format!(
                "linux: distinct divergences over {} scripts, per class and level \
             (details: tcpconform diff --targets own,linux {}):\n{}",
                self.linux.len(),
                self.dir.display(),
                diff::tally_text(&diff::tally(self.linux, "linux"))
            )),
            Err(why) => out.push_str(&format!("live targets (own-tun, linux) skipped: {why}\n")),
        }
        out.push_str(&format!(
            "coverage: {} (details: tcpconform coverage)\n",
            self.cov.summary_line()
        ));
        out
    }
}

fn coverage_cmd(args: CoverageArgs) -> Result<ExitCode, CliError> {
    let paths = if args.paths.is_empty() {
        vec![shown_path(&bundled_suite_dir())]
    } else {
        args.paths
    };
    if args.target != TargetName::Own {
        eprintln!(
            "tcpconform: note: target {} does not report the table row of its transitions; \
             only own's runs count rows",
            args.target
        );
    }
    match suite::discover(&paths) {
        Ok(s) if s.is_empty() => return usage_error("no *.pkt scripts found"),
        Ok(_) => {}
        Err(e) => return usage_error(e),
    }
    let (reports, cov) = match run::coverage::run_on(&paths, &args.target, args.profile) {
        Ok(r) => r,
        Err(e) => return env_error(e),
    };
    report_errors(&reports);
    let out = match args.format {
        CoverageFormat::Text => cov.text(),
        CoverageFormat::Json => {
            let mut s = serde_json::to_string_pretty(&cov.json())?;
            s.push('\n');
            s
        }
    };
    write_out(&out)?;
    Ok(ExitCode::from(suite::Summary::of(&reports).exit_code()))
}

/// `tcpconform diff`: exit 0 without departures, 1 with, 2 on bad input
/// (a script that does not read or parse), 3 when a live target cannot
/// start.
fn diff_cmd(args: DiffArgs) -> Result<ExitCode, CliError> {
    use crate::run::diff::{self, Class, DiffOptions};
    if let Err(e) = args.exec.apply() {
        return usage_error(e);
    }
    let mut targets: Vec<String> = Vec::new();
    for t in &args.targets {
        if let Err(e) = t.check() {
            return usage_error(e);
        }
        let t = t.to_string();
        if !targets.contains(&t) {
            targets.push(t);
        }
    }
    if targets.iter().all(|t| t == diff::REFERENCE) {
        return usage_error("diff needs a target besides own (e.g. --targets own,linux)");
    }
    // Live targets that cannot start are a usage error, except own-tun,
    // which is optional and skipped with a note.
    let must_start = |t: &TargetName| matches!(t, TargetName::Linux | TargetName::Exec(_));
    for t in args.targets.iter().filter(|t| must_start(t)) {
        if let Err(e) = t.make(args.profile) {
            return env_error(format!("target {t}: {e}"));
        }
    }
    let scripts = match suite::discover(&args.paths) {
        Ok(s) if s.is_empty() => return usage_error("no *.pkt scripts found"),
        Ok(s) => args.parallel.select(s),
        Err(e) => return usage_error(e),
    };
    let opts = DiffOptions {
        targets: targets.clone(),
        profile: args.profile,
        max_timeline_us: args.max_timeline.map(|s| s.saturating_mul(1_000_000)),
        run: args.tolerance.run_options(),
    };
    let live = args.targets.iter().any(|t| !t.is_virtual());
    let one = |p: &PathBuf| diff::diff_file(&shown_path(p), &opts);
    let diffs: Vec<diff::ScriptDiff> = parallel::map_scripts(
        &scripts,
        live,
        &args.parallel,
        args.profile,
        &opts.run,
        "diff",
        &one,
    );
    let out = if args.format == DiffFormat::Json {
        let mut s = serde_json::to_string_pretty(&diff::json_report(&diffs))?;
        s.push('\n');
        s
    } else if args.format == DiffFormat::Markdown {
        let other = targets
            .iter()
            .find(|t| *t != diff::REFERENCE)
            .cloned()
            .unwrap_or_default();
        diff::markdown(&diffs, &other)
    } else {
        let mut s: String = diffs.iter().map(|d| d.text()).collect();
        s.push_str(&format!(
            "{} scripts; divergences per class:\n",
            diffs.len()
        ));
        for c in Class::ALL.into_iter().rev() {
            let n = diff::count(&diffs, c);
            if n > 0 {
                s.push_str(&format!("  {}: {n}\n", c.name()));
            }
        }
        s
    };
    write_out(&out)?;
    let bad: Vec<&diff::ScriptDiff> = diffs.iter().filter(|d| d.script_error).collect();
    for d in &bad {
        let why = d.outcomes.iter().chain(&d.skipped).next();
        eprintln!(
            "tcpconform: {}: {}",
            d.script,
            why.map_or("", |w| w.as_str())
        );
    }
    if !bad.is_empty() {
        return Ok(ExitCode::from(exit::USAGE));
    }
    let departs = diffs.iter().any(|d| d.worst().is_some_and(Class::departs));
    Ok(ExitCode::from(if departs {
        exit::VERDICT
    } else {
        exit::OK
    }))
}

fn spec(args: SpecArgs) -> Result<ExitCode, CliError> {
    let spec = Spec::bundled()?;
    if let Some(w) = &args.where_ {
        return spec_where(spec, &args, w);
    }
    let out = match args.format {
        SpecFormat::Text => render::text(spec, args.profile.unwrap_or_default()),
        SpecFormat::Json => {
            let mut s = serde_json::to_string_pretty(&render::json(spec, args.profile))?;
            s.push('\n');
            s
        }
        SpecFormat::Dot => render::dot(spec, args.profile.unwrap_or_default()),
    };
    write_out(&out)?;
    Ok(ExitCode::SUCCESS)
}
