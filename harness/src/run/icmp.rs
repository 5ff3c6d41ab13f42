//! ICMP error messages for a script's `icmp` lines (packetdrill's ICMP
//! packets), built byte for byte and recognised on the way out.
//!
//! An inbound `< icmp TYPE [CODE] [mtu N] [[start:end(len)]]` becomes an
//! ICMPv4 (RFC 792) or ICMPv6 (RFC 4443) message from the scripted peer to
//! the stack that quotes, as a router would, the start of a segment the
//! stack sent: the IP header of that segment (stack → peer, with a total
//! length covering `len` payload octets) and the first eight octets of its
//! TCP header — the ports and the sequence number (RFC 792 "Destination
//! Unreachable Message"; RFC 1122 3.2.2: the quoted header lets the
//! receiver find the connection; RFC 5927 4.1 and RFC 5961: the stack checks
//! the quoted sequence number against its send window). The quoted
//! sequence number is `start` relative to the stack's ISN, as packetdrill
//! maps it; without a bracket it is the ISN itself. `mtu N` fills the
//! next-hop MTU of an IPv4 "fragmentation needed" (RFC 1191 4) or the MTU
//! of an ICMPv6 "packet too big" (RFC 4443 3.2).
//!
//! Types and codes are named as packetdrill names them; `type_N` and
//! `code_N` give a number directly.

use super::wire::{checksum_add, checksum_finish};
use crate::script::IcmpSpec;
use std::net::IpAddr;

/// IP protocol number of ICMPv4 (RFC 792) and next header of ICMPv6 (RFC 4443).
pub const PROTO_ICMP: u8 = 1;
/// See [`PROTO_ICMP`].
pub const PROTO_ICMPV6: u8 = 58;

