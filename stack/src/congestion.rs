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
    pub phase: Phase,
    /// `recover` of RFC 6582: SND.NXT when the last recovery began. A
    /// third duplicate acknowledgment at or below it is left over from
    /// that episode and starts no new one (§3.2 step 1).
    pub recover: Option<SeqNum>,
    /// FlightSize at the first duplicate acknowledgment, before Limited
    /// Transmit sent anything (RFC 5681 §3.2 step 2 leaves that out).
    flight_at_first_dup: u32,
    /// Congestion avoidance counts acknowledged octets (RFC 3465 §2.1,
    /// what RFC 5681 §3.1 recommends) instead of applying equation 3 per
    /// ACK; set for connections that use SACK (see [`Congestion::grow`]).
    pub byte_counting: bool,
    /// Octets acknowledged in congestion avoidance since cwnd last grew
    /// (`bytes_acked` of RFC 3465 §2.1).
    bytes_acked: u32,
}

/// Where the sender is between losses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Slow start or congestion avoidance, by cwnd against ssthresh.
    Open,
    /// Fast recovery after a fast retransmit (RFC 5681 §3.2, RFC 6582).
    FastRecovery,
    /// After a retransmission timeout, until everything sent before it is
    /// acknowledged: each acknowledgment below `recover` exposes the next
    /// lost segment, retransmitted at once rather than one per timeout
    /// (RFC 5681 §3.1 after equation 4; RFC 6582 §3.2 step 5).
    AfterTimeout,
    /// SACK-based loss recovery (RFC 6675 §5): cwnd stays at the halved
    /// value and the pipe estimate, not the flight, limits sending
    /// (`crate::recovery`).
    SackRecovery,
}

