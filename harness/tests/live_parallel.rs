//! Parallel live runs (`--jobs`, `harness/src/run/parallel.rs`): scripts
//! side by side on live targets in one process get the verdicts a serial
//! run gives, in script order, each in a namespace of its own.
//!
//! Needs root (or CAP_NET_ADMIN + CAP_SYS_ADMIN), /dev/net/tun and
//! iproute2; elsewhere the tests print `skipped: <reason>` and pass, and
//! under `CI=true` they fail. The tests take the common live lock: the
//! parallelism under test is the one inside a single run.
//!
//! Real time on a loaded machine can push one run of a script past its
//! tolerance; as the suite does ([`suite::LIVE_RETRIES`]), a script whose
//! parallel verdict differs from the serial one is run again on its own,
//! at most that many times, before the verdicts are compared.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;
use std::sync::{Barrier, Mutex};

use tcp_harness::live;
use tcp_harness::run::diff::{self, DiffOptions};
use tcp_harness::run::linux::LinuxTarget;
use tcp_harness::run::own_tun::OwnTunTarget;
use tcp_harness::run::parallel::{self, ParallelArgs};
use tcp_harness::run::target::{CallOutcome, Micros, SocketCall, TargetError};
use tcp_harness::run::{run_file, suite, Outcome, RunOptions, RunReport, SysctlOutcome, Target};
use tcp_spec::Profile;

/// A handful of short scripts: passive and active opens and closes, a
/// reset, IPv6.
const SCRIPTS: [&str; 6] = [
    "passive_open",
    "active_open",
    "passive_close",
    "simultaneous_close",
    "rst_closed_port",
    "ipv6/passive_data_close",
];

fn scripts() -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../specs/scripts");
    SCRIPTS
        .iter()
        .map(|s| dir.join(format!("{s}.pkt")))
        .collect()
}

/// What a verdict is made of: passed, or the failing line and message
/// without its measured time.
fn verdict(r: &RunReport) -> String {
    match &r.outcome {
        Outcome::Failed(f) => {
            let msg = f.message.split(" at ").next().unwrap_or(&f.message);
            let msg = msg.split(" by ").next().unwrap_or(msg);
            format!("{}: failed at line {}: {msg}", r.path, f.line)
        }
        o => format!("{}: {o}", r.path),
    }
}

/// Classified `diff` reports (own vs linux) of the scripts, serially and
/// on as many workers as scripts, are the same, in the same order.
#[test]
fn diff_with_jobs_gives_the_serial_verdicts_in_order() {
    let Some(_guard) = live::testing::guard() else {
        return;
    };
    let scripts = scripts();
    let opts = DiffOptions::default();
    let one = |p: &PathBuf| diff::diff_file(p, &opts);
    let run = |jobs: u16| -> Vec<String> {
        let par = ParallelArgs {
            jobs: Some(jobs),
            shard: None,
        };
        let ran = parallel::map_scripts(
            &scripts,
            true,
            &par,
            Profile::Rfc9293,
            &opts.run,
            "diff",
            &one,
        );
        ran.iter().map(|d| d.snapshot()).collect()
    };
    let serial = run(1);
    let mut side_by_side = run(SCRIPTS.len() as u16);
    for ((s, p), path) in serial.iter().zip(&mut side_by_side).zip(&scripts) {
        for _ in 0..suite::LIVE_RETRIES {
            if s == p {
                break;
            }
            *p = one(path).snapshot();
        }
        assert_eq!(
            s, p,
            "a parallel run's verdicts differ from the serial run's"
        );
    }
    // The order is the script order: each report names its script.
    for (report, name) in side_by_side.iter().zip(SCRIPTS) {
        assert!(report.contains(&format!("{name}.pkt")), "{name}: {report}");
    }
    live::testing::assert_no_namespace_of_ours();
}

