//! RACK-TLP (RFC 8985): loss detection by the time segments were sent
//! rather than by counting duplicate acknowledgments, and the tail loss
//! probe.
//!
//! RACK ("recent acknowledgment", RFC 8985 §6) remembers when every
//! outstanding segment was last sent. Once a segment sent later than some
//! other one has been delivered (cumulatively acknowledged or SACKed), the
//! earlier one is taken as lost if it is still undelivered a reordering
//! window after it should have arrived, that is one RACK.rtt plus
//! RACK.reo_wnd after it was sent (§6.2 step 5). This needs no DupThresh
//! of later segments, so it also finds a lost retransmission, a loss
//! among the last few segments of a window and a loss while cwnd is a
//! segment or two: the losses that RFC 6675 alone leaves to the
//! retransmission timer. A segment not yet past its window arms the
//! reordering timer for the rest (§6.2 step 6).
//!
//! TLP (RFC 8985 §7) covers a tail: when the last segments of a flight
//! are lost (or the ACKs of all of them), nothing sent after them can be
//! delivered and RACK has nothing to go by. A probe timeout (PTO) of
//! about two round trips after the last transmission sends the highest
//! segment again (also during SACK recovery; `conn/rack_tlp.rs` says why
//! both differ from §7.2 and §7.3); its acknowledgment, with the SACK
//! blocks it carries, lets RACK find what was lost instead of the
//! retransmission timer, and a D-SACK of it says it was redundant (§7.4).
//!
//! This module holds the per-segment records and the rules; the
//! connection (`conn/rack_tlp.rs`) feeds it and acts on what it finds.
//! Without timestamps or D-SACK, an RTT sample of a retransmitted segment
//! that is shorter than the minimum RTT is taken to acknowledge the
//! original and ignored (§6.2 step 2), and the reordering window does not
//! grow on D-SACKs (`RACK.reo_wnd_mult` stays 1, §6.2 step 4).

use crate::seq::SeqNum;
use crate::time::Instant;
use std::collections::VecDeque;

/// DupThresh (RFC 8985 §6.2 step 4 counts SACKed segments against it).
const DUP_THRESH: u32 = 3;

/// When no RTT is known yet, the probe timeout is one second
/// (RFC 8985 §7.2).
const PTO_WITHOUT_SRTT_US: u64 = 1_000_000;

/// One data segment sent and not yet cumulatively acknowledged, with the
/// per-segment variables of RFC 8985 §5.2.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Sent {
    seq: SeqNum,
    end: SeqNum,
    /// Segment.xmit_ts: when it was last sent.
    xmit: Instant,
    /// The place of that transmission in the order of all transmissions.
    order: u64,
    /// Sent more than once.
    rexmit: bool,
    /// Segment.sacked.
    sacked: bool,
    /// Segment.lost: taken as lost and not sent again since.
    lost: bool,
}

/// The RACK state of one connection (RFC 8985 §5.2) and its TLP episode
/// (§7.1).
#[derive(Clone, Debug, Default)]
pub struct Rack {
    /// Outstanding data segments in sequence order.
    segs: VecDeque<Sent>,
    /// Which transmission the most recently sent segment delivered so far
    /// was (RACK.xmit_ts and RACK.end_seq, see [`Rack::sent`]).
    newest: Option<u64>,
    /// Transmissions so far.
    sends: u64,
    /// RACK.rtt: the RTT of that segment, µs.
    rtt_us: u64,
    /// RACK.min_RTT, µs.
    min_rtt_us: Option<u64>,
    /// RACK.fack: the highest end of any delivered segment.
    fack: Option<SeqNum>,
    /// RACK.reordering_seen.
    reordering_seen: bool,
    /// RACK.segs_sacked: segments currently SACKed.
    segs_sacked: u32,
    /// TLP.end_seq and TLP.is_retrans: the probe of the episode under way.
    pub tlp: Option<(SeqNum, bool)>,
}

/// What one round of loss detection found (RFC 8985 §6.2 steps 5–6).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Detected {
    /// Newly lost ranges, lowest first, adjacent segments merged.
    pub lost: Vec<(SeqNum, SeqNum)>,
    /// Segments newly marked lost.
    pub segments: u32,
    /// The reordering timer: µs until the windows of all undelivered
    /// segments sent before RACK's segment have run out.
    pub timeout_us: Option<u64>,
}

