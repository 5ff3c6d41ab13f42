//! In-memory benchmarks of the own stack, next to smoltcp in the same run:
//! bulk transfer in Gbit/s of payload per core (MSS 1460, no impairment,
//! checksums on both sides), and the cost of one inbound data segment.
//! Run with `cargo bench --bench throughput`.

mod own_side;
mod smoltcp_side;

use std::time::Instant;

fn measure(name: &str, total: usize, f: impl Fn(usize) -> usize) -> f64 {
    let _ = f(total / 8); // warm-up
    let mut best = f64::INFINITY;
    for _ in 0..5 {
        let start = Instant::now();
        let got = f(total);
        let secs = start.elapsed().as_secs_f64();
        assert_eq!(got, total, "{name}: transfer incomplete");
        best = best.min(secs);
    }
    let gbps = total as f64 * 8.0 / best / 1e9;
    println!("{name:<30} {total} bytes in {best:.3} s: {gbps:.2} Gbit/s");
    gbps
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
    let own = measure("own stack", total, |n| own_side::bulk(n, false));
    let logged = measure("own stack, transitions logged", total, |n| {
        own_side::bulk(n, true)
    });
    let smol = measure("smoltcp 0.14 (checksums)", total, smoltcp_side::bulk);
    println!(
        "ratio own/smoltcp: {:.2} ({:.2} with the transition log)",
        own / smol,
        logged / smol
    );
    per_segment();
}
