//! How a draft joins an incident: its anomalies and affected endpoints, and its root cause
//! when it takes the incident's.

use aiops_analyzer::Anomaly;
use aiops_rca::{IncidentDraft, RootCause};
use aiops_telemetry_core::EndpointKey;

use super::Incident;

/// Merges `draft` into `incident`; with `take_cause`, the draft's root cause (and title)
/// replaces the incident's, otherwise only its anomalies and affected endpoints join.
pub(super) fn merge(incident: &mut Incident, draft: IncidentDraft, now: u64, take_cause: bool) {
    incident.severity = incident.severity.max(draft.severity);
    incident.alert_count += draft.anomalies.len() as u64;
    incident.last_updated_unix_nanos = incident.last_updated_unix_nanos.max(now);
    if take_cause {
        take_root_cause(incident, draft.title, draft.root_cause);
    }
    for endpoint in draft.affected_endpoints {
        if !incident.affected_endpoints.contains(&endpoint) {
            incident.affected_endpoints.push(endpoint);
        }
    }
    for anomaly in draft.anomalies {
        match incident
            .anomalies
            .iter_mut()
            .find(|a| a.endpoint == anomaly.endpoint && a.kind == anomaly.kind)
        {
            Some(slot) => *slot = anomaly,
            None => incident.anomalies.push(anomaly),
        }
    }
    sort_by_severity(&mut incident.anomalies);
}

/// The incident's root cause becomes `root_cause`, keeping the earliest first failing span of
/// the two when both name the same endpoint.
fn take_root_cause(incident: &mut Incident, title: String, root_cause: RootCause) {
    incident.title = title;
    let same_endpoint = incident.root_cause.endpoint_key() == root_cause.endpoint_key();
    let draft_span = root_cause.first_failing_span.clone();
    let earliest_span = match (incident.root_cause.first_failing_span.take(), draft_span) {
        (Some(old), Some(new)) if same_endpoint && old.start_unix_nanos <= new.start_unix_nanos => {
            Some(old)
        }
        (Some(old), None) if same_endpoint => Some(old),
        (_, new) => new,
    };
    incident.root_cause = root_cause;
    incident.root_cause.first_failing_span = earliest_span;
}

/// Most severe first.
pub(super) fn sort_by_severity(anomalies: &mut [Anomaly]) {
    anomalies.sort_by_key(|a| std::cmp::Reverse(a.severity));
}

/// `endpoints` without repeats, in their first order.
pub(super) fn dedup(endpoints: Vec<EndpointKey>) -> Vec<EndpointKey> {
    let mut unique = Vec::with_capacity(endpoints.len());
    for endpoint in endpoints {
        if !unique.contains(&endpoint) {
            unique.push(endpoint);
        }
    }
    unique
}
