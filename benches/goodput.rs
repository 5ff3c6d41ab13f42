//! Goodput under loss: 4 MiB from one own-stack endpoint to another
//! through the harness's impairment model at 0 %, 1 %, 5 % and 10 % loss
//! (both directions), with the RFC profile's timers and NewReno (`serve
//! --timers rfc`, what `serve` ran before SACK) next to realistic timers
//! with SACK (`serve --timers realistic`, the default: 200 ms minimum RTO,
//! RFC 2018 blocks, RFC 6675 recovery, RACK-TLP of RFC 8985), and the
//! same without RACK-TLP (what `serve` ran before it).
//!
//! Two measurements:
//! - **in memory** (always): `tcp_harness::sim::Net` on its virtual clock,
//!   1 ms one-way delay (2 ms RTT), unlimited bandwidth; goodput is the
//!   payload over the virtual time from the first SYN to the last octet
//!   read, median over five impairment seeds; below each row, where the
//!   time went at each loss rate (means over the seeds): retransmission
//!   timeouts and the time spent waiting for them (from the last advance
//!   of SND.UNA, or the timeout before, to the expiry), recovery
//!   episodes, segments RACK marked lost, tail loss probes, and the time
//!   cwnd stayed under four segments;
//! - **live** (as root; otherwise `skipped: <reason>`): `serve --http` in
//!   its namespace, a kernel client downloading a 4 MiB file over TUN with
//!   `--impair loss=P` (so the own stack is the sender whose recovery is
//!   measured), wall-clock time, median of `--runs N` (default 3). The RFC
//!   timers run only with `--rfc` (at 5 % loss a transfer takes about a
//!   minute).
//!   Below each row: the means of the server's timeouts, recoveries and
//!   tail loss probes.
//!
//! Run with `cargo bench --bench goodput [-- --runs N --rfc --no-live
//! --loss P]` (`--loss 0.05`: only that loss rate live);
//! `GOODPUT_DEBUG=1` also prints the sender's counters and the times of its
//! retransmission timeouts for every in-memory transfer.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::time::{Duration, Instant as WallInstant};
use tcp_harness::impair::Impairment;
use tcp_harness::serve::{serve, ServeMode, ServeOptions, ServeTimers};
use tcp_harness::sim;
use tcp_stack::{Config, Endpoint};

const MIB: usize = 1 << 20;
const SIZE: usize = 4 * MIB;
const LOSSES: [f64; 4] = [0.0, 0.01, 0.05, 0.10];
const A: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
const B: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2));

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let flag = |f: &str| args.iter().any(|a| a == f);
    let runs = args
        .iter()
        .position(|a| a == "--runs")
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(3)
        .clamp(1, 50);
    in_memory();
    if flag("--no-live") {
        return;
    }
    if let Err(e) = tcp_harness::live::available() {
        println!("live: skipped: {e}");
        return;
    }
    let mut timers = vec![ServeTimers::Realistic];
    if flag("--rfc") {
        timers.push(ServeTimers::Rfc);
    }
    let only_loss = args
        .iter()
        .position(|a| a == "--loss")
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse::<f64>().ok());
    if let Err(e) = live(runs, &timers, only_loss) {
        eprintln!("live goodput failed: {e}");
        std::process::exit(1);
    }
}

fn label(t: ServeTimers) -> &'static str {
    match t {
        ServeTimers::Realistic => "realistic + RACK",
        ServeTimers::Rfc => "rfc + NewReno",
    }
}

/// One in-memory configuration: `serve`'s timers, RACK-TLP on or off.
#[derive(Clone, Copy)]
struct Setup {
    timers: ServeTimers,
    rack: bool,
}

impl Setup {
    const ALL: [Setup; 3] = [
        Setup {
            timers: ServeTimers::Rfc,
            rack: false,
        },
        Setup {
            timers: ServeTimers::Realistic,
            rack: false,
        },
        Setup {
            timers: ServeTimers::Realistic,
            rack: true,
        },
    ];

    fn label(self) -> &'static str {
        match (self.timers, self.rack) {
            (ServeTimers::Rfc, _) => "rfc + NewReno",
            (ServeTimers::Realistic, false) => "realistic, SACK",
            (ServeTimers::Realistic, true) => "realistic + RACK",
        }
    }
}

