//! tcp-stack: the own userspace TCP stack of tcpconform.
//!
//! Sans-IO in the manner of quinn-proto and smoltcp's sockets: no threads,
//! clocks, sockets or randomness inside. The caller feeds whole IP packets
//! with [`Endpoint::handle_packet`], collects packets to send with
//! [`Endpoint::poll_transmit`], and drives timers with
//! [`Endpoint::poll_timeout`] / [`Endpoint::handle_timeout`], passing
//! [`Instant`]s of its own clock (real or virtual).
//!
//! Every event a connection handles is logged as a [`Transition`] naming
//! the `tcp-spec` table row the stack's code path implements, so tests and
//! fuzzers can hold the stack against `tcp_spec::step`.
//!
//! The public surface is what an embedder needs: [`Endpoint`] and its
//! [`Config`], the [`Handle`] of a connection or listener, [`Instant`],
//! [`Error`], the observer log ([`Transition`]) and counters ([`Stats`]),
//! and the wire format ([`packet`], [`checksum`]) for building and reading
//! packets. Inside: sequence arithmetic (RFC 9293 §3.4), ISNs (RFC 6528),
//! the RTO (RFC 6298), congestion control (RFC 5681 with RFC 6582), SACK
//! (RFC 2018) with the loss recovery of RFC 6675 (`sack`, `recovery`), the
//! reassembly queue, the state machine of RFC 9293 §3.10 (`conn`) and
//! demultiplexing, timers and the socket-shaped API (`endpoint`). With the
//! feature `net`, `net` is the in-memory network of endpoints on a virtual
//! clock that the stack's tests, the harness's simulator and its drive rig
//! share.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod checksum;
pub(crate) mod congestion;
pub(crate) mod conn;
pub(crate) mod endpoint;
pub(crate) mod error;
pub(crate) mod faults;
pub(crate) mod isn;
#[cfg(any(test, feature = "net"))]
pub mod net;
pub mod packet;
pub(crate) mod rack;
pub(crate) mod reassembly;
pub(crate) mod recovery;
pub(crate) mod ring;
pub(crate) mod rto;
pub mod sack;
pub(crate) mod seq;
pub(crate) mod spare;
pub mod time;

pub use conn::{Cause, Handle};
pub use endpoint::{Config, ConfigError, Endpoint, SegmentSummary, Shutdown, Status, Transition};
pub use error::{Error, Result};
pub use faults::Faults;
pub use isn::{os_secret, siphash24};
pub use packet::{DropReason, Flags, Segment, Stats, TcpOptions};
pub use sack::SackBlocks;
pub use seq::SeqNum;
pub use time::Instant;

#[cfg(test)]
mod tests;
