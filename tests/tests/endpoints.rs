//! One endpoint over time, from the database: `GET /aiops/endpoints/history` (minute by
//! minute) and `GET /aiops/endpoints/window` (one window, exactly, with example traces).

use aiops_e2e::TestApp;
use reqwest::{Method, StatusCode};
use serde_json::Value;

/// The sum of `field` over every point of a history.
fn total(history: &Value, field: &str) -> u64 {
    history["points"]
        .as_array()
        .expect("points")
        .iter()
        .map(|point| point[field].as_u64().expect("a count"))
        .sum()
}

#[tokio::test]
async fn endpoint_history_counts_every_stored_request_per_minute_beside_the_baseline() {
    // Arrange: 20 healthy checkouts learn the baselines, then 10 whose payment fails.
    let app = TestApp::spawn().await;
    app.learn_baselines().await;
    app.simulate_error("/payment", 1.0).await;
    app.traffic(Method::POST, "/checkout", 10, 5).await;
    app.wait_for_spans(20 * 3 + 40 + 10 * 2).await;

    // Act
    let (status, history) = app
        .get("/aiops/endpoints/history?service=shop&operation=/payment")
        .await;

    // Assert
    assert_eq!(status, StatusCode::OK, "{history:#}");
    assert_eq!(
        (
            &history["service"],
            &history["operation"],
            &history["endpoint"]
        ),
        (&"shop".into(), &"/payment".into(), &"/payment".into())
    );
    assert_eq!(total(&history, "request_count"), 30, "{history:#}");
    assert_eq!(total(&history, "error_count"), 10, "{history:#}");
    let points = history["points"].as_array().expect("points");
    assert!(
        (1..=2).contains(&points.len()),
        "a test spans a minute boundary at most"
    );
    for point in points {
        let minute = point["minute"].as_str().expect("minute");
        assert!(minute.ends_with(":00Z"), "{minute} starts a minute");
        assert!(point["avg_latency_ms"].as_f64().expect("mean") > 0.0);
        assert!(
            point["p95_latency_ms"].as_f64().expect("p95")
                <= point["max_latency_ms"].as_f64().expect("max")
        );
    }
    let baseline = &history["baseline"];
    assert!(
        baseline["samples"].as_u64().expect("samples") >= 20,
        "{baseline:#}"
    );
    assert!(baseline["avg_latency_ms"].as_f64().expect("ready") > 0.0);
    assert_eq!(
        baseline["error_rate"].as_f64(),
        Some(0.0),
        "learned while healthy"
    );
}

#[tokio::test]
async fn an_endpoint_without_traffic_has_an_empty_history_no_baseline_and_no_figures() {
    // Arrange
    let app = TestApp::spawn().await;
    let range =
        "service=cart&operation=GET%20/cart&from=2026-01-20T10:00:00Z&to=2026-01-20T10:05:00Z";

    // Act
    let (history_status, history) = app.get(&format!("/aiops/endpoints/history?{range}")).await;
    let (window_status, window) = app.get(&format!("/aiops/endpoints/window?{range}")).await;

    // Assert
    assert_eq!(history_status, StatusCode::OK, "{history:#}");
    assert_eq!(history["endpoint"], "cart GET /cart");
    assert_eq!(
        history["window"],
        serde_json::json!({"start": "2026-01-20T10:00:00.000Z", "end": "2026-01-20T10:05:00.000Z"})
    );
    assert_eq!(history["points"], serde_json::json!([]));
    assert_eq!(history["baseline"], Value::Null);
    assert_eq!(window_status, StatusCode::OK, "{window:#}");
    assert_eq!(window["request_count"], 0);
    assert_eq!(window["p95_latency_ms"], Value::Null);
    assert_eq!(window["trace_ids"], serde_json::json!([]));
}

#[tokio::test]
async fn endpoint_window_figures_every_stored_request_and_lists_failing_traces_first() {
    // Arrange: 10 healthy checkouts, then 5 whose payment fails.
    let app = TestApp::spawn().await;
    app.traffic(Method::POST, "/checkout", 10, 5).await;
    app.simulate_error("/payment", 1.0).await;
    app.traffic(Method::POST, "/checkout", 5, 5).await;

    // Act
    let (status, window) = app
        .get("/aiops/endpoints/window?service=shop&operation=/payment&limit=5")
        .await;

    // Assert
    assert_eq!(status, StatusCode::OK, "{window:#}");
    assert_eq!(window["endpoint"], "/payment");
    assert_eq!(
        (&window["request_count"], &window["error_count"]),
        (&15.into(), &5.into()),
        "{window:#}"
    );
    assert_eq!(window["error_rate"].as_f64(), Some(0.33));
    let p50 = window["p50_latency_ms"].as_f64().expect("p50");
    let p99 = window["p99_latency_ms"].as_f64().expect("p99");
    assert!(0.0 < p50 && p50 <= p99, "{window:#}");
    let traces = window["trace_ids"].as_array().expect("trace_ids");
    assert_eq!(traces.len(), 5);
    for trace_id in traces {
        let trace_id = trace_id.as_str().expect("an id");
        let (status, trace) = app.get(&format!("/aiops/traces/{trace_id}")).await;
        assert_eq!(status, StatusCode::OK, "{trace}");
        assert_eq!(trace["error"], true, "failing traces come first: {trace:#}");
    }
}
