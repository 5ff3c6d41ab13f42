//! Initial sequence numbers (RFC 6528 §3): ISN = M + F(4-tuple, secret),
//! where M is a clock ticking every 4 µs and F a keyed pseudo-random
//! function. F here is SipHash-2-4 (Aumasson and Bernstein), written out
//! below so the crate needs no extra dependency.

use crate::time::Instant;
use std::net::IpAddr;

/// SipHash-2-4 of `msg` under the 128-bit key `(k0, k1)`.
pub fn siphash24(k0: u64, k1: u64, msg: &[u8]) -> u64 {
    let mut v = [
        k0 ^ 0x736f_6d65_7073_6575,
        k1 ^ 0x646f_7261_6e64_6f6d,
        k0 ^ 0x6c79_6765_6e65_7261,
        k1 ^ 0x7465_6462_7974_6573,
    ];
    fn round(v: &mut [u64; 4]) {
        v[0] = v[0].wrapping_add(v[1]);
        v[1] = v[1].rotate_left(13) ^ v[0];
        v[0] = v[0].rotate_left(32);
        v[2] = v[2].wrapping_add(v[3]);
        v[3] = v[3].rotate_left(16) ^ v[2];
        v[0] = v[0].wrapping_add(v[3]);
        v[3] = v[3].rotate_left(21) ^ v[0];
        v[2] = v[2].wrapping_add(v[1]);
        v[1] = v[1].rotate_left(17) ^ v[2];
        v[2] = v[2].rotate_left(32);
    }
    let mut chunks = msg.chunks_exact(8);
    for chunk in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(chunk);
        let m = u64::from_le_bytes(w);
        v[3] ^= m;
        round(&mut v);
        round(&mut v);
        v[0] ^= m;
    }
    let rest = chunks.remainder();
    let mut last = [0u8; 8];
    last[..rest.len()].copy_from_slice(rest);
    last[7] = msg.len() as u8;
    let m = u64::from_le_bytes(last);
    v[3] ^= m;
    round(&mut v);
    round(&mut v);
    v[0] ^= m;
    v[2] ^= 0xff;
    for _ in 0..4 {
        round(&mut v);
    }
    v[0] ^ v[1] ^ v[2] ^ v[3]
}

/// 32 octets of secret for the ISN generator ([`crate::Config::secret`]) from the operating system, so
/// that an embedder who sets nothing still gets ISNs an off-path attacker
/// cannot predict (RFC 6528 §3: the key must be secret and, ideally,
/// random). Read from `/dev/urandom`; where that cannot be read, from the
/// standard library's per-process random hash keys (which the OS also
/// seeds), mixed with the time and the process id.
pub fn os_secret() -> [u8; 32] {
    use std::io::Read;
    let mut s = [0u8; 32];
    let read = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut s));
    if read.is_err() || s == [0u8; 32] {
        use std::hash::{BuildHasher, Hasher};
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        for (i, chunk) in s.chunks_mut(8).enumerate() {
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_u128(nanos);
            h.write_u32(std::process::id());
            h.write_usize(i);
            chunk.copy_from_slice(&h.finish().to_le_bytes());
        }
    }
    s
}

/// The RFC 6528 generator: a secret key and the 4 µs clock.
#[derive(Clone)]
pub struct IsnGenerator {
    key: [u8; 32],
    /// Seeded bug: every ISN is the same (tests of the ISN check only).
    fixed: bool,
}

impl std::fmt::Debug for IsnGenerator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("IsnGenerator { key: <secret> }")
    }
}

impl IsnGenerator {
    pub fn new(key: [u8; 32]) -> Self {
        IsnGenerator { key, fixed: false }
    }

    /// With `fixed`, every ISN is the same constant: the seeded bug of
    /// [`crate::Faults::fixed_isn`].
    pub fn with_fixed(mut self, fixed: bool) -> Self {
        self.fixed = fixed;
        self
    }

    /// F of RFC 6528 §3: SipHash-2-4 keyed with the first half of the
    /// secret over the 4-tuple and the second half of the secret.
    pub fn offset(&self, local: IpAddr, lport: u16, remote: IpAddr, rport: u16) -> u32 {
        let mut k = [0u8; 8];
        k.copy_from_slice(&self.key[0..8]);
        let k0 = u64::from_le_bytes(k);
        k.copy_from_slice(&self.key[8..16]);
        let k1 = u64::from_le_bytes(k);
        let mut msg = Vec::with_capacity(68);
        for addr in [local, remote] {
            match addr {
                IpAddr::V4(a) => msg.extend_from_slice(&a.octets()),
                IpAddr::V6(a) => msg.extend_from_slice(&a.octets()),
            }
        }
        msg.extend_from_slice(&lport.to_be_bytes());
        msg.extend_from_slice(&rport.to_be_bytes());
        msg.extend_from_slice(&self.key[16..32]);
        siphash24(k0, k1, &msg) as u32
    }

    /// ISN = M + F (RFC 6528 §3), M being `now` in 4 µs ticks modulo 2^32.
    pub fn isn(&self, now: Instant, local: IpAddr, lport: u16, remote: IpAddr, rport: u16) -> u32 {
        if self.fixed {
            return 0x1000_0000;
        }
        let m = (now.as_micros() / 4) as u32;
        m.wrapping_add(self.offset(local, lport, remote, rport))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    #[test]
    fn os_secrets_differ_and_are_not_zero() {
        let (a, b) = (os_secret(), os_secret());
        assert_ne!(a, [0; 32]);
        assert_ne!(a, b);
    }

    #[test]
    fn siphash_reference_vector() {
        // The reference vector of the SipHash paper: key 00..0f, message 00..0e.
        let k0 = u64::from_le_bytes([0, 1, 2, 3, 4, 5, 6, 7]);
        let k1 = u64::from_le_bytes([8, 9, 10, 11, 12, 13, 14, 15]);
        let msg: Vec<u8> = (0u8..15).collect();
        assert_eq!(siphash24(k0, k1, &msg), 0xa129_ca61_49be_45e5);
        // Empty message, first entry of the reference table.
        assert_eq!(siphash24(k0, k1, &[]), 0x726f_db47_dd0e_0e31);
    }

    #[test]
    fn isn_differs_per_tuple_and_moves_with_time() {
        let g = IsnGenerator::new([7; 32]);
        let a = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
        let b = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2));
        let t = Instant::from_millis(1000);
        let i1 = g.isn(t, a, 80, b, 40000);
        let i2 = g.isn(t, a, 80, b, 40001);
        let i3 = g.isn(t, b, 80, a, 40000);
        assert_ne!(i1, i2);
        assert_ne!(i1, i3);
        // Same tuple: advances by one per 4 µs.
        assert_eq!(
            g.isn(t + std::time::Duration::from_micros(400), a, 80, b, 40000),
            i1.wrapping_add(100)
        );
        // Another key gives another ISN.
        assert_ne!(IsnGenerator::new([8; 32]).isn(t, a, 80, b, 40000), i1);
    }
}
