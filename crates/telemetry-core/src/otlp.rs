//! OpenTelemetry OTLP trace requests as [`Span`]s.
//!
//! An `ExportTraceServiceRequest` (the body of OTLP/HTTP `POST /v1/traces`, one line of the
//! OpenTelemetry Collector's file exporter) carries spans grouped by resource and scope.
//! [`spans_from_request`] flattens it into spans keyed the way the engine learns baselines:
//!
//! - The service is the resource's `service.name`; without one it is `unknown_service` (or
//!   `unknown_service:<process.executable.name>`), as the OpenTelemetry specification says.
//! - A server span whose attributes name an HTTP method (`http.request.method`, or the older
//!   `http.method`) and an `http.route` has the operation `METHOD route` (`GET /users/{id}`):
//!   routes are low-cardinality where span names may not be. Every other span keeps its name.
//! - A span failed when its status code is `ERROR` or its HTTP status
//!   (`http.response.status_code`, or the older `http.status_code`) is 500 or more.
//! - A span whose instrumentation recorded an `exception` event failed too, unless its status
//!   says `OK` (the instrumentation knew the exception was handled): an unset status becomes
//!   `ERROR`. The first exception's `exception.type` and `exception.message` become attributes.
//! - The resource's `service.version` is kept as an attribute; client and producer spans also
//!   keep the attributes that name whom they called ([`PEER_ATTRIBUTES`](crate::PEER_ATTRIBUTES):
//!   `peer.service`, `db.system`, `db.name`, `server.address`, ...). Beyond those, a span keeps
//!   the attributes that explain faults, of its own or else of its resource ([`KeptAttributes`],
//!   by default [`DEFAULT_SPAN_ATTRIBUTES`]: route, status, RPC, database, host and pod,
//!   exception, and the status message as `otel.status_description`); at most
//!   [`MAX_KEPT_ATTRIBUTES`] of them, each value at most [`MAX_ATTRIBUTE_BYTES`] bytes.
//! - A span of unspecified kind that names `peer.service` or `db.system` is a client span; any
//!   other unspecified kind is internal, as the specification says.
//!
//! A span that cannot be used (an id of the wrong length or all zeros, no start time, an end
//! before its start, no name) is rejected with a reason rather than failing the request: OTLP's
//! partial success. [`OtlpSpans::response`] builds the matching `ExportTraceServiceResponse`.
//!
//! Log requests (`ExportLogsServiceRequest`, `POST /v1/logs`) map to [`LogRecord`](crate::LogRecord)s
//! the same way: see [`logs_from_request`].
//!
//! ```
//! use aiops_telemetry_core::otlp::{decode_json, spans_from_request};
//!
//! let body = br#"{"resourceSpans":[{
//!   "resource":{"attributes":[{"key":"service.name","value":{"stringValue":"payments"}}]},
//!   "scopeSpans":[{"spans":[{
//!     "traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174",
//!     "name":"POST","kind":2,
//!     "startTimeUnixNano":"1700000000000000000","endTimeUnixNano":"1700000000120000000",
//!     "attributes":[{"key":"http.request.method","value":{"stringValue":"POST"}},
//!                   {"key":"http.route","value":{"stringValue":"/charge"}},
//!                   {"key":"http.response.status_code","value":{"intValue":"503"}}]
//!   }]}]}]}"#;
//! let request = decode_json(body)?;
//! let mapped = spans_from_request(&request);
//! assert_eq!(mapped.rejected, 0);
//! let span = &mapped.spans[0];
//! assert_eq!((&*span.service, &*span.operation), ("payments", "POST /charge"));
//! assert!(span.is_error());
//! assert_eq!(span.duration_ms(), 120.0);
//! # Ok::<(), aiops_telemetry_core::otlp::OtlpDecodeError>(())
//! ```

use std::collections::HashSet;
use std::fmt;

use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind as OtlpSpanKind;
use opentelemetry_proto::tonic::trace::v1::status::StatusCode;
use prost::Message;
use thiserror::Error;

