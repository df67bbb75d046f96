//! Learned per-endpoint exclusive time: what an endpoint normally spends on its own work.

use aiops_telemetry_core::EndpointKey;
use serde::{Deserialize, Serialize};

/// Offset added before taking logarithms, so zero self-times (pure pass-through spans) are
/// defined; 1 µs in milliseconds.
const LOG_OFFSET_MS: f64 = 0.001;

/// The standard normal quantile of 0.95.
const Z95: f64 = 1.644_853_6;

/// The normal exclusive (self) time of one endpoint, learned from healthy traces with
/// exponential weighting, plus the inclusive figures RCA quotes when it describes a root cause
/// that the detector did not flag itself.
///
/// Latencies are roughly lognormal, so the 95th percentile is estimated from exponentially
/// weighted moments of the logarithm of self time; the mean is the weighted mean of self time.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SelfTimeBaseline {
    /// The endpoint.
    pub endpoint: EndpointKey,
    /// Weighted mean self time, milliseconds.
    pub mean_ms: f64,
    /// Estimated 95th percentile of self time, milliseconds.
    pub p95_ms: f64,
    /// Weighted mean inclusive duration, milliseconds.
    pub duration_mean_ms: f64,
    /// Weighted share of failing spans.
    pub error_rate: f64,
    /// Successful spans learned from (failing spans only feed `error_rate`).
    pub sample_count: u64,
    /// Spans seen, failing ones included.
    pub span_count: u64,
    /// Weighted mean of `ln(self_ms + 0.001)`.
    pub log_mean: f64,
    /// Weighted variance of `ln(self_ms + 0.001)`.
    pub log_variance: f64,
}

impl SelfTimeBaseline {
    /// A baseline with nothing learned yet.
    pub fn new(endpoint: EndpointKey) -> Self {
        Self {
            endpoint,
            mean_ms: 0.0,
            p95_ms: 0.0,
            duration_mean_ms: 0.0,
            error_rate: 0.0,
            sample_count: 0,
            span_count: 0,
            log_mean: 0.0,
            log_variance: 0.0,
        }
    }

    /// Learns one span: its self time and duration in milliseconds and whether it failed.
    /// `alpha` is the weight of the newest sample once warmed up; until then every sample
    /// weighs the same (a plain average), so early baselines are not dominated by the first
    /// span.
    pub fn observe(&mut self, self_ms: f64, duration_ms: f64, failed: bool, alpha: f64) {
        if !(self_ms.is_finite() && duration_ms.is_finite()) {
            return;
        }
        self.span_count += 1;
        let weight = alpha.max(1.0 / self.span_count as f64);
        self.error_rate += weight * (f64::from(u8::from(failed)) - self.error_rate);
        if failed {
            return;
        }
        self.sample_count += 1;
        let weight = alpha.max(1.0 / self.sample_count as f64);
        let log = (self_ms.max(0.0) + LOG_OFFSET_MS).ln();
        let delta = log - self.log_mean;
        self.log_mean += weight * delta;
        self.log_variance = (1.0 - weight) * (self.log_variance + weight * delta * delta);
        self.mean_ms += weight * (self_ms - self.mean_ms);
        self.duration_mean_ms += weight * (duration_ms - self.duration_mean_ms);
        self.p95_ms = self.quantile_ms(Z95).max(self.mean_ms);
    }

    /// The self time `z` standard deviations above the mean of the learned log-normal shape
    /// (0 for the median, 0.674 for the upper quartile), milliseconds.
    pub fn quantile_ms(&self, z: f64) -> f64 {
        ((self.log_mean + z * self.log_variance.sqrt()).exp() - LOG_OFFSET_MS).max(0.0)
    }

    /// The share of spans whose self time the learned log-normal shape puts past `ms`.
    pub fn share_past(&self, ms: f64) -> f64 {
        let spread = self.log_variance.sqrt();
        let from_mean = (ms.max(0.0) + LOG_OFFSET_MS).ln() - self.log_mean;
        if spread <= 0.0 {
            return if from_mean < 0.0 { 1.0 } else { 0.0 };
        }
        aiops_analyzer::chance::normal_tail(from_mean / spread)
    }

