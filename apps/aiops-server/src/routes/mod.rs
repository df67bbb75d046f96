//! The HTTP routes of the engine (`/aiops/*`, OTLP ingest, `/metrics`, `/openapi.json`), and
//! the fallbacks that keep every error JSON. The demo shop's routes live in `crate::shop`.

pub mod aiops;
pub mod ingest;
pub mod openapi;
pub mod params;
pub mod prometheus;
pub mod resource;
pub mod traces;

use std::sync::OnceLock;

use actix_web::error::{JsonPayloadError, PathError, QueryPayloadError};
use actix_web::{HttpRequest, HttpResponse, ResponseError};
use serde_json::json;

use self::openapi::documented_routes;
use crate::api_error::ApiError;

/// Every route as (method, path), as the OpenAPI document lists them (grouped by tag): the
/// list the 404 answer gives. Read from the document once; a route is added by registering
/// it (`startup::configure_routes`) and documenting it (`openapi::ApiDoc`), and a test checks
/// that the two agree.
pub fn routes() -> &'static [(String, String)] {
    static ROUTES: OnceLock<Vec<(String, String)>> = OnceLock::new();
    ROUTES.get_or_init(documented_routes)
}

/// The default service: an unknown path gets 404 with the list of routes.
pub async fn not_found(request: HttpRequest) -> HttpResponse {
    let routes: Vec<String> = routes()
        .iter()
        .map(|(method, path)| format!("{method} {path}"))
        .collect();
    ApiError::not_found(format!(
        "no route {} {}; accepted: the routes listed",
        request.method(),
        request.path()
    ))
    .with("routes", json!(routes))
    .error_response()
}

/// `JsonConfig` error handler: 413 for a body over the limit, 415 for a wrong content type,
/// 400 for malformed JSON.
pub fn json_error(error: JsonPayloadError, _request: &HttpRequest) -> actix_web::Error {
    let api = match &error {
        JsonPayloadError::Overflow { limit }
        | JsonPayloadError::OverflowKnownLength { limit, .. } => {
            ApiError::payload_too_large(*limit)
        }
        JsonPayloadError::ContentType => {
            ApiError::unsupported_media_type("(missing or not JSON)", &["application/json"])
        }
        other => ApiError::bad_request(format!("invalid JSON body: {other}")),
    };
    api.into()
}

/// `QueryConfig` error handler.
pub fn query_error(error: QueryPayloadError, _request: &HttpRequest) -> actix_web::Error {
    ApiError::bad_request(format!("invalid query string: {error}")).into()
}

/// `PathConfig` error handler.
pub fn path_error(error: PathError, _request: &HttpRequest) -> actix_web::Error {
    ApiError::bad_request(format!("invalid path parameter: {error}")).into()
}
