//! The OTLP-to-span mapping, specified by example.

use aiops_telemetry_core::otlp::testing::{
    OtlpRequestBuilder, OtlpSpanBuilder, int_attribute, string_attribute,
};
use aiops_telemetry_core::otlp::{
    ExportTraceServiceRequest, ExportTraceServiceResponse, MAX_REJECTION_REASONS, OtlpDecodeError,
    OtlpSpans, UNKNOWN_SERVICE, decode_json, decode_protobuf, encode_json_response,
    encode_protobuf_response, spans_from_request,
};
use aiops_telemetry_core::{SpanId, SpanKind, SpanStatus, TraceId};
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind as OtlpKind;
use opentelemetry_proto::tonic::trace::v1::status::StatusCode;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, Span as OtlpSpan, Status};
use prost::Message;

const START: u64 = 1_700_000_000_000_000_000;
const TRACE: [u8; 16] = [0x4b; 16];

fn fixture() -> ExportTraceServiceRequest {
    let body = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/otlp-traces.json"
    ))
    .expect("fixture exists");
    decode_json(&body).expect("fixture is valid OTLP JSON")
}

fn otlp_span(span_id: u8, name: &str, kind: OtlpKind) -> OtlpSpan {
    OtlpSpanBuilder::new(name, kind)
        .trace_id(&TRACE)
        .span_id(&[span_id; 8])
        .timing(START, START + 30_000_000)
        .build()
}

fn request(resource: Vec<KeyValue>, spans: Vec<OtlpSpan>) -> ExportTraceServiceRequest {
    OtlpRequestBuilder::new()
        .resource(resource)
        .spans(spans)
        .build()
}

fn shop(spans: Vec<OtlpSpan>) -> ExportTraceServiceRequest {
    request(vec![string_attribute("service.name", "shop")], spans)
}

fn map_one(span: OtlpSpan) -> OtlpSpans {
    spans_from_request(&shop(vec![span]))
}

#[test]
fn json_fixture_maps_services_operations_kinds_and_errors() {
    let mapped = spans_from_request(&fixture());

    let summary: Vec<_> = mapped
        .spans
        .iter()
        .map(|span| (&*span.service, &*span.operation, span.kind, span.is_error()))
        .collect();
    assert_eq!(
        summary,
        vec![
            ("frontend", "POST /checkout", SpanKind::Server, true),
            ("frontend", "POST", SpanKind::Client, true),
            ("payments", "POST /charge", SpanKind::Server, true),
            ("payments", "SELECT accounts", SpanKind::Internal, false),
            (UNKNOWN_SERVICE, "GET", SpanKind::Server, false),
        ]
    );
}

#[test]
fn json_fixture_keeps_ids_timing_status_and_version() {
    let mapped = spans_from_request(&fixture());
    let [checkout, call, charge, query, get] = &mapped.spans[..] else {
        panic!("expected five spans, got {:?}", mapped.spans);
    };

    let trace: TraceId = "5b8efff798038103d269b633813fc60c".parse().expect("hex");
    assert!(
        [checkout, call, charge, query]
            .iter()
            .all(|s| s.trace_id == trace)
    );
    assert_eq!(checkout.parent_span_id, None);
    assert_eq!(call.parent_span_id, Some(checkout.span_id));
    assert_eq!(charge.parent_span_id, Some(call.span_id));
    assert_eq!(
        checkout.span_id,
        SpanId::from_hex("eee19b7ec3c1b174").expect("hex")
    );
    assert_eq!(checkout.start_unix_nanos, START);
    assert_eq!(checkout.duration_ms(), 250.0);
    assert_eq!(checkout.http_status, Some(502));
    assert_eq!(call.http_status, Some(502));
    assert_eq!(charge.http_status, Some(200));
    assert_eq!(charge.status, SpanStatus::Error);
    assert_eq!(get.status, SpanStatus::Ok);
    assert_eq!(checkout.attribute("service.version"), Some("2.4.1"));
    assert_eq!(
        checkout.attribute("host.name"),
        Some("web-1"),
        "where it ran explains faults"
    );
    assert_eq!(charge.attribute("service.version"), None);
}

#[test]
fn json_fixture_rejects_unusable_spans_with_reasons() {
    let mapped = spans_from_request(&fixture());

    assert_eq!(
        (mapped.spans.len(), mapped.rejected, mapped.total()),
        (5, 2, 7)
    );
    assert_eq!(
        mapped.errors,
        vec![
            "resource 1 span 2 (name \"zero trace id\"): invalid trace id: all zeros is not a valid id",
            "resource 1 span 3 (name \"ends before it starts\"): endTimeUnixNano 1700000000030000000 is before startTimeUnixNano 1700000000040000000",
        ]
    );
}

