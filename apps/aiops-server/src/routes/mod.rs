//! The routing table ([`configure_routes`]), the HTTP routes of the engine (`/aiops/*`, OTLP
//! ingest, `/metrics`, `/openapi.json`), and the fallbacks that keep every error JSON. The demo
//! shop's routes and the chaos routes live in `crate::shop`.

pub mod aiops;
pub mod database;
pub mod endpoints;
pub mod health;
pub mod ingest;
pub mod openapi;
pub mod params;
pub mod prometheus;
pub mod resource;
pub mod traces;

use std::sync::OnceLock;

use actix_web::error::{JsonPayloadError, PathError, QueryPayloadError};
use actix_web::middleware::from_fn;
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use serde_json::json;

use self::openapi::documented_routes;
use self::resource::Registered;
use crate::api_error::ApiError;
use crate::body_deadline::{body_deadline, is_timeout};
use crate::config::IngestLimits;
use crate::guards::{self, BodyLimit};
use crate::pipeline::settle::settle_spans;
use crate::shop::{self, simulate};

/// Every route as (method, path), as the OpenAPI document lists them (grouped by tag): the
/// list the 404 answer gives. Read from the document once; a route is added by registering
/// it ([`configure_routes`]) and documenting it (`openapi::ApiDoc`), and a test checks
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
        JsonPayloadError::Payload(payload) if is_timeout(payload) => {
            ApiError::request_timeout(format!("{payload}; accepted: a whole body in time"))
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

/// Registers every route, the extractor error handlers and the JSON fallbacks. Every request
/// body is limited to `max_body_bytes`, except OTLP ingest's, limited by `ingest`.
///
/// Conventions a new route follows:
///
/// - Register it inside the root scope below (or a scope within it): it then inherits
///   [`guards::browser_guard`] (no cross-origin browser request changes anything; no foreign
///   `Host` is answered), the body limit and the JSON 404. A route registered outside it, as
///   ingest is, wraps `browser_guard` itself.
/// - Mutating routes sit behind [`guards::require_token`].
/// - Its `#[utoipa::path]` names an `operation_id` that is unique and says what it does
///   (`listIncidents`, `resolveIncident`), and declares every status it answers with its body.
pub fn configure_routes(cfg: &mut web::ServiceConfig, max_body_bytes: usize, ingest: IngestLimits) {
    register(cfg, max_body_bytes, ingest, &mut Registered::default());
}

/// [`configure_routes`], noting each route in `registered`.
fn register(
    cfg: &mut web::ServiceConfig,
    max_body_bytes: usize,
    ingest: IngestLimits,
    registered: &mut Registered,
) {
    cfg.app_data(
        web::JsonConfig::default()
            .limit(max_body_bytes)
            .error_handler(json_error),
    )
    .app_data(web::PayloadConfig::default().limit(max_body_bytes))
    .app_data(web::QueryConfig::default().error_handler(query_error))
    .app_data(web::PathConfig::default().error_handler(path_error));

    // Ingest first: it has its own body limit, and the scope below takes every other path.
    cfg.configure(|cfg| ingest::configure(cfg, &mut registered.under(""), ingest));
    let mut engine_api = registered.under("/aiops");
    let aiops_scope = web::scope(engine_api.prefix())
        .wrap(from_fn(settle_spans))
        .wrap(from_fn(guards::require_token))
        .service(engine_api.get("/metrics", aiops::metrics))
        .service(engine_api.get("/incidents", aiops::incidents))
        .service(engine_api.get("/incidents/{id}", aiops::incident))
        .service(engine_api.post("/incidents/{id}/resolve", aiops::resolve))
        .service(engine_api.post("/analyze", aiops::analyze))
        .service(engine_api.get("/topology", aiops::topology))
        .service(engine_api.get("/endpoints/history", endpoints::history))
        .service(engine_api.get("/endpoints/window", endpoints::window))
        .service(engine_api.get("/traces/{trace_id}", traces::trace))
        .default_service(web::to(not_found));
    let mut chaos = registered.under("/simulate");
    let simulate_scope = web::scope(chaos.prefix())
        .wrap(from_fn(guards::require_token))
        .service(chaos.post("/delay", simulate::delay))
        .service(chaos.post("/error", simulate::error))
        .service(chaos.post("/timeout", simulate::timeout))
        .service(chaos.post("/clear", simulate::clear))
        .service(chaos.get("/status", simulate::status))
        .default_service(web::to(not_found));
    let mut root = registered.under("");
    cfg.service(
        web::scope("")
            .app_data(BodyLimit(max_body_bytes))
            .wrap(from_fn(guards::limit_body))
            .wrap(from_fn(body_deadline))
            .wrap(from_fn(guards::browser_guard))
            .configure(|cfg| shop::configure(cfg, &mut root))
            .service(aiops_scope)
            .service(simulate_scope)
            .configure(|cfg| health::configure(cfg, &mut root))
            .configure(|cfg| prometheus::configure(cfg, &mut root))
            .configure(|cfg| openapi::configure(cfg, &mut root))
            .default_service(web::to(not_found)),
    );
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use actix_web::App;

    use super::*;

    #[test]
    fn every_registered_route_is_documented_and_every_documented_route_registered() {
        let mut registered = Registered::default();
        let _app = App::new().configure(|cfg| {
            register(cfg, 1024 * 1024, IngestLimits::default(), &mut registered);
        });

        let registered: Vec<(String, String)> = registered
            .routes()
            .iter()
            .map(|(method, path)| ((*method).to_owned(), path.clone()))
            .collect();
        let unique: BTreeSet<&(String, String)> = registered.iter().collect();
        assert_eq!(unique.len(), registered.len(), "a route registered twice");
        let documented: BTreeSet<&(String, String)> = routes().iter().collect();
        assert_eq!(unique, documented);
    }
}
