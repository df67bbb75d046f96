//! The quick reference's three scenarios, each yielding exactly one incident with the right
//! root cause; and healthy traffic yielding none.

use aiops_e2e::{TestApp, affected};
use reqwest::{Method, StatusCode};

#[tokio::test]
async fn latency_spike_in_payment_is_one_incident_rooted_at_payment() {
    // Arrange
    let app = TestApp::spawn().await;
    app.learn_baselines().await;

    // Act
    app.simulate_delay("/payment", 500).await;
    let statuses = app.traffic(Method::POST, "/checkout", 30, 10).await;
    let report = app.analyze().await;

    // Assert
    assert!(
        statuses.iter().all(|status| *status == StatusCode::OK),
        "slow, not failing"
    );
    let incidents = app.active_incidents().await;
    assert_eq!(incidents.len(), 1, "one incident: {report:#}");
    let incident = &incidents[0];
    assert_eq!(
        incident["root_cause"]["endpoint"], "/payment",
        "{incident:#}"
    );
    assert_eq!(incident["root_cause"]["kind"], "latency_spike");
    assert!(
        affected(incident).contains(&"/checkout".to_owned()),
        "{incident:#}"
    );
    assert!(
        incident["id"]
            .as_str()
            .is_some_and(|id| id.starts_with("INC-"))
    );
    assert_eq!(incident["status"], "active");
    let description = incident["root_cause"]["description"].as_str().unwrap_or("");
    assert!(description.starts_with("Latency spike: "), "{description}");
}

#[tokio::test]
async fn quick_reference_delay_past_the_checkout_timeout_is_still_rooted_at_payment() {
    // Arrange: the quick reference injects 3000 ms, past /checkout's 2 s dependency timeout.
    let app = TestApp::spawn().await;
    app.learn_baselines().await;

    // Act
    app.simulate_delay("/payment", 3000).await;
    let statuses = app.traffic(Method::POST, "/checkout", 20, 10).await;
    // The /payment spans end a second after /checkout gave up on them; a checkout whose payment
    // failed does not go on to /inventory, so each is a trace of two spans.
    app.wait_for_spans(140).await;
    let report = app.analyze().await;

    // Assert
    assert!(
        statuses
            .iter()
            .all(|status| *status == StatusCode::GATEWAY_TIMEOUT),
        "{statuses:?}"
    );
    let incidents = app.active_incidents().await;
    assert_eq!(incidents.len(), 1, "one incident: {report:#}");
    let incident = &incidents[0];
    assert_eq!(
        incident["root_cause"]["endpoint"], "/payment",
        "{incident:#}"
    );
    assert!(
        affected(incident).contains(&"/checkout".to_owned()),
        "{incident:#}"
    );
}

#[tokio::test]
async fn error_storm_in_inventory_is_one_incident_rooted_at_inventory() {
    // Arrange
    let app = TestApp::spawn().await;
    app.learn_baselines().await;

    // Act
    app.simulate_error("/inventory", 0.8).await;
    let statuses = app.traffic(Method::GET, "/inventory", 30, 5).await;
    let report = app.analyze().await;

    // Assert
    let failed = statuses
        .iter()
        .filter(|status| status.is_server_error())
        .count();
    assert!(failed >= 15, "most requests fail: {failed} of 30");
    let incidents = app.active_incidents().await;
    assert_eq!(incidents.len(), 1, "one incident: {report:#}");
    let incident = &incidents[0];
    assert_eq!(
        incident["root_cause"]["endpoint"], "/inventory",
        "{incident:#}"
    );
    assert_eq!(incident["root_cause"]["kind"], "error_storm");
    assert!(affected(incident).contains(&"/inventory".to_owned()));
}

#[tokio::test]
async fn payment_errors_seen_through_checkout_are_rooted_at_payment() {
    // Arrange
    let app = TestApp::spawn().await;
    app.learn_baselines().await;

    // Act
    app.simulate_error("/payment", 1.0).await;
    let (status, body) = app.checkout().await;
    let statuses = app.traffic(Method::POST, "/checkout", 20, 5).await;
    let report = app.analyze().await;

    // Assert
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
    assert_eq!(body["dependency"], "/payment", "{body}");
    assert!(
        statuses
            .iter()
            .all(|status| *status == StatusCode::BAD_GATEWAY)
    );
    let incidents = app.active_incidents().await;
    assert_eq!(incidents.len(), 1, "one incident: {report:#}");
    let incident = &incidents[0];
    assert_eq!(
        incident["root_cause"]["endpoint"], "/payment",
        "{incident:#}"
    );
    assert_eq!(incident["root_cause"]["kind"], "error_storm");
    let affected = affected(incident);
    assert!(affected.contains(&"/payment".to_owned()), "{affected:?}");
    assert!(affected.contains(&"/checkout".to_owned()), "{affected:?}");
    let span = &incident["root_cause"]["first_failing_span"];
    assert_eq!(span["endpoint"], "/payment", "{incident:#}");
}

#[tokio::test]
async fn healthy_traffic_yields_no_incident_and_learns_baselines() {
    // Arrange
    let app = TestApp::spawn().await;
    app.learn_baselines().await;

    // Act
    app.traffic(Method::POST, "/checkout", 30, 5).await;
    app.traffic(Method::GET, "/inventory", 30, 5).await;
    let report = app.analyze().await;

    // Assert
    assert_eq!(
        report["anomalies"].as_array().map(Vec::len),
        Some(0),
        "{report:#}"
    );
    assert!(app.active_incidents().await.is_empty());
    let metrics = app.metrics().await;
    for endpoint in ["/payment", "/inventory", "/checkout", "/health"] {
        let entry = &metrics["metrics"][endpoint];
        assert!(
            entry["baseline_latency_ms"].is_number(),
            "{endpoint}: {metrics:#}"
        );
        assert!(entry["avg_latency_ms"].is_number(), "{endpoint}");
        assert!(entry["error_rate"].is_number(), "{endpoint}");
        assert_eq!(
            entry["health"]["status"], "healthy",
            "{endpoint}: {metrics:#}"
        );
        assert!(entry["health"]["health_score"].is_number(), "{endpoint}");
    }
    assert_eq!(metrics["spans"]["dropped"], 0);
}

#[tokio::test]
async fn early_detection_opens_the_incident_without_waiting_for_the_interval() {
    // Arrange: a ten-minute interval, so only early detection can run a cycle in this test.
    let app = TestApp::spawn_with(|config| config.detection.early_detection = true).await;
    app.learn_baselines().await;

    // Act: no POST /aiops/analyze from here on.
    app.simulate_delay("/payment", 500).await;
    app.traffic(Method::POST, "/payment", 20, 10).await;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    let incidents = loop {
        let incidents = app.active_incidents().await;
        if !incidents.is_empty() || tokio::time::Instant::now() > deadline {
            break incidents;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };

    // Assert
    assert_eq!(incidents.len(), 1, "{incidents:#?}");
    assert_eq!(incidents[0]["root_cause"]["endpoint"], "/payment");
    let analysis = &app.metrics().await["analysis"];
    assert!(analysis["early_cycles"].as_u64() >= Some(1), "{analysis:#}");
    assert!(analysis["cycles"].as_u64() >= Some(2), "{analysis:#}");
}
