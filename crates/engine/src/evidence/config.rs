//! [`EvidenceConfig`]: the knobs of the evidence beside timing (logs, versions, attributes).

use serde::{Deserialize, Serialize};

/// How the engine takes logs and changes and judges deployments. Every field has a default.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EvidenceConfig {
    /// Log records queued for the next cycle at most; more are dropped and counted. Default
    /// 100000.
    pub max_queued_logs: usize,
    /// Log templates kept per service; further messages count as the service's `_other`.
    /// Default 200. At least 1.
    pub log_templates_per_service: usize,
    /// How long a service's logs are learned before a template can be new, in seconds.
    /// Default 60.
    pub log_learning_secs: f64,
    /// How long before an incident was detected a deployment of its root cause's service may
    /// be blamed, in seconds: older changes are part of the baseline. Default 900.
    pub deployment_lookback_secs: f64,
    /// For a deployment that took all the traffic at once (no old version left to compare
    /// with), how long before detection it may be, in seconds. Default 90.
    pub deployment_onset_secs: f64,
    /// Requests of the new version needed before a deployment is blamed. Default 10.
    pub deployment_min_requests: u64,
    /// Recent requests per endpoint remembered with their attributes, for insight and
    /// version comparison. Default 512. At least 1.
    pub recent_spans_per_endpoint: usize,
}

impl Default for EvidenceConfig {
    fn default() -> Self {
        Self {
            max_queued_logs: 100_000,
            log_templates_per_service: 200,
            log_learning_secs: 60.0,
            deployment_lookback_secs: 900.0,
            deployment_onset_secs: 90.0,
            deployment_min_requests: 10,
            recent_spans_per_endpoint: 512,
        }
    }
}

impl EvidenceConfig {
    /// The first knob out of range: its name, value and what is accepted.
    pub(crate) fn invalid(&self) -> Option<(&'static str, f64, &'static str)> {
        let seconds = [
            ("evidence.log_learning_secs", self.log_learning_secs),
            (
                "evidence.deployment_lookback_secs",
                self.deployment_lookback_secs,
            ),
            ("evidence.deployment_onset_secs", self.deployment_onset_secs),
        ];
        for (field, value) in seconds {
            if !(value.is_finite() && value >= 0.0) {
                return Some((field, value, "a finite number of seconds of at least 0"));
            }
        }
        let counts = [
            (
                "evidence.log_templates_per_service",
                self.log_templates_per_service,
            ),
            (
                "evidence.recent_spans_per_endpoint",
                self.recent_spans_per_endpoint,
            ),
        ];
        counts
            .into_iter()
            .find(|(_, value)| *value == 0)
            .map(|(field, value)| (field, value as f64, "a whole number of at least 1"))
    }
}
