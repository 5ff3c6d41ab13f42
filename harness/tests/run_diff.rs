//! `tcpconform diff` without a live target: the classifier on hand-made
//! departures of target `own` under another profile, the report's JSON
//! round trip, the Markdown rendering and the command line.

use std::process::Command;
use tcp_harness::run::diff::{self, Class, DiffOptions, ScriptDiff};
use tcp_harness::run::{suite, Target};
use tcp_harness::verdict::Kind;
use tcp_spec::Profile;

/// A second "target" that is the own stack under another profile, so the
/// classifier can be exercised without root.
fn make_with(other: Profile) -> impl FnMut(&str, Profile) -> Result<Box<dyn Target>, String> {
    move |name, profile| match name {
        "own" => suite::make_target("own", profile),
        _ => suite::make_target("own", other),
    }
}

fn opts() -> DiffOptions {
    DiffOptions {
        targets: vec!["own".into(), "linux".into()],
        profile: Profile::Rfc9293,
        max_timeline_us: None,
        ..DiffOptions::default()
    }
}

const DATA_RETRANSMIT: &str = include_str!("../../specs/scripts/data_retransmit.pkt");
const PASSIVE_OPEN: &str = include_str!("../../specs/scripts/passive_open.pkt");

#[test]
fn identical_targets_have_no_divergence() {
    let mut make = make_with(Profile::Rfc9293);
    let d = diff::diff_text("passive_open.pkt", PASSIVE_OPEN, &opts(), &mut make);
    assert_eq!(d.targets, vec!["own", "linux"]);
    assert!(d.divergences.is_empty(), "{}", d.text());
    assert!(d.text().contains("no divergence"));
    assert_eq!(d.worst(), None);
}

/// The own stack under the linux profile retransmits after the computed RTO
/// (≈0.3 s) instead of the 1 s minimum: the linux profile documents it
/// (`rto_min_ms`), and it departs from RFC 6298 2.4's SHOULD.
#[test]
fn early_retransmission_is_explained_by_rto_min() {
    let mut make = make_with(Profile::Linux);
    let d = diff::diff_text("data_retransmit.pkt", DATA_RETRANSMIT, &opts(), &mut make);
    let t = d
        .divergences
        .iter()
        .find(|x| x.kind == Kind::Timing)
        .unwrap_or_else(|| panic!("no timing divergence:\n{}", d.text()));
    assert_eq!(t.class, Class::ShouldDeviation, "{}", d.text());
    assert!(
        t.documented
            .as_deref()
            .is_some_and(|m| m.contains("TCP_RTO_MIN")),
        "{t:?}"
    );
    assert!(
        t.params
            .iter()
            .any(|p| p.starts_with("linux.rto_min_ms = 200")),
        "{t:?}"
    );
    assert!(!t.reason.contains("0.5"), "no raw times: {}", t.reason);
}

/// A window that differs on the SYN-ACK is the sender's choice; the line
/// is masked and the rest of the script still compared.
#[test]
fn syn_ack_window_is_an_allowed_variation_and_masked() {
    let text = PASSIVE_OPEN.replace("> S. 0:0(0) ack 1 win 65535", "> S. 0:0(0) ack 1 win 1000");
    assert_ne!(text, PASSIVE_OPEN);
    let mut make = make_with(Profile::Rfc9293);
    let d = diff::diff_text("p.pkt", &text, &opts(), &mut make);
    let w = &d.divergences[0];
    assert_eq!(
        (w.kind, w.class),
        (Kind::Window, Class::Allowed),
        "{}",
        d.text()
    );
    assert!(w.rfc.iter().any(|r| r == "RFC9293 3.7.1"));
    assert!(
        d.outcomes.iter().any(|o| o == "linux: passed"),
        "{}",
        d.text()
    );
}

/// The script expects a RST where the active row answers SYN,ACK: the
/// target did what its row says, which is "conforms" (the script is off).
#[test]
fn answer_the_active_row_predicts_conforms() {
    let text = PASSIVE_OPEN.replace("> S. 0:0(0) ack 1", "> R. 0:0(0) ack 1");
    let mut make = make_with(Profile::Rfc9293);
    let d = diff::diff_text("p.pkt", &text, &opts(), &mut make);
    let v = d
        .divergences
        .iter()
        .find(|x| x.target == "linux")
        .unwrap_or_else(|| panic!("{}", d.text()));
    assert_eq!(v.class, Class::Conforms, "{v:?}");
    assert_eq!(v.rows, vec!["LISTEN.SYN"]);
}

#[test]
fn reports_round_trip_through_snapshots_and_render_markdown() {
    let mut make = make_with(Profile::Linux);
    let d = diff::diff_text("data_retransmit.pkt", DATA_RETRANSMIT, &opts(), &mut make);
    let snap = format!("---\nsource: x\n---\n{}\n", d.snapshot());
    let back = ScriptDiff::from_snapshot(&snap).unwrap_or_else(|e| panic!("{e}"));
    // What was measured stays out of snapshots; the rest round-trips.
    assert_eq!(back.snapshot(), d.snapshot());
    assert!(back.divergences.iter().all(|x| x.measured.is_none()));
    let md = diff::markdown(&[back], "linux");
    assert!(md.contains("rto_min_ms"), "{md}");
    assert!(md.contains("+1    > P. 1:1001(1000) ack 1"), "{md}");
    assert!(ScriptDiff::from_snapshot("not json").is_err());
}

