//! A walk: from any state (the input picks the preamble), a sequence of
//! arbitrary segments, malformed packets, user calls and pauses, with the
//! oracles checked after every step. The `segment_input` fuzz target and the
//! invariants property suite both run walks.
//!
//! Oracles:
//! - no panic;
//! - every transition the stack logs is the row `tcp_spec::step` gives for
//!   its abstract event, and moves to that row's next state;
//! - for abstract-event steps, the stack classified the segment as intended
//!   and emitted what the row's templates say;
//! - SND.UNA ≤ SND.NXT and bounded buffers (`Endpoint::check_invariants`);
//! - new data is never sent beyond SND.UNA + SND.WND (one octet more for a
//!   zero-window probe, RFC 9293 §3.8.6.1);
//! - the right edge of the advertised window, RCV.NXT + RCV.WND, never moves
//!   left (RFC 9293 §3.8.6.2.1 discourages shrinking the window).

use super::check;
use super::concretize::{self, Concrete, TcbView};
use super::rig::{state_of, Rig, Setup, Variant};
use crate::impair::Rng;
use arbitrary::Arbitrary;
use tcp_spec::{Event, Profile, State};
use tcp_stack::{Cause, Shutdown, Status, Transition};

/// Most steps a walk takes (longer inputs are cut).
pub const MAX_STEPS: usize = 48;

/// One walk, as `arbitrary` builds it from fuzzer bytes.
#[derive(Arbitrary, Debug, Clone)]
pub struct WalkInput {
    pub profile: u8,
    pub start: u8,
    pub variant: u8,
    pub peer_isn: u32,
    pub peer_wnd: u16,
    pub recv_buf: u16,
    #[arbitrary(with = first_steps)]
    pub steps: Vec<Step>,
}

/// The steps of a walk: as `Vec<Step>` reads them from fuzzer bytes, but no
/// more than the [`MAX_STEPS`] a walk takes (the rest of a long input would
/// only be decoded to be cut).
fn first_steps(u: &mut arbitrary::Unstructured) -> arbitrary::Result<Vec<Step>> {
    u.arbitrary_iter()?.take(MAX_STEPS).collect()
}

/// One step of a walk.
#[derive(Arbitrary, Debug, Clone)]
pub enum Step {
    /// An abstract event of the table made concrete against the TCB.
    Abstract { index: u16, seed: u64 },
    /// A segment with chosen fields, numbers relative to the TCB.
    Segment {
        flags: u8,
        seq_off: i16,
        ack_off: i16,
        payload: u8,
    },
    /// Arbitrary bytes handed to the stack as a packet.
    Raw(Vec<u8>),
    /// Bytes overwriting part of a well-formed segment (bad offsets,
    /// options, checksums).
    Mangle { at: u8, bytes: Vec<u8> },
    /// A user call: send, receive, shutdown, close, abort.
    Call { which: u8, len: u8 },
    /// Time passes (timers fire).
    Wait { ms: u16 },
}

/// Runs a walk; returns the row ids of the transitions checked, or names
/// the oracle that failed.
pub fn run(input: &WalkInput) -> Result<Vec<&'static str>, String> {
    let profile = Profile::ALL[usize::from(input.profile) % Profile::ALL.len()];
    let start = State::ALL[usize::from(input.start) % State::ALL.len()];
    let variant = Variant {
        unacked_data: input.variant & 1 != 0,
        zero_window: input.variant & 2 != 0,
        active: input.variant & 4 != 0,
    };
    let mut setup = Setup::new(profile);
    setup.peer_isn = input.peer_isn;
    setup.peer_wnd = input.peer_wnd.max(1);
    // A closed window is the same event class whatever the buffer size;
    // filling 64 KiB (and checksumming it twice) would cost the zero-window
    // preambles most of a fuzzer's time, so they use at most 4 KiB.
    let max_buf = if variant.zero_window { 4096 } else { 65535 };
    setup.recv_buf = usize::from(input.recv_buf).clamp(64, max_buf);
    let Ok(mut rig) = super::preambles::to_state(setup, start, variant) else {
        return Ok(Vec::new()); // this preamble cannot be set up; nothing to check
    };
    // The walk checks each step's transitions and the segment summaries in
    // them; the stack's packets need no parsing beyond SYNs (for the ISS).
    rig.keep_emitted = false;
    // One status per step serves the checks after it and the aim of the next.
    let mut status = rig.status();
    let mut edge = right_edge(&rig, status.as_ref());
    for (i, step) in input.steps.iter().take(MAX_STEPS).enumerate() {
        let from = state_of(status.as_ref());
        let before = status.as_ref().and_then(|s| rig.view_of(s));
        let suppressed_before = rig.ep().stats().challenge_acks_suppressed;
        let (transitions, aim) = apply(&mut rig, step, from, before);
        status = rig.status();
        let ctx = |msg: String| format!("step {i} ({step:?}) from {from}: {msg}");
        let mut aimed = None;
        for t in &transitions {
            let row = check::against_table(profile, t).map_err(ctx)?;
            if aimed.is_none() && t.from == from {
                aimed = Some((t, row));
            }
        }
        if let (Some((event, c)), Some((t, row))) = (aim, aimed) {
            if t.event != event {
                return Err(ctx(format!(
                    "aimed at {event} with {c:?} ({before:?}), stack classified {}",
                    t.event
                )));
            }
            let suppressed = rig.ep().stats().challenge_acks_suppressed > suppressed_before;
            let after = status.as_ref().and_then(|s| rig.view_of(s));
            check::emitted(row, t, Some(&c), after.as_ref(), suppressed).map_err(ctx)?;
        }
        rig.ep().check_invariants().map_err(ctx)?;
        check_send_window(&rig, status.as_ref(), &transitions).map_err(ctx)?;
        let new_edge = right_edge(&rig, status.as_ref());
        if let (Some((c0, e0)), Some((c1, e1))) = (edge, new_edge) {
            if c0 == c1 && (e1.wrapping_sub(e0) as i32) < 0 {
                return Err(ctx(format!(
                    "advertised right edge moved left: {e0} -> {e1}"
                )));
            }
        }
        edge = new_edge;
    }
    Ok(rig.rows)
}

