//! "Not applicable" is one thing, whatever asks it: an IP version the
//! target lacks and a socket call it has no counterpart for both end the
//! run as [`Outcome::NotApplicable`] located at the line that asked, with
//! the target's reason (never a setup error, never a failure).

use tcp_harness::run::{run_text, Outcome, OwnTarget, RunOptions};
use tcp_spec::Profile;

fn not_applicable(text: &str) -> String {
    let mut t = OwnTarget::new(Profile::Rfc9293);
    let r = run_text("t.pkt", text, &mut t, &RunOptions::default());
    let Outcome::NotApplicable(why) = &r.outcome else {
        panic!("expected not applicable, got {}", r.outcome);
    };
    assert!(r.not_applicable() && !r.passed());
    why.clone()
}

#[test]
fn an_ip_version_the_target_lacks_is_not_applicable_at_its_option_line() {
    let why = not_applicable(
        "// mapped addresses\n--ip_version=ipv4-mapped-ipv6\n0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n",
    );
    assert!(
        why.starts_with("t.pkt:2:1: not applicable on own: "),
        "{why}"
    );
    assert!(why.contains("ipv4-mapped-ipv6 is not supported"), "{why}");
}

#[test]
fn a_kernel_only_socket_option_is_not_applicable_at_its_call_line() {
    let why = not_applicable(concat!(
        "0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n",
        "+0 setsockopt(3, SOL_SOCKET, SO_REUSEADDR, [1], 4) = 0\n",
        "+0 setsockopt(3, IPPROTO_TCP, TCP_CONGESTION, \"reno\", 4) = 0\n",
    ));
    assert!(why.starts_with("t.pkt:3:"), "{why}");
    assert!(why.contains("not applicable on own"), "{why}");
    assert!(why.contains("TCP_CONGESTION"), "{why}");
}
