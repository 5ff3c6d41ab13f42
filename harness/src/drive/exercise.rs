//! Exercising one row of the table on a fresh endpoint: pick one of the
//! (state, event) cases the row covers, drive a connection into the state,
//! deliver a concrete segment, call or timeout of the event's class, and
//! check what the stack did against the row.

use super::check;
use super::concretize::{self, TcbView};
use super::rig::{Rig, Setup, Variant, PEER_ADDR, PEER_PORT, STACK_ADDR, STACK_PORT};
use crate::impair::Rng;
use std::net::SocketAddr;
use tcp_spec::{AckClass, Event, Profile, Row, SegmentEvent, SeqClass, State, Timeout, UserCall};
use tcp_stack::Transition;

/// The (state, event) pairs for which `row` is the table's answer under
/// `profile`.
pub fn cases(profile: Profile, row: &Row) -> Vec<(State, Event)> {
    let mut out = Vec::new();
    for &state in &row.from {
        for ev in Event::enumerate(state) {
            if tcp_spec::step(profile, state, &ev).is_ok_and(|r| r.id == row.id) {
                out.push((state, ev));
            }
        }
    }
    out
}

/// How one attempt went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    /// The case was driven and the stack agreed with the row.
    Agreed { state: State, event: Event },
    /// The case could not be set up (e.g. a zero window after the peer's
    /// FIN); another case of the row should be tried.
    Unreachable(String),
}

/// Drives `state` × `event` once and checks the outcome.
pub fn attempt(
    profile: Profile,
    state: State,
    event: Event,
    setup: Setup,
    seed: u64,
) -> Result<Attempt, String> {
    let mut rng = Rng::new(seed);
    let unreachable = |why: String| Ok(Attempt::Unreachable(why));
    let variant = variant_for(state, &event);
    let mut rig = match Rig::to_state(Setup { profile, ..setup }, state, variant) {
        Ok(r) => r,
        Err(e) => return unreachable(e.to_string()),
    };
    if state == State::Closed && !matches!(event, Event::Segment(_)) {
        // A connection that was reset but whose handle the user still holds.
        if let Err(why) = reset_connection(&mut rig) {
            return unreachable(why);
        }
    }
    let before = view_in(&rig, state);
    let suppressed_before = rig.ep().stats().challenge_acks_suppressed;
    let (transitions, seg) = match event {
        Event::Segment(ev) => {
            let max_payload = before.map_or(64, |v| (v.rcv_wnd as usize).clamp(2, 64));
            let Some(c) = concretize::segment(&ev, before.as_ref(), &mut rng, max_payload) else {
                return unreachable(format!("no numbers for {ev} in {before:?}"));
            };
            (rig.inject(&c), Some(c))
        }
        Event::Call { call } => (perform(&mut rig, call), None),
        Event::Timeout { timeout } => (expire(&mut rig, timeout), None),
    };
    if matches!(event, Event::Timeout { .. }) && !transitions.iter().any(|t| t.event == event) {
        return unreachable(format!("no {event} fires in {state} here"));
    }
    let Some(t) = transitions
        .iter()
        .find(|t| t.from == state && t.event == event)
    else {
        let seen: Vec<String> = transitions
            .iter()
            .map(|t| format!("{} × {} via {}", t.from, t.event, t.row))
            .collect();
        return Err(format!(
            "[{profile}] {state} × {event}: the stack logged no such transition (logged: {seen:?})"
        ));
    };
    let row = check::against_table(profile, t)?;
    let after = rig.view();
    let suppressed = rig.ep().stats().challenge_acks_suppressed > suppressed_before;
    check::emitted(row, t, seg.as_ref(), after.as_ref(), suppressed)?;
    rig.ep().check_invariants().map_err(|e| {
        format!(
            "[{profile}] {state} × {event} via {}: invariant broken: {e}",
            t.row
        )
    })?;
    Ok(Attempt::Agreed { state, event })
}

