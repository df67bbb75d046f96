//! The incident lifecycle rules: dedupe by root cause, resolution watermark, auto-resolve, ids.
//! The rules that group several causes into one incident are in `grouping` (those of hangs,
//! whose callers' spans come long before the hung service's, in `hangs`); resolution (by
//! hand and automatic) and its watermark in `resolution`.

mod grouping;
mod hangs;
mod resolution;

use aiops_analyzer::{
    Anomaly, AnomalyKind, Assessment, EndpointAssessment, Health, HealthStatus, Severity,
};
use aiops_engine::{IncidentBook, IncidentChange, IncidentError, IncidentStatus, Watermarks};
use aiops_rca::{IncidentDraft, RootCause, SpanRef};
use aiops_telemetry_core::{EndpointKey, SpanId, TimeWindow, TraceId, WindowStats};

const SEC: u64 = 1_000_000_000;
const T0: u64 = 1_737_404_800 * SEC;
const WINDOW: u64 = 30 * SEC;

fn key(operation: &str) -> EndpointKey {
    EndpointKey::new("shop", operation)
}

fn anomaly(operation: &str, kind: AnomalyKind, severity: Severity, now: u64) -> Anomaly {
    Anomaly {
        kind,
        endpoint: key(operation),
        observed: 1250.0,
        baseline: 180.0,
        ratio: 6.9,
        sample_count: 20,
        window: TimeWindow::ending_at(now, WINDOW),
        severity,
        description: "Latency spike: 1250ms (baseline: 180ms, 6.9x slower)".into(),
    }
}

/// A draft blaming `root` for `anomalies`, the affected endpoints being the anomalies'.
fn draft(root: &str, kind: AnomalyKind, anomalies: Vec<Anomaly>) -> IncidentDraft {
    let mut affected = vec![key(root)];
    for anomaly in &anomalies {
        if !affected.contains(&anomaly.endpoint) {
            affected.push(anomaly.endpoint.clone());
        }
    }
    IncidentDraft {
        root_cause: RootCause {
            service: "shop".into(),
            endpoint: root.into(),
            kind,
            description: anomalies
                .first()
                .map(|a| a.description.clone())
                .unwrap_or_default(),
            confidence: 1.0,
            first_failing_span: None,
            candidates: Vec::new(),
        },
        severity: anomalies
            .iter()
            .map(|a| a.severity)
            .max()
            .unwrap_or(Severity::Low),
        title: format!("Problem detected in {root}"),
        affected_endpoints: affected,
        anomalies,
    }
}

/// `draft` with its root cause in a service of its own, named after the operation (`/a` in
/// `a`): faults of one service's operations are one incident, of different services not.
fn elsewhere(mut draft: IncidentDraft) -> IncidentDraft {
    draft.root_cause.service = draft.root_cause.endpoint.trim_start_matches('/').to_owned();
    draft
}

fn payment_latency(now: u64, severity: Severity) -> IncidentDraft {
    draft(
        "/payment",
        AnomalyKind::LatencySpike,
        vec![anomaly(
            "/payment",
            AnomalyKind::LatencySpike,
            severity,
            now,
        )],
    )
}

/// An assessment in which the anomalies' endpoints are critical and `healthy` ones healthy.
fn assessment(now: u64, anomalies: &[Anomaly], healthy: &[&str]) -> Assessment {
    let mut endpoints: Vec<EndpointAssessment> = healthy
        .iter()
        .map(|operation| endpoint(operation, HealthStatus::Healthy))
        .collect();
    for anomaly in anomalies {
        endpoints.push(endpoint(
            &anomaly.endpoint.operation,
            HealthStatus::Critical,
        ));
    }
    Assessment {
        window: TimeWindow::ending_at(now, WINDOW),
        anomalies: anomalies.to_vec(),
        endpoints,
    }
}

fn endpoint(operation: &str, status: HealthStatus) -> EndpointAssessment {
    EndpointAssessment {
        endpoint: key(operation),
        stats: WindowStats::default(),
        baseline: None,
        health: Health {
            status,
            health_score: if status == HealthStatus::Healthy {
                100.0
            } else {
                20.0
            },
        },
    }
}

fn all_healthy(now: u64) -> Assessment {
    assessment(now, &[], &["/payment", "/checkout", "/inventory"])
}

/// Applies `drafts` with an assessment holding exactly their anomalies.
fn at(service: &str, operation: &str) -> EndpointKey {
    EndpointKey::new(service, operation)
}

