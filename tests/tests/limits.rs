//! Timeouts on every connection: a stalled upload or a request head that never ends is
//! answered 408 and its connection closed, and stalled clients do not keep others from
//! being served.

use std::time::Duration;

use aiops_e2e::TestApp;
use reqwest::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::request_head::exchange;

/// A server with these timeouts.
async fn app(request_head: Duration, body_read: Duration) -> TestApp {
    TestApp::spawn_with(|config| {
        config.http.request_head_timeout = request_head;
        config.http.body_read_timeout = body_read;
    })
    .await
}

const SHORT: Duration = Duration::from_millis(300);
const LONG: Duration = Duration::from_secs(30);

fn stalled_upload(port: u16, path: &str) -> Vec<u8> {
    let mut request = format!(
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/x-protobuf\r\n\
         Content-Length: 4000000\r\n\r\n"
    )
    .into_bytes();
    request.extend(std::iter::repeat_n(0x0a, 2000));
    request
}

#[tokio::test]
async fn a_stalled_upload_is_answered_408_in_json_and_disconnected() {
    let app = app(LONG, SHORT).await;

    let answer = exchange(&app, &stalled_upload(app.port, "/v1/traces")).await;

    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(
        answer.contains("{\"error\":\"otlp: the request body did not arrive within 0.3 s"),
        "{answer}"
    );
    let (_, metrics) = app.get_text("/metrics").await;
    assert!(
        metrics.contains("aiops_ingest_refused_requests_total{reason=\"other\"} 1"),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_request_head_that_never_ends_is_cut() {
    let app = app(SHORT, LONG).await;

    let answer = exchange(
        &app,
        b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ",
    )
    .await;

    // 408 with the JSON error every refusal has, then the connection closed.
    assert!(
        answer.starts_with("HTTP/1.1 408 Request Timeout\r\n"),
        "{answer}"
    );
    assert!(
        answer
            .to_ascii_lowercase()
            .contains("content-type: application/json"),
        "{answer}"
    );
    let body: serde_json::Value =
        serde_json::from_str(answer.split_once("\r\n\r\n").expect("a head").1).expect("JSON");
    let error = body["error"].as_str().expect("an error");
    assert!(
        error.contains("did not arrive within 0.3 s; accepted: a whole request head in time"),
        "{error}"
    );
    assert_eq!(body["timeout_seconds"], 0.3);
}

#[tokio::test]
async fn stalled_clients_do_not_keep_others_from_being_served() {
    let app = app(LONG, LONG).await;
    let mut stalled = Vec::new();
    for _ in 0..64 {
        let mut stream = TcpStream::connect(("127.0.0.1", app.port))
            .await
            .expect("connects");
        stream
            .write_all(&stalled_upload(app.port, "/v1/traces"))
            .await
            .expect("writes");
        stalled.push(stream);
    }

    assert_eq!(app.get("/healthz").await.0, StatusCode::OK);
    assert_eq!(app.get("/health").await.0, StatusCode::OK);
    let (status, _) = app.get("/readyz").await;
    assert_eq!(status, StatusCode::OK);
    drop(stalled);
}

#[tokio::test]
async fn a_huge_operation_name_is_folded_and_does_not_grow_the_exposition() {
    let app = TestApp::spawn().await;
    let name = "GET /".to_owned() + &"x".repeat(200_000);
    let body = format!(
        r#"{{"resourceSpans":[{{"scopeSpans":[{{"spans":[{{
        "traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174",
        "name":"{name}","kind":2,"startTimeUnixNano":"1700000000000000000",
        "endTimeUnixNano":"1700000000010000000"}}]}}]}}]}}"#
    );
    let response = app
        .request(reqwest::Method::POST, "/v1/traces")
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body)
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), StatusCode::OK);

    let (_, metrics) = app.get_text("/metrics").await;
    assert!(!metrics.contains("xxxxxxxxxx"), "the name is no label");
    assert!(
        metrics.contains("\naiops_request_series_folded_spans_total 1\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains("aiops_requests_total{service=\"_other\",endpoint=\"_other\"} 1\n"),
        "{metrics}"
    );
}

/// Sends `GET /healthz` on `stream` and reads one answer: its status line and body.
async fn healthz_on(stream: &mut TcpStream, port: u16) -> (String, String) {
    let request = format!("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("writes");
    let mut answer = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        let read = tokio::time::timeout(Duration::from_secs(60), stream.read(&mut buffer))
            .await
            .expect("the server answers")
            .expect("reads");
        answer.extend_from_slice(&buffer[..read]);
        let text = String::from_utf8_lossy(&answer);
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length = head
                .lines()
                .find_map(|line| {
                    let (name, value) = line.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse::<usize>().ok())?
                })
                .unwrap_or(0);
            if body.len() >= length || read == 0 {
                return (head.to_owned(), body.to_owned());
            }
        } else if read == 0 {
            return (text.into_owned(), String::new());
        }
    }
}

#[tokio::test]
async fn a_connection_past_the_limit_is_answered_503_at_once_and_closed() {
    // Arrange: two connections at most, kept alive as long as the test needs them.
    let app = TestApp::spawn_with(|config| {
        config.http.max_connections = 2;
        config.http.keep_alive = LONG;
        config.http.request_head_timeout = LONG;
    })
    .await;

    // Act: open connections, each served one request and kept, until one is refused.
    let mut served = Vec::new();
    let (head, body, mut refused) = loop {
        let mut stream = TcpStream::connect(("127.0.0.1", app.port))
            .await
            .expect("connects");
        let (head, body) = healthz_on(&mut stream, app.port).await;
        if head.starts_with("HTTP/1.1 200") {
            served.push(stream);
            assert!(served.len() <= 2, "more connections served than the limit");
        } else {
            break (head, body, stream);
        }
    };

    // Assert: 503 with Retry-After and a JSON error, and the connection closed.
    assert!(head.starts_with("HTTP/1.1 503"), "{head}");
    let lower = head.to_ascii_lowercase();
    assert!(lower.contains("retry-after: 1"), "{head}");
    assert!(lower.contains("connection: close"), "{head}");
    let error: serde_json::Value = serde_json::from_str(&body).expect("a JSON body");
    assert!(
        error["error"]
            .as_str()
            .is_some_and(|text| text.contains("maximum of 2 connections")),
        "{error}"
    );
    let mut rest = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(60), refused.read_to_end(&mut rest))
        .await
        .expect("the server closes the refused connection");
    assert!(closed.is_ok());

    // Once a served connection closes, a new one is served again.
    served.clear();
    let mut attempts = 0;
    loop {
        let mut stream = TcpStream::connect(("127.0.0.1", app.port))
            .await
            .expect("connects");
        let (head, _) = healthz_on(&mut stream, app.port).await;
        if head.starts_with("HTTP/1.1 200") {
            break;
        }
        assert!(head.starts_with("HTTP/1.1 503"), "{head}");
        attempts += 1;
        assert!(
            attempts < 600,
            "the closed connections were never counted closed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_later_request_head_on_a_kept_alive_connection_is_held_to_the_timeout_too() {
    let app = app(SHORT, LONG).await;

    // A whole first request, then the start of a second one that never ends.
    let answer = exchange(
        &app,
        b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\nGET /healthz HTTP/1.1\r\nX-Slow: ",
    )
    .await;

    let second = answer
        .find("HTTP/1.1 408")
        .expect("the second head is answered 408");
    assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
    assert!(
        answer[second..].contains("did not arrive within 0.3 s"),
        "{answer}"
    );
}