/// A type name, its number and the names of its codes.
type TypeRow = (&'static str, u8, &'static [(&'static str, u8)]);

/// ICMPv4 destination unreachable codes (RFC 792, RFC 1812 5.2.7.1).
const V4_UNREACHABLE: &[(&str, u8)] = &[
    ("net_unreachable", 0),
    ("host_unreachable", 1),
    ("protocol_unreachable", 2),
    ("port_unreachable", 3),
    ("frag_needed", 4),
    ("source_route_failed", 5),
    ("net_unknown", 6),
    ("host_unknown", 7),
    ("source_host_isolated", 8),
    ("net_prohibited", 9),
    ("host_prohibited", 10),
    ("net_unreachable_for_tos", 11),
    ("host_unreachable_for_tos", 12),
    ("packet_filtered", 13),
    ("precedence_violation", 14),
    ("precedence_cutoff", 15),
];

/// ICMPv4 message types (RFC 792, RFC 950).
const V4_TYPES: &[TypeRow] = &[
    ("echo_reply", 0, &[]),
    ("unreachable", 3, V4_UNREACHABLE),
    ("source_quench", 4, &[]),
    ("redirect", 5, &[]),
    ("echo_request", 8, &[]),
    ("time_exceeded", 11, &[]),
    ("parameter_problem", 12, &[]),
    ("timestamp_request", 13, &[]),
    ("timestamp_reply", 14, &[]),
    ("information_request", 15, &[]),
    ("information_reply", 16, &[]),
    ("address_mask_request", 17, &[]),
    ("address_mask_reply", 18, &[]),
];

/// ICMPv6 message types and codes (RFC 4443 3 and 4).
const V6_TYPES: &[TypeRow] = &[
    (
        "unreachable",
        1,
        &[
            ("net_unreachable", 0),
            ("no_route", 0),
            ("admin_prohibited", 1),
            ("not_neighbour", 2),
            ("address_unreachable", 3),
            ("port_unreachable", 4),
        ],
    ),
    ("packet_too_big", 2, &[]),
    (
        "time_exceeded",
        3,
        &[("exceeded_hop_limit", 0), ("exceeded_frag_time", 1)],
    ),
    (
        "parameter_problem",
        4,
        &[
            ("header_field", 0),
            ("unknown_next_header", 1),
            ("unknown_option", 2),
        ],
    ),
    ("echo_request", 128, &[]),
    ("echo_reply", 129, &[]),
];

/// `type_N` / `code_N`: a number written directly.
fn numbered(word: &str, prefix: &str) -> Option<Result<u8, String>> {
    let n = word.strip_prefix(prefix)?;
    Some(
        n.parse::<u8>()
            .map_err(|_| format!("`{word}`: {prefix}N needs N in 0..=255")),
    )
}

/// The wire type and code of `spec` in ICMPv4 (`v6` false) or ICMPv6.
pub fn type_code(spec: &IcmpSpec, v6: bool) -> Result<(u8, u8), String> {
    let (family, table) = if v6 {
        ("ICMPv6", V6_TYPES)
    } else {
        ("ICMPv4", V4_TYPES)
    };
    let t = &spec.icmp_type;
    let (ty, codes) = match numbered(t, "type_") {
        Some(n) => (n?, &[][..]),
        None => table
            .iter()
            .find(|(name, _, _)| name == t)
            .map(|(_, n, c)| (*n, *c))
            .ok_or_else(|| format!("unknown {family} type `{t}`"))?,
    };
    let code = match spec.code.as_deref() {
        None => 0,
        Some(c) => match numbered(c, "code_") {
            Some(n) => n?,
            None => codes
                .iter()
                .find(|(name, _)| *name == c)
                .map(|(_, n)| *n)
                .ok_or_else(|| format!("unknown {family} code `{c}` for type `{t}`"))?,
        },
    };
    Ok((ty, code))
}

/// The segment an ICMP error quotes: the stack's side first (it sent it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quoted {
    /// The stack's address and port (the quoted segment's source).
    pub stack: (IpAddr, u16),
    /// The scripted peer's address and port (its destination).
    pub peer: (IpAddr, u16),
    /// The quoted sequence number, absolute.
    pub seq: u32,
    /// The quoted segment's payload length (in the quoted IP length).
    pub payload_len: u32,
}

/// The four octets after the checksum: the MTU where `mtu N` is allowed.
fn rest_of_header(spec: &IcmpSpec, v6: bool, ty: u8, code: u8) -> Result<[u8; 4], String> {
    let Some(mtu) = spec.mtu else {
        return Ok([0; 4]);
    };
    match (v6, ty, code) {
        // RFC 1191 4: unused (16 bits), next-hop MTU (16 bits).
        (false, 3, 4) => {
            let m = u16::try_from(mtu).map_err(|_| format!("ICMPv4 MTU {mtu} exceeds 65535"))?;
            let [a, b] = m.to_be_bytes();
            Ok([0, 0, a, b])
        }
        // RFC 4443 3.2: the MTU (32 bits).
        (true, 2, 0) => Ok(mtu.to_be_bytes()),
        (false, ..) => Err("`mtu` is only valid in an ICMPv4 `unreachable frag_needed`".into()),
        (true, ..) => Err("`mtu` is only valid in an ICMPv6 `packet_too_big`".into()),
    }
}

/// The quoted segment's IP header and first eight TCP octets.
fn quoted_bytes(q: &Quoted) -> Result<Vec<u8>, String> {
    let tcp_len = 20 + q.payload_len;
    let mut b = Vec::with_capacity(48);
    match (q.stack.0, q.peer.0) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            let total = u16::try_from(20 + tcp_len)
                .map_err(|_| format!("a quoted {}-octet payload is too large", q.payload_len))?;
            b.extend_from_slice(&[0x45, 0]);
            b.extend_from_slice(&total.to_be_bytes());
            b.extend_from_slice(&[0, 0, 0x40, 0, 64, 6, 0, 0]);
            b.extend_from_slice(&s.octets());
            b.extend_from_slice(&d.octets());
            let sum = checksum_finish(checksum_add(0, &b));
            b[10..12].copy_from_slice(&sum.to_be_bytes());
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            let payload = u16::try_from(tcp_len)
                .map_err(|_| format!("a quoted {}-octet payload is too large", q.payload_len))?;
            b.extend_from_slice(&[0x60, 0, 0, 0]);
            b.extend_from_slice(&payload.to_be_bytes());
            b.extend_from_slice(&[6, 64]);
            b.extend_from_slice(&s.octets());
            b.extend_from_slice(&d.octets());
        }
        (s, d) => return Err(format!("addresses of two IP versions: {s} and {d}")),
    }
    b.extend_from_slice(&q.stack.1.to_be_bytes());
    b.extend_from_slice(&q.peer.1.to_be_bytes());
    b.extend_from_slice(&q.seq.to_be_bytes());
    Ok(b)
}

