//! The JSON bodies of the API as OpenAPI schemas.
//!
//! Handlers build their bodies with `serde_json::json!` in `render`; these types only describe
//! those shapes for the document and are never constructed.

#![allow(dead_code)]

use std::collections::BTreeMap;

use serde_json::Value;
use utoipa::ToSchema;

/// Every 4xx and 5xx answer: what was wrong and what is accepted. Routes add fields that help
/// fix the request (`parameter`, `accepted`, `limit_bytes`, `allowed_methods`, ...).
#[derive(Debug, ToSchema)]
#[schema(example = json!({"error": "invalid status \"open\"; accepted: active, resolved, all",
    "parameter": "status", "accepted": ["active", "resolved", "all"]}))]
pub struct ErrorBody {
    /// What was wrong and what is accepted.
    error: String,
}

/// `GET /health`.
#[derive(Debug, ToSchema)]
pub struct ShopHealth {
    /// Always `healthy` when the server answers.
    status: String,
    /// The demo shop's service name.
    service: String,
    /// Server version.
    version: String,
}

/// A demo-shop answer (`/inventory`, `/payment`, `/checkout`).
#[derive(Debug, ToSchema)]
pub struct ShopResponse {
    /// `approved`, `completed`, or the stock list for `/inventory`.
    status: Option<String>,
}

/// Optional body of `POST /payment` and `POST /checkout`.
#[derive(Debug, ToSchema)]
pub struct Order {
    /// Amount to charge, positive.
    amount: Option<f64>,
    /// ISO 4217 currency code (`/payment` only).
    currency: Option<String>,
}

/// Endpoint health.
#[derive(Debug, ToSchema)]
pub struct Health {
    /// `healthy`, `degraded` or `critical`.
    status: String,
    /// 0 (down) to 100 (healthy).
    health_score: f64,
}

/// One endpoint's live figures and learned baseline.
#[derive(Debug, ToSchema)]
pub struct EndpointMetrics {
    /// The service owning the endpoint.
    service: String,
    /// Mean latency in the detection window.
    avg_latency_ms: f64,
    /// Learned mean latency; null until the baseline has enough samples.
    baseline_latency_ms: Option<f64>,
    /// 95th percentile latency in the window.
    p95_latency_ms: f64,
    /// Learned 95th percentile latency.
    baseline_p95_latency_ms: Option<f64>,
    /// Share of failing requests in the window.
    error_rate: f64,
    /// Learned share of failing requests.
    baseline_error_rate: Option<f64>,
    /// Requests in the window.
    request_count: u64,
    /// Requests slower than the timeout threshold.
    timeout_count: u64,
    /// Requests the baseline learned from.
    baseline_samples: u64,
    /// Health.
    health: Health,
}

/// `GET /aiops/metrics`.
#[derive(Debug, ToSchema)]
pub struct MetricsReport {
    /// Per endpoint, keyed by endpoint (`/payment` for the shop, `service operation` otherwise).
    metrics: BTreeMap<String, EndpointMetrics>,
    /// Span pipeline counters: `ingested`, `dropped`, `written`, `queued`.
    spans: BTreeMap<String, u64>,
    /// The latest cycle: `analyzed_at`, `window_secs`, `cycles`, `persist_failures`.
    analysis: Value,
}

/// A time window.
#[derive(Debug, ToSchema)]
pub struct Window {
    /// ISO 8601 start.
    start: String,
    /// ISO 8601 end.
    end: String,
}

/// One detected anomaly.
#[derive(Debug, ToSchema)]
pub struct Anomaly {
    /// `latency_spike`, `error_storm` or `timeout`.
    kind: String,
    /// The endpoint.
    endpoint: String,
    /// Its service.
    service: String,
    /// `low`, `medium`, `high` or `critical`.
    severity: String,
    /// E.g. `Latency spike: 1250ms (baseline: 180ms, 6.9x slower)`.
    description: String,
    /// Observed value (ms or rate).
    observed: f64,
    /// Baseline value.
    baseline: f64,
    /// Observed over baseline.
    ratio: f64,
    /// Requests in the evidence window.
    sample_count: u64,
    /// The evidence window.
    window: Window,
}

/// A runner-up root cause.
#[derive(Debug, ToSchema)]
pub struct Candidate {
    /// Service.
    service: String,
    /// Endpoint.
    endpoint: String,
    /// Share of anomalous traces pointing at it, 0 to 1.
    score: f64,
}

/// The span where the failure started.
#[derive(Debug, ToSchema)]
pub struct FirstFailingSpan {
    /// Trace id, 32 hex digits.
    trace_id: String,
    /// Span id, 16 hex digits.
    span_id: String,
    /// Service.
    service: String,
    /// Endpoint.
    endpoint: String,
    /// ISO 8601 start.
    started_at: String,
}

/// Where an incident started.
#[derive(Debug, ToSchema)]
pub struct RootCause {
    /// The service that failed first.
    service: String,
    /// Its endpoint.
    endpoint: String,
    /// `latency_spike`, `error_storm` or `timeout`.
    kind: String,
    /// In the seed's format.
    description: String,
    /// Share of anomalous traces explained, 0 to 1.
    confidence: f64,
    /// Ranked candidates, the root cause first.
    candidates: Vec<Candidate>,
    /// The earliest failing span, when traces were sampled.
    first_failing_span: Option<FirstFailingSpan>,
}

