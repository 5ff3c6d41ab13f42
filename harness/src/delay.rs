//! A queue of items held back until a time: the packets an [`Impairment`]
//! delays, in `serve` (real time, at the TUN boundary) and in the simulator
//! ([`crate::sim`], virtual time).
//!
//! Items leave earliest due first; items due at the same time leave in the
//! order they were queued, so a delay of zero never reorders packets and a
//! run with the same seed replays identically.
//!
//! [`Impairment`]: crate::impair::Impairment

use std::cmp::Ordering;
use std::collections::BinaryHeap;

/// One queued item.
#[derive(Debug)]
struct Entry<T> {
    due: u64,
    seq: u64,
    item: T,
}

impl<T> PartialEq for Entry<T> {
    fn eq(&self, o: &Self) -> bool {
        (self.due, self.seq) == (o.due, o.seq)
    }
}
impl<T> Eq for Entry<T> {}
impl<T> PartialOrd for Entry<T> {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl<T> Ord for Entry<T> {
    /// Reversed, so the max-heap pops the earliest (then first queued).
    fn cmp(&self, o: &Self) -> Ordering {
        (o.due, o.seq).cmp(&(self.due, self.seq))
    }
}

/// Items ordered by due time (µs on the caller's clock), then by queueing
/// order.
#[derive(Debug)]
pub struct DelayQueue<T> {
    heap: BinaryHeap<Entry<T>>,
    seq: u64,
}

impl<T> Default for DelayQueue<T> {
    fn default() -> Self {
        DelayQueue {
            heap: BinaryHeap::new(),
            seq: 0,
        }
    }
}

impl<T> DelayQueue<T> {
    /// An empty queue.
    pub fn new() -> Self {
        Self::default()
    }

    /// Queues `item` until `due`.
    pub fn push(&mut self, due: u64, item: T) {
        self.seq += 1;
        self.heap.push(Entry {
            due,
            seq: self.seq,
            item,
        });
    }

    /// When the next item is due.
    pub fn next_due(&self) -> Option<u64> {
        self.heap.peek().map(|e| e.due)
    }

    /// The next item due at or before `now`, if any.
    pub fn pop_due(&mut self, now: u64) -> Option<T> {
        if self.next_due()? > now {
            return None;
        }
        self.heap.pop().map(|e| e.item)
    }

    /// Number of queued items.
    pub fn len(&self) -> usize {
        self.heap.len()
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn earliest_first_then_queueing_order() {
        let mut q = DelayQueue::new();
        for (due, name) in [(5, "a"), (3, "b"), (5, "c"), (1, "d")] {
            q.push(due, name);
        }
        assert_eq!(q.next_due(), Some(1));
        assert_eq!(q.pop_due(0), None, "nothing due yet");
        let order: Vec<&str> = std::iter::from_fn(|| q.pop_due(5)).collect();
        assert_eq!(order, ["d", "b", "a", "c"]);
        assert!(q.is_empty());
    }

    #[test]
    fn only_what_is_due_leaves() {
        let mut q = DelayQueue::new();
        q.push(10, 1);
        q.push(20, 2);
        assert_eq!(q.pop_due(15), Some(1));
        assert_eq!(q.pop_due(15), None);
        assert_eq!(q.len(), 1);
        assert_eq!(q.pop_due(20), Some(2));
    }
}
