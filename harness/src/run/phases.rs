//! Where a long command's wall time goes: with `TCPCONFORM_TIMINGS` set
//! in the environment, `check` prints each phase's duration and every live
//! job's start and end (ms since the pool started) to standard error, one
//! `timing:` line each (README, "Parallel live runs and shards"). Silent
//! otherwise.

use std::time::Instant;

/// The environment variable that turns the `timing:` lines on.
pub const ENV: &str = "TCPCONFORM_TIMINGS";

/// Whether `timing:` lines are printed.
pub fn enabled() -> bool {
    std::env::var_os(ENV).is_some()
}

/// Consecutive phases of one command.
#[derive(Debug)]
pub struct Phases {
    on: bool,
    start: Instant,
    last: Instant,
}

impl Phases {
    /// Starts the first phase now.
    pub fn start() -> Phases {
        let now = Instant::now();
        Phases {
            on: enabled(),
            start: now,
            last: now,
        }
    }

    /// Ends the current phase, named `what`, and starts the next.
    pub fn mark(&mut self, what: &str) {
        let now = Instant::now();
        if self.on {
            eprintln!(
                "timing: {what} {:.1} ms (at {:.1} ms)",
                ms(now - self.last),
                ms(now - self.start)
            );
        }
        self.last = now;
    }
}

/// Prints one phase `what` that took `took` (e.g. on another thread).
pub fn note(what: &str, took: std::time::Duration) {
    if enabled() {
        eprintln!("timing: {what} {:.1} ms", ms(took));
    }
}

/// A duration in milliseconds.
pub fn ms(d: std::time::Duration) -> f64 {
    d.as_secs_f64() * 1e3
}
