//! Divergence snapshots of the live `linux` target (docs/architecture.md, "Scripts and
//! the runner": divergences as reviewable snapshots).
//!
//! Every script of the conformance suite runs on `own` (the reference,
//! profile rfc9293) and on `linux` (this machine's kernel behind TUN in a
//! namespace of its own), and `tcp_harness::run::diff` classifies each
//! divergence against the table's profiles. The classified report of each
//! script is recorded as the insta snapshot `live__<script>` (path below
//! `specs/scripts`, `/` → `__`); reports carry no raw timestamps (intervals
//! rounded to 0.1 s, TS values `*`), so they are stable across runs.
//! Scripts whose timeline is longer than [`MAX_TIMELINE_US`] are not run
//! live and say so in their snapshot.
//!
//! `docs/divergences.md` is generated from the committed snapshots (it runs
//! nothing live); a test checks it is current. After a verdict changes,
//! update the snapshots first (`INSTA_UPDATE=always cargo test -p tcpconform
//! --test live`, as root, long tier included), review them, then
//! regenerate it with
//! `cargo test -p tcpconform --test live -- --ignored regenerate_divergences`.
//!
//! The same suite runs on `own-tun` (the own stack behind `tun1`, real
//! time), which must behave exactly as `own` on every script: same packets,
//! call results and rows ([`Behaviour`]). A script that fails on a live
//! target is retried up to twice and reported as flaky, not failed
//! ([`suite::run_script_file`]).
//!
//! Without root (or /dev/net/tun) the live tests print `skipped: <reason>`
//! and pass. Live scripts run one at a time; afterwards no namespace of
//! this process may remain.

use std::path::PathBuf;
use tcp_harness::live;
use tcp_harness::run::diff::{self, DiffOptions, ScriptDiff};
use tcp_harness::run::{discover, suite, Behaviour, OwnTarget, RunOptions};
use tcp_spec::Profile;

/// Scripts with a longer timeline (measured on `own`) are not run live.
const MAX_TIMELINE_US: u64 = 30_000_000;

mod suite_snapshots;
use suite_snapshots::{rel, root, snapshot_name, suite_dir};

fn committed() -> Vec<ScriptDiff> {
    suite_snapshots::committed("live")
}

/// `uname -r` of the kernel under test.
fn kernel_release() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown".into())
}

fn generated_doc() -> String {
    diff::markdown(&committed(), "linux")
}

fn doc_path() -> PathBuf {
    root().join("docs/divergences.md")
}

#[test]
fn own_tun_behaves_as_own_on_every_script() {
    let Some(_guard) = live::testing::guard() else {
        return;
    };
    let started = std::time::Instant::now();
    let scripts = discover(&[suite_dir()]).unwrap_or_else(|e| panic!("suite: {e}"));
    let opts = RunOptions::default();
    let (mut ran, mut flaky, mut skipped) = (0, Vec::new(), Vec::new());
    let mut differ: Vec<String> = Vec::new();
    for path in &scripts {
        let rel = rel(path);
        let on_own = suite::run_file(path, &mut OwnTarget::new(Profile::Rfc9293), &opts);
        assert!(on_own.passed(), "{rel} fails on own:\n{}", on_own.details());
        if on_own.end_time > MAX_TIMELINE_US {
            skipped.push(format!(
                "{rel} ({:.0} s timeline)",
                on_own.end_time as f64 / 1e6
            ));
            continue;
        }
        let on_tun = suite::run_script_file(path, "own-tun", Profile::Rfc9293, &opts)
            .unwrap_or_else(|e| panic!("own-tun: {e}"));
        ran += 1;
        if on_tun.flaky() {
            flaky.push(format!("{rel}: {}", on_tun.earlier_failures.join("; ")));
        }
        let (own_b, tun_b): (Behaviour, Behaviour) =
            (on_own.trace.behaviour(), on_tun.trace.behaviour());
        if !on_tun.passed() || own_b != tun_b {
            differ.push(format!(
                "{rel}: own-tun {}\n{}own:     {own_b:?}\nown-tun: {tun_b:?}",
                on_tun.outcome,
                on_tun.details()
            ));
        }
    }
    live::testing::assert_no_namespace_of_ours();
    println!(
        "own-tun: {ran} scripts in {:.1} s; flaky (passed on a retry): {flaky:?}; \
         not run live: {skipped:?}",
        started.elapsed().as_secs_f64()
    );
    assert!(ran >= 40, "only {ran} scripts ran on own-tun");
    assert!(
        differ.is_empty(),
        "own-tun differs from own:\n{}",
        differ.join("\n\n")
    );
}

/// The body of the stored live snapshot `name` (after insta's header).
fn stored_body(name: &str) -> Option<String> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/snapshots")
        .join(format!("live__{name}.snap"));
    let text = std::fs::read_to_string(path).ok()?;
    let body = text.strip_prefix("---\n")?.split_once("\n---\n")?.1;
    Some(body.trim_end().to_string())
}

