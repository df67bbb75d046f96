//! Every error the HTTP API answers with: an explicit status code and a JSON body
//! `{"error": "...", ...}` that says what was wrong and what is accepted.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use serde_json::{Value, json};

use crate::views::error::ErrorBody;

/// An error answered to an HTTP client.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    body: ErrorBody,
    headers: Vec<(header::HeaderName, HeaderValue)>,
}

impl ApiError {
    /// An error with `status` and a human-readable `message`.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            body: ErrorBody {
                error: message.into(),
                details: Default::default(),
            },
            headers: Vec::new(),
        }
    }

    /// 400: a parameter, id or body the client can fix.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    /// 404: the thing named does not exist.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }

    /// 405 with the methods the route accepts, also in the `Allow` header.
    pub fn method_not_allowed(method: &str, path: &str, allowed: &[&str]) -> Self {
        let allow = allowed.join(", ");
        let mut error = Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("method {method} is not allowed on {path}; accepted: {allow}"),
        )
        .with("allowed_methods", json!(allowed));
        if let Ok(value) = HeaderValue::from_str(&allow) {
            error.headers.push((header::ALLOW, value));
        }
        error
    }

    /// 413: the body is larger than `limit` bytes.
    pub fn payload_too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("request body is too large; accepted: at most {limit} bytes"),
        )
        .with("limit_bytes", json!(limit))
    }

    /// 415: a body with a content type the route does not read.
    pub fn unsupported_media_type(found: &str, accepted: &[&str]) -> Self {
        Self::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!(
                "unsupported content type {found:?}; accepted: {}",
                accepted.join(", ")
            ),
        )
        .with("accepted_content_types", json!(accepted))
    }

    /// 401: the route needs `Authorization: Bearer <token>`.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        let mut error = Self::new(StatusCode::UNAUTHORIZED, message);
        error.headers.push((
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"aiops\""),
        ));
        error
    }

    /// 408: the client did not send its request in time; the connection is closed.
    pub fn request_timeout(message: impl Into<String>) -> Self {
        Self::new(StatusCode::REQUEST_TIMEOUT, message)
    }

    /// 403: the request is refused whoever sends it (a cross-origin browser request, a `Host`
    /// the server does not answer to, a switched-off feature).
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, message)
    }

    /// 503: a part of the engine is not answering (shutting down, or busy).
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, message)
    }

    /// 429: the engine cannot take the request now; the same request will be taken after
    /// `retry_after_seconds` or so (also in the `Retry-After` header, which OTLP exporters
    /// honour).
    pub fn too_many_requests(message: impl Into<String>, retry_after_seconds: u64) -> Self {
        let mut error = Self::new(StatusCode::TOO_MANY_REQUESTS, message)
            .with("retry_after_seconds", json!(retry_after_seconds));
        error
            .headers
            .push((header::RETRY_AFTER, HeaderValue::from(retry_after_seconds)));
        error
    }

    /// 500: a fault of the engine itself, never of the request.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, message)
    }

    /// Adds a field to the JSON body beside `error`.
    pub fn with(mut self, key: &str, value: Value) -> Self {
        self.body.details.insert(key.to_owned(), value);
        self
    }

    /// The status code answered.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The message in the `error` field.
    pub fn message(&self) -> &str {
        &self.body.error
    }

    /// The JSON body.
    pub fn body(&self) -> &ErrorBody {
        &self.body
    }

    /// The headers answered besides the content type (`Allow`, `Retry-After`).
    pub fn headers(&self) -> &[(header::HeaderName, HeaderValue)] {
        &self.headers
    }

    /// The seconds of the `Retry-After` header, when the error has one.
    pub fn retry_after_seconds(&self) -> Option<u64> {
        self.headers
            .iter()
            .find(|(name, _)| name == header::RETRY_AFTER)
            .and_then(|(_, value)| value.to_str().ok()?.parse().ok())
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.body.error)
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status);
        for (name, value) in &self.headers {
            response.insert_header((name.clone(), value.clone()));
        }
        response.json(&self.body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::body::to_bytes;

    async fn body_of(error: ApiError) -> Value {
        let bytes = to_bytes(error.error_response().into_body())
            .await
            .expect("body");
        serde_json::from_slice(&bytes).expect("json")
    }

    #[actix_web::test]
    async fn body_carries_the_message_and_details() {
        let body = body_of(ApiError::bad_request("bad").with("accepted", json!(["a"]))).await;
        assert_eq!(body, json!({"error": "bad", "accepted": ["a"]}));
    }

    #[actix_web::test]
    async fn method_not_allowed_names_the_accepted_methods() {
        let error = ApiError::method_not_allowed("GET", "/payment", &["POST"]);
        let response = error.error_response();
        assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(response.headers().get(header::ALLOW).unwrap(), "POST");
        assert_eq!(
            error.message(),
            "method GET is not allowed on /payment; accepted: POST"
        );
    }
}
