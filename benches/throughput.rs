//! In-memory benchmarks of the own stack, next to smoltcp in the same run:
//! bulk transfer in Gbit/s of payload per core (MSS 1460, no impairment,
//! checksums on both sides), and the cost of one inbound data segment.
//! Run with `cargo bench --bench throughput`: five rounds (or
//! `THROUGHPUT_ROUNDS`), each running the own stack with the transition log
//! off, with it on, and smoltcp interleaved (three transfers each, best
//! kept), then the median of the per-round ratios.

mod own_side;
mod smoltcp_side;

use std::time::Instant;

/// Seconds for one transfer of `total` octets by `f`.
fn time_once(name: &str, total: usize, f: &impl Fn(usize) -> usize) -> f64 {
    let start = Instant::now();
    let got = f(total);
    let secs = start.elapsed().as_secs_f64();
    assert_eq!(got, total, "{name}: transfer incomplete");
    secs
}

fn gbps(total: usize, secs: f64) -> f64 {
    total as f64 * 8.0 / secs.max(1e-9) / 1e9
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

/// One round: the own stack (log off), the own stack (log on) and
/// smoltcp take turns, `reps` transfers each, interleaved so that the
/// machine's load (other processes on a shared machine) falls on all
/// three alike; each keeps its best time. Returns Gbit/s of each.
fn round(total: usize, reps: usize) -> [f64; 3] {
    let own = |n| own_side::bulk(n, false);
    let logged = |n| own_side::bulk(n, true);
    let smol = smoltcp_side::bulk;
    let mut best = [f64::INFINITY; 3];
    for rep in 0..reps {
        // Alternate who goes first, so neither always follows the other.
        let order: [usize; 3] = if rep % 2 == 0 { [0, 1, 2] } else { [2, 1, 0] };
        for which in order {
            let secs = match which {
                0 => time_once("own stack", total, &own),
                1 => time_once("own stack, log", total, &logged),
                _ => time_once("smoltcp", total, &smol),
            };
            best[which] = best[which].min(secs);
        }
    }
    best.map(|secs| gbps(total, secs))
}

fn per_segment() {
    let n = 20_000;
    let mut best = f64::INFINITY;
    for _ in 0..5 {
        let (mut ep, h, pkts, now) = own_side::inbound_segments(n);
        let mut buf = vec![0u8; 64 * 1024];
        let start = Instant::now();
        for p in &pkts {
            ep.handle_packet(now, p);
            while ep.poll_transmit(now).is_some() {}
            while matches!(ep.recv(now, h, &mut buf), Ok(k) if k > 0) {}
        }
        let ns = start.elapsed().as_nanos() as f64 / n as f64;
        assert!(
            ep.status(h)
                .is_ok_and(|s| s.rcv_nxt == 1001 + (n as u32) * 1460),
            "segments not all taken"
        );
        best = best.min(ns);
    }
    println!("own stack: {best:.0} ns per inbound 1460-byte data segment (parse, checksum, ACK logic, delivery, read)");
}

fn main() {
    if let Ok(mb) = std::env::var("PROFILE_OWN_MB") {
        // For profilers: only the own stack, once.
        let total = mb.parse::<usize>().unwrap_or(16) * 1024 * 1024;
        println!("own stack moved {} bytes", own_side::bulk(total, false));
        return;
    }
    let total = 256 * 1024 * 1024;
    let rounds: usize = std::env::var("THROUGHPUT_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5)
        .clamp(1, 50);
    // Warm-up of all three.
    let _ = (
        own_side::bulk(total / 8, false),
        smoltcp_side::bulk(total / 8),
    );
    let (mut ratios, mut logged_ratios) = (Vec::new(), Vec::new());
    for r in 0..rounds {
        let [own, logged, smol] = round(total, 3);
        println!(
            "round {}: own stack {own:.2} Gbit/s, with the transition log {logged:.2}, smoltcp 0.14 {smol:.2}: ratio {:.3} ({:.3} logged)",
            r + 1,
            own / smol,
            logged / smol
        );
        ratios.push(own / smol);
        logged_ratios.push(logged / smol);
    }
    println!(
        "ratio own/smoltcp, median of {rounds} rounds: {:.3} (transition log off), {:.3} (log on)",
        median(&mut ratios),
        median(&mut logged_ratios)
    );
    per_segment();
}