/// The whole IP packet of an inbound `icmp` line: from the peer to the
/// stack, quoting `q`. Errors name what the line gets wrong (an unknown
/// type or code, `mtu` where it does not belong).
pub fn build(spec: &IcmpSpec, q: &Quoted) -> Result<Vec<u8>, String> {
    let v6 = q.peer.0.is_ipv6();
    let (ty, code) = type_code(spec, v6)?;
    let mut msg = vec![ty, code, 0, 0];
    msg.extend_from_slice(&rest_of_header(spec, v6, ty, code)?);
    msg.extend_from_slice(&quoted_bytes(q)?);
    let len = msg.len() as u16; // at most 8 + 48 octets
    let mut p = Vec::with_capacity(40 + msg.len());
    let sum = match (q.peer.0, q.stack.0) {
        (IpAddr::V4(src), IpAddr::V4(dst)) => {
            p.extend_from_slice(&[0x45, 0]);
            p.extend_from_slice(&(20 + len).to_be_bytes());
            p.extend_from_slice(&[0, 0, 0, 0, 64, PROTO_ICMP, 0, 0]);
            p.extend_from_slice(&src.octets());
            p.extend_from_slice(&dst.octets());
            let ipsum = checksum_finish(checksum_add(0, &p));
            p[10..12].copy_from_slice(&ipsum.to_be_bytes());
            // RFC 792: the checksum covers the ICMP message only.
            checksum_finish(checksum_add(0, &msg))
        }
        (IpAddr::V6(src), IpAddr::V6(dst)) => {
            p.extend_from_slice(&[0x60, 0, 0, 0]);
            p.extend_from_slice(&len.to_be_bytes());
            p.extend_from_slice(&[PROTO_ICMPV6, 64]);
            p.extend_from_slice(&src.octets());
            p.extend_from_slice(&dst.octets());
            // RFC 4443 2.3: over the pseudo-header (RFC 8200 8.1) too.
            let mut pseudo = Vec::with_capacity(40);
            pseudo.extend_from_slice(&src.octets());
            pseudo.extend_from_slice(&dst.octets());
            pseudo.extend_from_slice(&u32::from(len).to_be_bytes());
            pseudo.extend_from_slice(&[0, 0, 0, PROTO_ICMPV6]);
            checksum_finish(checksum_add(checksum_add(0, &pseudo), &msg))
        }
        (s, d) => return Err(format!("addresses of two IP versions: {s} and {d}")),
    };
    msg[2..4].copy_from_slice(&sum.to_be_bytes());
    p.extend_from_slice(&msg);
    Ok(p)
}

/// `(type, code)` of an ICMPv4 or ICMPv6 packet, `None` for anything else
/// or a packet too short to have them. IPv6 extension headers are not
/// followed.
pub fn decode(bytes: &[u8]) -> Option<(u8, u8)> {
    let at = match bytes.first()? >> 4 {
        4 if bytes.get(9) == Some(&PROTO_ICMP) => usize::from(bytes[0] & 0x0f) * 4,
        6 if bytes.get(6) == Some(&PROTO_ICMPV6) => 40,
        _ => return None,
    };
    Some((*bytes.get(at)?, *bytes.get(at + 1)?))
}

