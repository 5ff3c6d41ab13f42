//! Classic pcap files (the format tcpdump, tshark and Wireshark read) with
//! link type LINKTYPE_RAW (101): each record is a bare IPv4 or IPv6 packet.

use std::io::{self, Read, Write};
use std::time::Duration;

const MAGIC_MICROS: u32 = 0xa1b2_c3d4;
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
    if word(0)? != MAGIC_MICROS {
        return Err(PcapError::Format(
            "not a little-endian microsecond pcap file".into(),
        ));
    }
    if word(20)? != LINKTYPE_RAW {
        return Err(PcapError::Format(format!(
            "link type {} is not LINKTYPE_RAW",
            word(20)?
        )));
    }
    let mut at = 24;
    let mut packets = Vec::new();
    while at < all.len() {
        let (secs, micros, incl) = (word(at)?, word(at + 4)?, word(at + 8)? as usize);
        if micros >= 1_000_000 {
            return Err(PcapError::Format(format!(
                "record at byte {at}: microseconds out of range"
            )));
        }
        let body = all
            .get(at + 16..at + 16 + incl)
            .ok_or_else(|| PcapError::Format(format!("record at byte {at} is truncated")))?;
        packets.push((Duration::new(secs.into(), micros * 1000), body.to_vec()));
        at += 16 + incl;
    }
    Ok(packets)
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
    fn rejects_garbage_and_truncation() {
        assert!(read(&b"nope"[..]).is_err());
        let mut w = PcapWriter::new(Vec::new()).unwrap();
        w.write_packet(Duration::ZERO, &[1, 2, 3, 4]).unwrap();
        let bytes = w.finish().unwrap();
        let e = read(&bytes[..bytes.len() - 1]).unwrap_err().to_string();
        assert!(e.contains("truncated"), "{e}");
    }
}
