//! The target's connection as its packets show it: the send and receive
//! sequence variables of RFC 9293 §3.3.1 rebuilt from a trace, so that an
//! arriving segment is classified (RFC 9293 §3.4, §3.10.7.4) in the
//! target's own sequence space and against the window the target itself
//! advertised — not the reference stack's.

use crate::run::trace::{Trace, TraceKind};
use crate::run::wire::{self, WireSegment};
use crate::script::TcpOpt;
use tcp_spec::{AckClass, Event, SegmentEvent, SeqClass, State};

/// Sequence variables of the target, in absolute wire numbers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WireTcb {
    /// The target's initial sequence number (from its SYN or SYN-ACK).
    pub iss: Option<u32>,
    /// The peer's initial sequence number (from the injected SYN).
    pub irs: Option<u32>,
    /// Oldest unacknowledged number of the target (the peer's highest ACK).
    pub snd_una: u32,
    /// Next number the target will send (past everything it sent).
    pub snd_nxt: u32,
    /// The window the peer last advertised, scaled.
    pub snd_wnd: u32,
    /// The largest window the peer advertised (RFC 5961 §5.2 MAX.SND.WND).
    pub max_snd_wnd: u32,
    /// What the target last acknowledged; `None` before its first ACK.
    pub rcv_nxt: Option<u32>,
    /// The window the target last advertised, scaled.
    pub rcv_wnd: u32,
    /// The sequence number of the target's FIN, once sent.
    pub fin_seq: Option<u32>,
    /// Window scale shifts offered on the SYNs (target's, peer's); scaling
    /// is in force when both offered one (RFC 7323 §2.2).
    own_wscale: Option<u8>,
    peer_wscale: Option<u8>,
}

fn wscale(w: &WireSegment) -> Option<u8> {
    w.options.iter().find_map(|o| match o {
        TcpOpt::WScale(s) => Some((*s).min(14)),
        _ => None,
    })
}

/// Sequence space a segment occupies: payload plus SYN and FIN.
pub fn seg_len(w: &WireSegment) -> u32 {
    w.payload_len + u32::from(w.flags.syn) + u32::from(w.flags.fin)
}

/// `a` is after `b` in sequence space (RFC 9293 §3.4).
fn after(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) > 0
}

impl WireTcb {
    /// The state before entry `idx` of `trace`.
    pub fn before(trace: &Trace, idx: usize) -> WireTcb {
        let mut t = WireTcb::default();
        for e in trace.entries.iter().take(idx) {
            match &e.kind {
                TraceKind::PacketOut { bytes, .. } => {
                    if let Ok(w) = wire::decode(bytes) {
                        t.on_out(&w);
                    }
                }
                TraceKind::PacketIn { bytes, .. } => {
                    if let Ok(w) = wire::decode(bytes) {
                        t.on_in(&w);
                    }
                }
                _ => {}
            }
        }
        t
    }

    fn scaling(&self) -> (u8, u8) {
        match (self.own_wscale, self.peer_wscale) {
            (Some(o), Some(p)) => (o, p),
            _ => (0, 0),
        }
    }

    /// A segment the target sent.
    pub fn on_out(&mut self, w: &WireSegment) {
        if w.flags.syn {
            self.iss = Some(w.seq);
            self.own_wscale = wscale(w);
            if self.snd_una == 0 && self.snd_nxt == 0 {
                self.snd_una = w.seq;
                self.snd_nxt = w.seq;
            }
        }
        let end = w.seq.wrapping_add(seg_len(w));
        if after(end, self.snd_nxt) || self.iss.is_none() {
            self.snd_nxt = end;
        }
        if w.flags.fin {
            self.fin_seq = Some(w.seq.wrapping_add(w.payload_len));
        }
        if w.flags.ack {
            self.rcv_nxt = Some(w.ack);
        }
        let shift = if w.flags.syn { 0 } else { self.scaling().0 };
        self.rcv_wnd = u32::from(w.win) << shift;
    }

    /// A segment the peer sent (an injected packet).
    pub fn on_in(&mut self, w: &WireSegment) {
        if w.flags.syn {
            self.irs = Some(w.seq);
            self.peer_wscale = wscale(w);
        }
        if w.flags.ack && after(w.ack, self.snd_una) && !after(w.ack, self.snd_nxt) {
            self.snd_una = w.ack;
        }
        let shift = if w.flags.syn { 0 } else { self.scaling().1 };
        self.snd_wnd = u32::from(w.win) << shift;
        self.max_snd_wnd = self.max_snd_wnd.max(self.snd_wnd);
    }

