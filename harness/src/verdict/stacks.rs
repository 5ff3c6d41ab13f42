//! Where a departure comes from in the source of a stack that has no
//! profile in the table (smoltcp): the counterpart, for in-process stacks,
//! of the `mechanism` a Linux row names.
//!
//! Such a stack is judged against the RFC profile alone (its target profile
//! is the active one, [`super::target_profile`]); the class and level of a
//! divergence do not change here. [`document`] only names, for a departure
//! whose stimulus and table row match a behaviour read in the stack's
//! source, the file, function and lines responsible, and why. Lines refer
//! to the crates.io release the harness depends on.

use super::class::{Divergence, Kind};
use crate::run::wire::WireSegment;

/// The smoltcp release the locations refer to.
pub const SMOLTCP: &str = "smoltcp 0.14.0";

/// Fills in [`Divergence::documented`] for a departure of `target` whose
/// cause is known in its source. `stim` is the segment that drew (or
/// failed to draw) the answer, when the stimulus was a segment.
pub fn document(target: &str, d: &mut Divergence, stim: Option<&WireSegment>) {
    if d.documented.is_some() || !d.class.departs() {
        return;
    }
    let found = match target {
        "smoltcp" => smoltcp(d, stim),
        _ => None,
    };
    if let Some(m) = found {
        d.documented = Some(format!("{SMOLTCP} {m}"));
    }
}

/// The stimulus's control bits: (SYN, ACK, FIN, RST, carries data).
fn bits(stim: Option<&WireSegment>) -> Option<(bool, bool, bool, bool, bool)> {
    stim.map(|w| {
        (
            w.flags.syn,
            w.flags.ack,
            w.flags.fin,
            w.flags.rst,
            w.payload_len > 0,
        )
    })
}

