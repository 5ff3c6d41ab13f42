//! The sender's side of SACK: the scoreboard and the loss recovery of
//! RFC 6675 (a conservative SACK-based recovery that obsoletes RFC 3517).
//!
//! The scoreboard (RFC 6675 §3) keeps what the peer has selectively
//! acknowledged above SND.UNA. From it come the routines of RFC 6675 §4:
//! `IsLost` (an octet counts as lost once DupThresh discontiguous blocks or
//! more than (DupThresh − 1) · SMSS octets were SACKed above it), `SetPipe`
//! (the octets still believed in the network) and `NextSeg` (what to send
//! next). Entry into recovery, the per-ACK steps and the exit are driven
//! from the connection (`conn.rs`) as RFC 6675 §5 lays them out.
//!
//! Sequence numbers are those of the connection; `high_rxt` is kept as one
//! past the highest octet retransmitted (RFC 6675's HighRxt + 1) and the
//! recovery point as SND.NXT at entry (HighData + 1), so ranges stay
//! half-open.

use crate::sack::SackBlocks;
use crate::seq::SeqNum;

/// DupThresh of RFC 6675 §2 (and RFC 5681 §3.2): three.
pub const DUP_THRESH: u32 = 3;

/// What `NextSeg` (RFC 6675 §4) chose.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Next {
    /// Retransmit `[seq, end)`: a lost hole (rule 1), an unSACKed range
    /// not yet taken as lost when there is no new data (rule 3), or the
    /// rescue retransmission (rule 4, which leaves HighRxt alone).
    Retransmit {
        /// First octet.
        seq: SeqNum,
        /// One past the last octet (at most one SMSS after `seq`).
        end: SeqNum,
        /// Rule 4.
        rescue: bool,
    },
    /// Send new data (rule 2).
    NewData,
    /// Nothing may be sent.
    Nothing,
}

/// The scoreboard and the recovery variables of one connection.
#[derive(Clone, Debug, Default)]
pub struct SackSender {
    /// SACKed ranges above SND.UNA, sorted and disjoint.
    sacked: Vec<(SeqNum, SeqNum)>,
    /// Loss recovery is under way (RFC 6675 §5 steps 4–5 until (A)).
    pub in_recovery: bool,
    /// SND.NXT when recovery began (RecoveryPoint + 1).
    pub recovery_point: SeqNum,
    /// One past the highest octet retransmitted in this recovery.
    pub high_rxt: SeqNum,
    /// RescueRxt of rule 4: the recovery point of the episode whose rescue
    /// retransmission was made.
    rescue_rxt: Option<SeqNum>,
    /// Retransmissions of this recovery not yet SACKed or acknowledged:
    /// the range and SND.NXT when it was sent.
    in_flight_rxt: Vec<(SeqNum, SeqNum, SeqNum)>,
    /// Ranges taken as lost by a test other than `IsLost` (a retransmission
    /// found lost again, or RACK's time-based test, RFC 8985 §6.2) and not
    /// sent again yet: `NextSeg()` sends them first, `SetPipe()` leaves
    /// them out.
    relost: Vec<(SeqNum, SeqNum)>,
}

impl SackSender {
    /// Forgets every SACKed range (after a retransmission timeout the
    /// receiver may have dropped what it reported, RFC 2018 §8), and ends
    /// any recovery (RFC 6675 §5.1).
    pub fn reset(&mut self) {
        self.sacked.clear();
        self.in_recovery = false;
        self.in_flight_rxt.clear();
        self.relost.clear();
    }

    /// Nothing is SACKed.
    pub fn is_empty(&self) -> bool {
        self.sacked.is_empty()
    }

    /// The `Update()` of RFC 6675 §4: records the blocks of an ACK whose
    /// cumulative point is `una` (a block reaching beyond `nxt` is
    /// ignored, as is anything below `una`). Returns whether any octet not
    /// SACKed before is SACKed now.
    pub fn update(&mut self, una: SeqNum, nxt: SeqNum, blocks: &SackBlocks) -> bool {
        self.sacked.retain_mut(|(l, r)| {
            *l = l.max(una);
            l.lt(*r)
        });
        let mut new = false;
        for &(l, r) in blocks.as_slice() {
            // A block reaching past SND.NXT names data never sent: the
            // whole block is ignored. Below SND.UNA only the part above
            // counts.
            let l = l.max(una);
            if r.gt(nxt) || !l.lt(r) {
                continue;
            }
            new |= self.insert(l, r);
        }
        if new {
            self.find_lost_retransmissions(una);
        }
        new
    }

