//! OpenTelemetry OTLP log requests as [`LogRecord`]s.
//!
//! An `ExportLogsServiceRequest` (the body of OTLP/HTTP `POST /v1/logs`, or a line of the
//! Collector's file exporter holding `resourceLogs`) carries records grouped by resource and
//! scope. [`logs_from_request`] flattens it:
//!
//! - The service comes from the resource, by the same rule as spans' (`service.name`, else
//!   `unknown_service[:executable]`).
//! - The time is `timeUnixNano`, else `observedTimeUnixNano`; a record with neither is rejected.
//! - The severity is `severityNumber` (1-24), else the one `severityText` names
//!   ([`LogSeverity::from_text`]).
//! - The body is text: a string as it is, any other value as JSON; at most [`MAX_BODY_BYTES`].
//! - Trace and span ids are kept when present; all zeros counts as absent, and an id of the
//!   wrong length rejects the record (its sender has a bug it should hear of).
//! - Attributes: `exception.*` and `code.*` of the record, its `event.name`, the scope's name
//!   as `otel.scope.name` (the logger, for most logging bridges), and the resource's
//!   `service.version`, `host.name`, `k8s.pod.name` and `deployment.environment`; at most
//!   [`MAX_LOG_ATTRIBUTES`], values at most [`MAX_ATTRIBUTE_BYTES`] bytes, but an
//!   `exception.stacktrace` keeps up to [`MAX_STACKTRACE_BYTES`].
//!
//! ```
//! use aiops_telemetry_core::otlp::{decode_logs_json, logs_from_request};
//!
//! let body = br#"{"resourceLogs":[{
//!   "resource":{"attributes":[{"key":"service.name","value":{"stringValue":"pricing"}}]},
//!   "scopeLogs":[{"logRecords":[{
//!     "timeUnixNano":"1700000000000000000","severityNumber":17,
//!     "body":{"stringValue":"price lookup failed"},
//!     "traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174",
//!     "attributes":[{"key":"exception.type","value":{"stringValue":"java.lang.NullPointerException"}}]
//!   }]}]}]}"#;
//! let mapped = logs_from_request(&decode_logs_json(body)?);
//! let record = &mapped.records[0];
//! assert_eq!((&*record.service, record.body.as_str()), ("pricing", "price lookup failed"));
//! assert!(record.severity.is_error() && record.span_id.is_some());
//! assert_eq!(record.attribute("exception.type"), Some("java.lang.NullPointerException"));
//! # Ok::<(), aiops_telemetry_core::otlp::OtlpDecodeError>(())
//! ```

use std::fmt;

use opentelemetry_proto::tonic::common::v1::KeyValue;
use prost::Message;

pub use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsPartialSuccess, ExportLogsServiceRequest, ExportLogsServiceResponse,
};

use super::attributes::{any_value_text, capped, capped_to, scalar_text};
use super::{MAX_ATTRIBUTE_BYTES, MAX_REJECTION_REASONS, OtlpDecodeError, service_name};
use crate::error::IdError;
use crate::ids::{SpanId, TraceId};
use crate::log::{LogRecord, LogSeverity};
use crate::text::SpanText;

/// Longest body kept, in bytes; longer bodies are cut on a character boundary.
pub const MAX_BODY_BYTES: usize = 8 * 1024;

/// Longest `exception.stacktrace` kept, in bytes: enough for the frames that name the fault.
pub const MAX_STACKTRACE_BYTES: usize = 4 * 1024;

/// Most attributes a record keeps.
pub const MAX_LOG_ATTRIBUTES: usize = 16;

/// The resource attributes every record of the resource keeps.
const RESOURCE_KEYS: [&str; 4] = [
    "service.version",
    "host.name",
    "k8s.pod.name",
    "deployment.environment",
];

/// The records of one request, and what was rejected.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct OtlpLogs {
    /// Records that mapped cleanly, in request order.
    pub records: Vec<LogRecord>,
    /// How many records were rejected.
    pub rejected: u64,
    /// Why, one reason per rejected record, for the first [`MAX_REJECTION_REASONS`] of them.
    pub errors: Vec<String>,
}

impl OtlpLogs {
    /// How many records the request held, accepted or rejected.
    pub fn total(&self) -> u64 {
        self.records.len() as u64 + self.rejected
    }

    /// One message for every rejection reason kept, empty when nothing was rejected.
    pub fn error_message(&self) -> String {
        let mut message = self.errors.join("; ");
        let unexplained = self.rejected.saturating_sub(self.errors.len() as u64);
        if unexplained > 0 {
            message.push_str(&format!("; and {unexplained} more rejected log records"));
        }
        message
    }

