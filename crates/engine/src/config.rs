//! [`EngineConfig`]: the engine's knobs, the analyzer's and RCA's included.

use aiops_analyzer::{Config, ConfigError};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::evidence::EvidenceConfig;
use crate::incident::{DEFAULT_AUTO_RESOLVE_CYCLES, DEFAULT_MAX_RESOLVED_INCIDENTS};
use crate::trace_buffer::DEFAULT_TRACES_PER_ENDPOINT;
use aiops_rca::RcaConfig;

/// Everything an [`Engine`](crate::Engine) needs to know. Every field has a documented
/// default, so a configuration file only names what it changes; unknown fields are rejected.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EngineConfig {
    /// Detection knobs (window, interval, thresholds).
    pub analyzer: Config,
    /// Root cause analysis knobs; `max_traces_per_anomaly` bounds how many traces each
    /// anomalous endpoint contributes per cycle. What a timeout is and when a baseline is
    /// ready are `analyzer`'s knobs (`timeout_ms`, `min_samples_for_baseline`), which root
    /// cause analysis shares, so the two stages never disagree.
    pub rca: RcaConfig,
    /// Consecutive healthy cycles after which an incident resolves itself; 0 never. Default 3.
    pub auto_resolve_cycles: u32,
    /// Width of the live statistics buckets, in seconds. Default 1. Must be positive and no
    /// longer than the analysis window.
    pub live_bucket_secs: f64,
    /// Spans the trace buffer holds; the oldest sixteenth is evicted at a time. Default 100000
    /// (a few tens of MB). At least 1.
    pub trace_buffer_max_spans: usize,
    /// Recent traces remembered per endpoint for sampling. Default 256. At least 1.
    pub traces_per_endpoint: usize,
    /// Most traces sampled per healthy endpoint per cycle to learn normal self times; an
    /// endpoint whose self-time baseline is not trusted yet gets this many, the others share
    /// what is left of `max_learn_traces` evenly. Default 10. Zero turns self-time learning
    /// off. An endpoint whose own time is rising past its usual p95 also gets this many more
    /// of its traces per cycle, for its shift test only.
    pub learn_traces_per_endpoint: usize,
    /// Cap on the traces learned from per cycle, over all endpoints. Default 20: a fixed
    /// budget, so a cycle costs the same at any traffic. Each learned trace teaches every
    /// healthy endpoint it touches. The endpoints whose own time is rising share as many
    /// more, for their shift tests.
    pub max_learn_traces: usize,
    /// Traces whose calls are counted per cycle, about (the call census). Default 20, as many
    /// as are learned from. They are chosen by a hash of their trace id, whatever they contain,
    /// so that each endpoint's calls per request are seen as it made them; at lower traffic
    /// every trace is counted. The usual calls per request and their drops (`call_drop`) are
    /// judged on them. An endpoint on a rarely taken path gets its share of them; once its
    /// calls start to drop (2.5 deviations), all of its settled requests are counted (up to 64
    /// a cycle) until they are back, so that its drop is judged on its own traffic. Zero turns
    /// call-pattern detection off.
    pub call_census_traces: usize,
    /// Resolved incidents kept in memory (and in snapshots). Default 1000.
    pub max_resolved_incidents: usize,
    /// Traces [`EngineReader::topology`](crate::EngineReader::topology) reads at most.
    /// Default 1000.
    pub topology_max_traces: usize,
    /// How long after a request starts its trace is taken as complete for learning and shift
    /// detection, in seconds (at least one analysis interval is waited in any case). SDKs hold
    /// spans for a few seconds before exporting them, so a trace read too early misses its
    /// deepest spans and makes their callers look slow. Default 10.
    pub trace_settle_secs: f64,
    /// Whether the traces read every cycle (for learning) are also tested: for sustained
    /// shifts of an endpoint's own (exclusive) time against its learned self-time baseline
    /// (anomaly kind `latency_shift`), and for calls an endpoint usually makes and stopped
    /// making (`call_drop`). Default true.
    pub trace_detection: bool,
    /// Recent spans of an endpoint a shift needs at least, within two analysis windows.
    /// Default 20.
    pub shift_min_samples: usize,
    /// How far the median own time must rise above the baseline mean, in milliseconds (and at
    /// least 1.3 times it). Default 10.
    pub shift_min_increase_ms: f64,
    /// How long after an incident resolved a return of its cause reopens it instead of opening
    /// a new one, in seconds. Default 0: never.
    pub reopen_window_secs: f64,
    /// How long an incident's cause must have been gone before it resolves itself, in seconds,
    /// on top of `auto_resolve_cycles`: a fault that comes and goes within the hold stays one
    /// incident. Default 0.
    pub resolve_hold_secs: f64,
    /// Logs, changes and deployments: queues, log templates, the deployment rule.
    pub evidence: EvidenceConfig,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            analyzer: Config::default(),
            rca: RcaConfig::default(),
            auto_resolve_cycles: DEFAULT_AUTO_RESOLVE_CYCLES,
            live_bucket_secs: 1.0,
            trace_buffer_max_spans: 100_000,
            traces_per_endpoint: DEFAULT_TRACES_PER_ENDPOINT,
            learn_traces_per_endpoint: 10,
            max_learn_traces: 20,
            call_census_traces: 20,
            max_resolved_incidents: DEFAULT_MAX_RESOLVED_INCIDENTS,
            topology_max_traces: 1000,
            trace_settle_secs: 10.0,
            trace_detection: true,
            shift_min_samples: 20,
            shift_min_increase_ms: 5.0,
            reopen_window_secs: 0.0,
            resolve_hold_secs: 0.0,
            evidence: EvidenceConfig::default(),
        }
    }
}