/// One incident: one root cause, however many alerts.
#[derive(Debug, ToSchema)]
pub struct Incident {
    /// `INC-<unix seconds>-<sequence>`.
    id: String,
    /// `low`, `medium`, `high` or `critical`.
    severity: String,
    /// Headline.
    title: String,
    /// `active` or `resolved`.
    status: String,
    /// Where it started.
    root_cause: RootCause,
    /// Root-cause endpoint first, then every endpoint affected upstream.
    affected_endpoints: Vec<String>,
    /// Latest anomaly of each kind per affected endpoint.
    anomalies: Vec<Anomaly>,
    /// ISO 8601.
    first_detected: String,
    /// ISO 8601.
    last_updated: String,
    /// ISO 8601, when resolved.
    resolved_at: Option<String>,
    /// Raw alerts absorbed.
    alert_count: u64,
}

/// `GET /aiops/incidents` (`status=active`, the default).
#[derive(Debug, ToSchema)]
pub struct ActiveIncidents {
    /// Active incidents, most recently updated first.
    active_incidents: Vec<Incident>,
    /// How many.
    count: u64,
}

/// `POST /aiops/incidents/{id}/resolve`.
#[derive(Debug, ToSchema)]
pub struct Resolution {
    /// `Incident INC-... resolved`.
    message: String,
    /// The incident, now resolved.
    incident: Incident,
}

/// `POST /aiops/analyze`.
#[derive(Debug, ToSchema)]
pub struct AnalysisReport {
    /// ISO 8601.
    analyzed_at: String,
    /// The detection window.
    window: Window,
    /// Anomalies found.
    anomalies: Vec<Anomaly>,
    /// `{"change": "opened"|"updated"|"resolved", "id": ...}` per incident changed.
    changes: Vec<Value>,
    /// The incidents changed.
    changed_incidents: Vec<Incident>,
    /// Every active incident.
    active_incidents: Vec<Incident>,
    /// As in `GET /aiops/metrics`.
    metrics: BTreeMap<String, EndpointMetrics>,
}

/// A caller -> callee edge.
#[derive(Debug, ToSchema)]
pub struct DependencyEdge {
    /// Calling service.
    caller: String,
    /// Called service.
    callee: String,
    /// Calls seen.
    calls: u64,
    /// Failed calls.
    errors: u64,
    /// `errors / calls`.
    error_rate: f64,
    /// Mean latency of the calls.
    mean_latency_ms: f64,
}

/// `GET /aiops/topology`.
#[derive(Debug, ToSchema)]
pub struct Topology {
    /// The window looked at.
    window: Window,
    /// Recent traces the graph was built from.
    traces: u64,
    /// Services seen calling one another.
    services: Vec<String>,
    /// Dependencies between services (calls within one service are left out).
    edges: Vec<DependencyEdge>,
    /// Dependencies between endpoints, named like the `metrics` keys (e.g. `/checkout` ->
    /// `/payment` in the demo shop).
    endpoint_edges: Vec<DependencyEdge>,
}

/// `GET /aiops/traces/{trace_id}`: spans as a tree (each root has nested `children`).
#[derive(Debug, ToSchema)]
pub struct TraceTree {
    /// Trace id.
    trace_id: String,
    /// Spans kept.
    span_count: u64,
    /// ISO 8601 start of the earliest span.
    started_at: String,
    /// From the first start to the last end.
    duration_ms: f64,
    /// True when any span failed.
    error: bool,
    /// Root spans: `span_id`, `parent_span_id`, `service`, `operation`, `endpoint`, `kind`,
    /// `started_at`, `duration_ms`, `http_status`, `error`, `attributes`, `children`.
    roots: Vec<Value>,
}

/// The chaos rules in force; the answer of every `/simulate/*` route, which adds a `message`
/// and the values it applied.
#[derive(Debug, ToSchema)]
pub struct ChaosStatus {
    /// False when the server runs with chaos off.
    enabled: bool,
    /// Rules per endpoint: `delay_ms`, `error_rate`, `hang_ms`.
    active_simulations: BTreeMap<String, Value>,
    /// Endpoints rules may target.
    monitored_endpoints: Vec<String>,
}

/// `POST /v1/traces` body: an OTLP `ExportTraceServiceRequest`, protobuf or OTLP JSON
/// (see <https://opentelemetry.io/docs/specs/otlp/#otlphttp>).
#[derive(Debug, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExportTraceServiceRequest {
    /// Spans grouped by resource (`service.name`) and instrumentation scope.
    #[schema(value_type = Vec<Object>)]
    resource_spans: Vec<Value>,
}

/// `POST /v1/traces` answer: empty on full success (`{}`), otherwise a partial success.
#[derive(Debug, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExportTraceServiceResponse {
    /// `{"rejectedSpans": N, "errorMessage": "..."}` when spans were rejected.
    #[schema(value_type = Option<Object>)]
    partial_success: Option<Value>,
}
