//! The SACK option's blocks (RFC 2018 §3) and the receiver's side of
//! selective acknowledgment (RFC 2018 §4): which blocks an ACK reports and
//! in what order.
//!
//! A block names a run of octets held beyond RCV.NXT by its left edge (the
//! first octet) and right edge (one past the last). Without timestamps the
//! 40 octets of option space take four blocks (RFC 2018 §3).

use crate::seq::SeqNum;

/// The most blocks one option carries (RFC 2018 §3: 40 octets of option
/// space hold 2 + 4 × 8).
pub const MAX_BLOCKS: usize = 4;

/// Up to [`MAX_BLOCKS`] SACK blocks as `(left edge, right edge)`, in the
/// order they travel on the wire.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SackBlocks {
    blocks: [(SeqNum, SeqNum); MAX_BLOCKS],
    len: u8,
}

impl SackBlocks {
    /// No blocks.
    pub const EMPTY: SackBlocks = SackBlocks {
        blocks: [(SeqNum(0), SeqNum(0)); MAX_BLOCKS],
        len: 0,
    };

    /// Appends a block; returns false when all four places are taken.
    pub fn push(&mut self, left: SeqNum, right: SeqNum) -> bool {
        match self.blocks.get_mut(usize::from(self.len)) {
            Some(slot) => {
                *slot = (left, right);
                self.len += 1;
                true
            }
            None => false,
        }
    }

    /// Number of blocks.
    pub fn len(&self) -> usize {
        usize::from(self.len)
    }

    /// No blocks at all.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The blocks, first on the wire first.
    pub fn as_slice(&self) -> &[(SeqNum, SeqNum)] {
        self.blocks.get(..self.len()).unwrap_or(&[])
    }

    /// The duplicate block of a D-SACK (RFC 2883 §4): the first block when
    /// it lies at or below the cumulative acknowledgment `ack`, or inside
    /// the second block; `None` when the option reports no duplicate.
    pub fn dsack(&self, ack: SeqNum) -> Option<(SeqNum, SeqNum)> {
        let blocks = self.as_slice();
        let &(l, r) = blocks.first()?;
        let below = r.le(ack);
        let inside = blocks.get(1).is_some_and(|&(l2, r2)| l2.le(l) && r.le(r2));
        (l.lt(r) && (below || inside)).then_some((l, r))
    }

    /// Octets the option takes, padding included: two NOPs, kind, length
    /// and eight octets a block; nothing without blocks.
    pub fn encoded_len(&self) -> usize {
        if self.is_empty() {
            0
        } else {
            4 + 8 * self.len()
        }
    }
}

/// The receiver's memory of where out-of-order data arrived last, so that
/// the first block of every ACK names the run holding the segment that
/// triggered it and the following blocks repeat the most recently reported
/// ones (RFC 2018 §4): a block lost with one ACK still reaches the sender
/// in the next ones.
#[derive(Clone, Debug, Default)]
pub struct Recent {
    /// Left edges of recently arrived out-of-order segments, newest first.
    seqs: [Option<SeqNum>; MAX_BLOCKS],
}

impl Recent {
    /// An out-of-order segment starting at `seq` was queued.
    pub fn arrived(&mut self, seq: SeqNum) {
        let mut next = Some(seq);
        for slot in &mut self.seqs {
            let old = std::mem::replace(slot, next);
            if old == Some(seq) {
                return;
            }
            next = old;
        }
    }

    /// Forgets everything (the queue was emptied).
    pub fn clear(&mut self) {
        self.seqs = [None; MAX_BLOCKS];
    }

    /// The blocks to report for the held `runs` (sorted, disjoint, all
    /// beyond RCV.NXT): first the runs holding the most recent arrivals,
    /// newest first, then the other runs from the lowest up, four at most.
    pub fn blocks(&self, runs: impl Iterator<Item = (SeqNum, SeqNum)> + Clone) -> SackBlocks {
        let mut out = SackBlocks::EMPTY;
        let holding = |s: SeqNum| runs.clone().find(|(l, r)| s.in_range(*l, *r));
        for run in self.seqs.iter().flatten().filter_map(|s| holding(*s)) {
            if !out.as_slice().contains(&run) {
                out.push(run.0, run.1);
            }
        }
        for run in runs {
            if out.len() == MAX_BLOCKS {
                break;
            }
            if !out.as_slice().contains(&run) {
                out.push(run.0, run.1);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(n: u32) -> SeqNum {
        SeqNum(n)
    }

    #[test]
    fn a_dsack_is_a_first_block_below_the_ack_or_inside_the_second() {
        let mut below = SackBlocks::EMPTY;
        below.push(s(100), s(200));
        assert_eq!(below.dsack(s(200)), Some((s(100), s(200))));
        assert_eq!(below.dsack(s(150)), None);
        let mut inside = SackBlocks::EMPTY;
        inside.push(s(300), s(400));
        inside.push(s(300), s(500));
        assert_eq!(inside.dsack(s(100)), Some((s(300), s(400))));
        let mut plain = SackBlocks::EMPTY;
        plain.push(s(300), s(400));
        plain.push(s(500), s(600));
        assert_eq!(plain.dsack(s(100)), None);
        assert_eq!(SackBlocks::EMPTY.dsack(s(100)), None);
    }

    #[test]
    fn at_most_four_blocks() {
        let mut b = SackBlocks::EMPTY;
        for i in 0..4 {
            assert!(b.push(s(i * 10), s(i * 10 + 5)));
        }
        assert!(!b.push(s(100), s(105)));
        assert_eq!(b.len(), 4);
        assert_eq!(b.encoded_len(), 36);
        assert_eq!(SackBlocks::EMPTY.encoded_len(), 0);
    }

    #[test]
    fn the_newest_arrival_comes_first_then_recent_ones() {
        let runs = [(s(200), s(300)), (s(400), s(500)), (s(600), s(700))];
        let mut r = Recent::default();
        r.arrived(s(400));
        r.arrived(s(650));
        let b = r.blocks(runs.iter().copied());
        assert_eq!(
            b.as_slice(),
            &[(s(600), s(700)), (s(400), s(500)), (s(200), s(300))]
        );
        // A repeat arrival moves its run to the front without duplicating.
        r.arrived(s(400));
        let b = r.blocks(runs.iter().copied());
        assert_eq!(b.as_slice()[..2], [(s(400), s(500)), (s(600), s(700))]);
        assert_eq!(b.len(), 3);
    }

    #[test]
    fn arrivals_no_longer_held_are_skipped() {
        let mut r = Recent::default();
        r.arrived(s(100));
        r.arrived(s(900));
        let runs = [(s(850), s(950))];
        assert_eq!(r.blocks(runs.iter().copied()).as_slice(), &runs);
        r.clear();
        assert!(r.blocks(std::iter::empty()).is_empty());
    }
}