#[test]
fn long_scripts_are_skipped_on_other_targets() {
    let mut make = make_with(Profile::Rfc9293);
    let o = DiffOptions {
        max_timeline_us: Some(1),
        ..opts()
    };
    let d = diff::diff_text("p.pkt", PASSIVE_OPEN, &o, &mut make);
    assert_eq!(d.targets, vec!["own"]);
    assert!(
        d.skipped[0].starts_with("linux: timeline"),
        "{:?}",
        d.skipped
    );
}

fn tcpconform(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_tcpconform"))
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run tcpconform: {e}"))
}

#[test]
fn cli_rejects_bad_targets_and_missing_paths() {
    let out = tcpconform(&["diff", "--targets", "own,nope", "x.pkt"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown target `nope`"));
    let out = tcpconform(&["diff", "--targets", "own", "x.pkt"]);
    assert_eq!(out.status.code(), Some(2));
    let out = tcpconform(&["diff"]);
    assert_eq!(out.status.code(), Some(2));
    let out = tcpconform(&["diff", "--help"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("markdown"));
}

/// The script expects the ACK of a segment to ride on the reply; the stack
/// sends it at once when the read reopens the window, where the call's row
/// (OPEN.RECEIVE) emits nothing. It conforms: the ACK may be delayed but
/// need not be, and its number is where the peer's data ended.
#[test]
fn an_ack_sent_at_once_for_received_data_conforms() {
    let text = "\
--tolerance_usecs=4000
0     socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
+0    setsockopt(3, SOL_SOCKET, SO_REUSEADDR, [1], 4) = 0
+0    bind(3, ..., ...) = 0
+0    listen(3, 1) = 0
+0    < S 0:0(0) win 65535 <mss 1460>
+0    > S. 0:0(0) ack 1 <...>
+.1   < . 1:1(0) ack 1 win 65535
+0    accept(3, ..., ...) = 4
+.1   < . 1:1461(1460) ack 1 win 65535
+0    read(4, ..., 1460) = 1460
+0    write(4, ..., 10) = 10
+0    > P. 1:11(10) ack 1461
";
    let mut make = make_with(Profile::Rfc9293);
    let d = diff::diff_text("ack_at_once.pkt", text, &opts(), &mut make);
    let a = d
        .divergences
        .iter()
        .find(|x| x.target == "linux" && x.kind == Kind::Extra)
        .unwrap_or_else(|| panic!("no extra packet:\n{}", d.text()));
    assert_eq!(a.class, Class::Conforms, "{}", d.text());
    assert!(a.reason.contains("sent at once"), "{a:?}");
    assert!(a.rfc.iter().any(|r| r == "RFC1122 4.2.3.2"), "{a:?}");
}

/// A packet 6 ms before its scripted time misses the 4 ms tolerance but
/// not twice it: a timing miss the harness cannot blame on the target.
#[test]
fn a_miss_within_twice_the_tolerance_is_inconclusive() {
    let text = PASSIVE_OPEN.replace("+0    > S. 0:0(0) ack 1", "+.006 > S. 0:0(0) ack 1");
    assert_ne!(text, PASSIVE_OPEN);
    let mut make = make_with(Profile::Rfc9293);
    let d = diff::diff_text("p.pkt", &text, &opts(), &mut make);
    let t = d
        .divergences
        .iter()
        .find(|x| x.target == "linux")
        .unwrap_or_else(|| panic!("{}", d.text()));
    assert_eq!(
        (t.kind, t.class),
        (Kind::Timing, Class::Inconclusive),
        "{}",
        d.text()
    );
    // Twice the tolerance and more is not a timing miss.
    let far = PASSIVE_OPEN.replace("+0    > S. 0:0(0) ack 1", "+.02  > S. 0:0(0) ack 1");
    let d = diff::diff_text("p.pkt", &far, &opts(), &mut make);
    assert!(
        d.divergences.iter().all(|x| x.class != Class::Inconclusive),
        "{}",
        d.text()
    );
}

/// packetdrill's relative tolerance: 10 % of the 1.05 s gap before a
/// retransmission is 105 ms, so the RTO firing at 1 s is in time with
/// --tolerance_percent=10, and 50 ms early (a departure) without it.
#[test]
fn the_relative_tolerance_widens_the_window_by_a_share_of_the_gap() {
    let text = DATA_RETRANSMIT.replacen(
        "+1    > P. 1:1001(1000) ack 1",
        "+1.05 > P. 1:1001(1000) ack 1",
        1,
    );
    assert_ne!(text, DATA_RETRANSMIT);
    let mut make = make_with(Profile::Rfc9293);
    let strict = diff::diff_text("p.pkt", &text, &opts(), &mut make);
    assert!(!strict.divergences.is_empty(), "{}", strict.text());
    let o = DiffOptions {
        run: tcp_harness::run::RunOptions {
            tolerance_percent: Some(10),
            ..Default::default()
        },
        ..opts()
    };
    let relaxed = diff::diff_text("p.pkt", &text, &o, &mut make);
    assert!(relaxed.divergences.is_empty(), "{}", relaxed.text());
}

/// A script that does not parse (or read) is a usage error: exit 2 with
/// the location, not a clean exit 0 with nothing compared.
#[test]
fn cli_exits_2_on_a_script_that_does_not_parse() {
    let dir = std::env::temp_dir().join(format!("tcpconform-diff-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
    let bad = dir.join("bad.pkt");
    std::fs::write(&bad, "garbage line\n").unwrap_or_else(|e| panic!("{e}"));
    let shown = bad.display().to_string();
    let out = tcpconform(&["diff", "--targets", "own,linux", "--", &shown]);
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("bad.pkt:1:1"),
        "{out:?}"
    );
}
