//! A queue of items held back until a time: the packets an
//! [`Impairment`](crate::impair::Impairment) delays, in `serve` (real time,
//! at the TUN boundary) and in the simulator ([`crate::sim`], virtual
//! time). One queue: the in-memory network's.

pub use tcp_stack::net::DelayQueue;