impl Rack {
    /// `[seq, end)` went out at `now`. New data (beyond every record) gets
    /// a record; records the range overlaps are retransmissions: their
    /// send time moves to `now` and they are no longer lost
    /// (RFC 8985 §6.1). Every transmission is also numbered: RFC 8985's
    /// `RACK_sent_after` orders by send time and, for one instant, by
    /// sequence number, which puts a retransmission before the higher
    /// segments sent earlier at the same instant (a virtual clock or a
    /// coarse one has many such instants); the number is the send order
    /// itself.
    pub fn sent(&mut self, seq: SeqNum, end: SeqNum, now: Instant) {
        if !seq.lt(end) {
            return;
        }
        self.sends += 1;
        let order = self.sends;
        let top = self.segs.back().map(|s| s.end);
        let new_from = top.map_or(seq, |t| t.max(seq));
        for s in self.overlapping(seq, end.min(new_from)) {
            s.xmit = now;
            s.order = order;
            s.rexmit = true;
            s.lost = false;
        }
        if new_from.lt(end) {
            self.segs.push_back(Sent {
                seq: new_from,
                end,
                xmit: now,
                order,
                rexmit: false,
                sacked: false,
                lost: false,
            });
        }
    }

    /// The records overlapping `[l, r)`.
    fn overlapping(&mut self, l: SeqNum, r: SeqNum) -> impl Iterator<Item = &mut Sent> + '_ {
        let from = self.segs.partition_point(|s| s.end.le(l));
        self.segs.range_mut(from..).take_while(move |s| s.seq.lt(r))
    }

    /// A segment was delivered at `now` (RFC 8985 §6.2 steps 2 and 3):
    /// RACK.rtt, RACK.xmit_ts and RACK.end_seq follow the most recently
    /// sent delivered segment, and delivery below RACK.fack of a segment
    /// sent once is reordering.
    fn delivered(&mut self, s: Sent, now: Instant) {
        let rtt = now.as_micros().saturating_sub(s.xmit.as_micros());
        if s.rexmit && self.min_rtt_us.is_some_and(|m| rtt < m) {
            // Sooner than any round trip: this acknowledges an earlier
            // transmission, not the retransmission.
            return;
        }
        if !s.rexmit {
            if self.fack.is_some_and(|f| s.end.lt(f)) {
                self.reordering_seen = true;
            }
            self.fack = Some(self.fack.map_or(s.end, |f| f.max(s.end)));
        }
        self.min_rtt_us = Some(self.min_rtt_us.map_or(rtt, |m| m.min(rtt)));
        if self.newest.is_none_or(|o| s.order > o) {
            self.newest = Some(s.order);
            self.rtt_us = rtt;
        }
    }

    /// An acknowledgment at `now`: everything below `una` is delivered, and
    /// so is every record a block of `blocks` covers whole. Returns whether
    /// any record was newly delivered.
    pub fn on_ack(&mut self, now: Instant, una: SeqNum, blocks: &[(SeqNum, SeqNum)]) -> bool {
        let mut any = false;
        while let Some(&s) = self.segs.front() {
            if s.end.gt(una) {
                if s.seq.lt(una) {
                    // Partly acknowledged: the rest stays outstanding.
                    if let Some(f) = self.segs.front_mut() {
                        f.seq = una;
                    }
                }
                break;
            }
            self.segs.pop_front();
            if s.sacked {
                self.segs_sacked = self.segs_sacked.saturating_sub(1);
            } else {
                self.delivered(s, now);
                any = true;
            }
        }
        for &(l, r) in blocks {
            let newly: Vec<Sent> = self
                .overlapping(l, r)
                .filter(|s| !s.sacked && l.le(s.seq) && s.end.le(r))
                .map(|s| {
                    s.sacked = true;
                    *s
                })
                .collect();
            for s in newly {
                self.segs_sacked = self.segs_sacked.saturating_add(1);
                self.delivered(s, now);
                any = true;
            }
        }
        any
    }

    /// RACK.reo_wnd (RFC 8985 §6.2 step 4): none while no reordering has
    /// been seen and the sender is in recovery or DupThresh segments are
    /// SACKed; otherwise a quarter of the minimum RTT, at most SRTT.
    pub fn reo_wnd_us(&self, in_recovery: bool, srtt_us: Option<u64>) -> u64 {
        if !self.reordering_seen && (in_recovery || self.segs_sacked >= DUP_THRESH) {
            return 0;
        }
        let quarter = self.min_rtt_us.unwrap_or(0) / 4;
        srtt_us.map_or(quarter, |s| quarter.min(s))
    }

    /// Loss detection (RFC 8985 §6.2 step 5): every undelivered segment
    /// sent before RACK's segment whose RACK.rtt + RACK.reo_wnd since it
    /// was sent have passed is lost; the others set the reordering timer
    /// to when the last of them would be (step 6).
    pub fn detect(&mut self, now: Instant, reo_wnd_us: u64) -> Detected {
        let mut found = Detected::default();
        let Some(newest) = self.newest else {
            return found;
        };
        let wait = self.rtt_us.saturating_add(reo_wnd_us);
        let now_us = now.as_micros();
        for s in self.segs.iter_mut() {
            if s.sacked || s.lost || s.order >= newest {
                continue;
            }
            let due = s.xmit.as_micros().saturating_add(wait);
            if due <= now_us {
                s.lost = true;
                found.segments += 1;
                match found.lost.last_mut() {
                    Some((_, r)) if *r == s.seq => *r = s.end,
                    _ => found.lost.push((s.seq, s.end)),
                }
            } else {
                let left = due - now_us;
                found.timeout_us = Some(found.timeout_us.map_or(left, |t| t.max(left)));
            }
        }
        found
    }

    /// The octets of `[SND.UNA, nxt)` believed in the network: those of
    /// every segment neither SACKed nor marked lost (its latest
    /// transmission is), and anything sent beyond the records (a FIN).
    /// Unlike `SetPipe()` of RFC 6675 §4, which counts an octet twice once
    /// it is retransmitted unless `IsLost` holds for it, a segment
    /// retransmitted because it was lost counts once, as RACK's marking
    /// says its first transmission is gone (RFC 8985 §6.1 leaves the pipe
    /// to the recovery algorithm; this is how Linux counts it).
    pub fn pipe(&self, nxt: SeqNum) -> u32 {
        let top = self.segs.back().map_or(nxt, |s| s.end);
        self.segs
            .iter()
            .filter(|s| !s.sacked && !s.lost)
            .map(|s| s.end.since(s.seq))
            .fold(nxt.since(top), u32::saturating_add)
    }

    /// After a retransmission timeout everything is sent again from the
    /// oldest segment on (RFC 5681 §3.1), so no record stays marked lost
    /// and the probe episode ends (RFC 8985 §7.4).
    pub fn on_timeout(&mut self) {
        for s in self.segs.iter_mut() {
            s.lost = false;
        }
        self.tlp = None;
    }
}

