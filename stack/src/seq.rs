//! Sequence numbers: 32-bit values compared modulo 2^32 (RFC 9293 §3.4).

use std::fmt;
use std::ops::{Add, AddAssign, Sub};

/// A TCP sequence or acknowledgment number. Arithmetic wraps; comparisons
/// are the modular ones of RFC 9293 §3.4 (`a < b` when `b - a`, taken as a
/// signed 32-bit distance, is positive), so they are only meaningful for
/// numbers less than 2^31 apart.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct SeqNum(pub u32);

impl SeqNum {
    /// The raw value.
    pub const fn get(self) -> u32 {
        self.0
    }

    /// Signed distance from `other` to `self` (`self - other`).
    pub fn diff(self, other: SeqNum) -> i32 {
        self.0.wrapping_sub(other.0) as i32
    }

    /// `self < other` modulo 2^32.
    pub fn lt(self, other: SeqNum) -> bool {
        self.diff(other) < 0
    }

    /// `self <= other` modulo 2^32.
    pub fn le(self, other: SeqNum) -> bool {
        self.diff(other) <= 0
    }

    /// `self > other` modulo 2^32.
    pub fn gt(self, other: SeqNum) -> bool {
        self.diff(other) > 0
    }

    /// `self >= other` modulo 2^32.
    pub fn ge(self, other: SeqNum) -> bool {
        self.diff(other) >= 0
    }

    /// `lo <= self < hi` modulo 2^32 (an empty range when `hi <= lo`).
    pub fn in_range(self, lo: SeqNum, hi: SeqNum) -> bool {
        self.ge(lo) && self.lt(hi)
    }

    /// The later of two numbers.
    pub fn max(self, other: SeqNum) -> SeqNum {
        if self.ge(other) {
            self
        } else {
            other
        }
    }

    /// The earlier of two numbers.
    pub fn min(self, other: SeqNum) -> SeqNum {
        if self.le(other) {
            self
        } else {
            other
        }
    }

    /// Octets from `earlier` up to `self`, or 0 when `self` is not after it.
    pub fn since(self, earlier: SeqNum) -> u32 {
        let d = self.diff(earlier);
        if d > 0 {
            d as u32
        } else {
            0
        }
    }
}

impl Add<u32> for SeqNum {
    type Output = SeqNum;
    fn add(self, n: u32) -> SeqNum {
        SeqNum(self.0.wrapping_add(n))
    }
}

impl AddAssign<u32> for SeqNum {
    fn add_assign(&mut self, n: u32) {
        self.0 = self.0.wrapping_add(n);
    }
}

impl Sub<u32> for SeqNum {
    type Output = SeqNum;
    fn sub(self, n: u32) -> SeqNum {
        SeqNum(self.0.wrapping_sub(n))
    }
}

impl fmt::Display for SeqNum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comparisons_wrap() {
        let a = SeqNum(u32::MAX - 1);
        let b = a + 4;
        assert_eq!(b, SeqNum(2));
        assert!(a.lt(b) && b.gt(a) && a.le(a) && a.ge(a));
        assert!(!b.lt(a));
        assert_eq!(b.diff(a), 4);
        assert_eq!(a.diff(b), -4);
        assert_eq!(b.since(a), 4);
        assert_eq!(a.since(b), 0);
        assert!(SeqNum(0).in_range(a, b));
        assert!(!b.in_range(a, b));
        assert_eq!(a.max(b), b);
        assert_eq!(a.min(b), a);
        assert_eq!(SeqNum(1) - 3, SeqNum(u32::MAX - 1));
        let mut c = a;
        c += 3;
        assert_eq!(c, SeqNum(1));
    }
}
