//! Every bad input gets a 4xx JSON error that says what is accepted, and changes nothing.

use aiops_e2e::{TEST_MAX_BODY_BYTES, TestApp, json_of};
use aiops_server::Settings;
use reqwest::{Method, StatusCode};
use serde_json::json;

/// (method, path, expected status, a phrase the error must contain)
const BAD_REQUESTS: &[(&str, &str, u16, &str)] = &[
    // /simulate/delay
    ("POST", "/simulate/delay", 400, "missing parameter endpoint"),
    (
        "POST",
        "/simulate/delay?endpoint=/payment",
        400,
        "missing parameter duration",
    ),
    (
        "POST",
        "/simulate/delay?duration=100",
        400,
        "missing parameter endpoint",
    ),
    (
        "POST",
        "/simulate/delay?endpoint=/payment&duration=abc",
        400,
        "0 to 60000",
    ),
    (
        "POST",
        "/simulate/delay?endpoint=/payment&duration=-5",
        400,
        "0 to 60000",
    ),
    (
        "POST",
        "/simulate/delay?endpoint=/payment&duration=NaN",
        400,
        "0 to 60000",
    ),
    (
        "POST",
        "/simulate/delay?endpoint=/payment&duration=inf",
        400,
        "0 to 60000",
    ),
    (
        "POST",
        "/simulate/delay?endpoint=/payment&duration=60001",
        400,
        "0 to 60000",
    ),
    (
        "POST",
        "/simulate/delay?endpoint=/payment&duration=",
        400,
        "empty",
    ),
    (
        "POST",
        "/simulate/delay?endpoint=/nope&duration=100",
        400,
        "/checkout, /health, /inventory, /payment",
    ),
    (
        "POST",
        "/simulate/delay?endpoint=/aiops/metrics&duration=100",
        400,
        "accepted endpoints",
    ),
    (
        "POST",
        "/simulate/delay?endpoint=/payment&duration=100&extra=1",
        400,
        "accepted: endpoint, duration",
    ),
    (
        "POST",
        "/simulate/delay?endpoint=/payment&endpoint=/health&duration=1",
        400,
        "more than once",
    ),
    // /simulate/error
    (
        "POST",
        "/simulate/error?endpoint=/inventory",
        400,
        "missing parameter rate",
    ),
    (
        "POST",
        "/simulate/error?endpoint=/inventory&rate=1.5",
        400,
        "0 to 1",
    ),
    (
        "POST",
        "/simulate/error?endpoint=/inventory&rate=-0.1",
        400,
        "0 to 1",
    ),
    (
        "POST",
        "/simulate/error?endpoint=/inventory&rate=NaN",
        400,
        "0 to 1",
    ),
    (
        "POST",
        "/simulate/error?endpoint=/inventory&rate=eighty",
        400,
        "0 to 1",
    ),
    (
        "POST",
        "/simulate/error?endpoint=inventory&rate=0.5",
        400,
        "accepted endpoints",
    ),
    // /simulate/timeout and /simulate/clear
    (
        "POST",
        "/simulate/timeout",
        400,
        "missing parameter endpoint",
    ),
    (
        "POST",
        "/simulate/timeout?endpoint=/payment&duration=-1",
        400,
        "0 to 60000",
    ),
    (
        "POST",
        "/simulate/clear?all=yes",
        400,
        "takes no parameters",
    ),
    // wrong methods
    (
        "GET",
        "/simulate/delay?endpoint=/payment&duration=100",
        405,
        "accepted: POST",
    ),
    ("GET", "/simulate/clear", 405, "accepted: POST"),
    ("POST", "/simulate/status", 405, "accepted: GET"),
    ("GET", "/payment", 405, "accepted: POST"),
    ("GET", "/checkout", 405, "accepted: POST"),
    ("DELETE", "/inventory", 405, "accepted: GET"),
    ("POST", "/health", 405, "accepted: GET"),
    ("GET", "/aiops/analyze", 405, "accepted: POST"),
    ("POST", "/aiops/metrics", 405, "accepted: GET"),
    (
        "GET",
        "/aiops/incidents/INC-1-1/resolve",
        405,
        "accepted: POST",
    ),
    ("DELETE", "/aiops/incidents", 405, "accepted: GET"),
    // unknown ids, parameters and routes
    ("GET", "/aiops/incidents/INC-0-0", 404, "INC-1737404800-1"),
    (
        "POST",
        "/aiops/incidents/does-not-exist/resolve",
        404,
        "accepted",
    ),
    (
        "GET",
        "/aiops/incidents?status=open",
        400,
        "active, acknowledged, unacknowledged, resolved, all",
    ),
    (
        "GET",
        "/aiops/incidents?state=active",
        400,
        "accepted: status",
    ),
    (
        "GET",
        "/aiops/traces/xyz",
        400,
        "32 lower-case hexadecimal digits",
    ),
    (
        "GET",
        "/aiops/traces/00000000000000000000000000000000",
        400,
        "not all zero",
    ),
    (
        "GET",
        "/aiops/traces/4BF92F3577B34DA6A3CE929D0E0E4736",
        400,
        "lower-case",
    ),
    (
        "GET",
        "/aiops/traces/4bf92f3577b34da6a3ce929d0e0e4736",
        404,
        "no spans",
    ),
    ("GET", "/aiops/topology?window=forever", 400, "1s to 24h"),
    ("GET", "/aiops/topology?window=1.5m", 400, "whole seconds"),
    ("GET", "/aiops/topology?window=0s", 400, "1s to 24h"),
    (
        "GET",
        "/aiops/endpoints/history?operation=/payment",
        400,
        "missing parameter service",
    ),
    (
        "GET",
        "/aiops/endpoints/history?service=shop&operation=",
        400,
        "parameter operation is empty",
    ),
    (
        "GET",
        "/aiops/endpoints/history?service=shop&operation=/payment&from=yesterday",
        400,
        "accepted: an ISO 8601 time",
    ),
    (
        "GET",
        "/aiops/endpoints/history?service=shop&operation=/payment&from=2026-01-20T10:00:00Z&to=2026-01-20T09:00:00Z",
        400,
        "is not before to",
    ),
    (
        "GET",
        "/aiops/endpoints/history?service=shop&operation=/payment&from=2026-01-18T00:00:00Z&to=2026-01-20T00:00:00Z",
        400,
        "accepted: at most 24h",
    ),
    (
        "GET",
        "/aiops/endpoints/history?service=shop&operation=/payment&window=5m",
        400,
        "accepted: service, operation, from, to",
    ),
    ("POST", "/aiops/endpoints/history", 405, "accepted: GET"),
    (
        "GET",
        "/aiops/endpoints/window?service=shop",
        400,
        "missing parameter operation",
    ),
    (
        "GET",
        "/aiops/endpoints/window?service=shop&operation=/payment&from=2026-01-20T09:00:00Z&to=2026-01-20T10:00:01Z",
        400,
        "accepted: at most 1h",
    ),
    (
        "GET",
        "/aiops/endpoints/window?service=shop&operation=/payment&limit=0",
        400,
        "whole number of traces from 1 to 100",
    ),
    (
        "GET",
        "/aiops/endpoints/window?service=shop&operation=/payment&limit=2.5",
        400,
        "whole number of traces from 1 to 100",
    ),
    ("GET", "/aiops/nothing", 404, "no route"),
    ("GET", "/nothing", 404, "no route"),
    ("POST", "/simulate/everything", 404, "no route"),
];

