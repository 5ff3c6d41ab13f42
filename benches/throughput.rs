//! In-memory bulk transfer, MSS 1460, no impairment: payload Gbit/s per core.
//! Run with `cargo bench --bench throughput`.

mod smoltcp_side;

use std::time::Instant;

fn measure(name: &str, total: usize, f: impl Fn(usize) -> usize) {
    let _ = f(total / 8); // warm-up
    let mut best = f64::INFINITY;
    for _ in 0..3 {
        let start = Instant::now();
        let got = f(total);
        let secs = start.elapsed().as_secs_f64();
        assert_eq!(got, total, "{name}: transfer incomplete");
        best = best.min(secs);
    }
    let gbps = total as f64 * 8.0 / best / 1e9;
    println!(
        "{name:<24} {total} bytes in {:.3} s: {gbps:.2} Gbit/s",
        best
    );
}

fn main() {
    let total = 256 * 1024 * 1024;
    measure("smoltcp 0.14 (checksums)", total, smoltcp_side::bulk);
}
