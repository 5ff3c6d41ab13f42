//! Backtick `sysctl` lines on the own target: a knob with a counterpart in
//! the stack's configuration changes what the stack does; one without makes
//! the script *not applicable* (named at the sysctl line), which is neither
//! a pass nor a failure and leaves the exit code at 0.

use std::path::{Path, PathBuf};
use std::process::Command;
use tcp_harness::run::{run_text, Outcome, OwnTarget, RunOptions, RunReport};
use tcp_spec::Profile;

fn testdata(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("src/script/testdata")
        .join(name)
}

fn read(name: &str) -> String {
    match std::fs::read_to_string(testdata(name)) {
        Ok(t) => t,
        Err(e) => panic!("{name}: {e}"),
    }
}

fn run(path: &str, text: &str) -> RunReport {
    let mut t = OwnTarget::new(Profile::Rfc9293);
    run_text(path, text, &mut t, &RunOptions::default())
}

/// The script without its backtick sysctl line.
fn without_sysctl(text: &str) -> String {
    let kept: Vec<&str> = text
        .lines()
        .filter(|l| !l.trim_start().starts_with("`sysctl"))
        .collect();
    assert!(
        kept.len() < text.lines().count(),
        "no sysctl line in {text}"
    );
    kept.join("\n")
}

/// `net.ipv4.tcp_window_scaling=0`: the SYN carries `<mss 1460>` only and
/// the script passes; without the sysctl the SYN offers a window scale and
/// the same expectation fails at that line.
#[test]
fn window_scaling_off_drops_the_option_from_the_syn() {
    let name = "sysctl_window_scaling_off.pkt";
    let text = read(name);
    let r = run(name, &text);
    assert!(r.passed(), "{}", r.details());
    assert!(r.warnings.is_empty(), "{:?}", r.warnings);
    let r = run(name, &without_sysctl(&text));
    match &r.outcome {
        Outcome::Failed(f) => {
            assert!(f.message.contains("options differ"), "{}", r.details());
            assert!(
                f.actual.as_deref().is_some_and(|a| a.contains("wscale")),
                "{}",
                r.details()
            );
        }
        o => panic!("expected a failure without the sysctl, got {o}"),
    }
}

/// `net.ipv4.tcp_syn_retries=2`: two retransmissions, then connect() fails
/// with ETIMEDOUT at 7 s; without the sysctl the profile's count keeps the
/// SYN going and the call does not fail by then.
#[test]
fn syn_retries_sets_the_count_of_syn_retransmissions() {
    let name = "sysctl_syn_retries.pkt";
    let text = read(name);
    let r = run(name, &text);
    assert!(r.passed(), "{}", r.details());
    let r = run(name, &without_sysctl(&text));
    assert!(
        matches!(r.outcome, Outcome::Failed(_)),
        "expected a failure without the sysctl: {}",
        r.outcome
    );
}

/// A sysctl without a counterpart ends the run as not applicable, located
/// at the sysctl line and naming it; no packet is compared.
#[test]
fn a_sysctl_without_counterpart_makes_the_script_not_applicable() {
    let name = "sysctl_no_counterpart.pkt";
    let r = run(name, &read(name));
    let Outcome::NotApplicable(why) = &r.outcome else {
        panic!("expected not applicable, got {}", r.outcome);
    };
    assert!(
        why.starts_with(&format!(
            "{name}:5:1: sysctl net.ipv4.tcp_ecn=1 not applicable on own"
        )),
        "{why}"
    );
    assert!(!r.passed() && r.not_applicable());
    assert!(r.details().contains("net.ipv4.tcp_ecn"), "{}", r.details());
    assert_eq!(r.to_json()["outcome"], "not_applicable");
}

/// `tcpconform run`: reported as not applicable, counted apart, exit 0.
#[test]
fn run_reports_not_applicable_and_exits_0() {
    let p = testdata("sysctl_no_counterpart.pkt").display().to_string();
    let out = match Command::new(env!("CARGO_BIN_EXE_tcpconform"))
        .args(["run", &p])
        .output()
    {
        Ok(o) => o,
        Err(e) => panic!("cannot run tcpconform: {e}"),
    };
    let t = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{t}");
    assert!(
        t.contains(&format!(
            "{p}:5:1: sysctl net.ipv4.tcp_ecn=1 not applicable on own"
        )),
        "{t}"
    );
    assert!(t.contains("  not applicable  "), "{t}");
    assert!(
        t.contains("0 passed, 0 failed, 0 errors, 1 not applicable"),
        "{t}"
    );
}
