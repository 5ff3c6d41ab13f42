//! Holding one logged transition of the stack against the table: the row the
//! stack says it applied must be the row `tcp_spec::step` gives for the
//! abstract event, the state must move to the row's next state, and the
//! segments sent in response must have the row's control bits and numbers.

use super::concretize::{expected, Concrete, TcbView};
use tcp_spec::{Ctl, Profile, Row};
use tcp_stack::{Cause, SegmentSummary, Transition};

/// Checks the row id and next state of `t` against the table.
pub fn against_table(profile: Profile, t: &Transition) -> Result<&'static Row, String> {
    let row = tcp_spec::step(profile, t.from, &t.event)
        .map_err(|e| format!("{} in {}: {e}", t.event, t.from))?;
    if row.id != t.row {
        return Err(format!(
            "[{profile}] {} × {}: stack applied `{}`, table says `{}`",
            t.from, t.event, t.row, row.id
        ));
    }
    let next = row.next.resolve(t.from);
    if t.to != next {
        return Err(format!(
            "[{profile}] {} × {} via `{}`: stack went to {}, table says {}",
            t.from, t.event, t.row, t.to, next
        ));
    }
    Ok(row)
}

/// The segments of `t` that answer the event itself (not output that the
/// event merely made possible, such as new data or a window update).
fn responses<'a>(row: &Row, t: &'a Transition) -> Vec<&'a SegmentSummary> {
    let data_row = row.emit.iter().any(|e| e.carries.as_deref() == Some("new"));
    let fin_row = row.emit.iter().any(|e| e.has(Ctl::Fin));
    t.emitted
        .iter()
        .filter(|s| match s.cause {
            Cause::Response | Cause::ChallengeAck | Cause::Retransmit => true,
            Cause::Fin => fin_row,
            Cause::Data => data_row,
            _ => false,
        })
        .collect()
}

/// Checks the segments `t` emitted against the row's templates. `seg` is the
/// segment that caused the transition (if any), `after` the peer's view of
/// the TCB after it, and `suppressed` whether the stack's rate limiter held
/// back a challenge ACK during it (RFC 5961 §7).
pub fn emitted(
    row: &Row,
    t: &Transition,
    seg: Option<&Concrete>,
    after: Option<&TcbView>,
    suppressed: bool,
) -> Result<(), String> {
    let got = responses(row, t);
    let Some(template) = row.emit.first() else {
        return match got.first() {
            None => Ok(()),
            Some(s) => Err(format!(
                "`{}`: table emits nothing, stack sent {} seq={} ack={}",
                row.id,
                s.flags.text(),
                s.seq,
                s.ack
            )),
        };
    };
    // A pure ACK may ride on a data or FIN segment sent at the same moment
    // (RFC 9293 §3.10.7.3 lets queued data go with it).
    let pure_ack = template.ctl == [Ctl::Ack] && template.carries.is_none();
    let piggyback = t
        .emitted
        .iter()
        .find(|s| pure_ack && s.flags.ack && matches!(s.cause, Cause::Data | Cause::Fin));
    let Some(first) = got.first().or(piggyback.as_ref()) else {
        return if row.delayable || (row.rate_limited && suppressed) {
            // The ACK may come later (RFC 1122 §4.2.3.2), or a challenge ACK
            // may be suppressed by its rate limit (RFC 5961 §7).
            Ok(())
        } else {
            Err(format!(
                "`{}`: table emits {template}, stack sent nothing",
                row.id
            ))
        };
    };
    let want = expected(template, after, seg);
    let f = first.flags;
    let f = if got.is_empty() {
        // The piggybacked ACK: its data or FIN bits are not the row's.
        tcp_stack::Flags {
            fin: want.fin,
            psh: false,
            ..f
        }
    } else {
        f
    };
    let retransmits_fin = template.carries.is_some() && f.fin;
    let flags_ok = f.syn == want.syn
        && f.ack == want.ack_bit
        && f.rst == want.rst
        && (f.fin == want.fin || retransmits_fin);
    if !flags_ok {
        return Err(format!(
            "`{}`: table emits {template}, stack sent {}",
            row.id,
            f.text()
        ));
    }
    let occupies = first.len > 0 || f.syn || f.fin;
    // SND.NXT as it was when the segment was formed: new sequence space
    // sent later in the same transition moved it on since.
    let later: u32 = t
        .emitted
        .iter()
        .skip_while(|s| !std::ptr::eq(*s, *first))
        .skip(1)
        .filter(|s| matches!(s.cause, Cause::Data | Cause::Fin | Cause::Probe))
        .map(|s| s.len + u32::from(s.flags.syn) + u32::from(s.flags.fin))
        .sum();
    let seq_ok = match (template.seq.as_str(), want.seq) {
        // A segment that occupies sequence space was numbered before SND.NXT
        // moved past it; only a pure ACK must carry SND.NXT.
        ("SND.NXT", Some(_)) if occupies => true,
        ("SND.NXT", Some(v)) => first.seq == v.wrapping_sub(later),
        (_, Some(v)) => first.seq == v,
        (_, None) => true,
    };
    if !seq_ok {
        return Err(format!(
            "`{}`: {template} wants SEQ={:?}, stack sent seq={}",
            row.id, want.seq, first.seq
        ));
    }
    if let (true, Some(v)) = (want.ack_bit, want.ack) {
        if first.ack != v {
            return Err(format!(
                "`{}`: {template} wants ACK={v}, stack sent ack={}",
                row.id, first.ack
            ));
        }
    }
    Ok(())
}
