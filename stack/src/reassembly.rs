//! Out-of-order segment queue (RFC 9293 §3.10.7.4 seventh check: segments
//! beyond RCV.NXT but inside the window may be held until the gap before
//! them is filled). Memory is bounded by the receive window: only octets
//! inside [RCV.NXT, RCV.NXT+RCV.WND) are stored, and never twice.

use crate::seq::SeqNum;

/// Held octets as disjoint runs, sorted by sequence number.
#[derive(Clone, Debug, Default)]
pub struct Reassembly {
    runs: Vec<(SeqNum, Vec<u8>)>,
    bytes: usize,
}

impl Reassembly {
    pub fn new() -> Self {
        Self::default()
    }

    /// Octets held.
    pub fn len(&self) -> usize {
        self.bytes
    }

    pub fn is_empty(&self) -> bool {
        self.runs.is_empty()
    }

    /// The held runs as `(first octet, one past the last)`, lowest first
    /// (the SACK blocks of RFC 2018 §4 are made from them).
    pub fn runs_iter(&self) -> impl Iterator<Item = (SeqNum, SeqNum)> + Clone + '_ {
        self.runs.iter().map(|(s, d)| (*s, *s + d.len() as u32))
    }

    /// Number of disjoint runs held.
    #[cfg(test)]
    pub fn runs(&self) -> usize {
        self.runs.len()
    }

    /// Stores the parts of `data` (starting at `seq`) that lie inside
    /// `[rcv_nxt, rcv_nxt + wnd)` and are not held yet.
    pub fn insert(&mut self, rcv_nxt: SeqNum, wnd: u32, seq: SeqNum, data: &[u8]) {
        let end_wnd = rcv_nxt + wnd;
        let mut start = seq.max(rcv_nxt);
        let end = (seq + data.len() as u32).min(end_wnd);
        if !start.lt(end) {
            return;
        }
        // Walk the existing runs (sorted), inserting the uncovered pieces.
        let mut pieces: Vec<(SeqNum, Vec<u8>)> = Vec::new();
        for (s, d) in &self.runs {
            let e = *s + d.len() as u32;
            if !start.lt(end) {
                break;
            }
            if e.le(start) {
                continue;
            }
            if s.gt(start) {
                let piece_end = s.min(end);
                pieces.push((start, slice(data, seq, start, piece_end)));
            }
            start = start.max(e);
        }
        if start.lt(end) {
            pieces.push((start, slice(data, seq, start, end)));
        }
        for (s, d) in pieces {
            if d.is_empty() {
                continue;
            }
            self.bytes = self.bytes.saturating_add(d.len());
            let pos = self
                .runs
                .iter()
                .position(|(rs, _)| rs.diff(rcv_nxt) > s.diff(rcv_nxt))
                .unwrap_or(self.runs.len());
            self.runs.insert(pos, (s, d));
        }
        self.coalesce();
    }

    /// Merges runs that touch.
    fn coalesce(&mut self) {
        let mut out: Vec<(SeqNum, Vec<u8>)> = Vec::with_capacity(self.runs.len());
        for (s, d) in self.runs.drain(..) {
            if let Some((ls, ld)) = out.last_mut() {
                if *ls + ld.len() as u32 == s {
                    ld.extend_from_slice(&d);
                    continue;
                }
            }
            out.push((s, d));
        }
        self.runs = out;
    }

    /// Removes and returns the octets that now continue at `rcv_nxt`;
    /// runs entirely below it are discarded.
    pub fn pop_contiguous(&mut self, rcv_nxt: SeqNum) -> Vec<u8> {
        let mut out = Vec::new();
        let mut next = rcv_nxt;
        while let Some((s, d)) = self.runs.first() {
            let e = *s + d.len() as u32;
            if s.gt(next) {
                break;
            }
            if e.gt(next) {
                let skip = next.since(*s) as usize;
                out.extend_from_slice(d.get(skip..).unwrap_or(&[]));
                next = e;
            }
            self.bytes = self.bytes.saturating_sub(d.len());
            self.runs.remove(0);
        }
        out
    }

    pub fn clear(&mut self) {
        self.runs.clear();
        self.bytes = 0;
    }
}

/// The octets of `data` (which starts at `base`) in `[from, to)`.
fn slice(data: &[u8], base: SeqNum, from: SeqNum, to: SeqNum) -> Vec<u8> {
    let a = from.since(base) as usize;
    let b = to.since(base) as usize;
    data.get(a..b.min(data.len()))
        .map(|s| s.to_vec())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fills_gaps_in_order_and_bounds_memory() {
        let mut r = Reassembly::new();
        let nxt = SeqNum(u32::MAX - 2);
        r.insert(nxt, 10, nxt + 4, b"efg");
        r.insert(nxt, 10, nxt + 2, b"cdef");
        assert_eq!(r.len(), 5);
        // Beyond the window: trimmed.
        r.insert(nxt, 10, nxt + 8, b"ijklmn");
        assert_eq!(r.len(), 7);
        assert!(r.pop_contiguous(nxt).is_empty());
        let got = r.pop_contiguous(nxt + 2);
        assert_eq!(got, b"cdefg");
        assert_eq!(r.len(), 2);
        assert_eq!(r.pop_contiguous(nxt + 9), b"j");
        assert!(r.is_empty());
        assert_eq!(r.len(), 0);
    }

    #[test]
    fn duplicates_are_stored_once() {
        let mut r = Reassembly::new();
        let nxt = SeqNum(100);
        for _ in 0..10 {
            r.insert(nxt, 1000, SeqNum(200), &[1; 50]);
            r.insert(nxt, 1000, SeqNum(190), &[2; 70]);
        }
        assert_eq!(r.len(), 70);
        assert_eq!(r.runs(), 1);
        let d = r.pop_contiguous(SeqNum(190));
        assert_eq!(d.len(), 70);
        assert_eq!(&d[..10], &[2; 10]);
        assert_eq!(&d[10..60], &[1; 50]);
    }
}
