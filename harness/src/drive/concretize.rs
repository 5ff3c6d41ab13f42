//! From abstract to concrete: a segment whose numbers fall in a given
//! sequence and acknowledgment class (RFC 9293 §3.4, §3.10.7.4; RFC 5961
//! §5.2), and the values an emitted segment template stands for.

use crate::impair::Rng;
use tcp_spec::{AckClass, Ctl, SegmentEvent, SeqClass, Template};

/// What a peer needs to know of the connection under test to aim a segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TcbView {
    pub rcv_nxt: u32,
    pub rcv_wnd: u32,
    pub snd_una: u32,
    pub snd_nxt: u32,
    pub max_snd_wnd: u32,
    /// The last sequence number sent (SND.NXT−1) is our FIN.
    pub fin_outstanding: bool,
    pub iss: u32,
}

/// A concrete segment to inject: numbers and control bits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Concrete {
    pub syn: bool,
    pub fin: bool,
    pub rst: bool,
    pub ack: Option<u32>,
    pub seq: u32,
    pub payload_len: usize,
}

impl Concrete {
    /// SEG.LEN: data plus one for each of SYN and FIN.
    pub fn seg_len(&self) -> u32 {
        self.payload_len as u32 + self.syn as u32 + self.fin as u32
    }
}

/// Picks numbers for `ev` against `tcb` (`None` for the sequence view when
/// the state has no receive window). Returns `None` when the TCB cannot host
/// the event (e.g. `inside` needs a window of at least 3, `new` needs
/// outstanding data). The result always classifies back to `ev`.
pub fn segment(
    ev: &SegmentEvent,
    tcb: Option<&TcbView>,
    rng: &mut Rng,
    max_payload: usize,
) -> Option<Concrete> {
    let max_payload = max_payload.max(2);
    let mut payload_len = if ev.payload {
        1 + rng.below(max_payload as u64) as usize
    } else {
        0
    };
    if ev.seq == SeqClass::Overlap && ev.payload {
        payload_len = payload_len.max(2);
    }
    let seg_len = payload_len as u32 + ev.syn as u32 + ev.fin as u32;
    let seq = match (ev.seq, tcb) {
        (SeqClass::NotApplicable, _) => rng.next_u64() as u32,
        (_, None) => return None,
        (class, Some(t)) => seq_for(class, seg_len, t, rng)?,
    };
    let ack = match (ev.ack, tcb) {
        (AckClass::Absent, _) => None,
        (AckClass::Unchecked, _) => Some(rng.next_u64() as u32),
        (_, None) => return None,
        (class, Some(t)) => Some(ack_for(class, t, rng)?),
    };
    if let (true, Some(t)) = (ev.fin && ev.seq != SeqClass::NotApplicable, tcb) {
        // Keep the FIN inside the window: shorten the data if needed.
        while payload_len > usize::from(ev.payload)
            && !SeqClass::fin_in_window(
                seq,
                payload_len as u32 + ev.syn as u32 + 1,
                t.rcv_nxt,
                t.rcv_wnd,
            )
        {
            payload_len -= 1;
        }
        if !SeqClass::fin_in_window(
            seq,
            payload_len as u32 + ev.syn as u32 + 1,
            t.rcv_nxt,
            t.rcv_wnd,
        ) {
            return None;
        }
    }
    if let (true, SeqClass::NotApplicable, Some(t)) = (ev.syn && ev.fin, ev.seq, tcb) {
        // A SYN with a FIN to a SYN-SENT connection (no RCV.NXT yet): the
        // text and the FIN must fit the window our SYN opened, or the FIN
        // is trimmed away (RFC 9293 §3.10.7.3, the sixth step on).
        let room = t.rcv_wnd.saturating_sub(1) as usize;
        payload_len = payload_len.min(room);
        if ev.payload && payload_len == 0 {
            return None;
        }
    }
    let c = Concrete {
        syn: ev.syn,
        fin: ev.fin,
        rst: ev.rst,
        ack,
        seq,
        payload_len,
    };
    // Belt and braces: the numbers must classify back to the intended event.
    if let Some(t) = tcb {
        if ev.seq != SeqClass::NotApplicable
            && SeqClass::classify(seq, c.seg_len(), t.rcv_nxt, t.rcv_wnd) != ev.seq
        {
            return None;
        }
        if let Some(a) = ack.filter(|_| !matches!(ev.ack, AckClass::Absent | AckClass::Unchecked)) {
            if AckClass::classify(a, t.snd_una, t.snd_nxt, t.max_snd_wnd, t.fin_outstanding)
                != ev.ack
            {
                return None;
            }
        }
    }
    Some(c)
}

