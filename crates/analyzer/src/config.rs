use serde::{Deserialize, Serialize};
use thiserror::Error;

/// The detection knobs.
///
/// The first five keep the names and meaning of the prototype's knobs; the rest are what robust
/// detection needs on real traffic. Every field has a default (see [`Config::default`]), so a
/// configuration file only names what it changes; unknown fields are rejected so that a typo
/// is an error rather than a silently ignored setting.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// A latency spike needs the window's mean latency at least this many times the baseline
    /// mean. Default 3.0. Must be greater than 1.
    pub latency_multiplier: f64,
    /// An error storm needs at least this share of the window's requests to fail. Default 0.2.
    /// Must lie in (0, 1].
    pub error_rate_threshold: f64,
    /// A baseline is ready (latency can be judged against it) once it has learned from this
    /// many requests. Default 10. At least 1.
    pub min_samples_for_baseline: u64,
    /// Length of the detection window that ends at each cycle's `now`, in seconds. Default 30.
    pub analysis_window_secs: f64,
    /// How often a cycle runs, in seconds. Default 5. Must not exceed the window, or evidence
    /// would fall between windows.
    pub analysis_interval_secs: f64,
    /// A latency spike also needs the mean to be at least this many milliseconds above the
    /// baseline mean, so that a 1 ms endpoint going to 4 ms does not page anyone. Default 20.
    pub min_latency_increase_ms: f64,
    /// A latency spike needs at least this many requests in the window. Default 5.
    pub min_latency_samples: u64,
    /// An error storm needs at least this many failing requests in the window, and a timeout
    /// anomaly this many timed-out requests. Default 5.
    pub min_error_count: u64,
    /// A request slower than this many milliseconds counts as a timeout. Default 5000. A
    /// timeout anomaly needs `min_error_count` of them making up at least 5% of the window, on
    /// an endpoint whose baseline p95 times `latency_multiplier` stays within this threshold
    /// (elsewhere crossing it is ordinary variation, judged by the latency detector).
    pub timeout_ms: f64,
    /// Baselines forget old traffic with this half-life, in seconds: a request learned one
    /// half-life ago weighs half as much as one learned now. Default 1800 (30 minutes).
    pub baseline_half_life_secs: f64,
}

impl Default for Config {
    /// The defaults, and why:
    ///
    /// | knob | default | reason |
    /// |---|---|---|
    /// | `latency_multiplier` | 3.0 | the prototype's value; 3x the mean is far outside healthy jitter |
    /// | `error_rate_threshold` | 0.2 | the prototype's value |
    /// | `min_samples_for_baseline` | 10 | the prototype's value |
    /// | `analysis_window_secs` | 30 | holds enough requests at 1 request/s to judge, and clears 30 s after recovery |
    /// | `analysis_interval_secs` | 5 | a fault is reported within seconds of its evidence |
    /// | `min_latency_increase_ms` | 20 | jitter on fast endpoints (scheduler, GC, network) stays below it in windows of five or more requests, while 20 ms more on a call that is made many times per request is felt; in the accuracy benchmark 20 ms caught 22 more of 200 latency faults than 50 ms, with no false incident in 200 healthy runs |
    /// | `min_latency_samples` | 5 | a handful of requests, not one unlucky one; low enough for the demo's one checkout a second |
    /// | `min_error_count` | 5 | one or two failures are a blip, five in half a minute are a pattern |
    /// | `timeout_ms` | 5000 | a common client timeout; anything slower has failed for its caller |
    /// | `baseline_half_life_secs` | 1800 | follows daily traffic shifts, while a fault would have to creep in over hours to be absorbed |
    fn default() -> Self {
        Self {
            latency_multiplier: 3.0,
            error_rate_threshold: 0.2,
            min_samples_for_baseline: 10,
            analysis_window_secs: 30.0,
            analysis_interval_secs: 5.0,
            min_latency_increase_ms: 20.0,
            min_latency_samples: 5,
            min_error_count: 5,
            timeout_ms: 5000.0,
            baseline_half_life_secs: 1800.0,
        }
    }
}

