//! The retransmission timer model of RFC 6298, in exact-as-f64 arithmetic.
//!
//! Times are seconds as `f64`. Inputs in whole microseconds keep every
//! intermediate value a dyadic rational, so the model is exact until the
//! 53-bit mantissa runs out; comparisons against it should allow 1e-9 s.
//!
//! Rules (RFC 6298 §§2–5):
//! - before any sample RTO is the initial value (§2.1, 1 s);
//! - the first sample R gives SRTT = R, RTTVAR = R/2 (§2.2);
//! - later samples: RTTVAR ← (1−β)·RTTVAR + β·|SRTT−R| using the old SRTT,
//!   then SRTT ← (1−α)·SRTT + α·R, with α = 1/8, β = 1/4 (§2.3);
//! - RTO = SRTT + max(G, 4·RTTVAR), clamped to [min, max] (§§2.2–2.5);
//! - every expiry of the retransmission timer doubles RTO, up to max (§5.5);
//! - Karn's algorithm: no sample from a retransmitted segment (§3), and the
//!   backed-off RTO stays until a valid sample gives a fresh computation.

use crate::profile::Params;

/// α of RFC 6298 §2.3.
pub const ALPHA: f64 = 1.0 / 8.0;
/// β of RFC 6298 §2.3.
pub const BETA: f64 = 1.0 / 4.0;
/// K of RFC 6298 §2.
pub const K: f64 = 4.0;

/// The bounds and constants an estimator runs with (seconds).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RtoConfig {
    /// RTO before the first sample (RFC 6298 §2.1).
    pub initial: f64,
    /// Lower bound of a computed RTO (RFC 6298 §2.4).
    pub min: f64,
    /// Upper bound of the RTO (RFC 6298 §2.5).
    pub max: f64,
    /// Clock granularity G (RFC 6298 §2).
    pub granularity: f64,
    /// A floor under the variance term: RTO = SRTT + max(G, floor,
    /// K·RTTVAR). 0 in RFC 6298; Linux floors it at its minimum RTO
    /// (`tcp_rtt_estimator`/`tcp_set_rto`).
    pub var_floor: f64,
}

impl RtoConfig {
    /// RFC 6298 as written: initial 1 s, minimum 1 s, maximum 60 s
    /// (§2.5 allows any cap of at least 60 s), G = 1 ms.
    pub const RFC6298: RtoConfig = RtoConfig {
        initial: 1.0,
        min: 1.0,
        max: 60.0,
        granularity: 0.001,
        var_floor: 0.0,
    };

    /// The values of a profile.
    pub fn from_params(p: &Params) -> RtoConfig {
        let s = |v: u64| v as f64 / 1000.0;
        RtoConfig {
            initial: s(p.rto_initial_ms.value),
            min: s(p.rto_min_ms.value),
            max: s(p.rto_max_ms.value),
            granularity: s(p.clock_granularity_ms.value),
            var_floor: s(p.rto_var_floor_ms.value),
        }
    }
}

/// One RTT measurement as the sender sees it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sample {
    /// The measured round-trip time in seconds.
    pub rtt: f64,
    /// The timed segment was retransmitted (Karn: the sample is ambiguous).
    pub retransmitted: bool,
}

/// The RFC 6298 estimator.
#[derive(Clone, Debug, PartialEq)]
pub struct RtoEstimator {
    config: RtoConfig,
    srtt: Option<f64>,
    rttvar: f64,
    rto: f64,
}

impl RtoEstimator {
    /// An estimator before any sample: RTO is the initial value, clamped.
    pub fn new(config: RtoConfig) -> Self {
        RtoEstimator {
            config,
            srtt: None,
            rttvar: 0.0,
            rto: config
                .initial
                .clamp(config.min.min(config.initial), config.max),
        }
    }

    /// The bounds it runs with.
    pub fn config(&self) -> RtoConfig {
        self.config
    }

    /// SRTT, once a sample has been taken.
    pub fn srtt(&self) -> Option<f64> {
        self.srtt
    }

    /// RTTVAR (0 before a sample).
    pub fn rttvar(&self) -> f64 {
        self.rttvar
    }

