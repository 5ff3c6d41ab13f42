//! *RTO*: the own stack's retransmission timer held against the RFC 6298
//! model of `tcp_spec::rto` on arbitrary RTT samples and loss patterns. One
//! segment is in flight at a time, so every sample is unambiguous; a lost
//! ACK makes the timer expire (possibly several times) and the segment is
//! retransmitted, after which the ACK must not be used as a sample (Karn).
//! After every step: RTO equals the model within 1 ms, stays within
//! [min, max], each expiry happens RTO after the (re)transmission and doubles
//! RTO, and the backed-off RTO holds until a valid sample.

use proptest::prelude::*;
use tcp_harness::drive::concretize::Concrete;
use tcp_harness::drive::rig::{Rig, Setup, Variant};
use tcp_spec::rto::{RtoConfig, RtoEstimator, Sample};
use tcp_spec::{Profile, Spec, State};

/// One round: the ACK comes after `rtt_ms`, or is lost `losses` times first.
#[derive(Clone, Debug)]
struct Round {
    rtt_ms: u64,
    losses: u8,
}

fn rounds() -> impl Strategy<Value = Vec<Round>> {
    prop::collection::vec(
        (
            1u64..3000,
            prop_oneof![6 => Just(0u8), 2 => 1u8..3, 1 => 3u8..7],
        )
            .prop_map(|(rtt_ms, losses)| Round { rtt_ms, losses }),
        1..24,
    )
}

const MS: u64 = 1000;

fn check_rto(rig: &Rig, model: &RtoEstimator, what: &str) -> Result<u64, TestCaseError> {
    let s = rig
        .conn
        .and_then(|c| rig.ep().status(c).ok())
        .ok_or_else(|| TestCaseError::fail("connection gone"))?;
    let want = (model.rto() * 1e6).round() as u64;
    let c = model.config();
    prop_assert!(
        s.rto_us.abs_diff(want) <= MS,
        "{what}: stack RTO {} µs, model {} µs (srtt {:?} vs {:?})",
        s.rto_us,
        want,
        s.srtt_us,
        model.srtt()
    );
    prop_assert!(
        s.rto_us as f64 >= c.min.min(c.initial) * 1e6 - 1.0 && s.rto_us as f64 <= c.max * 1e6 + 1.0,
        "{what}: RTO {} µs outside [{}, {}] s",
        s.rto_us,
        c.min,
        c.max
    );
    Ok(s.rto_us)
}

fn run(profile: Profile, isn: u32, rounds: &[Round]) -> Result<(), TestCaseError> {
    let spec = Spec::bundled().map_err(|e| TestCaseError::fail(e.to_string()))?;
    let mut model = RtoEstimator::new(RtoConfig::from_params(&spec.profile(profile).params));
    let mut setup = Setup::new(profile);
    setup.peer_isn = isn;
    let mut rig = Rig::to_state(setup, State::Established, Variant::default())
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    // The handshake gave the stack its first sample (SYN-ACK to ACK).
    let s = rig
        .conn
        .and_then(|c| rig.ep().status(c).ok())
        .ok_or_else(|| TestCaseError::fail("no connection"))?;
    if let Some(srtt) = s.srtt_us {
        model.on_sample(Sample {
            rtt: srtt as f64 / 1e6,
            retransmitted: false,
        });
    }
    check_rto(&rig, &model, "after the handshake")?;
    for (i, r) in rounds.iter().enumerate() {
        let what = |w: &str| format!("round {i} {r:?}: {w}");
        let (sent, _) = rig.with_ep(|ep, now, c| c.map(|c| ep.send(now, c, &[b'r'; 100])));
        prop_assert!(matches!(sent, Some(Ok(100))), "{}", what("send"));
        rig.take_emitted();
        let mut sent_at = rig.now();
        for k in 0..r.losses {
            let before = check_rto(&rig, &model, &what("before expiry"))?;
            let fired = rig.fire_next_timer();
            prop_assert!(
                fired.iter().any(|t| t.row == "SYNC.RTO"),
                "{}",
                what("no retransmission")
            );
            let waited = rig.now().as_micros() - sent_at.as_micros();
            prop_assert!(
                waited.abs_diff(before) <= MS,
                "{}",
                what(&format!(
                    "expiry {k} after {waited} µs, RTO was {before} µs"
                ))
            );
            model.on_timeout();
            check_rto(&rig, &model, &what("after expiry"))?;
            sent_at = rig.now();
        }
        // The ACK arrives; after a retransmission it is ambiguous (Karn).
        let rto_now = check_rto(&rig, &model, &what("before ACK"))?;
        let rtt_us = (r.rtt_ms * MS).min(rto_now.saturating_sub(2 * MS)).max(MS);
        rig.advance(rtt_us);
        let v = rig.view().ok_or_else(|| TestCaseError::fail("no view"))?;
        let c = Concrete {
            syn: false,
            fin: false,
            rst: false,
            ack: Some(v.snd_nxt),
            seq: v.rcv_nxt,
            payload_len: 0,
        };
        rig.inject(&c);
        let used = model.on_sample(Sample {
            rtt: rtt_us as f64 / 1e6,
            retransmitted: r.losses > 0,
        });
        prop_assert_eq!(used, r.losses == 0);
        check_rto(&rig, &model, &what("after ACK"))?;
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn rto_follows_rfc6298_rfc9293(isn in any::<u32>(), r in rounds()) {
        run(Profile::Rfc9293, isn, &r)?;
    }

    #[test]
    fn rto_follows_rfc6298_linux(isn in any::<u32>(), r in rounds()) {
        run(Profile::Linux, isn, &r)?;
    }
}
