//! What root cause analysis produces: the root cause of a group of anomalies, its runner-up
//! candidates, the span where the failure started, and the incident draft built around them.

use aiops_analyzer::{Anomaly, AnomalyKind, Severity};
use aiops_telemetry_core::{EndpointKey, Span, SpanId, TraceId};
use serde::{Deserialize, Serialize};

/// A pointer to one span of one trace, enough to find it again in storage or a trace view.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SpanRef {
    /// The trace the span belongs to.
    pub trace_id: TraceId,
    /// The span itself.
    pub span_id: SpanId,
    /// The service that did the work.
    pub service: String,
    /// The operation (endpoint) of that service.
    pub operation: String,
    /// When the span started, in Unix nanoseconds.
    pub start_unix_nanos: u64,
}

impl SpanRef {
    /// A reference to `span`.
    pub fn of(span: &Span) -> Self {
        Self {
            trace_id: span.trace_id,
            span_id: span.span_id,
            service: span.service.to_string(),
            operation: span.operation.to_string(),
            start_unix_nanos: span.start_unix_nanos,
        }
    }

    /// The endpoint the referenced span belongs to.
    pub fn endpoint(&self) -> EndpointKey {
        EndpointKey::new(&self.service, &self.operation)
    }
}

/// One endpoint that could explain an anomaly, with the share of evidence pointing at it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Candidate {
    /// The service that owns the endpoint.
    pub service: String,
    /// The endpoint (operation), e.g. `/payment`.
    pub endpoint: String,
    /// Share of the anomalous traces that name this endpoint as their origin, in `[0, 1]`.
    pub score: f64,
}

impl Candidate {
    /// The candidate as an [`EndpointKey`].
    pub fn endpoint_key(&self) -> EndpointKey {
        EndpointKey::new(&self.service, &self.endpoint)
    }
}

/// The endpoint where a problem started, and how sure the analysis is.
///
/// Serialized as the `root_cause` object of an incident:
///
/// ```json
/// { "service": "shop", "endpoint": "/payment", "kind": "latency_spike",
///   "description": "Latency spike: 1250ms (baseline: 180ms, 6.9x slower)",
///   "confidence": 1.0, "first_failing_span": { ... }, "candidates": [ ... ] }
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RootCause {
    /// The service that owns the root-cause endpoint.
    pub service: String,
    /// The root-cause endpoint (the operation), e.g. `/payment`.
    pub endpoint: String,
    /// What went wrong there.
    pub kind: AnomalyKind,
    /// A sentence in the seed's format, using the root endpoint's own figures, e.g.
    /// `Latency spike: 1250ms (baseline: 180ms, 6.9x slower)`.
    pub description: String,
    /// Share of the anomalous traces (sampled traces in which an explained anomaly's endpoint
    /// shows its symptom) that lead back to this endpoint, in `[0, 1]`. Anomalies that no
    /// sampled trace shows are explained by their own endpoint with confidence 1: the
    /// detector's evidence is all there is. An endpoint that stands in for its own anomaly
    /// although its traces pointed nowhere gets 0.
    pub confidence: f64,
    /// The earliest span that failed (or was slow) at the root cause, when traces were sampled.
    pub first_failing_span: Option<SpanRef>,
    /// Every endpoint the evidence pointed at, best first, the root cause included.
    pub candidates: Vec<Candidate>,
}

impl RootCause {
    /// The root cause as an [`EndpointKey`].
    pub fn endpoint_key(&self) -> EndpointKey {
        EndpointKey::new(&self.service, &self.endpoint)
    }

    /// True when `other` names the same endpoint and the same family of fault: errors on one
    /// side, slowness (latency spikes and timeouts) on the other. Incidents are deduplicated on
    /// this relation.
    pub fn same_cause(&self, other: &RootCause) -> bool {
        self.service == other.service
            && self.endpoint == other.endpoint
            && FaultFamily::of(self.kind) == FaultFamily::of(other.kind)
    }
}

/// The two families of fault root causes are grouped by: a slow endpoint and a timing-out one
/// are the same problem seen at different strengths; a failing one is a different problem.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultFamily {
    /// Requests fail.
    Errors,
    /// Requests are slow or time out.
    Slowness,
}

impl FaultFamily {
    /// The family an anomaly kind belongs to.
    pub fn of(kind: AnomalyKind) -> Self {
        match kind {
            AnomalyKind::ErrorStorm | AnomalyKind::CallDrop | AnomalyKind::LogPattern => {
                Self::Errors
            }
            AnomalyKind::LatencySpike | AnomalyKind::Timeout | AnomalyKind::LatencyShift => {
                Self::Slowness
            }
        }
    }
}

/// One incident-to-be: a root cause and every anomaly it explains.
///
/// The incident lifecycle turns drafts into incidents, deduplicating on
/// [`RootCause::same_cause`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct IncidentDraft {
    /// Where the problem started.
    pub root_cause: RootCause,
    /// The most severe of the grouped anomalies.
    pub severity: Severity,
    /// A headline such as `Latency spike detected in /payment`.
    pub title: String,
    /// The root-cause endpoint and every anomalous endpoint upstream of it that it explains,
    /// root first, then sorted.
    pub affected_endpoints: Vec<EndpointKey>,
    /// The anomalies explained by this root cause, most severe first.
    pub anomalies: Vec<Anomaly>,
}
