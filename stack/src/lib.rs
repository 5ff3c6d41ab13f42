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
//! Modules: [`seq`] (RFC 9293 §3.4 sequence arithmetic), [`packet`]
//! (parsing/building, drop counters), [`isn`] (RFC 6528), [`rto`]
//! (RFC 6298), [`congestion`] (RFC 5681 with RFC 6582), [`reassembly`] (out-of-order queue), [`conn`] (the state
//! machine of RFC 9293 §3.10), [`endpoint`] (demultiplexing, timers, the
//! socket-shaped API).

pub mod checksum;
pub mod congestion;
pub mod conn;
pub mod endpoint;
pub mod error;
pub mod faults;
pub mod isn;
pub mod packet;
pub mod reassembly;
pub mod ring;
pub mod rto;
pub mod seq;
pub mod time;

pub use conn::{Cause, Handle};
pub use endpoint::{Config, ConfigError, Endpoint, SegmentSummary, Shutdown, Status, Transition};
pub use error::{Error, Result};
pub use faults::Faults;
pub use packet::{DropReason, Flags, Segment, Stats, TcpOptions};
pub use seq::SeqNum;
pub use time::Instant;

#[cfg(test)]
mod tests;
