//! The retransmission timeout estimator of RFC 6298, in integer arithmetic.
//!
//! SRTT and RTTVAR are kept in fixed point (1/256 µs) so that the
//! exponentially weighted averages lose almost nothing to truncation; the
//! property test below bounds the distance to the exact model in
//! `tcp_spec::rto` at well under 1 ms.

/// Fractional bits of the fixed-point representation.
const FRAC: u32 = 8;
/// Samples are capped at about 12.7 days so fixed point cannot overflow.
const MAX_SAMPLE_US: u64 = 1 << 40;

/// The bounds and constants of an estimator, in microseconds
/// (RFC 6298 §§2.1, 2.4, 2.5 and G of §2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RtoParams {
    pub initial_us: u64,
    pub min_us: u64,
    pub max_us: u64,
    pub granularity_us: u64,
    /// A floor under the variance term (0 in RFC 6298; Linux: its minimum
    /// RTO, `tcp_rtt_estimator`/`tcp_set_rto`).
    pub var_floor_us: u64,
}

impl RtoParams {
    /// The values of a profile (`tcp_spec::Params` are milliseconds).
    pub fn from_spec(p: &tcp_spec::ParamValues) -> RtoParams {
        let us = |ms: u64| ms.saturating_mul(1000);
        RtoParams {
            initial_us: us(p.rto_initial_ms),
            min_us: us(p.rto_min_ms),
            max_us: us(p.rto_max_ms).max(1),
            granularity_us: us(p.clock_granularity_ms),
            var_floor_us: us(p.rto_var_floor_ms),
        }
    }
}

/// RFC 6298 state: SRTT, RTTVAR and the current RTO.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RtoEstimator {
    params: RtoParams,
    /// SRTT in 1/256 µs, once a sample has been taken.
    srtt: Option<u64>,
    /// RTTVAR in 1/256 µs.
    rttvar: u64,
    /// Current RTO in µs (backed off by expiries).
    rto_us: u64,
    /// The timer expired since the last sample.
    backed_off: bool,
    faults: crate::Faults,
}

impl RtoEstimator {
    /// Before any sample RTO is the initial value (RFC 6298 §2.1), kept
    /// within the cap.
    pub fn new(params: RtoParams) -> Self {
        Self::with_faults(params, crate::Faults::default())
    }

    /// An estimator with seeded bugs ([`crate::Faults`]; tests only).
    pub fn with_faults(params: RtoParams, faults: crate::Faults) -> Self {
        let lo = params.min_us.min(params.initial_us);
        RtoEstimator {
            params,
            srtt: None,
            rttvar: 0,
            rto_us: params.initial_us.clamp(lo, params.max_us.max(lo)),
            backed_off: false,
            faults,
        }
    }

    /// SRTT in µs, once measured.
    pub fn srtt_us(&self) -> Option<u64> {
        self.srtt.map(|s| s >> FRAC)
    }

    /// RTTVAR in µs.
    pub fn rttvar_us(&self) -> u64 {
        self.rttvar >> FRAC
    }

    /// The current RTO in µs.
    pub fn rto_us(&self) -> u64 {
        self.rto_us
    }

    /// Feeds one RTT measurement (RFC 6298 §2.2 for the first, §2.3 after).
    /// The caller applies Karn's rule (§3): samples from retransmitted
    /// segments must not be passed in.
    pub fn on_sample(&mut self, rtt_us: u64) {
        let r = rtt_us.min(MAX_SAMPLE_US) << FRAC;
        match self.srtt {
            None => {
                self.srtt = Some(r);
                self.rttvar = r / 2;
            }
            Some(srtt) => {
                let delta = srtt.abs_diff(r);
                // RTTVAR first, with the old SRTT (β = 1/4, α = 1/8).
                self.rttvar = if self.faults.rttvar_gain_eighth {
                    (self.rttvar * 7 + delta) / 8
                } else {
                    (self.rttvar * 3 + delta) / 4
                };
                self.srtt = Some(if self.faults.srtt_gain_quarter {
                    (srtt * 3 + r) / 4
                } else {
                    (srtt * 7 + r) / 8
                });
            }
        }
        let keep = self.backed_off && self.faults.keep_backoff_after_sample;
        self.backed_off = false;
        if !keep {
            self.rto_us = self.computed();
        }
    }

