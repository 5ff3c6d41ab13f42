//! What an embedder gets from `Config::new` without setting anything:
//! ISNs no other process can predict (RFC 6528 §3: a secret key per
//! process, drawn from the operating system) and no observer log that
//! grows while nobody drains it.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use tcp_stack::packet::parse;
use tcp_stack::{Config, Endpoint, Handle, Instant};

mod common;
use common::pump;

const A: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
const B: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2));

/// The ISN of the SYN a fresh default endpoint sends from A:40000 to
/// B:80 at `now`.
fn first_isn(now: Instant) -> u32 {
    let mut ep = Endpoint::new(Config::new(vec![A])).expect("endpoint");
    ep.connect(now, SocketAddr::new(A, 40000), SocketAddr::new(B, 80))
        .expect("connect");
    let syn = ep.poll_transmit(now).expect("a SYN");
    parse(&syn, |_| true).expect("parsable").seq.0
}

#[test]
fn two_default_configs_give_different_isns() {
    // Two `Config::new` stand for two processes: the same 4-tuple at the
    // same clock reading, so only the secret can tell them apart.
    let now = Instant::from_millis(1000);
    let isns: Vec<u32> = (0..4).map(|_| first_isn(now)).collect();
    // Four 32-bit values from independent secrets: a repeat is a 1 in
    // 2^30 event, an all-zero (or any fixed) default a certainty.
    for (i, a) in isns.iter().enumerate() {
        for b in &isns[i + 1..] {
            assert_ne!(a, b, "ISNs {isns:x?}");
        }
    }
}

#[test]
fn a_never_drained_endpoint_keeps_no_log() {
    let (mut a, mut b) = (
        Endpoint::new(Config::new(vec![A])).expect("a"),
        Endpoint::new(Config::new(vec![B])).expect("b"),
    );
    let mut now = Instant::from_millis(1);
    let l = b.listen(now, None, 80, 4).expect("listen");
    let c = a
        .connect(now, SocketAddr::new(A, 0), SocketAddr::new(B, 80))
        .expect("connect");
    pump(&mut a, &mut b, now);
    let (s, _): (Handle, _) = b.accept(l).expect("accepted");
    let chunk = [7u8; 1000];
    let mut buf = [0u8; 4096];
    let mut got = 0;
    for _ in 0..500 {
        let _ = a.send(now, c, &chunk);
        pump(&mut a, &mut b, now);
        while let Ok(n) = b.recv(now, s, &mut buf) {
            if n == 0 {
                break;
            }
            got += n;
        }
        now += std::time::Duration::from_millis(1);
        if let Some(t) = a.poll_timeout().filter(|t| *t <= now) {
            a.handle_timeout(t);
        }
        if let Some(t) = b.poll_timeout().filter(|t| *t <= now) {
            b.handle_timeout(t);
        }
    }
    assert!(got >= 400_000, "only {got} octets moved");
    // Hundreds of segments later, nothing was kept for an observer.
    assert!(a.drain_transitions().is_empty());
    assert!(b.drain_transitions().is_empty());
}