/// `linux` and `own-tun` targets all alive at once in one process (a
/// barrier holds every worker until all have set up) live in distinct
/// namespaces and run their scripts to the verdicts they get alone.
#[test]
fn concurrent_targets_do_not_collide() {
    let Some(_guard) = live::testing::guard() else {
        return;
    };
    let scripts = scripts();
    let opts = RunOptions::default();
    let make = |i: usize| -> Box<dyn Target> {
        if i.is_multiple_of(2) {
            Box::new(LinuxTarget::new().unwrap_or_else(|e| panic!("linux: {e}")))
        } else {
            Box::new(OwnTunTarget::new(Profile::Rfc9293).unwrap_or_else(|e| panic!("own-tun: {e}")))
        }
    };
    let items: Vec<(usize, PathBuf)> = scripts.iter().cloned().enumerate().collect();
    // A failure is retried on fresh targets, as `run` does.
    let settled = |first: RunReport, (i, p): &(usize, PathBuf)| -> String {
        if first.passed() {
            return verdict(&first);
        }
        let again = suite::run_with_retries(p, suite::LIVE_RETRIES, &opts, || Ok(make(*i)));
        verdict(&again.unwrap_or(first))
    };
    let serial: Vec<String> = items
        .iter()
        .map(|it| settled(run_file(&it.1, make(it.0).as_mut(), &opts), it))
        .collect();
    let barrier = Barrier::new(items.len());
    let names = Mutex::new(BTreeSet::new());
    let at_once = |(i, p): &(usize, PathBuf)| {
        let mut target = make(*i);
        barrier.wait();
        // Every target of this test exists now.
        names
            .lock()
            .unwrap()
            .extend(live::testing::namespaces_of_this_process());
        let first = run_file(p, target.as_mut(), &opts);
        drop(target);
        settled(first, &(*i, p.clone()))
    };
    let order: Vec<usize> = (0..items.len()).collect();
    let together = parallel::map_ordered(&items, items.len(), &order, &|_| {}, &at_once);
    let names = names.into_inner().unwrap();
    assert!(
        names.len() >= items.len(),
        "{} targets alive at once, but namespaces {names:?}",
        items.len()
    );
    assert_eq!(serial, together, "alone and side by side");
    live::testing::assert_no_namespace_of_ours();
}

/// `tcpconform run --target linux` prints the same table rows (script,
/// target, result) in the same order with `--jobs 1` and `--jobs 6`.
#[test]
fn run_with_jobs_prints_the_serial_table() {
    let Some(_guard) = live::testing::guard() else {
        return;
    };
    let rows = |jobs: &str| -> Vec<String> {
        let out = Command::new(env!("CARGO_BIN_EXE_tcpconform"))
            .args(["run", "--target", "linux", "--jobs", jobs])
            .args(scripts())
            .output()
            .expect("tcpconform runs");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let rows: Vec<String> = text
            .lines()
            .filter(|l| l.contains(".pkt  "))
            // A pass on a retry (`flaky`) is a pass.
            .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
            .map(|l| l.replace(" flaky", " passed"))
            .collect();
        assert_eq!(rows.len(), SCRIPTS.len(), "one row per script:\n{text}");
        rows
    };
    let serial = rows("1");
    // `run` sorts the scripts it is given.
    let mut sorted = scripts();
    sorted.sort();
    for (row, path) in serial.iter().zip(&sorted) {
        let name = path.file_name().unwrap().to_string_lossy();
        assert!(row.contains(&*name), "{row} is not {name}");
    }
    assert_eq!(serial, rows("6"));
    live::testing::assert_no_namespace_of_ours();
}

/// A live target that records how late the runner injects a packet or
/// makes a call after the script time it waited for: the last `advance`
/// deadline before the injection or call, when the clock has passed it.
struct LagProbe {
    inner: Box<dyn Target>,
    deadline: Option<Micros>,
    samples: std::sync::Arc<Mutex<Vec<Micros>>>,
}

impl LagProbe {
    fn sample(&mut self) {
        let now = self.inner.now();
        if let Some(d) = self.deadline.take().filter(|&d| now >= d) {
            self.samples.lock().unwrap().push(now - d);
        }
    }
}

