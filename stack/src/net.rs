//! An in-memory network of endpoints on a virtual clock, for tests and
//! simulations (feature `net`; always in this crate's own tests).
//!
//! Packets go from one endpoint's [`Endpoint::poll_transmit`] to the
//! endpoint owning their destination address through a [`Link`], which
//! decides what arrives and when (a [`Perfect`] link delivers every packet
//! at once; a lossy one drops, delays, duplicates or corrupts). Time only
//! moves when the caller says so, and then straight to the next arrival or
//! timer, so minutes of retransmission back-off take microseconds and a
//! run replays identically. A packet addressed to no endpoint is counted
//! and, when [`Net::keep_outside`] is set, kept for the caller: a scripted
//! peer outside the network reads the stack's packets there.

use crate::endpoint::Endpoint;
use crate::time::Instant;
use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::net::IpAddr;

/// Index of an endpoint in a [`Net`].
pub type NodeId = usize;

/// What the network does to a packet between two endpoints.
pub trait Link {
    /// A packet `from` sends to `to`: pushes every copy that arrives, with
    /// its delay in µs (none: the packet is lost).
    fn carry(&mut self, from: NodeId, to: NodeId, pkt: &[u8], out: &mut Vec<(u64, Vec<u8>)>);

    /// Called after every round of deliveries and timers, with every
    /// endpoint (a test checks their transition logs and invariants here).
    fn settled(&mut self, _eps: &mut [Endpoint]) {}
}

/// A link that delivers every packet at once, unchanged.
#[derive(Clone, Copy, Debug, Default)]
pub struct Perfect;

impl Link for Perfect {
    fn carry(&mut self, _from: NodeId, _to: NodeId, pkt: &[u8], out: &mut Vec<(u64, Vec<u8>)>) {
        out.push((0, pkt.to_vec()));
    }
}

/// The network: endpoints, their addresses, the link and what is in flight.
#[derive(Clone, Debug)]
pub struct Net<L = Perfect> {
    /// The virtual clock.
    pub now: Instant,
    /// The endpoints, indexed by [`NodeId`].
    pub eps: Vec<Endpoint>,
    /// The addresses each endpoint owns.
    pub addrs: Vec<Vec<IpAddr>>,
    /// What happens to packets on the way.
    pub link: L,
    /// Keep packets addressed to no endpoint in [`Net::outside`].
    pub keep_outside: bool,
    /// Packets addressed to no endpoint, in sending order (when kept).
    pub outside: Vec<Vec<u8>>,
    /// Packets addressed to no endpoint (counted whether kept or not).
    pub unroutable: u64,
    /// Packets the endpoints handed to the network (before the link).
    pub packets: u64,
    in_flight: DelayQueue<(NodeId, Vec<u8>)>,
    carried: Vec<(u64, Vec<u8>)>,
}

impl<L: Link> Net<L> {
    /// An empty network whose clock starts at `start`.
    pub fn new(link: L, start: Instant) -> Net<L> {
        Net {
            now: start,
            eps: Vec::new(),
            addrs: Vec::new(),
            link,
            keep_outside: false,
            outside: Vec::new(),
            unroutable: 0,
            packets: 0,
            in_flight: DelayQueue::new(),
            carried: Vec::new(),
        }
    }

    /// Attaches an endpoint that owns `addrs`.
    pub fn add(&mut self, ep: Endpoint, addrs: Vec<IpAddr>) -> NodeId {
        self.eps.push(ep);
        self.addrs.push(addrs);
        self.eps.len() - 1
    }

    /// Hands `pkt` to endpoint `to` now, as if it had arrived from outside.
    pub fn inject(&mut self, to: NodeId, pkt: &[u8]) {
        if let Some(ep) = self.eps.get_mut(to) {
            ep.handle_packet(self.now, pkt);
        }
    }

    /// Moves every endpoint's pending output into the network; returns
    /// whether there was any.
    pub fn collect_output(&mut self) -> bool {
        let mut any = false;
        for from in 0..self.eps.len() {
            while let Some(pkt) = self.eps[from].poll_transmit(self.now) {
                any = true;
                self.packets += 1;
                let to = destination(&pkt)
                    .and_then(|dst| self.addrs.iter().position(|a| a.contains(&dst)));
                let Some(to) = to else {
                    self.unroutable += 1;
                    if self.keep_outside {
                        self.outside.push(pkt);
                    }
                    continue;
                };
                self.link.carry(from, to, &pkt, &mut self.carried);
                for (delay, copy) in self.carried.drain(..) {
                    let at = self.now.as_micros().saturating_add(delay);
                    self.in_flight.push(at, (to, copy));
                }
                self.eps[from].recycle(pkt);
            }
        }
        any
    }

