//! Logs, exceptions, span attributes and changes in: `POST /v1/logs` from the OpenTelemetry
//! SDK's log exporter beside its trace exporter, read back by trace; partial success and
//! refusals; `POST /aiops/changes` and deployments observed from span versions.

use std::io::Write;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aiops_e2e::TestApp;
use aiops_e2e::json_of;
use flate2::Compression;
use flate2::write::GzEncoder;
use opentelemetry::logs::{AnyValue, LogRecord as _, Logger as _, LoggerProvider as _, Severity};
use opentelemetry::trace::{Span as _, SpanKind, Tracer as _, TracerProvider as _};
use opentelemetry::{Context, KeyValue};
use opentelemetry_otlp::{Protocol, WithExportConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::logs::SdkLoggerProvider;
use opentelemetry_sdk::trace::SdkTracerProvider;
use reqwest::header::{CONTENT_ENCODING, CONTENT_TYPE, RETRY_AFTER};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

fn now_unix_nanos() -> u64 {
    let elapsed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970");
    u64::try_from(elapsed.as_nanos()).expect("fits")
}

fn resource() -> Resource {
    Resource::builder_empty()
        .with_service_name("pricing")
        .with_attribute(KeyValue::new("service.version", "1.4.2"))
        .with_attribute(KeyValue::new("host.name", "node-7"))
        .build()
}

/// One request to `pricing` as an instrumented service records it: a server span that throws
/// (an `exception` event, status left unset), an INFO line and an ERROR line logged inside it,
/// exported by the SDK's OTLP/HTTP protobuf exporters. Returns the trace and span ids.
fn serve_one_request(address: &str) -> (String, String) {
    let spans = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(format!("{address}/v1/traces"))
        .build()
        .expect("the span exporter builds");
    let logs = opentelemetry_otlp::LogExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(format!("{address}/v1/logs"))
        .build()
        .expect("the log exporter builds");
    let tracer_provider = SdkTracerProvider::builder()
        .with_resource(resource())
        .with_batch_exporter(spans)
        .build();
    let logger_provider = SdkLoggerProvider::builder()
        .with_resource(resource())
        .with_batch_exporter(logs)
        .build();
    let tracer = tracer_provider.tracer("pricing-http");
    let logger = logger_provider.logger("com.shop.Pricing");

    let mut span = tracer
        .span_builder("GET /price/{sku}")
        .with_kind(SpanKind::Server)
        .with_attributes([
            KeyValue::new("http.request.method", "GET"),
            KeyValue::new("http.route", "/price/{sku}"),
            KeyValue::new("http.request.header.cookie", "secret"),
        ])
        .start_with_context(&tracer, &Context::new());
    let context = span.span_context().clone();
    for (severity, text, body) in [
        (Severity::Info, "INFO", "looking up the price of sku 42"),
        (Severity::Error, "ERROR", "price lookup failed for sku 42"),
    ] {
        let mut record = logger.create_log_record();
        record.set_timestamp(SystemTime::now());
        record.set_severity_number(severity);
        record.set_severity_text(text);
        record.set_body(AnyValue::from(body.to_owned()));
        record.set_trace_context(
            context.trace_id(),
            context.span_id(),
            Some(context.trace_flags()),
        );
        if severity == Severity::Error {
            record.add_attribute("exception.type", "java.lang.NullPointerException");
        }
        logger.emit(record);
        std::thread::sleep(Duration::from_millis(2));
    }
    span.add_event(
        "exception",
        vec![
            KeyValue::new("exception.type", "java.lang.NullPointerException"),
            KeyValue::new("exception.message", "price is null"),
        ],
    );
    span.end();

    tracer_provider.force_flush().expect("spans exported");
    logger_provider.force_flush().expect("logs exported");
    tracer_provider.shutdown().expect("tracer shut down");
    logger_provider.shutdown().expect("logger shut down");
    (
        context.trace_id().to_string(),
        context.span_id().to_string(),
    )
}

#[tokio::test]
async fn logs_and_traces_from_the_opentelemetry_sdk_are_read_back_by_trace_id() {
    // Arrange
    let app = TestApp::spawn().await;
    let address = app.address.clone();

    // Act
    let (trace_id, span_id) = tokio::task::spawn_blocking(move || serve_one_request(&address))
        .await
        .expect("export task");

    // Assert: the records, oldest first, in their span.
    let (status, body) = app.get(&format!("/aiops/logs?trace_id={trace_id}")).await;
    assert_eq!(status, StatusCode::OK, "{body:#}");
    assert_eq!(body["count"], 2, "{body:#}");
    let logs = body["logs"].as_array().expect("a list");
    assert_eq!(logs[0]["severity"], "INFO");
    assert_eq!(logs[1]["severity"], "ERROR");
    assert_eq!(logs[1]["severity_number"], 17);
    assert_eq!(logs[1]["body"], "price lookup failed for sku 42");
    assert_eq!(logs[1]["service"], "pricing");
    assert_eq!(logs[1]["span_id"], span_id.as_str());
    assert_eq!(logs[1]["trace_id"], trace_id.as_str());
    assert_eq!(
        logs[1]["attributes"]["exception.type"],
        "java.lang.NullPointerException"
    );
    assert_eq!(logs[1]["attributes"]["service.version"], "1.4.2");
    assert_eq!(logs[1]["attributes"]["otel.scope.name"], "com.shop.Pricing");

    // The span failed through its exception and keeps the attributes that explain it.
    let (status, trace) = app.get(&format!("/aiops/traces/{trace_id}")).await;
    assert_eq!(status, StatusCode::OK, "{trace:#}");
    let root = &trace["roots"][0];
    assert_eq!(root["error"], true, "{trace:#}");
    assert_eq!(root["operation"], "GET /price/{sku}");
    let attributes = &root["attributes"];
    assert_eq!(
        attributes["exception.type"],
        "java.lang.NullPointerException"
    );
    assert_eq!(attributes["exception.message"], "price is null");
    assert_eq!(attributes["http.route"], "/price/{sku}");
    assert_eq!(attributes["host.name"], "node-7");
    assert_eq!(attributes["http.request.header.cookie"], Value::Null);

    // The console's trace page lists the trace's records under the waterfall.
    let (status, page) = app.get_text(&format!("/trace?id={trace_id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("price lookup failed for sku 42"), "{page}");
    assert!(page.contains("exception.type"), "{page}");

    // Counted in /metrics.
    let (_, metrics) = app.get_text("/metrics").await;
    assert!(
        metrics.contains("\naiops_log_records_accepted_total 2\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains("\naiops_log_records_written_total 2\n"),
        "{metrics}"
    );
}

async fn post_logs(
    app: &TestApp,
    content_type: &str,
    gzip: bool,
    body: &[u8],
) -> reqwest::Response {
    let mut request = app
        .request(Method::POST, "/v1/logs")
        .header(CONTENT_TYPE, content_type);
    let body = if gzip {
        request = request.header(CONTENT_ENCODING, "gzip");
        let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
        encoder.write_all(body).expect("compresses");
        encoder.finish().expect("finishes")
    } else {
        body.to_vec()
    };
    request.body(body).send().await.expect("request sent")
}

fn json_logs(records: &[Value]) -> Vec<u8> {
    serde_json::to_vec(&json!({"resourceLogs": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "cart"}}]},
        "scopeLogs": [{"logRecords": records}]
    }]}))
    .expect("serializes")
}