#[tokio::test]
async fn every_bad_request_gets_a_json_error_and_changes_nothing() {
    // Arrange
    let app = TestApp::spawn().await;
    app.simulate_delay("/health", 1).await;
    let before = app.active_simulations().await;

    for (method, path, expected, phrase) in BAD_REQUESTS {
        // Act
        let method = Method::from_bytes(method.as_bytes()).expect("method");
        let (status, body) = app.call(method.clone(), path).await;

        // Assert
        assert_eq!(status.as_u16(), *expected, "{method} {path}: {body}");
        let error = body["error"]
            .as_str()
            .unwrap_or_else(|| panic!("{method} {path}: JSON error, got {body}"));
        assert!(
            error.contains(phrase),
            "{method} {path}: {error:?} should mention {phrase:?}"
        );
        assert_eq!(
            app.active_simulations().await,
            before,
            "{method} {path} changed the rules"
        );
    }
}

#[tokio::test]
async fn bad_shop_bodies_are_rejected_before_any_work() {
    // Arrange
    let app = TestApp::spawn().await;
    let cases = [
        (
            "/payment",
            "application/json",
            "{not json".to_owned(),
            400,
            "invalid JSON body",
        ),
        (
            "/payment",
            "application/json",
            json!({"amount": -3}).to_string(),
            400,
            "greater than 0",
        ),
        (
            "/payment",
            "application/json",
            json!({"amount": "ten"}).to_string(),
            400,
            "invalid JSON body",
        ),
        (
            "/payment",
            "application/json",
            json!({"card": "4111"}).to_string(),
            400,
            "unknown field",
        ),
        (
            "/payment",
            "application/json",
            json!({"currency": "euro"}).to_string(),
            400,
            "ISO 4217",
        ),
        (
            "/payment",
            "text/plain",
            "amount=3".to_owned(),
            415,
            "application/json",
        ),
        (
            "/checkout",
            "application/json",
            json!({"amount": 0}).to_string(),
            400,
            "greater than 0",
        ),
        (
            "/payment",
            "application/json",
            "[12.5, \"EUR\"]".to_owned(),
            400,
            "not an object",
        ),
        (
            "/checkout",
            "application/xml",
            "<order/>".to_owned(),
            415,
            "application/json",
        ),
    ];

    for (path, content_type, body, expected, phrase) in cases {
        // Act
        let response = app
            .request(Method::POST, path)
            .header("content-type", content_type)
            .body(body.clone())
            .send()
            .await
            .expect("sent");
        let (status, json) = json_of(response).await;

        // Assert
        assert_eq!(status.as_u16(), expected, "{path} {body}: {json}");
        let error = json["error"].as_str().unwrap_or_default();
        assert!(
            error.contains(phrase),
            "{path} {body}: {error:?} should mention {phrase:?}"
        );
    }
}

