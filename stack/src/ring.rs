//! Whole-slice copies in and out of the byte queues that hold the send and
//! receive buffers (a `VecDeque<u8>` is two slices; copying through
//! `as_slices` avoids a per-octet iterator on the data path).

use std::collections::VecDeque;

/// The `len` octets starting `off` octets into `q` (fewer if `q` is
/// shorter), as the pieces they occupy in its two slices.
pub fn parts(q: &VecDeque<u8>, off: usize, len: usize) -> [&[u8]; 2] {
    let (a, b) = q.as_slices();
    let end = off.saturating_add(len).min(q.len());
    let first = a.get(off.min(a.len())..end.min(a.len())).unwrap_or(&[]);
    let (from, to) = (off.saturating_sub(a.len()), end.saturating_sub(a.len()));
    [first, b.get(from..to).unwrap_or(&[])]
}

/// Where RECEIVE puts what it takes from the receive queue: a caller's
/// buffer (a copy), or a closure that reads the queue in place.
pub trait Sink {
    /// A request for no octets at all (a zero-length buffer).
    fn wants_nothing(&self) -> bool;
    /// Takes octets from the front of `q`; returns how many.
    fn take(self, q: &mut VecDeque<u8>) -> usize;
}

impl Sink for &mut [u8] {
    fn wants_nothing(&self) -> bool {
        self.is_empty()
    }

    fn take(self, q: &mut VecDeque<u8>) -> usize {
        take_front(q, self)
    }
}

/// A closure shown the first contiguous piece of the queue, returning how
/// many of its octets it consumed (no copy by the stack).
pub struct InPlace<F>(pub F);

impl<F: FnOnce(&[u8]) -> usize> Sink for InPlace<F> {
    fn wants_nothing(&self) -> bool {
        false
    }

    fn take(self, q: &mut VecDeque<u8>) -> usize {
        let (a, _) = q.as_slices();
        if a.is_empty() {
            return 0;
        }
        let n = (self.0)(a).min(a.len());
        q.drain(..n);
        n
    }
}

/// Moves octets from the front of `q` into `buf`; returns how many.
pub fn take_front(q: &mut VecDeque<u8>, buf: &mut [u8]) -> usize {
    let n = buf.len().min(q.len());
    let (a, b) = q.as_slices();
    let k = n.min(a.len());
    if let (Some(dst), Some(src)) = (buf.get_mut(..k), a.get(..k)) {
        dst.copy_from_slice(src);
    }
    if let (Some(dst), Some(src)) = (buf.get_mut(k..n), b.get(..n - k)) {
        dst.copy_from_slice(src);
    }
    q.drain(..n);
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wrapped() -> VecDeque<u8> {
        // Force the contents to wrap around the end of the allocation.
        let mut q = VecDeque::with_capacity(8);
        q.extend([0u8; 6]);
        q.drain(..6);
        q.extend(1u8..=7);
        q
    }

    #[test]
    fn copies_across_the_wrap() {
        let q = wrapped();
        assert_eq!(parts(&q, 0, 7).concat(), vec![1, 2, 3, 4, 5, 6, 7]);
        assert_eq!(parts(&q, 1, 4).concat(), vec![2, 3, 4, 5]);
        assert_eq!(parts(&q, 5, 10).concat(), vec![6, 7]);
        assert_eq!(parts(&q, 9, 3).concat(), Vec::<u8>::new());
    }

    #[test]
    fn takes_from_the_front() {
        let mut q = wrapped();
        let mut buf = [0u8; 5];
        assert_eq!(take_front(&mut q, &mut buf), 5);
        assert_eq!(buf, [1, 2, 3, 4, 5]);
        assert_eq!(q.iter().copied().collect::<Vec<_>>(), vec![6, 7]);
        let mut big = [0u8; 9];
        assert_eq!(take_front(&mut q, &mut big), 2);
        assert_eq!(&big[..2], &[6, 7]);
    }
}
