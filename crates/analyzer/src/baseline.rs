use aiops_telemetry_core::{EndpointKey, WindowStats};
use serde::{Deserialize, Serialize};

use crate::config::Config;

/// What normal looks like for one endpoint, learned from its healthy traffic.
///
/// Each statistic is an exponentially weighted average over the requests learned so far: a
/// request learned one `baseline_half_life_secs` ago weighs half as much as one learned now, so
/// the baseline follows slow drift (a deploy that adds 10 ms, daily load shifts) while a
/// sudden change stands out against it. While an endpoint is anomalous its baseline is frozen,
/// and time spent frozen does not age it: a fault is never learned as normal.
///
/// Serializable so that a server can persist baselines and reload them with
/// [`Analyzer::with_baselines`](crate::Analyzer::with_baselines).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Baseline {
    /// The endpoint this baseline describes.
    pub endpoint: EndpointKey,
    /// Weighted mean latency, in milliseconds.
    pub mean_ms: f64,
    /// Weighted average of the learned slices' 95th percentile latency, in milliseconds. With
    /// very sparse traffic (a request or two per cycle) a slice's p95 is its slowest request,
    /// and this tends towards the mean.
    pub p95_ms: f64,
    /// Weighted share of failing requests, in [0, 1].
    pub error_rate: f64,
    /// How many requests the baseline has learned from, in total.
    pub sample_count: u64,
    /// End of the last slice of traffic this baseline accounted for (learned from, or held
    /// frozen through), in Unix nanoseconds.
    pub updated_at_unix_nanos: u64,
    /// The decayed number of requests behind the averages: each request adds 1 when learned
    /// and halves every half-life. It decides how far a new slice of traffic moves the
    /// baseline. Missing in older snapshots, where it is taken to be `sample_count`.
    #[serde(default = "unknown_weight")]
    pub weight: f64,
    /// How far the error rate of a healthy detection window strays from `error_rate`: a
    /// running mean of the squared difference, over the windows of cycles that found nothing
    /// wrong. Failures that come in clusters (a flaky dependency, retries) stray further than
    /// independent ones would, and an error storm must stand out from that spread too. Zero
    /// until learned (and in older snapshots).
    #[serde(default)]
    pub error_rate_spread: f64,
    /// Weighted share of requests slower than the timeout threshold, in [0, 1]: a slow
    /// dependency with a heavy tail crosses it now and then, and only a rise beyond that is a
    /// timeout anomaly. Zero in older snapshots.
    #[serde(default)]
    pub timeout_rate: f64,
}

/// How many detection windows [`Baseline::error_rate_spread`] roughly averages over.
const SPREAD_WINDOWS: f64 = 50.0;

/// Marks a weight absent from a snapshot; see [`Baseline::effective_weight`].
fn unknown_weight() -> f64 {
    -1.0
}

impl Baseline {
    /// An empty baseline for `endpoint` that has learned nothing yet.
    pub fn new(endpoint: EndpointKey) -> Self {
        Self {
            endpoint,
            mean_ms: 0.0,
            p95_ms: 0.0,
            error_rate: 0.0,
            sample_count: 0,
            updated_at_unix_nanos: 0,
            weight: 0.0,
            error_rate_spread: 0.0,
            timeout_rate: 0.0,
        }
    }

    /// True once the baseline has learned from `min_samples_for_baseline` requests, so that
    /// latency can be judged against it.
    pub fn is_ready(&self, config: &Config) -> bool {
        self.sample_count >= config.min_samples_for_baseline
    }

    /// The highest share of requests past the timeout that what it learned leaves plausible:
    /// one crossing more than it saw. A young baseline that saw none in a few hundred requests
    /// has not shown that its endpoint never crosses, only that it rarely does.
    pub(crate) fn plausible_timeout_rate(&self) -> f64 {
        let learned = self.effective_weight();
        (self.timeout_rate.clamp(0.0, 1.0) * learned + 1.0) / (learned + 1.0)
    }

    fn effective_weight(&self) -> f64 {
        if self.weight.is_finite() && self.weight >= 0.0 {
            self.weight
        } else {
            self.sample_count as f64
        }
    }

    /// Folds a slice of healthy traffic that ended at `now_unix_nanos` into the averages.
    ///
    /// The old weight decays by the time since the last update, but never below
    /// `min_samples_for_baseline` requests' worth (or what it had, if less): after a long
    /// silence one request moves a mature baseline by at most a small step.
    pub(crate) fn learn(&mut self, fresh: &WindowStats, now_unix_nanos: u64, config: &Config) {
        if fresh.count == 0 {
            return;
        }
        let elapsed_secs = now_unix_nanos.saturating_sub(self.updated_at_unix_nanos) as f64 / 1e9;
        let weight = self.effective_weight();
        let decayed = weight * 0.5f64.powf(elapsed_secs / config.baseline_half_life_secs);
        let floor = weight.min(config.min_samples_for_baseline as f64);
        let old = decayed.max(floor);
        let new = fresh.count as f64;
        let blend =
            |old_value: f64, new_value: f64| (old_value * old + new_value * new) / (old + new);
        self.mean_ms = blend(self.mean_ms, fresh.mean_ms);
        self.p95_ms = blend(self.p95_ms, fresh.p95_ms);
        self.error_rate = blend(self.error_rate, fresh.error_rate());
        self.timeout_rate = blend(self.timeout_rate, fresh.timeout_rate());
        self.weight = old + new;
        self.sample_count = self.sample_count.saturating_add(fresh.count);
        self.updated_at_unix_nanos = self.updated_at_unix_nanos.max(now_unix_nanos);
    }