#[test]
fn partial_success_response_names_rejected_spans_in_both_encodings() {
    let response = spans_from_request(&fixture()).response();
    let partial = response.partial_success.clone().expect("partial success");
    assert_eq!(partial.rejected_spans, 2);
    assert!(partial.error_message.contains("zero trace id"));

    let json: serde_json::Value =
        serde_json::from_slice(&encode_json_response(&response)).expect("JSON");
    assert_eq!(json["partialSuccess"]["rejectedSpans"], 2);
    assert!(json["partialSuccess"]["errorMessage"].as_str().is_some());

    let decoded = ExportTraceServiceResponse::decode(&encode_protobuf_response(&response)[..])
        .expect("protobuf");
    assert_eq!(decoded, response);
}

#[test]
fn full_success_response_is_empty() {
    let mapped = map_one(otlp_span(1, "GET /", OtlpKind::Server));
    let response = mapped.response();
    assert_eq!(response.partial_success, None);
    assert_eq!(encode_json_response(&response), b"{}");
    assert!(encode_protobuf_response(&response).is_empty());
}

#[test]
fn server_operation_is_method_and_route_when_both_are_present() {
    let mut with_route = otlp_span(1, "GET", OtlpKind::Server);
    with_route.attributes = vec![
        string_attribute("http.request.method", "GET"),
        string_attribute("http.route", "/users/{id}"),
    ];
    let mut old_conventions = otlp_span(2, "GET", OtlpKind::Server);
    old_conventions.attributes = vec![
        string_attribute("http.method", "GET"),
        string_attribute("http.route", "/a"),
    ];
    let mut no_route = otlp_span(3, "GET /users/42", OtlpKind::Server);
    no_route.attributes = vec![string_attribute("http.request.method", "GET")];
    let mut client = otlp_span(4, "GET", OtlpKind::Client);
    client.attributes = vec![
        string_attribute("http.request.method", "GET"),
        string_attribute("http.route", "/x"),
    ];

    let mapped = spans_from_request(&shop(vec![with_route, old_conventions, no_route, client]));

    let operations: Vec<_> = mapped.spans.iter().map(|s| &*s.operation).collect();
    assert_eq!(
        operations,
        vec!["GET /users/{id}", "GET /a", "GET /users/42", "GET"]
    );
}

#[test]
fn spans_of_a_request_share_their_service_version_and_operation_text() {
    let routed = |span_id| {
        let mut span = otlp_span(span_id, "GET", OtlpKind::Server);
        span.attributes = vec![
            string_attribute("http.request.method", "GET"),
            string_attribute("http.route", "/users/{id}"),
        ];
        span
    };
    let request = request(
        vec![
            string_attribute("service.name", "shop"),
            string_attribute("service.version", "1.2.3"),
        ],
        vec![
            routed(1),
            otlp_span(2, "query", OtlpKind::Internal),
            routed(3),
            otlp_span(4, "query", OtlpKind::Internal),
        ],
    );

    let mapped = spans_from_request(&request);

    let [a, b, c, d] = &mapped.spans[..] else {
        panic!("expected four spans, got {:?}", mapped.spans);
    };
    let same = |x: &str, y: &str| x.as_ptr() == y.as_ptr() && x == y;
    assert!([b, c, d].iter().all(|s| same(&a.service, &s.service)));
    fn version(span: &aiops_telemetry_core::Span) -> &str {
        span.attribute("service.version").expect("kept")
    }
    assert!([b, c, d].iter().all(|s| same(version(a), version(s))));
    assert_eq!((&*a.operation, &*b.operation), ("GET /users/{id}", "query"));
    assert!(same(&a.operation, &c.operation));
    assert!(same(&b.operation, &d.operation));
}