/// The smoltcp 0.14.0 behaviour behind a departure, read in its source.
fn smoltcp(d: &Divergence, stim: Option<&WireSegment>) -> Option<&'static str> {
    const LIMITER: &str = "src/socket/tcp.rs Socket::challenge_ack_reply (lines 1539-1553): one \
        reply per second, shared by challenge ACKs and the ACKs to unacceptable segments without \
        data (Socket::process, lines 1815-1830), so an ACK the RFC asks for is withheld within a \
        second of the last one";
    let row = d.rows.first().map(String::as_str).unwrap_or("");
    let b = bits(stim);
    let sent_rst = d.actual.starts_with("> R");
    Some(match (row, b) {
        ("SYNC.RST.challenge", _) => {
            "src/socket/tcp.rs Socket::process: any RST with an acceptable sequence number is \
             taken (line 1619, `(_, TcpControl::Rst, _) => ()`) and resets the connection \
             (lines 1893-1899; in SYN-RECEIVED it returns to LISTEN, lines 1883-1891): there is \
             no RFC 5961 3.2 check that SEG.SEQ = RCV.NXT and no challenge ACK"
        }
        ("SYNC.SYN.challenge" | "SYNC.SEQ.unacceptable", Some((true, false, _, _, _))) => {
            "src/socket/tcp.rs Socket::process, lines 1660-1663 (`(_, _, None)`, \"expecting \
             an ACK\"): after the handshake a segment without ACK is dropped before the sequence \
             check, so a SYN draws neither the challenge ACK of RFC 5961 4.2 nor the ACK of an \
             unacceptable segment"
        }
        ("SYNC.SYN.challenge", Some((true, true, _, _, _))) => {
            "src/socket/tcp.rs Socket::process, lines 2052-2055: an acceptable SYN in a \
             synchronized state falls through to `_ => { \"unexpected packet\"; return None }` \
             without the challenge ACK of RFC 5961 4.2"
        }
        ("SYNC.ACK.too-old", _) => {
            "src/socket/tcp.rs Socket::process, lines 1684-1692: an ACK below SND.UNA is a \
             \"duplicate ACK\" and dropped without reply; there is no MAX.SND.WND check and no \
             ACK for a too-old acknowledgment (RFC 5961 5.2)"
        }
        ("SYNC.SEQ.unacceptable", Some((false, true, false, false, false))) if sent_rst => {
            "src/socket/tcp.rs Socket::process, lines 1664-1670: in SYN-RECEIVED any ACK other \
             than ISS+1 draws a RST before the sequence number is checked; RFC 9293 3.10.7.4 \
             checks the sequence number first and answers an unacceptable segment with an ACK"
        }
        ("SYNC.SEQ.unacceptable" | "END.FIN", Some((false, _, _, false, false))) => LIMITER,
        ("SYNC.SEQ.unacceptable", Some((false, true, _, false, true)))
            if d.kind == Kind::Response =>
        {
            "src/socket/tcp.rs Socket::process, line 1713: the acceptability test measures a \
             segment by its payload (`segment_end = seq + payload.len()`), leaving out the FIN \
             (RFC 9293 3.4 counts it in SEG.LEN), so an earlier FIN was taken into a zero \
             window and RCV.NXT is one past what the RFC allows \
             (corpus/smoltcp/zero_window_fin.pkt)"
        }
        ("LISTEN.SYN-FIN", _) => {
            "src/wire/tcp.rs TcpRepr::parse, lines 921-928: SYN together with FIN is a parse \
             error, so the segment is dropped before any socket sees it"
        }
        ("OPEN.FIN.out-of-order" | "FW1.FIN-queued.fin-acked" | "SR.ACK.ok-fin-queued", _) => {
            "src/socket/tcp.rs Socket::process, lines 1868-1876: a FIN beyond a hole is \
             ignored (`control = TcpControl::None`) and the segment, carrying nothing else, \
             draws no ACK (Socket::ack_to_transmit, lines 2383-2389, acknowledges only when \
             RCV.NXT moved), where an out-of-order segment should draw an immediate ACK"
        }
        ("PRE.ABORT" | "END.ABORT" | "LISTEN.CLOSE", _) if d.kind == Kind::Extra => {
            "src/socket/tcp.rs Socket::abort (lines 1114-1116) and Socket::close in SYN-SENT \
             (lines 1089-1090) enter CLOSED with the connection's endpoints kept, and \
             Socket::dispatch sends a RST from CLOSED (lines 2589-2593): ABORT in SYN-SENT, \
             CLOSING, LAST-ACK or TIME-WAIT and CLOSE in SYN-SENT send a RST the RFC does not"
        }
        ("OPEN.DATA.in-order", _) if sent_rst => {
            "the connection was reset by an earlier in-window RST (src/socket/tcp.rs \
             Socket::process, lines 1893-1899), so the segment meets a closed port"
        }
        _ if d.reason.contains(super::rules::TIME_WAIT_ENDED) => {
            "src/socket/tcp.rs: CLOSE_DELAY = 10 s (line 301), the TIME-WAIT timer set by \
             Timer::set_for_close (lines 394-397): 2·MSL for an MSL of 5 s (smoltcp names no \
             MSL), where RFC 9293 3.4.2 states 2 minutes"
        }
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verdict::class::Class;

    fn departure(row: &str, kind: Kind) -> Divergence {
        let mut d = Divergence::new("smoltcp".into(), kind, String::new(), "nothing".into());
        d.class = Class::MustViolation;
        d.rows = vec![row.into()];
        d
    }

    #[test]
    fn a_departure_with_a_known_cause_names_its_source_and_others_stay_undocumented() {
        let mut d = departure("SYNC.RST.challenge", Kind::Missing);
        document("smoltcp", &mut d, None);
        let m = d.documented.clone().unwrap_or_default();
        assert!(
            m.starts_with(SMOLTCP) && m.contains("Socket::process"),
            "{m}"
        );
        // Another target, a row without a known cause, or no departure.
        for (target, row, class) in [
            ("linux", "SYNC.RST.challenge", Class::MustViolation),
            ("smoltcp", "OPEN.DATA.in-order", Class::MustViolation),
            ("smoltcp", "SYNC.RST.challenge", Class::Conforms),
        ] {
            let mut d = departure(row, Kind::Missing);
            d.class = class;
            document(target, &mut d, None);
            assert_eq!(d.documented, None, "{target} {row} {class}");
        }
    }

    /// The TIME-WAIT deviation is found by its reason, whatever its class.
    #[test]
    fn a_short_time_wait_names_close_delay() {
        let mut d = departure("", Kind::Response);
        d.class = Class::Deviation;
        d.reason = format!(
            "a segment met a closed port: {}",
            super::super::rules::TIME_WAIT_ENDED
        );
        document("smoltcp", &mut d, None);
        let m = d.documented.unwrap_or_default();
        assert!(
            m.contains("CLOSE_DELAY = 10 s") && m.contains("MSL of 5 s"),
            "{m}"
        );
    }
}
