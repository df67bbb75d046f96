//! The predicates that decide whether two causes are one problem, for the incident book's
//! grouping and folding rules.

use aiops_analyzer::AnomalyKind;
use aiops_rca::{FaultFamily, RootCause};
use aiops_telemetry_core::{EndpointKey, peer_in_operation};

use super::Incident;

/// A deeper cause takes an incident's root cause only when it explains at least this share of
/// what the incident's own root cause explained: its traces must show it as plainly (see
/// `shown_as_plainly`).
pub const MIN_CONFIDENCE_TO_REVISE: f64 = 0.5;

/// Faults grouped as one problem at one service: the same family, or either a timeout (its
/// callers see a hung service's calls fail).
fn related_kinds(a: AnomalyKind, b: AnomalyKind) -> bool {
    FaultFamily::of(a) == FaultFamily::of(b)
        || a == AnomalyKind::Timeout
        || b == AnomalyKind::Timeout
}

/// True when `incident` and a draft or incident blaming `cause` at the same service are one
/// problem: related kinds of fault, or a call into the service failing while the incident is
/// young (callers that give up on a service that just turned slow see failures, and a service
/// that just started failing makes its callers' calls slow). Different kinds of fault in two
/// of the service's own operations stay apart: in a single-service application they are
/// different problems.
pub(super) fn one_problem(incident: &Incident, cause: &RootCause, revise_after: u64) -> bool {
    related_kinds(incident.root_cause.kind, cause.kind)
        || (incident.first_detected_unix_nanos >= revise_after
            && (names_call(&incident.root_cause.endpoint) || names_call(&cause.endpoint)))
}

/// True when `other` names the place better than `kept`, both at one service: one of the
/// service's own operations where `kept` names only a call into it.
pub(super) fn sharper(kept: &RootCause, other: &RootCause) -> bool {
    names_call(&kept.endpoint) && !names_call(&other.endpoint)
}

/// True when `operation` is a call to another service (a client span keyed by its peer).
fn names_call(operation: &str) -> bool {
    peer_in_operation(operation).is_some()
}

/// True when `incident` blames `endpoint`: its root-cause endpoint, or the caller's client
/// endpoint of the call its root cause names (an edge blamed on its callee is keyed by the
/// callee's service and the caller's operation).
pub(super) fn blames(incident: &Incident, endpoint: &EndpointKey) -> bool {
    *endpoint == incident.root_cause.endpoint_key()
        || (names_call(&endpoint.operation)
            && endpoint.operation == incident.root_cause.endpoint.as_str()
            && incident.affected_endpoints.contains(endpoint))
}

/// True when `endpoint`, affected in a draft blaming `cause` at a service other than
/// `incident`'s, is one of the service's own operations, or one of its own calls out failing
/// or timing out, while `incident` blames only a call into or out of that service: the draft
/// saw the service itself hurt by something beyond it (a hung callee whose callers time out on
/// it shows first as their failing or slow calls, and its own spans arrive when the hang ends;
/// a caller of the hung service that gives up on it late is given up on by its own callers
/// first, and its failing calls into the hung service are what the later draft shows). A
/// call out that is only slow is not enough: a network delay in front of the service slows
/// its callers' calls, and a slow dependency of its own is not what they wait on.
pub(super) fn behind_blamed_call(
    incident: &Incident,
    cause: &RootCause,
    endpoint: &EndpointKey,
) -> bool {
    let calls_out_fail = matches!(cause.kind, AnomalyKind::ErrorStorm | AnomalyKind::Timeout)
        && endpoint.operation != incident.root_cause.endpoint;
    names_call(&incident.root_cause.endpoint)
        && endpoint.service == incident.root_cause.service
        && (!names_call(&endpoint.operation) || calls_out_fail)
}

/// True when `cause` blames only a call that is `incident`'s symptom: a call into or out of a
/// service the incident hurt, or one whose traces lead to the incident's root cause too.
pub(super) fn symptom_call(incident: &Incident, cause: &RootCause) -> bool {
    call_into_hurt_service(incident, cause) || traced_to_root(incident, cause)
}

/// True when `cause` blames only a call into or out of a service that `incident` lists as hurt
/// in one of its own operations: callers that give up on a service slowed by the incident's
/// root cause see their calls into it fail, and that is the incident's symptom, not a new
/// fault.
fn call_into_hurt_service(incident: &Incident, cause: &RootCause) -> bool {
    names_call(&cause.endpoint)
        && incident
            .affected_endpoints
            .iter()
            .any(|e| e.service == cause.service && !names_call(&e.operation))
}

/// True when `cause` blames only a call and some of its own traces name `incident`'s root
/// cause as their origin: the calls failed or slowed in requests that reached the incident's
/// root cause too, and where its spans were missing (a hung service answers long after its
/// callers gave up) the call is all a trace can blame.
fn traced_to_root(incident: &Incident, cause: &RootCause) -> bool {
    let root = incident.root_cause.endpoint_key();
    names_call(&cause.endpoint)
        && cause
            .candidates
            .iter()
            .any(|candidate| candidate.score > 0.0 && candidate.endpoint_key() == root)
}

/// True when `cause` explains at least [`MIN_CONFIDENCE_TO_REVISE`] times as much of its
/// traces as `incident`'s root cause did of its own: as a fault clears, its endpoints' last
/// anomalous windows hold mostly healthy traces, which blame some endpoint by chance.
pub(super) fn shown_as_plainly(cause: &RootCause, incident: &Incident) -> bool {
    cause.confidence >= MIN_CONFIDENCE_TO_REVISE * incident.root_cause.confidence
}