    /// The OTLP response: full success, or partial success naming the rejected records.
    pub fn response(&self) -> ExportLogsServiceResponse {
        ExportLogsServiceResponse {
            partial_success: (self.rejected > 0).then(|| ExportLogsPartialSuccess {
                rejected_log_records: i64::try_from(self.rejected).unwrap_or(i64::MAX),
                error_message: self.error_message(),
            }),
        }
    }
}

/// Decodes a protobuf-encoded `ExportLogsServiceRequest` (`application/x-protobuf`).
pub fn decode_logs_protobuf(bytes: &[u8]) -> Result<ExportLogsServiceRequest, OtlpDecodeError> {
    ExportLogsServiceRequest::decode(bytes)
        .map_err(|err| OtlpDecodeError::LogsProtobuf(err.to_string()))
}

/// Decodes an `ExportLogsServiceRequest` in OTLP's JSON encoding (`application/json`): hex ids,
/// camelCase keys, integer enums, 64-bit integers as strings or numbers.
pub fn decode_logs_json(bytes: &[u8]) -> Result<ExportLogsServiceRequest, OtlpDecodeError> {
    super::json_shape::json_object(bytes).map_err(OtlpDecodeError::LogsJson)?;
    serde_json::from_slice(bytes).map_err(|err| OtlpDecodeError::LogsJson(err.to_string()))
}

/// Encodes a response as protobuf, for a request that came as protobuf.
pub fn encode_logs_protobuf_response(response: &ExportLogsServiceResponse) -> Vec<u8> {
    response.encode_to_vec()
}

/// Encodes a response in OTLP's JSON encoding: `{}` on full success,
/// `{"partialSuccess":{"rejectedLogRecords":N,"errorMessage":"..."}}` otherwise.
pub fn encode_logs_json_response(response: &ExportLogsServiceResponse) -> Vec<u8> {
    match response.partial_success {
        None => b"{}".to_vec(),
        Some(_) => serde_json::to_vec(response).unwrap_or_else(|_| b"{}".to_vec()),
    }
}

/// Maps every record of `request`, rejecting (with a reason) those that cannot be used.
pub fn logs_from_request(request: &ExportLogsServiceRequest) -> OtlpLogs {
    let mut out = OtlpLogs::default();
    for (resource_index, resource_logs) in request.resource_logs.iter().enumerate() {
        let resource_attributes = resource_logs
            .resource
            .as_ref()
            .map_or(&[][..], |resource| &resource.attributes[..]);
        let service = service_name(resource_attributes);
        let resource_kept = resource_attributes_kept(resource_attributes);
        let mut record_index = 0;
        for scope in &resource_logs.scope_logs {
            let scope_name = scope
                .scope
                .as_ref()
                .map(|scope| scope.name.as_str())
                .filter(|name| !name.is_empty())
                .map(|name| SpanText::copied(capped(name)));
            for otlp in &scope.log_records {
                let context = Context {
                    service: &service,
                    resource: &resource_kept,
                    scope: scope_name.as_ref(),
                };
                match map_record(otlp, &context) {
                    Ok(record) => out.records.push(record),
                    Err(rejection) => {
                        out.rejected += 1;
                        if out.errors.len() < MAX_REJECTION_REASONS {
                            out.errors.push(format!(
                                "resource {resource_index} log record {record_index}: {rejection}"
                            ));
                        }
                    }
                }
                record_index += 1;
            }
        }
    }
    out
}

/// What a record's resource and scope contribute to it.
struct Context<'a> {
    service: &'a SpanText,
    resource: &'a [(SpanText, SpanText)],
    scope: Option<&'a SpanText>,
}

fn resource_attributes_kept(attributes: &[KeyValue]) -> Vec<(SpanText, SpanText)> {
    RESOURCE_KEYS
        .iter()
        .filter_map(|&key| {
            let value = super::string_attribute(attributes, key).filter(|v| !v.is_empty())?;
            Some((SpanText::from_static(key), SpanText::copied(capped(value))))
        })
        .collect()
}

/// Why one record was rejected.
#[derive(Debug, PartialEq)]
enum Rejection {
    MissingTime,
    TraceId(IdError),
    SpanId(IdError),
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::MissingTime => {
                write!(
                    f,
                    "timeUnixNano and observedTimeUnixNano are both missing or zero"
                )
            }
            Self::TraceId(err) | Self::SpanId(err) => write!(f, "{err}"),
        }
    }
}

type OtlpLogRecord = opentelemetry_proto::tonic::logs::v1::LogRecord;