fn seq_for(class: SeqClass, seg_len: u32, t: &TcbView, rng: &mut Rng) -> Option<u32> {
    let nxt = t.rcv_nxt;
    let wnd = t.rcv_wnd;
    let jitter = |rng: &mut Rng, n: u32| rng.below(u64::from(n.max(1))) as u32;
    Some(match class {
        SeqClass::NotApplicable => return None,
        SeqClass::Below => nxt
            .wrapping_sub(seg_len.max(1))
            .wrapping_sub(jitter(rng, 1000)),
        SeqClass::Overlap => {
            if seg_len < 2 || wnd == 0 {
                return None;
            }
            nxt.wrapping_sub(1 + jitter(rng, seg_len - 1))
        }
        SeqClass::LeftEdge if wnd > 0 => nxt,
        SeqClass::Inside if wnd >= 3 => nxt.wrapping_add(1 + jitter(rng, wnd - 2)),
        SeqClass::RightEdge if wnd >= 2 => nxt.wrapping_add(wnd - 1),
        SeqClass::Beyond if wnd > 0 => nxt.wrapping_add(wnd).wrapping_add(jitter(rng, 1000)),
        SeqClass::ZeroWindowAtNext if wnd == 0 => nxt,
        SeqClass::ZeroWindowOff if wnd == 0 => {
            let off = 1 + jitter(rng, 1000);
            if rng.chance(0.5) {
                nxt.wrapping_add(off)
            } else {
                nxt.wrapping_sub(off)
            }
        }
        _ => return None,
    })
}

fn ack_for(class: AckClass, t: &TcbView, rng: &mut Rng) -> Option<u32> {
    let una = t.snd_una;
    let outstanding = t.snd_nxt.wrapping_sub(una);
    let jitter = |rng: &mut Rng, n: u32| rng.below(u64::from(n.max(1))) as u32;
    Some(match class {
        AckClass::TooOld => una
            .wrapping_sub(t.max_snd_wnd)
            .wrapping_sub(1 + jitter(rng, 1000)),
        AckClass::Old if t.max_snd_wnd > 0 => una.wrapping_sub(1 + jitter(rng, t.max_snd_wnd)),
        AckClass::Dup => una,
        AckClass::New => {
            // Up to SND.NXT, or SND.NXT−1 when that would cover our FIN.
            let room = outstanding.checked_sub(t.fin_outstanding as u32)?;
            if room == 0 {
                return None;
            }
            una.wrapping_add(1 + jitter(rng, room))
        }
        AckClass::FinAcked if t.fin_outstanding && outstanding > 0 => t.snd_nxt,
        AckClass::Beyond => t.snd_nxt.wrapping_add(1 + jitter(rng, 1000)),
        _ => return None,
    })
}

/// The values a segment template of the table stands for, given the TCB
/// after the transition and the segment that caused it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Expected {
    pub seq: Option<u32>,
    pub ack: Option<u32>,
    pub syn: bool,
    pub ack_bit: bool,
    pub fin: bool,
    pub rst: bool,
}