    /// Folds a healthy detection window's error rate into [`error_rate_spread`]
    /// (Self::error_rate_spread): each window moves it by a fiftieth, so it follows the last
    /// few minutes of windows.
    pub(crate) fn learn_spread(&mut self, window: &WindowStats) {
        if window.count == 0 {
            return;
        }
        let deviation = window.error_rate() - self.error_rate;
        self.error_rate_spread += (deviation * deviation - self.error_rate_spread) / SPREAD_WINDOWS;
    }

    /// Holds the baseline through a slice it must not learn from, so that the frozen time
    /// does not count as age when learning resumes.
    pub(crate) fn hold(&mut self, now_unix_nanos: u64) {
        self.updated_at_unix_nanos = self.updated_at_unix_nanos.max(now_unix_nanos);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: u64 = 1_000_000_000;

    fn slice(count: u64, mean_ms: f64, errors: u64) -> WindowStats {
        WindowStats {
            count,
            errors,
            mean_ms,
            p50_ms: mean_ms,
            p95_ms: mean_ms * 2.0,
            p99_ms: mean_ms * 3.0,
            ..WindowStats::default()
        }
    }

    fn endpoint() -> EndpointKey {
        EndpointKey::new("shop", "/payment")
    }

    #[test]
    fn first_slice_sets_the_baseline() {
        let config = Config::default();
        let mut baseline = Baseline::new(endpoint());
        baseline.learn(&slice(4, 100.0, 1), 5 * SECOND, &config);
        assert_eq!(baseline.mean_ms, 100.0);
        assert_eq!(baseline.p95_ms, 200.0);
        assert_eq!(baseline.error_rate, 0.25);
        assert_eq!(baseline.sample_count, 4);
        assert_eq!(baseline.updated_at_unix_nanos, 5 * SECOND);
    }

    #[test]
    fn baseline_is_ready_after_min_samples() {
        let config = Config::default();
        let mut baseline = Baseline::new(endpoint());
        baseline.learn(&slice(9, 100.0, 0), SECOND, &config);
        assert!(!baseline.is_ready(&config));
        baseline.learn(&slice(1, 100.0, 0), 2 * SECOND, &config);
        assert!(baseline.is_ready(&config));
    }

    #[test]
    fn young_baseline_averages_by_request_count() {
        let config = Config::default();
        let mut baseline = Baseline::new(endpoint());
        baseline.learn(&slice(10, 100.0, 0), SECOND, &config);
        baseline.learn(&slice(30, 200.0, 0), 2 * SECOND, &config);
        assert!((baseline.mean_ms - 175.0).abs() < 0.1);
    }

    #[test]
    fn old_traffic_weighs_half_after_one_half_life() {
        let config = Config::default();
        let mut baseline = Baseline::new(endpoint());
        baseline.learn(&slice(1000, 100.0, 0), 0, &config);
        let half_life = (config.baseline_half_life_secs * 1e9) as u64;
        baseline.learn(&slice(500, 200.0, 0), half_life, &config);
        assert!((baseline.mean_ms - 150.0).abs() < 1e-6);
    }

    #[test]
    fn one_request_after_long_silence_moves_a_mature_baseline_little() {
        let config = Config::default();
        let mut baseline = Baseline::new(endpoint());
        baseline.learn(&slice(1000, 100.0, 0), 0, &config);
        baseline.learn(&slice(1, 1100.0, 0), 24 * 3600 * SECOND, &config);
        // One request against the floor of ten requests' worth moves it by a tenth-ish.
        assert!(baseline.mean_ms < 200.0, "{}", baseline.mean_ms);
    }

    #[test]
    fn held_time_does_not_age_the_baseline() {
        let config = Config::default();
        let mut baseline = Baseline::new(endpoint());
        baseline.learn(&slice(1000, 100.0, 0), 0, &config);
        baseline.hold(3600 * SECOND);
        baseline.learn(&slice(10, 200.0, 0), 3605 * SECOND, &config);
        assert!(baseline.mean_ms < 102.0, "{}", baseline.mean_ms);
    }

    #[test]
    fn snapshot_without_weight_uses_the_sample_count() {
        let json = r#"{"endpoint":{"service":"shop","operation":"/payment"},"mean_ms":100.0,
            "p95_ms":200.0,"error_rate":0.0,"sample_count":50,"updated_at_unix_nanos":0}"#;
        let baseline: Baseline = serde_json::from_str(json).expect("old snapshot");
        assert_eq!(baseline.effective_weight(), 50.0);
        let round_trip: Baseline =
            serde_json::from_str(&serde_json::to_string(&baseline).expect("serializes"))
                .expect("deserializes");
        assert_eq!(round_trip, baseline);
    }
}
