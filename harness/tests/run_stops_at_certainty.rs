//! A strict run stops waiting once its failure is certain: a packet no
//! line expects, queued before an injection, call or the end of the
//! script, fails at that event whatever else happens until it is due, so
//! the runner fails at the packet instead of sleeping out the gap (on a
//! real clock, `diff`'s masked re-runs on `linux` end seconds sooner).
//! The failure is the one of waiting: the same line, packet and message.
//! Checked on the virtual `own` target, where the clock is deterministic.

use tcp_harness::run::{run_text, Failure, Outcome, OwnTarget, RunOptions, RunReport};
use tcp_spec::Profile;

/// An active open whose SYN is never answered, then a SYN-ACK injected
/// at `inject_at` s: the stack retransmits the SYN at 1 s (RFC 6298 2.1:
/// initial RTO of 1 s), which no line expects.
fn script(inject_at: &str) -> String {
    format!(
        "--tolerance_usecs=4000\n\
         0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n\
         +0 fcntl(3, F_SETFL, O_RDWR|O_NONBLOCK) = 0\n\
         +0 connect(3, ..., ...) = -1 EINPROGRESS (Operation now in progress)\n\
         0 > S 0:0(0) <...>\n\
         {inject_at} < S. 0:0(0) ack 1 win 65535 <mss 1460>\n"
    )
}

fn run(text: &str, strict: bool) -> RunReport {
    let opts = RunOptions {
        strict,
        ..RunOptions::default()
    };
    run_text(
        "early.pkt",
        text,
        &mut OwnTarget::new(Profile::Rfc9293),
        &opts,
    )
}

fn failure(r: &RunReport) -> &Failure {
    match &r.outcome {
        Outcome::Failed(f) => f,
        other => panic!("expected a failure, got {other:?}"),
    }
}

fn sent(r: &RunReport) -> usize {
    r.trace
        .entries
        .iter()
        .filter(|e| matches!(e.kind, tcp_harness::run::trace::TraceKind::PacketOut { .. }))
        .count()
}

#[test]
fn the_run_fails_at_the_unexpected_packet_with_the_failure_of_waiting() {
    // The retransmission at 1 s fails the injection's line (6), whether the
    // injection is due at 2.5 s or at 6.5 s.
    let near = run(&script("2.5"), true);
    let far = run(&script("6.5"), true);
    let (fa, fb) = (failure(&near), failure(&far));
    assert_eq!(fa.line, 6, "{fa:?}");
    assert_eq!(
        (fa.line, &fa.message, &fa.actual),
        (fb.line, &fb.message, &fb.actual)
    );
    assert!(
        fa.message.contains("unexpected outbound packet at 1.0"),
        "{fa:?}"
    );
    // Waiting out the gap to 6.5 s would have seen the next retransmission
    // (at 3 s): the run stopped at the first one instead.
    assert_eq!(sent(&far), 2, "the SYN and its first retransmission only");
    assert!(far.end_time < 2_000_000, "ended at {} µs", far.end_time);
}

#[test]
fn without_strict_mode_the_run_still_waits_and_warns() {
    let r = run(&script("6.5"), false);
    assert!(
        r.end_time >= 6_500_000,
        "ran to the injection: {}",
        r.end_time
    );
    let unexpected = r
        .warnings
        .iter()
        .filter(|w| w.contains("unexpected outbound packet"))
        .count();
    assert!(unexpected >= 2, "{:?}", r.warnings);
}

/// `specs/long/syn_give_up.pkt` leaves the SYN retransmissions of its
/// blocking connect unscripted: it passes without strict mode (as the
/// long tier runs it), and in strict mode fails at the first SYN, sent
/// during the last line's call — said to be before that line ended, not
/// after it.
#[test]
fn a_packet_during_the_last_blocking_call_is_before_the_end() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../specs/long/syn_give_up.pkt");
    let text = std::fs::read_to_string(path).expect("the long tier's script");
    assert!(matches!(run(&text, false).outcome, Outcome::Passed));
    let strict = run(&text, true);
    let f = failure(&strict);
    assert_eq!(f.line, 11, "{f:?}");
    assert!(
        f.message
            .contains("unexpected outbound packet at 0.000000: the script expects none before the last line (line 11) ended"),
        "{}",
        f.message
    );
}
