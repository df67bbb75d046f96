//! Reads see the spans of the requests answered before them.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::web;

use super::span_batch::SpanBatcher;

/// Hands every request span waiting in the per-thread batches on to the collectors before the
/// request is served, so that reads see the spans of requests answered before them.
/// Wrapped around the `/aiops` scope and `GET /metrics`; reads the batcher registered as
/// `web::Data<SpanBatcher>`.
pub async fn settle_spans(
    request: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    if let Some(batcher) = request.app_data::<web::Data<SpanBatcher>>() {
        batcher.flush_pending();
    }
    next.call(request).await
}
