//! Builders of OTLP trace requests, for tests, fixtures and load generators (the `testing`
//! feature, with `otlp`).
//!
//! An [`OtlpRequestBuilder`] assembles an [`ExportTraceServiceRequest`] resource by resource;
//! an [`OtlpSpanBuilder`] makes each span. Whatever is not set keeps OTLP's default (empty ids,
//! zero times, no status), so a test states only the fields it is about.
//!
//! ```
//! use aiops_telemetry_core::otlp::spans_from_request;
//! use aiops_telemetry_core::otlp::testing::{
//!     OtlpRequestBuilder, OtlpSpanBuilder, OtlpSpanKind, int_attribute, string_attribute,
//! };
//!
//! let start = 1_700_000_000_000_000_000;
//! let request = OtlpRequestBuilder::new()
//!     .resource([string_attribute("service.name", "payments")])
//!     .scope("shop-sim")
//!     .span(
//!         OtlpSpanBuilder::new("POST", OtlpSpanKind::Server)
//!             .trace_id(&[0x4b; 16])
//!             .span_id(&[1; 8])
//!             .timing(start, start + 120_000_000)
//!             .attribute(string_attribute("http.request.method", "POST"))
//!             .attribute(string_attribute("http.route", "/charge"))
//!             .attribute(int_attribute("http.response.status_code", 503))
//!             .build(),
//!     )
//!     .build();
//!
//! let span = &spans_from_request(&request).spans[0];
//! assert_eq!((&*span.service, &*span.operation), ("payments", "POST /charge"));
//! assert!(span.is_error());
//! ```

use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::status::StatusCode;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span as OtlpSpan, Status};

pub use opentelemetry_proto::tonic::trace::v1::span::SpanKind as OtlpSpanKind;

use super::ExportTraceServiceRequest;

/// An attribute whose value is a string.
pub fn string_attribute(key: &str, value: &str) -> KeyValue {
    attribute(key, Value::StringValue(value.into()))
}

/// An attribute whose value is an integer.
pub fn int_attribute(key: &str, value: i64) -> KeyValue {
    attribute(key, Value::IntValue(value))
}

fn attribute(key: &str, value: Value) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue { value: Some(value) }),
        ..KeyValue::default()
    }
}

/// Builds an [`ExportTraceServiceRequest`]: each [`resource`](Self::resource) starts a
/// resource with one instrumentation scope, and the spans that follow belong to it.
#[derive(Clone, Debug, Default)]
pub struct OtlpRequestBuilder {
    resource_spans: Vec<ResourceSpans>,
}

impl OtlpRequestBuilder {
    /// A request with no resource yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts a resource with `attributes` (`service.name`, `service.version`, ...); the
    /// spans added next belong to it.
    pub fn resource(mut self, attributes: impl IntoIterator<Item = KeyValue>) -> Self {
        self.resource_spans
            .push(resource_spans(attributes.into_iter().collect()));
        self
    }

    /// Names the instrumentation scope of the current resource (unnamed scopes are left out).
    pub fn scope(mut self, name: &str) -> Self {
        self.current().scope = Some(InstrumentationScope {
            name: name.into(),
            ..InstrumentationScope::default()
        });
        self
    }

    /// Adds a span to the current resource (a resource without attributes if none was
    /// started).
    pub fn span(mut self, span: OtlpSpan) -> Self {
        self.current().spans.push(span);
        self
    }

    /// Adds spans to the current resource, in order.
    pub fn spans(mut self, spans: impl IntoIterator<Item = OtlpSpan>) -> Self {
        self.current().spans.extend(spans);
        self
    }

    /// The request.
    pub fn build(self) -> ExportTraceServiceRequest {
        ExportTraceServiceRequest {
            resource_spans: self.resource_spans,
        }
    }

    /// The one scope of the last resource started.
    fn current(&mut self) -> &mut ScopeSpans {
        if self.resource_spans.is_empty() {
            self.resource_spans.push(resource_spans(Vec::new()));
        }
        let last = self.resource_spans.len() - 1;
        &mut self.resource_spans[last].scope_spans[0]
    }
}

/// A resource with `attributes` and one unnamed, empty scope.
fn resource_spans(attributes: Vec<KeyValue>) -> ResourceSpans {
    ResourceSpans {
        resource: Some(Resource {
            attributes,
            ..Resource::default()
        }),
        scope_spans: vec![ScopeSpans::default()],
        ..ResourceSpans::default()
    }
}

/// Builds one OTLP span.
#[derive(Clone, Debug)]
pub struct OtlpSpanBuilder {
    span: OtlpSpan,
}

impl OtlpSpanBuilder {
    /// A span named `name` of kind `kind`, everything else unset.
    pub fn new(name: impl Into<String>, kind: OtlpSpanKind) -> Self {
        Self {
            span: OtlpSpan {
                name: name.into(),
                kind: kind as i32,
                ..OtlpSpan::default()
            },
        }
    }

    /// Sets the trace id (16 bytes in a valid span).
    pub fn trace_id(mut self, id: &[u8]) -> Self {
        self.span.trace_id = id.to_vec();
        self
    }

    /// Sets the span id (8 bytes in a valid span).
    pub fn span_id(mut self, id: &[u8]) -> Self {
        self.span.span_id = id.to_vec();
        self
    }

    /// Sets the parent's span id; a root span has none (or all zeros).
    pub fn parent(mut self, id: &[u8]) -> Self {
        self.span.parent_span_id = id.to_vec();
        self
    }

    /// Sets the start and end, in Unix nanoseconds.
    pub fn timing(mut self, start_unix_nanos: u64, end_unix_nanos: u64) -> Self {
        self.span.start_time_unix_nano = start_unix_nanos;
        self.span.end_time_unix_nano = end_unix_nanos;
        self
    }

    /// Adds an attribute.
    pub fn attribute(mut self, attribute: KeyValue) -> Self {
        self.span.attributes.push(attribute);
        self
    }

    /// Marks the span failed: status `ERROR` with `message`.
    pub fn error(mut self, message: impl Into<String>) -> Self {
        self.span.status = Some(Status {
            code: StatusCode::Error as i32,
            message: message.into(),
        });
        self
    }

    /// The span.
    pub fn build(self) -> OtlpSpan {
        self.span
    }
}
