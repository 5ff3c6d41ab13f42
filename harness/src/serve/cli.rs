//! `tcpconform serve [--echo | --http DIR | --discard] [--impair SPEC]
//! [--port N]`: starts a server, tells the user how to reach it, and
//! prints its counters at the end.

use super::{serve, ServeMode, ServeOptions, ServeTimers};
use crate::impair::Impairment;
use std::time::Duration;

/// Entry point for `tcpconform serve [--echo | --http DIR | --discard]
/// [--impair SPEC] [--port N]`: serves until `duration` passes (or, with
/// `None`, until SIGINT/SIGTERM, whose handler removes the namespace and
/// exits with 130/143), printing how to reach the server and, at the end,
/// its counters. Errors are one sentence for the user.
pub fn run_cli(
    mode: ServeMode,
    impair: Option<&str>,
    port: Option<u16>,
    duration: Option<Duration>,
    timers: ServeTimers,
) -> Result<(), String> {
    let mut opts = ServeOptions::new(mode);
    opts.timers = timers;
    if let Some(spec) = impair {
        opts.impair = Some(spec.parse::<Impairment>().map_err(|e| e.to_string())?);
    }
    if let Some(p) = port {
        opts.port = p;
    }
    let mode = opts.mode.clone();
    let imp = opts.impair;
    let handle = serve(opts).map_err(|e| e.to_string())?;
    let addr = handle.address();
    println!(
        "serving {mode} on {addr} (the own stack on tun1) in network namespace {}",
        handle.netns_name()
    );
    match imp {
        Some(i) => println!("impairment at the TUN boundary, both directions: {i}"),
        None => println!("no impairment"),
    }
    let example = match &mode {
        ServeMode::Http(_) => format!("curl http://{addr}/"),
        ServeMode::Echo => format!("nc {} {}", addr.ip(), addr.port()),
        ServeMode::Discard => format!(
            "dd if=/dev/zero bs=1M count=100 | nc -N {} {}",
            addr.ip(),
            addr.port()
        ),
    };
    println!(
        "reach it from the namespace: ip netns exec {} {example}",
        handle.netns_name()
    );
    match duration {
        Some(d) => println!("stopping after {:.1} s", d.as_secs_f64()),
        None => println!("press Ctrl-C to stop (the namespace is removed)"),
    }
    let started = std::time::Instant::now();
    loop {
        if let Some(why) = handle.failure() {
            return Err(format!("serve: the event loop failed: {why}"));
        }
        let left = match duration {
            Some(d) => match d.checked_sub(started.elapsed()) {
                Some(l) if !l.is_zero() => l,
                _ => break,
            },
            None => Duration::from_millis(200),
        };
        std::thread::sleep(left.min(Duration::from_millis(200)));
    }
    let stats = handle.stop().map_err(|e| e.to_string())?;
    println!("{stats}");
    Ok(())
}
