//! OTLP requests refused as a whole, counted by reason for `GET /metrics`.

use std::sync::atomic::{AtomicU64, Ordering};

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::middleware::Next;
use actix_web::web;

use crate::state::AppState;

/// Why an OTLP request was refused as a whole.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RefusalReason {
    /// 429: the storage queue had no room for all of its spans; the sender retries.
    QueueFull,
    /// 413: the body was over a size limit, as sent or decompressed.
    TooLarge,
    /// 415: a content type or encoding the route does not read.
    UnsupportedMedia,
    /// 400: not an OTLP request, or invalid gzip.
    Invalid,
    /// 401: the API token was missing or wrong.
    Unauthorized,
    /// 503: the engine was shutting down.
    Unavailable,
    /// Any other status of 400 or more.
    Other,
}

impl RefusalReason {
    /// Every reason, in the order they are reported.
    pub const ALL: [Self; 7] = [
        Self::QueueFull,
        Self::TooLarge,
        Self::UnsupportedMedia,
        Self::Invalid,
        Self::Unauthorized,
        Self::Unavailable,
        Self::Other,
    ];

    /// The `reason` label.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::QueueFull => "queue_full",
            Self::TooLarge => "too_large",
            Self::UnsupportedMedia => "unsupported_media_type",
            Self::Invalid => "invalid",
            Self::Unauthorized => "unauthorized",
            Self::Unavailable => "unavailable",
            Self::Other => "other",
        }
    }

    /// The reason an answer with `status` gives; `None` for a success.
    pub fn of(status: StatusCode) -> Option<Self> {
        Some(match status {
            StatusCode::TOO_MANY_REQUESTS => Self::QueueFull,
            StatusCode::PAYLOAD_TOO_LARGE => Self::TooLarge,
            StatusCode::UNSUPPORTED_MEDIA_TYPE => Self::UnsupportedMedia,
            StatusCode::BAD_REQUEST => Self::Invalid,
            StatusCode::UNAUTHORIZED => Self::Unauthorized,
            StatusCode::SERVICE_UNAVAILABLE => Self::Unavailable,
            status if status.is_client_error() || status.is_server_error() => Self::Other,
            _ => return None,
        })
    }
}

/// Refused OTLP requests per [`RefusalReason`].
#[derive(Debug, Default)]
pub struct IngestRefusals {
    counts: [AtomicU64; RefusalReason::ALL.len()],
}

impl IngestRefusals {
    /// Counts one refusal.
    pub fn add(&self, reason: RefusalReason) {
        self.counts[reason as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// Every reason with its count, zeros included.
    pub fn snapshot(&self) -> Vec<(RefusalReason, u64)> {
        RefusalReason::ALL
            .into_iter()
            .map(|reason| (reason, self.counts[reason as usize].load(Ordering::Relaxed)))
            .collect()
    }
}

/// Middleware for the ingest routes, outside every other check: counts each refusal by the
/// status answered, whoever answered it (the body limit, the token check, the handler), for
/// traces or for logs by the route.
pub async fn count_refusals(
    request: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let logs = request.path().starts_with(crate::routes::logs::INGEST_PATH);
    let refusals = request.app_data::<web::Data<AppState>>().map(|state| {
        if logs {
            state.log_refusals.clone()
        } else {
            state.refusals.clone()
        }
    });
    let response = next.call(request).await?;
    if let (Some(refusals), Some(reason)) = (refusals, RefusalReason::of(response.status())) {
        refusals.add(reason);
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_map_to_their_reasons() {
        assert_eq!(
            RefusalReason::of(StatusCode::TOO_MANY_REQUESTS),
            Some(RefusalReason::QueueFull)
        );
        assert_eq!(
            RefusalReason::of(StatusCode::METHOD_NOT_ALLOWED),
            Some(RefusalReason::Other)
        );
        assert_eq!(RefusalReason::of(StatusCode::OK), None);
    }

    #[test]
    fn counts_are_kept_per_reason() {
        let refusals = IngestRefusals::default();
        refusals.add(RefusalReason::QueueFull);
        refusals.add(RefusalReason::QueueFull);
        refusals.add(RefusalReason::Invalid);
        let counts = refusals.snapshot();
        assert_eq!(counts.len(), RefusalReason::ALL.len());
        assert_eq!(counts[0], (RefusalReason::QueueFull, 2));
        assert_eq!(counts[3], (RefusalReason::Invalid, 1));
        assert_eq!(counts[1], (RefusalReason::TooLarge, 0));
    }
}
