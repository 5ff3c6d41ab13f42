//! *Every row*: for each row of each profile, proptest generates scenarios
//! (random ISNs, windows, MSS, buffer sizes) that drive a fresh own-stack
//! endpoint into one of the row's from-states, deliver a concrete event of
//! the row's class, and check the classification, the row id the stack
//! reports, the next state and the emitted segments against the row. A row
//! the stack cannot be driven to fails the test.

use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use tcp_harness::drive::exercise::{attempt, cases, Attempt};
use tcp_harness::drive::rig::Setup;
use tcp_spec::{Profile, Spec};

fn setups() -> impl Strategy<Value = (Setup, u64)> {
    (
        any::<u32>(),
        1024u16..=65535,
        536u16..=1460,
        prop_oneof![Just(4096usize), 1024usize..16384],
        any::<u8>(),
        any::<u64>(),
    )
        .prop_map(|(isn, wnd, mss, buf, secret, seed)| {
            let mut s = Setup::new(Profile::Rfc9293);
            s.peer_isn = isn;
            s.peer_wnd = wnd;
            s.peer_mss = mss;
            s.recv_buf = buf;
            s.secret = secret;
            (s, seed)
        })
}

fn every_row(profile: Profile) {
    let spec = match Spec::bundled() {
        Ok(s) => s,
        Err(e) => panic!("{e}"),
    };
    let mut failures = Vec::new();
    let mut exercised = 0;
    let rows: Vec<_> = spec.rows_of(profile).collect();
    for row in &rows {
        let all = cases(profile, row);
        let mut runner = TestRunner::new(Config {
            cases: 6,
            failure_persistence: None,
            ..Config::default()
        });
        let result = runner.run(&setups(), |(setup, seed)| {
            // Try the row's cases from a random starting point until one can
            // be set up; every failure to agree is a test failure.
            let start = (seed as usize) % all.len().max(1);
            let mut why = Vec::new();
            for i in 0..all.len() {
                let (state, event) = all[(start + i) % all.len()];
                match attempt(profile, state, event, setup.clone(), seed) {
                    Ok(Attempt::Agreed { .. }) => return Ok(()),
                    Ok(Attempt::Unreachable(w)) => why.push(format!("{state} × {event}: {w}")),
                    Err(msg) => return Err(TestCaseError::fail(msg)),
                }
            }
            Err(TestCaseError::fail(format!(
                "row `{}` cannot be driven: {}",
                row.id,
                why.into_iter().take(3).collect::<Vec<_>>().join("; ")
            )))
        });
        match result {
            Ok(()) => exercised += 1,
            Err(e) => failures.push(format!("{}: {e}", row.id)),
        }
    }
    eprintln!(
        "[{profile}] every row: {exercised} of {} rows exercised and agreed",
        rows.len()
    );
    assert!(
        failures.is_empty(),
        "{} rows failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn every_row_rfc9293() {
    every_row(Profile::Rfc9293);
}

#[test]
fn every_row_rfc793() {
    every_row(Profile::Rfc793);
}

#[test]
fn every_row_linux() {
    every_row(Profile::Linux);
}
