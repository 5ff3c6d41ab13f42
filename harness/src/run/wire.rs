//! Encoding scripted segments as IPv4 or IPv6 packets and decoding what a
//! target sends, byte for byte.
//!
//! The runner builds inbound packets itself rather than through the stack's
//! builder so that TCP options go on the wire exactly as the script writes
//! them (order, NOPs, unknown layouts), as packetdrill does; and it decodes
//! outbound options in wire order so they can be compared exactly.
//! Header layouts: RFC 791 3.1 (IPv4), RFC 8200 3 (IPv6; no extension
//! headers), RFC 9293 3.1 (TCP and its pseudo-headers), RFC 9293 3.2
//! (options), RFC 7323 (window scale, timestamps), RFC 2018 (SACK).

use crate::script::{TcpFlags, TcpOpt};
use std::net::IpAddr;

/// Longest TCP options area (RFC 9293 3.1: data offset at most 15 words).
pub const MAX_OPTIONS_LEN: usize = 40;

/// A TCP segment as it is on the wire (absolute numbers).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireSegment {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub src_port: u16,
    pub dst_port: u16,
    pub seq: u32,
    pub ack: u32,
    pub flags: TcpFlags,
    pub win: u16,
    pub urg: u16,
    /// Options in wire order; trailing EOL padding is dropped.
    pub options: Vec<TcpOpt>,
    /// Option kinds this decoder does not know (skipped by length).
    pub unknown_options: Vec<u8>,
    /// Payload octets.
    pub payload_len: u32,
    /// The ECN field of the IP header (RFC 3168 5): 0 not-ECT, 1 ECT(1),
    /// 2 ECT(0), 3 CE.
    pub ecn: u8,
}

/// The fields of a segment to build.
#[derive(Debug, Clone)]
pub struct Outgoing<'a> {
    /// Both of one IP version: it decides the packet's.
    pub src: IpAddr,
    pub dst: IpAddr,
    pub src_port: u16,
    pub dst_port: u16,
    pub seq: u32,
    pub ack: u32,
    pub flags: TcpFlags,
    pub win: u16,
    pub urg: u16,
    pub options: &'a [TcpOpt],
    pub payload_len: u32,
    /// The ECN field to put in the IP header (RFC 3168 5).
    pub ecn: u8,
}

fn flag_bits(f: &TcpFlags) -> u8 {
    let mut b = 0u8;
    for (on, bit) in [
        (f.fin, 0x01),
        (f.syn, 0x02),
        (f.rst, 0x04),
        (f.psh, 0x08),
        (f.ack, 0x10),
        (f.urg, 0x20),
        (f.ece, 0x40),
        (f.cwr, 0x80),
    ] {
        if on {
            b |= bit;
        }
    }
    b
}

fn flags_of(b: u8) -> TcpFlags {
    TcpFlags {
        fin: b & 0x01 != 0,
        syn: b & 0x02 != 0,
        rst: b & 0x04 != 0,
        psh: b & 0x08 != 0,
        ack: b & 0x10 != 0,
        urg: b & 0x20 != 0,
        ece: b & 0x40 != 0,
        cwr: b & 0x80 != 0,
    }
}

/// Encodes options in the order written, padded with EOL to a multiple of
/// four octets. Errors when the result exceeds 40 octets.
pub fn encode_options(opts: &[TcpOpt]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    for o in opts {
        match o {
            TcpOpt::Nop => out.push(1),
            TcpOpt::Eol => out.push(0),
            TcpOpt::Mss(m) => {
                out.extend_from_slice(&[2, 4]);
                out.extend_from_slice(&m.to_be_bytes());
            }
            TcpOpt::WScale(w) => out.extend_from_slice(&[3, 3, *w]),
            TcpOpt::SackPermitted => out.extend_from_slice(&[4, 2]),
            TcpOpt::Sack(blocks) => {
                let len = 2 + 8 * blocks.len();
                let len = u8::try_from(len).map_err(|_| "too many SACK blocks".to_string())?;
                out.extend_from_slice(&[5, len]);
                for (l, r) in blocks {
                    out.extend_from_slice(&l.to_be_bytes());
                    out.extend_from_slice(&r.to_be_bytes());
                }
            }
            TcpOpt::Timestamp { val, ecr } => {
                out.extend_from_slice(&[8, 10]);
                out.extend_from_slice(&val.to_be_bytes());
                out.extend_from_slice(&ecr.to_be_bytes());
            }
            TcpOpt::FastOpen { exp, cookie } => {
                let head = if *exp { 4 } else { 2 };
                let len = u8::try_from(head + cookie.len())
                    .map_err(|_| "fast open cookie too long".to_string())?;
                if *exp {
                    out.extend_from_slice(&[254, len, 0xf9, 0x89]);
                } else {
                    out.extend_from_slice(&[34, len]);
                }
                out.extend_from_slice(cookie);
            }
            TcpOpt::Md5(sig) => {
                out.extend_from_slice(&[19, 18]);
                out.extend_from_slice(sig);
            }
        }
    }
    while out.len() % 4 != 0 {
        out.push(0);
    }
    if out.len() > MAX_OPTIONS_LEN {
        return Err(format!(
            "TCP options take {} octets, more than the {MAX_OPTIONS_LEN} a header can carry",
            out.len()
        ));
    }
    Ok(out)
}

