//! The payloads against what Alertmanager 0.25 itself sent to a webhook receiver (captured in
//! `testdata/`), and the timeline's reading of incident changes.

use aiops_analyzer::{AnomalyKind, Severity};
use aiops_engine::{Incident, IncidentStatus};
use aiops_rca::RootCause;
use aiops_telemetry_core::EndpointKey;
use serde_json::Value;

use super::notes::{Change, Seen, changes};
use super::*;

const FIRING: &str = include_str!("testdata/alertmanager-0.25-webhook-firing.json");
const RESOLVED: &str = include_str!("testdata/alertmanager-0.25-webhook-resolved.json");

/// 2026-12-06T15:34:35Z, when the captured alert started.
const STARTED: u64 = 1_796_571_275_000_000_000;

/// The incident the captured alert stood for.
pub(super) fn incident() -> Incident {
    Incident {
        id: "INC-1700000000-1".into(),
        severity: Severity::Critical,
        title: "Error storm detected in /payment".into(),
        status: IncidentStatus::Active,
        root_cause: RootCause {
            service: "shop".into(),
            endpoint: "/payment".into(),
            kind: AnomalyKind::ErrorStorm,
            description: "Error storm: 80% errors".into(),
            confidence: 1.0,
            first_failing_span: None,
            candidates: Vec::new(),
        },
        affected_endpoints: vec![
            EndpointKey::new("shop", "/payment"),
            EndpointKey::new("shop", "/checkout"),
        ],
        anomalies: Vec::new(),
        first_detected_unix_nanos: STARTED,
        last_updated_unix_nanos: STARTED,
        resolved_at_unix_nanos: None,
        alert_count: 2,
        merged_into: None,
        evidence: Default::default(),
    }
}

fn style() -> AlertStyle {
    AlertStyle {
        static_labels: vec![("environment".into(), "test".into())],
        external_url: "http://vm:19493".into(),
    }
}

/// Every key of `captured`, recursively, is in `ours` with a value of the same JSON type;
/// the keys of objects that name labels must be equal too.
fn same_shape(captured: &Value, ours: &Value, path: &str) {
    match (captured, ours) {
        (Value::Object(theirs), Value::Object(mine)) => {
            for (key, value) in theirs {
                let inner = format!("{path}.{key}");
                let Some(mine) = mine.get(key) else {
                    panic!("{inner} is missing from our payload");
                };
                same_shape(value, mine, &inner);
            }
        }
        (Value::Array(theirs), Value::Array(mine)) => {
            assert_eq!(theirs.len(), mine.len(), "{path}");
            for (index, (theirs, mine)) in theirs.iter().zip(mine).enumerate() {
                same_shape(theirs, mine, &format!("{path}[{index}]"));
            }
        }
        (theirs, mine) => assert_eq!(
            std::mem::discriminant(theirs),
            std::mem::discriminant(mine),
            "{path}: {theirs} vs {mine}"
        ),
    }
}

fn pinned(captured: &str, incident: &Incident) {
    let captured: Value = serde_json::from_str(captured).expect("captured JSON");
    let ours = serde_json::to_value(style().webhook(incident, &Notes::default(), "test"))
        .expect("serializes");
    same_shape(&captured, &ours, "");
    for key in [
        "version",
        "status",
        "receiver",
        "groupKey",
        "groupLabels",
        "commonLabels",
        "externalURL",
        "truncatedAlerts",
    ] {
        assert_eq!(ours[key], captured[key], "{key}");
    }
    let (theirs, mine) = (&captured["alerts"][0], &ours["alerts"][0]);
    for key in ["status", "labels", "generatorURL", "fingerprint"] {
        assert_eq!(mine[key], theirs[key], "alerts[0].{key}");
    }
    for key in ["summary", "description"] {
        assert_eq!(
            mine["annotations"][key], theirs["annotations"][key],
            "{key}"
        );
    }
    // Alertmanager writes whole seconds; we write milliseconds. Both are RFC 3339.
    for key in ["startsAt", "endsAt"] {
        let parse = |value: &Value| {
            chrono::DateTime::parse_from_rfc3339(value.as_str().expect("a string"))
                .expect("RFC 3339")
        };
        assert_eq!(parse(&mine[key]), parse(&theirs[key]), "alerts[0].{key}");
    }
}

#[test]
fn the_firing_webhook_payload_is_alertmanagers() {
    let mut captured = serde_json::from_str::<Value>(FIRING).expect("JSON");
    assert_eq!(captured["alerts"][0]["endsAt"], ZERO_TIME);
    // The captured alert linked to an engine elsewhere; ours links to the external URL.
    captured["alerts"][0]["generatorURL"] = Value::from(style().incident_url(&incident().id));
    pinned(&captured.to_string(), &incident());
}

