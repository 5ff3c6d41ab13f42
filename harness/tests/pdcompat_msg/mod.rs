//! `sendmsg`/`recvmsg` with packetdrill's struct msghdr (issue 10), a part
//! of `live_pdcompat` (its helpers and its requirements): our own
//! fixtures (`tests/fixtures/pdcompat/msg_*.pkt`) run on `linux` and, where
//! the construct exists there, on `own`; each fails when its handling is
//! removed (the call becomes not applicable) and, with one expected value
//! changed, fails naming the field.

use super::{fixture, live_guard, not_applicable_at};
use tcp_harness::live;
use tcp_harness::run::linux::LinuxTarget;
use tcp_harness::run::own::OwnTarget;
use tcp_harness::run::runner::Mismatch;
use tcp_harness::run::suite::run_file;
use tcp_harness::run::{run_text, Outcome, RunOptions, RunReport};

fn text(name: &str) -> String {
    std::fs::read_to_string(fixture(name)).unwrap()
}

/// packetdrill's verdicts, as the corpus is run.
fn pd() -> RunOptions {
    RunOptions {
        packetdrill: true,
        ..RunOptions::default()
    }
}

/// Runs `name` on a fresh `linux` target, up to three times while the
/// outcome is a timing miss (a loaded machine), as the CLI retries.
fn on_linux_text(name: &str, script: &str, opts: &RunOptions) -> RunReport {
    let mut last = None;
    for _ in 0..3 {
        let mut t = LinuxTarget::new().unwrap_or_else(|e| panic!("linux target: {e}"));
        let r = run_text(name, script, &mut t, opts);
        drop(t);
        println!("--- {name} on linux: {}\n{}", r.outcome, r.details());
        let timing = matches!(&r.outcome, Outcome::Failed(f)
            if !matches!(f.mismatch, Mismatch::CallResult { .. }));
        last = Some(r);
        if !timing {
            break;
        }
    }
    live::testing::assert_no_namespace_of_ours();
    last.unwrap()
}

fn on_own_text(name: &str, script: &str) -> RunReport {
    let mut t = OwnTarget::new(tcp_spec::Profile::Rfc9293);
    let r = run_text(name, script, &mut t, &RunOptions::default());
    println!("--- {name} on own: {}\n{}", r.outcome, r.details());
    r
}

/// The run failed at `line` on a returned value, the message naming `field`.
fn fails_on(r: &RunReport, line: usize, field: &str) {
    match &r.outcome {
        Outcome::Failed(f) => {
            assert!(
                matches!(f.mismatch, Mismatch::CallResult { .. }),
                "{}",
                f.message
            );
            assert_eq!(f.line, line, "{}", f.message);
            assert!(f.message.contains(field), "{}", f.message);
        }
        o => panic!("expected a failure at line {line} on {field}, got {o}"),
    }
}

#[test]
fn plain_sendmsg_and_recvmsg_run_everywhere() {
    let t = text("msg_iov.pkt");
    let r = on_own_text("msg_iov.pkt", &t);
    assert!(r.passed(), "{}", r.outcome);
    // An iovec total other than the call's answer fails where it is read.
    let bad = t.replace("{..., 100}, {..., 1000}", "{..., 100}, {..., 200}");
    fails_on(&on_own_text("msg_iov.pkt", &bad), 16, "returned 300");
    // Flags are for kernels only: not applicable, at the line.
    let peek = t.replace("msg_flags=0}, 0) = 400", "msg_flags=0}, MSG_PEEK) = 400");
    not_applicable_at(
        &on_own_text("msg_iov.pkt", &peek),
        16,
        "no recvmsg with flags",
    );
    let Some(_g) = live_guard() else { return };
    let r = on_linux_text("msg_iov.pkt", &t, &RunOptions::default());
    assert!(r.passed(), "{}", r.outcome);
    // The same peek on the kernel reads without consuming.
    let r = on_linux_text("msg_iov.pkt", &peek, &pd());
    assert!(r.passed(), "{}", r.outcome);
}

