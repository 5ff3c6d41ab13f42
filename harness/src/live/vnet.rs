//! The virtio-net header a TUN device opened with `IFF_VNET_HDR` puts
//! before every packet, both ways (Linux `include/uapi/linux/virtio_net.h`,
//! `struct virtio_net_hdr`; the VIRTIO 1.x specification, 5.1.6 "Device
//! Operation"), in the host's byte order (legacy TUN).
//!
//! On the way out of the kernel, with segmentation offload switched on
//! (`TUNSETOFFLOAD`), a TCP super-segment comes as one packet whose header
//! says its GSO type and segment size, and a checksum left to the device
//! (`NEEDS_CSUM`) holds only the pseudo-header sum: [`complete_checksum`]
//! finishes it, so every packet handed on carries a valid checksum. On the
//! way in, a header that names a GSO type and size makes the kernel treat
//! the segment as one that a device received as `size`-octet segments
//! (packetdrill's `--mss`).

/// Octets of `struct virtio_net_hdr`.
pub const HDR_LEN: usize = 10;
/// `VIRTIO_NET_HDR_F_NEEDS_CSUM`: the checksum from `csum_start` is partial.
pub const F_NEEDS_CSUM: u8 = 1;
/// `VIRTIO_NET_HDR_GSO_TCPV4`.
pub const GSO_TCPV4: u8 = 1;
/// `VIRTIO_NET_HDR_GSO_TCPV6`.
pub const GSO_TCPV6: u8 = 4;

/// One virtio-net header.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VnetHdr {
    /// [`F_NEEDS_CSUM`] or 0.
    pub flags: u8,
    /// 0 (none), [`GSO_TCPV4`], [`GSO_TCPV6`], possibly with the ECN bit 0x80.
    pub gso_type: u8,
    /// Length of the headers (a hint).
    pub hdr_len: u16,
    /// Payload octets per segment when `gso_type` is not 0.
    pub gso_size: u16,
    /// Where the checksummed range starts.
    pub csum_start: u16,
    /// Where, from `csum_start`, the checksum goes.
    pub csum_offset: u16,
}

impl VnetHdr {
    /// Splits `buf` into its header and packet; `None` when shorter than a header.
    pub fn split(buf: &[u8]) -> Option<(VnetHdr, &[u8])> {
        let (h, rest) = (buf.get(..HDR_LEN)?, &buf[HDR_LEN..]);
        let u = |i: usize| u16::from_ne_bytes([h[i], h[i + 1]]);
        Some((
            VnetHdr {
                flags: h[0],
                gso_type: h[1],
                hdr_len: u(2),
                gso_size: u(4),
                csum_start: u(6),
                csum_offset: u(8),
            },
            rest,
        ))
    }

    /// The header's octets.
    pub fn to_bytes(self) -> [u8; HDR_LEN] {
        let mut b = [0u8; HDR_LEN];
        b[0] = self.flags;
        b[1] = self.gso_type;
        b[2..4].copy_from_slice(&self.hdr_len.to_ne_bytes());
        b[4..6].copy_from_slice(&self.gso_size.to_ne_bytes());
        b[6..8].copy_from_slice(&self.csum_start.to_ne_bytes());
        b[8..10].copy_from_slice(&self.csum_offset.to_ne_bytes());
        b
    }

    /// The header for injecting `packet`: GSO type TCPv4/TCPv6 and size
    /// `gso_mss` for a TCP packet when `gso_mss` is given, else none. The
    /// packet's checksums are complete, so no flag is set.
    pub fn for_injection(packet: &[u8], gso_mss: Option<u16>) -> VnetHdr {
        let tcp = match packet.first().map(|b| b >> 4) {
            Some(4) if packet.get(9) == Some(&6) => Some(GSO_TCPV4),
            Some(6) if packet.get(6) == Some(&6) => Some(GSO_TCPV6),
            _ => None,
        };
        match (tcp, gso_mss) {
            (Some(gso_type), Some(size)) => VnetHdr {
                gso_type,
                gso_size: size,
                ..VnetHdr::default()
            },
            _ => VnetHdr::default(),
        }
    }
}

