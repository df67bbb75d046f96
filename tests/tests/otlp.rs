//! OTLP/HTTP ingest (`POST /v1/traces`): a real OpenTelemetry SDK exporting a multi-service
//! system, JSON and gzip bodies, partial success, and every way a body can be refused.

use std::collections::HashMap;
use std::io::Write;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aiops_e2e::otlp_system::{AttributeValue, Fault, SERVICES, ShopSystem, SimSpan, to_request};
use aiops_e2e::{TestApp, affected, json_of};
use flate2::Compression;
use flate2::write::GzEncoder;
use opentelemetry::trace::{
    Span as _, SpanBuilder, SpanContext, SpanKind, Status, TraceContextExt, TracerProvider as _,
};
use opentelemetry::{Context, KeyValue};
use opentelemetry_otlp::{Protocol, WithExportConfig};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::trace::v1::span::SpanKind as OtlpKind;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;
use prost::Message;
use reqwest::header::{CONTENT_ENCODING, CONTENT_TYPE};
use reqwest::{Method, StatusCode};
use serde_json::Value;

const PROTOBUF: &str = "application/x-protobuf";
const JSON: &str = "application/json";

fn now_unix_nanos() -> u64 {
    let elapsed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970");
    u64::try_from(elapsed.as_nanos()).expect("fits")
}

fn system_time(unix_nanos: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_nanos(unix_nanos)
}

/// `count` checkouts, 20 ms apart from `start`, with `fault` in force.
fn checkouts(
    system: &mut ShopSystem,
    start: u64,
    count: u64,
    fault: Option<Fault>,
) -> Vec<Vec<SimSpan>> {
    (0..count)
        .map(|index| system.checkout(start + index * 20_000_000, fault))
        .collect()
}

/// Sends `traces` the way instrumented services would: one OpenTelemetry SDK tracer provider
/// per service, each with the OTLP/HTTP protobuf exporter and a batch processor.
fn export_with_sdk(endpoint: &str, traces: &[Vec<SimSpan>]) {
    let providers: HashMap<&str, SdkTracerProvider> = SERVICES
        .iter()
        .map(|service| {
            let exporter = opentelemetry_otlp::SpanExporter::builder()
                .with_http()
                .with_protocol(Protocol::HttpBinary)
                .with_endpoint(endpoint)
                .build()
                .expect("the OTLP exporter builds");
            let provider = SdkTracerProvider::builder()
                .with_resource(
                    Resource::builder_empty()
                        .with_service_name(*service)
                        .with_attribute(KeyValue::new("service.version", "1.4.2"))
                        .build(),
                )
                .with_batch_exporter(exporter)
                .build();
            (*service, provider)
        })
        .collect();
    for trace in traces {
        // Parents come before their children in a generated trace.
        let mut contexts: Vec<Option<SpanContext>> = vec![None; trace.len()];
        for (index, sim) in trace.iter().enumerate() {
            let tracer = providers[sim.service].tracer("shop-sim");
            let parent = match sim.parent.and_then(|parent| contexts[parent].clone()) {
                Some(context) => Context::new().with_remote_span_context(context),
                None => Context::new(),
            };
            let mut span = SpanBuilder::from_name(sim.name.clone())
                .with_kind(sdk_kind(sim.kind))
                .with_start_time(system_time(sim.start_unix_nanos))
                .with_attributes(sim.attributes.iter().map(|(key, value)| match value {
                    AttributeValue::Text(text) => KeyValue::new(*key, text.clone()),
                    AttributeValue::Int(number) => KeyValue::new(*key, *number),
                }))
                .start_with_context(&tracer, &parent);
            if let Some(message) = &sim.error {
                span.set_status(Status::error(message.clone()));
            }
            contexts[index] = Some(span.span_context().clone());
            span.end_with_timestamp(system_time(sim.end_unix_nanos));
        }
    }
    for provider in providers.values() {
        provider.force_flush().expect("spans exported");
        provider.shutdown().expect("provider shut down");
    }
}

fn sdk_kind(kind: OtlpKind) -> SpanKind {
    match kind {
        OtlpKind::Server => SpanKind::Server,
        OtlpKind::Client => SpanKind::Client,
        OtlpKind::Producer => SpanKind::Producer,
        OtlpKind::Consumer => SpanKind::Consumer,
        OtlpKind::Internal | OtlpKind::Unspecified => SpanKind::Internal,
    }
}

async fn export(app: &TestApp, traces: Vec<Vec<SimSpan>>) {
    let endpoint = format!("{}/v1/traces", app.address);
    tokio::task::spawn_blocking(move || export_with_sdk(&endpoint, &traces))
        .await
        .expect("export task");
}