impl EngineConfig {
    /// Checks the analyzer knobs and the engine's own, reporting the first out of range.
    pub fn validate(&self) -> Result<(), EngineConfigError> {
        self.analyzer.validate()?;
        if let Some((field, value, accepted)) = self.evidence.invalid() {
            return Err(EngineConfigError::OutOfRange {
                field,
                value,
                accepted,
            });
        }
        let bucket = self.live_bucket_secs;
        if !(bucket.is_finite() && bucket > 0.0 && bucket <= self.analyzer.analysis_window_secs) {
            return Err(EngineConfigError::OutOfRange {
                field: "live_bucket_secs",
                value: bucket,
                accepted: "a finite number greater than 0 and at most analysis_window_secs",
            });
        }
        let settle = self.trace_settle_secs;
        if !(settle.is_finite() && settle >= 0.0) {
            return Err(EngineConfigError::OutOfRange {
                field: "trace_settle_secs",
                value: settle,
                accepted: "a finite number of seconds of at least 0",
            });
        }
        let increase = self.shift_min_increase_ms;
        if !(increase.is_finite() && increase >= 0.0) {
            return Err(EngineConfigError::OutOfRange {
                field: "shift_min_increase_ms",
                value: increase,
                accepted: "a finite number of at least 0",
            });
        }
        for (field, value) in [
            ("reopen_window_secs", self.reopen_window_secs),
            ("resolve_hold_secs", self.resolve_hold_secs),
        ] {
            if !(value.is_finite() && (0.0..=7.0 * 86_400.0).contains(&value)) {
                return Err(EngineConfigError::OutOfRange {
                    field,
                    value,
                    accepted: "0 to 7 days",
                });
            }
        }
        for (field, value) in [
            ("trace_buffer_max_spans", self.trace_buffer_max_spans),
            ("traces_per_endpoint", self.traces_per_endpoint),
        ] {
            if value == 0 {
                return Err(EngineConfigError::OutOfRange {
                    field,
                    value: 0.0,
                    accepted: "an integer of at least 1",
                });
            }
        }
        Ok(())
    }

