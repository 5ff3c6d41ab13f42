//! Parsing and building whole IPv4/IPv6 packets carrying TCP segments
//! (RFC 9293 §3.1 header format, §3.2 options; RFC 791 and RFC 8200 for the
//! network layer). Input is hostile: anything malformed is dropped with a
//! counted [`DropReason`], never a panic.

use crate::seq::SeqNum;
use etherparse::{IpNumber, IpSlice, TcpHeader, TcpSlice};
use std::net::IpAddr;

/// TCP option kinds (RFC 9293 §3.2, RFC 7323 §§2.2 and 3.2, RFC 2018 §2).
mod kind {
    pub const EOL: u8 = 0;
    pub const NOP: u8 = 1;
    pub const MSS: u8 = 2;
    pub const WINDOW_SCALE: u8 = 3;
    pub const SACK_PERMITTED: u8 = 4;
    pub const SACK: u8 = 5;
    pub const TIMESTAMPS: u8 = 8;
}

/// The options of a segment that the stack understands (RFC 9293 §3.2).
/// Unknown options are skipped by their length, as §3.2 requires.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TcpOptions {
    /// Maximum segment size (RFC 9293 §3.7.1), only meaningful on SYNs.
    pub mss: Option<u16>,
    /// Window scale shift as sent (RFC 7323 §2.2); values above 14 are
    /// used as 14 by the receiver (§2.3).
    pub window_scale: Option<u8>,
    /// SACK permitted (RFC 2018 §2).
    pub sack_permitted: bool,
    /// SACK blocks (RFC 2018 §3), as received or to be sent.
    pub sack_blocks: crate::sack::SackBlocks,
    /// TSval, TSecr (RFC 7323 §3.2); parsed, not acted on.
    pub timestamps: Option<(u32, u32)>,
}

impl TcpOptions {
    /// Encodes the options, padded with NOPs and EOL to a multiple of four
    /// octets (RFC 9293 §3.1 data offset).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode_into(&mut out);
        out
    }

    /// [`TcpOptions::encode`] appended to `out`; returns the octets added.
    pub fn encode_into(&self, out: &mut Vec<u8>) -> usize {
        let start = out.len();
        if let Some(mss) = self.mss {
            out.push(kind::MSS);
            out.push(4);
            out.extend_from_slice(&mss.to_be_bytes());
        }
        if let Some(ws) = self.window_scale {
            out.push(kind::NOP);
            out.push(kind::WINDOW_SCALE);
            out.push(3);
            out.push(ws);
        }
        if self.sack_permitted {
            out.push(kind::NOP);
            out.push(kind::NOP);
            out.push(kind::SACK_PERMITTED);
            out.push(2);
        }
        if !self.sack_blocks.is_empty() {
            // RFC 2018 §3: kind 5, length 2 + 8 per block, each block its
            // left and right edge; two NOPs keep the edges word-aligned.
            out.extend_from_slice(&[kind::NOP, kind::NOP, kind::SACK]);
            out.push(2 + 8 * self.sack_blocks.len() as u8);
            for (l, r) in self.sack_blocks.as_slice() {
                out.extend_from_slice(&l.0.to_be_bytes());
                out.extend_from_slice(&r.0.to_be_bytes());
            }
        }
        if let Some((val, ecr)) = self.timestamps {
            out.push(kind::NOP);
            out.push(kind::NOP);
            out.push(kind::TIMESTAMPS);
            out.push(10);
            out.extend_from_slice(&val.to_be_bytes());
            out.extend_from_slice(&ecr.to_be_bytes());
        }
        while !(out.len() - start).is_multiple_of(4) {
            out.push(kind::EOL);
        }
        out.len() - start
    }

    /// The encoded length, padding included.
    fn encoded_len(&self) -> usize {
        let raw: usize = self.mss.map_or(0, |_| 4)
            + self.window_scale.map_or(0, |_| 4)
            + if self.sack_permitted { 4 } else { 0 }
            + self.sack_blocks.encoded_len()
            + self.timestamps.map_or(0, |_| 12);
        raw.div_ceil(4) * 4
    }

    /// Parses an options area. Errors: an option whose length octet is
    /// missing, below 2, runs past the area, or does not fit its kind.
    pub fn parse(mut area: &[u8]) -> Result<TcpOptions, DropReason> {
        let mut opts = TcpOptions::default();
        while let Some((&k, rest)) = area.split_first() {
            match k {
                kind::EOL => break,
                kind::NOP => {
                    area = rest;
                    continue;
                }
                _ => {}
            }
            let len = usize::from(*rest.first().ok_or(DropReason::BadOptions)?);
            if len < 2 || len > area.len() {
                return Err(DropReason::BadOptions);
            }
            let body = area.get(2..len).ok_or(DropReason::BadOptions)?;
            match (k, body) {
                (kind::MSS, [a, b]) => opts.mss = Some(u16::from_be_bytes([*a, *b])),
                (kind::WINDOW_SCALE, [s]) => opts.window_scale = Some(*s),
                (kind::SACK_PERMITTED, []) => opts.sack_permitted = true,
                (kind::SACK, b) if !b.is_empty() && b.len() % 8 == 0 && b.len() <= 32 => {
                    opts.sack_blocks = crate::sack::SackBlocks::EMPTY;
                    for e in b.chunks_exact(8) {
                        let w = |i: usize| {
                            SeqNum(u32::from_be_bytes([e[i], e[i + 1], e[i + 2], e[i + 3]]))
                        };
                        opts.sack_blocks.push(w(0), w(4));
                    }
                }
                (kind::TIMESTAMPS, b) if b.len() == 8 => {
                    let w = |i: usize| -> u32 {
                        let mut x = [0u8; 4];
                        if let Some(s) = b.get(i..i + 4) {
                            x.copy_from_slice(s);
                        }
                        u32::from_be_bytes(x)
                    };
                    opts.timestamps = Some((w(0), w(4)));
                }
                (
                    kind::MSS
                    | kind::WINDOW_SCALE
                    | kind::SACK_PERMITTED
                    | kind::SACK
                    | kind::TIMESTAMPS,
                    _,
                ) => return Err(DropReason::BadOptions),
                _ => {} // unknown kind: skipped by its length
            }
            area = area.get(len..).unwrap_or(&[]);
        }
        Ok(opts)
    }
}