/// What the sender must do after an acknowledgment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AckAction {
    /// Nothing beyond sending what the windows now allow.
    None,
    /// Retransmit the oldest unacknowledged segment (third duplicate, or an
    /// acknowledgment that leaves a hole below `recover`).
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
            phase: Phase::Open,
            recover: None,
            flight_at_first_dup: 0,
            byte_counting: false,
            bytes_acked: 0,
        }
    }

    /// How much may be outstanding after `dupacks` duplicate
    /// acknowledgments in a row: cwnd, plus one segment for each of the
    /// first two duplicates while no recovery is under way (RFC 3042 §2).
    pub fn send_window(&self, dupacks: u32, smss: u32) -> u32 {
        match (self.phase, dupacks) {
            (Phase::Open, 1 | 2) => self.cwnd.saturating_add(dupacks * smss),
            _ => self.cwnd,
        }
    }

    /// ssthresh after a loss: half of what is in flight, at least two
    /// segments (RFC 5681 equation 4).
    fn halve(&mut self, flight: u32, smss: u32) {
        self.ssthresh = (flight / 2).max(2 * smss);
        // A reduced cwnd counts afresh (RFC 3465 §2.1 resets on a timeout).
        self.bytes_acked = 0;
    }

    /// Slow start (RFC 5681 equation 2) below ssthresh, congestion
    /// avoidance above: equation 3 per ACK, or with `byte_counting` one
    /// SMSS each time a whole cwnd of octets has been acknowledged, the
    /// way RFC 5681 §3.1 recommends (RFC 3465 §2.1). Equation 3 adds
    /// SMSS·SMSS/cwnd per ACK, so a receiver that acknowledges a whole
    /// flight with one ACK (delayed or coalesced ACKs: Linux answers a
    /// burst read at once with one) holds cwnd to that much growth per
    /// round trip instead of one SMSS. Byte counting is used with SACK
    /// only: SACK recovery (RFC 6675) repairs several losses of a window
    /// in one round trip, whereas NewReno without SACK repairs one per
    /// round trip (RFC 6582) and meets the larger windows' multiple
    /// losses with timeouts (in memory at 1 % loss: 5.8 -> 1.7 MiB/s
    /// with the profile's 1 s RTO; with SACK 6.1 -> 8.5).
    fn grow(&mut self, acked: u32, smss: u32) {
        if self.cwnd < self.ssthresh {
            self.cwnd = self.cwnd.saturating_add(acked.min(smss));
        } else if self.byte_counting {
            self.bytes_acked = self.bytes_acked.saturating_add(acked);
            if self.bytes_acked >= self.cwnd {
                self.bytes_acked -= self.cwnd;
                self.cwnd = self.cwnd.saturating_add(smss);
            }
        } else {
            let inc = (u64::from(smss) * u64::from(smss) / u64::from(self.cwnd.max(1))).max(1);
            self.cwnd = self.cwnd.saturating_add(inc as u32);
        }
    }

    /// An acknowledgment of `acked` new data octets with `flight` octets
    /// still outstanding afterwards; `ack` is its number.
    pub fn on_new_ack(&mut self, ack: SeqNum, acked: u32, flight: u32, smss: u32) -> AckAction {
        let below_recover = self.recover.is_some_and(|r| ack.lt(r));
        match self.phase {
            Phase::FastRecovery if below_recover => {
                // Partial acknowledgment (RFC 6582 §3.2 step 4): retransmit
                // the next hole, deflate by what was acknowledged, add back
                // one segment.
                self.cwnd = self.cwnd.saturating_sub(acked);
                if acked >= smss {
                    self.cwnd += smss;
                }
                self.cwnd = self.cwnd.max(smss);
                AckAction::Retransmit
            }
            Phase::FastRecovery => {
                // Full acknowledgment (step 3, first option).
                self.cwnd = self.ssthresh.min(flight.max(smss) + smss);
                self.phase = Phase::Open;
                AckAction::None
            }
            Phase::AfterTimeout => {
                self.grow(acked, smss);
                if below_recover {
                    AckAction::Retransmit
                } else {
                    self.phase = Phase::Open;
                    AckAction::None
                }
            }
            Phase::Open => {
                self.grow(acked, smss);
                AckAction::None
            }
            Phase::SackRecovery => {
                // RFC 6675 §5 (A): a cumulative ACK at or beyond the
                // recovery point ends recovery; cwnd grows again from
                // the next ACK on.
                if !below_recover {
                    self.phase = Phase::Open;
                }
                AckAction::None
            }
        }
    }

    /// SACK-based recovery starts (RFC 6675 §5 steps 4.1–4.2): the
    /// recovery point is SND.NXT, ssthresh and cwnd both fall to half the
    /// flight (RFC 5681 equation 4, at least two segments).
    pub fn enter_sack_recovery(&mut self, flight: u32, snd_nxt: SeqNum, smss: u32) {
        self.halve(flight, smss);
        self.cwnd = self.ssthresh;
        self.recover = Some(snd_nxt);
        self.phase = Phase::SackRecovery;
    }

    /// One loss was repaired outside any recovery (a tail loss probe that
    /// retransmitted, RFC 8985 §7.4.2): ssthresh and cwnd fall to half of
    /// cwnd, as on entering recovery (RFC 5681 equation 4).
    pub fn reduce_once(&mut self, smss: u32) {
        self.halve(self.cwnd, smss);
        self.cwnd = self.ssthresh;
    }

    /// Whether a loss detected at cumulative point `ack` may start a new
    /// recovery: no loss yet, or `ack` is at or beyond the point of the
    /// last one (RFC 6675 §5; RFC 6582 §3.2 step 1 for NewReno).
    pub fn may_enter_sack_recovery(&self, ack: SeqNum) -> bool {
        self.phase == Phase::Open && self.recover.is_none_or(|r| ack.ge(r))
    }

    /// The `count`-th duplicate acknowledgment in a row of `ack`, with
    /// `flight` octets outstanding and `snd_nxt` the next new sequence
    /// number.
    pub fn on_dup_ack(
        &mut self,
        count: u32,
        ack: SeqNum,
        flight: u32,
        snd_nxt: SeqNum,
        smss: u32,
    ) -> AckAction {
        match self.phase {
            Phase::Open if count == 1 => {
                self.flight_at_first_dup = flight;
                AckAction::None
            }
            Phase::Open if count == 3 && self.recover.is_none_or(|r| ack.gt(r)) => {
                // Fast retransmit, then fast recovery (RFC 5681 §3.2 steps
                // 2-3; RFC 6582 §3.2 steps 1-2 record `recover`).
                self.halve(self.flight_at_first_dup.min(flight), smss);
                self.cwnd = self.ssthresh.saturating_add(3 * smss);
                self.recover = Some(snd_nxt);
                self.phase = Phase::FastRecovery;
                AckAction::Retransmit
            }
            Phase::FastRecovery => {
                // Each further duplicate: one segment has left the network
                // (RFC 5681 §3.2 step 4).
                self.cwnd = self.cwnd.saturating_add(smss);
                AckAction::None
            }
            _ => AckAction::None,
        }
    }

    /// The retransmission timer expired with `flight` octets outstanding
    /// and `snd_nxt` the highest sequence number sent: ssthresh halves,
    /// cwnd falls to the loss window of one segment (RFC 5681 §3.1
    /// equation 4 and after), and what was sent before is recovered
    /// ([`Phase::AfterTimeout`]).
    pub fn on_timeout(&mut self, flight: u32, snd_nxt: SeqNum, smss: u32) {
        self.halve(flight, smss);
        self.cwnd = smss.max(1);
        self.recover = Some(snd_nxt);
        self.phase = Phase::AfterTimeout;
    }

    /// The SYN or SYN-ACK timed out: the window for the first data is one
    /// segment (RFC 5681 §3.1); no data was in flight, so ssthresh stays.
    pub fn on_syn_timeout(&mut self, smss: u32) {
        self.cwnd = smss.max(1);
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
    fn byte_counting_grows_one_segment_per_window_however_it_is_acked() {
        let mut c = Congestion::new(SMSS, false);
        c.byte_counting = true;
        c.ssthresh = 4000;
        c.cwnd = 4000;
        for i in 0..4 {
            c.on_new_ack(SeqNum(1000 * (i + 1)), SMSS, 3000, SMSS);
        }
        assert_eq!(c.cwnd, 5000);
        let mut c = Congestion::new(SMSS, false);
        c.byte_counting = true;
        c.ssthresh = 4000;
        c.cwnd = 4000;
        // One ACK a round trip, each for the whole window.
        c.on_new_ack(SeqNum(4000), 4000, 0, SMSS);
        assert_eq!(c.cwnd, 5000);
        c.on_new_ack(SeqNum(9000), 5000, 0, SMSS);
        assert_eq!(c.cwnd, 6000);
    }

    #[test]
    fn third_duplicate_starts_fast_recovery_and_a_full_ack_ends_it() {
        let mut c = Congestion::new(SMSS, false);
        c.cwnd = 10_000;
        let una = SeqNum(1000);
        let dup =
            |c: &mut Congestion, n, flight, nxt| c.on_dup_ack(n, una, flight, SeqNum(nxt), SMSS);
        assert_eq!(dup(&mut c, 1, 10_000, 11_000), AckAction::None);
        // Limited Transmit sent two more segments: not counted in ssthresh.
        assert_eq!(dup(&mut c, 2, 11_000, 12_000), AckAction::None);
        assert_eq!(dup(&mut c, 3, 12_000, 13_000), AckAction::Retransmit);
        assert_eq!((c.ssthresh, c.cwnd), (5000, 8000));
        assert_eq!(dup(&mut c, 4, 12_000, 13_000), AckAction::None);
        assert_eq!(c.cwnd, 9000);
        // A partial ACK: retransmit the next hole, deflate.
        assert_eq!(
            c.on_new_ack(SeqNum(5000), 4000, 8000, SMSS),
            AckAction::Retransmit
        );
        assert_eq!(c.cwnd, 6000);
        // Duplicates after a partial ACK count from one again: each still
        // inflates cwnd.
        assert_eq!(
            c.on_dup_ack(1, SeqNum(5000), 8000, SeqNum(13_000), SMSS),
            AckAction::None
        );
        assert_eq!(c.cwnd, 7000);
        // The full ACK: back to ssthresh at most.
        assert_eq!(c.on_new_ack(SeqNum(13_000), 8000, 0, SMSS), AckAction::None);
        assert_eq!((c.cwnd, c.phase), (2000, Phase::Open));
        // Duplicates of an ACK at or below the old `recover` start nothing.
        for n in 1..=3 {
            assert_eq!(
                c.on_dup_ack(n, SeqNum(13_000), 4000, SeqNum(17_000), SMSS),
                AckAction::None
            );
        }
        assert_eq!(c.phase, Phase::Open);
    }

    #[test]
    fn limited_transmit_allows_a_segment_per_early_duplicate() {
        let mut c = Congestion::new(SMSS, false);
        assert_eq!(c.send_window(0, SMSS), 4000);
        assert_eq!(c.send_window(1, SMSS), 5000);
        assert_eq!(c.send_window(2, SMSS), 6000);
        assert_eq!(c.send_window(3, SMSS), 4000);
        c.phase = Phase::FastRecovery;
        assert_eq!(c.send_window(1, SMSS), 4000);
    }

    #[test]
    fn timeout_falls_to_one_segment_and_recovers_what_was_sent() {
        let mut c = Congestion::new(SMSS, false);
        c.cwnd = 20_000;
        c.on_timeout(8000, SeqNum(9000), SMSS);
        assert_eq!((c.cwnd, c.ssthresh), (1000, 4000));
        assert_eq!(c.phase, Phase::AfterTimeout);
        // Each ACK below the old SND.NXT uncovers the next lost segment.
        assert_eq!(
            c.on_new_ack(SeqNum(2000), 1000, 7000, SMSS),
            AckAction::Retransmit
        );
        assert_eq!(c.cwnd, 2000);
        assert_eq!(c.on_new_ack(SeqNum(9000), 1000, 0, SMSS), AckAction::None);
        assert_eq!(c.phase, Phase::Open);
        c.on_timeout(1000, SeqNum(9000), SMSS);
        assert_eq!(c.ssthresh, 2000);
    }

    #[test]
    fn sack_recovery_halves_once_and_ends_at_the_recovery_point() {
        let mut c = Congestion::new(SMSS, false);
        c.cwnd = 10_000;
        assert!(c.may_enter_sack_recovery(SeqNum(0)));
        c.enter_sack_recovery(10_000, SeqNum(11_000), SMSS);
        assert_eq!(
            (c.cwnd, c.ssthresh, c.phase),
            (5000, 5000, Phase::SackRecovery)
        );
        assert!(!c.may_enter_sack_recovery(SeqNum(5000)));
        // Partial ACKs and duplicates leave cwnd alone.
        assert_eq!(
            c.on_new_ack(SeqNum(5000), 4000, 6000, SMSS),
            AckAction::None
        );
        c.on_dup_ack(1, SeqNum(5000), 6000, SeqNum(11_000), SMSS);
        assert_eq!((c.cwnd, c.phase), (5000, Phase::SackRecovery));
        c.on_new_ack(SeqNum(11_000), 6000, 0, SMSS);
        assert_eq!((c.cwnd, c.phase), (5000, Phase::Open));
        assert!(c.may_enter_sack_recovery(SeqNum(11_000)));
    }

    #[test]
    fn a_lost_syn_shrinks_the_first_window_only() {
        let mut c = Congestion::new(SMSS, false);
        c.on_syn_timeout(SMSS);
        assert_eq!((c.cwnd, c.ssthresh, c.phase), (1000, u32::MAX, Phase::Open));
    }
}
