//! The runner never panics on a script: every bundled script with each
//! line removed, and arbitrary token soup, give an outcome (pass, fail or
//! located error).

use proptest::prelude::*;
use std::path::Path;
use tcp_harness::run::{discover, run_text, Outcome, OwnTarget, RunOptions};
use tcp_spec::Profile;

fn scripts() -> Vec<String> {
    let dirs = [
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../specs/scripts"),
        Path::new(env!("CARGO_MANIFEST_DIR")).join("src/script/testdata"),
    ];
    let files = match discover(&dirs) {
        Ok(f) => f,
        Err(e) => panic!("{e}"),
    };
    files
        .iter()
        .filter_map(|f| std::fs::read_to_string(f).ok())
        .collect()
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
            let o = run(&text.join("\n"));
            if let Outcome::Error(e) = &o {
                assert!(e.starts_with("x.pkt:"), "{e}");
            }
        }
    }
}

#[test]
fn every_profile_runs_the_suite_without_panicking() {
    for s in scripts() {
        for p in Profile::ALL {
            let mut t = OwnTarget::new(p);
            let _ = run_text("x.pkt", &s, &mut t, &RunOptions::default());
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
        let _ = run(&text.join(" "));
    }
}
