//! What happened during a run: every packet in and out, every call and its
//! result, every state transition with the table row it took, all on the
//! target's clock and with sequence numbers relative to the ISNs.
//!
//! Two renderings: a text ladder diagram ([`Trace::ladder`]; peer on the
//! left, stack on the right, one arrow per packet in script syntax, calls
//! and `STATE via ROW-ID` in the right margin) that is deterministic on the
//! virtual clock and so makes a good snapshot; and a pcap file
//! ([`Trace::write_pcap`]) with the packets as they were on the wire.

use super::target::Micros;
use crate::pcap::PcapWriter;
use std::fmt::Write as _;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;
use tcp_spec::State;

/// One thing that happened.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub enum TraceKind {
    /// A packet from the scripted peer: script-syntax text (ISN-relative)
    /// and the bytes injected.
    PacketIn { text: String, bytes: Vec<u8> },
    /// A packet the target sent.
    PacketOut { text: String, bytes: Vec<u8> },
    /// A socket call and its result, as script text.
    Call { text: String },
    /// A state transition and the table row taken (RFC 9293 3.10 events).
    Transition {
        /// Connection number.
        conn: u64,
        /// State before.
        from: State,
        /// State after.
        to: State,
        /// Row id, e.g. `LISTEN.SYN`.
        row: &'static str,
    },
    /// A remark: a sysctl applied or not applicable, a warning.
    Note { text: String },
}

/// [`TraceKind`] as read back from a recorded trace: the row id is owned
/// until it is found in the bundled table (whose ids live for the program).
#[derive(serde::Deserialize)]
enum RecordedKind {
    PacketIn {
        text: String,
        bytes: Vec<u8>,
    },
    PacketOut {
        text: String,
        bytes: Vec<u8>,
    },
    Call {
        text: String,
    },
    Transition {
        conn: u64,
        from: State,
        to: State,
        row: String,
    },
    Note {
        text: String,
    },
}

impl<'de> serde::Deserialize<'de> for TraceKind {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let k = <RecordedKind as serde::Deserialize>::deserialize(d)?;
        TraceKind::try_from(k).map_err(serde::de::Error::custom)
    }
}

impl TryFrom<RecordedKind> for TraceKind {
    type Error = String;
    fn try_from(k: RecordedKind) -> Result<Self, String> {
        Ok(match k {
            RecordedKind::PacketIn { text, bytes } => TraceKind::PacketIn { text, bytes },
            RecordedKind::PacketOut { text, bytes } => TraceKind::PacketOut { text, bytes },
            RecordedKind::Call { text } => TraceKind::Call { text },
            RecordedKind::Note { text } => TraceKind::Note { text },
            RecordedKind::Transition {
                conn,
                from,
                to,
                row,
            } => {
                let spec = tcp_spec::Spec::bundled().map_err(|e| e.to_string())?;
                let row = spec
                    .row(&row)
                    .map(|r| r.id.as_str())
                    .ok_or_else(|| format!("unknown row id `{row}`"))?;
                TraceKind::Transition {
                    conn,
                    from,
                    to,
                    row,
                }
            }
        })
    }
}

/// A [`TraceKind`] with its time.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TraceEntry {
    /// µs since the start of the script.
    pub at: Micros,
    /// What happened.
    pub kind: TraceKind,
}

/// The record of one run.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Trace {
    /// In the order they happened.
    pub entries: Vec<TraceEntry>,
}

/// What a run showed of the target, without times: the packets in and out
/// (script text, ISN-relative), the call results and the table rows taken.
/// `own` and `own-tun` must agree on it for every script (docs/architecture.md: the
/// two never diverge beyond timing).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Behaviour {
    pub packets: Vec<String>,
    pub calls: Vec<String>,
    pub rows: Vec<&'static str>,
}

impl Trace {
    /// The [`Behaviour`] this trace records. A blocking call is retried
    /// until it completes and each attempt logs its row (e.g.
    /// `OPEN.RECEIVE`); how many attempts there are depends on the clock,
    /// so repeats of a row are counted once.
    pub fn behaviour(&self) -> Behaviour {
        let mut b = Behaviour::default();
        for e in &self.entries {
            match &e.kind {
                TraceKind::PacketIn { text, .. } | TraceKind::PacketOut { text, .. } => {
                    b.packets.push(text.clone())
                }
                TraceKind::Call { text } => b.calls.push(text.clone()),
                TraceKind::Transition { row, .. } => b.rows.push(row),
                TraceKind::Note { .. } => {}
            }
        }
        b.rows.dedup();
        b
    }
}

