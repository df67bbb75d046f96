//! `POST /aiops/analyze`: what one analysis cycle found.

use std::collections::BTreeMap;

use aiops_analyzer::Config as AnalyzerConfig;
use aiops_engine::{CycleReport, IncidentChange};
use serde::Serialize;
use utoipa::ToSchema;

use super::format::{EndpointNaming, Window, iso_millis};
use super::incident::{Anomaly, Incident};
use super::metrics::EndpointMetrics;

/// What happened to an incident in a cycle.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    /// A new incident was opened.
    Opened,
    /// An active incident absorbed new anomalies with the same root cause.
    Updated,
    /// An incident was resolved.
    Resolved,
    /// A resolved incident whose cause returned within the reopen window became active again.
    Reopened,
}

/// One incident changed by a cycle.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, ToSchema)]
pub struct Change {
    /// What happened.
    pub change: ChangeKind,
    /// The incident's id.
    pub id: String,
}

impl From<&IncidentChange> for Change {
    fn from(change: &IncidentChange) -> Self {
        let kind = match change {
            IncidentChange::Opened { .. } => ChangeKind::Opened,
            IncidentChange::Updated { .. } => ChangeKind::Updated,
            IncidentChange::Resolved { .. } => ChangeKind::Resolved,
            IncidentChange::Reopened { .. } => ChangeKind::Reopened,
        };
        Self {
            change: kind,
            id: change.id().to_owned(),
        }
    }
}

/// `POST /aiops/analyze`.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct AnalysisReport {
    /// ISO 8601, to the millisecond.
    pub analyzed_at: String,
    /// The detection window.
    pub window: Window,
    /// Anomalies found.
    pub anomalies: Vec<Anomaly>,
    /// The incidents opened, updated or resolved.
    pub changes: Vec<Change>,
    /// Those incidents, newest first.
    pub changed_incidents: Vec<Incident>,
    /// Every active incident, newest first.
    pub active_incidents: Vec<Incident>,
    /// As in `GET /aiops/metrics`.
    pub metrics: BTreeMap<String, EndpointMetrics>,
}

impl AnalysisReport {
    /// The report of the cycle run at `at_unix_nanos`, with the incidents it `changed` and
    /// every `active` one.
    pub fn new(
        naming: &EndpointNaming,
        at_unix_nanos: u64,
        report: &CycleReport,
        changed: &[aiops_engine::Incident],
        active: &[aiops_engine::Incident],
        config: &AnalyzerConfig,
    ) -> Self {
        Self {
            analyzed_at: iso_millis(at_unix_nanos),
            window: Window::from(&report.window),
            anomalies: report
                .anomalies
                .iter()
                .map(|anomaly| Anomaly::new(naming, anomaly))
                .collect(),
            changes: report.changes.iter().map(Change::from).collect(),
            changed_incidents: Incident::newest_first(naming, changed),
            active_incidents: Incident::newest_first(naming, active),
            metrics: EndpointMetrics::by_endpoint(naming, &report.endpoints, config),
        }
    }
}
