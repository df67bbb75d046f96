//! `GET /aiops/traces/{trace_id}`: one trace's spans as a tree, from the database or, for spans
//! it does not hold, from the engine's buffer of recent traces.

use actix_web::{HttpRequest, web};
use aiops_telemetry_core::{Span, TraceId};
use serde_json::json;

use super::database::settle_writer;
use super::params::Params;
use crate::api_error::ApiError;
use crate::state::AppState;
use crate::views::error::ErrorBody;
use crate::views::trace::TraceTree;

const TRACE_ID_FORMAT: &str = "32 lower-case hexadecimal digits, not all zero \
     (e.g. 4bf92f3577b34da6a3ce929d0e0e4736), as in the x-trace-id response header";

/// `GET /aiops/traces/{trace_id}`.
#[utoipa::path(
    get,
    path = "/aiops/traces/{trace_id}",
    operation_id = "getTrace",
    tag = "aiops",
    params(("trace_id" = String, Path, description = "32 lower-case hex digits (the x-trace-id response header)")),
    responses(
        (status = 200, description = "The trace as a span tree", body = TraceTree),
        (status = 400, description = "Invalid trace id", body = ErrorBody),
        (status = 404, description = "No spans of that trace are kept", body = ErrorBody),
    )
)]
pub async fn trace(
    request: HttpRequest,
    trace_id: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<web::Json<TraceTree>, ApiError> {
    Params::parse(&request, &[])?;
    let text = trace_id.into_inner();
    let spans = load_trace(&state, parse_trace_id(&text)?).await?;
    Ok(web::Json(TraceTree::new(
        &state.settings.endpoint_naming,
        &spans,
    )))
}

/// The trace id in `text`, or 400 saying what a trace id looks like.
pub fn parse_trace_id(text: &str) -> Result<TraceId, ApiError> {
    TraceId::from_hex(text).map_err(|error| {
        ApiError::bad_request(format!(
            "invalid trace id {text:?}: {error}; accepted: {TRACE_ID_FORMAT}"
        ))
        .with("parameter", json!("trace_id"))
    })
}

/// Every kept span of trace `id`: from the database, which has them whole with their
/// attributes, or else from the engine's buffer of recent traces; 404 when neither has any.
pub async fn load_trace(state: &AppState, id: TraceId) -> Result<Vec<Span>, ApiError> {
    // Flushing the writer first makes the spans of requests answered before this one
    // visible; a writer that cannot commit (another process holds the database) is not
    // waited for.
    let store = state.store.clone();
    let writer = state.writer.clone();
    let stored = tokio::task::spawn_blocking(move || {
        settle_writer(&writer);
        store.trace(id)
    })
    .await
    .map_err(|error| ApiError::internal(format!("trace look-up failed: {error}")))?;
    let spans = match stored {
        Ok(spans) if !spans.is_empty() => spans,
        // Not stored (the queue was full, or the database is not answering): the engine's
        // buffer of recent traces may still hold it, without attributes.
        stored => {
            let buffered = state.engine.trace(id).unwrap_or_default();
            match stored {
                Err(error) if buffered.is_empty() => {
                    log::warn!("error={error} Trace look-up in the database failed.");
                    return Err(ApiError::unavailable(format!(
                        "the span database is not answering ({error}); try again shortly"
                    )));
                }
                _ => buffered,
            }
        }
    };
    if spans.is_empty() {
        return Err(ApiError::not_found(format!(
            "no spans of trace {id} are kept; traces are kept for the retention period"
        ))
        .with("trace_id", json!(id.to_string())));
    }
    Ok(spans)
}