impl Target for LagProbe {
    fn name(&self) -> &'static str {
        self.inner.name()
    }
    fn is_virtual(&self) -> bool {
        self.inner.is_virtual()
    }
    fn now(&self) -> Micros {
        self.inner.now()
    }
    fn addresses(&self) -> (std::net::SocketAddr, std::net::SocketAddr) {
        self.inner.addresses()
    }
    fn set_ip_version(&mut self, v: tcp_harness::script::IpVersion) -> Result<(), TargetError> {
        self.inner.set_ip_version(v)
    }
    fn advance(&mut self, until: Micros) -> Result<Micros, TargetError> {
        self.deadline = Some(until);
        self.inner.advance(until)
    }
    fn inject(&mut self, packet: &[u8]) -> Result<(), TargetError> {
        self.sample();
        self.inner.inject(packet)
    }
    fn take_outbound(&mut self) -> Vec<(Micros, Vec<u8>)> {
        self.inner.take_outbound()
    }
    fn call(&mut self, call: &SocketCall) -> Result<CallOutcome, TargetError> {
        self.sample();
        self.inner.call(call)
    }
    fn sysctl(&mut self, name: &str, value: &str) -> SysctlOutcome {
        self.inner.sysctl(name, value)
    }
    fn shell(
        &mut self,
        cmd: &str,
        cwd: &std::path::Path,
    ) -> tcp_harness::run::target::ShellOutcome {
        self.inner.shell(cmd, cwd)
    }
    fn timing_slack(&self, gap: std::time::Duration) -> std::time::Duration {
        self.inner.timing_slack(gap)
    }
}

/// Measurement, not a check (`cargo test -p tcp-harness --test
/// live_parallel -- --ignored --nocapture scheduling_lag`): the suite's
/// short scripts on `linux` and `own-tun` with `--jobs 1` and the default,
/// each printing its wall time, the longest timeline, the flaky count and
/// the lag percentiles (README, "Parallel live runs"). The probe wraps the
/// target, so it sees only what the runner does through the trait.
#[test]
#[ignore]
fn scheduling_lag() {
    let Some(_guard) = live::testing::guard() else {
        return;
    };
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../specs/scripts");
    let all = suite::discover(&[dir]).unwrap();
    let opts = RunOptions::default();
    let timelines = parallel::estimate_timelines(&all, Profile::Rfc9293, &opts);
    let mut jobs = Vec::new();
    let mut est = Vec::new();
    for target in ["linux", "own-tun"] {
        for (p, &t) in all.iter().zip(&timelines) {
            if t <= 30_000_000 {
                jobs.push((target, p.clone()));
                est.push(t);
            }
        }
    }
    let longest = est.iter().max().copied().unwrap_or(0);
    let sum: Micros = est.iter().sum();
    // TCPCONFORM_LAG_JOBS=1,8 measures those instead ("default": the default).
    let modes: Vec<Option<u16>> = std::env::var("TCPCONFORM_LAG_JOBS")
        .unwrap_or_else(|_| "1,default".into())
        .split(',')
        .map(|m| m.trim().parse().ok())
        .collect();
    for n in modes {
        let samples = std::sync::Arc::new(Mutex::new(Vec::new()));
        let par = ParallelArgs {
            jobs: n,
            shard: None,
        };
        let started = std::time::Instant::now();
        let one = |(target, p): &(&str, PathBuf)| {
            suite::run_with_retries(p, 1 + suite::LIVE_RETRIES, &opts, || {
                let inner = suite::make_target(target, Profile::Rfc9293)?;
                Ok(Box::new(LagProbe {
                    inner,
                    deadline: None,
                    samples: std::sync::Arc::clone(&samples),
                }) as Box<dyn Target>)
            })
            .unwrap()
        };
        let reports = parallel::map_live(&jobs, &est, &par, &|j| j.1.display().to_string(), &one);
        let wall = started.elapsed();
        let sum_r = tcp_harness::run::Summary::of(&reports);
        let mut s = samples.lock().unwrap().clone();
        s.sort_unstable();
        let pct = |q: f64| {
            s.get(((s.len() as f64 - 1.0) * q) as usize)
                .copied()
                .unwrap_or(0)
        };
        println!(
            "jobs {}: {} runs in {:.1} s wall (timelines: sum {:.1} s, longest {:.1} s); \
             passed {} (flaky {}), failed {}; lag over {} injections/calls: \
             p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            par.jobs_for(&est),
            reports.len(),
            wall.as_secs_f64(),
            sum as f64 / 1e6,
            longest as f64 / 1e6,
            sum_r.passed,
            sum_r.flaky,
            sum_r.failed,
            s.len(),
            pct(0.5) as f64 / 1e3,
            pct(0.9) as f64 / 1e3,
            pct(0.99) as f64 / 1e3,
            s.last().copied().unwrap_or(0) as f64 / 1e3,
        );
    }
    live::testing::assert_no_namespace_of_ours();
}
