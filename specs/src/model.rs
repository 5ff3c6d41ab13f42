//! The abstract vocabulary of the specification: connection states and the
//! classified events that drive them (RFC 9293 §3.3.2 states, §3.10 event
//! processing).
//!
//! A concrete segment is reduced to a [`SegmentEvent`]: its control bits, whether
//! it carries payload, where its sequence number falls relative to the receive
//! window ([`SeqClass`]) and where its acknowledgment number falls relative to the
//! send sequence space ([`AckClass`]). The classes are chosen so that every
//! decision RFC 9293 §3.10.7 (and RFC 5961 §§3–5) makes about a segment is a
//! function of the class alone.

use serde::{Deserialize, Serialize};
use std::fmt;

/// The eleven connection states of RFC 9293 §3.3.2 (RFC 793 §3.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING-KEBAB-CASE")]
pub enum State {
    /// The fictional state before a TCB exists and after it is deleted.
    Closed,
    /// Waiting for a connection request from any remote TCP.
    Listen,
    /// A SYN sent, waiting for a matching SYN.
    SynSent,
    /// A SYN received and one sent, waiting for the ACK of ours.
    SynReceived,
    /// Open: data flows both ways.
    Established,
    #[serde(rename = "FIN-WAIT-1")]
    /// We closed: our FIN is not yet acknowledged.
    FinWait1,
    #[serde(rename = "FIN-WAIT-2")]
    /// Our FIN is acknowledged; waiting for the peer's FIN.
    FinWait2,
    /// The peer closed; waiting for our user to close.
    CloseWait,
    /// Both closed at once: waiting for the ACK of our FIN.
    Closing,
    /// The peer closed first, then we did: waiting for the ACK of our FIN.
    LastAck,
    /// Waiting for 2·MSL so that the peer surely received our last ACK.
    TimeWait,
}

impl State {
    /// All states, in the order RFC 9293 §3.3.2 lists them.
    pub const ALL: [State; 11] = [
        State::Closed,
        State::Listen,
        State::SynSent,
        State::SynReceived,
        State::Established,
        State::FinWait1,
        State::FinWait2,
        State::CloseWait,
        State::Closing,
        State::LastAck,
        State::TimeWait,
    ];