/// Why a [`Config`] was rejected.
#[derive(Clone, Debug, PartialEq, Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A knob's value lies outside what it accepts (this includes NaN and infinities).
    #[error("invalid analyzer config: {field} is {value}, expected {accepted}")]
    OutOfRange {
        /// The knob, by its configuration name.
        field: &'static str,
        /// The rejected value.
        value: f64,
        /// What the knob accepts.
        accepted: &'static str,
    },
    /// The interval is longer than the window, so some requests would never be judged.
    #[error(
        "invalid analyzer config: analysis_interval_secs ({interval_secs}) exceeds analysis_window_secs ({window_secs}), expected an interval no longer than the window"
    )]
    IntervalExceedsWindow {
        /// The configured interval.
        interval_secs: f64,
        /// The configured window.
        window_secs: f64,
    },
}

const POSITIVE: &str = "a finite number greater than 0";

impl Config {
    /// Checks every knob, reporting the first one out of range.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let finite = |field, value: f64, ok: bool, accepted| {
            if value.is_finite() && ok {
                Ok(())
            } else {
                Err(ConfigError::OutOfRange {
                    field,
                    value,
                    accepted,
                })
            }
        };
        let at_least_one = |field, value: u64| {
            if value >= 1 {
                Ok(())
            } else {
                Err(ConfigError::OutOfRange {
                    field,
                    value: value as f64,
                    accepted: "an integer of at least 1",
                })
            }
        };
        finite(
            "latency_multiplier",
            self.latency_multiplier,
            self.latency_multiplier > 1.0,
            "a finite number greater than 1",
        )?;
        finite(
            "error_rate_threshold",
            self.error_rate_threshold,
            self.error_rate_threshold > 0.0 && self.error_rate_threshold <= 1.0,
            "a number in (0, 1]",
        )?;
        at_least_one("min_samples_for_baseline", self.min_samples_for_baseline)?;
        finite(
            "analysis_window_secs",
            self.analysis_window_secs,
            self.analysis_window_secs > 0.0,
            POSITIVE,
        )?;
        finite(
            "analysis_interval_secs",
            self.analysis_interval_secs,
            self.analysis_interval_secs > 0.0,
            POSITIVE,
        )?;
        if self.analysis_interval_secs > self.analysis_window_secs {
            return Err(ConfigError::IntervalExceedsWindow {
                interval_secs: self.analysis_interval_secs,
                window_secs: self.analysis_window_secs,
            });
        }
        finite(
            "min_latency_increase_ms",
            self.min_latency_increase_ms,
            self.min_latency_increase_ms >= 0.0,
            "a finite number of at least 0",
        )?;
        at_least_one("min_latency_samples", self.min_latency_samples)?;
        at_least_one("min_error_count", self.min_error_count)?;
        finite(
            "timeout_ms",
            self.timeout_ms,
            self.timeout_ms > 0.0,
            POSITIVE,
        )?;
        finite(
            "baseline_half_life_secs",
            self.baseline_half_life_secs,
            self.baseline_half_life_secs > 0.0,
            POSITIVE,
        )
    }

    /// The thresholds a fresh slice must stay under to be learned: halfway to each detection
    /// threshold, with no minimum count of slow requests and two failures (or timeouts).
    /// Learning is more cautious than alerting, so the first seconds of a fault, which are
    /// anomalous on their own before the window is, are never learned, even when the slice
    /// holds only a request or two (low traffic, short intervals). Skipping a small healthy
    /// slice by mistake costs a few samples; learning a faulty one would hide the fault. One
    /// failure is not enough to skip a slice: at low traffic most slices that hold a failure
    /// hold only one, and skipping them all would teach an endpoint that fails now and then
    /// that it never fails, so that its usual failures would storm.
    pub(crate) fn learning_guard(&self) -> Self {
        Self {
            latency_multiplier: 1.0 + (self.latency_multiplier - 1.0) / 2.0,
            min_latency_increase_ms: self.min_latency_increase_ms / 2.0,
            error_rate_threshold: self.error_rate_threshold / 2.0,
            min_latency_samples: 1,
            min_error_count: 2,
            ..self.clone()
        }
    }

    /// The detection window length in nanoseconds.
    pub(crate) fn window_nanos(&self) -> u64 {
        secs_to_nanos(self.analysis_window_secs)
    }
}

