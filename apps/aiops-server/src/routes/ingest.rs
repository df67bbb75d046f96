//! OpenTelemetry trace ingest: `POST /v1/traces` as the OTLP/HTTP specification describes it.
//!
//! Bodies are `application/x-protobuf` or `application/json` (OTLP's JSON encoding), optionally
//! gzip-compressed. Both the body as sent and the body once decompressed are size-limited; the
//! decompressor reads at most one byte past the limit, so a small "zip bomb" costs no more
//! than a legitimate request. Decoding and mapping run on the blocking thread pool, off the
//! HTTP workers. Spans are mapped by `aiops_telemetry_core::otlp` and recorded through the same
//! collector as the demo shop's, so the same analysis sees them.
//!
//! The answer is an `ExportTraceServiceResponse` in the request's encoding, with a partial
//! success (`rejectedSpans`, `errorMessage`) when some spans could not be used; a body that
//! cannot be read at all is a 400, 413 or 415 with a JSON `{"error": ...}` body. The answers
//! an exporter retries, 429 and 503, carry the `google.rpc.Status` the OTLP specification
//! asks for, in the request's encoding: protobuf for a protobuf request, and for a JSON one
//! the JSON error with the status's `code`, `message` and `details` beside `error`.
//!
//! Nothing acknowledged is lost to a full storage queue: a request's spans are recorded only
//! when the queue has room for all of them (`AppState::admit_spans`); otherwise the answer is
//! 429 with `Retry-After`, nothing of the request is recorded, and the exporter's retry,
//! which every OpenTelemetry exporter makes on 429, delivers it.

use std::io::Read;

use actix_web::error::PayloadError;
use actix_web::http::StatusCode;
use actix_web::http::header::{CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE, HeaderName};
use actix_web::middleware::from_fn;
use actix_web::{FromRequest, Handler, HttpRequest, HttpResponse, Responder, web};
use aiops_telemetry_core::otlp::{
    self, ExportTraceServiceRequest, KeptAttributes, OtlpDecodeError, OtlpSpans,
    RESOURCE_EXHAUSTED, Status, UNAVAILABLE, encode_json_response, encode_protobuf_response,
};
use flate2::read::MultiGzDecoder;
use serde_json::json;
use thiserror::Error;

use super::resource::Resources;
use crate::api_error::ApiError;
use crate::body_deadline::{body_deadline, is_timeout};
use crate::config::IngestLimits;
use crate::guards::{self, BodyLimit};
use crate::pipeline::refusals::count_refusals;
use crate::state::AppState;
use crate::views::error::ErrorBody;
use crate::views::otlp as otlp_body;

/// The route, as OTLP/HTTP exporters default to it.
pub const PATH: &str = "/v1/traces";

/// The content types the route reads.
pub const CONTENT_TYPES: [&str; 2] = [PROTOBUF, JSON];

/// The content encodings the route reads.
pub const CONTENT_ENCODINGS: [&str; 2] = ["gzip", "identity"];

const PROTOBUF: &str = "application/x-protobuf";
const JSON: &str = "application/json";

/// The two OTLP/HTTP encodings; the response uses the request's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    /// `application/x-protobuf`.
    Protobuf,
    /// `application/json`.
    Json,
}

impl Encoding {
    /// The encoding a `Content-Type` header names (parameters such as `charset` are ignored).
    pub fn from_content_type(header: Option<&str>) -> Result<Self, IngestError> {
        let Some(header) = header else {
            return Err(IngestError::ContentType(String::new()));
        };
        let media_type = header.split(';').next().unwrap_or("").trim();
        if media_type.eq_ignore_ascii_case(PROTOBUF)
            || media_type.eq_ignore_ascii_case("application/protobuf")
        {
            Ok(Self::Protobuf)
        } else if media_type.eq_ignore_ascii_case(JSON) {
            Ok(Self::Json)
        } else {
            Err(IngestError::ContentType(header.to_owned()))
        }
    }

    /// The `Content-Type` of the response.
    pub const fn content_type(self) -> &'static str {
        match self {
            Self::Protobuf => PROTOBUF,
            Self::Json => JSON,
        }
    }
}

