use aiops_telemetry_core::WindowStats;
use serde::{Deserialize, Serialize};

use crate::anomaly::{Anomaly, Severity};
use crate::baseline::Baseline;
use crate::config::Config;

/// The coarse state of an endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HealthStatus {
    /// Working normally.
    Healthy,
    /// Anomalous at medium severity, or drifting towards a threshold (score below 80).
    Degraded,
    /// Anomalous at high or critical severity, or score below 50.
    Critical,
}

/// An endpoint's health in one window.
///
/// `health_score` runs from 0 to 100:
///
/// ```text
/// score = 100 - latency_penalty - error_penalty - timeout_penalty      (clamped to 0..=100)
/// latency_penalty = 50 * min(1, progress)^2
///     progress = max(0, mean - baseline_mean) / max(baseline_mean * (latency_multiplier - 1),
///                                                   min_latency_increase_ms)
/// error_penalty   = min(50, 150 * error_rate)
/// timeout_penalty = min(50, 150 * timeout_rate)
/// ```
///
/// `progress` is how far the window's mean has gone towards the latency-spike threshold; it is
/// squared so that ordinary jitter costs next to nothing, and it is 0 until the baseline is
/// ready. A healthy endpoint with 1% errors scores 98.5, an endpoint at the spike threshold 50.
/// An endpoint with no traffic in the window is healthy with a score of 100.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Health {
    /// Healthy, degraded or critical.
    pub status: HealthStatus,
    /// 0 (down) to 100 (perfect); see the type's docs for the formula.
    pub health_score: f64,
}

impl Health {
    /// Full health: what an endpoint without traffic or trouble has.
    pub const PERFECT: Self = Self {
        status: HealthStatus::Healthy,
        health_score: 100.0,
    };
}

/// Scores an endpoint from its window, its baseline (if ready) and its anomalies.
pub(crate) fn assess_health(
    stats: &WindowStats,
    baseline: Option<&Baseline>,
    anomalies: &[&Anomaly],
    config: &Config,
) -> Health {
    if stats.count == 0 && anomalies.is_empty() {
        return Health::PERFECT;
    }
    let latency_penalty = baseline
        .filter(|baseline| baseline.is_ready(config))
        .map_or(0.0, |baseline| {
            let room = (baseline.mean_ms * (config.latency_multiplier - 1.0))
                .max(config.min_latency_increase_ms);
            let excess = (stats.mean_ms - baseline.mean_ms).max(0.0);
            let progress = if room > 0.0 { excess / room } else { 1.0 };
            50.0 * progress.min(1.0).powi(2)
        });
    let error_penalty = (150.0 * stats.error_rate()).min(50.0);
    let timeout_penalty = (150.0 * stats.timeout_rate()).min(50.0);
    let score = (100.0 - latency_penalty - error_penalty - timeout_penalty).clamp(0.0, 100.0);
    let worst = anomalies.iter().map(|anomaly| anomaly.severity).max();
    let status = match worst {
        Some(severity) if severity >= Severity::High => HealthStatus::Critical,
        _ if score < 50.0 => HealthStatus::Critical,
        Some(_) => HealthStatus::Degraded,
        None if score < 80.0 => HealthStatus::Degraded,
        None => HealthStatus::Healthy,
    };
    Health {
        status,
        health_score: score,
    }
}

#[cfg(test)]
mod tests {
    use aiops_telemetry_core::{EndpointKey, TimeWindow};

    use super::*;
    use crate::anomaly::AnomalyKind;

    fn baseline(mean_ms: f64) -> Baseline {
        Baseline {
            mean_ms,
            p95_ms: mean_ms * 2.0,
            sample_count: 1000,
            weight: 1000.0,
            ..Baseline::new(EndpointKey::new("shop", "/payment"))
        }
    }

    fn stats(count: u64, errors: u64, mean_ms: f64) -> WindowStats {
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

    fn anomaly(severity: Severity) -> Anomaly {
        Anomaly {
            kind: AnomalyKind::LatencySpike,
            endpoint: EndpointKey::new("shop", "/payment"),
            observed: 0.0,
            baseline: 0.0,
            ratio: 0.0,
            sample_count: 0,
            window: TimeWindow::new(0, 1),
            severity,
            description: String::new(),
        }
    }

    #[test]
    fn endpoint_without_traffic_is_perfectly_healthy() {
        let health = assess_health(
            &WindowStats::default(),
            Some(&baseline(100.0)),
            &[],
            &Config::default(),
        );
        assert_eq!(health, Health::PERFECT);
    }

    #[test]
    fn healthy_endpoint_with_jitter_and_one_percent_errors_scores_high() {
        let health = assess_health(
            &stats(100, 1, 110.0),
            Some(&baseline(100.0)),
            &[],
            &Config::default(),
        );
        assert_eq!(health.status, HealthStatus::Healthy);
        assert!(health.health_score >= 98.0, "{}", health.health_score);
    }

    #[test]
    fn endpoint_at_the_spike_threshold_scores_fifty() {
        let health = assess_health(
            &stats(100, 0, 300.0),
            Some(&baseline(100.0)),
            &[],
            &Config::default(),
        );
        assert!((health.health_score - 50.0).abs() < 1e-9);
        assert_eq!(health.status, HealthStatus::Degraded);
    }

    #[test]
    fn high_severity_anomaly_makes_the_endpoint_critical() {
        let high = anomaly(Severity::High);
        let health = assess_health(
            &stats(100, 0, 100.0),
            Some(&baseline(100.0)),
            &[&high],
            &Config::default(),
        );
        assert_eq!(health.status, HealthStatus::Critical);
        let medium = anomaly(Severity::Medium);
        let health = assess_health(
            &stats(100, 0, 100.0),
            Some(&baseline(100.0)),
            &[&medium],
            &Config::default(),
        );
        assert_eq!(health.status, HealthStatus::Degraded);
    }

    #[test]
    fn failing_endpoint_scores_low() {
        let health = assess_health(&stats(100, 100, 100.0), None, &[], &Config::default());
        assert_eq!(health.health_score, 50.0);
        let health = assess_health(
            &WindowStats {
                timeouts: 100,
                ..stats(100, 100, 100.0)
            },
            None,
            &[],
            &Config::default(),
        );
        assert_eq!(health.health_score, 0.0);
        assert_eq!(health.status, HealthStatus::Critical);
    }
}