    /// The timer expired: double RTO up to the cap (RFC 6298 §5.5).
    pub fn on_timeout(&mut self) {
        self.backed_off = true;
        self.rto_us = self.rto_us.saturating_mul(2).min(self.params.max_us);
    }

    /// SRTT + max(G, 4·RTTVAR), rounded up to whole µs and clamped to
    /// [min, max] (RFC 6298 §§2.3–2.5); a profile's variance floor joins G.
    fn computed(&self) -> u64 {
        let srtt = self.srtt.unwrap_or(self.params.initial_us << FRAC);
        let floor = self.params.granularity_us.max(self.params.var_floor_us);
        let k = if self.faults.rto_k_two { 2 } else { 4 };
        let var = (floor << FRAC).max(self.rttvar.saturating_mul(k));
        let raw = srtt.saturating_add(var);
        let us = (raw >> FRAC) + u64::from(raw & ((1 << FRAC) - 1) != 0);
        us.clamp(
            self.params.min_us.min(self.params.max_us),
            self.params.max_us,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tcp_spec::rto::{RtoConfig, RtoEstimator as Model, Sample};

    fn params(min_ms: u64, max_ms: u64, g_ms: u64) -> (RtoParams, RtoConfig) {
        (
            RtoParams {
                initial_us: 1_000_000,
                min_us: min_ms * 1000,
                max_us: max_ms * 1000,
                granularity_us: g_ms * 1000,
                var_floor_us: 0,
            },
            RtoConfig {
                initial: 1.0,
                min: min_ms as f64 / 1000.0,
                max: max_ms as f64 / 1000.0,
                granularity: g_ms as f64 / 1000.0,
                var_floor: 0.0,
            },
        )
    }

    /// A small deterministic generator (xorshift) for sample sequences.
    fn xorshift(state: &mut u64) -> u64 {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        *state
    }

    #[test]
    fn agrees_with_the_spec_model_within_one_ms() {
        let mut rng = 0x9e37_79b9_7f4a_7c15u64;
        for (min, max, g) in [(1000, 60_000, 1), (200, 120_000, 4), (1, 60_000, 1)] {
            for _ in 0..200 {
                let (p, c) = params(min, max, g);
                let mut ours = RtoEstimator::new(p);
                let mut model = Model::new(c);
                let n = xorshift(&mut rng) % 64;
                for _ in 0..n {
                    let x = xorshift(&mut rng);
                    if x.is_multiple_of(5) {
                        ours.on_timeout();
                        model.on_timeout();
                    } else {
                        let us = x % 5_000_000 + 1;
                        let rx = x.is_multiple_of(7);
                        if !rx {
                            ours.on_sample(us);
                        }
                        model.on_sample(Sample {
                            rtt: us as f64 / 1e6,
                            retransmitted: rx,
                        });
                    }
                    let diff = (ours.rto_us() as f64 / 1e6 - model.rto()).abs();
                    assert!(
                        diff < 0.001,
                        "rto {} vs model {}",
                        ours.rto_us(),
                        model.rto()
                    );
                    if let Some(s) = model.srtt() {
                        let mine = ours.srtt_us().unwrap_or(0) as f64 / 1e6;
                        assert!((mine - s).abs() < 0.001);
                        assert!((ours.rttvar_us() as f64 / 1e6 - model.rttvar()).abs() < 0.001);
                    }
                }
            }
        }
    }

    #[test]
    fn initial_backoff_and_cap() {
        let (p, _) = params(1000, 60_000, 1);
        let mut e = RtoEstimator::new(p);
        assert_eq!(e.rto_us(), 1_000_000);
        for _ in 0..10 {
            e.on_timeout();
        }
        assert_eq!(e.rto_us(), 60_000_000);
        e.on_sample(100_000);
        assert_eq!(e.rto_us(), 1_000_000); // 0.1 + 0.2 s clamped up to 1 s
        assert_eq!(e.srtt_us(), Some(100_000));
        assert_eq!(e.rttvar_us(), 50_000);
    }
}