pub use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};

use crate::error::IdError;
use crate::ids::{SpanId, TraceId};
use crate::peer::PEER_ATTRIBUTES;
use crate::span::{Span, SpanKind, SpanStatus};
use crate::text::SpanText;

mod attributes;
mod json_shape;
mod logs;
mod status;
#[cfg(feature = "testing")]
pub mod testing;

pub use self::attributes::{
    DEFAULT_SPAN_ATTRIBUTES, KeptAttributes, KeptAttributesError, MAX_ATTRIBUTE_BYTES,
    MAX_KEPT_ATTRIBUTES,
};
use self::attributes::{Interner, capped};
pub use self::logs::{
    ExportLogsPartialSuccess, ExportLogsServiceRequest, ExportLogsServiceResponse, MAX_BODY_BYTES,
    MAX_LOG_ATTRIBUTES, MAX_STACKTRACE_BYTES, OtlpLogs, decode_logs_json, decode_logs_protobuf,
    encode_logs_json_response, encode_logs_protobuf_response, logs_from_request,
};
pub use self::status::{
    Any, ProtoDuration, RESOURCE_EXHAUSTED, RETRY_INFO_TYPE_URL, RetryInfo, Status, UNAVAILABLE,
};

/// The service name of a resource that does not say, per the OpenTelemetry specification.
pub const UNKNOWN_SERVICE: &str = "unknown_service";

/// At most this many rejection reasons are kept; the count in [`OtlpSpans::rejected`] is exact.
pub const MAX_REJECTION_REASONS: usize = 10;

/// The spans of one request, and what was rejected.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct OtlpSpans {
    /// Spans that mapped cleanly, in request order.
    pub spans: Vec<Span>,
    /// How many spans were rejected.
    pub rejected: u64,
    /// Why, one reason per rejected span, for the first [`MAX_REJECTION_REASONS`] of them.
    pub errors: Vec<String>,
}

impl OtlpSpans {
    /// How many spans the request held, accepted or rejected.
    pub fn total(&self) -> u64 {
        self.spans.len() as u64 + self.rejected
    }

    /// One message for every rejection reason kept, empty when nothing was rejected.
    pub fn error_message(&self) -> String {
        let mut message = self.errors.join("; ");
        let unexplained = self.rejected.saturating_sub(self.errors.len() as u64);
        if unexplained > 0 {
            message.push_str(&format!("; and {unexplained} more rejected spans"));
        }
        message
    }

    /// The OTLP response: full success, or partial success naming the rejected spans.
    pub fn response(&self) -> ExportTraceServiceResponse {
        ExportTraceServiceResponse {
            partial_success: (self.rejected > 0).then(|| ExportTracePartialSuccess {
                rejected_spans: i64::try_from(self.rejected).unwrap_or(i64::MAX),
                error_message: self.error_message(),
            }),
        }
    }
}

/// Why an OTLP body could not be decoded.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum OtlpDecodeError {
    /// The body is not a protobuf-encoded `ExportTraceServiceRequest`.
    #[error("otlp: invalid protobuf ExportTraceServiceRequest: {0}")]
    Protobuf(String),
    /// The body is not an `ExportTraceServiceRequest` in OTLP's JSON encoding.
    #[error(
        "otlp: invalid JSON ExportTraceServiceRequest (expected OTLP JSON: camelCase keys, hex ids, integer enums): {0}"
    )]
    Json(String),
    /// The body is not a protobuf-encoded `ExportLogsServiceRequest`.
    #[error("otlp: invalid protobuf ExportLogsServiceRequest: {0}")]
    LogsProtobuf(String),
    /// The body is not an `ExportLogsServiceRequest` in OTLP's JSON encoding.
    #[error(
        "otlp: invalid JSON ExportLogsServiceRequest (expected OTLP JSON: camelCase keys, hex ids, integer enums): {0}"
    )]
    LogsJson(String),
}