    /// The RFC's spelling, e.g. `SYN-RECEIVED`.
    pub fn name(self) -> &'static str {
        match self {
            State::Closed => "CLOSED",
            State::Listen => "LISTEN",
            State::SynSent => "SYN-SENT",
            State::SynReceived => "SYN-RECEIVED",
            State::Established => "ESTABLISHED",
            State::FinWait1 => "FIN-WAIT-1",
            State::FinWait2 => "FIN-WAIT-2",
            State::CloseWait => "CLOSE-WAIT",
            State::Closing => "CLOSING",
            State::LastAck => "LAST-ACK",
            State::TimeWait => "TIME-WAIT",
        }
    }

    /// A short name for dense tables: `CLOSED`, `LISTEN`, `SYN-SENT`,
    /// `SYN-RCVD`, `ESTAB`, `FW1`, `FW2`, `CW`, `CLOSING`, `LAST-ACK`, `TW`.
    pub fn short_name(self) -> &'static str {
        match self {
            State::SynReceived => "SYN-RCVD",
            State::Established => "ESTAB",
            State::FinWait1 => "FW1",
            State::FinWait2 => "FW2",
            State::CloseWait => "CW",
            State::TimeWait => "TW",
            other => other.name(),
        }
    }

    /// Parses the RFC spelling (case-insensitive, `_` accepted for `-`).
    pub fn from_name(s: &str) -> Option<State> {
        let norm = s.trim().to_ascii_uppercase().replace('_', "-");
        State::ALL.into_iter().find(|st| st.name() == norm)
    }

    /// A receive window exists: SYN-RECEIVED and the synchronized states
    /// (RFC 9293 §3.10.7.4 applies).
    pub fn has_receive_window(self) -> bool {
        !matches!(self, State::Closed | State::Listen | State::SynSent)
    }

    /// Our FIN has been sent (it may or may not be acknowledged yet).
    pub fn fin_sent(self) -> bool {
        matches!(
            self,
            State::FinWait1 | State::FinWait2 | State::Closing | State::LastAck | State::TimeWait
        )
    }

    /// Everything we sent, including any FIN, is acknowledged, so
    /// SND.UNA = SND.NXT and no retransmission timer can run.
    pub fn all_acked(self) -> bool {
        matches!(self, State::FinWait2 | State::TimeWait)
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Where SEG.SEQ falls relative to the receive window
/// [RCV.NXT, RCV.NXT+RCV.WND) (RFC 9293 §3.4, acceptability test of §3.10.7.4).
///
/// With a positive window (RCV.WND > 0), for a segment occupying SEG.LEN
/// sequence numbers:
/// - `Below`: entirely old: SEG.SEQ+SEG.LEN <= RCV.NXT (for SEG.LEN = 0:
///   SEG.SEQ < RCV.NXT).
/// - `Overlap`: starts before RCV.NXT but reaches it (SEG.SEQ < RCV.NXT <
///   SEG.SEQ+SEG.LEN); only possible with payload.
/// - `LeftEdge`: SEG.SEQ = RCV.NXT (the in-order position).
/// - `Inside`: RCV.NXT < SEG.SEQ < RCV.NXT+RCV.WND−1.
/// - `RightEdge`: SEG.SEQ = RCV.NXT+RCV.WND−1 (the last acceptable number).
/// - `Beyond`: SEG.SEQ >= RCV.NXT+RCV.WND.
///
/// With a zero window (RCV.WND = 0): `ZeroWindowAtNext` when SEG.SEQ = RCV.NXT,
/// `ZeroWindowOff` otherwise.
///
/// `NotApplicable` is the only class in CLOSED, LISTEN and SYN-SENT, where no
/// receive window exists yet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SeqClass {
    #[serde(rename = "n/a")]
    /// No receive window yet (CLOSED, LISTEN, SYN-SENT).
    NotApplicable,
    /// Entirely before RCV.NXT.
    Below,
    /// Starts before RCV.NXT and reaches it.
    Overlap,
    /// Starts at RCV.NXT.
    LeftEdge,
    /// Strictly inside the window.
    Inside,
    /// At the last acceptable sequence number.
    RightEdge,
    /// At or past the right edge of the window.
    Beyond,
    #[serde(rename = "zw-at-nxt")]
    /// Zero window, SEG.SEQ = RCV.NXT.
    ZeroWindowAtNext,
    #[serde(rename = "zw-off")]
    /// Zero window, any other SEG.SEQ.
    ZeroWindowOff,
}

impl SeqClass {
    /// Every class.
    pub const ALL: [SeqClass; 9] = [
        SeqClass::NotApplicable,
        SeqClass::Below,
        SeqClass::Overlap,
        SeqClass::LeftEdge,
        SeqClass::Inside,
        SeqClass::RightEdge,
        SeqClass::Beyond,
        SeqClass::ZeroWindowAtNext,
        SeqClass::ZeroWindowOff,
    ];

    /// The classes that pass the acceptability test of RFC 9293 §3.10.7.4
    /// (a zero-window segment at RCV.NXT passes for its ACK, RST and control
    /// information), in declaration order.
    pub const ACCEPTABLE: [SeqClass; 5] = [
        SeqClass::Overlap,
        SeqClass::LeftEdge,
        SeqClass::Inside,
        SeqClass::RightEdge,
        SeqClass::ZeroWindowAtNext,
    ];

    /// The classes that fail it, in declaration order.
    pub const UNACCEPTABLE: [SeqClass; 3] =
        [SeqClass::Below, SeqClass::Beyond, SeqClass::ZeroWindowOff];

