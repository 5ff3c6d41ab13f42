//! Parallel live runs (`--jobs`, `harness/src/run/parallel.rs`): scripts
//! side by side on live targets in one process get the verdicts a serial
//! run gives, in script order, each in a namespace of its own.
//!
//! Needs root (or CAP_NET_ADMIN + CAP_SYS_ADMIN), /dev/net/tun and
//! iproute2; elsewhere the tests print `skipped: <reason>` and pass, and
//! under `CI=true` they fail. The tests take the common live lock: the
//! parallelism under test is the one inside a single run.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;
use std::sync::{Barrier, Mutex};

use tcp_harness::live;
use tcp_harness::run::diff::{self, DiffOptions};
use tcp_harness::run::linux::LinuxTarget;
use tcp_harness::run::own_tun::OwnTunTarget;
use tcp_harness::run::parallel::{self, ParallelArgs};
use tcp_harness::run::{run_file, Outcome, RunOptions, RunReport, Target};
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
    let side_by_side = run(SCRIPTS.len() as u16);
    for (s, p) in serial.iter().zip(&side_by_side) {
        assert_eq!(s, p, "a parallel run's verdicts differ from the serial run's");
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
        if i % 2 == 0 {
            Box::new(LinuxTarget::new().unwrap_or_else(|e| panic!("linux: {e}")))
        } else {
            Box::new(OwnTunTarget::new(Profile::Rfc9293).unwrap_or_else(|e| panic!("own-tun: {e}")))
        }
    };
    let items: Vec<(usize, PathBuf)> = scripts.iter().cloned().enumerate().collect();
    let serial: Vec<String> = items
        .iter()
        .map(|(i, p)| verdict(&run_file(p, make(*i).as_mut(), &opts)))
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
        verdict(&run_file(p, target.as_mut(), &opts))
    };
    let order: Vec<usize> = (0..items.len()).collect();
    let together = parallel::map_ordered(&items, items.len(), &order, &|_| {}, &at_once);
    let names = names.into_inner().unwrap();
    assert!(
        names.len() >= items.len(),
        "{} targets alive at once, but namespaces {names:?}",
        items.len()
    );
    assert_eq!(serial, together);
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
            .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
            .collect();
        assert_eq!(rows.len(), SCRIPTS.len(), "one row per script:\n{text}");
        rows
    };
    let serial = rows("1");
    for (row, name) in serial.iter().zip(SCRIPTS) {
        assert!(row.contains(&format!("{name}.pkt")), "{row}");
    }
    assert_eq!(serial, rows("6"));
    live::testing::assert_no_namespace_of_ours();
}
