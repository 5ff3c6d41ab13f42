//! Preambles built once: a walk starts from a rig whose connection a
//! preamble brought into some state (a handshake, data, a FIN or two). The
//! rig a preamble produces depends only on its parameters, so the first walk
//! with given parameters builds it and later walks clone it — a fuzzer's
//! mutations mostly keep an input's preamble and change its steps.
//!
//! The clone is the same rig `Rig::to_state` would build (endpoint, TCBs,
//! timers, the peer's view, the rows logged so far): walks from it check the
//! same transitions with the same oracles.

use super::rig::{DriveError, Rig, Setup, Variant};
use std::cell::RefCell;
use std::collections::HashMap;
use tcp_spec::{Profile, State};

/// Everything a preamble's outcome depends on.
#[derive(Clone, PartialEq, Eq, Hash)]
struct Key {
    profile: Profile,
    state: State,
    variant: (bool, bool, bool),
    peer_isn: u32,
    peer_wnd: u16,
    peer_mss: u16,
    recv_buf: usize,
    secret: u8,
}

/// Most preambles kept per thread; past it the cache starts over (a rig is a
/// few KiB, so the bound keeps a long fuzzing run's memory flat).
const CAPACITY: usize = 4096;

thread_local! {
    static BUILT: RefCell<HashMap<Key, Result<Rig, DriveError>>> = RefCell::new(HashMap::new());
}

/// [`Rig::to_state`], cloned from an earlier build with the same parameters
/// when this thread has one.
pub fn to_state(setup: Setup, state: State, v: Variant) -> Result<Rig, DriveError> {
    let key = Key {
        profile: setup.profile,
        state,
        variant: (v.unacked_data, v.zero_window, v.active),
        peer_isn: setup.peer_isn,
        peer_wnd: setup.peer_wnd,
        peer_mss: setup.peer_mss,
        recv_buf: setup.recv_buf,
        secret: setup.secret,
    };
    BUILT.with(|built| {
        if let Some(rig) = built.borrow().get(&key) {
            return rig.clone();
        }
        let rig = Rig::to_state(setup, state, v);
        let mut built = built.borrow_mut();
        if built.len() >= CAPACITY {
            built.clear();
        }
        built.insert(key, rig.clone());
        rig
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A cloned preamble is indistinguishable from a fresh one: same state,
    /// same TCB, same rows, and the same reaction to the next segment.
    #[test]
    fn clone_behaves_as_a_fresh_build() {
        let variants = [
            Variant::default(),
            Variant {
                unacked_data: true,
                ..Variant::default()
            },
        ];
        for (state, v) in State::ALL
            .into_iter()
            .flat_map(|s| variants.map(|v| (s, v)))
        {
            let setup = Setup::new(Profile::Rfc9293);
            let fresh = Rig::to_state(setup.clone(), state, v);
            let first = to_state(setup.clone(), state, v);
            let second = to_state(setup, state, v);
            let (Ok(mut fresh), Ok(_), Ok(mut second)) = (fresh, first, second) else {
                continue;
            };
            assert_eq!(fresh.rows, second.rows, "{state} {v:?}");
            assert_eq!(fresh.status(), second.status(), "{state} {v:?}");
            let probe = super::super::concretize::Concrete {
                syn: false,
                fin: true,
                rst: false,
                ack: fresh.view().map(|t| t.snd_nxt),
                seq: fresh.view().map_or(fresh.peer_nxt, |t| t.rcv_nxt),
                payload_len: 3,
            };
            assert_eq!(fresh.inject(&probe), second.inject(&probe), "{state} {v:?}");
            assert_eq!(
                fresh.advance(2_000_000),
                second.advance(2_000_000),
                "{state} {v:?}"
            );
            assert_eq!(fresh.status(), second.status(), "{state} {v:?}");
        }
    }
}
