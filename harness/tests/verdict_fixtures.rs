//! The classifier on recorded evidence, without root: each fixture in
//! `tests/fixtures/verdicts/` is a live run of the kernel (the reference
//! trace, the failure and the kernel's trace up to it), recorded by
//! `cargo test -p tcp-harness --test verdict_fixtures -- --ignored record_fixtures`
//! (as root). [`CASES`] names, for each, the verdict a reader of the RFC
//! and the kernel source gives it — written by hand from the audit of the
//! Linux divergences, not taken from the classifier — and the rule that
//! must decide it: without that rule the verdict must change.

use std::path::{Path, PathBuf};
use tcp_harness::run::diff::{self, DiffOptions, Recorded};
use tcp_harness::run::{suite, Trace};
use tcp_harness::verdict::{self, Case, Class, Judge, RULES};
use tcp_spec::{Level, Profile, Spec};

/// One audited divergence: where it shows, and what it is.
struct Audited {
    name: &'static str,
    /// Script below `specs/scripts`.
    script: &'static str,
    /// The script line the failure is reported at.
    line: usize,
    class: Class,
    level: Option<Level>,
    /// The target's profile documents it.
    documented: bool,
    /// The rule that decides it.
    rule: &'static str,
}

const CASES: &[Audited] = &[
    // Linux answers a RST at 65535, beyond its own 64240 window, with
    // nothing: RFC 5961 3.2 drops a RST outside the window.
    Audited {
        name: "rst-beyond-the-targets-window",
        script: "matrix/established_rst.pkt",
        line: 29,
        class: Class::Conforms,
        level: Some(Level::Should),
        documented: false,
        rule: "response",
    },
    // The ACK bit on a RST in a synchronized state is harmless.
    Audited {
        name: "rst-with-ack-on-abort",
        script: "matrix/established_abort.pkt",
        line: 22,
        class: Class::Conforms,
        level: Some(Level::None),
        documented: false,
        rule: "response",
    },
    // write() after a reset: EPIPE vs ECONNRESET is socket API.
    Audited {
        name: "errno-after-reset",
        script: "matrix/established_rst.pkt",
        line: 34,
        class: Class::Api,
        level: None,
        documented: false,
        rule: "socket-api",
    },
    // The shared out-of-window limiter (500 ms, one timestamp) suppresses
    // the ACK to an unacceptable segment: lower-case text departed from.
    Audited {
        name: "oow-limiter-suppresses-dupack",
        script: "matrix/established_ack.pkt",
        line: 37,
        class: Class::Deviation,
        level: Some(Level::None),
        documented: true,
        rule: "rate-limit",
    },
    // The same limiter on the request socket in SYN-RECEIVED: its one
    // timestamp was set by the challenge ACK 20 ms earlier.
    Audited {
        name: "oow-limiter-in-syn-received",
        script: "matrix/syn_received.pkt",
        line: 31,
        class: Class::Deviation,
        level: Some(Level::None),
        documented: true,
        rule: "rate-limit",
    },
    // SO_RCVBUF 1000: the kernel's window is 1152 and never closes, so the
    // segment is in order in its window and its ACK may wait.
    Audited {
        name: "window-of-the-target-not-zero",
        script: "matrix/established_zero_window.pkt",
        line: 23,
        class: Class::Allowed,
        level: None,
        documented: false,
        rule: "delayed-ack",
    },
    // The too-old ACK's challenge ACK is throttled (RFC 5961 7).
    Audited {
        name: "challenge-ack-throttled",
        script: "matrix/established_ack.pkt",
        line: 34,
        class: Class::Conforms,
        level: Some(Level::Should),
        documented: false,
        rule: "rate-limit",
    },
    // The ACK of FIN+data waits ~40 ms in pingpong mode: may be delayed.
    Audited {
        name: "delayed-ack-of-fin",
        script: "matrix/close_wait_abort.pkt",
        line: 19,
        class: Class::Allowed,
        level: None,
        documented: false,
        rule: "delayed-ack",
    },
    // SYN retransmissions at 1 s intervals: RFC 6298 5.5 MUST double.
    Audited {
        name: "linear-syn-backoff",
        script: "syn_rto_backoff.pkt",
        line: 13,
        class: Class::MustViolation,
        level: Some(Level::Must),
        documented: true,
        rule: "timer-model",
    },
    // Retransmission after ~300 ms: the 200 ms floor departs from the
    // 1 s minimum of RFC 6298 2.4 (SHOULD).
    Audited {
        name: "rto-floor-200ms",
        script: "data_retransmit.pkt",
        line: 18,
        class: Class::ShouldDeviation,
        level: Some(Level::Should),
        documented: true,
        rule: "timer-model",
    },
    // The SYN resent 2 jiffies after a bad ACK in SYN-SENT.
    Audited {
        name: "early-syn-after-bad-ack",
        script: "matrix/syn_sent.pkt",
        line: 21,
        class: Class::Deviation,
        level: Some(Level::None),
        documented: true,
        rule: "early-syn",
    },
    // The zero-window probe is a bare ACK with SEQ = SND.UNA - 1.
    Audited {
        name: "zero-window-probe-bare-ack",
        script: "zero_window_probe.pkt",
        line: 19,
        class: Class::Deviation,
        level: Some(Level::None),
        documented: true,
        rule: "zero-window-probe",
    },
    // A FIN on the SYN-ACK is ignored: the ACK covers only the SYN.
    Audited {
        name: "fin-on-syn-ack-ignored",
        script: "syn_ack_fin.pkt",
        line: 12,
        class: Class::Deviation,
        level: Some(Level::None),
        documented: true,
        rule: "response",
    },
    // A second FIN at RCV.NXT in CLOSE-WAIT is dropped without an ACK.
    Audited {
        name: "second-fin-dropped",
        script: "matrix/close_wait.pkt",
        line: 30,
        class: Class::Deviation,
        level: Some(Level::None),
        documented: true,
        rule: "response",
    },
    // close() with SO_LINGER {1, 0} cannot reach a connection the kernel
    // already moved to a TIME-WAIT socket: the FIN after it is ACKed.
    Audited {
        name: "abort-after-time-wait",
        script: "matrix/time_wait_abort.pkt",
        line: 23,
        class: Class::Deviation,
        level: Some(Level::None),
        documented: true,
        rule: "response",
    },
    // Karn: the RTO backed off by the first segment's timeout holds for
    // the next segment (no valid sample in between); 200 ms floor.
    Audited {
        name: "backed-off-rto-holds",
        script: "karn.pkt",
        line: 26,
        class: Class::ShouldDeviation,
        level: Some(Level::Should),
        documented: true,
        rule: "timer-model",
    },
];

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn fixture_path(name: &str) -> PathBuf {
    repo()
        .join("tests/fixtures/verdicts")
        .join(format!("{name}.json"))
}