/// TCP control bits (RFC 9293 §3.1).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Flags {
    /// Synchronize sequence numbers.
    pub syn: bool,
    /// The acknowledgment field is significant.
    pub ack: bool,
    /// No more data from the sender.
    pub fin: bool,
    /// Reset the connection.
    pub rst: bool,
    /// Push.
    pub psh: bool,
    /// The urgent pointer is significant.
    pub urg: bool,
}

impl Flags {
    /// packetdrill notation: `S`, `F`, `R`, `P` then `.` for ACK.
    pub fn text(&self) -> String {
        let mut s = String::new();
        for (on, c) in [
            (self.syn, 'S'),
            (self.fin, 'F'),
            (self.rst, 'R'),
            (self.psh, 'P'),
        ] {
            if on {
                s.push(c);
            }
        }
        if self.ack {
            s.push('.');
        }
        s
    }

    /// The control bits in the table's vocabulary (`tcp_spec::Ctl`).
    pub fn ctl(&self) -> Vec<tcp_spec::Ctl> {
        let mut v = Vec::new();
        if self.syn {
            v.push(tcp_spec::Ctl::Syn);
        }
        if self.ack {
            v.push(tcp_spec::Ctl::Ack);
        }
        if self.fin {
            v.push(tcp_spec::Ctl::Fin);
        }
        if self.rst {
            v.push(tcp_spec::Ctl::Rst);
        }
        v
    }
}

/// One TCP segment with its network-layer addresses. The payload is owned
/// (`Vec<u8>`, the default), borrowed from the packet it arrived in
/// ([`SegmentIn`]), or the parts of a send buffer ([`Payload`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Segment<P = Vec<u8>> {
    /// Source address.
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// SEG.SEQ.
    pub seq: SeqNum,
    /// SEG.ACK.
    pub ack: SeqNum,
    /// Control bits.
    pub flags: Flags,
    /// The window field as carried (unscaled).
    pub window: u16,
    /// The options.
    pub options: TcpOptions,
    /// The data.
    pub payload: P,
}

/// A segment as parsed, its payload borrowed from the packet.
pub type SegmentIn<'a> = Segment<&'a [u8]>;

/// Payload octets in up to two pieces (a ring buffer's two halves).
pub trait Payload {
    /// The octets, in order, as up to two slices.
    fn parts(&self) -> [&[u8]; 2];