/// Width of the arrow column of the ladder.
const ARROW_WIDTH: usize = 64;

/// `S.S.ssssss` seconds.
pub fn fmt_time(at: Micros) -> String {
    format!("{}.{:06}", at / 1_000_000, at % 1_000_000)
}

impl Trace {
    /// Appends an entry.
    pub fn push(&mut self, at: Micros, kind: TraceKind) {
        self.entries.push(TraceEntry { at, kind });
    }

    /// The stack's and the peer's socket addresses, as the first packet
    /// of the trace shows them (the IPv4 script addresses when there is
    /// none).
    pub fn endpoints(&self) -> (SocketAddr, SocketAddr) {
        for e in &self.entries {
            let (bytes, inbound) = match &e.kind {
                TraceKind::PacketIn { bytes, .. } => (bytes, true),
                TraceKind::PacketOut { bytes, .. } => (bytes, false),
                _ => continue,
            };
            if let Ok(w) = super::wire::decode(bytes) {
                let src = SocketAddr::new(w.src, w.src_port);
                let dst = SocketAddr::new(w.dst, w.dst_port);
                return if inbound { (dst, src) } else { (src, dst) };
            }
        }
        super::own::script_addresses(false)
    }

    /// The row ids of all transitions, in order (a coverage list).
    pub fn rows(&self) -> Vec<&'static str> {
        self.entries
            .iter()
            .filter_map(|e| match e.kind {
                TraceKind::Transition { row, .. } => Some(row),
                _ => None,
            })
            .collect()
    }

    /// The ladder diagram: one line per entry.
    ///
    /// ```text
    ///     0.000000  S 0:0(0) win 65535 <mss 1000> ------------------>|
    ///     0.000000                                                   | SYN-RECEIVED via LISTEN.SYN
    ///     0.000000  <------- S. 0:0(0) ack 1 win 65535 <mss 1460,...>|
    /// ```
    pub fn ladder(&self) -> String {
        let mut s = String::new();
        let (stack, peer) = self.endpoints();
        let _ = writeln!(
            s,
            "{:>12}  {:<w$}| stack {stack}",
            "time",
            format!("peer {peer}"),
            w = ARROW_WIDTH
        );
        for e in &self.entries {
            let t = fmt_time(e.at);
            let blank = " ".repeat(ARROW_WIDTH);
            let line = match &e.kind {
                TraceKind::PacketIn { text, .. } => {
                    let body = text.trim_start_matches("< ");
                    let dashes = ARROW_WIDTH.saturating_sub(body.len() + 2).max(2);
                    format!("{body} {}>|", "-".repeat(dashes))
                }
                TraceKind::PacketOut { text, .. } => {
                    let body = text.trim_start_matches("> ");
                    let dashes = ARROW_WIDTH.saturating_sub(body.len() + 2).max(2);
                    format!("<{} {body}|", "-".repeat(dashes))
                }
                TraceKind::Call { text } => format!("{blank}| {text}"),
                TraceKind::Transition {
                    conn,
                    from,
                    to,
                    row,
                } => {
                    if from == to {
                        format!("{blank}| #{conn} {to} via {row}")
                    } else {
                        format!("{blank}| #{conn} {from} -> {to} via {row}")
                    }
                }
                TraceKind::Note { text } => format!("{blank}| note: {text}"),
            };
            let _ = writeln!(s, "{t:>12}  {}", line.trim_end());
        }
        s
    }

    /// Writes every packet, in and out, as a pcap stream (LINKTYPE_RAW).
    pub fn write_pcap<W: io::Write>(&self, out: W) -> io::Result<W> {
        let mut w = PcapWriter::new(out)?;
        for e in &self.entries {
            if let TraceKind::PacketIn { bytes, .. } | TraceKind::PacketOut { bytes, .. } = &e.kind
            {
                w.write_packet(Duration::from_micros(e.at), bytes)?;
            }
        }
        w.finish()
    }
}