    /// The classes the acceptability test rejects.
    pub fn name(self) -> &'static str {
        match self {
            SeqClass::NotApplicable => "n/a",
            SeqClass::Below => "below",
            SeqClass::Overlap => "overlap",
            SeqClass::LeftEdge => "left-edge",
            SeqClass::Inside => "inside",
            SeqClass::RightEdge => "right-edge",
            SeqClass::Beyond => "beyond",
            SeqClass::ZeroWindowAtNext => "zw-at-nxt",
            SeqClass::ZeroWindowOff => "zw-off",
        }
    }

    /// Whether a segment's FIN survives trimming to the receive window
    /// (RFC 9293 §3.10.7.4): with RCV.WND > 0, a FIN at or beyond
    /// RCV.NXT+RCV.WND is cut off with the data beyond the window, and the
    /// segment's abstract event has no FIN. (A zero window keeps the FIN in
    /// the event; its own rows decide.) `seg_len` counts SYN and FIN.
    pub fn fin_in_window(seg_seq: u32, seg_len: u32, rcv_nxt: u32, rcv_wnd: u32) -> bool {
        if rcv_wnd == 0 {
            return true;
        }
        let fin_seq = seg_seq.wrapping_add(seg_len.wrapping_sub(1));
        let off = fin_seq.wrapping_sub(rcv_nxt) as i32;
        off < 0 || off.unsigned_abs() < rcv_wnd
    }

    /// Classifies SEG.SEQ/SEG.LEN against RCV.NXT/RCV.WND with modular
    /// (RFC 9293 §3.4) comparisons. `seg_len` counts SYN and FIN.
    pub fn classify(seg_seq: u32, seg_len: u32, rcv_nxt: u32, rcv_wnd: u32) -> SeqClass {
        let off = seg_seq.wrapping_sub(rcv_nxt) as i32;
        if rcv_wnd == 0 {
            return if off == 0 {
                SeqClass::ZeroWindowAtNext
            } else {
                SeqClass::ZeroWindowOff
            };
        }
        if off < 0 {
            let end = off as i64 + seg_len as i64; // one past the last number
            return if end > 0 {
                SeqClass::Overlap
            } else {
                SeqClass::Below
            };
        }
        let off = off as u32;
        if off == 0 {
            SeqClass::LeftEdge
        } else if off >= rcv_wnd {
            SeqClass::Beyond
        } else if off == rcv_wnd - 1 {
            SeqClass::RightEdge
        } else {
            SeqClass::Inside
        }
    }
}

/// Where SEG.ACK falls relative to the send sequence space (RFC 9293 §3.10.7.4
/// fifth check, RFC 5961 §5.2), or that the ACK bit is off.
///
/// - `Absent`: the ACK bit is off.
/// - `Unchecked`: the ACK bit is on but there is no send sequence space to
///   compare with (CLOSED, LISTEN).
/// - `TooOld`: SEG.ACK < SND.UNA − MAX.SND.WND (RFC 5961 §5.2).
/// - `Old`: SND.UNA − MAX.SND.WND <= SEG.ACK < SND.UNA (a duplicate).
/// - `Dup`: SEG.ACK = SND.UNA.
/// - `New`: SND.UNA < SEG.ACK <= SND.NXT, not covering a FIN of ours (in
///   SYN-SENT and SYN-RECEIVED: it acknowledges our SYN).
/// - `FinAcked`: SEG.ACK = SND.NXT and that covers the FIN we sent.
/// - `Beyond`: SEG.ACK > SND.NXT (acknowledges something not yet sent).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AckClass {
    /// The ACK bit is off.
    Absent,
    /// ACK bit on, no send sequence space to compare with.
    Unchecked,
    /// Older than SND.UNA − MAX.SND.WND (RFC 5961 §5.2).
    TooOld,
    /// Below SND.UNA, within MAX.SND.WND.
    Old,
    /// Equal to SND.UNA.
    Dup,
    /// Acknowledges new data (not a FIN of ours).
    New,
    /// Acknowledges everything including our FIN.
    FinAcked,
    /// Acknowledges something not yet sent.
    Beyond,
}

impl AckClass {
    /// Every class.
    pub const ALL: [AckClass; 8] = [
        AckClass::Absent,
        AckClass::Unchecked,
        AckClass::TooOld,
        AckClass::Old,
        AckClass::Dup,
        AckClass::New,
        AckClass::FinAcked,
        AckClass::Beyond,
    ];

    /// The class's name as the table writes it.
    pub fn name(self) -> &'static str {
        match self {
            AckClass::Absent => "absent",
            AckClass::Unchecked => "unchecked",
            AckClass::TooOld => "too-old",
            AckClass::Old => "old",
            AckClass::Dup => "dup",
            AckClass::New => "new",
            AckClass::FinAcked => "fin-acked",
            AckClass::Beyond => "beyond",
        }
    }

    /// Classifies SEG.ACK against SND.UNA, SND.NXT and MAX.SND.WND with
    /// modular comparisons (only for segments with the ACK bit on, in a state
    /// that has a send sequence space). `fin_outstanding`: the last sequence
    /// number sent (SND.NXT−1) is our FIN.
    pub fn classify(
        seg_ack: u32,
        snd_una: u32,
        snd_nxt: u32,
        max_snd_wnd: u32,
        fin_outstanding: bool,
    ) -> AckClass {
        let from_una = seg_ack.wrapping_sub(snd_una) as i32;
        if from_una < 0 {
            return if from_una.unsigned_abs() > max_snd_wnd {
                AckClass::TooOld
            } else {
                AckClass::Old
            };
        }
        if from_una == 0 {
            return AckClass::Dup;
        }
        match seg_ack.wrapping_sub(snd_nxt) as i32 {
            0 if fin_outstanding => AckClass::FinAcked,
            n if n > 0 => AckClass::Beyond,
            _ => AckClass::New,
        }
    }
}