    /// Number of octets.
    fn octets(&self) -> usize {
        self.parts().iter().map(|p| p.len()).sum()
    }
}

impl Payload for Vec<u8> {
    fn parts(&self) -> [&[u8]; 2] {
        [self, &[]]
    }
}

impl Payload for &[u8] {
    fn parts(&self) -> [&[u8]; 2] {
        [self, &[]]
    }
}

impl Payload for [&[u8]; 2] {
    fn parts(&self) -> [&[u8]; 2] {
        *self
    }
}

impl<'a> SegmentIn<'a> {
    /// The same segment owning a copy of its payload.
    pub fn owned(&self) -> Segment {
        self.with_payload(self.payload.to_vec())
    }
}

impl<P> Segment<P> {
    /// The same header with another payload.
    pub fn with_payload<Q>(&self, payload: Q) -> Segment<Q> {
        Segment {
            src: self.src,
            dst: self.dst,
            src_port: self.src_port,
            dst_port: self.dst_port,
            seq: self.seq,
            ack: self.ack,
            flags: self.flags,
            window: self.window,
            options: self.options.clone(),
            payload,
        }
    }
}

impl<P: Payload> Segment<P> {
    /// SEG.LEN: payload octets plus one each for SYN and FIN (RFC 9293 §3.4).
    pub fn seg_len(&self) -> u32 {
        (self.payload.octets() as u32)
            .wrapping_add(u32::from(self.flags.syn))
            .wrapping_add(u32::from(self.flags.fin))
    }
}

/// Why an inbound packet was dropped before reaching TCP processing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DropReason {
    /// Shorter than its headers or length fields claim.
    Truncated,
    /// Not IPv4/IPv6, or a malformed IP header or extension header.
    BadIpHeader,
    /// IPv4 header checksum mismatch (RFC 791 §3.1).
    BadIpChecksum,
    /// An IP fragment (the stack does not reassemble IP).
    Fragment,
    /// Not TCP.
    WrongProtocol,
    /// Destined to an address that is not ours.
    NotOurAddress,
    /// From or to a broadcast, multicast or unspecified address, or mixing
    /// families (RFC 9293 §3.10.7.2, RFC 1122 §4.2.3.10).
    BadAddress,
    /// TCP data offset below 5 or beyond the segment (RFC 9293 §3.1).
    BadDataOffset,
    /// TCP checksum mismatch (RFC 9293 §3.1).
    BadChecksum,
    /// Malformed or oversized TCP options (RFC 9293 §3.2).
    BadOptions,
    /// Source or destination port 0.
    BadPort,
}

/// Counters of dropped input and other noteworthy events.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Packets handed to [`crate::Endpoint::handle_packet`].
    pub packets_in: u64,
    /// Packets queued for sending.
    pub packets_out: u64,
    /// Dropped: [`DropReason::Truncated`].
    pub truncated: u64,
    /// Dropped: [`DropReason::BadIpHeader`].
    pub bad_ip_header: u64,
    /// Dropped: [`DropReason::BadIpChecksum`].
    pub bad_ip_checksum: u64,
    /// Dropped: [`DropReason::Fragment`].
    pub fragment: u64,
    /// Dropped: [`DropReason::WrongProtocol`].
    pub wrong_protocol: u64,
    /// Dropped: [`DropReason::NotOurAddress`].
    pub not_our_address: u64,
    /// Dropped: [`DropReason::BadAddress`].
    pub bad_address: u64,
    /// Dropped: [`DropReason::BadDataOffset`].
    pub bad_data_offset: u64,
    /// Dropped: [`DropReason::BadChecksum`].
    pub bad_checksum: u64,
    /// Dropped: [`DropReason::BadOptions`].
    pub bad_options: u64,
    /// Dropped: [`DropReason::BadPort`].
    pub bad_port: u64,
    /// SYNs dropped because the listener's backlog was full of
    /// established-but-not-accepted connections (nothing to evict).
    pub backlog_full: u64,
    /// Half-open (SYN-RECEIVED) connections deleted to make room for a new
    /// SYN when the backlog was full (RFC 4987 §3.4).
    pub half_open_evicted: u64,
    /// Challenge ACKs suppressed by the RFC 5961 §7 rate limit.
    pub challenge_acks_suppressed: u64,
    /// Challenge ACKs sent.
    pub challenge_acks: u64,
    /// Segments retransmitted on timeout.
    pub retransmits: u64,
    /// Segments retransmitted on the third duplicate ACK.
    pub fast_retransmits: u64,
    /// Expiries of the retransmission timer with data or FIN outstanding
    /// (RFC 6298 §5.4; probes into a zero window not counted).
    pub timeouts: u64,
    /// Loss recovery episodes entered (RFC 6675 §5 step 4: on DupThresh,
    /// `IsLost` or a loss RACK found).
    pub recoveries: u64,
    /// Segments RACK took as lost (RFC 8985 §6.2).
    pub rack_lost: u64,
    /// Tail loss probes sent (RFC 8985 §7.3).
    pub loss_probes: u64,
    /// Outbound segments that could not be encoded (never expected).
    pub build_errors: u64,
}

