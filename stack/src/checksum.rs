//! The Internet checksum (RFC 1071): the ones' complement of the ones'
//! complement sum of 16-bit words. The data is summed eight octets at a time
//! in native byte order (RFC 1071 §2 (B): the sum does not depend on byte
//! order, only the final 16 bits are swapped; §2 (C): any word size may be
//! summed and folded afterwards), and the TCP pseudo-header of RFC 9293 §3.1
//! (IPv4) and RFC 8200 §8.1 (IPv6).

use std::net::IpAddr;

/// Adds `data` (big-endian 16-bit words, an odd last octet padded with
/// zero) to a running sum.
pub fn add(sum: u64, data: &[u8]) -> u64 {
    // Each 8-octet word contributes its two 32-bit halves to one of four
    // 64-bit accumulators (independent, so the additions overlap), which
    // cannot overflow below 2^31 words per accumulator (64 GiB). No
    // data-dependent comparison: cheap under a fuzzer's comparison tracing.
    let halves = |w: u64| (w & 0xffff_ffff) + (w >> 32);
    // Chunks are exactly 8 octets, so the conversion never fails.
    let word = |w: &[u8]| halves(u64::from_ne_bytes(w.try_into().unwrap_or([0; 8])));
    let mut lanes = [0u64; 4];
    let mut blocks = data.chunks_exact(32);
    for b in &mut blocks {
        for (lane, w) in lanes.iter_mut().zip(b.chunks_exact(8)) {
            *lane += word(w);
        }
    }
    let mut acc: u64 = lanes.iter().sum();
    let mut words = blocks.remainder().chunks_exact(8);
    for w in &mut words {
        acc += word(w);
    }
    // The last 0..=7 octets as the native-order word they would start,
    // zero-padded (assembled in a register: a byte-wise copy into an array
    // read back as one word stalls the load).
    let tail = words
        .remainder()
        .iter()
        .enumerate()
        .fold(0u64, |t, (i, &b)| {
            let shift = if cfg!(target_endian = "little") {
                8 * i
            } else {
                56 - 8 * i
            };
            t | u64::from(b) << shift
        });
    acc += halves(tail);
    // The folded native-order sum is the big-endian sum with its two
    // octets in native order.
    sum + u64::from(u16::from_be(fold(acc)))
}

/// Folds a running sum to 16 bits with end-around carries.
pub fn fold(mut sum: u64) -> u16 {
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum as u16
}

/// The running sum of the TCP pseudo-header.
pub fn pseudo_header(src: IpAddr, dst: IpAddr, tcp_len: usize) -> u64 {
    let mut sum = 0;
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            sum = add(sum, &s.octets());
            sum = add(sum, &d.octets());
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            sum = add(sum, &s.octets());
            sum = add(sum, &d.octets());
        }
        _ => {}
    }
    sum + 6 + tcp_len as u64
}

/// The checksum to put in a header whose other octets sum to `sum`.
pub fn finish(sum: u64) -> u16 {
    !fold(sum)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc1071_example() {
        // RFC 1071 §3: the words 0001 f203 f4f5 f6f7 sum to ddf2.
        assert_eq!(
            fold(add(0, &[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7])),
            0xddf2
        );
    }

    #[test]
    fn odd_lengths_pad_with_zero() {
        assert_eq!(fold(add(0, &[0x12, 0x34, 0x56])), 0x1234 + 0x5600);
    }

    /// RFC 1071 §1 literally: 16-bit big-endian words, one at a time.
    fn reference(data: &[u8]) -> u16 {
        let mut sum = 0u64;
        for pair in data.chunks(2) {
            let hi = u64::from(pair[0]) << 8;
            sum += hi | pair.get(1).map_or(0, |&lo| u64::from(lo));
        }
        fold(sum)
    }

    #[test]
    fn agrees_with_word_by_word_sum_at_every_length() {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let data: Vec<u8> = (0..3000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        for len in 0..data.len() {
            for start in [0, 1, 2, 3] {
                let d = &data[start.min(len)..len];
                assert_eq!(fold(add(0, d)), reference(d), "len {len} from {start}");
            }
        }
        assert_eq!(fold(add(0, &[0xff; 4096])), 0xffff);
        assert_eq!(fold(add(0xfffe, &[0, 1])), 0xffff);
    }
}
