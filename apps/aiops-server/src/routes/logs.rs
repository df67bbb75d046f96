//! OpenTelemetry log ingest, `POST /v1/logs`, as `POST /v1/traces` reads spans (the same
//! encodings, gzip, size limits, partial success, error bodies and 429 back-pressure), and
//! `GET /aiops/logs`, the stored records by trace, service, time and severity.

use actix_web::{HttpRequest, HttpResponse, web};
use aiops_storage_sqlite::LogQuery;
use aiops_telemetry_core::LogSeverity;
use aiops_telemetry_core::otlp::{
    self, ExportLogsServiceRequest, ExportLogsServiceResponse, OtlpLogs, encode_logs_json_response,
    encode_logs_protobuf_response,
};
use serde_json::json;

use super::changes::parse_time;
use super::database;
use super::ingest::{Encoding, IngestError, configure_export, gunzip, read_body};
use super::params::Params;
use super::resource::Resources;
use super::traces::parse_trace_id;
use crate::api_error::ApiError;
use crate::config::IngestLimits;
use crate::state::AppState;
use crate::views::error::ErrorBody;
use crate::views::logs::{LogEntry, LogList};
use crate::views::otlp as otlp_body;

/// The ingest route, as OTLP/HTTP exporters default to it.
pub const INGEST_PATH: &str = "/v1/logs";

/// Records listed when `limit` is not given.
const DEFAULT_LIMIT: usize = 100;
/// The most records one answer lists.
const MAX_LIMIT: usize = 1_000;

/// How long a read waits for queued records to be committed.
const SETTLE_WAIT: std::time::Duration = std::time::Duration::from_millis(500);

/// Registers `POST /v1/logs` with the ingest body limit, its guards, and its refusal counts.
pub fn configure(
    config: &mut web::ServiceConfig,
    resources: &mut Resources<'_>,
    limits: IngestLimits,
) {
    configure_export(config, resources, limits, INGEST_PATH, export_logs);
}

/// `POST /v1/logs`: records the log records of an OTLP `ExportLogsServiceRequest`.
#[utoipa::path(
    post,
    path = "/v1/logs",
    operation_id = "exportLogs",
    tag = "ingest",
    request_body(
        description = "An OTLP ExportLogsServiceRequest; `Content-Encoding: gzip` is accepted",
        content(
            (otlp_body::ExportLogsServiceRequest = "application/x-protobuf"),
            (otlp_body::ExportLogsServiceRequest = "application/json"),
        )
    ),
    security((), ("bearer" = [])),
    responses(
        (status = 200, description = "Accepted; partial success names rejected log records", content(
            (otlp_body::ExportLogsServiceResponse = "application/x-protobuf"),
            (otlp_body::ExportLogsServiceResponse = "application/json"),
        )),
        (status = 400, description = "Not an OTLP logs request, or invalid gzip", body = ErrorBody),
        (status = 408, description = "The body did not arrive within the body read timeout", body = ErrorBody),
        (status = 413, description = "Body too large, as sent or decompressed", body = ErrorBody),
        (status = 415, description = "Unsupported content type or encoding", body = ErrorBody),
        (status = 429, description = "The log queue cannot take the request's records now; nothing was recorded. Retry after the `Retry-After` header's seconds", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait before sending the same request again"))),
        (status = 503, description = "The server is shutting down", body = ErrorBody),
    )
)]
pub async fn export_logs(
    request: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let limits = state.settings.ingest;
    let (encoding, gzip, body) = read_body(&request, payload, limits).await?;
    let mapped = web::block(move || decode_logs(&body, encoding, gzip, limits))
        .await
        .map_err(|_| ApiError::unavailable("otlp: the server is shutting down; retry later"))??;
    let response = accept(&state, mapped)?;
    let body = match encoding {
        Encoding::Protobuf => encode_logs_protobuf_response(&response),
        Encoding::Json => encode_logs_json_response(&response),
    };
    Ok(HttpResponse::Ok()
        .content_type(encoding.content_type())
        .body(body))
}

/// Decompresses (bounded), decodes and maps a body; CPU-bound, run off the HTTP workers.
pub fn decode_logs(
    body: &[u8],
    encoding: Encoding,
    gzip: bool,
    limits: IngestLimits,
) -> Result<OtlpLogs, IngestError> {
    let decompressed;
    let bytes = if gzip {
        decompressed = gunzip(body, limits.max_decompressed_bytes)?;
        &decompressed[..]
    } else {
        body
    };
    let request: ExportLogsServiceRequest = match encoding {
        Encoding::Protobuf => otlp::decode_logs_protobuf(bytes)?,
        Encoding::Json => otlp::decode_logs_json(bytes)?,
    };
    // A request without records is a valid ExportLogsServiceRequest: a full success that
    // records nothing, as for traces.
    Ok(otlp::logs_from_request(&request))
}

