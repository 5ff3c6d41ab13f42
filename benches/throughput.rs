//! In-memory benchmarks of the own stack, next to smoltcp in the same run:
//! bulk transfer in Gbit/s of payload per core (MSS 1460, no impairment,
//! checksums on both sides), and the cost of one inbound data segment.
//! Run with `cargo bench --bench throughput`: five rounds (or
//! `THROUGHPUT_ROUNDS`), each running the own stack with the transition log
//! off, with it on, and smoltcp interleaved (three transfers each, best
//! kept), then the median of the per-round ratios, by wall time and by
//! the thread's CPU time (`/proc/thread-self/schedstat`: steadier when
//! other processes share the cores, as it leaves out time spent waiting
//! for one).

mod own_side;
mod smoltcp_side;

use std::time::Instant;

/// Nanoseconds this thread has run on a CPU (0 where the kernel does not
/// say).
fn thread_cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// Wall seconds and CPU seconds for one transfer of `total` octets by `f`.
fn time_once(name: &str, total: usize, f: &impl Fn(usize) -> usize) -> [f64; 2] {
    let (start, cpu) = (Instant::now(), thread_cpu_ns());
    let got = f(total);
    let secs = start.elapsed().as_secs_f64();
    let cpu_secs = thread_cpu_ns().saturating_sub(cpu) as f64 / 1e9;
    assert_eq!(got, total, "{name}: transfer incomplete");
    [secs, cpu_secs]
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
/// three alike; each keeps its best time. Returns Gbit/s of each, by wall
/// time and by CPU time.
fn round(total: usize, reps: usize) -> [[f64; 3]; 2] {
    let own = |n| own_side::bulk(n, false);
    let logged = |n| own_side::bulk(n, true);
    let smol = smoltcp_side::bulk;
    let mut best = [[f64::INFINITY; 3]; 2];
    for rep in 0..reps {
        // Alternate who goes first, so neither always follows the other.
        let order: [usize; 3] = if rep % 2 == 0 { [0, 1, 2] } else { [2, 1, 0] };
        for which in order {
            let secs = match which {
                0 => time_once("own stack", total, &own),
                1 => time_once("own stack, log", total, &logged),
                _ => time_once("smoltcp", total, &smol),
            };
            for (clock, s) in secs.into_iter().enumerate() {
                best[clock][which] = best[clock][which].min(s);
            }
        }
    }
    best.map(|b| b.map(|secs| gbps(total, secs)))
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
        // For profilers: only the own stack, once (`PROFILE_LOG`: with the
        // transition log); `PROFILE_SMOLTCP_MB` only smoltcp.
        let total = mb.parse::<usize>().unwrap_or(16) * 1024 * 1024;
        let log = std::env::var_os("PROFILE_LOG").is_some();
        let moved = own_side::bulk(total, log);
        let packets = own_side::PACKETS.load(std::sync::atomic::Ordering::Relaxed);
        println!("own stack moved {moved} bytes in {packets} packets");
        return;
    }
    if let Ok(mb) = std::env::var("PROFILE_SMOLTCP_MB") {
        let total = mb.parse::<usize>().unwrap_or(16) * 1024 * 1024;
        let moved = smoltcp_side::bulk(total);
        let packets = smoltcp_side::PACKETS.load(std::sync::atomic::Ordering::Relaxed);
        println!("smoltcp moved {moved} bytes in {packets} packets");
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
    // Per clock (wall, CPU): the per-round ratios with the log off and on.
    let mut ratios: [[Vec<f64>; 2]; 2] = Default::default();
    for r in 0..rounds {
        let [wall, cpu] = round(total, 3);
        let [own, logged, smol] = wall;
        println!(
            "round {}: own stack {own:.2} Gbit/s, with the transition log {logged:.2}, smoltcp 0.14 {smol:.2}: ratio {:.3} ({:.3} logged); per CPU second {:.3} ({:.3} logged)",
            r + 1,
            own / smol,
            logged / smol,
            cpu[0] / cpu[2],
            cpu[1] / cpu[2]
        );
        for (clock, g) in [wall, cpu].into_iter().enumerate() {
            ratios[clock][0].push(g[0] / g[2]);
            ratios[clock][1].push(g[1] / g[2]);
        }
    }
    let [[mut wall_off, mut wall_on], [mut cpu_off, mut cpu_on]] = ratios;
    println!(
        "ratio own/smoltcp, median of {rounds} rounds: {:.3} (transition log off), {:.3} (log on); by CPU time {:.3} and {:.3}",
        median(&mut wall_off),
        median(&mut wall_on),
        median(&mut cpu_off),
        median(&mut cpu_on)
    );
    per_segment();
}