    /// The standard deviation of self time the learned log-normal shape gives, milliseconds.
    pub fn spread_ms(&self) -> f64 {
        self.mean_ms * (self.log_variance.exp() - 1.0).max(0.0).sqrt()
    }

    /// True once `min_samples` successful spans were learned.
    pub fn is_ready(&self, min_samples: u64) -> bool {
        self.sample_count >= min_samples.max(1)
    }
}

/// The weight of the newest sample for a half-life of `half_life` samples.
pub(crate) fn alpha_for_half_life(half_life: f64) -> f64 {
    if half_life.is_finite() && half_life >= 1.0 {
        1.0 - 0.5f64.powf(1.0 / half_life)
    } else {
        0.5
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn baseline() -> SelfTimeBaseline {
        SelfTimeBaseline::new(EndpointKey::new("shop", "/payment"))
    }

    #[test]
    fn constant_self_time_is_learned_exactly() {
        let mut learned = baseline();
        for _ in 0..50 {
            learned.observe(20.0, 30.0, false, 0.01);
        }
        assert!((learned.mean_ms - 20.0).abs() < 1e-9);
        assert!((learned.p95_ms - 20.0).abs() < 1e-6);
        assert!((learned.duration_mean_ms - 30.0).abs() < 1e-9);
        assert!(learned.is_ready(10));
    }

    #[test]
    fn p95_sits_above_the_mean_of_spread_samples() {
        let mut learned = baseline();
        for i in 0..200 {
            learned.observe(if i % 2 == 0 { 10.0 } else { 30.0 }, 40.0, false, 0.01);
        }
        assert!(learned.p95_ms > learned.mean_ms);
        assert!(learned.p95_ms < 60.0);
    }

    #[test]
    fn the_share_past_a_time_and_the_spread_follow_the_learned_shape() {
        let mut learned = baseline();
        for i in 0..200 {
            learned.observe(if i % 2 == 0 { 10.0 } else { 30.0 }, 40.0, false, 0.01);
        }
        // Half the spans sit past the median of the shape, a twentieth past its p95.
        assert!((learned.share_past(learned.quantile_ms(0.0)) - 0.5).abs() < 1e-3);
        assert!((learned.share_past(learned.p95_ms) - 0.05).abs() < 1e-3);
        assert!(learned.share_past(1_000.0) < 1e-6);
        // 10 and 30 ms alike: about 10 ms either side of the mean of 20.
        assert!(
            (8.0..14.0).contains(&learned.spread_ms()),
            "{}",
            learned.spread_ms()
        );
        // A constant time has no spread: nothing is past it, everything below it is.
        let mut constant = baseline();
        constant.observe(20.0, 20.0, false, 0.01);
        assert_eq!(constant.spread_ms(), 0.0);
        assert_eq!(constant.share_past(25.0), 0.0);
        assert_eq!(constant.share_past(15.0), 1.0);
    }

    #[test]
    fn failures_feed_only_the_error_rate() {
        let mut learned = baseline();
        learned.observe(10.0, 10.0, false, 0.01);
        learned.observe(0.5, 0.5, true, 0.01);
        assert_eq!(learned.sample_count, 1);
        assert_eq!(learned.span_count, 2);
        assert_eq!(learned.mean_ms, 10.0);
        assert!((learned.error_rate - 0.5).abs() < 1e-9);
    }

    #[test]
    fn recent_samples_outweigh_old_ones() {
        let mut learned = baseline();
        let alpha = alpha_for_half_life(100.0);
        for _ in 0..1_000 {
            learned.observe(10.0, 10.0, false, alpha);
        }
        for _ in 0..100 {
            learned.observe(20.0, 20.0, false, alpha);
        }
        assert!((learned.mean_ms - 15.0).abs() < 0.1);
    }
}
