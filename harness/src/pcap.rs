//! Classic pcap files (the format tcpdump, tshark and Wireshark read) with
//! link type LINKTYPE_RAW (101): each record is a bare IPv4 or IPv6 packet.
//! The reader also takes Ethernet captures (LINKTYPE_ETHERNET, 1, with or
//! without one 802.1Q tag; frames that are not IP are skipped) and
//! nanosecond-resolution files, as `tcpdump -i eth0 -w` writes them.

use std::io::{self, Read, Write};
use std::time::Duration;

const MAGIC_MICROS: u32 = 0xa1b2_c3d4;
const MAGIC_NANOS: u32 = 0xa1b2_3c4d;
/// LINKTYPE_ETHERNET: a 14-octet Ethernet II header before the packet.
pub const LINKTYPE_ETHERNET: u32 = 1;
/// LINKTYPE_RAW: the packet starts with the IP header, version in its first nibble.
pub const LINKTYPE_RAW: u32 = 101;
const SNAPLEN: u32 = 262_144;

/// Writes a pcap stream: a global header, then one record per packet.
pub struct PcapWriter<W: Write> {
    out: W,
}

impl<W: Write> PcapWriter<W> {
    /// Starts the file (little-endian, microsecond timestamps).
    pub fn new(mut out: W) -> io::Result<Self> {
        let mut h = Vec::with_capacity(24);
        h.extend_from_slice(&MAGIC_MICROS.to_le_bytes());
        h.extend_from_slice(&2u16.to_le_bytes()); // version 2.4
        h.extend_from_slice(&4u16.to_le_bytes());
        h.extend_from_slice(&0i32.to_le_bytes()); // GMT offset
        h.extend_from_slice(&0u32.to_le_bytes()); // timestamp accuracy
        h.extend_from_slice(&SNAPLEN.to_le_bytes());
        h.extend_from_slice(&LINKTYPE_RAW.to_le_bytes());
        out.write_all(&h)?;
        Ok(PcapWriter { out })
    }

    /// Appends one IP packet seen at `at` (time since the capture began).
    pub fn write_packet(&mut self, at: Duration, packet: &[u8]) -> io::Result<()> {
        let len = u32::try_from(packet.len())
            .ok()
            .filter(|l| *l <= SNAPLEN)
            .ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "packet larger than the snap length",
                )
            })?;
        let secs = u32::try_from(at.as_secs()).unwrap_or(u32::MAX);
        let mut r = Vec::with_capacity(16 + packet.len());
        r.extend_from_slice(&secs.to_le_bytes());
        r.extend_from_slice(&at.subsec_micros().to_le_bytes());
        r.extend_from_slice(&len.to_le_bytes());
        r.extend_from_slice(&len.to_le_bytes());
        r.extend_from_slice(packet);
        self.out.write_all(&r)
    }

    pub fn finish(mut self) -> io::Result<W> {
        self.out.flush()?;
        Ok(self.out)
    }
}