/// Why an OTLP request was refused as a whole.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum IngestError {
    /// The `Content-Type` is missing or not one the route reads (415).
    #[error(
        "otlp: unsupported content type {0:?}; accepted: application/x-protobuf, application/json"
    )]
    ContentType(String),
    /// The `Content-Encoding` is not one the route reads (415).
    #[error("otlp: unsupported content encoding {0:?}; accepted: gzip, identity")]
    ContentEncoding(String),
    /// The body as sent is over the limit (413).
    #[error("otlp: request body is too large; accepted: at most {limit} bytes as sent")]
    BodyTooLarge {
        /// The limit, in bytes.
        limit: usize,
    },
    /// The body decompresses to more than the limit (413).
    #[error("otlp: request body is too large once decompressed; accepted: at most {limit} bytes")]
    DecompressedTooLarge {
        /// The limit, in bytes.
        limit: usize,
    },
    /// The body says gzip but is not (400).
    #[error("otlp: invalid gzip body: {0}")]
    Gzip(String),
    /// The body could not be read from the connection (400).
    #[error("otlp: could not read the request body: {0}")]
    Read(String),
    /// The body is not an `ExportTraceServiceRequest` in the declared encoding (400).
    #[error("{0}")]
    Decode(#[from] OtlpDecodeError),
}

impl From<IngestError> for ApiError {
    fn from(error: IngestError) -> Self {
        let message = error.to_string();
        match error {
            IngestError::ContentType(_) => {
                ApiError::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, message)
                    .with("accepted_content_types", json!(CONTENT_TYPES))
            }
            IngestError::ContentEncoding(_) => {
                ApiError::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, message)
                    .with("accepted_content_encodings", json!(CONTENT_ENCODINGS))
            }
            IngestError::BodyTooLarge { limit } | IngestError::DecompressedTooLarge { limit } => {
                ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, message)
                    .with("limit_bytes", json!(limit))
            }
            IngestError::Gzip(_) | IngestError::Read(_) | IngestError::Decode(_) => {
                ApiError::bad_request(message)
            }
        }
    }
}

/// Registers `POST /v1/traces` with its own body limit (`limits.max_body_bytes`, checked
/// before the token); when an API token is configured, exporters send it as
/// `Authorization: Bearer <token>` (e.g. `OTEL_EXPORTER_OTLP_HEADERS`).
pub fn configure(
    config: &mut web::ServiceConfig,
    resources: &mut Resources<'_>,
    limits: IngestLimits,
) {
    configure_export(config, resources, limits, PATH, export_traces);
}

/// Registers an OTLP export route (`POST /v1/traces`, `POST /v1/logs`): the ingest body limit,
/// checked before the token, then the token, the body read deadline, the browser guard, and
/// the refusals counted by reason.
pub(super) fn configure_export<F, Args>(
    config: &mut web::ServiceConfig,
    resources: &mut Resources<'_>,
    limits: IngestLimits,
    path: &str,
    handler: F,
) where
    F: Handler<Args>,
    Args: FromRequest + 'static,
    F::Output: Responder + 'static,
{
    config.service(
        resources
            .post(path, handler)
            .app_data(BodyLimit(limits.max_body_bytes))
            .wrap(from_fn(guards::require_token))
            .wrap(from_fn(guards::limit_body))
            .wrap(from_fn(body_deadline))
            .wrap(from_fn(guards::browser_guard))
            .wrap(from_fn(count_refusals)),
    );
}

