//! The runner never panics on a script: every bundled script with each
//! line removed, and arbitrary token soup, give an outcome (pass, fail or
//! located error), and each kind of malformed input gives its own located
//! error.

use proptest::prelude::*;
use std::path::Path;
use tcp_harness::run::{discover, run_text, Outcome, OwnTarget, RunOptions};
use tcp_spec::Profile;

/// The bundled suite and the parser's test scripts, with their names.
fn named_scripts() -> Vec<(String, String)> {
    let dirs = [
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../specs/scripts"),
        Path::new(env!("CARGO_MANIFEST_DIR")).join("src/script/testdata"),
    ];
    let files = match discover(&dirs) {
        Ok(f) => f,
        Err(e) => panic!("{e}"),
    };
    assert!(files.len() >= 40, "{} scripts", files.len());
    files
        .iter()
        .map(|f| match std::fs::read_to_string(f) {
            Ok(t) => (f.display().to_string(), t),
            Err(e) => panic!("{}: {e}", f.display()),
        })
        .collect()
}

fn scripts() -> Vec<String> {
    named_scripts().into_iter().map(|(_, t)| t).collect()
}

/// `x.pkt:LINE:COL: ` at the start of `e`, with LINE within `text` (or
/// the line after its last).
fn assert_located(e: &str, text: &str) {
    let rest = e
        .strip_prefix("x.pkt:")
        .unwrap_or_else(|| panic!("not located: {e}"));
    let mut parts = rest.splitn(3, ':');
    let line: usize = parts.next().and_then(|l| l.parse().ok()).unwrap_or(0);
    let col: usize = parts.next().and_then(|c| c.parse().ok()).unwrap_or(0);
    let lines = text.lines().count();
    assert!(
        (1..=lines + 1).contains(&line) && col >= 1,
        "{e} (script of {lines} lines)"
    );
}

fn run(text: &str) -> Outcome {
    let mut t = OwnTarget::new(Profile::Rfc9293);
    run_text("x.pkt", text, &mut t, &RunOptions::default()).outcome
}

#[test]
fn every_script_with_any_line_removed_gives_an_outcome() {
    for s in scripts() {
        let lines: Vec<&str> = s.lines().collect();
        for skip in 0..lines.len() {
            let text: Vec<&str> = lines
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != skip)
                .map(|(_, l)| *l)
                .collect();
            let text = text.join("\n");
            match run(&text) {
                Outcome::Error(e) => assert_located(&e, &text),
                Outcome::Failed(f) => assert!(
                    (1..=lines.len()).contains(&f.line),
                    "failure outside the script: {f:?}"
                ),
                Outcome::Passed | Outcome::NotApplicable(_) => {}
            }
        }
    }
}

/// Every profile runs every script to a verdict: the scripts are well
/// formed whatever the profile, so none is an error; under rfc9293 (the
/// suite's profile) each suite script passes or is not applicable (the
/// parser's test scripts are written for Linux).
#[test]
fn every_profile_runs_the_suite_to_a_verdict() {
    for (name, s) in named_scripts() {
        for p in Profile::ALL {
            let mut t = OwnTarget::new(p);
            let r = run_text(&name, &s, &mut t, &RunOptions::default());
            match &r.outcome {
                Outcome::Error(e) => panic!("{p}: {e}"),
                Outcome::Failed(_) if p == Profile::Rfc9293 && name.contains("specs/scripts") => {
                    panic!("{}", r.details())
                }
                _ => {}
            }
        }
    }
}

/// Each malformed input gives its own error at its line and column.
#[test]
fn malformed_inputs_give_their_located_errors() {
    let cases: &[(&str, &str)] = &[
        ("", "x.pkt:1:1: the script has no events"),
        ("// a comment only\n", "x.pkt:1:1: the script has no events"),
        (
            "0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n+0 accept(3) = 4\n",
            "x.pkt:2:1: accept: expected 3 arguments, found 1",
        ),
        (
            "0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n+0 accept4(3, ..., ...) = 4\n",
            "x.pkt:2:1: accept4: expected 4 arguments, found 3",
        ),
        (
            "0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n1 bind(3, ..., ...) = 0\n0.5 listen(3, 1) = 0\n",
            "x.pkt:3:1: absolute time 0.5 is before the previous event's time 1 s",
        ),
        (
            "0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n+0 bind(3, ..., ...\n",
            "x.pkt:3:1: expected `,` or `)`",
        ),
        (
            "0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n+0 < S 0:0(0) win 65535 <mss>\n",
            "x.pkt:2:",
        ),
    ];
    for (text, want) in cases {
        match run(text) {
            Outcome::Error(e) => assert!(e.starts_with(want), "{text:?}: {e}"),
            o => panic!("{text:?}: expected an error starting {want:?}, got {o}"),
        }
    }
}

const TOKENS: &[&str] = &[
    "0",
    "+0",
    "+.1",
    "+1000000",
    "*",
    "0~1",
    "+0...0.3",
    "<",
    ">",
    "S",
    "S.",
    ".",
    "F.",
    "R",
    "R.",
    "P.",
    "0:0(0)",
    "1:1(0)",
    "1:101(100)",
    "4294967295:0(1)",
    "ack 1",
    "ack 0",
    "win 0",
    "win 65535",
    "<mss 1460>",
    "<...>",
    "<nop,wscale 14>",
    "<sack 1:2>",
    "socket(..., SOCK_STREAM, IPPROTO_TCP) = 3",
    "bind(3, ..., ...) = 0",
    "listen(3, 0) = 0",
    "accept(3, ..., ...) = 4",
    "connect(3, ..., ...) = 0",
    "write(4, ..., 5000) = 5000",
    "read(4, ..., 10) = 10",
    "close(4) = 0",
    "close(3) = 0",
    "shutdown(4, SHUT_WR) = 0",
    "poll([{fd=4, events=POLLIN}], 1, 100) = 0",
    "fcntl(3, F_SETFL, O_NONBLOCK) = 0",
    "setsockopt(4, SOL_SOCKET, SO_LINGER, {l_onoff=1, l_linger=0}, 8) = 0",
    "`sysctl -q net.ipv4.tcp_rmem=1`",
    "\n",
    "\n",
    "\n",
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]
    #[test]
    fn token_soup_never_panics(idx in proptest::collection::vec(0..TOKENS.len(), 0..60)) {
        let text: Vec<&str> = idx.iter().map(|i| TOKENS[*i]).collect();
        let text = text.join(" ");
        match run(&text) {
            Outcome::Error(e) => assert_located(&e, &text),
            Outcome::Failed(f) => prop_assert!(f.line >= 1 && f.line <= text.lines().count()),
            Outcome::Passed | Outcome::NotApplicable(_) => {}
        }
    }
}