#[test]
fn msg_more_corks_on_linux_only() {
    let t = text("msg_more.pkt");
    not_applicable_at(&on_own_text("msg_more.pkt", &t), 13, "MSG_MORE");
    let Some(_g) = live_guard() else { return };
    let r = on_linux_text("msg_more.pkt", &t, &RunOptions::default());
    assert!(r.passed(), "{}", r.outcome);
    // Without MSG_MORE the first 100 octets leave at once: the script's
    // single 150-octet segment is not what the kernel sends.
    let uncorked = t.replace("}, MSG_MORE)", "}, 0)");
    assert_ne!(uncorked, t);
    let r = on_linux_text("msg_more.pkt", &uncorked, &RunOptions::default());
    assert!(matches!(r.outcome, Outcome::Failed(_)), "{}", r.outcome);
}

#[test]
fn zerocopy_completions_come_from_the_error_queue() {
    let Some(_g) = live_guard() else { return };
    let t = text("msg_zerocopy.pkt");
    let r = on_linux_text("msg_zerocopy.pkt", &t, &pd());
    assert!(r.passed(), "{}", r.outcome);
    let bad = t.replace("ee_info=0, ee_data=1", "ee_info=0, ee_data=2");
    fails_on(
        &on_linux_text("msg_zerocopy.pkt", &bad, &pd()),
        22,
        "ee_data=2",
    );
    let bad = t.replacen(
        "msg_flags=MSG_ERRQUEUE,\n",
        "msg_flags=MSG_ERRQUEUE|MSG_TRUNC,\n",
        1,
    );
    fails_on(
        &on_linux_text("msg_zerocopy.pkt", &bad, &pd()),
        22,
        "msg_flags",
    );
}

#[test]
fn zerocopy_iovec_entries_are_separate_fragments() {
    let Some(_g) = live_guard() else { return };
    // Contiguous entries would coalesce into one fragment: one 18-octet
    // segment where the script expects 17 and 1.
    let t = text("msg_zerocopy_frags.pkt");
    let r = on_linux_text("msg_zerocopy_frags.pkt", &t, &RunOptions::default());
    assert!(r.passed(), "{}", r.outcome);
}

#[test]
fn tcp_inq_reports_the_queue_left() {
    let Some(_g) = live_guard() else { return };
    let t = text("msg_inq.pkt");
    let r = on_linux_text("msg_inq.pkt", &t, &pd());
    assert!(r.passed(), "{}", r.outcome);
    let bad = t.replace("cmsg_data=1400", "cmsg_data=1399");
    fails_on(&on_linux_text("msg_inq.pkt", &bad, &pd()), 14, "data=1399");
    // No room for the control message the kernel has: truncated.
    let bad = t.replacen(
        ",\n               msg_control=[{cmsg_level=SOL_TCP, cmsg_type=TCP_CM_INQ, cmsg_data=0}]",
        ", msg_control=[]",
        1,
    );
    assert_ne!(bad, t);
    fails_on(
        &on_linux_text("msg_inq.pkt", &bad, &pd()),
        16,
        "msg_flags=MSG_CTRUNC",
    );
}

#[test]
fn tx_timestamps_are_compared_in_script_time() {
    let Some(_g) = live_guard() else { return };
    let t = text("msg_timestamping.pkt");
    let r = on_linux_text("msg_timestamping.pkt", &t, &pd());
    assert!(r.passed(), "{}", r.outcome);
    // 30 ms early: outside any tolerance.
    let bad = t.replace("scm_nsec=50000000", "scm_nsec=80000000");
    fails_on(
        &on_linux_text("msg_timestamping.pkt", &bad, &pd()),
        20,
        "timestamp 0.080000 s",
    );
    let bad = t.replace("ee_info=SCM_TSTAMP_ACK", "ee_info=SCM_TSTAMP_SND");
    fails_on(
        &on_linux_text("msg_timestamping.pkt", &bad, &pd()),
        20,
        "ee_info=0",
    );
}

#[test]
fn fixtures_run_from_their_files() {
    // The file path is what the CLI uses; the fixture runs as a file too.
    let r = run_file(
        &fixture("msg_iov.pkt"),
        &mut OwnTarget::new(tcp_spec::Profile::Rfc9293),
        &RunOptions::default(),
    );
    assert!(r.passed(), "{}", r.outcome);
}
