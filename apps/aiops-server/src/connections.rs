//! Connections over `--max-connections` refused at once, not left waiting.
//!
//! actix stops accepting when its workers hold their maximum of connections, and the excess
//! then waits in the kernel's listen backlog, unanswered, until a connection closes or the
//! client gives up: an exporter or a health check cannot tell an engine at its limit from a
//! hung one. Instead actix is let accept a little more than the limit (the overflow room,
//! [`overflow_room`]), every connection is counted as it opens ([`ConnectionGate`], from
//! the server's `on_connect`), and each request on a connection opened past the limit is
//! answered at once by [`refuse_excess`]: 503 with `Retry-After` and a JSON body (an OTLP
//! `Status` to a protobuf export), and the connection closed. Descriptors stay bounded by the
//! limit plus the overflow room, both kept below the open-file limit.

use std::any::Any;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{Extensions, ServiceRequest, ServiceResponse};
use actix_web::http::ConnectionType;
use actix_web::http::header::CONTENT_TYPE;
use actix_web::middleware::Next;
use actix_web::{HttpResponse, ResponseError};
use serde_json::json;

use crate::api_error::ApiError;
use crate::routes::ingest::{self, Encoding};

/// Seconds a refused client is asked to wait.
const RETRY_AFTER_SECONDS: u64 = 1;

/// Connections accepted beyond the limit only to be answered 503 and closed: an eighth of the
/// limit, from 16 to 1,024.
pub fn overflow_room(limit: usize) -> usize {
    (limit / 8).clamp(16, 1024)
}

/// The count of open connections, and the limit past which they are refused.
#[derive(Clone, Debug)]
pub struct ConnectionGate {
    open: Arc<AtomicUsize>,
    limit: usize,
}

impl ConnectionGate {
    /// A gate that serves `limit` connections at once.
    pub fn new(limit: usize) -> Self {
        Self {
            open: Arc::new(AtomicUsize::new(0)),
            limit: limit.max(1),
        }
    }

    /// Counts a connection opening: its slot, which counts it closed when dropped.
    pub fn open(&self) -> ConnectionSlot {
        let before = self.open.fetch_add(1, Ordering::AcqRel);
        ConnectionSlot {
            open: Arc::clone(&self.open),
            refused: before >= self.limit,
            limit: self.limit,
        }
    }

    /// For the server's `on_connect`: the connection's slot in its extensions.
    pub fn on_connect(&self, _connection: &dyn Any, extensions: &mut Extensions) {
        extensions.insert(self.open());
    }

    /// Connections open now.
    pub fn open_now(&self) -> usize {
        self.open.load(Ordering::Acquire)
    }
}

/// One open connection, counted until dropped with the connection.
#[derive(Debug)]
pub struct ConnectionSlot {
    open: Arc<AtomicUsize>,
    refused: bool,
    limit: usize,
}

impl ConnectionSlot {
    /// Whether the connection opened past the limit.
    pub fn refused(&self) -> bool {
        self.refused
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        self.open.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Middleware on the whole app: a request on a connection opened past the limit is answered
/// 503 with `Retry-After` at once, and its connection closed.
pub async fn refuse_excess(
    request: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let limit = request
        .conn_data::<ConnectionSlot>()
        .filter(|slot| slot.refused())
        .map(|slot| slot.limit);
    let Some(limit) = limit else {
        return Ok(next.call(request).await?.map_into_boxed_body());
    };
    let error = ApiError::unavailable(format!(
        "the server holds its maximum of {limit} connections; accepted: the same request on a \
         new connection after the Retry-After delay"
    ))
    .with("max_connections", json!(limit))
    .with("retry_after_seconds", json!(RETRY_AFTER_SECONDS));
    let mut response = excess_answer(&request, error);
    response
        .head_mut()
        .set_connection_type(ConnectionType::Close);
    response.headers_mut().insert(
        actix_web::http::header::RETRY_AFTER,
        actix_web::http::header::HeaderValue::from(RETRY_AFTER_SECONDS),
    );
    log::debug!("max_connections={limit} Refused a request: too many connections.");
    Ok(request.into_response(response))
}

/// The 503: an OTLP `Status` in the request's encoding for an export, JSON otherwise.
fn excess_answer(request: &ServiceRequest, error: ApiError) -> HttpResponse {
    let content_type = request
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|value| value.to_str().ok());
    match Encoding::from_content_type(content_type) {
        Ok(encoding) if request.path() == ingest::PATH => {
            match ingest::retryable_status(error, encoding) {
                Ok(response) => response,
                Err(error) => error.error_response(),
            }
        }
        _ => error.error_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_past_the_limit_are_marked_and_counted_until_closed() {
        let gate = ConnectionGate::new(2);
        let first = gate.open();
        let second = gate.open();
        let third = gate.open();
        assert!(!first.refused() && !second.refused());
        assert!(third.refused());
        assert_eq!(gate.open_now(), 3);
        drop(first);
        drop(third);
        assert_eq!(gate.open_now(), 1);
        assert!(!gate.open().refused(), "room again once one closed");
    }

    #[test]
    fn the_overflow_room_is_an_eighth_of_the_limit_within_bounds() {
        assert_eq!(overflow_room(10), 16);
        assert_eq!(overflow_room(10_000), 1_024);
        assert_eq!(overflow_room(800), 100);
    }
}
