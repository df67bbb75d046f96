//! Back-pressure instead of loss: OTLP requests the span queue cannot take are refused whole
//! with 429 and `Retry-After`, and every span acknowledged with 200 reaches the database.

use std::time::Duration;

use aiops_e2e::otlp_system::{ShopSystem, to_request};
use aiops_e2e::{TestApp, json_of};
use aiops_storage_sqlite::{Store, StoreConfig};
use aiops_telemetry_core::otlp::{RESOURCE_EXHAUSTED, Status};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;
use reqwest::header::{CONTENT_TYPE, RETRY_AFTER};
use reqwest::{Method, StatusCode};

/// `checkouts` traces of the shop system as one request, and how many spans it holds.
fn request_of(system: &mut ShopSystem, checkouts: u64) -> (ExportTraceServiceRequest, usize) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_nanos() as u64;
    let start = now - 2_000_000_000;
    let traces: Vec<_> = (0..checkouts)
        .map(|index| system.checkout(start + index * 1_000_000, None))
        .collect();
    let spans = traces.iter().map(Vec::len).sum();
    (to_request(traces.iter().map(Vec::as_slice)), spans)
}

async fn post(app: &TestApp, request: &ExportTraceServiceRequest) -> reqwest::Response {
    app.request(Method::POST, "/v1/traces")
        .header(CONTENT_TYPE, "application/x-protobuf")
        .body(request.encode_to_vec())
        .send()
        .await
        .expect("request sent")
}

/// Stops the server and counts the spans in its database.
async fn stored_spans(app: TestApp) -> u64 {
    let path = app.db_path.clone();
    let (_config, _dir) = app.stop().await;
    tokio::task::spawn_blocking(move || {
        Store::open(StoreConfig::new(path))
            .expect("reopens")
            .span_count()
            .expect("counts")
    })
    .await
    .expect("count task")
}

/// Another process's connection holding the database's write lock until dropped.
fn lock_database(path: &std::path::Path) -> rusqlite::Connection {
    let other = rusqlite::Connection::open(path).expect("opens a second connection");
    other
        .execute_batch("BEGIN EXCLUSIVE; CREATE TABLE held (x);")
        .expect("takes the write lock");
    other
}

#[tokio::test]
async fn a_full_span_queue_refuses_whole_requests_with_429_and_the_retry_stores_them() {
    let mut system = ShopSystem::new(3);
    let requests: Vec<_> = (0..3).map(|_| request_of(&mut system, 2)).collect();
    let per_request = requests[0].1;
    // Room for two requests, not three.
    let app = TestApp::spawn_with(|config| {
        config.storage.span_queue_capacity = 2 * per_request + 1;
    })
    .await;
    let lock = lock_database(&app.db_path);

    // The writer cannot commit while the lock is held, so the queue fills.
    for (request, _) in &requests[..2] {
        assert_eq!(post(&app, request).await.status(), StatusCode::OK);
    }
    let refused = post(&app, &requests[2].0).await;
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry_after: u64 = refused.headers()[RETRY_AFTER]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("seconds");
    assert!(retry_after >= 1);
    // A protobuf request gets the google.rpc.Status OTLP/HTTP specifies, in protobuf.
    assert_eq!(refused.headers()[CONTENT_TYPE], "application/x-protobuf");
    let status = Status::decode(refused.bytes().await.expect("a body")).expect("a Status");
    assert_eq!(status.code, RESOURCE_EXHAUSTED);
    assert!(
        status
            .message
            .contains("nothing of this request was recorded"),
        "{}",
        status.message
    );
    assert_eq!(status.retry_delay(), Some(Duration::from_secs(retry_after)));
    // A JSON request gets the JSON error, with the same status's members beside `error`.
    let refused = app
        .request(Method::POST, "/v1/traces")
        .header(CONTENT_TYPE, "application/json")
        .body(serde_json::to_vec(&requests[2].0).expect("OTLP JSON"))
        .send()
        .await
        .expect("request sent");
    let (code, body) = json_of(refused).await;
    assert_eq!(code, StatusCode::TOO_MANY_REQUESTS);
    let message = body["error"].as_str().expect("a JSON error");
    assert!(
        message.contains("nothing of this request was recorded"),
        "{message}"
    );
    assert_eq!(body["retry_after_seconds"], retry_after);
    assert_eq!(body["code"], RESOURCE_EXHAUSTED);
    assert_eq!(body["message"], message);
    assert_eq!(
        body["details"][0]["@type"],
        "type.googleapis.com/google.rpc.RetryInfo"
    );
    assert_eq!(body["details"][0]["retryDelay"], format!("{retry_after}s"));

    // The lock goes; the exporter's retry is taken once the writer has caught up.
    lock.execute_batch("ROLLBACK").expect("releases the lock");
    let mut attempts = 0;
    loop {
        let status = post(&app, &requests[2].0).await.status();
        if status == StatusCode::OK {
            break;
        }
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
        attempts += 1;
        assert!(attempts < 600, "the queue never drained");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let (_, metrics) = app.get_text("/metrics").await;
    assert!(
        metrics.contains("aiops_ingest_refused_requests_total{reason=\"queue_full\"} "),
        "{metrics}"
    );
    assert!(
        metrics.contains("aiops_spans_dropped_total 0\n"),
        "{metrics}"
    );
    assert_eq!(stored_spans(app).await, 3 * per_request as u64);
}

#[tokio::test]
async fn a_request_larger_than_the_whole_queue_is_stored_whole() {
    let mut system = ShopSystem::new(4);
    let (request, spans) = request_of(&mut system, 6);
    let app = TestApp::spawn_with(|config| {
        config.storage.span_queue_capacity = spans / 3;
    })
    .await;

    assert_eq!(post(&app, &request).await.status(), StatusCode::OK);
    assert_eq!(stored_spans(app).await, spans as u64);
}
