//! A bad deployment through OTLP: spans that carry `service.version` and a deployment reported
//! through `POST /aiops/changes`; the incident's root cause is the deployment, with the
//! version insight and the change listed.

use std::time::{SystemTime, UNIX_EPOCH};

use aiops_e2e::otlp_system::{Fault, ShopSystem, SimSpan, to_request_with_versions};
use aiops_e2e::{TestApp, json_of};
use prost::Message;
use reqwest::header::CONTENT_TYPE;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

fn now_unix_nanos() -> u64 {
    let elapsed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970");
    u64::try_from(elapsed.as_nanos()).expect("fits")
}

/// Sends `traces` as one OTLP/HTTP protobuf request, `payments` at `payments_version`.
async fn send(app: &TestApp, traces: &[Vec<SimSpan>], payments_version: &'static str) {
    let request = to_request_with_versions(traces.iter().map(Vec::as_slice), |service| {
        if service == "payments" {
            payments_version
        } else {
            "1.4.2"
        }
    });
    let response = app
        .request(Method::POST, "/v1/traces")
        .header(CONTENT_TYPE, "application/x-protobuf")
        .body(request.encode_to_vec())
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), StatusCode::OK);
}

fn checkouts(system: &mut ShopSystem, start: u64, fault: Option<Fault>) -> Vec<Vec<SimSpan>> {
    (0..40)
        .map(|index| system.checkout(start + index * 20_000_000, fault))
        .collect()
}

#[tokio::test]
async fn a_reported_deployment_whose_version_fails_is_the_root_cause() {
    // Arrange: healthy traffic at 1.4.2, learned.
    let app = TestApp::spawn().await;
    let mut system = ShopSystem::new(7);
    let start = now_unix_nanos() - 3_000_000_000;
    send(&app, &checkouts(&mut system, start, None), "1.4.2").await;
    let learned = app.analyze().await;
    assert_eq!(learned["anomalies"], Value::Array(vec![]), "{learned:#}");

    // Act: payments 2.0.0 is deployed (and reported), and 60% of its charges fail.
    let (status, change) = json_of(
        app.request(Method::POST, "/aiops/changes")
            .json(&json!({"service": "payments", "kind": "deployment",
                          "version": "2.0.0", "previous_version": "1.4.2"}))
            .send()
            .await
            .expect("sent"),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{change:#}");
    let fault = Fault::Errors {
        service: "payments",
        rate: 0.6,
    };
    send(
        &app,
        &checkouts(&mut system, now_unix_nanos(), Some(fault)),
        "2.0.0",
    )
    .await;
    let report = app.analyze().await;

    // Assert
    let incidents = app.active_incidents().await;
    assert_eq!(incidents.len(), 1, "one incident: {report:#}");
    let incident = &incidents[0];
    let cause = &incident["root_cause"];
    assert_eq!(cause["service"], "payments", "{incident:#}");
    let deployment = &cause["deployment"];
    assert_eq!(deployment["kind"], "deployment", "{incident:#}");
    assert_eq!(deployment["service"], "payments");
    assert_eq!(deployment["version"], "2.0.0");
    assert_eq!(deployment["previous_version"], "1.4.2");
    assert_eq!(deployment["source"], "reported");
    assert!(
        deployment["description"]
            .as_str()
            .is_some_and(|d| d.starts_with("Deployment of payments 2.0.0 (from 1.4.2)")),
        "{incident:#}"
    );
    let changes = incident["changes"].as_array().expect("a list");
    assert!(
        changes
            .iter()
            .any(|c| c["service"] == "payments" && c["version"] == "2.0.0"),
        "{incident:#}"
    );
    assert!(cause["first_failing_span"].is_object(), "{incident:#}");

    // The console's page tells the same story.
    let id = incident["id"].as_str().expect("an id");
    let (status, page) = app.get_text(&format!("/incidents/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("Root cause: deployment"), "{page}");
}

#[tokio::test]
async fn the_same_failures_without_a_new_version_blame_no_deployment() {
    let app = TestApp::spawn().await;
    let mut system = ShopSystem::new(8);
    let start = now_unix_nanos() - 3_000_000_000;
    send(&app, &checkouts(&mut system, start, None), "1.4.2").await;
    let _ = app.analyze().await;
    let fault = Fault::Errors {
        service: "payments",
        rate: 0.6,
    };
    send(
        &app,
        &checkouts(&mut system, now_unix_nanos(), Some(fault)),
        "1.4.2",
    )
    .await;
    let _ = app.analyze().await;
    let incidents = app.active_incidents().await;
    assert_eq!(incidents.len(), 1, "{incidents:#?}");
    assert_eq!(incidents[0]["root_cause"]["service"], "payments");
    assert!(incidents[0]["root_cause"].get("deployment").is_none());
    assert_eq!(incidents[0]["changes"], json!([]));
}

#[tokio::test]
async fn a_version_seen_before_a_restart_makes_the_next_one_an_observed_deployment() {
    // Arrange: payments seen at 1.4.2, and the analysis state saved.
    let app = TestApp::spawn().await;
    let mut system = ShopSystem::new(11);
    let start = now_unix_nanos() - 3_000_000_000;
    send(&app, &checkouts(&mut system, start, None), "1.4.2").await;
    app.analyze().await;

    // Act: after a restart, the first spans of payments carry 2.0.0.
    let app = app.restart().await;
    send(
        &app,
        &checkouts(&mut system, now_unix_nanos(), None),
        "2.0.0",
    )
    .await;

    // Assert
    let (status, listed) = app.get("/aiops/changes?service=payments").await;
    assert_eq!(status, StatusCode::OK, "{listed:#}");
    let changes: Vec<(&str, &str, &str)> = listed["changes"]
        .as_array()
        .expect("a list")
        .iter()
        .map(|c| {
            (
                c["previous_version"].as_str().unwrap_or(""),
                c["version"].as_str().unwrap_or(""),
                c["source"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(changes, [("1.4.2", "2.0.0", "observed")], "{listed:#}");
}