async fn post_traces(
    app: &TestApp,
    content_type: &str,
    encoding: Option<&str>,
    body: Vec<u8>,
) -> reqwest::Response {
    let mut request = app
        .request(Method::POST, "/v1/traces")
        .header(CONTENT_TYPE, content_type);
    if let Some(encoding) = encoding {
        request = request.header(CONTENT_ENCODING, encoding);
    }
    request.body(body).send().await.expect("request sent")
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
    encoder.write_all(bytes).expect("compresses");
    encoder.finish().expect("finishes")
}

fn one_checkout() -> ExportTraceServiceRequest {
    let trace = ShopSystem::new(1).checkout(now_unix_nanos() - 1_000_000_000, None);
    to_request([trace.as_slice()])
}

fn error_of(body: &Value) -> &str {
    body["error"].as_str().unwrap_or_default()
}

#[tokio::test]
async fn a_slow_service_seen_through_the_opentelemetry_sdk_is_one_incident_rooted_there() {
    // Arrange: healthy traffic of the three services, exported by the OpenTelemetry SDK.
    let app = TestApp::spawn().await;
    let mut system = ShopSystem::new(42);
    let start = now_unix_nanos() - 3_000_000_000;
    export(&app, checkouts(&mut system, start, 40, None)).await;
    let learned = app.analyze().await;
    assert_eq!(learned["anomalies"], Value::Array(vec![]), "{learned:#}");

    // Act: payments becomes 800 ms slower.
    let fault = Fault::Latency {
        service: "payments",
        extra_ms: 800,
    };
    export(
        &app,
        checkouts(&mut system, now_unix_nanos(), 40, Some(fault)),
    )
    .await;
    let report = app.analyze().await;

    // Assert
    let incidents = app.active_incidents().await;
    assert_eq!(incidents.len(), 1, "one incident: {report:#}");
    let incident = &incidents[0];
    let cause = &incident["root_cause"];
    assert_eq!(cause["service"], "payments", "{incident:#}");
    assert_eq!(cause["endpoint"], "payments POST /charge", "{incident:#}");
    assert_eq!(cause["kind"], "latency_spike", "{incident:#}");
    assert!(
        affected(incident).contains(&"frontend POST /checkout".to_owned()),
        "{incident:#}"
    );
    let metrics = app.metrics().await;
    assert_eq!(
        metrics["metrics"]["inventory GET /stock/{sku}"]["health"]["status"], "healthy",
        "{metrics:#}"
    );
}

#[tokio::test]
async fn json_requests_are_recorded_and_answered_in_json() {
    // Arrange
    let app = TestApp::spawn().await;
    let body = serde_json::to_vec(&one_checkout()).expect("serializes");

    // Act
    let response = post_traces(&app, "application/json; charset=utf-8", None, body).await;

    // Assert
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()[CONTENT_TYPE], JSON);
    let (_, answer) = json_of(response).await;
    assert_eq!(
        answer,
        serde_json::json!({}),
        "full success is an empty response"
    );
    assert_eq!(app.metrics().await["spans"]["ingested"], 6);
}

#[tokio::test]
async fn gzip_protobuf_requests_are_recorded_and_answered_in_protobuf() {
    // Arrange
    let app = TestApp::spawn().await;
    let body = gzip(&one_checkout().encode_to_vec());

    // Act
    let response = post_traces(&app, PROTOBUF, Some("gzip"), body).await;

    // Assert
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()[CONTENT_TYPE], PROTOBUF);
    let bytes = response.bytes().await.expect("body");
    let answer = ExportTraceServiceResponse::decode(bytes).expect("an OTLP response");
    assert_eq!(answer.partial_success, None);
    assert_eq!(app.metrics().await["spans"]["ingested"], 6);
}

#[tokio::test]
async fn unusable_spans_are_rejected_as_a_partial_success() {
    // Arrange: one good checkout, plus a span with an all-zero trace id.
    let app = TestApp::spawn().await;
    let mut request = one_checkout();
    let mut bad = request.resource_spans[0].scope_spans[0].spans[0].clone();
    bad.trace_id = vec![0; 16];
    bad.name = "zero trace id".into();
    request.resource_spans[0].scope_spans[0].spans.push(bad);

    // Act
    let response = post_traces(
        &app,
        JSON,
        None,
        serde_json::to_vec(&request).expect("JSON"),
    )
    .await;

    // Assert
    let (status, answer) = json_of(response).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(answer["partialSuccess"]["rejectedSpans"], 1, "{answer}");
    let message = answer["partialSuccess"]["errorMessage"]
        .as_str()
        .unwrap_or_default();
    assert!(message.contains("invalid trace id: all zeros"), "{message}");
    assert_eq!(app.metrics().await["spans"]["ingested"], 6);
}

