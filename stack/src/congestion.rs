//! Congestion control, which RFC 9293 §3.8.2 requires (MUST-19): the
//! congestion window of RFC 5681 (slow start and congestion avoidance §3.1,
//! fast retransmit and fast recovery §3.2) with the NewReno treatment of
//! partial acknowledgments (RFC 6582 §3.2), so that several losses in one
//! window are repaired one per round trip instead of one per timeout, and
//! Limited Transmit (RFC 3042, which RFC 5681 §3.2 recommends), so that a
//! small window still produces the three duplicates fast retransmit needs.
//!
//! All quantities are octets; `smss` is the sender's MSS.

use crate::seq::SeqNum;

/// The congestion state of one connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Congestion {
    /// cwnd: how much may be in flight besides the peer's window.
    pub cwnd: u32,
    /// ssthresh: the boundary between slow start and congestion avoidance;
    /// arbitrarily high at first (RFC 5681 §3.1).
    pub ssthresh: u32,
    /// During fast recovery, `recover` of RFC 6582: SND.NXT when it began.
    pub recover: Option<SeqNum>,
}

/// What the sender must do after an acknowledgment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AckAction {
    /// Nothing beyond sending what the windows now allow.
    None,
    /// Retransmit the oldest unacknowledged segment (third duplicate, or a
    /// partial acknowledgment during recovery).
    Retransmit,
}

impl Congestion {
    /// The initial window of RFC 5681 §3.1 (equation 1 in its table form):
    /// 2, 3 or 4 segments by the size of SMSS; one segment when the SYN or
    /// SYN-ACK had to be retransmitted.
    pub fn new(smss: u32, syn_retransmitted: bool) -> Congestion {
        let smss = smss.max(1);
        let segments = if syn_retransmitted {
            1
        } else if smss > 2190 {
            2
        } else if smss > 1095 {
            3
        } else {
            4
        };
        Congestion {
            cwnd: segments * smss,
            ssthresh: u32::MAX,
            recover: None,
        }
    }

    /// How much may be outstanding after `dupacks` duplicate
    /// acknowledgments in a row: cwnd, plus one segment for each of the
    /// first two duplicates outside recovery (RFC 3042 §2).
    pub fn send_window(&self, dupacks: u32, smss: u32) -> u32 {
        match (self.recover, dupacks) {
            (None, 1 | 2) => self.cwnd.saturating_add(dupacks * smss),
            _ => self.cwnd,
        }
    }

    /// ssthresh after a loss: half of what is in flight, at least two
    /// segments (RFC 5681 equation 4).
    fn halve(&mut self, flight: u32, smss: u32) {
        self.ssthresh = (flight / 2).max(2 * smss);
    }

    /// An acknowledgment of `acked` new octets with `flight` octets still
    /// outstanding afterwards; `ack` is its number.
    pub fn on_new_ack(&mut self, ack: SeqNum, acked: u32, flight: u32, smss: u32) -> AckAction {
        if let Some(recover) = self.recover {
            if ack.ge(recover) {
                // Full acknowledgment (RFC 6582 §3.2 step 3, first option).
                self.cwnd = self.ssthresh.min(flight.max(smss) + smss);
                self.recover = None;
                return AckAction::None;
            }
            // Partial acknowledgment (step 4): retransmit the next hole,
            // deflate by what was acknowledged, add back one segment.
            self.cwnd = self.cwnd.saturating_sub(acked);
            if acked >= smss {
                self.cwnd += smss;
            }
            self.cwnd = self.cwnd.max(smss);
            return AckAction::Retransmit;
        }
        if self.cwnd < self.ssthresh {
            // Slow start (RFC 5681 equation 2).
            self.cwnd = self.cwnd.saturating_add(acked.min(smss));
        } else {
            // Congestion avoidance (RFC 5681 equation 3).
            let inc = (u64::from(smss) * u64::from(smss) / u64::from(self.cwnd.max(1))).max(1);
            self.cwnd = self.cwnd.saturating_add(inc as u32);
        }
        AckAction::None
    }

    /// The `count`-th duplicate acknowledgment in a row, with `flight`
    /// octets outstanding and `snd_nxt` the next new sequence number.
    pub fn on_dup_ack(&mut self, count: u32, flight: u32, snd_nxt: SeqNum, smss: u32) -> AckAction {
        match (count, self.recover) {
            (3, None) => {
                // Fast retransmit, then fast recovery (RFC 5681 §3.2 steps
                // 2-3; RFC 6582 §3.2 step 1 records `recover`).
                self.halve(flight, smss);
                self.cwnd = self.ssthresh.saturating_add(3 * smss);
                self.recover = Some(snd_nxt);
                AckAction::Retransmit
            }
            (c, Some(_)) if c > 3 => {
                // Each further duplicate: one segment has left the network
                // (RFC 5681 §3.2 step 4).
                self.cwnd = self.cwnd.saturating_add(smss);
                AckAction::None
            }
            _ => AckAction::None,
        }
    }