    /// The current RTO (seconds).
    pub fn rto(&self) -> f64 {
        self.rto
    }

    /// Feeds one measurement. Returns whether it was used: a sample from a
    /// retransmitted segment is discarded (RFC 6298 §3, Karn).
    pub fn on_sample(&mut self, sample: Sample) -> bool {
        // NaN and negative measurements are not samples.
        if sample.retransmitted || sample.rtt.is_nan() || sample.rtt < 0.0 {
            return false;
        }
        let r = sample.rtt;
        match self.srtt {
            None => {
                self.srtt = Some(r);
                self.rttvar = r / 2.0;
            }
            Some(srtt) => {
                self.rttvar = (1.0 - BETA) * self.rttvar + BETA * (srtt - r).abs();
                self.srtt = Some((1.0 - ALPHA) * srtt + ALPHA * r);
            }
        }
        self.rto = self.computed();
        true
    }

    /// The retransmission timer expired: back off (RFC 6298 §5.5).
    pub fn on_timeout(&mut self) {
        self.rto = (self.rto * 2.0).min(self.config.max);
    }

    /// SRTT + max(G, K·RTTVAR) clamped to [min, max] (RFC 6298 §2.3–2.5);
    /// a profile's variance floor joins G in the max.
    fn computed(&self) -> f64 {
        let srtt = self.srtt.unwrap_or(self.config.initial);
        let raw = srtt
            + self
                .config
                .granularity
                .max(self.config.var_floor)
                .max(K * self.rttvar);
        raw.clamp(self.config.min, self.config.max)
    }
}

/// An unanswered SYN (RFC 9293 §3.8.3): the times, from the first SYN, at
/// which it is sent (the first at 0, then `retries` retransmissions, each
/// one RTO after the previous: the initial RTO, doubled on every expiry up
/// to the cap, RFC 6298 §§2.1, 5.5), and the time the open is given up: one
/// RTO after the last retransmission, when the retry limit (R2) is reached.
pub fn syn_schedule(config: RtoConfig, retries: u64) -> (Vec<f64>, f64) {
    let mut e = RtoEstimator::new(config);
    let mut at = 0.0;
    let mut sent = vec![at];
    for _ in 0..retries {
        at += e.rto();
        e.on_timeout();
        sent.push(at);
    }
    (sent, at + e.rto())
}

/// When an unanswered active open gives up, in seconds after the first
/// SYN, for a stack whose first `linear` expiries keep the initial RTO and
/// that gives up at the first expiry at or after the time the doubling
/// schedule of `retries` retransmissions would take ([`syn_schedule`]) —
/// Linux's `tcp_write_timeout` with `tcp_syn_linear_timeouts`. With
/// `linear = 0` it is the give-up time of [`syn_schedule`].
pub fn syn_give_up(config: RtoConfig, retries: u64, linear: u64) -> f64 {
    let (_, limit) = syn_schedule(config, retries);
    let mut e = RtoEstimator::new(config);
    let mut at = 0.0;
    for expiry in 0u64.. {
        at += e.rto();
        if at + 1e-9 >= limit || expiry > 10_000 {
            return at;
        }
        if expiry >= linear {
            e.on_timeout();
        }
    }
    at
}