/// Decodes a protobuf-encoded `ExportTraceServiceRequest` (`application/x-protobuf`).
pub fn decode_protobuf(bytes: &[u8]) -> Result<ExportTraceServiceRequest, OtlpDecodeError> {
    ExportTraceServiceRequest::decode(bytes)
        .map_err(|err| OtlpDecodeError::Protobuf(err.to_string()))
}

/// Decodes an `ExportTraceServiceRequest` in OTLP's JSON encoding (`application/json`): hex
/// trace and span ids, camelCase keys, integer enums, 64-bit integers as strings or numbers.
///
/// The request must be a JSON object: serde would also read a message from an array.
pub fn decode_json(bytes: &[u8]) -> Result<ExportTraceServiceRequest, OtlpDecodeError> {
    json_shape::json_object(bytes).map_err(OtlpDecodeError::Json)?;
    serde_json::from_slice(bytes).map_err(|err| OtlpDecodeError::Json(err.to_string()))
}

/// Encodes a response as protobuf, for a request that came as protobuf.
pub fn encode_protobuf_response(response: &ExportTraceServiceResponse) -> Vec<u8> {
    response.encode_to_vec()
}

/// Encodes a response in OTLP's JSON encoding, for a request that came as JSON: `{}` on full
/// success, `{"partialSuccess":{"rejectedSpans":N,"errorMessage":"..."}}` otherwise.
pub fn encode_json_response(response: &ExportTraceServiceResponse) -> Vec<u8> {
    match response.partial_success {
        // serde would write `{"partialSuccess":null}`; an absent field is the idiomatic form.
        None => b"{}".to_vec(),
        Some(_) => serde_json::to_vec(response).unwrap_or_else(|_| b"{}".to_vec()),
    }
}

/// Maps every span of `request`, rejecting (with a reason) those that cannot be used; spans
/// keep the [default attributes](DEFAULT_SPAN_ATTRIBUTES).
pub fn spans_from_request(request: &ExportTraceServiceRequest) -> OtlpSpans {
    spans_keeping(request, &KeptAttributes::default())
}

/// [`spans_from_request`], the spans keeping the attributes `kept` names.
pub fn spans_keeping(request: &ExportTraceServiceRequest, kept: &KeptAttributes) -> OtlpSpans {
    let mut out = OtlpSpans::default();
    let mut operations = Operations::default();
    let mut interner = Interner::default();
    for (resource_index, resource_spans) in request.resource_spans.iter().enumerate() {
        let resource_attributes = resource_spans
            .resource
            .as_ref()
            .map_or(&[][..], |resource| &resource.attributes[..]);
        let resource = ResourceInfo::new(resource_attributes, kept, &mut interner);
        let spans = resource_spans
            .scope_spans
            .iter()
            .flat_map(|scope| scope.spans.iter());
        for (span_index, otlp_span) in spans.enumerate() {
            match map_span(otlp_span, &resource, kept, &mut operations, &mut interner) {
                Ok(span) => out.spans.push(span),
                Err(rejection) => {
                    out.rejected += 1;
                    if out.errors.len() < MAX_REJECTION_REASONS {
                        out.errors.push(format!(
                            "resource {resource_index} span {span_index} (name {:?}): {rejection}",
                            otlp_span.name
                        ));
                    }
                }
            }
        }
    }
    out
}

/// What a resource contributes to each of its spans: made once per resource, so that its spans
/// share the text.
struct ResourceInfo {
    service: SpanText,
    version: Option<SpanText>,
    /// The resource's attributes that spans keep (`host.name`, `k8s.pod.name`...), but its
    /// version, which every span keeps.
    kept: Vec<(SpanText, SpanText)>,
}

impl ResourceInfo {
    fn new(attributes: &[KeyValue], kept: &KeptAttributes, interner: &mut Interner) -> Self {
        let version = string_attribute(attributes, "service.version")
            .filter(|v| !v.is_empty())
            .map(|v| SpanText::copied(capped(v)));
        let mut kept_here = Vec::new();
        if let Some(version) = &version {
            // Marks the key as present, so that `collect` skips it; removed below.
            kept_here.push((SpanText::from_static("service.version"), version.clone()));
        }
        kept.collect_interned(attributes, MAX_KEPT_ATTRIBUTES, &mut kept_here, interner);
        if version.is_some() {
            kept_here.remove(0);
        }
        Self {
            service: service_name(attributes),
            version,
            kept: kept_here,
        }
    }
}