/// `POST /v1/traces`: records the spans of an OTLP `ExportTraceServiceRequest`.
#[utoipa::path(
    post,
    path = "/v1/traces",
    operation_id = "exportTraces",
    tag = "ingest",
    request_body(
        description = "An OTLP ExportTraceServiceRequest; `Content-Encoding: gzip` is accepted",
        content(
            (otlp_body::ExportTraceServiceRequest = "application/x-protobuf"),
            (otlp_body::ExportTraceServiceRequest = "application/json"),
        )
    ),
    security((), ("bearer" = [])),
    responses(
        (status = 200, description = "Accepted; partial success names rejected spans", content(
            (otlp_body::ExportTraceServiceResponse = "application/x-protobuf"),
            (otlp_body::ExportTraceServiceResponse = "application/json"),
        )),
        (status = 400, description = "Not an OTLP request, or invalid gzip", body = ErrorBody),
        (status = 408, description = "The body did not arrive within the body read timeout", body = ErrorBody),
        (status = 413, description = "Body too large, as sent or decompressed", body = ErrorBody),
        (status = 415, description = "Unsupported content type or encoding", body = ErrorBody),
        (status = 429, description = "The span queue cannot take the request's spans now; nothing was recorded. Retry after the `Retry-After` header's seconds. A google.rpc.Status in the request's encoding (with a RetryInfo detail); as JSON, also the `error` body",
            content(
                (otlp_body::RpcStatus = "application/x-protobuf"),
                (ErrorBody = "application/json"),
            ),
            headers(("Retry-After" = u64, description = "Seconds to wait before sending the same request again"))),
        (status = 503, description = "The server is shutting down; retry later. A google.rpc.Status in the request's encoding; as JSON, also the `error` body",
            content(
                (otlp_body::RpcStatus = "application/x-protobuf"),
                (ErrorBody = "application/json"),
            )),
    )
)]
pub async fn export_traces(
    request: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let encoding = Encoding::from_content_type(header(&request, CONTENT_TYPE))?;
    match ingest(&request, payload, &state, encoding).await {
        Ok(response) => Ok(response),
        Err(error) => retryable_status(error, encoding),
    }
}

/// The answers OTLP exporters retry, 429 and 503, as the `google.rpc.Status` OTLP/HTTP
/// specifies: protobuf for a protobuf request; for a JSON one, the JSON error with the
/// status's members beside `error`. Other errors stay JSON error bodies.
pub fn retryable_status(error: ApiError, encoding: Encoding) -> Result<HttpResponse, ApiError> {
    let code = match error.status() {
        StatusCode::TOO_MANY_REQUESTS => RESOURCE_EXHAUSTED,
        StatusCode::SERVICE_UNAVAILABLE => UNAVAILABLE,
        _ => return Err(error),
    };
    let retry_after = error
        .retry_after_seconds()
        .map(std::time::Duration::from_secs);
    let status = Status::new(code, error.message(), retry_after);
    match encoding {
        Encoding::Protobuf => {
            let mut response = HttpResponse::build(error.status());
            for (name, value) in error.headers() {
                response.insert_header((name.clone(), value.clone()));
            }
            Ok(response.content_type(PROTOBUF).body(status.to_protobuf()))
        }
        Encoding::Json => Err(status
            .json_members()
            .into_iter()
            .fold(error, |error, (key, value)| error.with(key, value))),
    }
}

/// Reads, decodes and records one request whose encoding is known.
async fn ingest(
    request: &HttpRequest,
    payload: web::Payload,
    state: &AppState,
    encoding: Encoding,
) -> Result<HttpResponse, ApiError> {
    let limits = state.settings.ingest;
    let (_, gzip, body) = read_body(request, payload, limits).await?;
    let kept = state.settings.span_attributes.clone();
    let mapped = web::block(move || decode_and_map(&body, encoding, gzip, limits, &kept))
        .await
        .map_err(|_| ApiError::unavailable("otlp: the server is shutting down; retry later"))??;

    let response = accept(state, mapped)?;
    let body = match encoding {
        Encoding::Protobuf => encode_protobuf_response(&response),
        Encoding::Json => encode_json_response(&response),
    };
    Ok(HttpResponse::Ok()
        .content_type(encoding.content_type())
        .body(body))
}

/// Reads an OTLP/HTTP body: its encoding, whether it is gzip, and the bytes as sent, within
/// the limit as sent.
pub async fn read_body(
    request: &HttpRequest,
    payload: web::Payload,
    limits: IngestLimits,
) -> Result<(Encoding, bool, web::Bytes), ApiError> {
    let encoding = Encoding::from_content_type(header(request, CONTENT_TYPE))?;
    let gzip = is_gzip(header(request, CONTENT_ENCODING))?;
    let declared =
        header(request, CONTENT_LENGTH).and_then(|value| value.trim().parse::<u64>().ok());
    if declared.is_some_and(|length| length > limits.max_body_bytes as u64) {
        return Err(IngestError::BodyTooLarge {
            limit: limits.max_body_bytes,
        }
        .into());
    }
    let body = match payload.to_bytes_limited(limits.max_body_bytes).await {
        Ok(Ok(body)) => body,
        Ok(Err(error)) if error.as_error::<PayloadError>().is_some_and(is_timeout) => {
            return Err(ApiError::request_timeout(format!(
                "otlp: {error}; accepted: a whole body within the server's body read timeout"
            )));
        }
        Ok(Err(error)) => return Err(IngestError::Read(error.to_string()).into()),
        Err(_) => {
            return Err(IngestError::BodyTooLarge {
                limit: limits.max_body_bytes,
            }
            .into());
        }
    };
    Ok((encoding, gzip, body))
}