#[tokio::test]
async fn json_and_gzip_log_requests_get_partial_success_and_bad_ones_a_json_error() {
    let app = TestApp::spawn().await;
    let now = now_unix_nanos().to_string();
    let body = json_logs(&[
        json!({"timeUnixNano": now, "severityText": "warning", "body": {"stringValue": "slow"}}),
        json!({"body": {"stringValue": "no time"}}),
    ]);

    let response = post_logs(&app, "application/json", true, &body).await;
    let (status, answer) = json_of(response).await;
    assert_eq!(status, StatusCode::OK, "{answer:#}");
    assert_eq!(
        answer["partialSuccess"]["rejectedLogRecords"], 1,
        "{answer:#}"
    );
    let (_, listed) = app.get("/aiops/logs?service=cart&severity=warn").await;
    assert_eq!(listed["logs"][0]["body"], "slow", "{listed:#}");
    assert_eq!(listed["logs"][0]["severity"], "WARN");

    let refusals = [
        (
            "text/plain",
            &b"{}"[..],
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported content type",
        ),
        (
            "application/json",
            &b"[1]"[..],
            StatusCode::BAD_REQUEST,
            "ExportLogsServiceRequest",
        ),
        (
            "application/x-protobuf",
            &b"\xff\xff"[..],
            StatusCode::BAD_REQUEST,
            "protobuf",
        ),
    ];
    for (content_type, body, expected, words) in refusals {
        let (status, answer) = json_of(post_logs(&app, content_type, false, body).await).await;
        assert_eq!(status, expected, "{content_type}: {answer:#}");
        let error = answer["error"].as_str().expect("a JSON error");
        assert!(error.contains(words), "{error}");
    }
    for query in [
        "trace_id=xyz",
        "severity=loud",
        "limit=0",
        "since=yesterday",
        "colour=red",
    ] {
        let (status, answer) = app.get(&format!("/aiops/logs?{query}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {answer:#}");
        assert!(
            answer["error"]
                .as_str()
                .expect("error")
                .contains("accepted"),
            "{answer:#}"
        );
    }
    let (_, metrics) = app.get_text("/metrics").await;
    assert!(
        metrics.contains("\naiops_log_records_rejected_total 1\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains("aiops_log_ingest_refused_requests_total{reason=\"invalid\"} 2\n"),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_full_log_queue_refuses_whole_requests_with_429_and_the_retry_stores_them() {
    let app = TestApp::spawn_with(|config| config.storage.span_queue_capacity = 5).await;
    let other = rusqlite::Connection::open(&app.db_path).expect("opens a second connection");
    other
        .execute_batch("BEGIN EXCLUSIVE; CREATE TABLE held (x);")
        .expect("takes the write lock");
    let now = now_unix_nanos();
    let three = |offset: u64| {
        json_logs(
            &(0..3)
                .map(|i| json!({"timeUnixNano": (now + offset + i).to_string(), "body": {"stringValue": "x"}}))
                .collect::<Vec<_>>(),
        )
    };

    assert_eq!(
        post_logs(&app, "application/json", false, &three(0))
            .await
            .status(),
        StatusCode::OK
    );
    let refused = post_logs(&app, "application/json", false, &three(10)).await;
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(refused.headers().contains_key(RETRY_AFTER));
    let (_, body) = json_of(refused).await;
    assert!(
        body["error"]
            .as_str()
            .expect("error")
            .contains("nothing of this request was recorded"),
        "{body:#}"
    );

    other.execute_batch("ROLLBACK").expect("releases the lock");
    let mut attempts = 0;
    while post_logs(&app, "application/json", false, &three(10))
        .await
        .status()
        != StatusCode::OK
    {
        attempts += 1;
        assert!(attempts < 600, "the log queue never drained");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (_, listed) = app.get("/aiops/logs?service=cart").await;
    assert_eq!(listed["count"], 6, "{listed:#}");
}

#[tokio::test]
async fn reported_changes_are_listed_newest_first_and_new_span_versions_are_observed() {
    let app = TestApp::spawn_with(|config| config.http.api_token = Some("s3cret".into())).await;

    let (status, body) = json_of(
        app.client
            .post(format!("{}/aiops/changes", app.address))
            .json(&json!({"service": "payments", "kind": "deployment", "version": "1.4.2"}))
            .send()
            .await
            .expect("sent"),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body:#}");

    let report = |body: Value| {
        app.request(Method::POST, "/aiops/changes")
            .json(&body)
            .send()
    };
    let an_hour_ago = (chrono::Utc::now() - chrono::Duration::hours(1))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let (status, created) = json_of(
        report(
            json!({"service": "payments", "kind": "deployment", "version": "1.4.2",
                      "previous_version": "1.4.1", "time": an_hour_ago}),
        )
        .await
        .expect("sent"),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created:#}");
    assert_eq!(created["source"], "reported");
    assert_eq!(created["time"], an_hour_ago.replace('Z', ".000Z"));
    let (status, flag) = json_of(
        report(
            json!({"service": "cart", "kind": "feature_flag", "description": "new-checkout on",
                   "time": now_unix_nanos() - 2 * 3_600_000_000_000}),
        )
        .await
        .expect("sent"),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{flag:#}");
    for (bad, words) in [
        (
            json!({"service": "cart", "kind": "config"}),
            "neither version nor description",
        ),
        (
            json!({"service": "cart", "kind": "rollout", "version": "2"}),
            "accepted: deployment, config, feature_flag",
        ),
        (
            json!({"service": "", "kind": "config", "version": "2"}),
            "service is empty",
        ),
        (
            json!({"service": "cart", "kind": "config", "version": "2", "time": "soon"}),
            "accepted: RFC 3339",
        ),
        (
            json!({"service": "cart", "kind": "config", "version": "2", "colour": "red"}),
            "unknown field",
        ),
    ] {
        let (status, answer) = json_of(report(bad.clone()).await.expect("sent")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {answer:#}");
        assert!(
            answer["error"].as_str().expect("error").contains(words),
            "{answer:#}"
        );
    }

    // Spans of `inventory` at 2.0, then at 2.1: one observed deployment.
    let start = now_unix_nanos() - 1_000_000_000;
    for (offset, version) in [(0, "2.0"), (1, "2.0"), (2, "2.1")] {
        let request = json!({"resourceSpans": [{
            "resource": {"attributes": [
                {"key": "service.name", "value": {"stringValue": "inventory"}},
                {"key": "service.version", "value": {"stringValue": version}}]},
            "scopeSpans": [{"spans": [{
                "traceId": format!("{:032x}", offset + 1), "spanId": format!("{:016x}", offset + 1),
                "name": "GET /stock", "kind": 2,
                "startTimeUnixNano": (start + offset * 1_000_000).to_string(),
                "endTimeUnixNano": (start + offset * 1_000_000 + 500_000).to_string()}]}]}]});
        let response = app
            .request(Method::POST, "/v1/traces")
            .json(&request)
            .send()
            .await
            .expect("sent");
        assert_eq!(response.status(), StatusCode::OK);
    }

    let (status, listed) = app.get("/aiops/changes").await;
    assert_eq!(status, StatusCode::OK, "{listed:#}");
    let changes = listed["changes"].as_array().expect("a list");
    let summary: Vec<(&str, &str, &str)> = changes
        .iter()
        .map(|c| {
            (
                c["service"].as_str().unwrap_or(""),
                c["kind"].as_str().unwrap_or(""),
                c["source"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("inventory", "deployment", "observed"),
            ("payments", "deployment", "reported"),
            ("cart", "feature_flag", "reported"),
        ],
        "newest first: {listed:#}"
    );
    assert_eq!(changes[0]["previous_version"], "2.0");
    assert_eq!(changes[0]["version"], "2.1");
    let (_, payments) = app.get("/aiops/changes?service=payments&limit=5").await;
    assert_eq!(payments["count"], 1, "{payments:#}");
    let (status, _) = app.get("/aiops/changes?limit=5000").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}