/// Where the time of one simulated transfer went.
#[derive(Clone, Copy, Default)]
struct Spent {
    mib_s: f64,
    timeouts: u64,
    /// Seconds from the last advance of SND.UNA (or the timeout before)
    /// to each timeout.
    rto_wait_s: f64,
    recoveries: u64,
    rack_lost: u64,
    probes: u64,
    /// Seconds with cwnd under four segments.
    small_cwnd_s: f64,
    secs: f64,
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

fn in_memory() {
    println!("in memory: 4 MiB, 1 ms one-way delay, median of 5 seeds (MiB/s of virtual time)");
    for setup in Setup::ALL {
        let mut row = format!("  {:<18}", setup.label());
        let mut why = String::from("    means:");
        for loss in LOSSES {
            let runs: Vec<Spent> = (1..=5u64)
                .map(|seed| simulated(setup, loss, seed))
                .collect();
            let mut v: Vec<f64> = runs.iter().map(|r| r.mib_s).collect();
            row += &format!(" {:>5.1} %: {:>7.2}", loss * 100.0, median(&mut v));
            if loss > 0.0 {
                why += &format!(" | {:.0} %: {}", loss * 100.0, explain(&runs, false));
            }
        }
        println!("{row}");
        println!("{why}");
    }
}

/// The means of `runs` in one short line; `live` leaves out what only
/// the simulation measures (the wait for timeouts, RACK's markings, the
/// time with a small cwnd).
fn explain(runs: &[Spent], live: bool) -> String {
    let n = runs.len().max(1) as f64;
    let mean = |f: &dyn Fn(&Spent) -> f64| runs.iter().map(f).sum::<f64>() / n;
    if live {
        return format!(
            "{:.1} s, {:.1} RTOs, {:.0} recoveries, {:.1} TLPs",
            mean(&|r| r.secs),
            mean(&|r| r.timeouts as f64),
            mean(&|r| r.recoveries as f64),
            mean(&|r| r.probes as f64),
        );
    }
    format!(
        "{:.1} s, {:.1} RTOs waited {:.2} s, {:.0} recoveries, {:.0} RACK-lost, {:.1} TLPs, cwnd<4 {:.2} s",
        mean(&|r| r.secs),
        mean(&|r| r.timeouts as f64),
        mean(&|r| r.rto_wait_s),
        mean(&|r| r.recoveries as f64),
        mean(&|r| r.rack_lost as f64),
        mean(&|r| r.probes as f64),
        mean(&|r| r.small_cwnd_s),
    )
}

fn sim_endpoint(addr: IpAddr, secret: u8, setup: Setup) -> Endpoint {
    let timers = setup.timers;
    let mut c = Config::new(vec![addr]);
    c.secret = [secret; 32];
    // serve's buffers (1 MiB) and timers.
    c.recv_buf = MIB;
    c.send_buf = MIB;
    timers.configure(&mut c);
    c.rack = setup.rack;
    c.log_transitions = std::env::var_os("GOODPUT_DEBUG").is_some();
    Endpoint::new(c).unwrap_or_else(|e| panic!("{e}"))
}

/// MiB/s of virtual time for one simulated transfer, and where the time
/// went.
fn simulated(setup: Setup, loss: f64, seed: u64) -> Spent {
    let imp = Impairment {
        loss,
        delay: Duration::from_millis(1),
        seed,
        ..Impairment::none()
    };
    let mut net = sim::net(imp);
    let a = net.add(sim_endpoint(A, 1, setup), vec![A]);
    let b = net.add(sim_endpoint(B, 2, setup), vec![B]);
    let start = net.now;
    let (listener, conn) = {
        let now = net.now;
        let l = net
            .eps
            .get_mut(b)
            .and_then(|e| e.listen(now, Some(B), 80, 4).ok())
            .expect("listen");
        let c = net
            .eps
            .get_mut(a)
            .and_then(|e| {
                e.connect(now, SocketAddr::new(A, 0), SocketAddr::new(B, 80))
                    .ok()
            })
            .expect("connect");
        (l, c)
    };
    let data = vec![0x5au8; 64 * 1024];
    let mut buf = vec![0u8; 256 * 1024];
    let (mut sent, mut got, mut peer) = (0usize, 0usize, None);
    let mut spent = Spent::default();
    // (time, SND.UNA) of the last advance, timeouts so far, and the time
    // and cwnd at the previous step.
    let mut progress = (start, 0u32);
    let mut timeouts = 0u64;
    let mut last = (start, u32::MAX);
    let limit = start.plus_micros(3_600 * 1_000_000);
    let done = net.run_until(limit, |net| {
        let now = net.now;
        if let Some(ea) = net.eps.get_mut(a) {
            if let Ok(st) = ea.status(conn) {
                let dt = now.as_micros().saturating_sub(last.0.as_micros()) as f64 / 1e6;
                if last.1 < 4 * u32::from(st.mss) {
                    spent.small_cwnd_s += dt;
                }
                last = (now, st.cwnd);
                if ea.stats().timeouts > timeouts {
                    timeouts = ea.stats().timeouts;
                    spent.rto_wait_s +=
                        now.as_micros().saturating_sub(progress.0.as_micros()) as f64 / 1e6;
                    // A second timeout waits from this one.
                    progress.0 = now;
                }
                if st.snd_una != progress.1 {
                    progress = (now, st.snd_una);
                }
            }
            while sent < SIZE {
                match ea.send(now, conn, &data[..data.len().min(SIZE - sent)]) {
                    Ok(n) if n > 0 => sent += n,
                    _ => break,
                }
            }
        }
        if let Some(eb) = net.eps.get_mut(b) {
            if peer.is_none() {
                peer = eb.accept(listener).ok().map(|(h, _)| h);
            }
            if let Some(h) = peer {
                while let Ok(n) = eb.recv(now, h, &mut buf) {
                    if n == 0 {
                        break;
                    }
                    got += n;
                }
            }
        }
        got >= SIZE
    });
    assert!(
        done,
        "{} at {loss}: only {got} of {SIZE} octets",
        setup.label()
    );
    if std::env::var_os("GOODPUT_DEBUG").is_some() {
        let ea = net.eps.get_mut(a).expect("a");
        let tr = ea.drain_transitions();
        let rtos: Vec<(u64, u64)> = tr
            .iter()
            .filter(|t| t.row == "SYNC.RTO")
            .map(|t| {
                (
                    t.at.as_micros() / 1000,
                    t.emitted.first().map_or(0, |e| u64::from(e.seq)),
                )
            })
            .collect();
        eprintln!("rtos {}: {rtos:?}", rtos.len());
        eprintln!(
            "{} {loss} seed {seed}: {:?} {:?}",
            setup.label(),
            ea.stats(),
            ea.status(conn).map(|s| s.rto_us)
        );
    }
    let secs = net.now.as_micros().saturating_sub(start.as_micros()) as f64 / 1e6;
    if let Some(ea) = net.eps.get(a) {
        let st = ea.stats();
        spent.timeouts = st.timeouts;
        spent.recoveries = st.recoveries;
        spent.rack_lost = st.rack_lost;
        spent.probes = st.loss_probes;
    }
    spent.secs = secs;
    spent.mib_s = SIZE as f64 / MIB as f64 / secs.max(1e-9);
    spent
}

fn live(runs: usize, timers: &[ServeTimers], only_loss: Option<f64>) -> Result<(), String> {
    let dir = std::env::temp_dir().join(format!("tcpconform-goodput-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let file = dir.join("4mib");
    std::fs::write(&file, vec![0xa5u8; SIZE]).map_err(|e| e.to_string())?;
    println!("live: serve --http, a kernel client downloads 4 MiB over TUN, median of {runs} runs (MiB/s)");
    let result = (|| {
        for &t in timers {
            let mut row = format!("  {:<18}", label(t));
            let mut why = String::from("    means:");
            for loss in LOSSES {
                let mut v = Vec::new();
                if only_loss.is_some_and(|l| (l - loss).abs() > 1e-9) {
                    continue;
                }
                let mut spent = Vec::new();
                for run in 0..runs {
                    let s = download(&dir, t, loss, run as u64 + 1)?;
                    v.push(s.mib_s);
                    spent.push(s);
                }
                row += &format!(" {:>5.1} %: {:>7.2}", loss * 100.0, median(&mut v));
                if loss > 0.0 {
                    why += &format!(" | {:.0} %: {}", loss * 100.0, explain(&spent, true));
                }
            }
            println!("{row}");
            println!("{why}");
        }
        Ok(())
    })();
    let _ = std::fs::remove_dir_all(&dir);
    result
}

/// MiB/s of one live download through `serve` impaired by `loss`, and
/// the server's counters (no RACK-lost or cwnd figures live).
fn download(
    dir: &std::path::Path,
    timers: ServeTimers,
    loss: f64,
    seed: u64,
) -> Result<Spent, String> {
    let mut opts = ServeOptions::new(ServeMode::Http(dir.to_path_buf()));
    opts.timers = timers;
    if loss > 0.0 {
        opts.impair = Some(Impairment {
            loss,
            seed,
            ..Impairment::none()
        });
    }
    let h = serve(opts).map_err(|e| e.to_string())?;
    let addr = SocketAddr::V4(h.address());
    let debug = std::env::var_os("GOODPUT_DEBUG").is_some();
    let mut s = h
        .netns()
        .run_in(move || TcpStream::connect_timeout(&addr, Duration::from_secs(10)))
        .map_err(|e| e.to_string())?
        .map_err(|e| format!("connect to {addr}: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(300)))
        .map_err(|e| e.to_string())?;
    let started = WallInstant::now();
    s.write_all(b"GET /4mib HTTP/1.0\r\n\r\n")
        .map_err(|e| format!("request: {e}"))?;
    let mut total = 0usize;
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => total += n,
            Err(e) => return Err(format!("download: {e} after {total} octets")),
        }
    }
    let secs = started.elapsed().as_secs_f64();
    let stats = h.stop().map_err(|e| e.to_string())?;
    if debug {
        eprintln!(
            "{} {loss} seed {seed}: {secs:.2} s, {stats:?}",
            label(timers)
        );
    }
    if total < SIZE {
        return Err(format!("only {total} of {SIZE} octets arrived"));
    }
    Ok(Spent {
        mib_s: SIZE as f64 / MIB as f64 / secs.max(1e-9),
        timeouts: stats.timeouts,
        recoveries: stats.recoveries,
        probes: stats.loss_probes,
        secs,
        ..Spent::default()
    })
}