/// Records the usable spans, all of them or (429) none, and builds the OTLP response.
fn accept(
    state: &AppState,
    mapped: OtlpSpans,
) -> Result<otlp::ExportTraceServiceResponse, ApiError> {
    let response = mapped.response();
    let rejected = mapped.rejected;
    let offered = mapped.spans.len();
    let outcome = state.admit_spans(mapped.spans).map_err(|full| {
        log::debug!(
            "spans={offered} queued={} capacity={} Refused an OTLP request: the span queue is full.",
            full.queued,
            full.capacity
        );
        ApiError::too_many_requests(
            format!(
                "otlp: the span queue cannot take {offered} more spans now ({} of {} waiting for storage); \
                 nothing of this request was recorded; accepted: the same request again after the Retry-After delay",
                full.queued, full.capacity
            ),
            full.retry_after_seconds(),
        )
    })?;
    if outcome.dropped > 0 {
        // The writer shut down between the admission and the recording.
        return Err(ApiError::unavailable(
            "otlp: the server is shutting down; retry later",
        ));
    }
    state.span_metrics.add_rejected(rejected);
    if rejected > 0 {
        log::debug!(
            "rejected={rejected} reason={:?} Rejected OTLP spans.",
            response
                .partial_success
                .as_ref()
                .map(|p| p.error_message.as_str())
        );
    }
    Ok(response)
}

/// Decompresses (bounded), decodes and maps a body; CPU-bound, run off the HTTP workers. A
/// request without spans is a valid `ExportTraceServiceRequest`, answered as a full success
/// that records nothing.
pub fn decode_and_map(
    body: &[u8],
    encoding: Encoding,
    gzip: bool,
    limits: IngestLimits,
    kept: &KeptAttributes,
) -> Result<OtlpSpans, IngestError> {
    let decompressed;
    let bytes = if gzip {
        decompressed = gunzip(body, limits.max_decompressed_bytes)?;
        &decompressed[..]
    } else {
        body
    };
    let request: ExportTraceServiceRequest = match encoding {
        Encoding::Protobuf => otlp::decode_protobuf(bytes)?,
        Encoding::Json => otlp::decode_json(bytes)?,
    };
    Ok(otlp::spans_keeping(&request, kept))
}

/// Decompresses gzip, reading at most `limit + 1` bytes of output.
pub fn gunzip(body: &[u8], limit: usize) -> Result<Vec<u8>, IngestError> {
    let mut out = Vec::with_capacity(body.len().saturating_mul(4).min(limit));
    MultiGzDecoder::new(body)
        .take(limit as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|error| IngestError::Gzip(error.to_string()))?;
    if out.len() > limit {
        return Err(IngestError::DecompressedTooLarge { limit });
    }
    Ok(out)
}

pub(crate) fn is_gzip(header: Option<&str>) -> Result<bool, IngestError> {
    match header.map(str::trim) {
        None | Some("") => Ok(false),
        Some(value) if value.eq_ignore_ascii_case("identity") => Ok(false),
        Some(value)
            if value.eq_ignore_ascii_case("gzip") || value.eq_ignore_ascii_case("x-gzip") =>
        {
            Ok(true)
        }
        Some(value) => Err(IngestError::ContentEncoding(value.to_owned())),
    }
}

