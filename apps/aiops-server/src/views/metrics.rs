//! `GET /aiops/metrics`: per-endpoint figures, baselines and health, and the span pipeline's
//! counters.

use std::collections::BTreeMap;

use aiops_analyzer::{Config as AnalyzerConfig, EndpointAssessment, HealthStatus};
use serde::Serialize;
use utoipa::ToSchema;

use super::format::{EndpointNaming, rounded};
use crate::pipeline::stats::PipelineStats;

/// Endpoint health.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct Health {
    /// `healthy`, `degraded` or `critical`.
    #[schema(value_type = String, example = "healthy")]
    pub status: HealthStatus,
    /// 0 (down) to 100 (healthy).
    pub health_score: Option<f64>,
}

/// One endpoint's live figures and learned baseline.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct EndpointMetrics {
    /// The service owning the endpoint.
    pub service: String,
    /// Mean latency in the detection window; null when the window holds no request.
    pub avg_latency_ms: Option<f64>,
    /// Learned mean latency; null until the baseline has enough samples.
    pub baseline_latency_ms: Option<f64>,
    /// 95th percentile latency in the window.
    pub p95_latency_ms: Option<f64>,
    /// Learned 95th percentile latency.
    pub baseline_p95_latency_ms: Option<f64>,
    /// Share of failing requests in the window.
    pub error_rate: Option<f64>,
    /// Learned share of failing requests.
    pub baseline_error_rate: Option<f64>,
    /// Requests in the window.
    pub request_count: u64,
    /// Requests slower than the timeout threshold.
    pub timeout_count: u64,
    /// Requests the baseline learned from.
    pub baseline_samples: u64,
    /// Health.
    pub health: Health,
}

impl EndpointMetrics {
    /// The view of one endpoint's assessment; baselines show once `config` deems them ready.
    pub fn new(assessment: &EndpointAssessment, config: &AnalyzerConfig) -> Self {
        let ready = assessment
            .baseline
            .as_ref()
            .filter(|baseline| baseline.is_ready(config));
        let stats = &assessment.stats;
        // An endpoint without requests in the window has no latency or error rate: null, not 0.
        let seen = |value: f64| (stats.count > 0).then(|| rounded(value)).flatten();
        Self {
            service: assessment.endpoint.service.to_string(),
            avg_latency_ms: seen(stats.mean_ms),
            baseline_latency_ms: ready.and_then(|baseline| rounded(baseline.mean_ms)),
            p95_latency_ms: seen(stats.p95_ms),
            baseline_p95_latency_ms: ready.and_then(|baseline| rounded(baseline.p95_ms)),
            error_rate: seen(stats.error_rate()),
            baseline_error_rate: ready.and_then(|baseline| rounded(baseline.error_rate)),
            request_count: stats.count,
            timeout_count: stats.timeouts,
            baseline_samples: assessment
                .baseline
                .as_ref()
                .map_or(0, |baseline| baseline.sample_count),
            health: Health {
                status: assessment.health.status,
                health_score: rounded(assessment.health.health_score),
            },
        }
    }

    /// The `metrics` map of `GET /aiops/metrics` and `POST /aiops/analyze`, keyed by endpoint
    /// name.
    pub fn by_endpoint(
        naming: &EndpointNaming,
        endpoints: &[EndpointAssessment],
        config: &AnalyzerConfig,
    ) -> BTreeMap<String, Self> {
        endpoints
            .iter()
            .map(|assessment| {
                (
                    naming.endpoint(&assessment.endpoint),
                    Self::new(assessment, config),
                )
            })
            .collect()
    }
}

/// The span pipeline's counters.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, ToSchema)]
pub struct SpanCounts {
    /// Spans accepted by the engine.
    pub ingested: u64,
    /// Spans the storage queue could not take (still analysed live).
    pub dropped: u64,
    /// Spans written to storage.
    pub written: u64,
    /// Spans waiting for the storage writer.
    pub queued: u64,
}

impl From<PipelineStats> for SpanCounts {
    fn from(stats: PipelineStats) -> Self {
        Self {
            ingested: stats.ingested,
            dropped: stats.dropped,
            written: stats.written,
            queued: stats.queued,
        }
    }
}

/// The analysis actor's progress.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct AnalysisProgress {
    /// ISO 8601 time of the latest cycle, to the millisecond; null before the first.
    pub analyzed_at: Option<String>,
    /// The detection window, in seconds.
    pub window_secs: f64,
    /// Cycles run since start.
    pub cycles: u64,
    /// Of those, cycles run ahead of the interval because new anomaly evidence showed.
    pub early_cycles: u64,
    /// Cycles whose state could not be saved.
    pub persist_failures: u64,
}

/// `GET /aiops/metrics`.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct MetricsReport {
    /// Per endpoint, keyed by endpoint (`/payment` for the shop, `service operation`
    /// otherwise); empty before the first cycle.
    pub metrics: BTreeMap<String, EndpointMetrics>,
    /// The span pipeline's counters.
    pub spans: SpanCounts,
    /// The analysis actor's progress.
    pub analysis: AnalysisProgress,
}

#[cfg(test)]
mod tests {
    use aiops_analyzer::Health as Assessed;
    use aiops_telemetry_core::{EndpointKey, WindowStats};

    use super::*;

    #[test]
    fn an_endpoint_without_requests_has_null_figures_not_zeros() {
        let assessment = EndpointAssessment {
            endpoint: EndpointKey::new("shop", "/payment"),
            stats: WindowStats::default(),
            baseline: None,
            health: Assessed {
                status: HealthStatus::Healthy,
                health_score: 100.0,
            },
        };
        let view = EndpointMetrics::new(&assessment, &AnalyzerConfig::default());
        assert_eq!(
            (view.avg_latency_ms, view.p95_latency_ms, view.error_rate),
            (None, None, None)
        );
        assert_eq!(view.request_count, 0);
    }
}
