//! The routing table ([`configure_routes`]), the HTTP routes of the engine (`/aiops/*`, OTLP
//! ingest, `/metrics`, `/openapi.json`), and the fallbacks that keep every error JSON. The demo
//! shop's routes and the chaos routes live in `crate::shop`.

pub mod accepted;
pub mod aiops;
pub mod changes;
pub mod database;
pub mod endpoints;
pub mod health;
pub mod ingest;
pub mod lifecycle;
pub mod logs;
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
    served_routes(true)
}

/// [`routes`] as served: all of them, or (`demo` false, `--no-demo`) all but the demo shop's
/// and the chaos routes.
pub fn served_routes(demo: bool) -> &'static [(String, String)] {
    static WITH_DEMO: OnceLock<Vec<(String, String)>> = OnceLock::new();
    static WITHOUT_DEMO: OnceLock<Vec<(String, String)>> = OnceLock::new();
    if demo {
        WITH_DEMO.get_or_init(|| documented_routes(true))
    } else {
        WITHOUT_DEMO.get_or_init(|| documented_routes(false))
    }
}

/// Whether the server serves the demo shop and chaos routes: the app data routes read to
/// describe what is served.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DemoRoutes(pub bool);

/// Whether the app serving `request` serves the demo routes (yes when it does not say).
pub fn serves_demo(request: &HttpRequest) -> bool {
    request
        .app_data::<web::Data<DemoRoutes>>()
        .is_none_or(|demo| demo.0)
}

/// The default service: an unknown path gets 404 with the list of routes.
pub async fn not_found(request: HttpRequest) -> HttpResponse {
    let routes: Vec<String> = served_routes(serves_demo(&request))
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
    register(
        cfg,
        max_body_bytes,
        ingest,
        true,
        &mut Registered::default(),
    );
}

/// [`configure_routes`] without the demo shop and the chaos routes (`--no-demo`): the engine's
/// API, ingest and operations routes only. The app registers `web::Data<DemoRoutes>(false)`
/// so that the 404 list and `/openapi.json` describe what it serves.
pub fn configure_engine_routes(
    cfg: &mut web::ServiceConfig,
    max_body_bytes: usize,
    ingest: IngestLimits,
) {
    register(
        cfg,
        max_body_bytes,
        ingest,
        false,
        &mut Registered::default(),
    );
}

/// [`configure_routes`] (`demo` true) or [`configure_engine_routes`], noting each route in
/// `registered`.
fn register(
    cfg: &mut web::ServiceConfig,
    max_body_bytes: usize,
    ingest: IngestLimits,
    demo: bool,
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
    cfg.configure(|cfg| logs::configure(cfg, &mut registered.under(""), ingest));
    let mut engine_api = registered.under("/aiops");
    let aiops_scope = web::scope(engine_api.prefix())
        .wrap(from_fn(settle_spans))
        .wrap(from_fn(guards::require_token))
        .service(engine_api.get("/metrics", aiops::metrics))
        .service(engine_api.get("/incidents", aiops::incidents))
        .service(engine_api.get("/incidents/{id}", aiops::incident))
        .service(engine_api.post("/incidents/{id}/resolve", aiops::resolve))
        .service(engine_api.post("/incidents/{id}/acknowledge", lifecycle::acknowledge))
        .service(engine_api.get("/incidents/{id}/timeline", lifecycle::timeline))
        .service(engine_api.get_and_post(
            "/silences",
            lifecycle::list_silences,
            lifecycle::create_silence,
        ))
        .service(engine_api.delete("/silences/{id}", lifecycle::expire_silence))
        .service(engine_api.post("/analyze", aiops::analyze))
        .service(engine_api.get("/topology", aiops::topology))
        .service(engine_api.get("/endpoints/history", endpoints::history))
        .service(engine_api.get("/endpoints/window", endpoints::window))
        .service(engine_api.get("/traces/{trace_id}", traces::trace))
        .service(engine_api.get("/logs", logs::list_logs))
        .service(engine_api.get_and_post("/changes", changes::list_changes, changes::report_change))
        .default_service(web::to(not_found));
    let simulate_scope = demo.then(|| {
        let mut chaos = registered.under("/simulate");
        web::scope(chaos.prefix())
            .wrap(from_fn(guards::require_token))
            .service(chaos.post("/delay", simulate::delay))
            .service(chaos.post("/error", simulate::error))
            .service(chaos.post("/timeout", simulate::timeout))
            .service(chaos.post("/clear", simulate::clear))
            .service(chaos.get("/status", simulate::status))
            .default_service(web::to(not_found))
    });
    let mut root = registered.under("");
    let mut scope = web::scope("")
        .app_data(BodyLimit(max_body_bytes))
        .wrap(from_fn(guards::limit_body))
        .wrap(from_fn(body_deadline))
        .wrap(from_fn(guards::browser_guard));
    if let Some(simulate_scope) = simulate_scope {
        scope = scope
            .configure(|cfg| shop::configure(cfg, &mut root))
            .service(simulate_scope);
    }
    cfg.service(
        scope
            .service(aiops_scope)
            .configure(|cfg| health::configure(cfg, &mut root))
            .configure(|cfg| prometheus::configure(cfg, &mut root))
            .configure(|cfg| openapi::configure(cfg, &mut root))
            // The web console's pages are for people, not API routes: not in the document.
            .configure(crate::console::configure)
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
        for demo in [true, false] {
            let mut registered = Registered::default();
            let _app = App::new().configure(|cfg| {
                register(
                    cfg,
                    1024 * 1024,
                    IngestLimits::default(),
                    demo,
                    &mut registered,
                );
            });

            let registered: Vec<(String, String)> = registered
                .routes()
                .iter()
                .map(|(method, path)| ((*method).to_owned(), path.clone()))
                .collect();
            let unique: BTreeSet<&(String, String)> = registered.iter().collect();
            assert_eq!(unique.len(), registered.len(), "a route registered twice");
            let documented: BTreeSet<&(String, String)> = served_routes(demo).iter().collect();
            assert_eq!(unique, documented, "demo {demo}");
            let shop = unique
                .iter()
                .any(|(_, path)| path == "/checkout" || path.starts_with("/simulate"));
            assert_eq!(shop, demo);
        }
    }
}
