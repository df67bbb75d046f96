//! `GET /openapi.json`: an OpenAPI 3.1 document of every route, generated at compile time by
//! `utoipa` from the `#[utoipa::path]` attributes on the handlers and the schemas in
//! [`crate::views`]. Nothing is fetched or generated at build time beyond the macros.

use std::sync::OnceLock;

use actix_web::{HttpRequest, HttpResponse, web};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::accepted::StrictParameters;
use super::resource::Resources;
use super::serves_demo;

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
        crate::routes::lifecycle::acknowledge,
        crate::routes::lifecycle::timeline,
        crate::routes::lifecycle::list_silences,
        crate::routes::lifecycle::create_silence,
        crate::routes::lifecycle::expire_silence,
        crate::routes::aiops::analyze,
        crate::routes::aiops::topology,
        crate::routes::endpoints::history,
        crate::routes::endpoints::window,
        crate::routes::traces::trace,
        crate::routes::logs::list_logs,
        crate::routes::changes::list_changes,
        crate::routes::changes::report_change,
        crate::shop::simulate::delay,
        crate::shop::simulate::error,
        crate::shop::simulate::timeout,
        crate::shop::simulate::clear,
        crate::shop::simulate::status,
        crate::routes::ingest::export_traces,
        crate::routes::logs::export_logs,
        crate::routes::prometheus::metrics,
        crate::routes::health::liveness,
        crate::routes::health::readiness,
        document,
    ),
    modifiers(&BearerToken, &GuardResponses, &StrictParameters),
    tags(
        (name = "shop", description = "The demo shop: monitored, and a target for chaos."),
        (name = "aiops", description = "Detection, incidents, topology, traces, logs, changes and endpoint history."),
        (name = "simulate", description = "Chaos injection into the demo shop."),
        (name = "ingest", description = "OpenTelemetry traces and logs (OTLP/HTTP)."),
        (name = "operations", description = "The engine's own liveness and readiness, Prometheus metrics and this document."),
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

/// The answers of the checks every route passes through before its handler
/// (`guards::browser_guard`, `guards::require_token`), added to each operation so that a
/// route registered anywhere declares them without repeating them: 403 on every operation
/// (a `Host` the server does not answer to; on mutating ones also a cross-origin browser
/// request), 401 on those that name the bearer scheme; and on operations that take a body,
/// the answers of the body's checks (`guards::limit_body`, `body_deadline`, the JSON
/// extractor): 408, 413 and 415. Every operation also declares the connection guard's answers
/// to a request head it does not read ([`head_answers`]).
struct GuardResponses;

/// The answers of the guard on every connection (`request_head`), which reads each request's
/// head before any route: on every operation.
fn head_answers() -> [(&'static str, String); 3] {
    use crate::request_head::{MAX_HEAD_BYTES, MAX_HEADERS, MAX_TARGET_BYTES};
    [
        (
            "408",
            "The request head did not arrive within the request head timeout".to_owned(),
        ),
        (
            "414",
            format!("The request target (path and query) is longer than {MAX_TARGET_BYTES} bytes"),
        ),
        (
            "431",
            format!(
                "More than {MAX_HEADERS} header fields, or a request head longer than \
                 {MAX_HEAD_BYTES} bytes"
            ),
        ),
    ]
}

impl Modify for GuardResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
        let error_response = |description: &str| {
            ResponseBuilder::new()
                .description(description)
                .content(
                    "application/json",
                    ContentBuilder::new()
                        .schema(Some(Ref::from_schema_name("ErrorBody")))
                        .build(),
                )
                .build()
        };
        for item in openapi.paths.paths.values_mut() {
            let operations = [
                (false, &mut item.get),
                (true, &mut item.post),
                (true, &mut item.put),
                (true, &mut item.delete),
                (true, &mut item.patch),
            ];
            for (mutating, operation) in operations {
                let Some(operation) = operation else {
                    continue;
                };
                let forbidden = if mutating {
                    "A cross-origin browser request, or a Host header the server does not answer to"
                } else {
                    "A Host header the server does not answer to"
                };
                let responses = &mut operation.responses.responses;
                responses
                    .entry("403".to_owned())
                    .or_insert_with(|| error_response(forbidden).into());
                let guarded = operation.security.iter().flatten().any(|requirement| {
                    serde_json::to_value(requirement)
                        .ok()
                        .and_then(|value| value.as_object().map(|o| o.contains_key(BEARER)))
                        .unwrap_or(false)
                });
                if guarded {
                    responses.entry("401".to_owned()).or_insert_with(|| {
                        error_response("An API token is configured and missing or wrong").into()
                    });
                }
                if operation.request_body.is_some() {
                    let body_answers = [
                        (
                            "408",
                            "The body did not arrive within the body read timeout",
                        ),
                        ("413", "The body is larger than the server's body limit"),
                        ("415", "A body whose content type the route does not read"),
                    ];
                    for (status, description) in body_answers {
                        responses
                            .entry(status.to_owned())
                            .or_insert_with(|| error_response(description).into());
                    }
                }
                for (status, description) in head_answers() {
                    responses
                        .entry(status.to_owned())
                        .or_insert_with(|| error_response(&description).into());
                }
            }
        }
    }
}

/// The tags of the demo shop's routes and the chaos routes, which `--no-demo` does not serve.
const DEMO_TAGS: [&str; 2] = ["shop", "simulate"];