/// Whether `(ty, code)` of an ICMPv6 packet is neighbour discovery or
/// multicast listener traffic (RFC 4861 4, RFC 2710 3, RFC 3810 5): the
/// link's housekeeping, never a script's `icmp` line.
pub fn is_v6_housekeeping(ty: u8) -> bool {
    (130..=137).contains(&ty) || ty == 143
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::script::Direction;
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn spec(ty: &str, code: Option<&str>, mtu: Option<u32>) -> IcmpSpec {
        IcmpSpec {
            dir: Direction::Inbound,
            icmp_type: ty.into(),
            code: code.map(Into::into),
            mtu,
            seq: None,
        }
    }

    fn quoted_v4() -> Quoted {
        Quoted {
            stack: (IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)), 8080),
            peer: (IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2)), 40000),
            seq: 0x0102_0304,
            payload_len: 1000,
        }
    }

    #[test]
    fn frag_needed_v4_quotes_the_segment_with_valid_checksums() {
        let p = build(
            &spec("unreachable", Some("frag_needed"), Some(840)),
            &quoted_v4(),
        )
        .unwrap();
        assert_eq!(p.len(), 20 + 8 + 20 + 8);
        assert_eq!(p[9], PROTO_ICMP);
        assert_eq!(&p[12..16], &[192, 0, 2, 2], "from the peer");
        assert_eq!(&p[16..20], &[192, 0, 2, 1], "to the stack");
        assert_eq!(checksum_finish(checksum_add(0, &p[..20])), 0);
        let icmp = &p[20..];
        assert_eq!((icmp[0], icmp[1]), (3, 4));
        assert_eq!(checksum_finish(checksum_add(0, icmp)), 0);
        assert_eq!(u16::from_be_bytes([icmp[6], icmp[7]]), 840);
        let inner = &icmp[8..];
        assert_eq!(u16::from_be_bytes([inner[2], inner[3]]), 20 + 20 + 1000);
        assert_eq!(inner[9], 6);
        assert_eq!(&inner[12..16], &[192, 0, 2, 1], "quoted from the stack");
        assert_eq!(&inner[16..20], &[192, 0, 2, 2]);
        assert_eq!(checksum_finish(checksum_add(0, &inner[..20])), 0);
        assert_eq!(u16::from_be_bytes([inner[20], inner[21]]), 8080);
        assert_eq!(u16::from_be_bytes([inner[22], inner[23]]), 40000);
        assert_eq!(&inner[24..28], &[1, 2, 3, 4]);
        assert_eq!(decode(&p), Some((3, 4)));
    }

    #[test]
    fn packet_too_big_v6_has_the_pseudo_header_checksum() {
        let (s, d) = (
            "2001:db8::1".parse::<Ipv6Addr>().unwrap(),
            "2001:db8::2".parse::<Ipv6Addr>().unwrap(),
        );
        let q = Quoted {
            stack: (IpAddr::V6(s), 1),
            peer: (IpAddr::V6(d), 2),
            seq: 7,
            payload_len: 1440,
        };
        let p = build(&spec("packet_too_big", None, Some(1400)), &q).unwrap();
        assert_eq!(p.len(), 40 + 8 + 40 + 8);
        assert_eq!(u16::from_be_bytes([p[4], p[5]]), 56);
        let msg = &p[40..];
        assert_eq!((msg[0], msg[1]), (2, 0));
        assert_eq!(u32::from_be_bytes([msg[4], msg[5], msg[6], msg[7]]), 1400);
        let mut pseudo = Vec::new();
        pseudo.extend_from_slice(&d.octets());
        pseudo.extend_from_slice(&s.octets());
        pseudo.extend_from_slice(&56u32.to_be_bytes());
        pseudo.extend_from_slice(&[0, 0, 0, 58]);
        assert_eq!(
            checksum_finish(checksum_add(checksum_add(0, &pseudo), msg)),
            0
        );
        assert_eq!(u16::from_be_bytes([msg[12], msg[13]]), 20 + 1440);
        assert_eq!(&msg[16..32], &s.octets(), "quoted source: the stack");
    }

    #[test]
    fn names_numbers_and_errors() {
        assert_eq!(
            type_code(&spec("unreachable", None, None), false),
            Ok((3, 0))
        );
        assert_eq!(
            type_code(&spec("unreachable", Some("host_unreachable"), None), false),
            Ok((3, 1))
        );
        assert_eq!(
            type_code(&spec("unreachable", Some("port_unreachable"), None), true),
            Ok((1, 4))
        );
        assert_eq!(
            type_code(&spec("type_42", Some("code_7"), None), false),
            Ok((42, 7))
        );
        assert!(type_code(&spec("type_420", None, None), false).is_err());
        assert!(type_code(&spec("unreachable", Some("CODE"), None), false)
            .unwrap_err()
            .contains("unknown ICMPv4 code `CODE`"));
        assert!(type_code(&spec("packet_too_big", None, None), false).is_err());
        let e = build(
            &spec("unreachable", Some("host_unreachable"), Some(800)),
            &quoted_v4(),
        );
        assert!(e.unwrap_err().contains("frag_needed"));
        let e = build(
            &spec("unreachable", Some("frag_needed"), Some(70000)),
            &quoted_v4(),
        );
        assert!(e.unwrap_err().contains("65535"));
    }

    #[test]
    fn decode_ignores_tcp_and_garbage() {
        assert_eq!(decode(&[]), None);
        assert_eq!(decode(&[0x45, 0, 0, 20, 0, 0, 0, 0, 64, 6]), None);
        assert_eq!(
            decode(&[0x45, 0, 0, 20, 0, 0, 0, 0, 64, 1]),
            None,
            "truncated"
        );
        assert!(is_v6_housekeeping(135) && is_v6_housekeeping(143));
        assert!(!is_v6_housekeeping(2) && !is_v6_housekeeping(129));
    }
}