/// The preamble conditions an event needs.
fn variant_for(state: State, event: &Event) -> Variant {
    match event {
        Event::Segment(SegmentEvent { seq, ack, .. }) => Variant {
            unacked_data: *ack == AckClass::New
                && !matches!(state, State::SynSent | State::SynReceived),
            zero_window: matches!(seq, SeqClass::ZeroWindowAtNext | SeqClass::ZeroWindowOff),
            active: false,
        },
        Event::Timeout {
            timeout: Timeout::Retransmission | Timeout::User,
        } => Variant {
            unacked_data: matches!(state, State::Established | State::CloseWait),
            ..Variant::default()
        },
        // Only a connection the user opened has a handle in SYN-RECEIVED.
        Event::Call { .. } if state == State::SynReceived => Variant {
            active: true,
            ..Variant::default()
        },
        _ => Variant::default(),
    }
}

/// The TCB view for aiming a segment in `state` (SYN-SENT has seen no window
/// from the peer yet, so MAX.SND.WND is 0 there).
fn view_in(rig: &Rig, state: State) -> Option<TcbView> {
    rig.view().map(|v| match state {
        State::SynSent => TcbView {
            max_snd_wnd: 0,
            ..v
        },
        _ => v,
    })
}

fn reset_connection(rig: &mut Rig) -> Result<(), String> {
    let mut est = Rig::to_state(rig.setup.clone(), State::Established, Variant::default())
        .map_err(|e| e.to_string())?;
    let v = est.view().ok_or("no connection")?;
    est.inject(&concretize::Concrete {
        syn: false,
        fin: false,
        rst: true,
        ack: None,
        seq: v.rcv_nxt,
        payload_len: 0,
    });
    if est.state() != State::Closed {
        return Err(format!("RST left the connection in {}", est.state()));
    }
    *rig = est;
    Ok(())
}

/// Maps a user call onto the socket API (RFC 9293 §3.9.1).
fn perform(rig: &mut Rig, call: UserCall) -> Vec<Transition> {
    let handle = rig.conn.or(rig.listener);
    let fresh = rig.state() == State::Closed;
    let mut opened = None;
    let peer = SocketAddr::new(PEER_ADDR, PEER_PORT);
    let (_, t) = rig.with_ep(|ep, now, _| match (call, handle) {
        (UserCall::OpenPassive, Some(h)) if !fresh => ep.reopen(now, h, None).map(drop),
        (UserCall::OpenActive, Some(h)) if !fresh => ep.reopen(now, h, Some(peer)).map(drop),
        // A fresh socket: the preamble's listener may still hold STACK_PORT.
        (UserCall::OpenPassive, _) => ep
            .listen(now, Some(STACK_ADDR), STACK_PORT + 1, 8)
            .map(drop),
        (UserCall::OpenActive, _) => ep
            .connect(now, SocketAddr::new(STACK_ADDR, 0), peer)
            .map(|c| opened = Some(c)),
        (UserCall::Send, Some(h)) => ep.send(now, h, &[b's'; 50]).map(drop),
        (UserCall::Receive, Some(h)) => ep.recv(now, h, &mut [0; 64]).map(drop),
        (UserCall::Close, Some(h)) => ep.close(now, h),
        (UserCall::Abort, Some(h)) => ep.abort(now, h),
        (_, None) => Ok(()),
    });
    if opened.is_some() {
        rig.conn = opened;
    }
    t
}

/// Fires timers until the stack logs `timeout` (bounded).
fn expire(rig: &mut Rig, timeout: Timeout) -> Vec<Transition> {
    let want = Event::Timeout { timeout };
    for _ in 0..64 {
        let t = rig.fire_next_timer();
        if t.is_empty() && rig.ep().poll_timeout().is_none() {
            break;
        }
        if let Some(hit) = t.into_iter().find(|t| t.event == want) {
            return vec![hit];
        }
    }
    Vec::new()
}
