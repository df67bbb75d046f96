//! `GET /openapi.json`: an OpenAPI 3.1 document of every route, generated at compile time by
//! `utoipa` from the `#[utoipa::path]` attributes on the handlers and the schemas in
//! [`crate::views`]. Nothing is fetched or generated at build time beyond the macros.

use std::sync::OnceLock;

use actix_web::{HttpResponse, web};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::resource::method_not_allowed;

/// The route.
pub const PATH: &str = "/openapi.json";

/// The security scheme mutating routes name: `Authorization: Bearer <token>`, required only
/// when the server was started with an API token.
pub const BEARER: &str = "bearer";

/// The document.
#[derive(Debug, OpenApi)]
#[openapi(
    info(
        title = "aiops",
        description = "A self-learning monitoring engine: it learns per-endpoint baselines from \
            spans, detects latency spikes, error storms and timeouts, finds the root cause in \
            the trace graph and groups alerts into incidents. Errors are JSON \
            `{\"error\": \"...\"}` bodies saying what is accepted."
    ),
    paths(
        crate::shop::handlers::health,
        crate::shop::handlers::inventory,
        crate::shop::handlers::payment,
        crate::shop::handlers::checkout,
        crate::routes::aiops::metrics,
        crate::routes::aiops::incidents,
        crate::routes::aiops::incident,
        crate::routes::aiops::resolve,
        crate::routes::aiops::analyze,
        crate::routes::aiops::topology,
        crate::routes::traces::trace,
        crate::shop::simulate::delay,
        crate::shop::simulate::error,
        crate::shop::simulate::timeout,
        crate::shop::simulate::clear,
        crate::shop::simulate::status,
        crate::routes::ingest::export_traces,
        crate::routes::prometheus::metrics,
        document,
    ),
    modifiers(&BearerToken),
    tags(
        (name = "shop", description = "The demo shop: monitored, and a target for chaos."),
        (name = "aiops", description = "Detection, incidents, topology and traces."),
        (name = "simulate", description = "Chaos injection into the demo shop."),
        (name = "ingest", description = "OpenTelemetry traces (OTLP/HTTP)."),
        (name = "operations", description = "Prometheus metrics and this document."),
    )
)]
pub struct ApiDoc;

struct BearerToken;

impl Modify for BearerToken {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            BEARER,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "Required on mutating routes only when the server runs with --api-token.",
                    ))
                    .build(),
            ),
        );
    }
}

/// The document as JSON, built once.
pub fn document_json() -> &'static str {
    static JSON: OnceLock<String> = OnceLock::new();
    JSON.get_or_init(|| {
        ApiDoc::openapi()
            .to_pretty_json()
            .unwrap_or_else(|error| format!("{{\"error\": \"openapi: {error}\"}}"))
    })
}

/// Registers `GET /openapi.json`.
pub fn configure(config: &mut web::ServiceConfig) {
    config.service(
        web::resource(PATH)
            .route(web::get().to(document))
            .default_service(web::to(method_not_allowed(&["GET"]))),
    );
}

/// `GET /openapi.json`.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "operations",
    responses((status = 200, description = "This OpenAPI 3.1 document", content_type = "application/json"))
)]
pub async fn document() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(document_json())
}

#[cfg(test)]
mod tests {
    use super::*;
    use super::super::ROUTES;
    use std::collections::BTreeSet;

    fn documented() -> BTreeSet<(String, String)> {
        let document: serde_json::Value =
            serde_json::from_str(document_json()).expect("valid JSON");
        let paths = document["paths"].as_object().expect("paths");
        paths
            .iter()
            .flat_map(|(path, item)| {
                item.as_object()
                    .expect("path item")
                    .keys()
                    .filter(|key| ["get", "post", "put", "delete", "patch"].contains(&key.as_str()))
                    .map(move |method| (method.to_uppercase(), path.clone()))
            })
            .collect()
    }

    #[test]
    fn every_route_is_documented_and_nothing_else() {
        let routes: BTreeSet<(String, String)> = ROUTES
            .iter()
            .map(|(method, path)| ((*method).to_owned(), (*path).to_owned()))
            .collect();
        assert_eq!(documented(), routes);
    }

    #[test]
    fn the_document_is_openapi_3_1_with_the_bearer_scheme() {
        let document: serde_json::Value =
            serde_json::from_str(document_json()).expect("valid JSON");
        assert!(
            document["openapi"]
                .as_str()
                .expect("version")
                .starts_with("3.1")
        );
        assert_eq!(
            document["components"]["securitySchemes"][BEARER]["scheme"],
            "bearer"
        );
        assert!(document["components"]["schemas"]["Incident"].is_object());
    }
}
