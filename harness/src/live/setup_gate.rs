//! One namespace set-up at a time, most urgent first.
//!
//! Set-up runs one at a time so that scripts already running beside it
//! (`--jobs`) see one set-up's `ip` processes at a time, not a burst. The
//! order matters when many workers wait: the pool starts scripts longest
//! first, and a `diff` re-runs a script (masked) on a fresh namespace, so a
//! set-up for an early, long job — its first or a re-run — goes before one
//! for a job started later. A worker states its job's position in the
//! schedule with [`set_rank`]; equal ranks go in the order they asked.

use std::cell::Cell;
use std::collections::BTreeSet;
use std::sync::{Condvar, Mutex, MutexGuard};

thread_local! {
    static RANK: Cell<usize> = const { Cell::new(usize::MAX) };
}

/// Declares that this thread's next set-ups serve the job at position
/// `rank` of the schedule (0 first); threads that never call it rank last.
pub fn set_rank(rank: usize) {
    RANK.with(|r| r.set(rank));
}

#[derive(Debug, Default)]
struct State {
    busy: bool,
    /// Waiting set-ups: (rank, ticket), the first is served next.
    waiting: BTreeSet<(usize, u64)>,
    tickets: u64,
}

/// The gate: one holder at a time, the lowest (rank, ticket) next.
#[derive(Debug, Default)]
pub struct Gate {
    state: Mutex<State>,
    turn: Condvar,
}

/// Holding the gate; dropping it lets the next waiter in.
#[derive(Debug)]
pub struct Held<'a>(&'a Gate);

impl Gate {
    /// An open gate.
    pub const fn new() -> Gate {
        Gate {
            state: Mutex::new(State {
                busy: false,
                waiting: BTreeSet::new(),
                tickets: 0,
            }),
            turn: Condvar::new(),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits until no set-up runs and no more urgent one waits, then holds
    /// the gate for the calling thread's rank.
    pub fn enter(&self) -> Held<'_> {
        let rank = RANK.with(Cell::get);
        let mut s = self.state();
        let me = (rank, s.tickets);
        s.tickets += 1;
        s.waiting.insert(me);
        while s.busy || s.waiting.first() != Some(&me) {
            s = self.turn.wait(s).unwrap_or_else(|e| e.into_inner());
        }
        s.waiting.remove(&me);
        s.busy = true;
        Held(self)
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        self.0.state().busy = false;
        self.0.turn.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn the_most_urgent_waiter_goes_next_then_the_order_of_asking() {
        let gate = Arc::new(Gate::new());
        let order = Arc::new(Mutex::new(Vec::new()));
        let first = gate.enter();
        // Five waiters queue behind the holder: ranks 7, 2, 9, 2, none.
        let mut threads = Vec::new();
        for (i, rank) in [Some(7), Some(2), Some(9), Some(2), None]
            .into_iter()
            .enumerate()
        {
            let (g, o) = (Arc::clone(&gate), Arc::clone(&order));
            threads.push(std::thread::spawn(move || {
                if let Some(r) = rank {
                    set_rank(r);
                }
                let _held = g.enter();
                o.lock().unwrap().push(i);
            }));
            // Wait until this one is queued, so tickets follow `i`.
            while gate.state().waiting.len() < i + 1 {
                std::thread::yield_now();
            }
        }
        drop(first);
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(*order.lock().unwrap(), vec![1, 3, 0, 2, 4]);
    }
}
