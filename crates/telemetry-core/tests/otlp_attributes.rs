//! What OTLP spans keep beyond their timing: exceptions, and the attributes that explain faults.

use aiops_telemetry_core::otlp::testing::{
    OtlpRequestBuilder, OtlpSpanBuilder, int_attribute, string_attribute,
};
use aiops_telemetry_core::otlp::{
    KeptAttributes, MAX_ATTRIBUTE_BYTES, MAX_KEPT_ATTRIBUTES, spans_from_request, spans_keeping,
};
use aiops_telemetry_core::{Span, SpanStatus};
use opentelemetry_proto::tonic::trace::v1::span::{Event, SpanKind as OtlpKind};
use opentelemetry_proto::tonic::trace::v1::status::StatusCode;
use opentelemetry_proto::tonic::trace::v1::{Span as OtlpSpan, Status};

const START: u64 = 1_700_000_000_000_000_000;

fn server_span(id: u8) -> OtlpSpanBuilder {
    OtlpSpanBuilder::new("GET", OtlpKind::Server)
        .trace_id(&[0x4b; 16])
        .span_id(&[id; 8])
        .timing(START, START + 5_000_000)
}

fn exception(kind: &str, message: &str) -> Event {
    Event {
        name: "exception".into(),
        time_unix_nano: START + 1,
        attributes: vec![
            string_attribute("exception.type", kind),
            string_attribute("exception.message", message),
            string_attribute("exception.stacktrace", "at Pricing.lookup(Pricing.java:42)"),
        ],
        ..Event::default()
    }
}

fn with_events(mut span: OtlpSpan, events: Vec<Event>) -> OtlpSpan {
    span.events = events;
    span
}

fn map(spans: Vec<OtlpSpan>) -> Vec<Span> {
    let request = OtlpRequestBuilder::new()
        .resource([
            string_attribute("service.name", "pricing"),
            string_attribute("service.version", "1.4.2"),
            string_attribute("host.name", "node-7"),
            string_attribute("k8s.pod.name", "pricing-7f9c"),
        ])
        .spans(spans)
        .build();
    spans_from_request(&request).spans
}

#[test]
fn an_exception_event_fails_a_span_whose_status_is_unset() {
    let thrown = with_events(
        server_span(1).build(),
        vec![
            exception("java.lang.NullPointerException", "price is null"),
            exception("java.lang.IllegalStateException", "second"),
        ],
    );
    let span = &map(vec![thrown])[0];
    assert_eq!(span.status, SpanStatus::Error);
    assert!(span.is_error());
    assert_eq!(
        span.attribute("exception.type"),
        Some("java.lang.NullPointerException"),
        "the first exception names the span"
    );
    assert_eq!(span.attribute("exception.message"), Some("price is null"));
    assert_eq!(span.attribute("exception.stacktrace"), None);
}

#[test]
fn an_exception_on_a_span_whose_status_says_ok_was_handled() {
    let mut handled = with_events(server_span(1).build(), vec![exception("Retry", "once")]);
    handled.status = Some(Status {
        code: StatusCode::Ok as i32,
        message: String::new(),
    });
    let plain_event = with_events(
        server_span(2).build(),
        vec![Event {
            name: "cache miss".into(),
            ..Event::default()
        }],
    );
    let spans = map(vec![handled, plain_event]);
    assert_eq!(spans[0].status, SpanStatus::Ok);
    assert!(!spans[0].is_error());
    assert_eq!(spans[0].attribute("exception.type"), Some("Retry"));
    assert!(!spans[1].is_error());
}

#[test]
fn server_spans_keep_route_status_host_pod_and_the_status_message() {
    let span = server_span(1)
        .attribute(string_attribute("http.request.method", "GET"))
        .attribute(string_attribute("http.route", "/price/{sku}"))
        .attribute(int_attribute("http.response.status_code", 503))
        .attribute(string_attribute("http.request.header.cookie", "secret"))
        .attribute(string_attribute("k8s.pod.name", "pricing-override"))
        .error("upstream timed out")
        .build();
    let span = &map(vec![span])[0];
    let kept: Vec<(&str, &str)> = span
        .attributes
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        kept,
        [
            ("service.version", "1.4.2"),
            ("otel.status_description", "upstream timed out"),
            ("http.request.method", "GET"),
            ("http.route", "/price/{sku}"),
            ("http.response.status_code", "503"),
            ("k8s.pod.name", "pricing-override"),
            ("host.name", "node-7"),
        ],
        "the span's own value wins over its resource's"
    );
}

#[test]
fn a_configured_list_replaces_the_default_but_peers_and_version_stay() {
    let call = OtlpSpanBuilder::new("GET", OtlpKind::Client)
        .trace_id(&[0x4b; 16])
        .span_id(&[1; 8])
        .timing(START, START + 5_000_000)
        .attribute(string_attribute("peer.service", "currency"))
        .attribute(string_attribute("rpc.method", "Convert"))
        .attribute(string_attribute("http.route", "/convert"))
        .attribute(string_attribute("tenant.tier", "gold"))
        .build();
    let request = OtlpRequestBuilder::new()
        .resource([
            string_attribute("service.name", "checkout"),
            string_attribute("service.version", "2.0.0"),
            string_attribute("host.name", "node-1"),
        ])
        .span(call)
        .build();
    let kept = KeptAttributes::new(["tenant.*", "rpc.*"]).expect("valid");
    let span = &spans_keeping(&request, &kept).spans[0];
    let keys: Vec<&str> = span.attributes.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        keys,
        [
            "service.version",
            "peer.service",
            "rpc.method",
            "tenant.tier"
        ]
    );
}

#[test]
fn kept_attributes_are_capped_in_count_and_length() {
    let names: Vec<String> = (0..MAX_KEPT_ATTRIBUTES).map(|i| format!("a{i}")).collect();
    let mut builder = server_span(1);
    for name in names.iter().chain(std::iter::once(&"a0".to_owned())) {
        builder = builder.attribute(string_attribute(name, &"v".repeat(1_000)));
    }
    let kept = KeptAttributes::new(names.iter().map(String::as_str).chain(["host.name"]))
        .expect_err("one more than a span keeps");
    assert!(kept.to_string().contains("at most 32"));
    let kept = KeptAttributes::new(&names).expect("valid");
    let request = OtlpRequestBuilder::new()
        .resource([string_attribute("service.name", "s")])
        .span(builder.build())
        .build();
    let span = &spans_keeping(&request, &kept).spans[0];
    assert_eq!(span.attributes.len(), MAX_KEPT_ATTRIBUTES);
    assert!(
        span.attributes
            .iter()
            .all(|(_, v)| v.len() == MAX_ATTRIBUTE_BYTES)
    );
}

#[test]
fn spans_of_a_request_share_the_text_of_their_kept_attributes() {
    let routed = |id| {
        server_span(id)
            .attribute(string_attribute("http.route", "/price/{sku}"))
            .build()
    };
    let spans = map(vec![routed(1), routed(2)]);
    let text = |span: &Span, key| span.attribute(key).expect("kept").as_ptr();
    for key in ["http.route", "host.name", "k8s.pod.name"] {
        assert_eq!(text(&spans[0], key), text(&spans[1], key), "{key}");
    }
}