/// The service a resource names: `service.name`, else `unknown_service[:executable]`.
pub(crate) fn service_name(attributes: &[KeyValue]) -> SpanText {
    match string_attribute(attributes, "service.name") {
        Some(name) if !name.is_empty() => SpanText::copied(name),
        _ => match string_attribute(attributes, "process.executable.name") {
            Some(executable) if !executable.is_empty() => {
                format!("{UNKNOWN_SERVICE}:{executable}").into()
            }
            _ => SpanText::from_static(UNKNOWN_SERVICE),
        },
    }
}

/// The operation names met in one request, so that its spans of one operation share the text.
#[derive(Default)]
struct Operations {
    seen: HashSet<SpanText>,
    /// Where `METHOD route` is written before it is looked up.
    scratch: String,
}

impl Operations {
    /// The operation of `otlp`, whose kind is `kind`; `None` when it has none.
    fn of(&mut self, otlp: &OtlpSpan, kind: SpanKind) -> Option<SpanText> {
        let name = operation(otlp, kind, &mut self.scratch)?;
        if let Some(text) = self.seen.get(name) {
            return Some(text.clone());
        }
        let text = SpanText::copied(name);
        self.seen.insert(text.clone());
        Some(text)
    }
}

/// Why one span was rejected.
#[derive(Debug, PartialEq)]
enum Rejection {
    Id(IdError),
    ParentId(IdError),
    MissingStart,
    EndBeforeStart { start: u64, end: u64 },
    MissingName,
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Id(err) => write!(f, "{err}"),
            Self::ParentId(err) => write!(f, "parent {err}"),
            Self::MissingStart => write!(f, "startTimeUnixNano is missing or zero"),
            Self::EndBeforeStart { start, end } => write!(
                f,
                "endTimeUnixNano {end} is before startTimeUnixNano {start}"
            ),
            Self::MissingName => write!(f, "span has no name"),
        }
    }
}

type OtlpSpan = opentelemetry_proto::tonic::trace::v1::Span;

fn map_span(
    otlp: &OtlpSpan,
    resource: &ResourceInfo,
    kept: &KeptAttributes,
    operations: &mut Operations,
    interner: &mut Interner,
) -> Result<Span, Rejection> {
    let trace_id = TraceId::from_slice(&otlp.trace_id).map_err(Rejection::Id)?;
    let span_id = SpanId::from_slice(&otlp.span_id).map_err(Rejection::Id)?;
    // Some SDKs send an all-zero parent for a root span; treat it like an absent one.
    let parent = if otlp.parent_span_id.iter().all(|&byte| byte == 0) {
        None
    } else {
        Some(SpanId::from_slice(&otlp.parent_span_id).map_err(Rejection::ParentId)?)
    };
    let (start, end) = (otlp.start_time_unix_nano, otlp.end_time_unix_nano);
    if start == 0 {
        return Err(Rejection::MissingStart);
    }
    if end < start {
        return Err(Rejection::EndBeforeStart { start, end });
    }
    let kind = inferred_kind(otlp);
    let operation = operations.of(otlp, kind).ok_or(Rejection::MissingName)?;

    let exception = otlp.events.iter().find(|event| event.name == "exception");
    let mut status = span_status(otlp);
    if exception.is_some() && status == SpanStatus::Unset {
        status = SpanStatus::Error;
    }
    let mut span = Span::new(trace_id, span_id, resource.service.clone(), operation)
        .with_kind(kind)
        .with_timing(start, end - start)
        .with_status(status);
    span.parent_span_id = parent;
    span.http_status = http_status(&otlp.attributes);
    span.attributes = span_attributes(otlp, kind, resource, kept, exception, interner).into();
    Ok(span)
}

