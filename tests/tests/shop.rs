//! The demo shop: dependency failures as 502/504 JSON, injected faults, telemetry on and off,
//! and configuration checked before the server starts.

use std::time::Duration;

use aiops_e2e::{TestApp, json_of, test_config};
use aiops_server::Application;
use reqwest::{Method, StatusCode};
use serde_json::json;

#[tokio::test]
async fn a_hanging_dependency_makes_checkout_answer_504_naming_it() {
    // Arrange
    let app =
        TestApp::spawn_with(|config| config.shop.checkout_timeout = Duration::from_millis(300))
            .await;
    let (status, body) = app
        .post("/simulate/timeout?endpoint=/payment&duration=800")
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["active_simulations"]["/payment"]["hang_ms"], 800.0);

    // Act
    let (status, body) = app.checkout().await;

    // Assert
    assert_eq!(status, StatusCode::GATEWAY_TIMEOUT, "{body}");
    assert_eq!(body["dependency"], "/payment");
    assert_eq!(body["timeout_ms"], 300);
    let error = body["error"].as_str().unwrap_or_default();
    assert!(error.contains("timed out"), "{error}");
}

#[tokio::test]
async fn injected_failures_answer_500_json_and_clear_restores_the_shop() {
    // Arrange
    let app = TestApp::spawn().await;
    app.simulate_error("/inventory", 1.0).await;

    // Act
    let (failed, body) = app.get("/inventory").await;
    let (cleared, _) = app.post("/simulate/clear").await;
    let (restored, _) = app.get("/inventory").await;

    // Assert
    assert_eq!(failed, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(
        body["error"]
            .as_str()
            .is_some_and(|e| e.contains("injected")),
        "{body}"
    );
    assert_eq!(cleared, StatusCode::OK);
    assert_eq!(restored, StatusCode::OK);
    assert_eq!(app.active_simulations().await, json!({}));
}

#[tokio::test]
async fn telemetry_off_serves_the_shop_without_recording_spans() {
    // Arrange
    let app = TestApp::spawn_with(|config| config.shop.telemetry = false).await;

    // Act
    let response = app
        .request(Method::POST, "/checkout")
        .send()
        .await
        .expect("sent");
    let has_trace_header = response.headers().contains_key("x-trace-id");
    let (status, _) = json_of(response).await;
    let metrics = app.metrics().await;

    // Assert
    assert_eq!(status, StatusCode::OK);
    assert!(!has_trace_header);
    assert_eq!(metrics["spans"]["ingested"], 0, "{metrics:#}");
}

#[tokio::test]
async fn api_routes_are_not_monitored() {
    // Arrange
    let app = TestApp::spawn().await;

    // Act
    app.get("/aiops/incidents").await;
    app.get("/simulate/status").await;
    app.get("/health").await;
    let metrics = app.metrics().await;

    // Assert: only GET /health became a span.
    assert_eq!(metrics["spans"]["ingested"], 1, "{metrics:#}");
}

#[tokio::test]
async fn invalid_configuration_is_refused_before_serving() {
    // Arrange
    let dir = tempfile::TempDir::new().expect("temporary directory");
    let mut config = test_config(&dir);
    config.detection.latency_multiplier = 0.5;

    // Act
    let error = Application::build(config)
        .await
        .expect_err("invalid multiplier");

    // Assert
    let message = format!("{error:#}");
    assert!(message.contains("latency_multiplier"), "{message}");
}