/// The document of the routes served: all of them, or (`demo` false) all but the demo shop's
/// and the chaos routes.
pub fn served_document(demo: bool) -> utoipa::openapi::OpenApi {
    let mut document = ApiDoc::openapi();
    if !demo {
        let is_demo = |tags: &Option<Vec<String>>| {
            tags.iter()
                .flatten()
                .any(|tag| DEMO_TAGS.contains(&tag.as_str()))
        };
        document.paths.paths.retain(|_, item| {
            ![&item.get, &item.post]
                .into_iter()
                .flatten()
                .any(|operation| is_demo(&operation.tags))
        });
        if let Some(tags) = &mut document.tags {
            tags.retain(|tag| !DEMO_TAGS.contains(&tag.name.as_str()));
        }
    }
    document
}

/// The document as JSON (see [`served_document`]), built once.
pub fn document_json_of(demo: bool) -> &'static str {
    static WITH_DEMO: OnceLock<String> = OnceLock::new();
    static WITHOUT_DEMO: OnceLock<String> = OnceLock::new();
    let cell = if demo { &WITH_DEMO } else { &WITHOUT_DEMO };
    cell.get_or_init(|| {
        served_document(demo)
            .to_pretty_json()
            .unwrap_or_else(|error| format!("{{\"error\": \"openapi: {error}\"}}"))
    })
}

/// The document of every route, the demo's included.
pub fn document_json() -> &'static str {
    document_json_of(true)
}

/// Every documented route served as (method, path): grouped by tag in the document's order of
/// tags, then by path and method.
pub fn documented_routes(demo: bool) -> Vec<(String, String)> {
    let document = served_document(demo);
    let tags: Vec<String> = document
        .tags
        .iter()
        .flatten()
        .map(|tag| tag.name.clone())
        .collect();
    let mut routes: Vec<(usize, String, &'static str)> = Vec::new();
    for (path, item) in &document.paths.paths {
        let operations = [
            ("GET", &item.get),
            ("PUT", &item.put),
            ("POST", &item.post),
            ("DELETE", &item.delete),
            ("OPTIONS", &item.options),
            ("HEAD", &item.head),
            ("PATCH", &item.patch),
            ("TRACE", &item.trace),
        ];
        for (method, operation) in operations {
            let Some(operation) = operation else {
                continue;
            };
            let tag = operation
                .tags
                .iter()
                .flatten()
                .find_map(|name| tags.iter().position(|tag| tag == name))
                .unwrap_or(tags.len());
            routes.push((tag, path.clone(), method));
        }
    }
    routes.sort();
    routes
        .into_iter()
        .map(|(_, path, method)| (method.to_owned(), path))
        .collect()
}

/// Registers `GET /openapi.json`.
pub fn configure(config: &mut web::ServiceConfig, resources: &mut Resources<'_>) {
    config.service(resources.get(PATH, document));
}

/// `GET /openapi.json`.
#[utoipa::path(
    get,
    path = "/openapi.json",
    operation_id = "getOpenApiDocument",
    tag = "operations",
    responses((status = 200, description = "This OpenAPI 3.1 document", content_type = "application/json"))
)]
pub async fn document(request: HttpRequest) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(document_json_of(serves_demo(&request)))
}

#[cfg(test)]
mod tests {
    use super::*;
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
    fn the_route_list_holds_every_documented_operation_grouped_by_tag() {
        let listed: BTreeSet<(String, String)> = documented_routes(true).into_iter().collect();
        assert_eq!(listed, documented());
        let first = documented_routes(true).first().cloned();
        assert_eq!(
            first,
            Some(("POST".to_owned(), "/checkout".to_owned())),
            "shop first"
        );
    }

    #[test]
    fn every_operation_has_a_unique_descriptive_id_and_declares_the_guards_answers() {
        let document: serde_json::Value =
            serde_json::from_str(document_json()).expect("valid JSON");
        let mut ids = BTreeSet::new();
        for (path, item) in document["paths"].as_object().expect("paths") {
            for (method, operation) in item.as_object().expect("path item") {
                let id = operation["operationId"].as_str().unwrap_or_default();
                assert!(
                    id.len() > 6
                        && id.chars().next().is_some_and(|c| c.is_ascii_lowercase())
                        && id.chars().all(|c| c.is_ascii_alphanumeric()),
                    "{method} {path}: operationId {id:?} is not a descriptive lowerCamelCase verb phrase"
                );
                assert!(ids.insert(id.to_owned()), "operationId {id} used twice");
                let responses = operation["responses"].as_object().expect("responses");
                assert!(responses.contains_key("403"), "{method} {path}");
                let guarded = operation["security"]
                    .as_array()
                    .is_some_and(|list| list.iter().any(|r| r.get(BEARER).is_some()));
                assert_eq!(responses.contains_key("401"), guarded, "{method} {path}");
            }
        }
        assert!(ids.contains("exportTraces") && ids.contains("listIncidents"));
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

    #[test]
    fn every_operation_declares_the_answers_to_a_request_head_it_does_not_read() {
        let document: serde_json::Value =
            serde_json::from_str(document_json()).expect("valid JSON");
        let paths = document["paths"].as_object().expect("paths");
        let mut operations = 0;
        for (path, item) in paths {
            for (method, operation) in item.as_object().expect("path item") {
                operations += 1;
                for status in ["408", "414", "431"] {
                    let answer = &operation["responses"][status];
                    assert_eq!(
                        answer["content"]["application/json"]["schema"]["$ref"],
                        "#/components/schemas/ErrorBody",
                        "{method} {path} {status}"
                    );
                }
            }
        }
        assert!(operations > 20, "{operations}");
    }
}