/// The least time R2 for a SYN may last (RFC 9293 §3.8.3, MUST-23; RFC 1122
/// §4.2.3.5): three minutes of retransmission, in seconds.
pub const SYN_R2_MIN: f64 = 180.0;

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const EPS: f64 = 1e-9;

    fn cfg() -> RtoConfig {
        RtoConfig::RFC6298
    }

    #[test]
    fn syn_give_up_follows_the_schedule_or_its_linear_variant() {
        // RFC 6298 doubling, 7 retries, 60 s cap: fails at 183 s.
        assert!((syn_give_up(cfg(), 7, 0) - 183.0).abs() < EPS);
        // Linux: 6 retries of a 120 s-capped doubling give a 127 s budget;
        // four linear 1 s timeouts first: expiries at 1,2,3,4,5,7,11,19,
        // 35,67,131 s, the first at or past 127 s ends it.
        let linux = RtoConfig {
            max: 120.0,
            min: 0.2,
            ..cfg()
        };
        assert!((syn_give_up(linux, 6, 4) - 131.0).abs() < EPS);
        assert!((syn_give_up(linux, 6, 0) - 127.0).abs() < EPS);
    }

    #[test]
    fn initial_rto_is_one_second() {
        assert_eq!(RtoEstimator::new(cfg()).rto(), 1.0);
    }

    #[test]
    fn first_sample_sets_srtt_and_half_variance() {
        let mut e = RtoEstimator::new(cfg());
        assert!(e.on_sample(Sample {
            rtt: 2.0,
            retransmitted: false
        }));
        assert_eq!(e.srtt(), Some(2.0));
        assert_eq!(e.rttvar(), 1.0);
        assert_eq!(e.rto(), 6.0);
    }

    #[test]
    fn second_sample_uses_old_srtt_for_variance() {
        let mut e = RtoEstimator::new(cfg());
        e.on_sample(Sample {
            rtt: 2.0,
            retransmitted: false,
        });
        e.on_sample(Sample {
            rtt: 4.0,
            retransmitted: false,
        });
        // RTTVAR = 3/4·1 + 1/4·|2−4| = 1.25; SRTT = 7/8·2 + 1/8·4 = 2.25.
        assert!((e.rttvar() - 1.25).abs() < EPS);
        assert!((e.srtt().unwrap_or(0.0) - 2.25).abs() < EPS);
        assert!((e.rto() - 7.25).abs() < EPS);
    }

    #[test]
    fn karn_discards_retransmitted_samples_and_keeps_backoff() {
        let mut e = RtoEstimator::new(cfg());
        e.on_timeout();
        e.on_timeout();
        assert_eq!(e.rto(), 4.0);
        assert!(!e.on_sample(Sample {
            rtt: 0.1,
            retransmitted: true
        }));
        assert_eq!(e.rto(), 4.0);
        assert_eq!(e.srtt(), None);
        assert!(e.on_sample(Sample {
            rtt: 0.1,
            retransmitted: false
        }));
        assert_eq!(e.rto(), 1.0); // 0.1 + 0.2 clamped up to min 1 s
    }

    #[test]
    fn syn_schedule_doubles_to_the_cap() {
        let (sent, give_up) = syn_schedule(cfg(), 7);
        assert_eq!(sent, [0.0, 1.0, 3.0, 7.0, 15.0, 31.0, 63.0, 123.0]);
        assert_eq!(give_up, 183.0);
    }

    /// MUST-23: under the RFC profiles the retry count keeps an unanswered
    /// SYN going for at least three minutes with the profile's own RTO
    /// values. (Linux's `tcp_syn_retries = 6` gives up at 127 s.)
    #[test]
    fn rfc_profiles_retransmit_a_syn_for_at_least_three_minutes() {
        let spec = match crate::Spec::bundled() {
            Ok(s) => s,
            Err(e) => panic!("{e}"),
        };
        for p in [crate::Profile::Rfc793, crate::Profile::Rfc9293] {
            let params = &spec.profile(p).params;
            let (_, give_up) =
                syn_schedule(RtoConfig::from_params(params), params.syn_retries.value);
            assert!(
                give_up >= SYN_R2_MIN,
                "{p}: a SYN is given up at {give_up} s"
            );
        }
        let linux = &spec.profile(crate::Profile::Linux).params;
        let (_, give_up) = syn_schedule(RtoConfig::from_params(linux), linux.syn_retries.value);
        assert_eq!(give_up, 127.0);
    }

    /// A direct evaluation of RFC 6298's formulas over a sample sequence.
    fn direct(samples: &[f64], c: RtoConfig) -> (f64, f64, f64) {
        let mut srtt = samples[0];
        let mut rttvar = samples[0] / 2.0;
        for &r in &samples[1..] {
            rttvar = 0.75 * rttvar + 0.25 * (srtt - r).abs();
            srtt = 0.875 * srtt + 0.125 * r;
        }
        let rto = (srtt + c.granularity.max(4.0 * rttvar)).clamp(c.min, c.max);
        (srtt, rttvar, rto)
    }

    #[derive(Clone, Debug)]
    enum Step {
        Sample(u32, bool),
        Expire,
    }

    fn steps() -> impl Strategy<Value = Vec<Step>> {
        prop::collection::vec(
            prop_oneof![
                4 => (1u32..5_000_000, any::<bool>()).prop_map(|(us, rx)| Step::Sample(us, rx)),
                1 => Just(Step::Expire),
            ],
            0..64,
        )
    }

    fn config() -> impl Strategy<Value = RtoConfig> {
        (0u32..3, 1u32..2000, 60u32..240).prop_map(|(k, min_ms, max_s)| match k {
            0 => RtoConfig::RFC6298,
            _ => RtoConfig {
                initial: 1.0,
                min: min_ms as f64 / 1000.0,
                max: max_s as f64,
                granularity: 0.001 * k as f64,
                var_floor: 0.0,
            },
        })
    }

    proptest! {
        #[test]
        fn rto_stays_within_bounds(c in config(), s in steps()) {
            let mut e = RtoEstimator::new(c);
            for step in s {
                match step {
                    Step::Sample(us, rx) => { e.on_sample(Sample { rtt: us as f64 / 1e6, retransmitted: rx }); }
                    Step::Expire => e.on_timeout(),
                }
                prop_assert!(e.rto() >= c.min.min(c.initial) - EPS && e.rto() <= c.max + EPS);
            }
        }

        #[test]
        fn expiry_doubles_up_to_the_cap(c in config(), s in steps()) {
            let mut e = RtoEstimator::new(c);
            for step in s {
                let before = e.rto();
                match step {
                    Step::Sample(us, rx) => { e.on_sample(Sample { rtt: us as f64 / 1e6, retransmitted: rx }); }
                    Step::Expire => {
                        e.on_timeout();
                        prop_assert!((e.rto() - (2.0 * before).min(c.max)).abs() < EPS);
                    }
                }
            }
        }

        #[test]
        fn matches_direct_evaluation(c in config(), s in steps()) {
            let mut e = RtoEstimator::new(c);
            let mut valid = Vec::new();
            let mut expired_since_sample = false;
            for step in &s {
                match *step {
                    Step::Sample(us, rx) => {
                        let used = e.on_sample(Sample { rtt: us as f64 / 1e6, retransmitted: rx });
                        prop_assert_eq!(used, !rx, "Karn: used iff not retransmitted");
                        if used { valid.push(us as f64 / 1e6); expired_since_sample = false; }
                    }
                    Step::Expire => { e.on_timeout(); expired_since_sample = true; }
                }
            }
            if !valid.is_empty() {
                let (srtt, rttvar, rto) = direct(&valid, c);
                prop_assert!((e.srtt().unwrap_or(f64::NAN) - srtt).abs() < EPS);
                prop_assert!((e.rttvar() - rttvar).abs() < EPS);
                if !expired_since_sample {
                    prop_assert!((e.rto() - rto).abs() < EPS);
                }
            }
        }

        #[test]
        fn first_valid_sample_rule(c in config(), r in 1u32..10_000_000) {
            let mut e = RtoEstimator::new(c);
            let r = r as f64 / 1e6;
            e.on_sample(Sample { rtt: r, retransmitted: false });
            prop_assert_eq!(e.srtt(), Some(r));
            prop_assert!((e.rttvar() - r / 2.0).abs() < EPS);
            prop_assert!((e.rto() - (r + c.granularity.max(2.0 * r)).clamp(c.min, c.max)).abs() < EPS);
        }

        #[test]
        fn converges_to_a_constant_rtt(c in config(), first in 1u32..5_000_000, r in 1u32..5_000_000) {
            let mut e = RtoEstimator::new(c);
            let r = r as f64 / 1e6;
            e.on_sample(Sample { rtt: first as f64 / 1e6, retransmitted: false });
            for _ in 0..400 {
                e.on_sample(Sample { rtt: r, retransmitted: false });
            }
            // SRTT → R and RTTVAR → 0, so RTO → clamp(R + G).
            prop_assert!((e.srtt().unwrap_or(0.0) - r).abs() < 1e-6);
            prop_assert!(e.rttvar() < 1e-6);
            prop_assert!((e.rto() - (r + c.granularity).clamp(c.min, c.max)).abs() < 1e-5);
        }
    }
}