/// The probe timeout of RFC 8985 §7.2, µs: two smoothed round trips
/// (one second before any RTT sample), plus the peer's worst-case delayed
/// ACK `delack_us` when only one segment is in flight (its ACK may be
/// held back), and never later than the retransmission timeout `rto_us`.
pub fn pto_us(srtt_us: Option<u64>, flight: u32, smss: u32, delack_us: u64, rto_us: u64) -> u64 {
    let mut pto = srtt_us.map_or(PTO_WITHOUT_SRTT_US, |s| s.saturating_mul(2));
    if flight <= smss {
        pto = pto.saturating_add(delack_us);
    }
    pto.min(rto_us)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(n: u32) -> SeqNum {
        SeqNum(n)
    }

    fn t(ms: u64) -> Instant {
        Instant::from_millis(ms)
    }

    /// Ten segments of 100 octets, `[0, 1000)`, sent 1 ms apart.
    fn ten() -> Rack {
        let mut r = Rack::default();
        for i in 0..10u32 {
            r.sent(s(i * 100), s(i * 100 + 100), t(u64::from(i)));
        }
        r
    }

    #[test]
    fn a_segment_sent_before_a_delivered_one_is_lost_after_rtt_and_window() {
        let mut r = ten();
        // The first segment arrives after 10 ms: RACK.rtt = 10 ms.
        assert!(r.on_ack(t(10), s(100), &[]));
        // The third is SACKed at 12 ms: the second was sent before it.
        assert!(r.on_ack(t(12), s(100), &[(s(200), s(300))]));
        // Not in recovery, one SACKed segment: window min_rtt / 4 = 2.5 ms.
        let reo = r.reo_wnd_us(false, Some(10_000));
        assert_eq!(reo, 2_500);
        // Sent at 1 ms, due at 1 + 10 + 2.5 = 13.5 ms.
        let d = r.detect(t(12), reo);
        assert!(d.lost.is_empty());
        assert_eq!(d.timeout_us, Some(1_500));
        let d = r.detect(t(14), reo);
        assert_eq!(d.lost, vec![(s(100), s(200))]);
        assert_eq!(d.segments, 1);
        // Segments sent after the third are not judged, and nothing is
        // found twice.
        assert_eq!(r.detect(t(50), reo), Detected::default());
    }

    #[test]
    fn a_lost_retransmission_is_found_once_later_data_is_delivered() {
        let mut r = ten();
        r.on_ack(t(10), s(100), &[(s(200), s(500))]);
        let found = r.detect(t(14), r.reo_wnd_us(true, Some(10_000)));
        assert_eq!(found.lost, vec![(s(100), s(200))]);
        // Retransmitted at 20 ms; new data at 21 ms.
        r.sent(s(100), s(200), t(20));
        r.sent(s(1000), s(1100), t(21));
        // The new data arrives, the retransmission does not.
        r.on_ack(t(31), s(100), &[(s(1000), s(1100))]);
        let found = r.detect(t(31), r.reo_wnd_us(true, Some(10_000)));
        assert!(found.lost.contains(&(s(100), s(200))));
    }

    #[test]
    fn a_fast_ack_of_a_retransmission_is_not_an_rtt_sample() {
        let mut r = ten();
        r.on_ack(t(10), s(100), &[]);
        r.sent(s(100), s(200), t(11));
        // Acknowledged 1 ms after the retransmission, below min_RTT 10 ms.
        r.on_ack(t(12), s(200), &[]);
        assert_eq!(r.rtt_us, 10_000);
        assert_eq!(r.newest, Some(1));
    }

    #[test]
    fn a_retransmission_at_the_same_instant_comes_after_what_was_sent_before() {
        let mut r = Rack::default();
        for i in 0..4u32 {
            r.sent(s(i * 100), s(i * 100 + 100), t(0));
        }
        // At one instant: [0, 100) is sent again; [300, 400), sent before
        // it, is SACKed. The retransmission is not judged by it.
        r.sent(s(0), s(100), t(0));
        r.on_ack(t(0), s(0), &[(s(300), s(400))]);
        let d = r.detect(t(0), 0);
        assert_eq!(d.lost, vec![(s(100), s(300))]);
    }

    #[test]
    fn reordering_widens_the_window_in_recovery() {
        let mut r = ten();
        r.on_ack(t(10), s(100), &[(s(300), s(600))]);
        assert_eq!(r.reo_wnd_us(true, Some(10_000)), 0);
        // The second segment arrives late although it was sent once.
        r.on_ack(t(16), s(200), &[(s(300), s(600))]);
        assert!(r.reordering_seen);
        // min_RTT is 5 ms (the sixth segment, SACKed at 10 ms).
        assert_eq!(r.reo_wnd_us(true, Some(10_000)), 1_250);
        assert_eq!(r.reo_wnd_us(true, Some(1_000)), 1_000);
    }

    #[test]
    fn the_probe_timeout_is_two_rtts_plus_a_delayed_ack_for_one_segment() {
        assert_eq!(pto_us(Some(10_000), 5000, 1000, 200_000, 1_000_000), 20_000);
        assert_eq!(
            pto_us(Some(10_000), 1000, 1000, 200_000, 1_000_000),
            220_000
        );
        assert_eq!(pto_us(None, 5000, 1000, 200_000, 3_000_000), 1_000_000);
        // Never after the RTO.
        assert_eq!(pto_us(Some(400_000), 5000, 1000, 200_000, 500_000), 500_000);
    }

    #[test]
    fn the_pipe_leaves_out_sacked_and_lost_segments_and_counts_a_resend_once() {
        let mut r = ten();
        r.on_ack(t(10), s(100), &[(s(200), s(500))]);
        r.detect(t(14), 0);
        // [100, 200) lost, [200, 500) SACKed, [500, 1000) in flight, and
        // a FIN at 1000.
        assert_eq!(r.pipe(s(1001)), 501);
        r.sent(s(100), s(200), t(15));
        assert_eq!(r.pipe(s(1001)), 601);
    }

    #[test]
    fn partial_acks_trim_and_sacked_records_leave_the_count() {
        let mut r = ten();
        r.on_ack(t(10), s(50), &[(s(200), s(400))]);
        assert_eq!(r.segs.front().map(|x| x.seq), Some(s(50)));
        assert_eq!(r.segs_sacked, 2);
        r.on_ack(t(11), s(400), &[]);
        assert_eq!(r.segs_sacked, 0);
        assert_eq!(r.segs.front().map(|x| x.seq), Some(s(400)));
    }
}
