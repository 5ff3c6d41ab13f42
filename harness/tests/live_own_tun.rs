//! Target `own-tun` end to end: conformance scripts played against the own
//! stack behind `tun1`, in real time, with every packet crossing the kernel
//! of a namespace the harness creates (docs/architecture.md, "Scripts and the runner").
//!
//! The design requires `own` and `own-tun` never to diverge beyond timing:
//! every script here must pass on both, and the two runs must show the same
//! packets (ISN-relative script text), the same socket-call results and the
//! same table rows, in the same order. These are focused cases with the
//! namespace's life checked around each; `tests/live.rs` holds the whole
//! suite to the same rule.
//!
//! Needs root (or CAP_NET_ADMIN + CAP_SYS_ADMIN), /dev/net/tun and iproute2;
//! otherwise every test prints `skipped: <reason>` and passes. Live tests run
//! one at a time (a common lock), and each checks that no namespace of this
//! process is left behind.

use std::path::PathBuf;

use tcp_harness::live;
use tcp_harness::run::own_tun::OwnTunTarget;
use tcp_harness::run::suite::make_target;
use tcp_harness::run::{run_text, OwnTarget, RunOptions};
use tcp_spec::Profile;

fn script(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../specs/scripts")
        .join(format!("{name}.pkt"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Runs `name` on `own` and on a fresh `own-tun`; both must pass, with the
/// same behaviour, and the namespace must be gone afterwards.
fn same_as_own(name: &str) {
    let text = script(name);
    let label = format!("{name}.pkt");
    let opts = RunOptions::default();

    let mut own = OwnTarget::new(Profile::Rfc9293);
    let on_own = run_text(&label, &text, &mut own, &opts);

    let mut tun = OwnTunTarget::new(Profile::Rfc9293).unwrap_or_else(|e| panic!("own-tun: {e}"));
    let ns = tun.netns_name().to_string();
    assert!(live::list_namespaces().unwrap().contains(&ns));
    let on_tun = run_text(&label, &text, &mut tun, &opts);
    println!(
        "--- {label}: own {} ({:.3} s virtual), own-tun {} ({:.0} ms wall)\n{}{}",
        on_own.outcome,
        on_own.end_time as f64 / 1e6,
        on_tun.outcome,
        on_tun.wall.as_secs_f64() * 1e3,
        on_tun.details(),
        on_tun.trace.ladder()
    );
    assert_eq!(tun.ignored_packets(), 0, "only TCP came out of tun0");
    drop(tun);
    assert!(
        !live::list_namespaces().unwrap().contains(&ns),
        "namespace {ns} removed with the target"
    );
    live::testing::assert_no_namespace_of_ours();

    assert_eq!(
        on_own.outcome,
        tcp_harness::run::Outcome::Passed,
        "{}",
        on_own.details()
    );
    assert_eq!(on_tun.outcome, on_own.outcome, "{}", on_tun.details());
    assert_eq!(
        on_tun.trace.behaviour(),
        on_own.trace.behaviour(),
        "{label}"
    );
}

#[test]
fn passive_open() {
    let Some(_g) = live::testing::guard() else {
        return;
    };
    same_as_own("passive_open");
}

#[test]
fn active_open() {
    let Some(_g) = live::testing::guard() else {
        return;
    };
    same_as_own("active_open");
}

#[test]
fn rst_closed_port() {
    let Some(_g) = live::testing::guard() else {
        return;
    };
    same_as_own("rst_closed_port");
}

#[test]
fn passive_close() {
    let Some(_g) = live::testing::guard() else {
        return;
    };
    same_as_own("passive_close");
}

#[test]
fn challenge_ack_rst() {
    let Some(_g) = live::testing::guard() else {
        return;
    };
    same_as_own("challenge_ack_rst");
}

#[test]
fn out_of_order() {
    let Some(_g) = live::testing::guard() else {
        return;
    };
    same_as_own("out_of_order");
}

#[test]
fn make_target_knows_own_tun() {
    let Some(_g) = live::testing::guard() else {
        return;
    };
    let t = make_target("own-tun", Profile::Rfc9293).unwrap();
    assert_eq!(t.name(), "own-tun");
    assert!(!t.is_virtual());
    let (local, peer) = t.addresses();
    assert_eq!(
        local.to_string(),
        "192.0.2.1:8080",
        "the script's addresses"
    );
    assert_eq!(peer.to_string(), "192.0.2.2:40000");
    drop(t);
    live::testing::assert_no_namespace_of_ours();
}
