//! The OTLP/HTTP bodies of `POST /v1/traces` and `POST /v1/logs`, for the document only: their encoding (protobuf
//! or OTLP JSON) is OpenTelemetry's, read and written by `aiops_telemetry_core::otlp`, not by
//! serde here.

use serde_json::Value;
use utoipa::ToSchema;

/// `POST /v1/traces` body: an OTLP `ExportTraceServiceRequest`, protobuf or OTLP JSON
/// (see <https://opentelemetry.io/docs/specs/otlp/#otlphttp>).
#[derive(Clone, Debug, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExportTraceServiceRequest {
    /// Spans grouped by resource (`service.name`) and instrumentation scope; a request
    /// without any is a full success that records nothing.
    #[schema(value_type = Vec<Object>, required = false)]
    pub resource_spans: Vec<Value>,
}

/// `POST /v1/traces` answer: empty on full success (`{}`), otherwise a partial success.
#[derive(Clone, Debug, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExportTraceServiceResponse {
    /// `{"rejectedSpans": N, "errorMessage": "..."}` when spans were rejected.
    #[schema(value_type = Option<Object>)]
    pub partial_success: Option<Value>,
}

/// `google.rpc.Status`, the body of a 429 or 503 answer to a protobuf request (and, in OTLP
/// JSON, the `code`, `message` and `details` members of the JSON answer).
#[derive(Clone, Debug, ToSchema)]
pub struct RpcStatus {
    /// 8 (`RESOURCE_EXHAUSTED`) for 429, 14 (`UNAVAILABLE`) for 503.
    pub code: i32,
    /// What happened, as in the JSON `error`.
    pub message: String,
    /// A `google.rpc.RetryInfo` with the `Retry-After` delay, on 429.
    #[schema(value_type = Vec<Object>)]
    pub details: Vec<Value>,
}

/// `POST /v1/logs` body: an OTLP `ExportLogsServiceRequest`, protobuf or OTLP JSON.
#[derive(Clone, Debug, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExportLogsServiceRequest {
    /// Log records grouped by resource (`service.name`) and instrumentation scope.
    #[schema(value_type = Vec<Object>, required = false)]
    pub resource_logs: Vec<Value>,
}

/// `POST /v1/logs` answer: empty on full success (`{}`), otherwise a partial success.
#[derive(Clone, Debug, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExportLogsServiceResponse {
    /// `{"rejectedLogRecords": N, "errorMessage": "..."}` when records were rejected.
    #[schema(value_type = Option<Object>)]
    pub partial_success: Option<Value>,
}
