//! Instrumentation of the demo shop: every request becomes a server span, recorded without
//! waiting for storage (batched per worker thread, see [`crate::pipeline::span_batch`]), and
//! chaos is applied before the handler runs.

use std::time::Instant;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{HttpMessage, ResponseError, web};
use aiops_telemetry_core::{Attributes, Span, SpanId, SpanKind, SpanStatus, TraceId, TraceParent};
use serde_json::json;

use super::table::{SHOP_ROUTES, SHOP_SERVICE};
use crate::api_error::ApiError;
use crate::clock::now_unix_nanos;
use crate::state::AppState;

/// The span of the request being served, for handlers that call other services.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RequestSpan {
    /// The trace the request belongs to (the caller's, or a new one).
    pub trace_id: TraceId,
    /// This request's own span.
    pub span_id: SpanId,
}

/// Response header carrying the trace id, for `GET /aiops/traces/{trace_id}`.
pub const TRACE_ID_HEADER: &str = "x-trace-id";

// Header names built once: a look-up by `&str` parses and validates the name every time.
static TRACE_ID: HeaderName = HeaderName::from_static(TRACE_ID_HEADER);
static TRACEPARENT: HeaderName = HeaderName::from_static(TraceParent::HEADER);

/// Middleware (for `actix_web::middleware::from_fn`) wrapped around each demo-shop resource.
///
/// Requests with a method the route does not serve pass through unrecorded (they get a 405).
/// With telemetry off, the middleware only applies chaos: no context, span or header.
pub async fn instrument(
    request: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let Some(state) = request.app_data::<web::Data<AppState>>().cloned() else {
        return Ok(next.call(request).await?.map_into_boxed_body());
    };
    let route = SHOP_ROUTES
        .iter()
        .find(|route| route.path == request.path() && route.method == request.method().as_str());
    let Some(&route) = route else {
        return Ok(next.call(request).await?.map_into_boxed_body());
    };
    if !state.telemetry_enabled() {
        return serve(request, &state, route.path, next).await;
    }

    let start_unix_nanos = now_unix_nanos();
    let started = Instant::now();
    let parent = request
        .headers()
        .get(&TRACEPARENT)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| TraceParent::parse(value).ok());
    let context = RequestSpan {
        trace_id: parent.map_or_else(TraceId::random, |parent| parent.trace_id),
        span_id: SpanId::random(),
    };
    if route.calls_dependencies {
        request.extensions_mut().insert(context);
    }

    let outcome = serve(request, &state, route.path, next).await;

    let status = match &outcome {
        Ok(response) => response.status().as_u16(),
        Err(error) => error.as_response_error().status_code().as_u16(),
    };
    let elapsed = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
    let mut span = Span::new(context.trace_id, context.span_id, SHOP_SERVICE, route.path)
        .with_kind(SpanKind::Server)
        .with_timing(start_unix_nanos, elapsed)
        .with_http_status(status)
        .with_status(if status >= 500 {
            SpanStatus::Error
        } else {
            SpanStatus::Unset
        });
    // The route's attributes are one static list: nothing to allocate per span.
    span.attributes = Attributes::Borrowed(route.attributes);
    if let Some(parent) = parent {
        span = span.with_parent(parent.parent_id);
    }
    state.request_spans.record(span);

    let mut response = outcome?;
    if let Ok(value) = HeaderValue::from_bytes(&context.trace_id.to_hex_bytes()) {
        response.headers_mut().insert(TRACE_ID.clone(), value);
    }
    Ok(response)
}

/// Applies chaos to a request to `path`, then serves it.
async fn serve(
    request: ServiceRequest,
    state: &AppState,
    path: &str,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let decision = state.chaos.decide(path);
    if let Some(delay) = decision.delay {
        tokio::time::sleep(delay).await;
    }
    if let Some(hang) = decision.hang {
        tokio::time::sleep(hang).await;
    }
    if decision.fail {
        let error = ApiError::internal(format!(
            "injected failure: chaos is failing a share of {path} requests (see GET /simulate/status)"
        ))
        .with("chaos", json!(true));
        return Ok(request.into_response(error.error_response()));
    }
    next.call(request)
        .await
        .map(ServiceResponse::map_into_boxed_body)
}
