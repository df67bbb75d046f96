//! One endpoint over time, from the database: `GET /aiops/endpoints/history` (minute by
//! minute) and `GET /aiops/endpoints/window` (one window, exactly, with example traces).

use aiops_analyzer::{Baseline, Config as AnalyzerConfig};
use aiops_storage_sqlite::MinuteRollup;
use aiops_telemetry_core::{EndpointKey, TimeWindow, TraceId, WindowStats};
use serde::Serialize;
use utoipa::ToSchema;

use super::format::{EndpointNaming, Window, iso, iso_millis, rounded};

/// Which endpoint an answer is about: its names, and its name as other answers give it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, ToSchema)]
pub struct EndpointName {
    /// The service.
    pub service: String,
    /// The operation, e.g. `/payment` or `POST /charge`.
    pub operation: String,
    /// The endpoint as other answers name it: `/payment` for the shop, `service operation`
    /// otherwise.
    pub endpoint: String,
}

impl EndpointName {
    /// The names of `endpoint`.
    pub fn new(naming: &EndpointNaming, endpoint: &EndpointKey) -> Self {
        Self {
            service: endpoint.service.to_string(),
            operation: endpoint.operation.to_string(),
            endpoint: naming.endpoint(endpoint),
        }
    }
}

/// One minute of an endpoint's requests, by start time.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct MinutePoint {
    /// ISO 8601 start of the minute.
    #[schema(example = "2026-01-20T10:30:00Z")]
    pub minute: String,
    /// Requests that started in the minute.
    pub request_count: u64,
    /// Of those, how many failed.
    pub error_count: u64,
    /// Share of failing requests.
    pub error_rate: Option<f64>,
    /// Mean latency (exact).
    pub avg_latency_ms: Option<f64>,
    /// 95th percentile latency, estimated from a histogram: never below the exact value, at
    /// most a quarter above it.
    pub p95_latency_ms: Option<f64>,
    /// The slowest request (exact).
    pub max_latency_ms: Option<f64>,
}

impl From<&MinuteRollup> for MinutePoint {
    fn from(rollup: &MinuteRollup) -> Self {
        Self {
            minute: iso(rollup.minute_start_unix_nanos),
            request_count: rollup.count,
            error_count: rollup.errors,
            error_rate: rounded(rollup.error_rate()),
            avg_latency_ms: rounded(rollup.mean_ms()),
            p95_latency_ms: rounded(rollup.latency_quantile_ms(0.95)),
            max_latency_ms: rounded(rollup.latency_max_nanos as f64 / 1e6),
        }
    }
}

/// What the engine has learned as normal for an endpoint.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct BaselineFigures {
    /// Learned mean latency; null until the baseline has learned from enough requests.
    pub avg_latency_ms: Option<f64>,
    /// Learned 95th percentile latency; null until then.
    pub p95_latency_ms: Option<f64>,
    /// Learned share of failing requests; null until then.
    pub error_rate: Option<f64>,
    /// Requests the baseline learned from.
    pub samples: u64,
    /// ISO 8601 end of the last traffic the baseline accounted for, to the millisecond.
    pub updated_at: String,
}

impl BaselineFigures {
    /// The view of `baseline`; its figures show once `config` deems it ready, as in
    /// `GET /aiops/metrics`.
    pub fn new(baseline: &Baseline, config: &AnalyzerConfig) -> Self {
        let ready = baseline.is_ready(config).then_some(baseline);
        Self {
            avg_latency_ms: ready.and_then(|baseline| rounded(baseline.mean_ms)),
            p95_latency_ms: ready.and_then(|baseline| rounded(baseline.p95_ms)),
            error_rate: ready.and_then(|baseline| rounded(baseline.error_rate)),
            samples: baseline.sample_count,
            updated_at: iso_millis(baseline.updated_at_unix_nanos),
        }
    }
}

/// `GET /aiops/endpoints/history`: an endpoint's requests minute by minute, and its baseline.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct EndpointHistory {
    /// The endpoint.
    #[serde(flatten)]
    pub name: EndpointName,
    /// The range asked for.
    pub window: Window,
    /// Every minute of the range with at least one request, oldest first; minutes without
    /// requests are left out.
    pub points: Vec<MinutePoint>,
    /// The endpoint's baseline now; null when the engine has learned none.
    pub baseline: Option<BaselineFigures>,
}

impl EndpointHistory {
    /// The history of `endpoint` over `window` from its stored `rollups`.
    pub fn new(
        naming: &EndpointNaming,
        endpoint: &EndpointKey,
        window: &TimeWindow,
        rollups: &[MinuteRollup],
        baseline: Option<&Baseline>,
        config: &AnalyzerConfig,
    ) -> Self {
        Self {
            name: EndpointName::new(naming, endpoint),
            window: Window::from(window),
            points: rollups.iter().map(MinutePoint::from).collect(),
            baseline: baseline.map(|baseline| BaselineFigures::new(baseline, config)),
        }
    }
}

/// `GET /aiops/endpoints/window`: an endpoint's requests in one window, figured exactly from
/// every stored span, and the traces that best show what went wrong.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct EndpointWindow {
    /// The endpoint.
    #[serde(flatten)]
    pub name: EndpointName,
    /// The window asked for.
    pub window: Window,
    /// Requests that started in the window.
    pub request_count: u64,
    /// Of those, how many failed.
    pub error_count: u64,
    /// Of those, how many took longer than the timeout threshold (`--timeout-ms`).
    pub timeout_count: u64,
    /// Share of failing requests; null without requests.
    pub error_rate: Option<f64>,
    /// Mean latency; null without requests.
    pub avg_latency_ms: Option<f64>,
    /// Median latency (nearest rank, an observed latency); null without requests.
    pub p50_latency_ms: Option<f64>,
    /// 95th percentile latency (nearest rank); null without requests.
    pub p95_latency_ms: Option<f64>,
    /// 99th percentile latency (nearest rank); null without requests.
    pub p99_latency_ms: Option<f64>,
    /// Traces with a request of the endpoint in the window: those where it failed first, then
    /// the slowest. Open them with `GET /aiops/traces/{trace_id}`.
    pub trace_ids: Vec<String>,
}

impl EndpointWindow {
    /// The view of `endpoint`'s `stats` over `window` (none without requests) and its sampled
    /// `traces`.
    pub fn new(
        naming: &EndpointNaming,
        endpoint: &EndpointKey,
        window: &TimeWindow,
        stats: Option<&WindowStats>,
        traces: &[TraceId],
    ) -> Self {
        let figure = |value: fn(&WindowStats) -> f64| stats.and_then(|stats| rounded(value(stats)));
        Self {
            name: EndpointName::new(naming, endpoint),
            window: Window::from(window),
            request_count: stats.map_or(0, |stats| stats.count),
            error_count: stats.map_or(0, |stats| stats.errors),
            timeout_count: stats.map_or(0, |stats| stats.timeouts),
            error_rate: figure(WindowStats::error_rate),
            avg_latency_ms: figure(|stats| stats.mean_ms),
            p50_latency_ms: figure(|stats| stats.p50_ms),
            p95_latency_ms: figure(|stats| stats.p95_ms),
            p99_latency_ms: figure(|stats| stats.p99_ms),
            trace_ids: traces.iter().map(ToString::to_string).collect(),
        }
    }
}