    /// A retransmission is taken as lost when data first sent after it
    /// has been SACKed while it has not: segments sent later arrived, so it
    /// should have too. RFC 6675 alone notices a lost retransmission only
    /// by the retransmission timer; this is the time-order test of RACK
    /// (RFC 8985 §6.2) reduced to send order, as Linux applied it before
    /// RACK (`tcp_mark_lost_retrans`). The range goes to the front of
    /// `NextSeg()`.
    fn find_lost_retransmissions(&mut self, una: SeqNum) {
        let highest = match self.sacked.last() {
            Some(&(_, r)) => r,
            None => return,
        };
        let sacked = &self.sacked;
        let covered =
            |l: SeqNum, r: SeqNum| !l.lt(r) || sacked.iter().any(|(bl, br)| bl.le(l) && br.ge(r));
        let mut lost = Vec::new();
        self.in_flight_rxt.retain(|&(l, r, sent_nxt)| {
            let l = l.max(una);
            if covered(l, r) {
                return false;
            }
            if highest.gt(sent_nxt) {
                lost.push((l, r));
                return false;
            }
            true
        });
        self.relost.extend(lost);
    }

    /// `[l, r)` is lost by RACK's test (RFC 8985 §6.2 step 5): it goes to
    /// the front of `NextSeg()` and out of the pipe, unless a range
    /// already marked covers it.
    pub fn mark_lost(&mut self, l: SeqNum, r: SeqNum) {
        if !self.relost.iter().any(|&(a, b)| a.le(l) && r.le(b)) {
            self.relost.push((l, r));
        }
    }

    /// Octets of `[l, r)` marked lost and not yet sent again.
    fn marked_lost_in(&self, l: SeqNum, r: SeqNum) -> u32 {
        self.relost
            .iter()
            .map(|&(a, b)| b.min(r).since(a.max(l)))
            .fold(0u32, u32::saturating_add)
    }

    /// Merges `[l, r)` into the sorted list; returns whether it added
    /// octets.
    fn insert(&mut self, l: SeqNum, r: SeqNum) -> bool {
        let before = self.total();
        let pos = self
            .sacked
            .iter()
            .position(|(bl, _)| bl.gt(l))
            .unwrap_or(self.sacked.len());
        self.sacked.insert(pos, (l, r));
        let mut merged: Vec<(SeqNum, SeqNum)> = Vec::with_capacity(self.sacked.len());
        for &(bl, br) in &self.sacked {
            match merged.last_mut() {
                Some((_, mr)) if bl.le(*mr) => *mr = mr.max(br),
                _ => merged.push((bl, br)),
            }
        }
        self.sacked = merged;
        self.total() > before
    }

    /// Octets SACKed.
    fn total(&self) -> u64 {
        self.sacked
            .iter()
            .map(|(l, r)| u64::from(r.since(*l)))
            .sum()
    }

    /// `IsLost(seq)` of RFC 6675 §4: DupThresh or more discontiguous
    /// SACKed blocks above `seq`, or more than (DupThresh − 1) · SMSS
    /// SACKed octets above it.
    pub fn is_lost(&self, seq: SeqNum, smss: u32) -> bool {
        let (mut blocks, mut octets) = (0u32, 0u64);
        for &(l, r) in self.sacked.iter().rev() {
            if r.le(seq) {
                break;
            }
            blocks += 1;
            octets += u64::from(r.since(l.max(seq + 1)));
        }
        blocks >= DUP_THRESH || octets > u64::from((DUP_THRESH - 1) * smss)
    }

