//! The simulator: own-stack endpoints on the in-memory network of
//! [`tcp_stack::net`] (the one network of the tests, the rig and the
//! simulator), with packets travelling through the seeded [`Impairment`]
//! model. Time jumps straight to the next arrival or timer, so long
//! exchanges (including RTO back-off) take microseconds of real time and
//! always replay identically.

use crate::impair::{Impairment, Rng};
use tcp_stack::net::{Link, NodeId};
use tcp_stack::Instant;

pub use tcp_stack::net::destination;

/// A link that loses, duplicates, reorders, delays and corrupts packets as
/// a seeded [`Impairment`] says.
#[derive(Debug, Clone)]
pub struct Impaired {
    impair: Impairment,
    rng: Rng,
}

impl Link for Impaired {
    fn carry(&mut self, _from: NodeId, _to: NodeId, pkt: &[u8], out: &mut Vec<(u64, Vec<u8>)>) {
        for (delay, copy) in self.impair.apply(&mut self.rng, pkt) {
            out.push((u64::try_from(delay.as_micros()).unwrap_or(u64::MAX), copy));
        }
    }
}

/// The simulated network.
pub type Net = tcp_stack::net::Net<Impaired>;

/// An empty simulated network under `impair`, its clock at 1 s.
pub fn net(impair: Impairment) -> Net {
    let link = Impaired {
        rng: Rng::new(impair.seed),
        impair,
    };
    Net::new(link, Instant::from_micros(1_000_000))
}