/// A draft blaming `operation` of `service` (an edge when it holds ` -> `) for a `kind` anomaly
/// on each of `affected`, the blamed endpoint first.
fn blaming(
    service: &str,
    operation: &str,
    kind: AnomalyKind,
    affected: Vec<EndpointKey>,
    now: u64,
) -> IncidentDraft {
    let anomalies: Vec<Anomaly> = affected
        .iter()
        .map(|endpoint| Anomaly {
            endpoint: endpoint.clone(),
            ..anomaly("/any", kind, Severity::High, now)
        })
        .collect();
    let mut draft = draft(operation, kind, anomalies);
    draft.root_cause.service = service.to_owned();
    draft.affected_endpoints = affected;
    draft
}

fn apply(
    book: &mut IncidentBook,
    marks: &mut Watermarks,
    drafts: Vec<IncidentDraft>,
    now: u64,
) -> Vec<IncidentChange> {
    let anomalies: Vec<Anomaly> = drafts.iter().flat_map(|d| d.anomalies.clone()).collect();
    let assessment = assessment(now, &anomalies, &[]);
    book.apply(drafts, &assessment, now, marks)
}

/// Applies, at `now`, one draft blaming `operation` of `service` (see [`blaming`]).
fn apply_blaming(
    book: &mut IncidentBook,
    marks: &mut Watermarks,
    service: &str,
    operation: &str,
    kind: AnomalyKind,
    affected: Vec<EndpointKey>,
    now: u64,
) -> Vec<IncidentChange> {
    apply(
        book,
        marks,
        vec![blaming(service, operation, kind, affected, now)],
        now,
    )
}

fn opened_id(changes: &[IncidentChange]) -> String {
    match changes {
        [IncidentChange::Opened { id }] => id.clone(),
        other => panic!("expected one opened incident, got {other:?}"),
    }
}

#[test]
fn new_draft_opens_an_incident_in_the_seed_shape() {
    let mut book = IncidentBook::new(3);
    let mut marks = Watermarks::default();

    let changes = apply(
        &mut book,
        &mut marks,
        vec![payment_latency(T0, Severity::High)],
        T0,
    );

    let id = opened_id(&changes);
    assert_eq!(id, "INC-1737404800-1");
    let incident = book.get(&id).expect("kept");
    assert_eq!(incident.status, IncidentStatus::Active);
    assert_eq!(incident.severity, Severity::High);
    assert_eq!(incident.alert_count, 1);
    assert_eq!(incident.first_detected_unix_nanos, T0);
    assert_eq!(incident.last_updated_unix_nanos, T0);
    assert_eq!(incident.resolved_at_unix_nanos, None);

    let json = serde_json::to_value(incident).expect("serializes");
    assert_eq!(json["id"], "INC-1737404800-1");
    assert_eq!(json["severity"], "high");
    assert_eq!(json["status"], "active");
    assert_eq!(json["title"], "Problem detected in /payment");
    assert_eq!(json["root_cause"]["endpoint"], "/payment");
    assert_eq!(json["root_cause"]["confidence"], 1.0);
    assert_eq!(
        json["affected_endpoints"],
        serde_json::json!([{"service": "shop", "operation": "/payment"}])
    );
    assert_eq!(json["first_detected_unix_nanos"], T0);
    assert_eq!(json["resolved_at_unix_nanos"], serde_json::Value::Null);
}

#[test]
fn same_root_cause_updates_the_active_incident() {
    let mut book = IncidentBook::new(3);
    let mut marks = Watermarks::default();
    let id = opened_id(&apply(
        &mut book,
        &mut marks,
        vec![payment_latency(T0, Severity::Medium)],
        T0,
    ));
    let later = T0 + 5 * SEC;
    let wider = draft(
        "/payment",
        AnomalyKind::LatencySpike,
        vec![
            anomaly(
                "/payment",
                AnomalyKind::LatencySpike,
                Severity::Critical,
                later,
            ),
            anomaly(
                "/checkout",
                AnomalyKind::LatencySpike,
                Severity::High,
                later,
            ),
        ],
    );

    let changes = apply(&mut book, &mut marks, vec![wider], later);

    assert_eq!(changes, [IncidentChange::Updated { id: id.clone() }]);
    assert_eq!(book.all().len(), 1);
    let incident = book.get(&id).expect("kept");
    assert_eq!(incident.severity, Severity::Critical, "severity only rises");
    assert_eq!(incident.alert_count, 3);
    assert_eq!(incident.first_detected_unix_nanos, T0);
    assert_eq!(incident.last_updated_unix_nanos, later);
    assert_eq!(
        incident.affected_endpoints,
        [key("/payment"), key("/checkout")]
    );
    assert_eq!(
        incident.anomalies.len(),
        2,
        "the latest anomaly per endpoint and kind"
    );
    assert_eq!(incident.anomalies[0].severity, Severity::Critical);

    // A milder update keeps the severity and does not grow the anomaly list.
    let even_later = later + 5 * SEC;
    let changes = apply(
        &mut book,
        &mut marks,
        vec![payment_latency(even_later, Severity::Medium)],
        even_later,
    );
    assert_eq!(changes, [IncidentChange::Updated { id: id.clone() }]);
    let incident = book.get(&id).expect("kept");
    assert_eq!(incident.severity, Severity::Critical);
    assert_eq!(incident.anomalies.len(), 2);
    assert_eq!(incident.alert_count, 4);
}