fn secs_to_nanos(secs: f64) -> u64 {
    // Saturating float-to-int conversion: validated configs are finite and positive.
    (secs * 1e9) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rejected(config: Config) -> String {
        config
            .validate()
            .expect_err("config should be rejected")
            .to_string()
    }

    #[test]
    fn defaults_are_valid() {
        assert_eq!(Config::default().validate(), Ok(()));
    }

    #[test]
    fn multiplier_of_one_or_less_is_rejected() {
        let config = Config {
            latency_multiplier: 1.0,
            ..Config::default()
        };
        assert_eq!(
            rejected(config),
            "invalid analyzer config: latency_multiplier is 1, expected a finite number greater than 1"
        );
    }

    #[test]
    fn nan_and_infinity_are_rejected() {
        let nan = Config {
            latency_multiplier: f64::NAN,
            ..Config::default()
        };
        assert_eq!(
            rejected(nan),
            "invalid analyzer config: latency_multiplier is NaN, expected a finite number greater than 1"
        );
        let infinite = Config {
            timeout_ms: f64::INFINITY,
            ..Config::default()
        };
        assert_eq!(
            rejected(infinite),
            "invalid analyzer config: timeout_ms is inf, expected a finite number greater than 0"
        );
    }

    #[test]
    fn error_threshold_outside_unit_interval_is_rejected() {
        for value in [0.0, -0.1, 1.5] {
            let config = Config {
                error_rate_threshold: value,
                ..Config::default()
            };
            assert_eq!(
                rejected(config),
                format!(
                    "invalid analyzer config: error_rate_threshold is {value}, expected a number in (0, 1]"
                )
            );
        }
        let full = Config {
            error_rate_threshold: 1.0,
            ..Config::default()
        };
        assert_eq!(full.validate(), Ok(()));
    }

    #[test]
    fn zero_window_is_rejected() {
        let config = Config {
            analysis_window_secs: 0.0,
            ..Config::default()
        };
        assert_eq!(
            rejected(config),
            "invalid analyzer config: analysis_window_secs is 0, expected a finite number greater than 0"
        );
    }

    #[test]
    fn interval_longer_than_window_is_rejected() {
        let config = Config {
            analysis_interval_secs: 60.0,
            ..Config::default()
        };
        assert_eq!(
            rejected(config),
            "invalid analyzer config: analysis_interval_secs (60) exceeds analysis_window_secs (30), expected an interval no longer than the window"
        );
    }

    #[test]
    fn negative_floor_is_rejected_but_zero_is_allowed() {
        let negative = Config {
            min_latency_increase_ms: -1.0,
            ..Config::default()
        };
        assert_eq!(
            rejected(negative),
            "invalid analyzer config: min_latency_increase_ms is -1, expected a finite number of at least 0"
        );
        let zero = Config {
            min_latency_increase_ms: 0.0,
            ..Config::default()
        };
        assert_eq!(zero.validate(), Ok(()));
    }

    #[test]
    fn zero_counts_are_rejected() {
        let config = Config {
            min_error_count: 0,
            ..Config::default()
        };
        assert_eq!(
            rejected(config),
            "invalid analyzer config: min_error_count is 0, expected an integer of at least 1"
        );
        let config = Config {
            min_samples_for_baseline: 0,
            ..Config::default()
        };
        assert!(rejected(config).contains("min_samples_for_baseline"));
        let config = Config {
            min_latency_samples: 0,
            ..Config::default()
        };
        assert!(rejected(config).contains("min_latency_samples"));
    }

    #[test]
    fn non_positive_half_life_and_interval_are_rejected() {
        let config = Config {
            baseline_half_life_secs: -5.0,
            ..Config::default()
        };
        assert_eq!(
            rejected(config),
            "invalid analyzer config: baseline_half_life_secs is -5, expected a finite number greater than 0"
        );
        let config = Config {
            analysis_interval_secs: 0.0,
            ..Config::default()
        };
        assert!(rejected(config).contains("analysis_interval_secs is 0"));
    }

    #[test]
    fn partial_json_fills_in_defaults_and_typos_are_rejected() {
        let config: Config =
            serde_json::from_str(r#"{"latency_multiplier": 4.0}"#).expect("partial config");
        assert_eq!(config.latency_multiplier, 4.0);
        assert_eq!(config.min_samples_for_baseline, 10);
        let typo = serde_json::from_str::<Config>(r#"{"latency_multipler": 4.0}"#);
        assert!(typo.is_err());
    }
}
