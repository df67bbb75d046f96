//! [`EngineConfig`]: the engine's knobs, the analyzer's and RCA's included.

use aiops_analyzer::{Config, ConfigError};
use serde::{Deserialize, Serialize};

use crate::explain::RcaConfig;
use crate::incident::{DEFAULT_AUTO_RESOLVE_CYCLES, DEFAULT_MAX_RESOLVED_INCIDENTS};
use crate::trace_buffer::DEFAULT_TRACES_PER_ENDPOINT;

/// Everything an [`Engine`](super::Engine) needs to know. Every field has a documented
/// default, so a configuration file only names what it changes; unknown fields are rejected.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EngineConfig {
    /// Detection knobs (window, interval, thresholds).
    pub analyzer: Config,
    /// Root cause analysis knobs; `max_traces_per_anomaly` bounds how many traces each
    /// anomalous endpoint contributes per cycle. Its `timeout_ms` and
    /// `min_samples_for_baseline` are taken from `analyzer` when the engine is built, so the
    /// two stages never disagree on what a timeout or a ready baseline is.
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
    /// off.
    pub learn_traces_per_endpoint: usize,
    /// Cap on the traces learned from per cycle, over all endpoints. Default 20: a fixed
    /// budget, so a cycle costs the same at any traffic. Each learned trace teaches every
    /// healthy endpoint it touches.
    pub max_learn_traces: usize,
    /// Resolved incidents kept in memory (and in snapshots). Default 1000.
    pub max_resolved_incidents: usize,
    /// Traces [`Engine::topology`](super::Engine::topology) reads at most. Default 1000.
    pub topology_max_traces: usize,
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
            max_resolved_incidents: DEFAULT_MAX_RESOLVED_INCIDENTS,
            topology_max_traces: 1000,
        }
    }
}

impl EngineConfig {
    /// Checks the analyzer knobs and the engine's own, reporting the first out of range.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.analyzer.validate()?;
        let bucket = self.live_bucket_secs;
        if !(bucket.is_finite() && bucket > 0.0 && bucket <= self.analyzer.analysis_window_secs) {
            return Err(ConfigError::OutOfRange {
                field: "live_bucket_secs",
                value: bucket,
                accepted: "a finite number greater than 0 and at most analysis_window_secs",
            });
        }
        for (field, value) in [
            ("trace_buffer_max_spans", self.trace_buffer_max_spans),
            ("traces_per_endpoint", self.traces_per_endpoint),
        ] {
            if value == 0 {
                return Err(ConfigError::OutOfRange {
                    field,
                    value: 0.0,
                    accepted: "an integer of at least 1",
                });
            }
        }
        Ok(())
    }

    pub(super) fn bucket_nanos(&self) -> u64 {
        secs_to_nanos(self.live_bucket_secs).max(1)
    }

    pub(super) fn window_nanos(&self) -> u64 {
        secs_to_nanos(self.analyzer.analysis_window_secs)
    }

    pub(super) fn interval_nanos(&self) -> u64 {
        secs_to_nanos(self.analyzer.analysis_interval_secs)
    }

    /// How long live buckets are kept: one window, plus the interval and a bucket of slack
    /// for cycles that run late.
    pub(super) fn retention_nanos(&self) -> u64 {
        self.window_nanos()
            .saturating_add(self.interval_nanos())
            .saturating_add(self.bucket_nanos())
    }
}

fn secs_to_nanos(secs: f64) -> u64 {
    // Saturating float-to-int conversion; validated configs are finite and positive.
    (secs * 1e9) as u64
}