#[test]
fn a_timeout_and_a_latency_spike_at_one_endpoint_are_one_incident() {
    let mut book = IncidentBook::new(3);
    let mut marks = Watermarks::default();
    let id = opened_id(&apply(
        &mut book,
        &mut marks,
        vec![payment_latency(T0, Severity::High)],
        T0,
    ));
    let timeouts = draft(
        "/payment",
        AnomalyKind::Timeout,
        vec![anomaly(
            "/payment",
            AnomalyKind::Timeout,
            Severity::Critical,
            T0 + SEC,
        )],
    );

    let changes = apply(&mut book, &mut marks, vec![timeouts], T0 + SEC);

    assert_eq!(changes, [IncidentChange::Updated { id }]);
}

#[test]
fn different_root_causes_open_separate_incidents() {
    let mut book = IncidentBook::new(3);
    let mut marks = Watermarks::default();
    let inventory_errors = elsewhere(draft(
        "/inventory",
        AnomalyKind::ErrorStorm,
        vec![anomaly(
            "/inventory",
            AnomalyKind::ErrorStorm,
            Severity::High,
            T0,
        )],
    ));
    let payment_errors = draft(
        "/payment",
        AnomalyKind::ErrorStorm,
        vec![anomaly(
            "/payment",
            AnomalyKind::ErrorStorm,
            Severity::High,
            T0,
        )],
    );

    let changes = apply(
        &mut book,
        &mut marks,
        vec![
            payment_latency(T0, Severity::High),
            inventory_errors,
            payment_errors,
        ],
        T0,
    );

    assert_eq!(changes.len(), 3);
    assert!(
        changes
            .iter()
            .all(|c| matches!(c, IncidentChange::Opened { .. }))
    );
    assert_eq!(book.active().len(), 3);
    let roots: Vec<_> = book
        .active()
        .iter()
        .map(|i| (i.root_cause.endpoint.clone(), i.root_cause.kind))
        .collect();
    assert_eq!(
        roots,
        [
            ("/payment".to_owned(), AnomalyKind::LatencySpike),
            ("/inventory".to_owned(), AnomalyKind::ErrorStorm),
            ("/payment".to_owned(), AnomalyKind::ErrorStorm),
        ]
    );
}

#[test]
fn ids_are_unique_and_increasing() {
    let mut book = IncidentBook::new(0);
    let mut marks = Watermarks::default();
    let mut ids = Vec::new();
    for (i, root) in ["/a", "/b", "/c", "/d"].iter().enumerate() {
        let now = T0 + (i as u64 / 2) * SEC;
        let errors = elsewhere(draft(
            root,
            AnomalyKind::ErrorStorm,
            vec![anomaly(root, AnomalyKind::ErrorStorm, Severity::High, now)],
        ));
        ids.push(opened_id(&apply(&mut book, &mut marks, vec![errors], now)));
    }
    assert_eq!(
        ids,
        [
            "INC-1737404800-1",
            "INC-1737404800-2",
            "INC-1737404801-3",
            "INC-1737404801-4"
        ]
    );

    // The sequence survives a round trip through JSON.
    let json = serde_json::to_string(&book).expect("serializes");
    let mut reloaded: IncidentBook = serde_json::from_str(&json).expect("deserializes");
    assert_eq!(reloaded, book);
    let next = draft(
        "/e",
        AnomalyKind::ErrorStorm,
        vec![anomaly("/e", AnomalyKind::ErrorStorm, Severity::High, T0)],
    );
    assert_eq!(
        opened_id(&apply(&mut reloaded, &mut marks, vec![next], T0 + 2 * SEC)),
        "INC-1737404802-5"
    );
}