#[test]
fn the_resolved_webhook_payload_is_alertmanagers() {
    let mut resolved = incident();
    resolved.status = IncidentStatus::Resolved;
    resolved.resolved_at_unix_nanos = Some(STARTED + 3_000_000_000);
    let mut captured = serde_json::from_str::<Value>(RESOLVED).expect("JSON");
    captured["alerts"][0]["generatorURL"] = Value::from(style().incident_url(&resolved.id));
    pinned(&captured.to_string(), &resolved);
}

#[test]
fn fingerprints_are_alertmanagers() {
    let captured: Value = serde_json::from_str(FIRING).expect("JSON");
    let labels: LabelSet =
        serde_json::from_value(captured["alerts"][0]["labels"].clone()).expect("labels");
    assert_eq!(fingerprint(&labels), "73ff3c1a42ca479d");
    assert_eq!(
        Value::from(fingerprint(&labels)),
        captured["alerts"][0]["fingerprint"]
    );
}

#[test]
fn a_postable_alert_leases_while_firing_and_ends_at_resolution() {
    let lease_end = STARTED + 120_000_000_000;
    let firing = style().postable(&incident(), &Notes::default(), lease_end);
    let json = serde_json::to_value(&firing).expect("serializes");
    assert_eq!(json["endsAt"], "2026-12-06T15:36:35.000Z");
    assert_eq!(json["startsAt"], "2026-12-06T15:34:35.000Z");
    assert_eq!(
        json["generatorURL"],
        "http://vm:19493/aiops/incidents/INC-1700000000-1"
    );
    assert_eq!(json["labels"]["alertname"], ALERT_NAME);
    assert_eq!(json["labels"]["environment"], "test");
    assert_eq!(
        json["annotations"]["root_cause"],
        "shop /payment (error_storm)"
    );
    assert_eq!(
        json["annotations"]["affected_endpoints"],
        "shop /payment, shop /checkout"
    );

    let mut resolved = incident();
    resolved.status = IncidentStatus::Resolved;
    resolved.resolved_at_unix_nanos = Some(STARTED + 3_000_000_000);
    let json = serde_json::to_value(style().postable(&resolved, &Notes::default(), lease_end))
        .expect("serializes");
    assert_eq!(json["endsAt"], "2026-12-06T15:34:38.000Z");
}

#[test]
fn labels_stay_those_first_sent_while_annotations_follow_the_incident() {
    let first = incident();
    let notes = Notes {
        labels: Some(style().labels(&first)),
        acknowledged: Some(Acknowledgement {
            by: "alice".into(),
            comment: Some("on it".into()),
            at_unix_nanos: STARTED,
        }),
        ..Notes::default()
    };
    let mut revised = first.clone();
    revised.severity = Severity::High;
    revised.root_cause.service = "payments".into();
    let alert = style().postable(&revised, &notes, STARTED);
    assert_eq!(alert.labels, style().labels(&first));
    assert_eq!(alert.annotations["acknowledged_by"], "alice");
    assert_eq!(alert.annotations["acknowledgement"], "on it");
    assert!(alert.annotations["root_cause"].starts_with("payments "));
}

#[test]
fn changes_read_as_timeline_events() {
    let opened = incident();
    let kinds = |events: &[aiops_storage_sqlite::IncidentEvent]| {
        events.iter().map(|e| e.kind.clone()).collect::<Vec<_>>()
    };
    let (events, change) = changes(None, &opened, 1);
    assert_eq!(
        (kinds(&events), change),
        (vec!["opened".into()], Change::Opened)
    );

    let seen = Seen::of(&opened);
    let (events, change) = changes(Some(&seen), &opened, 2);
    assert_eq!((events.len(), change), (0, Change::Unchanged));

    let mut joined = opened.clone();
    joined.alert_count += 1;
    let (events, change) = changes(Some(&seen), &joined, 3);
    assert_eq!(
        (kinds(&events), change),
        (vec!["anomaly_joined".into()], Change::Joined)
    );

    let mut revised = joined.clone();
    revised.root_cause.endpoint = "/inventory".into();
    revised.severity = Severity::High;
    let (events, change) = changes(Some(&seen), &revised, 4);
    assert_eq!(
        (kinds(&events), change),
        (
            vec![
                "anomaly_joined".into(),
                "root_cause_changed".into(),
                "severity_changed".into()
            ],
            Change::Revised
        )
    );

    let mut resolved = opened.clone();
    resolved.status = IncidentStatus::Resolved;
    resolved.resolved_at_unix_nanos = Some(5);
    let (events, change) = changes(Some(&seen), &resolved, 5);
    assert_eq!(
        (kinds(&events), change),
        (vec!["resolved".into()], Change::Resolved)
    );

    let (events, change) = changes(Some(&Seen::of(&resolved)), &opened, 6);
    assert_eq!(
        (kinds(&events), change),
        (vec!["reopened".into()], Change::Reopened)
    );
}
