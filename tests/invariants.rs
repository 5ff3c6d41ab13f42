//! *Invariants*: random walks through the own stack from every state —
//! abstract events of the table, arbitrary segments, malformed packets, user
//! calls and pauses — checking after every step that each transition is the
//! table's, SND.UNA ≤ SND.NXT, new data stays within the peer's window,
//! buffers stay bounded and the advertised right edge never moves left (see
//! `tcp_harness::drive::walk`).

use proptest::prelude::*;
use std::sync::atomic::{AtomicUsize, Ordering};
use tcp_harness::drive::walk::{run, Step, WalkInput};

static WALKS: AtomicUsize = AtomicUsize::new(0);
static CHECKED: AtomicUsize = AtomicUsize::new(0);

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        8 => (any::<u16>(), any::<u64>()).prop_map(|(index, seed)| Step::Abstract { index, seed }),
        3 => (any::<u8>(), -3000i16..3000, -3000i16..3000, 0u8..=200)
            .prop_map(|(flags, seq_off, ack_off, payload)| Step::Segment { flags, seq_off, ack_off, payload }),
        1 => prop::collection::vec(any::<u8>(), 0..80).prop_map(Step::Raw),
        1 => (any::<u8>(), prop::collection::vec(any::<u8>(), 1..8)).prop_map(|(at, bytes)| Step::Mangle { at, bytes }),
        3 => (any::<u8>(), any::<u8>()).prop_map(|(which, len)| Step::Call { which, len }),
        2 => (0u16..5000).prop_map(|ms| Step::Wait { ms }),
    ]
}

fn walk() -> impl Strategy<Value = WalkInput> {
    (
        0u8..3,
        0u8..11,
        prop_oneof![4 => Just(0u8), 2 => Just(1u8), 1 => Just(2u8), 1 => Just(4u8), 1 => Just(5u8)],
        any::<u32>(),
        prop_oneof![Just(65535u16), 1u16..=65535],
        prop_oneof![Just(4096u16), 64u16..=65535],
        prop::collection::vec(step(), 1..48),
    )
        .prop_map(
            |(profile, start, variant, peer_isn, peer_wnd, recv_buf, steps)| WalkInput {
                profile,
                start,
                variant,
                peer_isn,
                peer_wnd,
                recv_buf,
                steps,
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1500, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn walks_keep_every_oracle(input in walk()) {
        match run(&input) {
            Ok(n) => {
                CHECKED.fetch_add(n.len(), Ordering::Relaxed);
                let w = WALKS.fetch_add(1, Ordering::Relaxed) + 1;
                if w.is_multiple_of(500) {
                    eprintln!("{w} walks, {} transitions checked", CHECKED.load(Ordering::Relaxed));
                }
            }
            Err(failure) => return Err(TestCaseError::fail(failure)),
        }
    }
}