type OtlpEvent = opentelemetry_proto::tonic::trace::v1::span::Event;

/// What a span keeps: its resource's version, whom a call called, the exception, the status
/// message, then the kept attributes of the span and of its resource.
fn span_attributes(
    otlp: &OtlpSpan,
    kind: SpanKind,
    resource: &ResourceInfo,
    kept: &KeptAttributes,
    exception: Option<&OtlpEvent>,
    interner: &mut Interner,
) -> Vec<(SpanText, SpanText)> {
    let mut attributes: Vec<(SpanText, SpanText)> = Vec::new();
    if let Some(version) = &resource.version {
        attributes.push((SpanText::from_static("service.version"), version.clone()));
    }
    if matches!(kind, SpanKind::Client | SpanKind::Producer) {
        for key in PEER_ATTRIBUTES {
            if let Some(value) = string_attribute(&otlp.attributes, key).filter(|v| !v.is_empty()) {
                attributes.push((SpanText::from_static(key), interner.text(capped(value))));
            }
        }
    }
    let fixed = attributes.len();
    if let Some(event) = exception {
        for key in ["exception.type", "exception.message"] {
            if kept.keeps(key)
                && let Some(value) =
                    string_attribute(&event.attributes, key).filter(|v| !v.is_empty())
            {
                attributes.push((SpanText::from_static(key), interner.text(capped(value))));
            }
        }
    }
    if let Some(message) = otlp.status.as_ref().map(|s| s.message.as_str())
        && !message.is_empty()
        && kept.keeps("otel.status_description")
    {
        attributes.push((
            SpanText::from_static("otel.status_description"),
            SpanText::copied(capped(message)),
        ));
    }
    let room = MAX_KEPT_ATTRIBUTES.saturating_sub(attributes.len() - fixed);
    kept.collect_interned(&otlp.attributes, room, &mut attributes, interner);
    for (key, value) in &resource.kept {
        if attributes.len() - fixed >= MAX_KEPT_ATTRIBUTES {
            break;
        }
        if !attributes.iter().any(|(k, _)| k == key) {
            attributes.push((key.clone(), value.clone()));
        }
    }
    attributes
}

/// The span's kind; a span whose instrumentation left the kind unspecified but names the
/// service or database it calls (`peer.service`, `db.system`) is a client span.
fn inferred_kind(otlp: &OtlpSpan) -> SpanKind {
    let unspecified = otlp.kind == OtlpSpanKind::Unspecified as i32;
    if unspecified
        && ["peer.service", "db.system"]
            .iter()
            .any(|key| string_attribute(&otlp.attributes, key).is_some_and(|v| !v.is_empty()))
    {
        return SpanKind::Client;
    }
    span_kind(otlp.kind)
}

fn span_kind(kind: i32) -> SpanKind {
    match OtlpSpanKind::try_from(kind) {
        Ok(OtlpSpanKind::Server) => SpanKind::Server,
        Ok(OtlpSpanKind::Client) => SpanKind::Client,
        Ok(OtlpSpanKind::Producer) => SpanKind::Producer,
        Ok(OtlpSpanKind::Consumer) => SpanKind::Consumer,
        // The specification says to treat unspecified (and unknown) kinds as internal.
        Ok(OtlpSpanKind::Internal | OtlpSpanKind::Unspecified) | Err(_) => SpanKind::Internal,
    }
}

fn span_status(otlp: &OtlpSpan) -> SpanStatus {
    match otlp.status.as_ref().map(|status| status.code) {
        Some(code) if code == StatusCode::Error as i32 => SpanStatus::Error,
        Some(code) if code == StatusCode::Ok as i32 => SpanStatus::Ok,
        _ => SpanStatus::Unset,
    }
}

