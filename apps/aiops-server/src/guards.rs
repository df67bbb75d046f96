//! Checks that run before any handler: the API token on mutating routes and the body size.

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::http::header::{AUTHORIZATION, CONTENT_LENGTH};
use actix_web::middleware::Next;
use actix_web::{ResponseError, web};

use crate::api_error::ApiError;
use crate::state::AppState;

/// Middleware for the API scopes: when a token is configured, every request other than
/// `GET`/`HEAD`/`OPTIONS` needs `Authorization: Bearer <token>`.
pub async fn require_token(
    request: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let expected = request
        .app_data::<web::Data<AppState>>()
        .and_then(|state| state.settings.api_token.clone());
    let safe = matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    );
    if let (Some(expected), false) = (expected, safe) {
        let presented = request
            .headers()
            .get(AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .map(str::trim);
        let error = match presented.and_then(|value| bearer_token(value)) {
            Some(token) if constant_time_eq(token.as_bytes(), expected.as_bytes()) => None,
            Some(_) => Some("invalid API token; accepted: the token the server was started with"),
            None => Some(
                "missing API token; this route needs the header \"Authorization: Bearer <token>\"",
            ),
        };
        if let Some(message) = error {
            let response = ApiError::unauthorized(message).error_response();
            return Ok(request.into_response(response));
        }
    }
    Ok(next.call(request).await?.map_into_boxed_body())
}

/// The largest request body a scope or resource accepts, in bytes: the app data
/// [`limit_body`] reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BodyLimit(pub usize);

/// Middleware for a scope or resource registered with a [`BodyLimit`]: a declared
/// `Content-Length` above the limit is refused with 413 before anything reads the body.
/// Bodies without a length are limited by the extractors (`PayloadConfig`, `JsonConfig`) with
/// the same limit.
pub async fn limit_body(
    request: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let limit = request.app_data::<BodyLimit>().map(|limit| limit.0);
    let declared = request
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim().parse::<u64>().ok());
    if let (Some(limit), Some(declared)) = (limit, declared)
        && declared > limit as u64
    {
        let response = ApiError::payload_too_large(limit).error_response();
        return Ok(request.into_response(response));
    }
    Ok(next.call(request).await?.map_into_boxed_body())
}

fn bearer_token(header: &str) -> Option<&str> {
    let (scheme, token) = header.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|token| !token.is_empty())
}

/// Compares without stopping at the first difference, so timing says nothing about the token.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |diff, (x, y)| diff | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_scheme_is_case_insensitive_and_needs_a_token() {
        assert_eq!(bearer_token("Bearer abc"), Some("abc"));
        assert_eq!(bearer_token("bearer  abc "), Some("abc"));
        assert_eq!(bearer_token("Basic abc"), None);
        assert_eq!(bearer_token("Bearer "), None);
        assert_eq!(bearer_token("Bearer"), None);
    }

    #[test]
    fn tokens_compare_exactly() {
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(!constant_time_eq(b"secret", b"secreT"));
        assert!(!constant_time_eq(b"secret", b"secrets"));
    }
}
