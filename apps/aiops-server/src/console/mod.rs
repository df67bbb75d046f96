//! The web console: server-rendered pages over the same typed views and actor queries as the
//! JSON API, at `/` beside it.
//!
//! - `/`: active incidents, then every endpoint's health ([`overview`]).
//! - `/incidents/{id}`: an incident's story ([`incident`]).
//! - `/map`: the service map ([`map`]), laid out on the server ([`graph_layout`]).
//! - `/trace?id=`: a trace as a waterfall ([`trace`], [`waterfall`]).
//! - `/endpoint?service=&operation=`: an endpoint's last hour ([`endpoint`]).
//! - `/api/`: Swagger UI over `/openapi.json` ([`api`]).
//! - `/assets/{hash}/{name}`: the stylesheet, the script and the vendored chart library
//!   ([`assets`]).
//!
//! Pages are HTML rendered by `maud` (templates checked at compile time) and work without
//! script; a small script refreshes them, draws charts with uPlot, and sends the API token a
//! mutating button needs (ADR 0008). Pages are not API routes: the OpenAPI document does not
//! list them and they are not monitored.

pub mod api;
pub mod assets;
pub mod chart;
pub mod clues;
pub mod endpoint;
pub mod evidence;
pub mod graph_layout;
pub mod incident;
pub mod map;
pub mod overview;
pub mod page;
#[cfg(test)]
mod render_tests;
pub mod sample;
pub mod trace;
pub mod waterfall;

use actix_web::middleware::Compress;
use actix_web::{HttpRequest, HttpResponse, Resource, web};
use aiops_analyzer::HealthStatus;
use chrono::DateTime;
use serde::Serialize;

use crate::routes::params::Params;
use crate::routes::resource::method_not_allowed;
use crate::state::AppState;

/// The console's routes. Answers are compressed for browsers that accept it: a page of two
/// thousand endpoints is mostly repeated markup.
pub fn configure(config: &mut web::ServiceConfig) {
    config
        .service(get("/", overview_page).wrap(Compress::default()))
        .service(get("/incidents/{id}", incident_page).wrap(Compress::default()))
        .service(get("/map", map_page).wrap(Compress::default()))
        .service(get("/trace", trace_page).wrap(Compress::default()))
        .service(get("/endpoint", endpoint_page).wrap(Compress::default()))
        .service(get("/api", api::redirect))
        .service(get("/api/{file:.*}", api::serve).wrap(Compress::default()))
        .service(get("/assets/{hash}/{name}", assets::serve).wrap(Compress::default()));
}

/// A resource serving `GET` (and `HEAD`, answered without the body) at `path`, answering 405
/// to other methods.
fn get<F, Args>(path: &str, handler: F) -> Resource
where
    F: actix_web::Handler<Args> + Clone,
    Args: actix_web::FromRequest + 'static,
    F::Output: actix_web::Responder + 'static,
{
    web::resource(path)
        .route(web::get().to(handler.clone()))
        .route(web::head().to(handler))
        .default_service(web::to(method_not_allowed(&["GET", "HEAD"])))
}

async fn overview_page(request: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let result = match Params::parse(&request, &[]) {
        Ok(_) => overview::gather(&state)
            .await
            .map(|data| overview::page(&data)),
        Err(error) => Err(error),
    };
    page::answer(&request, result)
}

async fn incident_page(
    request: HttpRequest,
    id: web::Path<String>,
    state: web::Data<AppState>,
) -> HttpResponse {
    let result = match Params::parse(&request, &[]) {
        Ok(_) => incident::gather(&state, &id)
            .await
            .map(|story| incident::page(&story)),
        Err(error) => Err(error),
    };
    page::answer(&request, result)
}

async fn map_page(request: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let result = match Params::parse(&request, &[]) {
        Ok(_) => map::gather(&state).await.map(|data| map::page(&data)),
        Err(error) => Err(error),
    };
    page::answer(&request, result)
}

async fn trace_page(request: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let result = trace::page(&request, &state).await;
    page::answer(&request, result)
}

async fn endpoint_page(request: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let result = endpoint::page(&request, &state).await;
    page::answer(&request, result)
}

/// A value's name as the JSON API spells it (`latency_spike`, `critical`).
pub fn word(value: &impl Serialize) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(text)) => text,
        Ok(other) => other.to_string(),
        Err(_) => String::new(),
    }
}

/// The CSS class of a health status.
pub fn status_class(status: HealthStatus) -> &'static str {
    match status {
        HealthStatus::Healthy => "healthy",
        HealthStatus::Degraded => "degraded",
        HealthStatus::Critical => "critical",
    }
}

/// Percent-encodes a query value (`/` and `:` may stay as they are in a query).
fn encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' | b':' => {
                out.push(byte as char);
            }
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

/// The link to an incident's page.
pub fn incident_href(id: &str) -> String {
    format!("/incidents/{}", encode(id))
}

/// The link to an endpoint's page.
pub fn endpoint_href(service: &str, operation: &str) -> String {
    format!(
        "/endpoint?service={}&operation={}",
        encode(service),
        encode(operation)
    )
}

/// The link to a trace's page.
pub fn trace_href(trace_id: &str) -> String {
    format!("/trace?id={}", encode(trace_id))
}

/// How long before `now` the ISO 8601 time `then` was, in words (`4 min ago`); `then` itself
/// when either does not parse.
pub fn since(then: &str, now: &str) -> String {
    let (Ok(then_at), Ok(now_at)) = (
        DateTime::parse_from_rfc3339(then),
        DateTime::parse_from_rfc3339(now),
    ) else {
        return then.to_owned();
    };
    let secs = (now_at - then_at).num_seconds().max(0);
    match secs {
        0..60 => format!("{secs} s ago"),
        60..3600 => format!("{} min ago", secs / 60),
        3600..86_400 => format!("{} h {} min ago", secs / 3600, secs / 60 % 60),
        _ => format!("{} days ago", secs / 86_400),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_encode_what_a_query_cannot_hold() {
        assert_eq!(
            endpoint_href("cart", "POST /cart?x&y"),
            "/endpoint?service=cart&operation=POST%20/cart%3Fx%26y"
        );
        assert_eq!(incident_href("INC-1-2"), "/incidents/INC-1-2");
    }

    #[test]
    fn ages_read_in_words() {
        assert_eq!(
            since("2026-01-20T10:00:00Z", "2026-01-20T10:00:42Z"),
            "42 s ago"
        );
        assert_eq!(
            since("2026-01-20T10:00:00Z", "2026-01-20T10:05:00Z"),
            "5 min ago"
        );
        assert_eq!(
            since("2026-01-20T08:00:00Z", "2026-01-20T10:05:00Z"),
            "2 h 5 min ago"
        );
        assert_eq!(since("soon", "2026-01-20T10:05:00Z"), "soon");
        assert_eq!(word(&HealthStatus::Critical), "critical");
    }
}