/// Evaluates a template's symbolic SEQ/ACK (`SND.NXT`, `RCV.NXT`, `ISS`,
/// `SND.UNA`, `SEG.ACK`, `SEG.SEQ+SEG.LEN`, `0`). Unknown expressions give
/// `None` (not checked).
pub fn expected(t: &Template, after: Option<&TcbView>, seg: Option<&Concrete>) -> Expected {
    let eval = |expr: &str| -> Option<u32> {
        match expr.trim() {
            "0" => Some(0),
            "SND.NXT" => after.map(|a| a.snd_nxt),
            "SND.UNA" => after.map(|a| a.snd_una),
            "RCV.NXT" => after.map(|a| a.rcv_nxt),
            "ISS" => after.map(|a| a.iss),
            "SEG.ACK" => seg.and_then(|s| s.ack),
            "SEG.SEQ+SEG.LEN" => seg.map(|s| s.seq.wrapping_add(s.seg_len())),
            _ => None,
        }
    };
    Expected {
        seq: eval(&t.seq),
        ack: t.ack.as_deref().and_then(eval),
        syn: t.has(Ctl::Syn),
        ack_bit: t.has(Ctl::Ack),
        fin: t.has(Ctl::Fin),
        rst: t.has(Ctl::Rst),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tcp_spec::{Event, State};

    fn tcb(wnd: u32, outstanding: u32, fin: bool) -> TcbView {
        TcbView {
            rcv_nxt: u32::MAX - 5, // exercise wrapping
            rcv_wnd: wnd,
            snd_una: 1000,
            snd_nxt: 1000 + outstanding,
            max_snd_wnd: 500,
            fin_outstanding: fin,
            iss: 999,
        }
    }

    /// Every possible event of every windowed state either gets numbers that
    /// classify back to it, or is declared unrealizable for that TCB.
    #[test]
    fn concretized_segments_classify_back() {
        let mut rng = Rng::new(7);
        let mut made = 0;
        for state in State::ALL.into_iter().filter(|s| s.has_receive_window()) {
            for ev in Event::enumerate(state) {
                let Event::Segment(seg) = ev else { continue };
                for t in [
                    tcb(100, 50, false),
                    tcb(0, 50, true),
                    tcb(10, 0, false),
                    tcb(100, 20, true),
                ] {
                    if let Some(c) = segment(&seg, Some(&t), &mut rng, 40) {
                        made += 1;
                        assert_eq!(c.payload_len > 0, seg.payload);
                        assert_eq!(
                            SeqClass::classify(c.seq, c.seg_len(), t.rcv_nxt, t.rcv_wnd),
                            seg.seq
                        );
                    }
                }
            }
        }
        assert!(made > 2000, "{made}");
    }

    #[test]
    fn classes_needing_room_are_refused_without_it() {
        let mut rng = Rng::new(1);
        let ev = |seq, ack| SegmentEvent {
            syn: false,
            fin: false,
            rst: false,
            payload: false,
            seq,
            ack,
        };
        assert!(segment(
            &ev(SeqClass::Inside, AckClass::Dup),
            Some(&tcb(2, 0, false)),
            &mut rng,
            10
        )
        .is_none());
        assert!(segment(
            &ev(SeqClass::LeftEdge, AckClass::New),
            Some(&tcb(10, 0, false)),
            &mut rng,
            10
        )
        .is_none());
        assert!(segment(
            &ev(SeqClass::LeftEdge, AckClass::FinAcked),
            Some(&tcb(10, 5, false)),
            &mut rng,
            10
        )
        .is_none());
        let c = segment(
            &ev(SeqClass::LeftEdge, AckClass::FinAcked),
            Some(&tcb(10, 5, true)),
            &mut rng,
            10,
        );
        assert_eq!(c.and_then(|c| c.ack), Some(1005));
    }

    #[test]
    fn templates_evaluate_against_the_tcb() {
        let t = Template::parse("<SEQ=SEG.ACK><CTL=RST>").unwrap();
        let seg = Concrete {
            syn: false,
            fin: false,
            rst: false,
            ack: Some(77),
            seq: 5,
            payload_len: 3,
        };
        let e = expected(&t, None, Some(&seg));
        assert_eq!((e.seq, e.rst, e.ack_bit), (Some(77), true, false));
        let t = Template::parse("<SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>").unwrap();
        let seg = Concrete {
            syn: true,
            fin: true,
            rst: false,
            ack: None,
            seq: u32::MAX,
            payload_len: 3,
        };
        assert_eq!(expected(&t, None, Some(&seg)).ack, Some(4));
    }
}
