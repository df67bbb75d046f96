//! Incident lifecycle through the API: resolution and its watermark, persistence across
//! restarts, and the trace behind an incident.

use aiops_e2e::TestApp;
use reqwest::{Method, StatusCode};

/// A server with one active incident: /payment failing behind /checkout.
async fn app_with_payment_incident() -> (TestApp, String) {
    let app = TestApp::spawn().await;
    app.learn_baselines().await;
    app.simulate_error("/payment", 1.0).await;
    app.traffic(Method::POST, "/checkout", 20, 5).await;
    app.analyze().await;
    let incidents = app.active_incidents().await;
    assert_eq!(incidents.len(), 1, "{incidents:#?}");
    let id = incidents[0]["id"].as_str().expect("id").to_owned();
    (app, id)
}

#[tokio::test]
async fn resolved_incident_is_not_reopened_by_old_evidence() {
    // Arrange
    let (app, id) = app_with_payment_incident().await;

    // Act
    let (status, body) = app.post(&format!("/aiops/incidents/{id}/resolve")).await;
    let after_resolve = app.active_incidents().await;
    app.analyze().await;
    app.analyze().await;

    // Assert
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["incident"]["status"], "resolved");
    assert!(body["incident"]["resolved_at"].is_string());
    assert!(after_resolve.is_empty());
    assert!(
        app.active_incidents().await.is_empty(),
        "old evidence stays resolved"
    );
    let (_, resolved) = app.get("/aiops/incidents?status=resolved").await;
    assert_eq!(resolved["incidents"][0]["id"], id.as_str(), "{resolved:#}");
    let (status, body) = app.get(&format!("/aiops/incidents/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["status"], "resolved");
}

#[tokio::test]
async fn resolving_twice_conflicts_and_unknown_ids_are_not_found() {
    // Arrange
    let (app, id) = app_with_payment_incident().await;
    app.post(&format!("/aiops/incidents/{id}/resolve")).await;

    // Act
    let (again, again_body) = app.post(&format!("/aiops/incidents/{id}/resolve")).await;
    let (unknown, unknown_body) = app.post("/aiops/incidents/INC-1-999/resolve").await;
    let (missing, missing_body) = app.get("/aiops/incidents/INC-nope").await;

    // Assert
    assert_eq!(again, StatusCode::CONFLICT, "{again_body}");
    assert!(
        again_body["error"]
            .as_str()
            .is_some_and(|e| e.contains("already resolved"))
    );
    assert_eq!(unknown, StatusCode::NOT_FOUND, "{unknown_body}");
    assert_eq!(missing, StatusCode::NOT_FOUND, "{missing_body}");
    assert!(
        missing_body["error"]
            .as_str()
            .is_some_and(|e| e.contains("accepted"))
    );
}

#[tokio::test]
async fn fresh_evidence_after_resolution_opens_a_new_incident() {
    // Arrange
    let (app, id) = app_with_payment_incident().await;
    app.post(&format!("/aiops/incidents/{id}/resolve")).await;

    // The bucket holding the resolution instant is old evidence; new requests start later.
    app.settle().await;

    // Act: the fault is still there, and new requests show it.
    app.traffic(Method::POST, "/checkout", 20, 5).await;
    app.analyze().await;

    // Assert
    let incidents = app.active_incidents().await;
    assert_eq!(incidents.len(), 1, "{incidents:#?}");
    assert_ne!(
        incidents[0]["id"],
        id.as_str(),
        "a new incident, not the old one re-opened"
    );
    assert_eq!(incidents[0]["root_cause"]["endpoint"], "/payment");
}

#[tokio::test]
async fn incidents_survive_a_restart_on_the_same_database() {
    // Arrange
    let (app, id) = app_with_payment_incident().await;

    // Act
    let app = app.restart().await;

    // Assert
    let incidents = app.active_incidents().await;
    assert_eq!(incidents.len(), 1, "{incidents:#?}");
    assert_eq!(incidents[0]["id"], id.as_str());
    assert_eq!(incidents[0]["root_cause"]["endpoint"], "/payment");
    let (status, _) = app.post(&format!("/aiops/incidents/{id}/resolve")).await;
    assert_eq!(status, StatusCode::OK, "restored incidents can be resolved");
}

#[tokio::test]
async fn one_checkout_is_one_trace_of_three_spans() {
    // Arrange
    let app = TestApp::spawn().await;

    // Act
    let response = app
        .request(Method::POST, "/checkout")
        .send()
        .await
        .expect("checkout");
    let trace_id = response
        .headers()
        .get("x-trace-id")
        .and_then(|value| value.to_str().ok())
        .expect("x-trace-id header")
        .to_owned();
    let (status, trace) = app.get(&format!("/aiops/traces/{trace_id}")).await;

    // Assert
    assert_eq!(status, StatusCode::OK, "{trace}");
    assert_eq!(trace["span_count"], 3, "{trace:#}");
    let roots = trace["roots"].as_array().expect("roots");
    assert_eq!(roots.len(), 1);
    assert_eq!(roots[0]["endpoint"], "/checkout");
    assert_eq!(
        roots[0]["attributes"]["http.request.method"], "POST",
        "attributes come back with the trace: {trace:#}"
    );
    let mut children: Vec<(&str, &str)> = roots[0]["children"]
        .as_array()
        .expect("children")
        .iter()
        .filter_map(|child| {
            Some((
                child["endpoint"].as_str()?,
                child["attributes"]["http.request.method"].as_str()?,
            ))
        })
        .collect();
    children.sort_unstable();
    assert_eq!(
        children,
        [("/inventory", "GET"), ("/payment", "POST")],
        "{trace:#}"
    );
    assert_eq!(
        roots[0]["attributes"]["service.version"],
        env!("CARGO_PKG_VERSION"),
        "{trace:#}"
    );
    let (status, topology) = app.get("/aiops/topology").await;
    assert_eq!(status, StatusCode::OK, "{topology}");
    let edges = topology["endpoint_edges"]
        .as_array()
        .expect("endpoint_edges");
    for callee in ["/inventory", "/payment"] {
        assert!(
            edges
                .iter()
                .any(|edge| edge["caller"] == "/checkout" && edge["callee"] == callee),
            "{topology:#}"
        );
    }
}

#[tokio::test]
async fn traceparent_from_the_caller_is_continued() {
    // Arrange
    let app = TestApp::spawn().await;
    let header = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    // Act
    let response = app
        .request(Method::GET, "/inventory")
        .header("traceparent", header)
        .send()
        .await
        .expect("inventory");
    let (status, trace) = app
        .get("/aiops/traces/4bf92f3577b34da6a3ce929d0e0e4736")
        .await;

    // Assert
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(status, StatusCode::OK, "{trace}");
    assert_eq!(trace["roots"][0]["parent_span_id"], "00f067aa0ba902b7");
}