#[test]
fn linux_divergences_match_their_snapshots() {
    let Some(_guard) = live::testing::guard() else {
        return;
    };
    let started = std::time::Instant::now();
    let scripts = discover(&[suite_dir()]).unwrap_or_else(|e| panic!("suite: {e}"));
    assert!(scripts.len() >= 40, "suite has {} scripts", scripts.len());
    let opts = DiffOptions {
        targets: vec!["own".into(), "linux".into()],
        profile: Profile::Rfc9293,
        max_timeline_us: Some(MAX_TIMELINE_US),
        ..DiffOptions::default()
    };
    let mut skipped = Vec::new();
    for path in &scripts {
        // Serialized: one script, one live target at a time.
        let (rel, mut report) = suite_snapshots::diff_script(path, &opts);
        let name = snapshot_name(&rel);
        // Live timing can reorder two allowed packets: what the kernel sends
        // during an injection or call is stamped before the next event
        // (`PeerTap::sync`), but a packet a kernel timer sends (a delayed
        // ACK on the next tick) can still land on either side of a call.
        // A script whose classified set differs from its snapshot is run
        // again, twice at most, before insta compares the last run.
        for _ in 0..2 {
            if stored_body(&name).is_none_or(|b| b == report.snapshot().trim_end()) {
                break;
            }
            println!("{rel}: differs from its snapshot, run again (live timing)");
            report = suite_snapshots::diff_script(path, &opts).1;
        }
        println!("{}", report.text());
        skipped.extend(report.skipped.iter().map(|s| format!("{rel}: {s}")));
        let mut settings = insta::Settings::clone_current();
        settings.set_snapshot_path("snapshots");
        settings.set_omit_expression(true);
        // The kernel goes in the header: the body compares across kernels.
        settings.set_description(format!("kernel {}", kernel_release()));
        settings.bind(|| insta::assert_snapshot!(name, report.snapshot()));
    }
    live::testing::assert_no_namespace_of_ours();
    println!(
        "skipped on linux:\n  {}\n{} scripts in {:.1} s",
        skipped.join("\n  "),
        scripts.len(),
        started.elapsed().as_secs_f64()
    );
}

/// The long tier (`specs/long/`): scripts whose timelines are minutes —
/// TIME-WAIT length, the give-up of an unanswered connect — run on `linux`
/// without the timeline limit and without strict mode (their SYN
/// retransmissions are not scripted), one at a time. About 3.5 minutes.
#[test]
fn long_tier_linux_divergences_match_their_snapshots() {
    let Some(_guard) = live::testing::guard() else {
        return;
    };
    let started = std::time::Instant::now();
    let dir = root().join("specs/long");
    let scripts = discover(std::slice::from_ref(&dir)).unwrap_or_else(|e| panic!("long tier: {e}"));
    assert!(
        scripts.len() >= 2,
        "long tier has {} scripts",
        scripts.len()
    );
    let opts = DiffOptions {
        targets: vec!["own".into(), "linux".into()],
        profile: Profile::Rfc9293,
        max_timeline_us: None,
        run: RunOptions {
            strict: false,
            ..RunOptions::default()
        },
    };
    for path in &scripts {
        let name = path
            .file_stem()
            .map(|s| s.to_string_lossy().to_string())
            .unwrap_or_default();
        let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{name}: {e}"));
        let report = diff::diff_text(
            &format!("specs/long/{name}.pkt"),
            &text,
            &opts,
            &mut suite::make_target,
        );
        println!("{}", report.text());
        let mut settings = insta::Settings::clone_current();
        settings.set_snapshot_path("snapshots");
        settings.set_omit_expression(true);
        settings.set_description(format!("kernel {}", kernel_release()));
        let snap = format!("long__{name}");
        settings.bind(|| insta::assert_snapshot!(snap, report.snapshot()));
    }
    live::testing::assert_no_namespace_of_ours();
    println!(
        "long tier: {} scripts in {:.1} s",
        scripts.len(),
        started.elapsed().as_secs_f64()
    );
}

#[test]
fn divergences_doc_matches_the_snapshots() {
    suite_snapshots::assert_doc_current(&doc_path(), &generated_doc(), "live", "live");
}

#[test]
fn snapshots_round_trip() {
    for d in committed() {
        let again = ScriptDiff::from_snapshot(&d.snapshot()).unwrap_or_else(|e| panic!("{e}"));
        // The kernel lives in the file's header, not in the body.
        assert_eq!(again.snapshot(), d.snapshot());
        assert_eq!(again.divergences, d.divergences);
    }
}

#[test]
#[ignore = "writes docs/divergences.md"]
fn regenerate_divergences() {
    let doc = generated_doc();
    std::fs::write(doc_path(), doc).unwrap_or_else(|e| panic!("docs/divergences.md: {e}"));
}