#[test]
fn status_error_or_5xx_marks_an_error_and_4xx_does_not() {
    let mut server_error = otlp_span(1, "a", OtlpKind::Server);
    server_error.attributes = vec![int_attribute("http.response.status_code", 503)];
    let mut not_found = otlp_span(2, "b", OtlpKind::Server);
    not_found.attributes = vec![int_attribute("http.response.status_code", 404)];
    let mut status_error = otlp_span(3, "c", OtlpKind::Internal);
    status_error.status = Some(Status {
        code: StatusCode::Error as i32,
        message: "boom".into(),
    });
    let mut string_code = otlp_span(4, "d", OtlpKind::Server);
    string_code.attributes = vec![string_attribute("http.status_code", "500")];

    let mapped = spans_from_request(&shop(vec![
        server_error,
        not_found,
        status_error,
        string_code,
    ]));

    let errors: Vec<_> = mapped.spans.iter().map(|s| s.is_error()).collect();
    assert_eq!(errors, vec![true, false, true, true]);
    assert_eq!(mapped.spans[1].http_status, Some(404));
}

#[test]
fn missing_service_name_falls_back_to_unknown_service() {
    let bare = request(vec![], vec![otlp_span(1, "work", OtlpKind::Internal)]);
    let with_executable = request(
        vec![string_attribute("process.executable.name", "worker")],
        vec![otlp_span(1, "work", OtlpKind::Internal)],
    );
    let no_resource = ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: None,
            ..bare.resource_spans[0].clone()
        }],
    };

    assert_eq!(
        spans_from_request(&bare).spans[0].service,
        "unknown_service"
    );
    assert_eq!(
        spans_from_request(&with_executable).spans[0].service,
        "unknown_service:worker"
    );
    assert_eq!(
        spans_from_request(&no_resource).spans[0].service,
        "unknown_service"
    );
}

#[test]
fn unspecified_kind_is_internal() {
    let span = otlp_span(1, "work", OtlpKind::Unspecified);
    assert_eq!(map_one(span).spans[0].kind, SpanKind::Internal);
}

#[test]
fn unspecified_kind_naming_a_peer_service_or_database_is_a_client() {
    let query = OtlpSpanBuilder::new("SELECT orders", OtlpKind::Unspecified)
        .trace_id(&TRACE)
        .span_id(&[1; 8])
        .timing(START, START + 3_000_000)
        .attribute(string_attribute("db.system", "postgresql"))
        .build();
    assert_eq!(map_one(query).spans[0].kind, SpanKind::Client);
}

#[test]
fn client_spans_keep_the_attributes_that_name_their_peer_and_nothing_else() {
    let long_host = "h".repeat(1_000);
    let call = OtlpSpanBuilder::new("GET", OtlpKind::Client)
        .trace_id(&TRACE)
        .span_id(&[1; 8])
        .timing(START, START + 3_000_000)
        .attribute(string_attribute("peer.service", "currency"))
        .attribute(string_attribute("server.address", &long_host))
        .attribute(string_attribute("http.request.header.cookie", "secret"))
        .build();
    let served = OtlpSpanBuilder::new("GET", OtlpKind::Server)
        .trace_id(&TRACE)
        .span_id(&[2; 8])
        .timing(START, START + 3_000_000)
        .attribute(string_attribute("server.address", "shop"))
        .build();

    let mapped = spans_from_request(&shop(vec![call, served]));

    let client = &mapped.spans[0];
    assert_eq!(client.attribute("peer.service"), Some("currency"));
    assert_eq!(client.attribute("server.address").map(str::len), Some(256));
    assert_eq!(client.attribute("http.request.header.cookie"), None);
    assert_eq!(
        mapped.spans[1].attribute("server.address"),
        None,
        "a server's own address"
    );
}

#[test]
fn ids_of_the_wrong_length_or_all_zeros_are_rejected() {
    let mut short_trace = otlp_span(1, "a", OtlpKind::Server);
    short_trace.trace_id = vec![1; 15];
    let mut zero_span = otlp_span(2, "b", OtlpKind::Server);
    zero_span.span_id = vec![0; 8];
    let mut bad_parent = otlp_span(3, "c", OtlpKind::Server);
    bad_parent.parent_span_id = vec![1; 3];

    let mapped = spans_from_request(&shop(vec![short_trace, zero_span, bad_parent]));

    assert!(mapped.spans.is_empty());
    assert_eq!(mapped.rejected, 3);
    assert_eq!(
        mapped.errors,
        vec![
            "resource 0 span 0 (name \"a\"): invalid trace id: expected 32 lowercase hex digits, got 30",
            "resource 0 span 1 (name \"b\"): invalid span id: all zeros is not a valid id",
            "resource 0 span 2 (name \"c\"): parent invalid span id: expected 16 lowercase hex digits, got 6",
        ]
    );
}