    /// The retransmission timer expired with `flight` octets outstanding:
    /// ssthresh halves and cwnd falls to the loss window of one segment
    /// (RFC 5681 §3.1 equation 4 and after); recovery ends.
    pub fn on_timeout(&mut self, flight: u32, smss: u32) {
        self.halve(flight, smss);
        self.cwnd = smss.max(1);
        self.recover = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMSS: u32 = 1000;

    #[test]
    fn initial_window_follows_the_mss_table() {
        assert_eq!(Congestion::new(1460, false).cwnd, 4380);
        assert_eq!(Congestion::new(536, false).cwnd, 2144);
        assert_eq!(Congestion::new(4000, false).cwnd, 8000);
        assert_eq!(Congestion::new(1460, true).cwnd, 1460);
        assert_eq!(Congestion::new(1460, false).ssthresh, u32::MAX);
    }

    #[test]
    fn slow_start_grows_by_at_most_one_segment_per_ack() {
        let mut c = Congestion::new(SMSS, false);
        c.on_new_ack(SeqNum(1000), 3000, 0, SMSS);
        assert_eq!(c.cwnd, 5000);
        c.on_new_ack(SeqNum(1500), 500, 0, SMSS);
        assert_eq!(c.cwnd, 5500);
    }

    #[test]
    fn congestion_avoidance_grows_by_about_one_segment_per_window() {
        let mut c = Congestion::new(SMSS, false);
        c.ssthresh = 4000;
        c.cwnd = 4000;
        for i in 0..4 {
            c.on_new_ack(SeqNum(1000 * (i + 1)), SMSS, 3000, SMSS);
        }
        // 4000 + 1e6/4000 = 4250, + 235 = 4485, + 222 = 4707, + 212 = 4919.
        assert_eq!(c.cwnd, 4919);
    }

    #[test]
    fn third_duplicate_starts_fast_recovery_and_a_full_ack_ends_it() {
        let mut c = Congestion::new(SMSS, false);
        c.cwnd = 10_000;
        assert_eq!(
            c.on_dup_ack(1, 10_000, SeqNum(11_000), SMSS),
            AckAction::None
        );
        assert_eq!(
            c.on_dup_ack(2, 10_000, SeqNum(11_000), SMSS),
            AckAction::None
        );
        assert_eq!(
            c.on_dup_ack(3, 10_000, SeqNum(11_000), SMSS),
            AckAction::Retransmit
        );
        assert_eq!((c.ssthresh, c.cwnd), (5000, 8000));
        assert_eq!(
            c.on_dup_ack(4, 10_000, SeqNum(11_000), SMSS),
            AckAction::None
        );
        assert_eq!(c.cwnd, 9000);
        // A partial ACK: retransmit the next hole, deflate.
        assert_eq!(
            c.on_new_ack(SeqNum(5000), 4000, 6000, SMSS),
            AckAction::Retransmit
        );
        assert_eq!(c.cwnd, 6000);
        // The full ACK: back to ssthresh at most.
        assert_eq!(c.on_new_ack(SeqNum(11_000), 6000, 0, SMSS), AckAction::None);
        assert_eq!((c.cwnd, c.recover), (2000, None));
    }

    #[test]
    fn limited_transmit_allows_a_segment_per_early_duplicate() {
        let mut c = Congestion::new(SMSS, false);
        assert_eq!(c.send_window(0, SMSS), 4000);
        assert_eq!(c.send_window(1, SMSS), 5000);
        assert_eq!(c.send_window(2, SMSS), 6000);
        assert_eq!(c.send_window(3, SMSS), 4000);
        c.recover = Some(SeqNum(1));
        assert_eq!(c.send_window(1, SMSS), 4000);
    }

    #[test]
    fn timeout_falls_to_one_segment() {
        let mut c = Congestion::new(SMSS, false);
        c.cwnd = 20_000;
        c.recover = Some(SeqNum(5));
        c.on_timeout(8000, SMSS);
        assert_eq!((c.cwnd, c.ssthresh, c.recover), (1000, 4000, None));
        c.on_timeout(1000, SMSS);
        assert_eq!(c.ssthresh, 2000);
    }
}