/// Records the usable records, all of them or (429) none, and builds the OTLP response.
fn accept(state: &AppState, mapped: OtlpLogs) -> Result<ExportLogsServiceResponse, ApiError> {
    let response = mapped.response();
    let rejected = mapped.rejected;
    let offered = mapped.records.len();
    let outcome = state.logs.admit(mapped.records).map_err(|full| {
        ApiError::too_many_requests(
            format!(
                "otlp: the log queue cannot take {offered} more records now ({} of {} waiting for storage); \
                 nothing of this request was recorded; accepted: the same request again after the Retry-After delay",
                full.queued, full.capacity
            ),
            1,
        )
    })?;
    if outcome.dropped > 0 {
        return Err(ApiError::unavailable(
            "otlp: the server is shutting down; retry later",
        ));
    }
    state.logs.add_rejected(rejected);
    Ok(response)
}

/// `GET /aiops/logs`: stored log records.
#[utoipa::path(
    get,
    path = "/aiops/logs",
    operation_id = "listLogs",
    tag = "aiops",
    params(
        ("trace_id" = Option<String>, Query, description = "Only this trace's records (32 hex digits), oldest first"),
        ("service" = Option<String>, Query, description = "Only this service's records"),
        ("since" = Option<String>, Query, description = "Only records at or after this time: RFC 3339, or Unix nanoseconds"),
        ("severity" = Option<String>, Query, description = "Only records at least this severe: TRACE, DEBUG, INFO, WARN, ERROR or FATAL, or a number 1 to 24"),
        ("limit" = Option<usize>, Query, description = "At most this many records, 1 to 1000 (default 100)"),
    ),
    responses(
        (status = 200, description = "The records: a trace's oldest first, otherwise newest first", body = LogList),
        (status = 400, description = "Invalid parameter", body = ErrorBody),
        (status = 503, description = "The database is not answering", body = ErrorBody),
    )
)]
pub async fn list_logs(
    request: HttpRequest,
    state: web::Data<AppState>,
) -> Result<web::Json<LogList>, ApiError> {
    let params = Params::parse(
        &request,
        &["trace_id", "service", "since", "severity", "limit"],
    )?;
    let query = LogQuery {
        trace_id: params.get("trace_id").map(parse_trace_id).transpose()?,
        service: params.get("service").map(str::to_owned),
        since_unix_nanos: params
            .get("since")
            .map(|text| parse_time("since", text))
            .transpose()?,
        min_severity: params.get("severity").map(parse_severity).transpose()?,
        limit: parse_limit(&params)?,
    };
    let records = read_logs(&state, query).await?;
    let logs: Vec<LogEntry> = records.iter().map(LogEntry::new).collect();
    Ok(web::Json(LogList {
        count: logs.len(),
        logs,
    }))
}

/// The stored records `query` selects, once the records accepted before are committed.
pub async fn read_logs(
    state: &AppState,
    query: LogQuery,
) -> Result<Vec<aiops_telemetry_core::LogRecord>, ApiError> {
    let logs = state.logs.clone();
    database::query(&state.store, move |store| {
        logs.settle(SETTLE_WAIT);
        store.logs(&query)
    })
    .await
}

fn parse_severity(text: &str) -> Result<LogSeverity, ApiError> {
    let severity = match text.trim().parse::<u8>() {
        Ok(number @ 1..=24) => Some(LogSeverity(number)),
        Ok(_) => None,
        Err(_) => Some(LogSeverity::from_text(text)).filter(|s| *s != LogSeverity::UNSPECIFIED),
    };
    severity.ok_or_else(|| {
        ApiError::bad_request(format!(
            "invalid severity {text:?}; accepted: TRACE, DEBUG, INFO, WARN, ERROR, FATAL, or a number 1 to 24"
        ))
        .with("parameter", json!("severity"))
    })
}

/// The `limit` parameter, 1 to [`MAX_LIMIT`], [`DEFAULT_LIMIT`] when absent.
pub fn parse_limit(params: &Params) -> Result<usize, ApiError> {
    match params.get("limit") {
        None => Ok(DEFAULT_LIMIT),
        Some(text) => text
            .trim()
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_LIMIT).contains(n))
            .ok_or_else(|| {
                ApiError::bad_request(format!(
                    "invalid limit {text:?}; accepted: an integer from 1 to {MAX_LIMIT}"
                ))
                .with("parameter", json!("limit"))
            }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severities_are_names_or_numbers() {
        assert_eq!(parse_severity("error").ok(), Some(LogSeverity::ERROR));
        assert_eq!(parse_severity("21").ok(), Some(LogSeverity(21)));
        for bad in ["0", "25", "loud", ""] {
            let error = parse_severity(bad).expect_err(bad);
            assert!(error.message().contains("accepted: TRACE"), "{bad}");
        }
    }

    #[test]
    fn a_request_without_log_records_maps_to_nothing() {
        let empty = decode_logs(b"{}", Encoding::Json, false, IngestLimits::default())
            .expect("an empty request is valid");
        assert_eq!(empty.total(), 0);
        // OTLP JSON receivers ignore unknown fields: a traces request holds no log records.
        let traces = decode_logs(
            b"{\"resourceSpans\":[]}",
            Encoding::Json,
            false,
            IngestLimits::default(),
        )
        .expect("unknown fields are ignored");
        assert_eq!(traces.total(), 0);
        let error = decode_logs(b"[1]", Encoding::Json, false, IngestLimits::default())
            .expect_err("not an object");
        assert!(
            error.to_string().contains("ExportLogsServiceRequest"),
            "{error}"
        );
    }
}
