//! A deterministic in-memory network of own-stack endpoints on a virtual
//! clock: packets travel through the seeded [`Impairment`] model, time jumps
//! straight to the next arrival or timer, so long exchanges (including RTO
//! back-off) take microseconds of real time and always replay identically.

use crate::delay::DelayQueue;
use crate::impair::{Impairment, Rng};
use std::net::IpAddr;
use tcp_stack::{Endpoint, Instant};

/// Index of an endpoint in a [`Net`].
pub type NodeId = usize;

struct Node {
    ep: Endpoint,
    addrs: Vec<IpAddr>,
}

/// Packets in flight and their receivers, ordered by arrival time, then
/// by sending order.
type InFlight = DelayQueue<(NodeId, Vec<u8>)>;

/// The simulated network.
pub struct Net {
    now: Instant,
    nodes: Vec<Node>,
    in_flight: InFlight,
    impair: Impairment,
    rng: Rng,
    /// Packets addressed to no node (counted, then dropped).
    pub unroutable: u64,
    /// Packets handed to the network (before impairment).
    pub packets: u64,
}

impl Net {
    pub fn new(impair: Impairment) -> Net {
        Net {
            now: Instant::from_micros(1_000_000),
            nodes: Vec::new(),
            in_flight: DelayQueue::new(),
            rng: Rng::new(impair.seed),
            impair,
            unroutable: 0,
            packets: 0,
        }
    }

    /// Attaches an endpoint that owns `addrs`.
    pub fn add(&mut self, ep: Endpoint, addrs: Vec<IpAddr>) -> NodeId {
        self.nodes.push(Node { ep, addrs });
        self.nodes.len() - 1
    }

    pub fn now(&self) -> Instant {
        self.now
    }

    /// The endpoint of a node (for socket calls).
    pub fn ep(&mut self, id: NodeId) -> Option<&mut Endpoint> {
        self.nodes.get_mut(id).map(|n| &mut n.ep)
    }

    /// Collects every node's pending output into the network.
    fn collect_output(&mut self) -> bool {
        let mut any = false;
        for i in 0..self.nodes.len() {
            while let Some(pkt) = self.nodes[i].ep.poll_transmit(self.now) {
                any = true;
                self.packets += 1;
                let Some(dst) = destination(&pkt) else {
                    self.unroutable += 1;
                    continue;
                };
                let Some(to) = self.nodes.iter().position(|n| n.addrs.contains(&dst)) else {
                    self.unroutable += 1;
                    continue;
                };
                for (delay, copy) in self.impair.apply(&mut self.rng, &pkt) {
                    let at = self
                        .now
                        .as_micros()
                        .saturating_add(delay.as_micros() as u64);
                    self.in_flight.push(at, (to, copy));
                }
            }
        }
        any
    }

    /// The next moment something happens: an arrival or a timer.
    fn next_event(&self) -> Option<Instant> {
        let arrival = self.in_flight.next_due().map(Instant::from_micros);
        let timer = self.nodes.iter().filter_map(|n| n.ep.poll_timeout()).min();
        match (arrival, timer) {
            (Some(a), Some(t)) => Some(a.min(t)),
            (a, t) => a.or(t),
        }
    }

    /// Runs until `done` holds or virtual time passes `limit`; returns
    /// whether `done` held. Time only moves forward to the next event.
    pub fn run_until(&mut self, limit: Instant, mut done: impl FnMut(&mut Net) -> bool) -> bool {
        loop {
            self.collect_output();
            if done(self) {
                return true;
            }
            // `done` may have made the endpoints send (socket calls).
            self.collect_output();
            let Some(next) = self.next_event() else {
                return false;
            };
            if next > limit {
                self.now = limit;
                return done(self);
            }
            self.now = self.now.max(next);
            while let Some((to, pkt)) = self.in_flight.pop_due(self.now.as_micros()) {
                if let Some(node) = self.nodes.get_mut(to) {
                    node.ep.handle_packet(self.now, &pkt);
                }
            }
            for n in &mut self.nodes {
                if n.ep.poll_timeout().is_some_and(|t| t <= self.now) {
                    n.ep.handle_timeout(self.now);
                }
            }
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
