//! `tcpconform run` / `tcpconform check`: exit codes, failure reports,
//! strict mode, pcap output.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn tcpconform(args: &[&str]) -> Output {
    match Command::new(env!("CARGO_BIN_EXE_tcpconform"))
        .args(args)
        .output()
    {
        Ok(o) => o,
        Err(e) => panic!("cannot run tcpconform: {e}"),
    }
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn suite_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../specs/scripts")
}

/// A fresh directory for this test's files.
fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("tcpconform-run-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    if let Err(e) = std::fs::create_dir_all(&d) {
        panic!("{}: {e}", d.display());
    }
    d
}

fn write(dir: &Path, name: &str, body: &str) -> String {
    let p = dir.join(name);
    if let Err(e) = std::fs::write(&p, body) {
        panic!("{}: {e}", p.display());
    }
    p.display().to_string()
}

const HANDSHAKE: &str = "\
0     socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
+0    bind(3, ..., ...) = 0
+0    listen(3, 1) = 0
+0    < S 0:0(0) win 65535 <mss 1460>
+0    > S. 0:0(0) ack 1 <...>
+.1   < . 1:1(0) ack 1 win 65535
+0    accept(3, ..., ...) = 4
";

#[test]
fn passing_script_exits_0_with_a_summary() {
    let p = suite_dir().join("passive_open.pkt");
    let out = tcpconform(&["run", "--target", "own", &p.display().to_string()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        text(&out).contains("1 passed, 0 failed, 0 errors"),
        "{}",
        text(&out)
    );
}

#[test]
fn wrong_expectation_exits_1_with_expected_actual_and_location() {
    let d = scratch("wrong");
    let body = format!("{HANDSHAKE}+.1   < F. 1:1(0) ack 1 win 65535\n+0    > . 1:1(0) ack 7\n");
    let p = write(&d, "wrong_ack.pkt", &body);
    let out = tcpconform(&["run", &p]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(
        t.contains(&format!(
            "{p}:9:1: outbound packet differs: ack 2 != expected 7"
        )),
        "{t}"
    );
    assert!(t.contains("expected: > . 1:1(0) ack 7"), "{t}");
    assert!(t.contains("actual:   > . 1:1(0) ack 2 win 65535"), "{t}");
    assert!(t.contains("CLOSE-WAIT via EST.FIN"), "ladder so far: {t}");
}

#[test]
fn malformed_script_exits_2_with_path_line_col() {
    let d = scratch("malformed");
    let p = write(
        &d,
        "bad.pkt",
        "0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n+0 < S 0:0(0) win 65535 <mss>\n",
    );
    let out = tcpconform(&["run", &p]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(2), "{t}");
    assert!(t.contains(&format!("{p}:2:")), "{t}");
}

/// A call the runner cannot make leaves the script not applicable, located
/// (issue 10: never an error, never skipped silently); exit 0.
#[test]
fn unsupported_call_is_located_not_applicable() {
    let d = scratch("unsupported");
    let p = write(
        &d,
        "sendmsg.pkt",
        "0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n+0 sendmsg(3, {msg_name(...)=..., \
         msg_iov(1)=[{..., 1}], msg_flags=0, msg_control=[{cmsg_level=SOL_SOCKET, \
         cmsg_type=SCM_TIMESTAMPING, cmsg_data=0}]}, 0) = 1\n",
    );
    let out = tcpconform(&["run", &p]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(0), "{t}");
    assert!(
        t.contains(&format!(
            "{p}:2:1: not applicable on own: sendmsg: control messages are not supported"
        )),
        "{t}"
    );
    // A message that is not packetdrill's struct msghdr is bad input, as
    // for packetdrill: a located error.
    let p = write(
        &d,
        "bad.pkt",
        "0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n+0 sendmsg(3, ..., 0) = 0\n",
    );
    let out = tcpconform(&["run", &p]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(2), "{t}");
    assert!(
        t.contains(&format!("{p}:2:1: sendmsg: the message must be")),
        "{t}"
    );
}

#[test]
fn usage_errors_exit_2() {
    assert_eq!(tcpconform(&["run"]).status.code(), Some(2));
    let p = suite_dir().join("passive_open.pkt").display().to_string();
    let out = tcpconform(&["run", "--target", "nope", &p]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("unknown target"), "{}", text(&out));
    let out = tcpconform(&["run", "/nonexistent/dir"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
}

#[test]
fn strict_mode_catches_an_unexpected_packet() {
    let d = scratch("strict");
    // The ACK of the peer's FIN is not scripted.
    let body = format!("{HANDSHAKE}+.1   < F. 1:1(0) ack 1 win 65535\n");
    let p = write(&d, "extra.pkt", &body);
    let out = tcpconform(&["run", &p]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(t.contains("unexpected outbound packet at 0.200000"), "{t}");
    assert!(t.contains("actual:   > . 1:1(0) ack 2"), "{t}");
    // Without strict mode it is a warning.
    let out = tcpconform(&["run", "--no-strict", &p]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(0), "{t}");
    assert!(t.contains("warning: unexpected outbound packet"), "{t}");
}

#[test]
fn strict_mode_catches_a_pure_ack_before_a_data_segment() {
    let d = scratch("strict-mid");
    // The delayed ACK of the peer's data (0.2 s later) precedes the write's
    // data segment; the script only expects the data segment.
    let body = format!(
        "{HANDSHAKE}+.1   < P. 1:101(100) ack 1 win 65535\n+.6   write(4, ..., 10) = 10\n+0    > P. 1:11(10) ack 101\n"
    );
    let p = write(&d, "ack_first.pkt", &body);
    let out = tcpconform(&["run", &p]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(
        t.contains(&format!("{p}:9:1: unexpected outbound packet at 0.400000")),
        "{t}"
    );
    assert!(t.contains("actual:   > . 1:1(0) ack 101"), "{t}");
}

#[test]
fn rto_backoff_script_runs_on_the_virtual_clock() {
    let p = suite_dir()
        .join("syn_rto_backoff.pkt")
        .display()
        .to_string();
    let out = tcpconform(&["run", "--format", "json", &p]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let v: serde_json::Value = match serde_json::from_slice(&out.stdout) {
        Ok(v) => v,
        Err(e) => panic!("not JSON: {e}: {}", text(&out)),
    };
    assert_eq!(v["passed"], 1);
    // Virtual time covers the three backoffs.
    assert!(v["scripts"][0]["end_time_us"].as_u64().unwrap_or(0) >= 7_000_000);
    let rows: Vec<&str> = v["scripts"][0]["rows"]
        .as_array()
        .map(|a| a.iter().filter_map(|r| r.as_str()).collect())
        .unwrap_or_default();
    assert_eq!(
        rows.iter().filter(|r| **r == "SS.RTO").count(),
        3,
        "{rows:?}"
    );
}

#[test]
fn pcap_is_written_and_readable() {
    let d = scratch("pcap");
    let p = suite_dir().join("passive_close.pkt").display().to_string();
    let out = tcpconform(&["run", "--pcap", &d.display().to_string(), &p]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let f = match std::fs::File::open(d.join("passive_close.pcap")) {
        Ok(f) => f,
        Err(e) => panic!("no pcap: {e}"),
    };
    let packets = match tcp_harness::pcap::read(f) {
        Ok(p) => p,
        Err(e) => panic!("unreadable pcap: {e}"),
    };
    // SYN, SYN-ACK, ACK, FIN, ACK, FIN, ACK.
    assert_eq!(packets.len(), 7);
    for (_, bytes) in &packets {
        assert_eq!(bytes.first().map(|b| b >> 4), Some(4), "IPv4 packets");
    }
}

#[test]
fn check_runs_the_bundled_suite() {
    let out = tcpconform(&["check", "--no-live"]);
    let t = text(&out);
    // Every script of the bundled suite passes on `own`.
    let failed: Vec<&str> = t
        .lines()
        .filter(|l| l.contains("  own  ") && l.contains("FAILED"))
        .collect();
    assert!(failed.is_empty(), "{t}");
    assert_eq!(out.status.code(), Some(0), "{t}");
    assert!(t.contains(" 0 errors"), "{t}");
    assert!(t.contains("conformance suite"), "{t}");
    // smoltcp ran beside own; its departures are findings, not failures.
    assert!(t.contains("smoltcp: distinct divergences over"), "{t}");
    assert!(t.contains("MUST-violation"), "{t}");
    // The coverage summary comes last.
    let last = t.lines().last().unwrap_or("");
    assert!(
        last.starts_with("coverage: ") && last.contains("rows covered"),
        "{t}"
    );
}

/// Where live targets can run, `check` adds `own-tun` (which must pass like
/// `own`) and a classified `linux` summary; elsewhere it says why not.
#[test]
fn check_adds_the_live_targets_where_they_can_run() {
    let dir = scratch("check-live");
    for name in ["passive_open.pkt", "data_retransmit.pkt"] {
        if let Err(e) = std::fs::copy(suite_dir().join(name), dir.join(name)) {
            panic!("{name}: {e}");
        }
    }
    let out = tcpconform(&["check", "--suite", &dir.to_string_lossy()]);
    let t = text(&out);
    let _ = std::fs::remove_dir_all(&dir);
    if let Err(why) = tcp_harness::live::available() {
        assert!(t.contains("live targets (own-tun, linux) skipped: "), "{t}");
        println!("skipped the live part: {why}");
        assert_eq!(out.status.code(), Some(0), "{t}");
        return;
    }
    let on = |target: &str| {
        t.lines()
            .filter(|l| l.contains(&format!("  {target} ")) && l.contains("pkt"))
            .count()
    };
    assert_eq!((on("own"), on("own-tun")), (2, 2), "{t}");
    assert!(t.contains("on own, smoltcp, own-tun, linux"), "{t}");
    // smoltcp runs beside own without privileges, its divergences tallied.
    let smol = t.lines().find(|l| l.starts_with("smoltcp: ")).unwrap_or("");
    assert!(smol.contains("over 2 scripts"), "{t}");
    // data_retransmit.pkt scripts a 1 s RTO; Linux retransmits after its
    // 200 ms minimum: at least that divergence, classified as allowed.
    let summary = t.lines().find(|l| l.starts_with("linux: ")).unwrap_or("");
    assert!(summary.contains("over 2 scripts"), "{t}");
    assert!(!summary.contains(" 0 allowed variations"), "{t}");
    assert_eq!(out.status.code(), Some(0), "{t}");
}

#[test]
fn check_prints_paths_relative_to_the_current_directory() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let out = match Command::new(env!("CARGO_BIN_EXE_tcpconform"))
        .args(["check", "--no-live"])
        .current_dir(&root)
        .output()
    {
        Ok(o) => o,
        Err(e) => panic!("cannot run tcpconform: {e}"),
    };
    let t = text(&out);
    assert!(t.contains("\nspecs/scripts/passive_open.pkt "), "{t}");
    assert!(!t.contains("/../"), "{t}");
}

#[test]
fn spec_still_works() {
    let out = tcpconform(&["spec"]);
    assert_eq!(out.status.code(), Some(0));
}

/// `run --format tap`: TAP version 13, `not ok` with the located reason as YAML
/// for a failure, `# SKIP` for not applicable; the exit code as without it.
#[test]
fn tap_output() {
    let d = scratch("tap");
    let bad = write(
        &d,
        "bad.pkt",
        "0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n+0 close(3) = -1 EBADF\n",
    );
    let na = write(
        &d,
        "na.pkt",
        "0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n+0 epoll_create(1) = 4\n",
    );
    let out = tcpconform(&["run", "--format", "tap", &bad, &na]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    let lines: Vec<&str> = t.lines().collect();
    assert_eq!(
        &lines[..3],
        &["TAP version 13", "1..2", &format!("not ok 1 - {bad} [own]")],
        "{t}"
    );
    assert!(
        lines[4].starts_with(&format!("  message: \"{bad}:2:")),
        "{t}"
    );
    assert!(
        t.contains(&format!("ok 2 - {na} [own] # SKIP not applicable")),
        "{t}"
    );
}