#[tokio::test]
async fn valid_shop_bodies_and_the_quick_reference_forms_are_accepted() {
    // Arrange
    let app = TestApp::spawn().await;

    // Act
    let (bare, _) = app.post("/payment").await;
    let form = app
        .request(Method::POST, "/checkout")
        .header("content-type", "application/x-www-form-urlencoded")
        .send()
        .await
        .expect("sent")
        .status();
    let with_amount = app
        .request(Method::POST, "/payment")
        .json(&json!({"amount": 42.5, "currency": "USD"}))
        .send()
        .await
        .expect("sent");
    let (status, body) = json_of(with_amount).await;

    // Assert
    assert_eq!(bare, StatusCode::OK);
    assert_eq!(form, StatusCode::OK);
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["amount"], 42.5);
    assert_eq!(body["currency"], "USD");
}

#[tokio::test]
async fn oversized_bodies_get_413_json() {
    // Arrange
    let app = TestApp::spawn().await;
    let big = format!(
        "{{\"amount\": 1, \"pad\": \"{}\"}}",
        "x".repeat(TEST_MAX_BODY_BYTES)
    );

    for path in ["/payment", "/checkout", "/simulate/clear", "/aiops/analyze"] {
        // Act
        let response = app
            .request(Method::POST, path)
            .header("content-type", "application/json")
            .body(big.clone())
            .send()
            .await
            .expect("sent");
        let (status, body) = json_of(response).await;

        // Assert
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{path}: {body}");
        let error = body["error"].as_str().unwrap_or_default();
        assert!(
            error.contains(&format!("at most {TEST_MAX_BODY_BYTES} bytes")),
            "{error}"
        );
    }
    assert_eq!(app.active_simulations().await, json!({}));
}

#[tokio::test]
async fn chaos_switched_off_refuses_rules_and_says_why() {
    // Arrange
    let app = TestApp::spawn_with(|config| config.shop.chaos = false).await;

    // Act
    let (status, body) = app
        .post("/simulate/delay?endpoint=/payment&duration=100")
        .await;
    let (status_code, status_body) = app.get("/simulate/status").await;

    // Assert
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(
        body["error"]
            .as_str()
            .is_some_and(|e| e.contains("disabled"))
    );
    assert_eq!(status_code, StatusCode::OK);
    assert_eq!(status_body["enabled"], false);
    assert_eq!(status_body["active_simulations"], json!({}));
}

#[tokio::test]
async fn chaos_switched_off_by_the_configuration_file_is_refused_naming_the_file_setting() {
    // Arrange
    let file = tempfile::NamedTempFile::new().expect("temporary file");
    std::fs::write(file.path(), r#"{"shop": {"chaos": false}}"#).expect("written");
    let from_file = Settings::from_file(file.path()).expect("a valid file");
    let app = TestApp::spawn_with(|config| {
        config.shop.chaos = from_file.shop.chaos;
        config.origins = from_file.origins;
    })
    .await;

    // Act
    let (status, body) = app.post("/simulate/error?endpoint=/payment&rate=0.5").await;

    // Assert
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let expected = format!(
        "chaos: injection is disabled; enable it to set rules (switched off by `shop.chaos` in \
         the configuration file {})",
        file.path().display()
    );
    assert_eq!(body["error"], json!(expected));
}