    /// How incidents damp flapping faults.
    pub(crate) fn damping(&self) -> crate::incident::Damping {
        let nanos = |secs: f64| (secs * 1e9) as u64;
        crate::incident::Damping {
            reopen_window_nanos: nanos(self.reopen_window_secs),
            resolve_hold_nanos: nanos(self.resolve_hold_secs),
        }
    }

    pub(crate) fn shift_rule(&self) -> crate::shift::ShiftRule {
        crate::shift::ShiftRule {
            window_nanos: 2 * self.window_nanos(),
            min_samples: self.shift_min_samples,
            min_increase_ms: self.shift_min_increase_ms,
            min_samples_for_baseline: self.analyzer.min_samples_for_baseline,
            latency_multiplier: self.analyzer.latency_multiplier,
            min_latency_increase_ms: self.analyzer.min_latency_increase_ms,
        }
    }

    /// How long learning waits for a trace to be complete: the settle time, and at least one
    /// interval.
    pub(crate) fn settle_nanos(&self) -> u64 {
        secs_to_nanos(self.trace_settle_secs).max(self.interval_nanos())
    }

    pub(crate) fn call_rule(&self) -> crate::calls::CallRule {
        crate::calls::CallRule {
            window_nanos: 2 * self.window_nanos(),
            min_samples: self.shift_min_samples,
            persist_nanos: self.interval_nanos(),
        }
    }

    pub(crate) fn bucket_nanos(&self) -> u64 {
        secs_to_nanos(self.live_bucket_secs).max(1)
    }

    pub(crate) fn window_nanos(&self) -> u64 {
        secs_to_nanos(self.analyzer.analysis_window_secs)
    }

    pub(crate) fn interval_nanos(&self) -> u64 {
        secs_to_nanos(self.analyzer.analysis_interval_secs)
    }

    /// How long live buckets are kept: one window, plus the interval and a bucket of slack
    /// for cycles that run late.
    pub(crate) fn retention_nanos(&self) -> u64 {
        self.window_nanos()
            .saturating_add(self.interval_nanos())
            .saturating_add(self.bucket_nanos())
    }
}

/// Why an [`EngineConfig`] was rejected.
#[derive(Clone, Debug, PartialEq, Error)]
#[non_exhaustive]
pub enum EngineConfigError {
    /// A detection knob is out of range.
    #[error(transparent)]
    Analyzer(#[from] ConfigError),
    /// One of the engine's own knobs is out of range.
    #[error("invalid engine config: {field} is {value}, expected {accepted}")]
    OutOfRange {
        /// The knob, by its configuration name.
        field: &'static str,
        /// The rejected value.
        value: f64,
        /// What the knob accepts.
        accepted: &'static str,
    },
}

fn secs_to_nanos(secs: f64) -> u64 {
    // Saturating float-to-int conversion; validated configs are finite and positive.
    (secs * 1e9) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_the_knob_and_what_it_accepts() {
        let config = EngineConfig {
            traces_per_endpoint: 0,
            ..EngineConfig::default()
        };
        assert_eq!(
            config.validate().expect_err("rejected").to_string(),
            "invalid engine config: traces_per_endpoint is 0, expected an integer of at least 1"
        );
        let config = EngineConfig {
            live_bucket_secs: 60.0,
            ..EngineConfig::default()
        };
        assert_eq!(
            config.validate().expect_err("rejected").to_string(),
            "invalid engine config: live_bucket_secs is 60, expected a finite number greater than \
             0 and at most analysis_window_secs"
        );
    }

    #[test]
    fn analyzer_errors_pass_through_unchanged() {
        let mut config = EngineConfig::default();
        config.analyzer.latency_multiplier = f64::NAN;
        let error = config.validate().expect_err("rejected");
        assert!(matches!(error, EngineConfigError::Analyzer(_)));
        assert!(
            error
                .to_string()
                .starts_with("invalid analyzer config: latency_multiplier")
        );
    }
}