/// The operation of `otlp`, whose kind is `kind`: `METHOD route`, written into `scratch`, or
/// the span's name; `None` when it has neither.
fn operation<'a>(otlp: &'a OtlpSpan, kind: SpanKind, scratch: &'a mut String) -> Option<&'a str> {
    if kind == SpanKind::Server {
        let method = string_attribute(&otlp.attributes, "http.request.method")
            .or_else(|| string_attribute(&otlp.attributes, "http.method"));
        let route = string_attribute(&otlp.attributes, "http.route");
        if let (Some(method), Some(route)) = (method, route)
            && !method.is_empty()
            && !route.is_empty()
        {
            scratch.clear();
            scratch.push_str(method);
            scratch.push(' ');
            scratch.push_str(route);
            return Some(scratch);
        }
    }
    (!otlp.name.is_empty()).then_some(otlp.name.as_str())
}

fn http_status(attributes: &[KeyValue]) -> Option<u16> {
    let value = attribute(attributes, "http.response.status_code")
        .or_else(|| attribute(attributes, "http.status_code"))?;
    match value {
        Value::IntValue(code) => u16::try_from(*code).ok(),
        Value::StringValue(text) => text.trim().parse().ok(),
        _ => None,
    }
}

pub(crate) fn attribute<'a>(attributes: &'a [KeyValue], key: &str) -> Option<&'a Value> {
    attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
        .and_then(|value| value.value.as_ref())
}

pub(crate) fn string_attribute<'a>(attributes: &'a [KeyValue], key: &str) -> Option<&'a str> {
    match attribute(attributes, key)? {
        Value::StringValue(text) => Some(text),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_otlp_json_body_must_be_an_object() {
        for body in [
            &b"[]"[..],
            b" [null]",
            b"12",
            b"",
            br#"{"resourceSpans": [[], []]}"#,
            br#"{"resourceLogs": [[null]]}"#,
        ] {
            assert!(decode_json(body).is_err(), "{body:?}");
            assert!(decode_logs_json(body).is_err(), "{body:?}");
        }
        assert!(decode_json(b" {}").is_ok());
        assert!(decode_logs_json(b"{}").is_ok());
        // Brackets inside strings are text.
        let named = br#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"name":"[[x]] \"[[","traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174","startTimeUnixNano":"1","endTimeUnixNano":"2"}]}]}]}"#;
        assert_eq!(decode_json(named).map(|r| r.resource_spans.len()), Ok(1));
    }

    #[test]
    fn rejection_messages_say_what_is_wrong() {
        assert_eq!(
            Rejection::Id(IdError::Zero { what: "trace id" }).to_string(),
            "invalid trace id: all zeros is not a valid id"
        );
        assert_eq!(
            Rejection::ParentId(IdError::Length {
                what: "span id",
                expected: 16,
                actual: 6
            })
            .to_string(),
            "parent invalid span id: expected 16 lowercase hex digits, got 6"
        );
        assert_eq!(
            Rejection::MissingStart.to_string(),
            "startTimeUnixNano is missing or zero"
        );
        assert_eq!(
            Rejection::EndBeforeStart { start: 9, end: 3 }.to_string(),
            "endTimeUnixNano 3 is before startTimeUnixNano 9"
        );
        assert_eq!(Rejection::MissingName.to_string(), "span has no name");
    }

    #[test]
    fn decode_error_messages_name_the_expected_encoding() {
        assert_eq!(
            OtlpDecodeError::Protobuf("buffer underflow".into()).to_string(),
            "otlp: invalid protobuf ExportTraceServiceRequest: buffer underflow"
        );
        assert_eq!(
            OtlpDecodeError::Json("expected value at line 1 column 1".into()).to_string(),
            "otlp: invalid JSON ExportTraceServiceRequest (expected OTLP JSON: camelCase keys, \
             hex ids, integer enums): expected value at line 1 column 1"
        );
    }

    #[test]
    fn error_message_counts_reasons_that_were_not_kept() {
        let mapped = OtlpSpans {
            spans: Vec::new(),
            rejected: 3,
            errors: vec!["a".into(), "b".into()],
        };
        assert_eq!(mapped.error_message(), "a; b; and 1 more rejected spans");
        assert_eq!(mapped.total(), 3);
    }
}