/// A malformed pcap stream.
#[derive(Debug, thiserror::Error)]
pub enum PcapError {
    #[error("pcap: {0}")]
    Format(String),
    #[error("pcap: {0}")]
    Io(#[from] io::Error),
}

/// Reads a pcap stream written by [`PcapWriter`] (or any little-endian,
/// microsecond, LINKTYPE_RAW capture): the packets with their times.
pub fn read(mut input: impl Read) -> Result<Vec<(Duration, Vec<u8>)>, PcapError> {
    let mut all = Vec::new();
    input.read_to_end(&mut all)?;
    let word = |at: usize| -> Result<u32, PcapError> {
        all.get(at..at + 4)
            .and_then(|b| b.try_into().ok())
            .map(u32::from_le_bytes)
            .ok_or_else(|| PcapError::Format(format!("truncated at byte {at}")))
    };
    let nanos = match word(0)? {
        MAGIC_MICROS => false,
        MAGIC_NANOS => true,
        _ => return Err(PcapError::Format("not a little-endian pcap file".into())),
    };
    let link = word(20)?;
    if link != LINKTYPE_RAW && link != LINKTYPE_ETHERNET {
        return Err(PcapError::Format(format!(
            "link type {link} is neither LINKTYPE_RAW nor LINKTYPE_ETHERNET"
        )));
    }
    let scale = if nanos { 1 } else { 1000 };
    let mut at = 24;
    let mut packets = Vec::new();
    while at < all.len() {
        let (secs, micros, incl) = (word(at)?, word(at + 4)?, word(at + 8)? as usize);
        if micros >= 1_000_000_000 / scale {
            return Err(PcapError::Format(format!(
                "record at byte {at}: fraction of a second out of range"
            )));
        }
        let body = all
            .get(at + 16..at + 16 + incl)
            .ok_or_else(|| PcapError::Format(format!("record at byte {at} is truncated")))?;
        let ip = if link == LINKTYPE_ETHERNET {
            ethernet_payload(body)
        } else {
            Some(body)
        };
        if let Some(ip) = ip {
            packets.push((Duration::new(secs.into(), micros * scale), ip.to_vec()));
        }
        at += 16 + incl;
    }
    Ok(packets)
}

/// The IP packet of an Ethernet II frame (one 802.1Q tag allowed), or
/// `None` for a frame that carries no IPv4 or IPv6.
fn ethernet_payload(frame: &[u8]) -> Option<&[u8]> {
    let ty = |at: usize| Some(u16::from_be_bytes([*frame.get(at)?, *frame.get(at + 1)?]));
    let (ethertype, start) = match ty(12)? {
        0x8100 => (ty(16)?, 18),
        t => (t, 14),
    };
    match ethertype {
        0x0800 | 0x86dd => frame.get(start..),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_packets_and_times() {
        let mut w = PcapWriter::new(Vec::new()).unwrap();
        w.write_packet(Duration::from_micros(1_500_002), &[0x45, 1, 2])
            .unwrap();
        w.write_packet(Duration::ZERO, &[0x60]).unwrap();
        let bytes = w.finish().unwrap();
        let back = read(&bytes[..]).unwrap();
        assert_eq!(
            back,
            vec![
                (Duration::from_micros(1_500_002), vec![0x45, 1, 2]),
                (Duration::ZERO, vec![0x60])
            ]
        );
    }

    #[test]
    fn reads_ethernet_frames_and_skips_other_protocols() {
        let mut h = Vec::new();
        for w in [MAGIC_NANOS, 0x0004_0002, 0, 0, SNAPLEN, LINKTYPE_ETHERNET] {
            h.extend_from_slice(&w.to_le_bytes());
        }
        let mut rec = |nanos: u32, frame: &[u8]| {
            for w in [1u32, nanos, frame.len() as u32, frame.len() as u32] {
                h.extend_from_slice(&w.to_le_bytes());
            }
            h.extend_from_slice(frame);
        };
        let mut ip = vec![0u8; 12];
        ip.extend_from_slice(&[0x08, 0x00, 0x45, 7]);
        rec(500, &ip);
        let mut arp = vec![0u8; 12];
        arp.extend_from_slice(&[0x08, 0x06, 1, 2]);
        rec(600, &arp);
        let mut tagged = vec![0u8; 12];
        tagged.extend_from_slice(&[0x81, 0x00, 0, 1, 0x86, 0xdd, 0x60, 9]);
        rec(700, &tagged);
        let back = read(&h[..]).unwrap();
        assert_eq!(
            back,
            vec![
                (Duration::new(1, 500), vec![0x45, 7]),
                (Duration::new(1, 700), vec![0x60, 9])
            ]
        );
    }

    #[test]
    fn rejects_garbage_and_truncation() {
        assert!(read(&b"nope"[..]).is_err());
        let mut w = PcapWriter::new(Vec::new()).unwrap();
        w.write_packet(Duration::ZERO, &[1, 2, 3, 4]).unwrap();
        let bytes = w.finish().unwrap();
        let e = read(&bytes[..bytes.len() - 1]).unwrap_err().to_string();
        assert!(e.contains("truncated"), "{e}");
    }
}
