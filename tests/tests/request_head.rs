//! Request heads over the HTTP parser's limits get the JSON error every other refusal has: a
//! request target over 65,533 bytes is answered 414, more than 96 header fields or a head over
//! 131,071 bytes 431, each naming its limit, and the connection closed; requests within the
//! limits, before or after long bodies on the same connection, are served as ever.

use std::time::Duration;

use aiops_e2e::TestApp;
use reqwest::StatusCode;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The parser's limits, as the errors name them.
const MAX_TARGET_BYTES: usize = 65_533;
const MAX_HEADERS: usize = 96;
const MAX_HEAD_BYTES: usize = 131_071;

/// Sends `bytes` on a new connection (and sends nothing more, however long the server waits);
/// everything the server sends until it closes the connection. The 60 s bound only keeps a
/// broken server from hanging the test.
pub(crate) async fn exchange(app: &TestApp, bytes: &[u8]) -> String {
    let mut stream = TcpStream::connect(("127.0.0.1", app.port))
        .await
        .expect("connects");
    stream.write_all(bytes).await.expect("writes");
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(60), stream.read_to_end(&mut answer))
        .await
        .expect("the server closes the connection")
        .expect("reads");
    String::from_utf8_lossy(&answer).into_owned()
}

/// The status line and the JSON body of the last response in `answer`.
fn last_response(answer: &str) -> (String, Value) {
    let start = answer.rfind("HTTP/1.1 ").expect("a response");
    let response = &answer[start..];
    let (head, body) = response.split_once("\r\n\r\n").expect("a head");
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: application/json"),
        "{head}"
    );
    let status = head.lines().next().expect("a status line").to_owned();
    (status, serde_json::from_str(body).expect("a JSON body"))
}

fn get(target: &str, headers: &str) -> String {
    format!("GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\n{headers}\r\n")
}

/// `/healthz?pad=aaa...`, `length` bytes long.
fn target_of(length: usize) -> String {
    let prefix = "/healthz?pad=";
    format!("{prefix}{}", "a".repeat(length - prefix.len()))
}

#[tokio::test]
async fn a_query_of_100_kb_is_answered_414_in_json() {
    let app = TestApp::spawn().await;
    // (HTTP client libraries refuse to send such a URL; a raw request does.)
    let target = format!("/aiops/incidents?status={}", "a".repeat(100_000));
    let answer = exchange(&app, get(&target, "").as_bytes()).await;
    let (status, body) = last_response(&answer);
    assert_eq!(status, "HTTP/1.1 414 URI Too Long");
    assert_eq!(body["limit_bytes"], MAX_TARGET_BYTES);
    let error = body["error"].as_str().expect("an error");
    assert!(error.contains("accepted: at most 65533 bytes"), "{error}");

    // The server goes on serving.
    let (status, _) = app.get("/healthz").await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn a_target_at_the_limit_reaches_the_route_and_one_byte_more_is_refused() {
    let app = TestApp::spawn().await;
    let answer = exchange(
        &app,
        get(&target_of(MAX_TARGET_BYTES), "Connection: close\r\n").as_bytes(),
    )
    .await;
    let (status, body) = last_response(&answer);
    // The route itself answers (its own refusal of the unknown parameter, or the health).
    assert!(!status.contains("414"), "{status} {body}");
    assert!(body.is_object(), "{body}");

    let answer = exchange(&app, get(&target_of(MAX_TARGET_BYTES + 1), "").as_bytes()).await;
    let (status, body) = last_response(&answer);
    assert_eq!(status, "HTTP/1.1 414 URI Too Long");
    assert_eq!(body["limit_bytes"], MAX_TARGET_BYTES);
}

#[tokio::test]
async fn too_many_header_fields_or_too_large_a_head_are_answered_431_in_json() {
    let app = TestApp::spawn().await;
    let many: String = (0..MAX_HEADERS)
        .map(|index| format!("x-field-{index}: v\r\n"))
        .collect();
    let answer = exchange(&app, get("/healthz", &many).as_bytes()).await;
    let (status, body) = last_response(&answer);
    assert_eq!(status, "HTTP/1.1 431 Request Header Fields Too Large");
    assert_eq!(body["max_headers"], MAX_HEADERS);
    assert!(
        body["error"]
            .as_str()
            .expect("an error")
            .contains("accepted: at most 96"),
        "{body}"
    );

    let large = format!("x-large: {}\r\n", "v".repeat(MAX_HEAD_BYTES));
    let answer = exchange(&app, get("/healthz", &large).as_bytes()).await;
    let (status, body) = last_response(&answer);
    assert_eq!(status, "HTTP/1.1 431 Request Header Fields Too Large");
    assert_eq!(body["limit_bytes"], MAX_HEAD_BYTES);
}

#[tokio::test]
async fn requests_after_long_bodies_on_one_connection_are_served_and_refused_in_order() {
    let app = TestApp::spawn().await;
    // An OTLP JSON export whose body is longer than any head limit, on one line, then a
    // health check, then a request over the target limit, all on one kept-alive connection.
    let name = "n".repeat(2 * MAX_HEAD_BYTES);
    let export = format!(
        r#"{{"resourceSpans":[{{"scopeSpans":[{{"spans":[{{"traceId":"4bf92f3577b34da6a3ce929d0e0e4736","spanId":"00f067aa0ba902b7","name":"{name}","kind":2,"startTimeUnixNano":"1700000000000000000","endTimeUnixNano":"1700000000010000000"}}]}}]}}]}}"#
    );
    let mut stream = format!(
        "POST /v1/traces HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{export}",
        export.len()
    );
    stream.push_str(&get("/healthz", ""));
    stream.push_str(&get(&target_of(MAX_TARGET_BYTES + 1), ""));
    let answer = exchange(&app, stream.as_bytes()).await;
    let statuses: Vec<&str> = answer
        .match_indices("HTTP/1.1 ")
        .map(|(at, _)| &answer[at..at + 12])
        .collect();
    assert_eq!(
        statuses,
        ["HTTP/1.1 200", "HTTP/1.1 200", "HTTP/1.1 414"],
        "{answer}"
    );
    let (_, body) = last_response(&answer);
    assert_eq!(body["limit_bytes"], MAX_TARGET_BYTES);
}
