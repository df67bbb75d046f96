use aiops_telemetry_core::{EndpointKey, TimeWindow};
use serde::{Deserialize, Serialize};

/// What went wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AnomalyKind {
    /// Requests became much slower than the baseline.
    LatencySpike,
    /// A large share of requests failed.
    ErrorStorm,
    /// Requests took longer than the timeout threshold.
    Timeout,
    /// An endpoint's own (exclusive) time moved significantly and stayed there: a slowdown too
    /// small to triple its latency, found by comparing recent requests with the learned spread.
    LatencyShift,
    /// An endpoint stopped making a call it usually makes on most requests: a defect that
    /// returns early or skips work, visible in the call graph rather than in timing or status.
    CallDrop,
    /// A service logged a message of a template never seen while its baseline was learned, or
    /// logged a known template far more often than it learned to expect. Evidence beside the
    /// other kinds: it explains an incident of its service, and opens none by itself.
    LogPattern,
}

impl AnomalyKind {
    /// The name used in JSON: `latency_spike`, `error_storm`, `timeout`, `latency_shift`,
    /// `call_drop` or `log_pattern`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::LatencySpike => "latency_spike",
            Self::ErrorStorm => "error_storm",
            Self::Timeout => "timeout",
            Self::LatencyShift => "latency_shift",
            Self::CallDrop => "call_drop",
            Self::LogPattern => "log_pattern",
        }
    }

    /// True for the kinds that are about time (spikes, shifts, timeouts), false for failures
    /// (error storms, dropped calls, log patterns).
    pub const fn is_slowness(self) -> bool {
        !matches!(self, Self::ErrorStorm | Self::CallDrop | Self::LogPattern)
    }
}

/// How bad an anomaly is, from `Low` to `Critical` (ordered).
///
/// The built-in detectors grade as follows (ratios are observed over baseline):
///
/// | kind | medium | high | critical |
/// |---|---|---|---|
/// | latency spike | below 5x | 5x to 10x | 10x or more |
/// | error storm | below 50% errors | 50% to 90% | 90% or more |
/// | timeout | below 20% of requests | 20% to 50% | 50% or more |
///
/// `Low` is never produced by them: anything that passes the detectors' thresholds is at least
/// worth a look. It exists for callers' own detectors and for incident severity scales.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Minor.
    Low,
    /// Noticeable by users.
    Medium,
    /// Many users affected.
    High,
    /// The endpoint is effectively down.
    Critical,
}

impl Severity {
    /// The name used in JSON: `low`, `medium`, `high` or `critical`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Low => "low",
            Self::Medium => "medium",
            Self::High => "high",
            Self::Critical => "critical",
        }
    }
}

/// One detected anomaly on one endpoint, with its evidence.
///
/// The meaning of `observed`, `baseline` and `ratio` depends on the kind:
///
/// - latency spike: mean latency in the window and the baseline mean, in milliseconds;
///   `ratio = observed / baseline`.
/// - error storm: share of failing requests in the window and the baseline error rate;
///   `ratio = observed / max(baseline, 0.01)` (a perfect baseline would make it infinite).
/// - timeout: share of requests slower than `timeout_ms`, against a baseline of 0 (healthy
///   requests do not time out); `ratio = observed / 0.01`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Anomaly {
    /// What went wrong.
    pub kind: AnomalyKind,
    /// Where.
    pub endpoint: EndpointKey,
    /// The value seen in the window.
    pub observed: f64,
    /// The value normal traffic has.
    pub baseline: f64,
    /// How far observed is from baseline (see the type's docs).
    pub ratio: f64,
    /// Requests in the window.
    pub sample_count: u64,
    /// The evidence window.
    pub window: TimeWindow,
    /// How bad it is.
    pub severity: Severity,
    /// One line for humans, e.g. `Latency spike: 1250ms (baseline: 180ms, 6.9x slower)`,
    /// `Error storm: 80% errors (baseline: 1%)`, `Timeouts: 6 of 20 requests over 5000ms`.
    pub description: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_and_severities_use_their_json_names() {
        for kind in [
            AnomalyKind::LatencySpike,
            AnomalyKind::ErrorStorm,
            AnomalyKind::Timeout,
            AnomalyKind::LatencyShift,
            AnomalyKind::CallDrop,
            AnomalyKind::LogPattern,
        ] {
            let json = serde_json::to_string(&kind).expect("serializes");
            assert_eq!(json, format!("\"{}\"", kind.as_str()));
        }
        for severity in [
            Severity::Low,
            Severity::Medium,
            Severity::High,
            Severity::Critical,
        ] {
            let json = serde_json::to_string(&severity).expect("serializes");
            assert_eq!(json, format!("\"{}\"", severity.as_str()));
        }
    }

    #[test]
    fn severities_are_ordered() {
        assert!(Severity::Low < Severity::Medium);
        assert!(Severity::Medium < Severity::High);
        assert!(Severity::High < Severity::Critical);
    }
}
