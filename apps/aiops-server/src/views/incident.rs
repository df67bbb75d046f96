//! Incidents and the anomalies they absorb.

use aiops_analyzer::{AnomalyKind, Severity};
use aiops_engine::IncidentStatus;
use serde::Serialize;
use utoipa::ToSchema;

use super::evidence::{Change, Deployment, Insight, LogPattern, NewException};
use super::format::{EndpointNaming, Window, iso, iso_millis, rounded};
use super::lifecycle::Acknowledged;

/// One detected anomaly.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct Anomaly {
    /// `latency_spike`, `error_storm`, `timeout`, `latency_shift`, `call_drop` or
    /// `log_pattern`.
    #[schema(value_type = String, example = "latency_spike")]
    pub kind: AnomalyKind,
    /// The endpoint.
    pub endpoint: String,
    /// Its service.
    pub service: String,
    /// `low`, `medium`, `high` or `critical`.
    #[schema(value_type = String, example = "high")]
    pub severity: Severity,
    /// E.g. `Latency spike: 1250ms (baseline: 180ms, 6.9x slower)`.
    pub description: String,
    /// Observed value: milliseconds for a latency spike or shift, calls per request for
    /// dropped calls, a share (0 to 1) otherwise.
    pub observed: Option<f64>,
    /// Baseline value, in the unit of `observed`.
    pub baseline: Option<f64>,
    /// Observed over baseline.
    pub ratio: Option<f64>,
    /// Requests in the evidence window.
    pub sample_count: u64,
    /// The evidence window.
    pub window: Window,
}

impl Anomaly {
    /// The view of `anomaly`.
    pub fn new(naming: &EndpointNaming, anomaly: &aiops_analyzer::Anomaly) -> Self {
        Self {
            kind: anomaly.kind,
            endpoint: naming.endpoint(&anomaly.endpoint),
            service: anomaly.endpoint.service.to_string(),
            severity: anomaly.severity,
            description: anomaly.description.clone(),
            observed: rounded(anomaly.observed),
            baseline: rounded(anomaly.baseline),
            ratio: rounded(anomaly.ratio),
            sample_count: anomaly.sample_count,
            window: Window::from(&anomaly.window),
        }
    }
}

/// An endpoint the evidence pointed at, with its share.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct Candidate {
    /// Service.
    pub service: String,
    /// Endpoint.
    pub endpoint: String,
    /// Share of anomalous traces pointing at it, 0 to 1.
    pub score: Option<f64>,
}

/// The span where the failure started.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, ToSchema)]
pub struct FirstFailingSpan {
    /// Trace id, 32 hex digits.
    pub trace_id: String,
    /// Span id, 16 hex digits.
    pub span_id: String,
    /// Service.
    pub service: String,
    /// Endpoint.
    pub endpoint: String,
    /// ISO 8601 start, to the millisecond.
    pub started_at: String,
}

/// Where an incident started.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct RootCause {
    /// The service that failed first.
    pub service: String,
    /// Its endpoint.
    pub endpoint: String,
    /// `latency_spike`, `error_storm`, `timeout`, `latency_shift` or `call_drop`.
    #[schema(value_type = String, example = "error_storm")]
    pub kind: AnomalyKind,
    /// In the documented format (docs/API.md), e.g. `Error storm: 28% errors (baseline: 0%)`.
    pub description: String,
    /// Share of anomalous traces explained, 0 to 1.
    pub confidence: Option<f64>,
    /// Ranked candidates, the root cause first.
    pub candidates: Vec<Candidate>,
    /// The earliest failing span, when traces were sampled.
    pub first_failing_span: Option<FirstFailingSpan>,
    /// When set, the root cause is this deployment (kind `deployment`): the fields above still
    /// name the endpoint where it fails and its first failing span.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deployment: Option<Deployment>,
}

impl RootCause {
    /// The view of `cause`.
    pub fn new(naming: &EndpointNaming, cause: &aiops_rca::RootCause) -> Self {
        Self {
            service: cause.service.clone(),
            endpoint: naming.label(&cause.service, &cause.endpoint),
            kind: cause.kind,
            description: cause.description.clone(),
            confidence: rounded(cause.confidence),
            candidates: cause
                .candidates
                .iter()
                .map(|candidate| Candidate {
                    service: candidate.service.clone(),
                    endpoint: naming.label(&candidate.service, &candidate.endpoint),
                    score: rounded(candidate.score),
                })
                .collect(),
            first_failing_span: cause
                .first_failing_span
                .as_ref()
                .map(|span| FirstFailingSpan {
                    trace_id: span.trace_id.to_string(),
                    span_id: span.span_id.to_string(),
                    service: span.service.clone(),
                    endpoint: naming.label(&span.service, &span.operation),
                    started_at: iso_millis(span.start_unix_nanos),
                }),
            deployment: None,
        }
    }
}