/// An arriving segment, reduced to what the event-processing rules of
/// RFC 9293 §3.10.7 decide on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct SegmentEvent {
    /// The SYN bit is set.
    pub syn: bool,
    /// The FIN bit is set and the FIN survives trimming to the receive
    /// window ([`SeqClass::fin_in_window`]).
    pub fin: bool,
    /// The RST bit is set.
    pub rst: bool,
    /// The segment carries at least one octet of data.
    pub payload: bool,
    /// Where SEG.SEQ falls.
    pub seq: SeqClass,
    /// `Absent` when the ACK bit is off.
    pub ack: AckClass,
}

impl SegmentEvent {
    /// SEG.LEN > 0: the segment occupies sequence space (data, SYN or FIN).
    pub fn occupies_sequence_space(&self) -> bool {
        self.payload || self.syn || self.fin
    }

    /// Control bits in packetdrill's notation, e.g. `S.`, `F.`, `R`, `P.`.
    pub fn flags_text(&self) -> String {
        let mut s = String::new();
        if self.syn {
            s.push('S');
        }
        if self.fin {
            s.push('F');
        }
        if self.rst {
            s.push('R');
        }
        if self.payload {
            s.push('P');
        }
        if self.ack != AckClass::Absent {
            s.push('.');
        }
        if s.is_empty() {
            s.push('-');
        }
        s
    }

    /// Whether this combination can occur in `state`. The enumeration of the
    /// event space, and so the completeness check, covers exactly these.
    pub fn is_possible_in(&self, state: State) -> bool {
        let seq_ok = if state.has_receive_window() {
            self.seq != SeqClass::NotApplicable
                // Overlap needs at least two sequence numbers: data, or
                // both SYN and FIN.
                && (self.seq != SeqClass::Overlap || self.payload || (self.syn && self.fin))
                // At the right edge only one sequence number fits: a FIN
                // behind data or a SYN is trimmed off.
                && !(self.seq == SeqClass::RightEdge && self.fin && (self.payload || self.syn))
        } else {
            self.seq == SeqClass::NotApplicable
        };
        let ack_ok = match (state, self.ack) {
            (_, AckClass::Absent) => true,
            (State::Closed | State::Listen, a) => a == AckClass::Unchecked,
            (_, AckClass::Unchecked) => false,
            // Only our SYN is outstanding, and MAX.SND.WND is still 0 before
            // the peer's first window arrives.
            (State::SynSent, a) => {
                matches!(
                    a,
                    AckClass::TooOld | AckClass::Dup | AckClass::New | AckClass::Beyond
                )
            }
            // Nothing outstanding: SND.UNA = SND.NXT.
            (s, a) if s.all_acked() => !matches!(a, AckClass::New | AckClass::FinAcked),
            // Our FIN is outstanding only once it was sent and not yet acked.
            (s, AckClass::FinAcked) => {
                matches!(s, State::FinWait1 | State::Closing | State::LastAck)
            }
            _ => true,
        };
        seq_ok && ack_ok
    }
}

impl fmt::Display for SegmentEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "segment {} seq={} ack={}",
            self.flags_text(),
            self.seq.name(),
            self.ack.name()
        )
    }
}

/// User calls of RFC 9293 §3.9.1 (STATUS omitted: it changes nothing).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum UserCall {
    /// LISTEN: wait for a connection.
    OpenPassive,
    /// CONNECT: send a SYN.
    OpenActive,
    /// SEND data.
    Send,
    /// RECEIVE data.
    Receive,
    /// CLOSE: no more data from us (a FIN).
    Close,
    /// ABORT: a RST where the state calls for one, and the TCB is gone.
    Abort,
}

impl UserCall {
    /// Every call.
    pub const ALL: [UserCall; 6] = [
        UserCall::OpenPassive,
        UserCall::OpenActive,
        UserCall::Send,
        UserCall::Receive,
        UserCall::Close,
        UserCall::Abort,
    ];