#[tokio::test]
async fn malformed_bodies_are_400_with_a_reason() {
    let app = TestApp::spawn().await;
    let cases: [(&str, Vec<u8>, &str); 4] = [
        (PROTOBUF, b"\xff\xff\xff\xff".to_vec(), "invalid protobuf"),
        (JSON, b"{\"resourceSpans\": [".to_vec(), "invalid JSON"),
        (
            JSON,
            br#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"kind":"SPAN_KIND_SERVER"}]}]}]}"#
                .to_vec(),
            "integer enums",
        ),
        (JSON, b"not json".to_vec(), "invalid JSON"),
    ];
    for (content_type, body, expected) in cases {
        let (status, answer) = json_of(post_traces(&app, content_type, None, body).await).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
        assert!(error_of(&answer).contains(expected), "{answer}");
    }
    let (status, answer) =
        json_of(post_traces(&app, PROTOBUF, Some("gzip"), b"not gzip".to_vec()).await).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert!(error_of(&answer).contains("invalid gzip"), "{answer}");
}

#[tokio::test]
async fn a_request_without_spans_is_a_full_success_that_records_nothing() {
    let app = TestApp::spawn().await;
    for (content_type, body) in [
        (JSON, b"{}".to_vec()),
        (JSON, br#"{"resourceSpans":[]}"#.to_vec()),
        (JSON, br#"{"resourceSpans":[{}]}"#.to_vec()),
    ] {
        let (status, answer) = json_of(post_traces(&app, content_type, None, body).await).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        assert_eq!(answer, serde_json::json!({}), "full success");
    }
    let response = post_traces(&app, PROTOBUF, None, Vec::new()).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(app.metrics().await["spans"]["ingested"], 0);
}

#[tokio::test]
async fn unsupported_content_types_and_encodings_are_415() {
    let app = TestApp::spawn().await;
    let (status, answer) =
        json_of(post_traces(&app, "text/plain", None, b"x".to_vec()).await).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(
        answer["accepted_content_types"],
        serde_json::json!([PROTOBUF, JSON])
    );
    let (status, answer) = json_of(post_traces(&app, JSON, Some("br"), b"x".to_vec()).await).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(
        error_of(&answer).contains("accepted: gzip, identity"),
        "{answer}"
    );
    let (status, _) = app.post("/v1/traces").await;
    assert_eq!(
        status,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "no content type at all"
    );
}

#[tokio::test]
async fn bodies_over_either_limit_are_413() {
    // Arrange: small limits, well above one checkout.
    let app = TestApp::spawn_with(|config| {
        config.http.otlp_max_body_bytes = 16 * 1024;
        config.http.otlp_max_decompressed_bytes = 64 * 1024;
    })
    .await;

    // Act + Assert: too large as sent.
    let (status, answer) =
        json_of(post_traces(&app, PROTOBUF, None, vec![0; 32 * 1024]).await).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{answer}");
    assert_eq!(answer["limit_bytes"], 16 * 1024);

    // Act + Assert: small as sent, too large once decompressed.
    let bomb = gzip(&vec![0; 1024 * 1024]);
    assert!(bomb.len() < 16 * 1024);
    let (status, answer) = json_of(post_traces(&app, PROTOBUF, Some("gzip"), bomb).await).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{answer}");
    assert!(error_of(&answer).contains("once decompressed"), "{answer}");
    assert_eq!(answer["limit_bytes"], 64 * 1024);

    // A body over the general API limit but within the OTLP limit is read.
    let traces = checkouts(
        &mut ShopSystem::new(3),
        now_unix_nanos() - 2_000_000_000,
        10,
        None,
    );
    let body = to_request(traces.iter().map(Vec::as_slice)).encode_to_vec();
    assert!(body.len() > aiops_e2e::TEST_MAX_BODY_BYTES && body.len() < 16 * 1024);
    let response = post_traces(&app, PROTOBUF, None, body).await;
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn otlp_ingest_needs_the_token_when_one_is_configured() {
    let app = TestApp::spawn_with(|config| config.http.api_token = Some("s3cret".into())).await;
    let body = serde_json::to_vec(&one_checkout()).expect("JSON");
    let response = app
        .client
        .post(format!("{}/v1/traces", app.address))
        .header(CONTENT_TYPE, JSON)
        .body(body.clone())
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let (status, _) = json_of(post_traces(&app, JSON, None, body).await).await;
    assert_eq!(status, StatusCode::OK, "the test client sends the token");
}

#[tokio::test]
async fn only_post_is_served_on_the_ingest_route() {
    let app = TestApp::spawn().await;
    let (status, answer) = app.get("/v1/traces").await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(answer["allowed_methods"], serde_json::json!(["POST"]));
}
