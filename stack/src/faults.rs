//! Seeded bugs for testing the wire-level checks of `tcpconform timers`.
//!
//! Every switch is off by default and the defaults never change: a stack
//! built with [`Faults::default`] is the stack. Tests turn one switch on to
//! show that a check that sees only packets catches the departure.

/// Deliberate departures from the RFCs, one per switch (all off by default).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Faults {
    /// SRTT gain α = 1/4 instead of 1/8 (RFC 6298 §2.3).
    pub srtt_gain_quarter: bool,
    /// RTTVAR gain β = 1/8 instead of 1/4 (RFC 6298 §2.3).
    pub rttvar_gain_eighth: bool,
    /// RTO = SRTT + 2·RTTVAR instead of K = 4 (RFC 6298 §2.3).
    pub rto_k_two: bool,
    /// The first valid sample after a back-off updates SRTT and RTTVAR but
    /// keeps the backed-off RTO (RFC 6298 §5.7 and Karn's rule want it
    /// recomputed).
    pub keep_backoff_after_sample: bool,
    /// In-order data is acknowledged only by the delayed-ACK timer, never
    /// at the second full-sized segment (RFC 9293 §3.8.6.3).
    pub no_ack_every_second_segment: bool,
    /// Every connection gets the same ISN (RFC 6528 §3, RFC 9293 §3.4.1).
    pub fixed_isn: bool,
    /// Data beyond RCV.NXT+RCV.WND is accepted instead of trimmed
    /// (RFC 9293 §3.10.7.4).
    pub accept_beyond_window: bool,
}