impl Stats {
    /// Counts one drop.
    pub fn count(&mut self, r: DropReason) {
        let c = match r {
            DropReason::Truncated => &mut self.truncated,
            DropReason::BadIpHeader => &mut self.bad_ip_header,
            DropReason::BadIpChecksum => &mut self.bad_ip_checksum,
            DropReason::Fragment => &mut self.fragment,
            DropReason::WrongProtocol => &mut self.wrong_protocol,
            DropReason::NotOurAddress => &mut self.not_our_address,
            DropReason::BadAddress => &mut self.bad_address,
            DropReason::BadDataOffset => &mut self.bad_data_offset,
            DropReason::BadChecksum => &mut self.bad_checksum,
            DropReason::BadOptions => &mut self.bad_options,
            DropReason::BadPort => &mut self.bad_port,
        };
        *c = c.saturating_add(1);
    }

    /// Total of all drop counters.
    pub fn dropped(&self) -> u64 {
        [
            self.truncated,
            self.bad_ip_header,
            self.bad_ip_checksum,
            self.fragment,
            self.wrong_protocol,
            self.not_our_address,
            self.bad_address,
            self.bad_data_offset,
            self.bad_checksum,
            self.bad_options,
            self.bad_port,
        ]
        .iter()
        .fold(0u64, |a, b| a.saturating_add(*b))
    }
}

fn address_usable(a: IpAddr) -> bool {
    match a {
        IpAddr::V4(v) => !(v.is_unspecified() || v.is_broadcast() || v.is_multicast()),
        IpAddr::V6(v) => !(v.is_unspecified() || v.is_multicast()),
    }
}

/// Parses a whole IP packet into a segment. `is_local` says whether a
/// destination address is ours.
pub fn parse(bytes: &[u8], is_local: impl Fn(IpAddr) -> bool) -> Result<Segment, DropReason> {
    parse_in(bytes, is_local).map(|s| s.owned())
}

/// [`parse`] without copying the payload out of the packet.
pub fn parse_in(
    bytes: &[u8],
    is_local: impl Fn(IpAddr) -> bool,
) -> Result<SegmentIn<'_>, DropReason> {
    let ip = IpSlice::from_slice(bytes).map_err(|e| match e {
        etherparse::err::ip::SliceError::Len(_) => DropReason::Truncated,
        etherparse::err::ip::SliceError::IpHeaders(_) => DropReason::BadIpHeader,
    })?;
    if let IpSlice::Ipv4(v4) = &ip {
        // RFC 791 §3.1: the header, its checksum included, sums to all ones.
        let header = v4.header().slice();
        if crate::checksum::fold(crate::checksum::add(0, header)) != 0xffff {
            return Err(DropReason::BadIpChecksum);
        }
    }
    if ip.is_fragmenting_payload() {
        return Err(DropReason::Fragment);
    }
    if ip.payload_ip_number() != IpNumber::TCP {
        return Err(DropReason::WrongProtocol);
    }
    let (src, dst) = (ip.source_addr(), ip.destination_addr());
    if !is_local(dst) {
        return Err(DropReason::NotOurAddress);
    }
    if !address_usable(src) || !address_usable(dst) {
        return Err(DropReason::BadAddress);
    }
    let tcp_bytes = ip.payload().payload;
    if tcp_bytes.len() < TcpHeader::MIN_LEN {
        return Err(DropReason::Truncated);
    }
    let offset = usize::from(tcp_bytes.get(12).copied().unwrap_or(0) >> 4) * 4;
    if offset < TcpHeader::MIN_LEN || offset > tcp_bytes.len() {
        return Err(DropReason::BadDataOffset);
    }
    let tcp = TcpSlice::from_slice(tcp_bytes).map_err(|_| DropReason::BadDataOffset)?;
    // The sum over pseudo-header and segment, checksum included, is all
    // ones when the checksum is right (RFC 1071 §1).
    let sum = crate::checksum::pseudo_header(src, dst, tcp_bytes.len());
    if crate::checksum::fold(crate::checksum::add(sum, tcp_bytes)) != 0xffff {
        return Err(DropReason::BadChecksum);
    }
    if tcp.source_port() == 0 || tcp.destination_port() == 0 {
        return Err(DropReason::BadPort);
    }
    let options = TcpOptions::parse(tcp.options())?;
    Ok(Segment {
        src,
        dst,
        src_port: tcp.source_port(),
        dst_port: tcp.destination_port(),
        seq: SeqNum(tcp.sequence_number()),
        ack: SeqNum(tcp.acknowledgment_number()),
        flags: Flags {
            syn: tcp.syn(),
            ack: tcp.ack(),
            fin: tcp.fin(),
            rst: tcp.rst(),
            psh: tcp.psh(),
            urg: tcp.urg(),
        },
        window: tcp.window_size(),
        options,
        payload: tcp.payload(),
    })
}