/// Finishes a partial checksum (`NEEDS_CSUM`): the Internet checksum
/// (RFC 1071) of `packet[csum_start..]`, whose checksum field already
/// holds the pseudo-header sum, stored at `csum_start + csum_offset`.
/// Without the flag nothing changes; offsets outside the packet are an
/// error.
pub fn complete_checksum(h: &VnetHdr, packet: &mut [u8]) -> Result<(), String> {
    if h.flags & F_NEEDS_CSUM == 0 {
        return Ok(());
    }
    let start = usize::from(h.csum_start);
    let at = start + usize::from(h.csum_offset);
    if at + 2 > packet.len() {
        return Err(format!(
            "checksum at {start}+{} outside a {}-octet packet",
            h.csum_offset,
            packet.len()
        ));
    }
    let mut sum = 0u32;
    let mut chunks = packet[start..].chunks_exact(2);
    for c in &mut chunks {
        sum += u32::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [last] = chunks.remainder() {
        sum += u32::from(*last) << 8;
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    packet[at..at + 2].copy_from_slice(&(!(sum as u16)).to_be_bytes());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trips_and_short_buffers_are_none() {
        let h = VnetHdr {
            flags: F_NEEDS_CSUM,
            gso_type: GSO_TCPV4,
            hdr_len: 66,
            gso_size: 1448,
            csum_start: 20,
            csum_offset: 16,
        };
        let mut buf = h.to_bytes().to_vec();
        buf.extend_from_slice(&[0x45, 0]);
        let (back, rest) = VnetHdr::split(&buf).unwrap();
        assert_eq!(back, h);
        assert_eq!(rest, &[0x45, 0]);
        assert!(VnetHdr::split(&buf[..9]).is_none());
    }

    #[test]
    fn injection_header_names_gso_only_for_tcp_with_an_mss() {
        let mut v4 = vec![0u8; 40];
        v4[0] = 0x45;
        v4[9] = 6;
        assert_eq!(VnetHdr::for_injection(&v4, None), VnetHdr::default());
        let h = VnetHdr::for_injection(&v4, Some(1000));
        assert_eq!((h.gso_type, h.gso_size), (GSO_TCPV4, 1000));
        let mut v6 = vec![0u8; 60];
        v6[0] = 0x60;
        v6[6] = 6;
        assert_eq!(VnetHdr::for_injection(&v6, Some(1000)).gso_type, GSO_TCPV6);
        v4[9] = 1;
        assert_eq!(VnetHdr::for_injection(&v4, Some(1000)), VnetHdr::default());
    }

    fn fold(mut sum: u32) -> u16 {
        while sum > 0xffff {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        sum as u16
    }

    fn sum(data: &[u8]) -> u32 {
        let mut d = data.to_vec();
        d.resize(data.len().div_ceil(2) * 2, 0);
        d.chunks_exact(2)
            .map(|c| u32::from(u16::from_be_bytes([c[0], c[1]])))
            .sum()
    }

    #[test]
    fn partial_checksum_is_completed_to_a_valid_one() {
        // A TCP range at 20 (odd length) with its checksum field at +16.
        let mut p: Vec<u8> = (0..61u8).map(|i| i.wrapping_mul(37)).collect();
        p[36..38].copy_from_slice(&[0, 0]);
        let pseudo = 0x0001_c0a8u32 + 0x0c00 + 0x0006 + 41;
        // The full checksum, computed from scratch (RFC 1071).
        let want = !fold(pseudo + sum(&p[20..]));
        // What the kernel leaves for the device: the pseudo-header sum.
        p[36..38].copy_from_slice(&fold(pseudo).to_be_bytes());
        let h = VnetHdr {
            flags: F_NEEDS_CSUM,
            csum_start: 20,
            csum_offset: 16,
            ..VnetHdr::default()
        };
        complete_checksum(&h, &mut p).unwrap();
        assert_eq!(u16::from_be_bytes([p[36], p[37]]), want);
        let untouched = VnetHdr::default();
        let before = p.clone();
        complete_checksum(&untouched, &mut p).unwrap();
        assert_eq!(p, before);
        let bad = VnetHdr {
            csum_offset: 60,
            ..h
        };
        assert!(complete_checksum(&bad, &mut p).is_err());
    }
}