pub(crate) fn header(request: &HttpRequest, name: HeaderName) -> Option<&str> {
    request
        .headers()
        .get(name)
        .and_then(|value| value.to_str().ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::Compression;
    use flate2::write::GzEncoder;
    use std::io::Write;

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
        encoder.write_all(bytes).expect("compresses");
        encoder.finish().expect("finishes")
    }

    const ONE_SPAN: &str = r#"{"resourceSpans":[{"scopeSpans":[{"spans":[{
        "traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174",
        "name":"GET /","kind":2,"startTimeUnixNano":"1","endTimeUnixNano":"2"}]}]}]}"#;

    #[test]
    fn content_types_ignore_parameters_and_case() {
        assert_eq!(
            Encoding::from_content_type(Some("application/json; charset=utf-8")).ok(),
            Some(Encoding::Json)
        );
        assert_eq!(
            Encoding::from_content_type(Some("Application/X-Protobuf")).ok(),
            Some(Encoding::Protobuf)
        );
        assert!(matches!(
            Encoding::from_content_type(Some("text/plain")),
            Err(IngestError::ContentType(_))
        ));
        assert!(matches!(
            Encoding::from_content_type(None),
            Err(IngestError::ContentType(_))
        ));
    }

    #[test]
    fn only_gzip_and_identity_encodings_are_read() {
        assert!(is_gzip(Some("gzip")).expect("gzip"));
        assert!(!is_gzip(Some("identity")).expect("identity"));
        assert!(!is_gzip(None).expect("none"));
        assert!(matches!(
            is_gzip(Some("br")),
            Err(IngestError::ContentEncoding(_))
        ));
    }

    #[test]
    fn gzip_bodies_are_decoded() {
        let mapped = decode_and_map(
            &gzip(ONE_SPAN.as_bytes()),
            Encoding::Json,
            true,
            IngestLimits::default(),
            &KeptAttributes::default(),
        )
        .expect("valid");
        assert_eq!(mapped.spans.len(), 1);
    }

    #[test]
    fn decompression_stops_one_byte_past_the_limit() {
        let bomb = gzip(&vec![0u8; 10 * 1024 * 1024]);
        assert!(bomb.len() < 64 * 1024, "zeros compress well");
        assert!(matches!(
            gunzip(&bomb, 1024 * 1024),
            Err(IngestError::DecompressedTooLarge { limit: 1_048_576 })
        ));
        assert_eq!(gunzip(&gzip(b"abc"), 3).expect("at the limit"), b"abc");
    }

    #[test]
    fn a_body_that_is_not_gzip_is_a_bad_request() {
        assert!(matches!(
            gunzip(b"plain text", 1024),
            Err(IngestError::Gzip(_))
        ));
    }

    #[test]
    fn a_request_without_spans_maps_to_nothing() {
        let empty = decode_and_map(
            b"{}",
            Encoding::Json,
            false,
            IngestLimits::default(),
            &KeptAttributes::default(),
        )
        .expect("an empty request is valid");
        assert_eq!(empty.total(), 0);
        let no_spans = decode_and_map(
            b"",
            Encoding::Protobuf,
            false,
            IngestLimits::default(),
            &KeptAttributes::default(),
        )
        .expect("an empty message is valid");
        assert_eq!(no_spans.total(), 0);
    }

    #[actix_web::test]
    async fn only_the_answers_exporters_retry_become_a_status() {
        use actix_web::body::to_bytes;
        use prost::Message;

        let unavailable =
            retryable_status(ApiError::unavailable("shutting down"), Encoding::Protobuf)
                .expect("a protobuf answer");
        assert_eq!(unavailable.status(), StatusCode::SERVICE_UNAVAILABLE);
        let body = to_bytes(unavailable.into_body()).await.expect("body");
        let status = Status::decode(body).expect("a google.rpc.Status");
        assert_eq!(
            (status.code, status.message.as_str()),
            (UNAVAILABLE, "shutting down")
        );
        assert_eq!(status.retry_delay(), None);

        let bad = retryable_status(ApiError::bad_request("bad"), Encoding::Protobuf)
            .expect_err("stays a JSON error");
        assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    }

    #[test]
    fn error_messages_say_what_is_accepted() {
        assert_eq!(
            IngestError::ContentType("text/plain".into()).to_string(),
            "otlp: unsupported content type \"text/plain\"; accepted: application/x-protobuf, application/json"
        );
        assert_eq!(
            IngestError::ContentEncoding("br".into()).to_string(),
            "otlp: unsupported content encoding \"br\"; accepted: gzip, identity"
        );
        assert_eq!(
            IngestError::DecompressedTooLarge { limit: 10 }.to_string(),
            "otlp: request body is too large once decompressed; accepted: at most 10 bytes"
        );
    }
}