/// Why a segment could not be encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BuildError {
    /// One address is IPv4, the other IPv6.
    #[error("source and destination are of different address families")]
    MixedFamilies,
    /// The options do not fit the 40 octets a TCP header has for them.
    #[error("options longer than 40 octets")]
    OptionsTooLong,
    /// The packet would exceed the IP length field.
    #[error("segment too large for the IP header")]
    TooLarge,
}

/// Encodes a segment as a whole IP packet with TTL/hop limit 64, the IPv4
/// header checksum and the TCP checksum computed.
pub fn build<P: Payload>(seg: &Segment<P>) -> Result<Vec<u8>, BuildError> {
    let mut out = Vec::new();
    build_into(seg, &mut out)?;
    Ok(out)
}

/// [`build`] into `out`, replacing what it held (its allocation is reused).
pub fn build_into<P: Payload>(seg: &Segment<P>, out: &mut Vec<u8>) -> Result<(), BuildError> {
    use crate::checksum;
    out.clear();
    let opts_len = seg.options.encoded_len();
    if opts_len > 40 {
        return Err(BuildError::OptionsTooLong);
    }
    let tcp_len = 20 + opts_len + seg.payload.octets();
    let v6 = match (seg.src, seg.dst) {
        (IpAddr::V4(_), IpAddr::V4(_)) => false,
        (IpAddr::V6(_), IpAddr::V6(_)) => true,
        _ => return Err(BuildError::MixedFamilies),
    };
    let ip_len = if v6 { 40 } else { 20 };
    let total = u16::try_from(if v6 { tcp_len } else { ip_len + tcp_len })
        .map_err(|_| BuildError::TooLarge)?;
    out.reserve(ip_len + tcp_len);
    match (seg.src, seg.dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            // RFC 791 §3.1: version 4, IHL 5, DF set, TTL 64, protocol 6.
            out.extend_from_slice(&[0x45, 0]);
            out.extend_from_slice(&total.to_be_bytes());
            out.extend_from_slice(&[0, 0, 0x40, 0, 64, 6, 0, 0]);
            out.extend_from_slice(&s.octets());
            out.extend_from_slice(&d.octets());
            let sum = checksum::finish(checksum::add(0, out));
            out[10..12].copy_from_slice(&sum.to_be_bytes());
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            // RFC 8200 §3: version 6, payload length, next header 6, hop limit 64.
            out.extend_from_slice(&[0x60, 0, 0, 0]);
            out.extend_from_slice(&total.to_be_bytes());
            out.extend_from_slice(&[6, 64]);
            out.extend_from_slice(&s.octets());
            out.extend_from_slice(&d.octets());
        }
        _ => return Err(BuildError::MixedFamilies),
    }
    // RFC 9293 §3.1 header.
    let f = seg.flags;
    let bits = u8::from(f.fin)
        | u8::from(f.syn) << 1
        | u8::from(f.rst) << 2
        | u8::from(f.psh) << 3
        | u8::from(f.ack) << 4
        | u8::from(f.urg) << 5;
    let ack = if f.ack { seg.ack.0 } else { 0 };
    out.extend_from_slice(&seg.src_port.to_be_bytes());
    out.extend_from_slice(&seg.dst_port.to_be_bytes());
    out.extend_from_slice(&seg.seq.0.to_be_bytes());
    out.extend_from_slice(&ack.to_be_bytes());
    out.extend_from_slice(&[((5 + opts_len / 4) as u8) << 4, bits]);
    out.extend_from_slice(&seg.window.to_be_bytes());
    out.extend_from_slice(&[0, 0, 0, 0]); // checksum, urgent pointer
    seg.options.encode_into(out);
    for part in seg.payload.parts() {
        out.extend_from_slice(part);
    }
    let sum = checksum::pseudo_header(seg.src, seg.dst, tcp_len);
    let sum = checksum::finish(checksum::add(sum, &out[ip_len..]));
    out[ip_len + 16..ip_len + 18].copy_from_slice(&sum.to_be_bytes());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn a4() -> (IpAddr, IpAddr) {
        (
            IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2)),
            IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
        )
    }

    fn seg(src: IpAddr, dst: IpAddr) -> Segment {
        Segment {
            src,
            dst,
            src_port: 40000,
            dst_port: 8080,
            seq: SeqNum(0xfffffff0),
            ack: SeqNum(77),
            flags: Flags {
                syn: true,
                ack: true,
                ..Flags::default()
            },
            window: 65535,
            options: TcpOptions {
                mss: Some(1460),
                window_scale: Some(7),
                sack_permitted: true,
                sack_blocks: crate::sack::SackBlocks::EMPTY,
                timestamps: Some((1, 2)),
            },
            payload: b"hello".to_vec(),
        }
    }

    fn local(dst: IpAddr) -> impl Fn(IpAddr) -> bool {
        move |a| a == dst
    }

    #[test]
    fn encoded_len_is_what_encode_writes() {
        for bits in 0u8..64 {
            let mut blocks = crate::sack::SackBlocks::EMPTY;
            for i in 0..u32::from(bits >> 4) {
                blocks.push(SeqNum(i * 100), SeqNum(i * 100 + 50));
            }
            let o = TcpOptions {
                mss: (bits & 1 != 0).then_some(1460),
                window_scale: (bits & 2 != 0).then_some(7),
                sack_permitted: bits & 4 != 0,
                sack_blocks: blocks,
                timestamps: (bits & 8 != 0).then_some((1, 2)),
            };
            assert_eq!(o.encoded_len(), o.encode().len(), "{o:?}");
        }
    }

    #[test]
    fn sack_blocks_round_trip() {
        let (s, d) = a4();
        let mut x = seg(s, d);
        x.flags.syn = false;
        x.options = TcpOptions::default();
        for n in 1..=4u32 {
            x.options
                .sack_blocks
                .push(SeqNum(u32::MAX - 10 * n), SeqNum(5 * n));
            let bytes = build(&x).expect("builds");
            let back = parse(&bytes, local(d)).expect("parses");
            assert_eq!(back.options.sack_blocks.len(), n as usize);
            assert_eq!(back, x);
        }
        assert!(!x.options.sack_blocks.push(SeqNum(1), SeqNum(2)));
    }

    #[test]
    fn round_trip_v4_and_v6() {
        let (s, d) = a4();
        let x = seg(s, d);
        let bytes = build(&x).expect("builds");
        assert_eq!(parse(&bytes, local(d)), Ok(x));
        let s6 = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2));
        let d6 = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1));
        let y = seg(s6, d6);
        let bytes = build(&y).expect("builds");
        assert_eq!(parse(&bytes, local(d6)), Ok(y));
        assert_eq!(build(&seg(s, d6)), Err(BuildError::MixedFamilies));
    }

    /// Recomputes the TCP checksum of a v4 packet after an edit.
    fn fix_tcp_checksum(p: &mut [u8]) {
        p[36] = 0;
        p[37] = 0;
        let mut sum: u32 = 0;
        let tcp_len = p.len() - 20;
        let mut add = |b: &[u8]| {
            for c in b.chunks(2) {
                let w = if c.len() == 2 {
                    u16::from_be_bytes([c[0], c[1]])
                } else {
                    u16::from(c[0]) << 8
                };
                sum += u32::from(w);
            }
        };
        let (src, dst) = (p[12..16].to_vec(), p[16..20].to_vec());
        add(&src);
        add(&dst);
        add(&[0, 6]);
        add(&(tcp_len as u16).to_be_bytes());
        add(&p[20..]);
        while sum > 0xffff {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        let c = !(sum as u16);
        p[36..38].copy_from_slice(&c.to_be_bytes());
    }

    #[test]
    fn every_drop_reason() {
        let (s, d) = a4();
        let good = build(&seg(s, d)).expect("builds");
        let is_local = local(d);
        let mut stats = Stats::default();
        let mut check = |bytes: &[u8], want: DropReason| {
            let got = parse(bytes, &is_local);
            assert_eq!(got.as_ref().err(), Some(&want), "{got:?}");
            stats.count(want);
        };
        check(&good[..10], DropReason::Truncated);
        check(&good[..good.len() - 1], DropReason::Truncated);
        check(&[0x50; 40], DropReason::BadIpHeader);
        let mut p = good.clone();
        p[8] ^= 1; // TTL changes, header checksum stale
        check(&p, DropReason::BadIpChecksum);
        // One header octet changed, the header checksum recomputed by
        // etherparse (an implementation independent of ours).
        let altered = |at: usize, value: u8| {
            let mut p = good.clone();
            p[at] = value;
            let c = etherparse::Ipv4HeaderSlice::from_slice(&p)
                .expect("v4")
                .to_header()
                .calc_header_checksum();
            p[10..12].copy_from_slice(&c.to_be_bytes());
            p
        };
        check(&altered(9, 17), DropReason::WrongProtocol); // UDP
        check(&altered(6, 0x20), DropReason::Fragment); // more fragments
        assert_eq!(parse(&good, |_| false), Err(DropReason::NotOurAddress));
        let bcast = build(&seg(IpAddr::V4(Ipv4Addr::BROADCAST), d)).expect("builds");
        check(&bcast, DropReason::BadAddress);
        let mut p = good.clone();
        p[32] = 0x40; // data offset 4
        check(&p, DropReason::BadDataOffset);
        let mut p = good.clone();
        p[32] = 0xf0; // data offset 60 > segment
        let short = &mut p[..20 + 40];
        let n = short.len() as u16;
        short[2..4].copy_from_slice(&n.to_be_bytes());
        short[10] = 0;
        short[11] = 0;
        let c = etherparse::Ipv4HeaderSlice::from_slice(short)
            .expect("v4")
            .to_header()
            .calc_header_checksum();
        short[10..12].copy_from_slice(&c.to_be_bytes());
        check(short, DropReason::BadDataOffset);
        let mut p = good.clone();
        let last = p.len() - 1;
        p[last] ^= 0xff;
        check(&p, DropReason::BadChecksum);
        // Options start at 40: MSS with length 9 runs past the area.
        let mut p = good.clone();
        p[41] = 9;
        fix_tcp_checksum(&mut p);
        check(&p, DropReason::BadOptions);
        // MSS with length 3: wrong length for its kind.
        let mut p = good.clone();
        p[41] = 3;
        fix_tcp_checksum(&mut p);
        check(&p, DropReason::BadOptions);
        // Length 0 would loop forever if accepted.
        let mut p = good.clone();
        p[40] = 99;
        p[41] = 0;
        fix_tcp_checksum(&mut p);
        check(&p, DropReason::BadOptions);
        let mut x = seg(s, d);
        x.src_port = 0;
        check(&build(&x).expect("builds"), DropReason::BadPort);
        assert_eq!(stats.dropped(), 14);
    }

    #[test]
    fn unknown_options_are_skipped() {
        let o = TcpOptions::parse(&[1, 30, 4, 0, 0, 2, 4, 5, 0xb4, 0]).expect("parses");
        assert_eq!(o.mss, Some(1460));
        assert_eq!(TcpOptions::parse(&[2]), Err(DropReason::BadOptions));
        assert_eq!(
            TcpOptions::parse(&[5, 6, 0, 0, 0, 0]),
            Err(DropReason::BadOptions)
        );
    }

    #[test]
    fn garbage_never_panics() {
        let (s, d) = a4();
        let good = build(&seg(s, d)).expect("builds");
        let mut x = 0x1234_5678u32;
        for i in 0..2000 {
            let mut p = good.clone();
            for _ in 0..(i % 7 + 1) {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                let pos = x as usize % p.len();
                p[pos] = (x >> 8) as u8;
            }
            p.truncate(x as usize % (p.len() + 1));
            let _ = parse(&p, |_| true);
        }
    }
}
