//! What a cycle reports and what the engine persists.

use aiops_analyzer::{Anomaly, Baseline, EndpointAssessment};
use aiops_telemetry_core::{Change, EndpointKey, TimeWindow};
use serde::{Deserialize, Serialize};

use crate::evidence::ServiceVersions;
use crate::incident::{IncidentBook, IncidentChange};
use crate::watermarks::CauseWatermark;
use aiops_rca::SelfTimeBaseline;

/// What one [`Engine::run_cycle`](crate::Engine::run_cycle) saw and did. Deliberately free
/// of durations: the engine never reads a clock.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CycleReport {
    /// The cycle's `now`, in Unix nanoseconds.
    pub at_unix_nanos: u64,
    /// The detection window.
    pub window: TimeWindow,
    /// Every anomaly detected, most severe first.
    pub anomalies: Vec<Anomaly>,
    /// Incidents opened, updated and resolved by the cycle, in that order of events.
    pub changes: Vec<IncidentChange>,
    /// Every endpoint's statistics, baseline and health.
    pub endpoints: Vec<EndpointAssessment>,
    /// Traces of anomalous endpoints handed to root cause analysis.
    pub sampled_traces: usize,
    /// Traces of healthy endpoints learned from.
    pub learned_traces: usize,
}

impl CycleReport {
    /// Ids of the incidents the cycle opened.
    pub fn opened(&self) -> Vec<&str> {
        self.ids(|change| matches!(change, IncidentChange::Opened { .. }))
    }

    /// Ids of the incidents the cycle updated.
    pub fn updated(&self) -> Vec<&str> {
        self.ids(|change| matches!(change, IncidentChange::Updated { .. }))
    }

    /// Ids of the incidents the cycle resolved.
    pub fn resolved(&self) -> Vec<&str> {
        self.ids(|change| matches!(change, IncidentChange::Resolved { .. }))
    }

    fn ids(&self, keep: impl Fn(&IncidentChange) -> bool) -> Vec<&str> {
        self.changes
            .iter()
            .filter(|change| keep(change))
            .map(IncidentChange::id)
            .collect()
    }
}

/// The learned state of an [`Engine`](crate::Engine): what a server persists every cycle and
/// reloads at start.
///
/// Live windows and buffered traces are not part of it: they refill within one analysis
/// window of traffic.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EngineSnapshot {
    /// Latency and error-rate baselines per endpoint.
    pub baselines: Vec<Baseline>,
    /// Normal self (exclusive) time per endpoint, learned by root cause analysis.
    pub self_time_baselines: Vec<SelfTimeBaseline>,
    /// Incidents and their sequence counter.
    pub incidents: IncidentBook,
    /// Per-endpoint resolution watermarks: evidence that started earlier does not count.
    #[serde(default)]
    pub watermarks: Vec<EndpointWatermark>,
    /// Per-cause resolution watermarks: a draft of that cause ignores earlier evidence.
    #[serde(default)]
    pub cause_watermarks: Vec<CauseWatermark>,
    /// Traces that started before this instant were already learned from.
    #[serde(default)]
    pub learned_until_unix_nanos: Option<u64>,
    /// The versions each service was seen running: a new version seen after a restart is a
    /// deployment still.
    #[serde(default)]
    pub versions: Vec<ServiceVersions>,
    /// The changes remembered (reported and observed), oldest first: a deployment just before
    /// a restart is still weighed and listed on incidents after it.
    #[serde(default)]
    pub changes: Vec<Change>,
}

/// Evidence on `endpoint` that started before `not_before_unix_nanos` no longer counts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointWatermark {
    /// The endpoint.
    pub endpoint: EndpointKey,
    /// The resolution time, in Unix nanoseconds.
    pub not_before_unix_nanos: u64,
}