#[test]
fn an_all_zero_parent_means_a_root_span() {
    let mut root = otlp_span(1, "a", OtlpKind::Server);
    root.parent_span_id = vec![0; 8];
    assert_eq!(map_one(root).spans[0].parent_span_id, None);
}

#[test]
fn spans_without_a_start_or_a_name_are_rejected() {
    let mut no_start = otlp_span(1, "a", OtlpKind::Server);
    no_start.start_time_unix_nano = 0;
    let no_name = otlp_span(2, "", OtlpKind::Internal);

    let mapped = spans_from_request(&shop(vec![no_start, no_name]));

    assert_eq!(mapped.rejected, 2);
    assert!(mapped.errors[0].ends_with("startTimeUnixNano is missing or zero"));
    assert!(mapped.errors[1].ends_with("span has no name"));
}

#[test]
fn a_zero_duration_span_is_kept() {
    let mut instant = otlp_span(1, "a", OtlpKind::Server);
    instant.end_time_unix_nano = instant.start_time_unix_nano;
    assert_eq!(map_one(instant).spans[0].duration_nanos, 0);
}

#[test]
fn rejection_reasons_are_capped_but_counted() {
    let spans = (0..MAX_REJECTION_REASONS + 5)
        .map(|_| {
            let mut span = otlp_span(1, "bad", OtlpKind::Server);
            span.start_time_unix_nano = 0;
            span
        })
        .collect();

    let mapped = spans_from_request(&shop(spans));

    assert_eq!(mapped.rejected, MAX_REJECTION_REASONS as u64 + 5);
    assert_eq!(mapped.errors.len(), MAX_REJECTION_REASONS);
    assert!(
        mapped
            .error_message()
            .ends_with("; and 5 more rejected spans")
    );
}

#[test]
fn protobuf_requests_decode_to_the_same_spans() {
    let mut server = otlp_span(7, "GET", OtlpKind::Server);
    server.attributes = vec![
        string_attribute("http.request.method", "GET"),
        string_attribute("http.route", "/inventory"),
        int_attribute("http.response.status_code", 200),
    ];
    let original = request(
        vec![
            string_attribute("service.name", "inventory"),
            string_attribute("service.version", "1.0.0"),
        ],
        vec![server],
    );

    let decoded = decode_protobuf(&original.encode_to_vec()).expect("valid protobuf");

    assert_eq!(decoded, original);
    let span = &spans_from_request(&decoded).spans[0];
    assert_eq!(span.operation, "GET /inventory");
    assert_eq!(span.http_status, Some(200));
    assert_eq!(span.attribute("service.version"), Some("1.0.0"));
}

#[test]
fn requests_serialize_to_otlp_json_and_back() {
    let original = request(
        vec![string_attribute("service.name", "shop")],
        vec![otlp_span(9, "GET /health", OtlpKind::Server)],
    );

    let json = serde_json::to_string(&original).expect("serializes");

    assert!(
        json.contains(r#""traceId":"4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b""#),
        "{json}"
    );
    assert!(
        json.contains(r#""startTimeUnixNano":"1700000000000000000""#),
        "{json}"
    );
    assert!(json.contains(r#""kind":2"#), "{json}");
    assert_eq!(decode_json(json.as_bytes()).expect("decodes"), original);
}

#[test]
fn an_empty_json_object_is_a_request_with_no_spans() {
    let mapped = spans_from_request(&decode_json(b"{}").expect("valid"));
    assert_eq!(mapped.total(), 0);
}

#[test]
fn malformed_bodies_are_decode_errors() {
    assert!(matches!(
        decode_protobuf(b"\xff\xff\xff\xff"),
        Err(OtlpDecodeError::Protobuf(_))
    ));
    assert!(matches!(
        decode_json(b"{\"resourceSpans\": ["),
        Err(OtlpDecodeError::Json(_))
    ));
    assert!(matches!(
        decode_json(b"not json"),
        Err(OtlpDecodeError::Json(_))
    ));
}

#[test]
fn json_enums_must_be_integers_and_ids_hex() {
    let string_kind =
        br#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"kind":"SPAN_KIND_SERVER"}]}]}]}"#;
    let bad_hex = br#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"zz"}]}]}]}"#;

    let kind_error = decode_json(string_kind).expect_err("string enum");
    assert!(
        kind_error.to_string().contains("integer enums"),
        "{kind_error}"
    );
    assert!(matches!(
        decode_json(bad_hex),
        Err(OtlpDecodeError::Json(_))
    ));
}