    /// The call's name as the table writes it.
    pub fn name(self) -> &'static str {
        match self {
            UserCall::OpenPassive => "open-passive",
            UserCall::OpenActive => "open-active",
            UserCall::Send => "send",
            UserCall::Receive => "receive",
            UserCall::Close => "close",
            UserCall::Abort => "abort",
        }
    }
}

/// Timeouts of RFC 9293 §3.10.8.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Timeout {
    /// The retransmission timer expired.
    Retransmission,
    /// The TIME-WAIT timer (2·MSL) expired.
    TimeWait,
    /// The user timeout expired.
    User,
}

impl Timeout {
    /// Every timeout.
    pub const ALL: [Timeout; 3] = [Timeout::Retransmission, Timeout::TimeWait, Timeout::User];

    /// The timeout's name as the table writes it.
    pub fn name(self) -> &'static str {
        match self {
            Timeout::Retransmission => "retransmission",
            Timeout::TimeWait => "time-wait",
            Timeout::User => "user",
        }
    }

    /// Whether this timer can be running in `state`.
    pub fn is_possible_in(self, state: State) -> bool {
        match self {
            // Something (SYN, data or FIN) can be outstanding.
            Timeout::Retransmission => {
                !matches!(state, State::Closed | State::Listen) && !state.all_acked()
            }
            Timeout::TimeWait => state == State::TimeWait,
            // Runs whenever a connection exists and data or a SYN/FIN is
            // unacknowledged; we allow it wherever a connection exists.
            Timeout::User => !matches!(state, State::Closed | State::Listen),
        }
    }
}

/// One abstract event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Event {
    /// An arriving segment, classified.
    Segment(SegmentEvent),
    /// A user call.
    Call {
        /// Which call.
        call: UserCall,
    },
    /// A timeout.
    Timeout {
        /// Which timer.
        timeout: Timeout,
    },
}

impl Event {
    /// Whether the event can occur in `state` (see
    /// [`SegmentEvent::is_possible_in`] and [`Timeout::is_possible_in`]).
    pub fn is_possible_in(&self, state: State) -> bool {
        match self {
            Event::Segment(s) => s.is_possible_in(state),
            Event::Call { .. } => true,
            Event::Timeout { timeout } => timeout.is_possible_in(state),
        }
    }

    /// Every abstract event that can occur in `state`.
    pub fn enumerate(state: State) -> Vec<Event> {
        let mut out = Vec::new();
        for bits in 0..16u8 {
            for &seq in &SeqClass::ALL {
                for &ack in &AckClass::ALL {
                    let ev = SegmentEvent {
                        syn: bits & 1 != 0,
                        fin: bits & 2 != 0,
                        rst: bits & 4 != 0,
                        payload: bits & 8 != 0,
                        seq,
                        ack,
                    };
                    if ev.is_possible_in(state) {
                        out.push(Event::Segment(ev));
                    }
                }
            }
        }
        out.extend(UserCall::ALL.into_iter().map(|call| Event::Call { call }));
        out.extend(
            Timeout::ALL
                .into_iter()
                .filter(|t| t.is_possible_in(state))
                .map(|timeout| Event::Timeout { timeout }),
        );
        out
    }