/// The status of the connection under test, given the rig's [`Rig::status`]
/// (`None` without a connection: a listener's status is not one).
fn conn_status<'a>(rig: &Rig, status: Option<&'a Status>) -> Option<&'a Status> {
    rig.conn.and(status)
}

/// (connection, RCV.NXT + RCV.WND) while the connection has a window.
fn right_edge(rig: &Rig, status: Option<&Status>) -> Option<(tcp_stack::Handle, u32)> {
    let c = rig.conn?;
    let s = conn_status(rig, status)?;
    s.state
        .has_receive_window()
        .then(|| (c, s.rcv_nxt.wrapping_add(s.rcv_wnd)))
}

/// New data never goes beyond the peer's window (RFC 9293 §3.8.6).
fn check_send_window(
    rig: &Rig,
    status: Option<&Status>,
    transitions: &[Transition],
) -> Result<(), String> {
    let Some(s) = conn_status(rig, status) else {
        return Ok(());
    };
    let limit = s.snd_una.wrapping_add(s.snd_wnd).wrapping_add(1);
    for seg in transitions.iter().flat_map(|t| &t.emitted) {
        if seg.cause == Cause::Data {
            let end = seg.seq.wrapping_add(seg.len);
            if (limit.wrapping_sub(end) as i32) < 0 {
                return Err(format!(
                    "data {}..{end} sent beyond SND.UNA+SND.WND = {}",
                    seg.seq,
                    limit.wrapping_sub(1)
                ));
            }
        }
    }
    Ok(())
}

/// Payload of user SEND calls (a `Step::Call` sends up to 255 octets).
const USER_DATA: [u8; 255] = [b'u'; 255];

/// Performs one step from state `from`, where the peer's view of the
/// connection is `view`; returns the transitions and, for abstract steps,
/// the event aimed at with the segment used.
fn apply(
    rig: &mut Rig,
    step: &Step,
    from: State,
    view: Option<TcbView>,
) -> (Vec<Transition>, Option<(Event, Concrete)>) {
    match step {
        Step::Abstract { index, seed } => {
            let events = Event::possible(from);
            // Segment events come first in the enumeration.
            let segments = events.partition_point(|e| matches!(e, Event::Segment(_)));
            let Some(Event::Segment(ev)) =
                events.get(usize::from(*index) % segments.max(1)).copied()
            else {
                return (Vec::new(), None);
            };
            let mut rng = Rng::new(*seed);
            let view = view.map(|v| match from {
                State::SynSent => TcbView {
                    max_snd_wnd: 0,
                    ..v
                },
                _ => v,
            });
            let max_payload = view.map_or(64, |v| (v.rcv_wnd as usize).clamp(2, 64));
            match concretize::segment(&ev, view.as_ref(), &mut rng, max_payload) {
                Some(c) => (rig.inject(&c), Some((Event::Segment(ev), c))),
                None => (Vec::new(), None),
            }
        }
        Step::Segment {
            flags,
            seq_off,
            ack_off,
            payload,
        } => {
            let base_seq = view.map_or(rig.peer_nxt, |v| v.rcv_nxt);
            let base_ack = view.map_or(0, |v| v.snd_una);
            let c = Concrete {
                syn: flags & 1 != 0,
                fin: flags & 2 != 0,
                rst: flags & 4 != 0,
                ack: (flags & 8 != 0).then(|| base_ack.wrapping_add(*ack_off as u32)),
                seq: base_seq.wrapping_add(*seq_off as u32),
                payload_len: usize::from(*payload),
            };
            (rig.inject(&c), None)
        }
        Step::Raw(bytes) => (rig.inject_bytes(bytes), None),
        Step::Mangle { at, bytes } => {
            let seq = view.map_or(rig.peer_nxt, |v| v.rcv_nxt);
            let mut pkt = rig.segment_bytes(&Concrete {
                syn: false,
                fin: false,
                rst: false,
                ack: view.map(|v| v.snd_una),
                seq,
                payload_len: 8,
            });
            let at = usize::from(*at) % pkt.len().max(1);
            for (i, b) in bytes.iter().take(16).enumerate() {
                if let Some(slot) = pkt.get_mut(at + i) {
                    *slot = *b;
                }
            }
            (rig.inject_bytes(&pkt), None)
        }
        Step::Call { which, len } => {
            let data = &USER_DATA[..usize::from(*len)];
            let (_, t) = rig.with_ep(|ep, now, c| {
                let Some(h) = c else { return };
                let _ = match which % 6 {
                    0 | 1 => ep.send(now, h, data).map(drop),
                    2 => ep.recv(now, h, &mut [0; 256]).map(drop),
                    3 => ep.shutdown(now, h, Shutdown::Write),
                    4 => ep.close(now, h),
                    _ => ep.abort(now, h),
                };
            });
            (t, None)
        }
        Step::Wait { ms } => (rig.advance(u64::from(*ms) * 1000), None),
    }
}