fn map_record(otlp: &OtlpLogRecord, context: &Context<'_>) -> Result<LogRecord, Rejection> {
    let time = match (otlp.time_unix_nano, otlp.observed_time_unix_nano) {
        (0, 0) => return Err(Rejection::MissingTime),
        (0, observed) => observed,
        (time, _) => time,
    };
    let trace_id = optional_id(&otlp.trace_id, TraceId::from_slice).map_err(Rejection::TraceId)?;
    let span_id = optional_id(&otlp.span_id, SpanId::from_slice).map_err(Rejection::SpanId)?;
    let severity = match u8::try_from(otlp.severity_number) {
        Ok(number @ 1..=24) => LogSeverity(number),
        _ => LogSeverity::from_text(&otlp.severity_text),
    };
    let body = otlp.body.as_ref().map(any_value_text).unwrap_or_default();
    let body = if body.len() > MAX_BODY_BYTES {
        capped_to(&body, MAX_BODY_BYTES).to_owned()
    } else {
        body
    };
    let mut record = LogRecord::new(context.service.clone(), time, severity, body);
    record.trace_id = trace_id;
    record.span_id = span_id;
    record.attributes = record_attributes(otlp, context).into();
    Ok(record)
}

/// An id that may be absent (empty or all zeros); an id of the wrong length is an error.
fn optional_id<T>(
    bytes: &[u8],
    parse: impl FnOnce(&[u8]) -> Result<T, IdError>,
) -> Result<Option<T>, IdError> {
    if bytes.iter().all(|&byte| byte == 0) {
        return Ok(None);
    }
    parse(bytes).map(Some)
}

