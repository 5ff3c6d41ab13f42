//! Network impairments applied by the harness itself (there is no netem):
//! loss, duplication, reordering, extra delay and payload corruption, all
//! driven by a seeded generator so every run is reproducible.
//!
//! The same model serves the in-memory simulations of the property tests and
//! the live TUN boundary (`tcpconform serve --impair …`).

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// A small, fast, seedable generator (SplitMix64). Not for cryptography.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A uniform value in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        p > 0.0 && self.unit() < p
    }

    /// A uniform value in [0, n) (0 when n is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next_u64() % n
        }
    }
}

/// Impairment probabilities and delays.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Impairment {
    /// Probability that a packet is dropped.
    pub loss: f64,
    /// Probability that a packet is held back and overtaken by later ones.
    pub reorder: f64,
    /// Probability that a packet is delivered twice.
    pub dup: f64,
    /// Probability that one octet of the packet is flipped (the receiver's
    /// checksum check must catch it).
    pub corrupt: f64,
    /// One-way base delay.
    pub delay: Duration,
    /// Extra delay given to a reordered packet.
    pub reorder_delay: Duration,
    pub seed: u64,
}

impl Default for Impairment {
    fn default() -> Self {
        Impairment {
            loss: 0.0,
            reorder: 0.0,
            dup: 0.0,
            corrupt: 0.0,
            delay: Duration::from_millis(1),
            reorder_delay: Duration::from_millis(5),
            seed: 0,
        }
    }
}

impl Impairment {
    /// No impairment at all.
    pub fn none() -> Impairment {
        Impairment::default()
    }

    /// What happens to one packet: zero, one or two copies, each with the
    /// delay after which it arrives (possibly corrupted).
    pub fn apply(&self, rng: &mut Rng, packet: &[u8]) -> Vec<(Duration, Vec<u8>)> {
        if rng.chance(self.loss) {
            return Vec::new();
        }
        let copies = if rng.chance(self.dup) { 2 } else { 1 };
        (0..copies)
            .map(|_| {
                let mut p = packet.to_vec();
                if rng.chance(self.corrupt) && !p.is_empty() {
                    let i = rng.below(p.len() as u64) as usize;
                    if let Some(b) = p.get_mut(i) {
                        *b ^= 1 << rng.below(8);
                    }
                }
                let mut delay = self.delay;
                if rng.chance(self.reorder) {
                    delay += self.reorder_delay;
                }
                (delay, p)
            })
            .collect()
    }
}

/// A malformed `--impair` specification.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad impairment `{spec}`: {reason} (expected e.g. loss=0.05,reorder=0.02,dup=0.01,corrupt=0.001,delay_ms=1,seed=7)")]
pub struct ImpairError {
    pub spec: String,
    pub reason: String,
}

impl FromStr for Impairment {
    type Err = ImpairError;

    /// Parses `loss=0.05,reorder=0.02,dup=0.01,corrupt=0.001,delay_ms=1,seed=N`
    /// (any subset, any order).
    fn from_str(spec: &str) -> Result<Self, Self::Err> {
        let err = |reason: String| ImpairError {
            spec: spec.to_string(),
            reason,
        };
        let mut imp = Impairment::default();
        for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (key, value) = part
                .split_once('=')
                .ok_or_else(|| err(format!("`{part}` lacks `=`")))?;
            let prob = || -> Result<f64, ImpairError> {
                let v: f64 = value
                    .parse()
                    .map_err(|_| err(format!("`{key}` wants a number, got `{value}`")))?;
                if (0.0..=1.0).contains(&v) {
                    Ok(v)
                } else {
                    Err(err(format!("`{key}` must be between 0 and 1")))
                }
            };
            let int = || -> Result<u64, ImpairError> {
                value
                    .parse()
                    .map_err(|_| err(format!("`{key}` wants a whole number, got `{value}`")))
            };
            match key {
                "loss" => imp.loss = prob()?,
                "reorder" => imp.reorder = prob()?,
                "dup" => imp.dup = prob()?,
                "corrupt" => imp.corrupt = prob()?,
                "delay_ms" => imp.delay = Duration::from_millis(int()?.min(60_000)),
                "seed" => imp.seed = int()?,
                other => return Err(err(format!("unknown key `{other}`"))),
            }
        }
        Ok(imp)
    }
}

impl fmt::Display for Impairment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "loss={},reorder={},dup={},corrupt={},delay_ms={},seed={}",
            self.loss,
            self.reorder,
            self.dup,
            self.corrupt,
            self.delay.as_millis(),
            self.seed
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_back() {
        let imp: Impairment = "loss=0.05,reorder=0.02,dup=0.01,seed=9".parse().unwrap();
        assert_eq!(imp.loss, 0.05);
        assert_eq!(imp.seed, 9);
        assert_eq!(imp.to_string().parse::<Impairment>().unwrap(), imp);
    }

    #[test]
    fn rejects_bad_specs_with_reason() {
        for (spec, needle) in [
            ("loss=2", "between 0 and 1"),
            ("loss", "lacks `=`"),
            ("jitter=1", "unknown key `jitter`"),
            ("seed=-1", "whole number"),
        ] {
            let e = spec.parse::<Impairment>().unwrap_err().to_string();
            assert!(e.contains(needle), "{spec}: {e}");
        }
    }

    #[test]
    fn rates_are_roughly_honoured_and_reproducible() {
        let imp: Impairment = "loss=0.1,dup=0.1,corrupt=0.1,seed=3".parse().unwrap();
        let run = || {
            let mut rng = Rng::new(imp.seed);
            (0..10_000)
                .map(|_| imp.apply(&mut rng, &[0u8; 40]))
                .collect::<Vec<_>>()
        };
        let a = run();
        assert_eq!(a, run(), "same seed, same outcome");
        let lost = a.iter().filter(|o| o.is_empty()).count();
        let dups = a.iter().filter(|o| o.len() == 2).count();
        let corrupted = a
            .iter()
            .flatten()
            .filter(|(_, p)| p.iter().any(|b| *b != 0))
            .count();
        assert!((800..1200).contains(&lost), "lost {lost}");
        assert!((700..1100).contains(&dups), "dups {dups}");
        assert!((800..1300).contains(&corrupted), "corrupted {corrupted}");
    }

    #[test]
    fn no_impairment_passes_everything_unchanged() {
        let mut rng = Rng::new(1);
        let out = Impairment::none().apply(&mut rng, b"abc");
        assert_eq!(out, vec![(Duration::from_millis(1), b"abc".to_vec())]);
    }
}