/// A recorded case: the reference trace and the failure with its trace.
#[derive(serde::Serialize, serde::Deserialize)]
struct Fixture {
    script: String,
    kernel: String,
    reference: Trace,
    case: Recorded,
}

fn load(name: &str) -> Fixture {
    let p = fixture_path(name);
    let text = std::fs::read_to_string(&p).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (record it as root: cargo test -p tcp-harness --test verdict_fixtures -- --ignored record_fixtures)",
            p.display()
        )
    });
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// (class, level, documented) of the divergences classified with `rules`.
fn verdicts(f: &Fixture, rules: &[(&str, verdict::Rule)]) -> Vec<(Class, Option<Level>, bool)> {
    let spec = Spec::bundled().unwrap_or_else(|e| panic!("{e}"));
    let judge = Judge {
        spec,
        rfc: Profile::Rfc9293,
        script: &f.case.script,
        reference: &f.reference,
    };
    let case = Case {
        judge: &judge,
        target: "linux",
        profile: verdict::target_profile("linux", Profile::Rfc9293),
        failure: &f.case.failure,
        trace: &f.case.trace,
    };
    verdict::classify_with(&case, rules)
        .into_iter()
        .map(|d| (d.class, d.level, d.documented.is_some()))
        .collect()
}

#[test]
fn every_audited_divergence_gets_its_verdict_and_needs_its_rule() {
    let mut wrong = Vec::new();
    for a in CASES {
        assert!(
            RULES.iter().any(|(n, _)| *n == a.rule),
            "{}: no rule `{}`",
            a.name,
            a.rule
        );
        let f = load(a.name);
        let want = (a.class, a.level, a.documented);
        let got = verdicts(&f, RULES);
        if !got.contains(&want) {
            wrong.push(format!("{}: want {want:?}, got {got:?}", a.name));
            continue;
        }
        let without: Vec<_> = RULES
            .iter()
            .copied()
            .filter(|(n, _)| *n != a.rule)
            .collect();
        let after = verdicts(&f, &without);
        if after.contains(&want) {
            wrong.push(format!(
                "{}: still {want:?} without rule `{}`",
                a.name, a.rule
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn fixtures_name_the_failure_line_they_were_recorded_for() {
    for a in CASES {
        let f = load(a.name);
        assert_eq!(f.case.failure.line, a.line, "{}", a.name);
        assert_eq!(f.script, a.script, "{}", a.name);
    }
}

/// Records every fixture from live runs (root, /dev/net/tun).
#[test]
#[ignore = "records tests/fixtures/verdicts from the live kernel (root)"]
fn record_fixtures() {
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_default();
    let opts = DiffOptions::default();
    std::fs::create_dir_all(repo().join("tests/fixtures/verdicts"))
        .unwrap_or_else(|e| panic!("{e}"));
    for a in CASES {
        let path = repo().join("specs/scripts").join(a.script);
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{e}"));
        let shown = Path::new("specs/scripts").join(a.script);
        let (reference, cases) = diff::record(
            &shown.display().to_string(),
            &text,
            "linux",
            &opts,
            &mut suite::make_target,
        )
        .unwrap_or_else(|e| panic!("{}: {e}", a.name));
        let case = cases
            .into_iter()
            .find(|c| c.failure.line == a.line)
            .unwrap_or_else(|| panic!("{}: no failure at line {}", a.name, a.line));
        let f = Fixture {
            script: a.script.to_string(),
            kernel: kernel.clone(),
            reference,
            case,
        };
        let json = serde_json::to_string(&f).unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(fixture_path(a.name), json + "\n").unwrap_or_else(|e| panic!("{e}"));
    }
}