    /// The abstract event `w` is for the target in `state` (RFC 9293 §3.4
    /// acceptability, §3.10.7.4 ACK check, RFC 5961 §5.2), with the
    /// target's own RCV.NXT/RCV.WND and send space.
    pub fn classify(&self, w: &WireSegment, state: State) -> Event {
        let len = seg_len(w);
        let (seq, fin) = match self.rcv_nxt.filter(|_| state.has_receive_window()) {
            Some(nxt) => (
                SeqClass::classify(w.seq, len, nxt, self.rcv_wnd),
                w.flags.fin && SeqClass::fin_in_window(w.seq, len, nxt, self.rcv_wnd),
            ),
            None => (SeqClass::NotApplicable, w.flags.fin),
        };
        let ack = if !w.flags.ack {
            AckClass::Absent
        } else if matches!(state, State::Closed | State::Listen) || self.iss.is_none() {
            AckClass::Unchecked
        } else {
            let fin_out = self
                .fin_seq
                .is_some_and(|f| f.wrapping_add(1) == self.snd_nxt);
            AckClass::classify(w.ack, self.snd_una, self.snd_nxt, self.max_snd_wnd, fin_out)
        };
        Event::Segment(SegmentEvent {
            syn: w.flags.syn,
            fin,
            rst: w.flags.rst,
            payload: w.payload_len > 0,
            seq,
            ack,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::script::TcpFlags;
    use std::net::{IpAddr, Ipv4Addr};

    fn seg(
        flags: &str,
        seq: u32,
        ack: u32,
        win: u16,
        len: u32,
        options: Vec<TcpOpt>,
    ) -> WireSegment {
        let mut f = TcpFlags::default();
        for c in flags.chars() {
            match c {
                'S' => f.syn = true,
                'F' => f.fin = true,
                'R' => f.rst = true,
                '.' => f.ack = true,
                _ => {}
            }
        }
        WireSegment {
            src: IpAddr::V4(Ipv4Addr::LOCALHOST),
            dst: IpAddr::V4(Ipv4Addr::LOCALHOST),
            src_port: 1,
            dst_port: 2,
            seq,
            ack,
            flags: f,
            win,
            urg: 0,
            options,
            unknown_options: Vec::new(),
            payload_len: len,
            ecn: 0,
        }
    }

    /// A passive open: peer SYN at 1000, target SYN-ACK at 5000 with window
    /// 64240 and no scaling, peer's ACK.
    fn established() -> WireTcb {
        let mut t = WireTcb::default();
        t.on_in(&seg("S", 1000, 0, 65535, 0, vec![TcpOpt::Mss(1460)]));
        t.on_out(&seg("S.", 5000, 1001, 64240, 0, vec![TcpOpt::Mss(1460)]));
        t.on_in(&seg(".", 1001, 5001, 65535, 0, vec![]));
        t
    }

    #[test]
    fn handshake_sets_the_sequence_variables() {
        let t = established();
        assert_eq!(t.iss, Some(5000));
        assert_eq!(t.irs, Some(1000));
        assert_eq!((t.snd_una, t.snd_nxt), (5001, 5001));
        assert_eq!(t.rcv_nxt, Some(1001));
        assert_eq!(t.rcv_wnd, 64240);
        assert_eq!(t.snd_wnd, 65535);
    }

    /// A RST at RCV.NXT+65535 is inside a 65535 window but beyond the
    /// target's own 64240: classified with the target's window.
    #[test]
    fn sequence_classes_use_the_targets_window() {
        let t = established();
        let rst = seg("R.", 1001 + 65535, 5001, 0, 0, vec![]);
        let Event::Segment(e) = t.classify(&rst, State::Established) else {
            panic!("not a segment event");
        };
        assert_eq!(e.seq, SeqClass::Beyond);
        let inside = seg("R.", 1001 + 100, 5001, 0, 0, vec![]);
        let Event::Segment(e) = t.classify(&inside, State::Established) else {
            panic!("not a segment event");
        };
        assert_eq!(e.seq, SeqClass::Inside);
        assert_eq!(e.ack, AckClass::Dup);
    }

    #[test]
    fn window_scaling_applies_only_when_both_offer_it() {
        let mut t = WireTcb::default();
        t.on_in(&seg("S", 0, 0, 65535, 0, vec![TcpOpt::WScale(0)]));
        t.on_out(&seg("S.", 100, 1, 64240, 0, vec![TcpOpt::WScale(7)]));
        t.on_out(&seg(".", 101, 1, 502, 0, vec![]));
        assert_eq!(t.rcv_wnd, 502 << 7);
        let mut u = WireTcb::default();
        u.on_in(&seg("S", 0, 0, 65535, 0, vec![]));
        u.on_out(&seg("S.", 100, 1, 64240, 0, vec![TcpOpt::WScale(7)]));
        u.on_out(&seg(".", 101, 1, 502, 0, vec![]));
        assert_eq!(u.rcv_wnd, 502);
    }

    #[test]
    fn acks_are_classified_against_the_targets_send_space() {
        let mut t = established();
        t.on_out(&seg(".", 5001, 1001, 64240, 1000, vec![]));
        let old = seg(".", 1001, 4000, 65535, 0, vec![]);
        let beyond = seg(".", 1001, 9000, 65535, 0, vec![]);
        let new = seg(".", 1001, 5501, 65535, 0, vec![]);
        let class = |w: &WireSegment| match t.classify(w, State::Established) {
            Event::Segment(e) => e.ack,
            _ => AckClass::Absent,
        };
        assert_eq!(class(&old), AckClass::Old);
        assert_eq!(class(&beyond), AckClass::Beyond);
        assert_eq!(class(&new), AckClass::New);
    }
}