fn record_attributes(otlp: &OtlpLogRecord, context: &Context<'_>) -> Vec<(SpanText, SpanText)> {
    let mut attributes: Vec<(SpanText, SpanText)> = Vec::new();
    if !otlp.event_name.is_empty() {
        attributes.push((
            SpanText::from_static("event.name"),
            SpanText::copied(capped(&otlp.event_name)),
        ));
    }
    for kv in &otlp.attributes {
        if attributes.len() >= MAX_LOG_ATTRIBUTES {
            break;
        }
        let explains = kv.key.starts_with("exception.")
            || kv.key.starts_with("code.")
            || kv.key == "event.name";
        if !explains || attributes.iter().any(|(key, _)| key.as_str() == kv.key) {
            continue;
        }
        let Some(text) = kv.value.as_ref().and_then(scalar_text) else {
            continue;
        };
        let limit = if kv.key == "exception.stacktrace" {
            MAX_STACKTRACE_BYTES
        } else {
            MAX_ATTRIBUTE_BYTES
        };
        if !text.is_empty() {
            attributes.push((
                SpanText::copied(&kv.key),
                SpanText::copied(capped_to(&text, limit)),
            ));
        }
    }
    let scope = context
        .scope
        .map(|name| (SpanText::from_static("otel.scope.name"), name.clone()));
    for (key, value) in context.resource.iter().cloned().chain(scope) {
        if attributes.len() >= MAX_LOG_ATTRIBUTES {
            break;
        }
        attributes.push((key, value));
    }
    attributes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(json: &str) -> OtlpLogs {
        logs_from_request(&decode_logs_json(json.as_bytes()).expect("decodes"))
    }

    fn one(record: &str) -> OtlpLogs {
        decode(&format!(
            r#"{{"resourceLogs":[{{"resource":{{"attributes":[
                {{"key":"service.name","value":{{"stringValue":"pricing"}}}},
                {{"key":"service.version","value":{{"stringValue":"1.4.2"}}}},
                {{"key":"host.name","value":{{"stringValue":"node-7"}}}}]}},
              "scopeLogs":[{{"scope":{{"name":"com.shop.Pricing"}},"logRecords":[{record}]}}]}}]}}"#
        ))
    }

    #[test]
    fn the_observed_time_stands_in_for_a_missing_time() {
        let mapped = one(r#"{"observedTimeUnixNano":"42","body":{"stringValue":"x"}}"#);
        assert_eq!(mapped.records[0].time_unix_nanos, 42);
        let mapped = one(r#"{"timeUnixNano":"7","observedTimeUnixNano":"42"}"#);
        assert_eq!(mapped.records[0].time_unix_nanos, 7);
    }

    #[test]
    fn a_record_without_any_time_is_rejected_with_a_reason() {
        let mapped = one(r#"{"body":{"stringValue":"x"}}"#);
        assert_eq!((mapped.records.len(), mapped.rejected), (0, 1));
        assert_eq!(
            mapped.error_message(),
            "resource 0 log record 0: timeUnixNano and observedTimeUnixNano are both missing or zero"
        );
        let response = mapped.response().partial_success.expect("partial");
        assert_eq!(response.rejected_log_records, 1);
        assert_eq!(
            String::from_utf8(encode_logs_json_response(&mapped.response())).expect("utf-8"),
            r#"{"partialSuccess":{"rejectedLogRecords":1,"errorMessage":"resource 0 log record 0: timeUnixNano and observedTimeUnixNano are both missing or zero"}}"#
        );
    }

    #[test]
    fn severity_comes_from_the_number_else_the_text() {
        let severities: Vec<LogSeverity> = [
            r#"{"timeUnixNano":"1","severityNumber":21,"severityText":"info"}"#,
            r#"{"timeUnixNano":"1","severityText":"Warning"}"#,
            r#"{"timeUnixNano":"1","severityNumber":99,"severityText":"ERROR"}"#,
            r#"{"timeUnixNano":"1"}"#,
        ]
        .iter()
        .map(|record| one(record).records[0].severity)
        .collect();
        assert_eq!(
            severities,
            [
                LogSeverity(21),
                LogSeverity::WARN,
                LogSeverity::ERROR,
                LogSeverity::UNSPECIFIED
            ]
        );
    }

    #[test]
    fn structured_bodies_are_json_and_long_bodies_are_cut() {
        let mapped = one(r#"{"timeUnixNano":"1","body":{"kvlistValue":{"values":[
                {"key":"order","value":{"intValue":"17"}}]}}}"#);
        assert_eq!(mapped.records[0].body, r#"{"order":17}"#);
        let long = "é".repeat(MAX_BODY_BYTES);
        let mapped = one(&format!(
            r#"{{"timeUnixNano":"1","body":{{"stringValue":"{long}"}}}}"#
        ));
        assert_eq!(mapped.records[0].body.len(), MAX_BODY_BYTES);
    }

    #[test]
    fn ids_are_kept_when_valid_zero_ids_are_absent_and_short_ids_reject() {
        let mapped = one(
            r#"{"timeUnixNano":"1","traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174"}"#,
        );
        let record = &mapped.records[0];
        assert_eq!(
            record.trace_id.map(|id| id.to_string()).as_deref(),
            Some("5b8efff798038103d269b633813fc60c")
        );
        assert_eq!(
            record.span_id.map(|id| id.to_string()).as_deref(),
            Some("eee19b7ec3c1b174")
        );
        let zero = one(r#"{"timeUnixNano":"1","traceId":"00000000000000000000000000000000"}"#);
        assert_eq!(zero.records[0].trace_id, None);
        let short = one(r#"{"timeUnixNano":"1","spanId":"eee19b7e"}"#);
        assert_eq!(short.rejected, 1);
        assert!(short.errors[0].contains("span id"), "{:?}", short.errors);
    }

    #[test]
    fn records_keep_the_attributes_that_explain_them() {
        let stack = "at Pricing.lookup\n".repeat(1000);
        let mapped = one(&format!(
            r#"{{"timeUnixNano":"1","attributes":[
                {{"key":"exception.type","value":{{"stringValue":"java.lang.NullPointerException"}}}},
                {{"key":"exception.stacktrace","value":{{"stringValue":"{}"}}}},
                {{"key":"code.lineno","value":{{"intValue":"42"}}}},
                {{"key":"user.id","value":{{"stringValue":"secret"}}}}]}}"#,
            stack.replace('\n', "\\n")
        ));
        let record = &mapped.records[0];
        let keys: Vec<&str> = record.attributes.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            keys,
            [
                "exception.type",
                "exception.stacktrace",
                "code.lineno",
                "service.version",
                "host.name",
                "otel.scope.name"
            ]
        );
        assert_eq!(
            record.attribute("exception.stacktrace").map(str::len),
            Some(MAX_STACKTRACE_BYTES)
        );
        assert_eq!(record.attribute("code.lineno"), Some("42"));
        assert_eq!(
            record.attribute("otel.scope.name"),
            Some("com.shop.Pricing")
        );
    }

    #[test]
    fn protobuf_requests_decode_and_garbage_is_refused() {
        let request = decode_logs_json(
            br#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"timeUnixNano":"5"}]}]}]}"#,
        )
        .expect("decodes");
        let bytes = request.encode_to_vec();
        let back = logs_from_request(&decode_logs_protobuf(&bytes).expect("decodes"));
        assert_eq!(back.records[0].service, "unknown_service");
        assert!(matches!(
            decode_logs_protobuf(b"\xff\xff"),
            Err(OtlpDecodeError::LogsProtobuf(_))
        ));
        assert_eq!(
            decode_logs_json(b"[")
                .unwrap_err()
                .to_string()
                .split(':')
                .next(),
            Some("otlp")
        );
        assert!(encode_logs_json_response(&OtlpLogs::default().response()) == b"{}");
    }
}