    /// The unSACKed ranges of `[una, nxt)`, lowest first.
    fn holes(&self, una: SeqNum, nxt: SeqNum) -> impl Iterator<Item = (SeqNum, SeqNum)> + '_ {
        let mut at = una;
        let mut blocks = self.sacked.iter();
        std::iter::from_fn(move || loop {
            if !at.lt(nxt) {
                return None;
            }
            match blocks.next() {
                Some(&(l, r)) => {
                    let hole = (at, l.min(nxt));
                    at = at.max(r);
                    if hole.0.lt(hole.1) {
                        return Some(hole);
                    }
                }
                None => {
                    let hole = (at, nxt);
                    at = nxt;
                    return Some(hole);
                }
            }
        })
    }

    /// One past the first unSACKed range of `[una, nxt)` (`nxt` when all
    /// of it is unSACKed).
    pub fn first_hole_end(&self, una: SeqNum, nxt: SeqNum) -> SeqNum {
        self.holes(una, nxt).next().map_or(nxt, |(_, r)| r)
    }

    /// `SetPipe()` of RFC 6675 §4: over the unSACKed octets of
    /// `[una, nxt)`, one for each not yet taken as lost, and one more for
    /// each already retransmitted. An unSACKed hole has the same blocks
    /// above every octet, so `IsLost` is asked once a hole.
    pub fn pipe(&self, una: SeqNum, nxt: SeqNum, smss: u32) -> u32 {
        let mut pipe = 0u32;
        for (l, r) in self.holes(una, nxt) {
            if !self.is_lost(l, smss) {
                let lost = self.marked_lost_in(l, r);
                pipe = pipe.saturating_add(r.since(l).saturating_sub(lost));
            }
            let rxt_end = r.min(self.high_rxt);
            pipe = pipe.saturating_add(rxt_end.since(l));
        }
        pipe
    }

    /// `NextSeg()` of RFC 6675 §4 with `new_data` saying whether unsent
    /// data fits the peer's window (rule 2).
    pub fn next_seg(&mut self, una: SeqNum, nxt: SeqNum, smss: u32, new_data: bool) -> Next {
        // First, a retransmission found lost again (see
        // `find_lost_retransmissions`), as far as it is still unSACKed.
        while let Some(&(l, r)) = self.relost.first() {
            let l = l.max(una);
            let hole = self.holes(l, r).next();
            match hole {
                Some((hl, hr)) => {
                    let end = hr.min(hl + smss);
                    if let Some(first) = self.relost.first_mut() {
                        first.0 = end;
                    }
                    return Next::Retransmit {
                        seq: hl,
                        end,
                        rescue: false,
                    };
                }
                None => {
                    self.relost.remove(0);
                }
            }
        }
        let from = self.high_rxt.max(una);
        // Rule 1: the first unSACKed octet above HighRxt that is lost.
        let mut not_lost = None;
        for (l, r) in self.holes(from, nxt) {
            if self.is_lost(l, smss) {
                let end = r.min(l + smss);
                return Next::Retransmit {
                    seq: l,
                    end,
                    rescue: false,
                };
            }
            // Only holes below some SACKed octet qualify for rule 3.
            if not_lost.is_none() && self.sacked.last().is_some_and(|(_, e)| e.gt(l)) {
                not_lost = Some((l, r.min(l + smss)));
            }
        }
        // Rule 2: new data.
        if new_data {
            return Next::NewData;
        }
        // Rule 3: an unSACKed octet above HighRxt, not yet lost.
        if let Some((seq, end)) = not_lost {
            return Next::Retransmit {
                seq,
                end,
                rescue: false,
            };
        }
        // Rule 4: one rescue retransmission per recovery, of the segment
        // holding the highest unSACKed octet.
        if self.in_recovery && self.rescue_rxt.is_none_or(|r| una.gt(r)) {
            if let Some((l, r)) = self.holes(una, nxt).last() {
                self.rescue_rxt = Some(self.recovery_point);
                let seq = l.max(r - smss);
                return Next::Retransmit {
                    seq,
                    end: r,
                    rescue: true,
                };
            }
        }
        Next::Nothing
    }

    /// Recovery starts (RFC 6675 §5 step 4.1): the recovery point is
    /// SND.NXT, nothing is retransmitted yet.
    pub fn enter(&mut self, una: SeqNum, nxt: SeqNum) {
        self.in_recovery = true;
        self.recovery_point = nxt;
        self.high_rxt = una;
        self.in_flight_rxt.clear();
        self.relost.clear();
    }

    /// A cumulative ACK reached `una`; ends recovery once it covers the
    /// recovery point (RFC 6675 §5 (A)). Returns whether recovery ended.
    pub fn on_cumulative(&mut self, una: SeqNum) -> bool {
        if self.in_recovery && una.ge(self.recovery_point) {
            self.in_recovery = false;
            self.in_flight_rxt.clear();
            self.relost.clear();
            return true;
        }
        false
    }

    /// The sequence numbers `[seq, end)` were retransmitted (RFC 6675 §5
    /// step C.2: HighRxt follows them unless rule 4 sent them); they are
    /// watched for a second loss.
    /// `nxt` is SND.NXT at the time.
    pub fn retransmitted(&mut self, seq: SeqNum, end: SeqNum, nxt: SeqNum, rescue: bool) {
        if !rescue {
            self.high_rxt = self.high_rxt.max(end);
        }
        if self.in_recovery {
            self.in_flight_rxt.push((seq, end, nxt));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMSS: u32 = 100;

    fn s(n: u32) -> SeqNum {
        SeqNum(n)
    }

    fn blocks(list: &[(u32, u32)]) -> SackBlocks {
        let mut b = SackBlocks::EMPTY;
        for &(l, r) in list {
            b.push(s(l), s(r));
        }
        b
    }

    #[test]
    fn update_merges_trims_and_reports_new_octets() {
        let mut sb = SackSender::default();
        assert!(sb.update(s(0), s(1000), &blocks(&[(200, 300)])));
        assert!(!sb.update(s(0), s(1000), &blocks(&[(200, 300)])));
        assert!(sb.update(s(0), s(1000), &blocks(&[(300, 400), (600, 700)])));
        assert_eq!(sb.sacked, vec![(s(200), s(400)), (s(600), s(700))]);
        // Beyond SND.NXT or reneged below SND.UNA: ignored.
        assert!(!sb.update(s(0), s(1000), &blocks(&[(900, 1100)])));
        sb.update(s(350), s(1000), &SackBlocks::EMPTY);
        assert_eq!(sb.sacked, vec![(s(350), s(400)), (s(600), s(700))]);
    }

    #[test]
    fn lost_after_three_blocks_or_more_than_two_segments() {
        let mut sb = SackBlocks::EMPTY;
        sb.push(s(100), s(200));
        let mut board = SackSender::default();
        board.update(s(0), s(1000), &sb);
        assert!(!board.is_lost(s(0), SMSS));
        board.update(s(0), s(1000), &blocks(&[(200, 301)]));
        // 201 octets above 0: more than two segments of 100.
        assert!(board.is_lost(s(0), SMSS));
        let mut small = SackSender::default();
        small.update(s(0), s(1000), &blocks(&[(10, 20), (30, 40), (50, 60)]));
        assert!(small.is_lost(s(0), SMSS));
        assert!(!small.is_lost(s(25), SMSS));
    }

    #[test]
    fn pipe_counts_holes_not_lost_and_retransmissions() {
        let mut sb = SackSender::default();
        // Sent [0, 1000); SACKed [100, 400): the hole [0, 100) is lost,
        // [400, 1000) is not.
        sb.update(s(0), s(1000), &blocks(&[(100, 400)]));
        assert_eq!(sb.pipe(s(0), s(1000), SMSS), 600);
        sb.enter(s(0), s(1000));
        sb.retransmitted(s(0), s(100), s(1000), false);
        assert_eq!(sb.pipe(s(0), s(1000), SMSS), 700);
    }

    #[test]
    fn next_seg_walks_the_lost_holes_then_new_data_then_rules_three_and_four() {
        let mut sb = SackSender::default();
        sb.update(s(0), s(1000), &blocks(&[(100, 400), (500, 600)]));
        sb.enter(s(0), s(1000));
        let next = sb.next_seg(s(0), s(1000), SMSS, true);
        assert_eq!(
            next,
            Next::Retransmit {
                seq: s(0),
                end: s(100),
                rescue: false
            }
        );
        sb.retransmitted(s(0), s(100), s(1000), false);
        // [400, 500) has only 100 octets SACKed above: not lost. New data
        // comes first.
        assert_eq!(sb.next_seg(s(0), s(1000), SMSS, true), Next::NewData);
        assert_eq!(
            sb.next_seg(s(0), s(1000), SMSS, false),
            Next::Retransmit {
                seq: s(400),
                end: s(500),
                rescue: false
            }
        );
        sb.retransmitted(s(400), s(500), s(1000), false);
        // Nothing below a SACKed octet is left: the rescue covers the
        // highest unSACKed octet, once.
        assert_eq!(
            sb.next_seg(s(0), s(1000), SMSS, false),
            Next::Retransmit {
                seq: s(900),
                end: s(1000),
                rescue: true
            }
        );
        assert_eq!(sb.next_seg(s(0), s(1000), SMSS, false), Next::Nothing);
        assert!(!sb.on_cumulative(s(999)));
        assert!(sb.on_cumulative(s(1000)));
    }

    #[test]
    fn a_retransmission_overtaken_by_later_data_is_sent_again() {
        let mut sb = SackSender::default();
        sb.update(s(0), s(1000), &blocks(&[(100, 400)]));
        sb.enter(s(0), s(1000));
        sb.retransmitted(s(0), s(100), s(1000), false);
        // New data [1000, 1100) is sent after the retransmission.
        assert_eq!(sb.next_seg(s(0), s(1100), SMSS, true), Next::NewData);
        // A SACK of data sent before the retransmission says nothing.
        sb.update(s(0), s(1100), &blocks(&[(400, 500)]));
        assert_eq!(sb.next_seg(s(0), s(1100), SMSS, true), Next::NewData);
        // The new data arrived, the retransmission did not: send it again.
        sb.update(s(0), s(1100), &blocks(&[(1000, 1100)]));
        let again = Next::Retransmit {
            seq: s(0),
            end: s(100),
            rescue: false,
        };
        assert_eq!(sb.next_seg(s(0), s(1100), SMSS, true), again);
        // Once.
        assert_eq!(sb.next_seg(s(0), s(1100), SMSS, true), Next::NewData);
    }
}
