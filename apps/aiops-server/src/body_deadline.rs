//! A deadline on reading a request body, which actix-web does not have: it times out a slow
//! request head (`client_request_timeout`) but not a body that trickles in or stalls, so slow
//! uploads could hold connections, descriptors and buffered bytes without end.
//!
//! [`body_deadline`] replaces the body of every request that has one with a stream that ends in
//! an error once [`BodyReadTimeout`] has passed since the request arrived. The extractor or
//! handler reading it fails at once; [`is_timeout`] tells such an error apart, and the route
//! answers 408. Actix then closes the connection, whose unread bytes it would not parse.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use actix_web::HttpMessage;
use actix_web::body::MessageBody;
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::error::PayloadError;
use actix_web::http::header::{CONTENT_LENGTH, TRANSFER_ENCODING};
use actix_web::middleware::Next;
use actix_web::web::{self, Bytes};
use futures_core::Stream;

/// How long a client has to send a whole request body: the app data [`body_deadline`] reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BodyReadTimeout(pub Duration);

/// Middleware for the root scope and OTLP ingest: gives the body of each request that has one
/// a read deadline of [`BodyReadTimeout`] (none when that app data is missing).
pub async fn body_deadline(
    mut request: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let timeout = request
        .app_data::<web::Data<BodyReadTimeout>>()
        .map(|timeout| timeout.0);
    if let Some(timeout) = timeout
        && has_body(&request)
    {
        let inner = request.take_payload();
        request.set_payload(Payload::Stream {
            payload: Box::pin(Deadline {
                inner,
                sleep: Box::pin(tokio::time::sleep(timeout)),
                timeout,
                expired: false,
            }),
        });
    }
    next.call(request).await
}

/// Whether a request declares a body: a non-zero `Content-Length`, or `Transfer-Encoding`.
fn has_body(request: &ServiceRequest) -> bool {
    let headers = request.headers();
    headers.contains_key(TRANSFER_ENCODING)
        || headers
            .get(CONTENT_LENGTH)
            .and_then(|value| value.to_str().ok())
            .is_some_and(|value| value.trim() != "0")
}

/// Whether a body read failed because its deadline passed.
pub fn is_timeout(error: &PayloadError) -> bool {
    matches!(error, PayloadError::Io(io) if io.kind() == io::ErrorKind::TimedOut)
}

/// A body that fails once its deadline has passed.
struct Deadline {
    inner: Payload,
    sleep: Pin<Box<tokio::time::Sleep>>,
    timeout: Duration,
    expired: bool,
}

impl Stream for Deadline {
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.expired {
            return Poll::Ready(None);
        }
        if let Poll::Ready(item) = Pin::new(&mut this.inner).poll_next(cx) {
            return Poll::Ready(item);
        }
        if this.sleep.as_mut().poll(cx).is_ready() {
            this.expired = true;
            let message = format!(
                "the request body did not arrive within {} s",
                this.timeout.as_secs_f64()
            );
            return Poll::Ready(Some(Err(PayloadError::Io(io::Error::new(
                io::ErrorKind::TimedOut,
                message,
            )))));
        }
        Poll::Pending
    }
}
