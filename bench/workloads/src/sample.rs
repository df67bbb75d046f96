//! Random draws the generator needs: heavy-tailed latencies, Poisson gaps, ids.
//!
//! Everything takes the case's seeded generator, so a case is a function of its seed.

use aiops_telemetry_core::{SpanId, TraceId};
use rand::Rng;
use rand::rngs::StdRng;

/// A standard normal variate (Box-Muller).
pub fn standard_normal(rng: &mut StdRng) -> f64 {
    let u1: f64 = 1.0 - rng.random::<f64>();
    let u2: f64 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// A lognormal variate with the given median and log-space spread.
pub fn lognormal(rng: &mut StdRng, median: f64, sigma: f64) -> f64 {
    median * (sigma * standard_normal(rng)).exp()
}

/// A Pareto variate with scale 1 and tail index `alpha`: 1 or more, heavy-tailed.
pub fn pareto(rng: &mut StdRng, alpha: f64) -> f64 {
    let u: f64 = 1.0 - rng.random::<f64>();
    u.powf(-1.0 / alpha)
}

/// An exponential variate with the given mean.
pub fn exponential(rng: &mut StdRng, mean: f64) -> f64 {
    -(1.0 - rng.random::<f64>()).ln() * mean
}

/// A value drawn uniformly in log space between `low` and `high`.
pub fn log_uniform(rng: &mut StdRng, low: f64, high: f64) -> f64 {
    rng.random_range(low.ln()..=high.ln()).exp()
}

/// One index of `weights`, drawn in proportion to the weights.
pub fn weighted(rng: &mut StdRng, weights: &[f64]) -> usize {
    let total: f64 = weights.iter().sum();
    let mut target = rng.random::<f64>() * total;
    for (index, weight) in weights.iter().enumerate() {
        if target < *weight {
            return index;
        }
        target -= weight;
    }
    weights.len().saturating_sub(1)
}

/// One element of a non-empty slice.
pub fn pick<'a, T>(rng: &mut StdRng, items: &'a [T]) -> &'a T {
    &items[rng.random_range(0..items.len())]
}

/// A trace id drawn from the case's generator (never all zeros).
pub fn trace_id(rng: &mut StdRng) -> TraceId {
    TraceId::from_bytes(nonzero(rng))
}

/// A span id drawn from the case's generator (never all zeros).
pub fn span_id(rng: &mut StdRng) -> SpanId {
    SpanId::from_bytes(nonzero(rng))
}

fn nonzero<const N: usize>(rng: &mut StdRng) -> [u8; N] {
    loop {
        let bytes: [u8; N] = rng.random();
        if bytes.iter().any(|&b| b != 0) {
            return bytes;
        }
    }
}

/// A well-mixed 64-bit hash of `value` (SplitMix64's finaliser), for draws that must not
/// consume the case's generator.
pub fn mix(value: u64) -> u64 {
    let mut z = value.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// `mix(value)` as a fraction in `[0, 1)`.
pub fn unit(value: u64) -> f64 {
    (mix(value) >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;

    #[test]
    fn lognormal_median_is_the_median() {
        let mut rng = StdRng::seed_from_u64(7);
        let mut draws: Vec<f64> = (0..4001).map(|_| lognormal(&mut rng, 10.0, 0.5)).collect();
        draws.sort_by(f64::total_cmp);
        assert!((draws[2000] - 10.0).abs() < 0.6, "median {}", draws[2000]);
    }

    #[test]
    fn pareto_is_at_least_one_and_heavy_tailed() {
        let mut rng = StdRng::seed_from_u64(7);
        let draws: Vec<f64> = (0..10_000).map(|_| pareto(&mut rng, 1.5)).collect();
        assert!(draws.iter().all(|&d| d >= 1.0));
        assert!(draws.iter().any(|&d| d > 50.0), "a tail of large multiples");
    }

    #[test]
    fn weighted_draws_follow_the_weights() {
        let mut rng = StdRng::seed_from_u64(3);
        let mut counts = [0usize; 3];
        for _ in 0..10_000 {
            counts[weighted(&mut rng, &[1.0, 0.0, 3.0])] += 1;
        }
        assert_eq!(counts[1], 0);
        assert!((2_200..2_800).contains(&counts[0]), "{counts:?}");
    }
}