/// The Internet checksum (RFC 1071) of `data`, continuing from `sum`.
pub(crate) fn checksum_add(mut sum: u32, data: &[u8]) -> u32 {
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        sum = sum.wrapping_add(u32::from(u16::from_be_bytes([c[0], c[1]])));
    }
    if let [last] = chunks.remainder() {
        sum = sum.wrapping_add(u32::from(*last) << 8);
    }
    sum
}

pub(crate) fn checksum_finish(mut sum: u32) -> u16 {
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Builds a whole IPv4 (TTL 64, DF) or IPv6 (hop limit 64) packet, as
/// `src` and `dst` are, with the checksums computed; the payload is
/// `payload_len` octets of a fixed pattern.
pub fn build(o: &Outgoing<'_>) -> Result<Vec<u8>, String> {
    let opts = encode_options(o.options)?;
    let tcp_len = 20 + opts.len() + o.payload_len as usize;
    let tcp_len16 = u16::try_from(tcp_len)
        .map_err(|_| format!("a {tcp_len}-octet TCP segment is too large for one packet"))?;
    let mut p = Vec::with_capacity(40 + tcp_len);
    // The pseudo-header's addresses (RFC 9293 3.1; RFC 8200 8.1).
    let mut pseudo = Vec::with_capacity(40);
    match (o.src, o.dst) {
        (IpAddr::V4(src), IpAddr::V4(dst)) => {
            let total16 = u16::try_from(20 + tcp_len)
                .map_err(|_| format!("a {}-octet packet is too large for IPv4", 20 + tcp_len))?;
            // IPv4 header (RFC 791 3.1).
            p.extend_from_slice(&[0x45, o.ecn & 3]);
            p.extend_from_slice(&total16.to_be_bytes());
            p.extend_from_slice(&[0, 0, 0x40, 0, 64, 6, 0, 0]);
            p.extend_from_slice(&src.octets());
            p.extend_from_slice(&dst.octets());
            let ipsum = checksum_finish(checksum_add(0, &p[..20]));
            p[10..12].copy_from_slice(&ipsum.to_be_bytes());
            pseudo.extend_from_slice(&src.octets());
            pseudo.extend_from_slice(&dst.octets());
        }
        (IpAddr::V6(src), IpAddr::V6(dst)) => {
            // IPv6 header (RFC 8200 3): no flow label, next header TCP.
            p.extend_from_slice(&[0x60 | ((o.ecn & 3) >> 4), (o.ecn & 3) << 4, 0, 0]);
            p.extend_from_slice(&tcp_len16.to_be_bytes());
            p.extend_from_slice(&[6, 64]);
            p.extend_from_slice(&src.octets());
            p.extend_from_slice(&dst.octets());
            pseudo.extend_from_slice(&src.octets());
            pseudo.extend_from_slice(&dst.octets());
        }
        (s, d) => return Err(format!("addresses of two IP versions: {s} to {d}")),
    }
    let ip_len = p.len();
    // TCP header (RFC 9293 3.1).
    let words = u8::try_from((20 + opts.len()) / 4).unwrap_or(15);
    p.extend_from_slice(&o.src_port.to_be_bytes());
    p.extend_from_slice(&o.dst_port.to_be_bytes());
    p.extend_from_slice(&o.seq.to_be_bytes());
    p.extend_from_slice(&o.ack.to_be_bytes());
    p.push(words << 4);
    p.push(flag_bits(&o.flags));
    p.extend_from_slice(&o.win.to_be_bytes());
    p.extend_from_slice(&[0, 0]);
    p.extend_from_slice(&o.urg.to_be_bytes());
    p.extend_from_slice(&opts);
    p.extend((0..o.payload_len).map(|i| b'a' + (i % 26) as u8));
    // Pseudo-header, after the addresses: protocol and TCP length (the
    // IPv4 layout; the IPv6 one sums to the same value).
    pseudo.extend_from_slice(&[0, 6]);
    pseudo.extend_from_slice(&tcp_len16.to_be_bytes());
    let sum = checksum_finish(checksum_add(checksum_add(0, &pseudo), &p[ip_len..]));
    p[ip_len + 16..ip_len + 18].copy_from_slice(&sum.to_be_bytes());
    Ok(p)
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

/// The `N` octets of an address at `at`.
fn addr<const N: usize>(b: &[u8], at: usize) -> Option<[u8; N]> {
    b.get(at..at + N)?.try_into().ok()
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes([
        *b.get(at)?,
        *b.get(at + 1)?,
        *b.get(at + 2)?,
        *b.get(at + 3)?,
    ]))
}

/// Decodes an IPv4 or IPv6 packet carrying TCP. Errors say what is
/// malformed.
pub fn decode(bytes: &[u8]) -> Result<WireSegment, String> {
    let first = *bytes.first().ok_or("empty packet")?;
    let (src, dst, ihl, end) = match first >> 4 {
        4 => {
            let ihl = usize::from(first & 0x0f) * 4;
            if ihl < 20 || bytes.len() < ihl {
                return Err("truncated IPv4 header".into());
            }
            if bytes.get(9) != Some(&6) {
                return Err("not TCP".into());
            }
            let total = usize::from(be16(bytes, 2).ok_or("truncated")?);
            let src = IpAddr::from(addr::<4>(bytes, 12).ok_or("truncated")?);
            let dst = IpAddr::from(addr::<4>(bytes, 16).ok_or("truncated")?);
            (src, dst, ihl, total.min(bytes.len()))
        }
        6 => {
            if bytes.len() < 40 {
                return Err("truncated IPv6 header".into());
            }
            match bytes[6] {
                6 => {}
                0 | 43 | 44 | 60 => return Err("IPv6 extension headers are not decoded".into()),
                _ => return Err("not TCP".into()),
            }
            let payload = usize::from(be16(bytes, 4).ok_or("truncated")?);
            let src = IpAddr::from(addr::<16>(bytes, 8).ok_or("truncated")?);
            let dst = IpAddr::from(addr::<16>(bytes, 24).ok_or("truncated")?);
            (src, dst, 40, (40 + payload).min(bytes.len()))
        }
        v => return Err(format!("IP version {v}")),
    };
    let tcp = bytes.get(ihl..end).ok_or("truncated TCP header")?;
    if tcp.len() < 20 {
        return Err("truncated TCP header".into());
    }
    let off = usize::from(tcp[12] >> 4) * 4;
    if off < 20 || off > tcp.len() {
        return Err("bad TCP data offset".into());
    }
    let (options, unknown_options) = decode_options(&tcp[20..off])?;
    Ok(WireSegment {
        src,
        dst,
        src_port: be16(tcp, 0).ok_or("truncated")?,
        dst_port: be16(tcp, 2).ok_or("truncated")?,
        seq: be32(tcp, 4).ok_or("truncated")?,
        ack: be32(tcp, 8).ok_or("truncated")?,
        flags: flags_of(tcp[13]),
        win: be16(tcp, 14).ok_or("truncated")?,
        urg: be16(tcp, 18).ok_or("truncated")?,
        options,
        unknown_options,
        payload_len: u32::try_from(tcp.len() - off).unwrap_or(u32::MAX),
        ecn: match first >> 4 {
            4 => bytes.get(1).map_or(0, |t| t & 3),
            _ => be16(bytes, 0).map_or(0, |w| ((w >> 4) & 3) as u8),
        },
    })
}

/// Decodes an options area in wire order; EOL ends it (and is not listed).
fn decode_options(mut area: &[u8]) -> Result<(Vec<TcpOpt>, Vec<u8>), String> {
    let mut opts = Vec::new();
    let mut unknown = Vec::new();
    while let Some((&kind, rest)) = area.split_first() {
        match kind {
            0 => break,
            1 => {
                opts.push(TcpOpt::Nop);
                area = rest;
                continue;
            }
            _ => {}
        }
        let len = usize::from(*rest.first().ok_or("option without length")?);
        if len < 2 || len > area.len() {
            return Err(format!("option {kind} has bad length {len}"));
        }
        let body = &area[2..len];
        match (kind, body) {
            (2, [a, b]) => opts.push(TcpOpt::Mss(u16::from_be_bytes([*a, *b]))),
            (3, [s]) => opts.push(TcpOpt::WScale(*s)),
            (4, []) => opts.push(TcpOpt::SackPermitted),
            (5, b) if b.len() % 8 == 0 => opts.push(TcpOpt::Sack(
                b.chunks_exact(8)
                    .map(|c| {
                        (
                            be32(c, 0).unwrap_or_default(),
                            be32(c, 4).unwrap_or_default(),
                        )
                    })
                    .collect(),
            )),
            (8, b) if b.len() == 8 => opts.push(TcpOpt::Timestamp {
                val: be32(b, 0).unwrap_or_default(),
                ecr: be32(b, 4).unwrap_or_default(),
            }),
            (34, cookie) => opts.push(TcpOpt::FastOpen {
                exp: false,
                cookie: cookie.to_vec(),
            }),
            (254, [0xf9, 0x89, cookie @ ..]) => opts.push(TcpOpt::FastOpen {
                exp: true,
                cookie: cookie.to_vec(),
            }),
            (19, sig) if sig.len() == 16 => opts.push(TcpOpt::Md5(sig.to_vec())),
            _ => unknown.push(kind),
        }
        area = &area[len..];
    }
    Ok((opts, unknown))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_then_decode_round_trips_and_the_stack_accepts_checksums() {
        let opts = [
            TcpOpt::Mss(1000),
            TcpOpt::SackPermitted,
            TcpOpt::Nop,
            TcpOpt::Nop,
            TcpOpt::Nop,
            TcpOpt::WScale(7),
        ];
        for (src, dst) in [("192.0.2.2", "192.0.2.1"), ("2001:db8::2", "2001:db8::1")] {
            round_trip(src.parse().unwrap(), dst.parse().unwrap(), &opts);
        }
    }

    fn round_trip(src: IpAddr, dst: IpAddr, opts: &[TcpOpt]) {
        let o = Outgoing {
            src,
            dst,
            src_port: 40000,
            dst_port: 8080,
            seq: 0xffff_fff0,
            ack: 7,
            flags: TcpFlags {
                syn: true,
                ..TcpFlags::default()
            },
            win: 32792,
            urg: 0,
            options: opts,
            payload_len: 3,
            ecn: 0,
        };
        let p = build(&o).expect("builds");
        let d = decode(&p).expect("decodes");
        assert_eq!((d.src, d.dst), (src, dst));
        assert_eq!(d.options, opts.to_vec());
        assert_eq!(
            (d.seq, d.ack, d.win, d.payload_len),
            (0xffff_fff0, 7, 32792, 3)
        );
        let seg = tcp_stack::packet::parse(&p, |_| true).expect("stack parses it");
        assert_eq!(seg.options.mss, Some(1000));
        assert_eq!(seg.options.window_scale, Some(7));
    }

    #[test]
    fn decode_never_panics_on_garbage() {
        for version in [0x45, 0x60] {
            for n in 0..100u8 {
                let mut b: Vec<u8> = (0..n).map(|i| i.wrapping_mul(37)).collect();
                if let Some(f) = b.first_mut() {
                    *f = version;
                }
                let _ = decode(&b);
            }
        }
    }

    #[test]
    fn mixed_ip_versions_are_an_error() {
        let o = Outgoing {
            src: "192.0.2.2".parse().unwrap(),
            dst: "2001:db8::1".parse().unwrap(),
            src_port: 1,
            dst_port: 2,
            seq: 0,
            ack: 0,
            flags: TcpFlags::default(),
            win: 0,
            urg: 0,
            options: &[],
            payload_len: 0,
            ecn: 0,
        };
        assert!(build(&o).unwrap_err().contains("two IP versions"));
    }

    #[test]
    fn too_many_options_is_an_error() {
        let opts = vec![TcpOpt::Mss(1); 11];
        assert!(encode_options(&opts).is_err());
    }

    /// RFC 7413 4.1.1 (kind 34 and the experimental 254/0xF989) and
    /// RFC 2385 3.0 (kind 19) encode and decode back to the same options.
    #[test]
    fn fast_open_and_md5_round_trip() {
        let opts = vec![
            TcpOpt::FastOpen {
                exp: false,
                cookie: vec![0xab, 0xcd, 0x12, 0x34],
            },
            TcpOpt::FastOpen {
                exp: true,
                cookie: vec![],
            },
            TcpOpt::Md5((0u8..16).collect()),
        ];
        let bytes = encode_options(&opts).unwrap();
        assert_eq!(&bytes[..8], &[34, 6, 0xab, 0xcd, 0x12, 0x34, 254, 4]);
        assert_eq!(&bytes[8..12], &[0xf9, 0x89, 19, 18]);
        let (back, unknown) = decode_options(&bytes).unwrap();
        assert_eq!(back, opts);
        assert!(unknown.is_empty());
        // An experimental option with another magic stays unknown.
        let (back, unknown) = decode_options(&[254, 4, 0x12, 0x34]).unwrap();
        assert!(back.is_empty());
        assert_eq!(unknown, vec![254]);
    }
}
