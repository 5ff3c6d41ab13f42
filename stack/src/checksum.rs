//! The Internet checksum (RFC 1071): the ones' complement of the ones'
//! complement sum of 16-bit words, here summed 32 bits at a time in a 64-bit
//! accumulator and folded (RFC 1071 §2 (B) allows any word size), and the
//! TCP pseudo-header of RFC 9293 §3.1 (IPv4) and RFC 8200 §8.1 (IPv6).

use std::net::IpAddr;

/// Adds `data` (big-endian words, an odd last octet padded with zero) to a
/// running sum.
pub fn add(mut sum: u64, data: &[u8]) -> u64 {
    let mut words = data.chunks_exact(4);
    for w in &mut words {
        sum += u64::from(u32::from_be_bytes([w[0], w[1], w[2], w[3]]));
    }
    let rest = words.remainder();
    let mut tail = [0u8; 4];
    if let Some(t) = tail.get_mut(..rest.len()) {
        t.copy_from_slice(rest);
    }
    sum + u64::from(u32::from_be_bytes(tail))
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
}