/// One incident: one root cause, however many alerts.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct Incident {
    /// `INC-<unix seconds>-<sequence>`.
    pub id: String,
    /// `low`, `medium`, `high` or `critical`.
    #[schema(value_type = String, example = "medium")]
    pub severity: Severity,
    /// Headline.
    pub title: String,
    /// `active` or `resolved`.
    #[schema(value_type = String, example = "active")]
    pub status: IncidentStatus,
    /// Where it started.
    pub root_cause: RootCause,
    /// Root-cause endpoint first, then every endpoint affected upstream.
    pub affected_endpoints: Vec<String>,
    /// Latest anomaly of each kind per affected endpoint.
    pub anomalies: Vec<Anomaly>,
    /// ISO 8601, to the second.
    pub first_detected: String,
    /// ISO 8601, to the second.
    pub last_updated: String,
    /// ISO 8601, when resolved.
    pub resolved_at: Option<String>,
    /// Raw alerts absorbed.
    pub alert_count: u64,
    /// Who acknowledged it, once someone has.
    pub acknowledged: Option<Acknowledged>,
    /// Ids of the silences that held back notifications about it.
    pub silenced_by: Vec<String>,
    /// The incident it was folded into (it is then resolved), when a revised root cause
    /// showed both were one problem.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub merged_into: Option<String>,
    /// Changes of its services near its start (deployments, configuration, feature flags),
    /// oldest first.
    pub changes: Vec<Change>,
    /// The span attributes most over-represented among its anomalous requests.
    pub insights: Vec<Insight>,
    /// New or risen log templates of its services.
    pub log_patterns: Vec<LogPattern>,
    /// Exception types its endpoints never raised in their baselines.
    pub new_exceptions: Vec<NewException>,
}

impl Incident {
    /// The view of `incident`.
    pub fn new(naming: &EndpointNaming, incident: &aiops_engine::Incident) -> Self {
        let evidence = &incident.evidence;
        Self {
            id: incident.id.clone(),
            severity: incident.severity,
            title: incident.title.clone(),
            status: incident.status,
            root_cause: RootCause {
                deployment: evidence.deployment.as_ref().map(Deployment::new),
                ..RootCause::new(naming, &incident.root_cause)
            },
            affected_endpoints: incident
                .affected_endpoints
                .iter()
                .map(|endpoint| naming.endpoint(endpoint))
                .collect(),
            anomalies: incident
                .anomalies
                .iter()
                .map(|anomaly| Anomaly::new(naming, anomaly))
                .collect(),
            first_detected: iso(incident.first_detected_unix_nanos),
            last_updated: iso(incident.last_updated_unix_nanos),
            resolved_at: incident.resolved_at_unix_nanos.map(iso),
            alert_count: incident.alert_count,
            acknowledged: None,
            silenced_by: Vec::new(),
            merged_into: incident.merged_into.clone(),
            changes: evidence.changes.iter().map(Change::new).collect(),
            insights: evidence.insights.iter().map(Insight::new).collect(),
            log_patterns: evidence.log_patterns.iter().map(LogPattern::new).collect(),
            new_exceptions: evidence
                .new_exceptions
                .iter()
                .map(NewException::new)
                .collect(),
        }
    }

    /// Views of `incidents`, newest first (by first detection, then by id).
    pub fn newest_first<'a>(
        naming: &EndpointNaming,
        incidents: impl IntoIterator<Item = &'a aiops_engine::Incident>,
    ) -> Vec<Self> {
        let mut sorted: Vec<&aiops_engine::Incident> = incidents.into_iter().collect();
        sorted.sort_by(|a, b| {
            b.first_detected_unix_nanos
                .cmp(&a.first_detected_unix_nanos)
                .then_with(|| b.id.cmp(&a.id))
        });
        sorted
            .into_iter()
            .map(|incident| Self::new(naming, incident))
            .collect()
    }
}

/// `GET /aiops/incidents`: the active incidents (the default), or the incidents of a status.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
#[serde(untagged)]
pub enum Incidents {
    /// `status=active`, the default.
    Active(ActiveIncidents),
    /// `status=resolved` or `status=all`.
    Listed(IncidentList),
}

/// The active incidents.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct ActiveIncidents {
    /// Active incidents, newest first.
    pub active_incidents: Vec<Incident>,
    /// How many.
    pub count: usize,
}

/// The incidents of one status, or all of them.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct IncidentList {
    /// `resolved` or `all`.
    pub status: String,
    /// The incidents, newest first.
    pub incidents: Vec<Incident>,
    /// How many.
    pub count: usize,
}

/// `POST /aiops/incidents/{id}/resolve`.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct Resolution {
    /// `Incident INC-... resolved`.
    pub message: String,
    /// The incident, now resolved.
    pub incident: Incident,
}

impl Resolution {
    /// The answer to resolving `incident`.
    pub fn new(naming: &EndpointNaming, incident: &aiops_engine::Incident) -> Self {
        Self {
            message: format!("Incident {} resolved", incident.id),
            incident: Incident::new(naming, incident),
        }
    }
}