    /// Hands every packet due by now to its endpoint; returns whether there
    /// was any.
    pub fn deliver_due(&mut self) -> bool {
        let mut any = false;
        while let Some((to, pkt)) = self.in_flight.pop_due(self.now.as_micros()) {
            any = true;
            self.inject(to, &pkt);
        }
        any
    }

    /// Fires every endpoint timer due by now.
    pub fn fire_due_timers(&mut self) {
        for ep in &mut self.eps {
            if ep.poll_timeout().is_some_and(|t| t <= self.now) {
                ep.handle_timeout(self.now);
            }
        }
    }

    /// The next moment something happens: an arrival or a timer.
    pub fn next_event(&self) -> Option<Instant> {
        let arrival = self.in_flight.next_due().map(Instant::from_micros);
        let timer = self.eps.iter().filter_map(Endpoint::poll_timeout).min();
        match (arrival, timer) {
            (Some(a), Some(t)) => Some(a.min(t)),
            (a, t) => a.or(t),
        }
    }

    /// Delivers packets at the current time until the endpoints are quiet
    /// (at most `rounds` rounds); returns whether they became quiet.
    pub fn settle(&mut self, rounds: usize) -> bool {
        for _ in 0..rounds {
            let sent = self.collect_output();
            let delivered = self.deliver_due();
            self.link.settled(&mut self.eps);
            if !sent && !delivered {
                return true;
            }
        }
        false
    }

    /// Lets time pass up to `until`, jumping from event to event and
    /// pumping at each; returns whether every round became quiet.
    pub fn advance_to(&mut self, until: Instant, rounds: usize) -> bool {
        let mut quiet = self.settle(rounds);
        while let Some(next) = self.next_event().filter(|t| *t <= until) {
            self.now = self.now.max(next);
            self.deliver_due();
            self.fire_due_timers();
            quiet &= self.settle(rounds);
        }
        self.now = self.now.max(until);
        quiet & self.settle(rounds)
    }

    /// Runs until `done` holds or virtual time passes `limit`; returns
    /// whether `done` held. `done` may make socket calls.
    pub fn run_until(&mut self, limit: Instant, mut done: impl FnMut(&mut Self) -> bool) -> bool {
        loop {
            self.collect_output();
            if done(self) {
                return true;
            }
            self.collect_output();
            let Some(next) = self.next_event() else {
                return false;
            };
            if next > limit {
                self.now = limit;
                return done(self);
            }
            self.now = self.now.max(next);
            self.deliver_due();
            self.fire_due_timers();
            self.link.settled(&mut self.eps);
        }
    }
}

/// The destination address of an IPv4 or IPv6 packet.
pub fn destination(pkt: &[u8]) -> Option<IpAddr> {
    match pkt.first()? >> 4 {
        4 => {
            let b: [u8; 4] = pkt.get(16..20)?.try_into().ok()?;
            Some(IpAddr::from(b))
        }
        6 => {
            let b: [u8; 16] = pkt.get(24..40)?.try_into().ok()?;
            Some(IpAddr::from(b))
        }
        _ => None,
    }
}

/// One queued item.
#[derive(Clone, Debug)]
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

/// Items held back until a time (µs on the caller's clock): earliest due
/// first, and items due at the same time in the order they were queued,
/// so a delay of zero never reorders packets and a seeded run replays
/// identically. The network's packets in flight; `serve` holds impaired
/// packets in one too.
#[derive(Clone, Debug)]
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

    #[test]
    fn destinations_of_both_versions_and_of_junk() {
        let mut v4 = vec![0x45u8; 20];
        v4[16..20].copy_from_slice(&[192, 0, 2, 7]);
        assert_eq!(destination(&v4), Some(IpAddr::from([192, 0, 2, 7])));
        let mut v6 = vec![0x60u8; 40];
        v6[24..40].copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
        assert_eq!(destination(&v6).map(|a| a.is_ipv6()), Some(true));
        assert_eq!(destination(&[0x45, 0]), None);
        assert_eq!(destination(&[]), None);
    }
}