    /// [`Event::enumerate`] computed once per state, for hot paths.
    pub fn possible(state: State) -> &'static [Event] {
        static ALL: std::sync::OnceLock<Vec<Vec<Event>>> = std::sync::OnceLock::new();
        let all = ALL.get_or_init(|| State::ALL.iter().map(|s| Event::enumerate(*s)).collect());
        all.get(state as usize).map_or(&[], Vec::as_slice)
    }

    /// A dense index of the event (for table lookups): segment events first,
    /// then calls, then timeouts.
    pub fn index(&self) -> usize {
        const SEGS: usize = 16 * 9 * 8;
        match self {
            Event::Segment(s) => {
                let bits = s.syn as usize
                    | (s.fin as usize) << 1
                    | (s.rst as usize) << 2
                    | (s.payload as usize) << 3;
                (bits * 9 + s.seq as usize) * 8 + s.ack as usize
            }
            Event::Call { call } => SEGS + *call as usize,
            Event::Timeout { timeout } => SEGS + 6 + *timeout as usize,
        }
    }

    /// Number of distinct values of [`Event::index`].
    pub const INDEX_SPACE: usize = 16 * 9 * 8 + 6 + 3;
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Event::Segment(s) => s.fmt(f),
            Event::Call { call } => write!(f, "call {}", call.name()),
            Event::Timeout { timeout } => write!(f, "timeout {}", timeout.name()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seq_classes_follow_the_window() {
        // RCV.NXT = 1000, RCV.WND = 100: window is [1000, 1100).
        assert_eq!(SeqClass::classify(999, 0, 1000, 100), SeqClass::Below);
        assert_eq!(SeqClass::classify(990, 10, 1000, 100), SeqClass::Below);
        assert_eq!(SeqClass::classify(990, 11, 1000, 100), SeqClass::Overlap);
        assert_eq!(SeqClass::classify(1000, 0, 1000, 100), SeqClass::LeftEdge);
        assert_eq!(SeqClass::classify(1001, 5, 1000, 100), SeqClass::Inside);
        assert_eq!(SeqClass::classify(1099, 1, 1000, 100), SeqClass::RightEdge);
        assert_eq!(SeqClass::classify(1100, 0, 1000, 100), SeqClass::Beyond);
        assert_eq!(
            SeqClass::classify(1000, 5, 1000, 0),
            SeqClass::ZeroWindowAtNext
        );
        assert_eq!(
            SeqClass::classify(1001, 0, 1000, 0),
            SeqClass::ZeroWindowOff
        );
    }

    #[test]
    fn a_fin_beyond_the_window_is_trimmed() {
        // Window [1000, 1100): 99 octets + FIN from 1000 fit, 100 + FIN do not.
        assert!(SeqClass::fin_in_window(1000, 100, 1000, 100));
        assert!(!SeqClass::fin_in_window(1000, 101, 1000, 100));
        assert!(SeqClass::fin_in_window(1099, 1, 1000, 100));
        assert!(SeqClass::fin_in_window(990, 1, 1000, 100)); // an old FIN
        assert!(SeqClass::fin_in_window(1000, 5, 1000, 0)); // zero window: kept
    }

    #[test]
    fn seq_classes_wrap() {
        let nxt = u32::MAX - 1;
        assert_eq!(SeqClass::classify(nxt, 0, nxt, 10), SeqClass::LeftEdge);
        assert_eq!(SeqClass::classify(3, 0, nxt, 10), SeqClass::Inside);
        assert_eq!(SeqClass::classify(7, 0, nxt, 10), SeqClass::RightEdge);
        assert_eq!(SeqClass::classify(8, 0, nxt, 10), SeqClass::Beyond);
        assert_eq!(SeqClass::classify(nxt - 4, 8, nxt, 10), SeqClass::Overlap);
    }

    #[test]
    fn ack_classes_follow_the_send_space() {
        // SND.UNA = 100, SND.NXT = 200, MAX.SND.WND = 50.
        let c = |ack, fin| AckClass::classify(ack, 100, 200, 50, fin);
        assert_eq!(c(49, false), AckClass::TooOld);
        assert_eq!(c(50, false), AckClass::Old);
        assert_eq!(c(100, false), AckClass::Dup);
        assert_eq!(c(150, false), AckClass::New);
        assert_eq!(c(200, false), AckClass::New);
        assert_eq!(c(199, true), AckClass::New);
        assert_eq!(c(200, true), AckClass::FinAcked);
        assert_eq!(c(201, true), AckClass::Beyond);
        // Nothing outstanding: SND.UNA = SND.NXT reads as a duplicate.
        assert_eq!(AckClass::classify(200, 200, 200, 50, false), AckClass::Dup);
        // Wrapping.
        assert_eq!(
            AckClass::classify(2, u32::MAX - 2, 5, 50, false),
            AckClass::New
        );
    }

    #[test]
    fn event_index_is_injective() {
        let mut seen = std::collections::HashSet::new();
        for st in State::ALL {
            for ev in Event::enumerate(st) {
                assert!(ev.index() < Event::INDEX_SPACE);
                seen.insert((ev.index(), ev));
            }
        }
        let idx: std::collections::HashSet<_> = seen.iter().map(|(i, _)| *i).collect();
        assert_eq!(idx.len(), seen.len(), "two events share an index");
    }

    #[test]
    fn state_names_round_trip() {
        for st in State::ALL {
            assert_eq!(State::from_name(st.name()), Some(st));
        }
        assert_eq!(State::from_name("fin_wait_1"), Some(State::FinWait1));
        assert_eq!(State::from_name("nope"), None);
    }
}
