//! The frame every console page shares: the document head, the navigation with the trace
//! search box, the dialog that asks for the API token, and the error page.

use actix_web::http::header::{self, ACCEPT};
use actix_web::{HttpRequest, HttpResponse, ResponseError};
use maud::{DOCTYPE, Markup, html};

use super::assets::{self, CONSOLE_CSS, CONSOLE_JS, UPLOT_CSS, UPLOT_JS};
use crate::api_error::ApiError;

/// The console's sections, for the navigation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Section {
    /// `/` and the incident pages.
    Overview,
    /// `/map`.
    Map,
    /// `/trace`.
    Trace,
    /// `/endpoint`.
    Endpoint,
    /// An error page.
    Error,
}

/// What a page puts inside the frame.
#[derive(Debug)]
pub struct Page {
    /// The document title, before the product's name.
    pub title: String,
    /// The section the navigation marks as current.
    pub section: Section,
    /// Reload the page's main content every this many seconds, if set.
    pub refresh_secs: Option<u32>,
    /// Whether the page draws charts (loads the chart library).
    pub charts: bool,
    /// The page's main content.
    pub main: Markup,
}

/// The whole document of `page`.
pub fn render(page: Page) -> Markup {
    let current = |section: Section| (page.section == section).then_some("page");
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="color-scheme" content="light dark";
                title { (page.title) " · aiops" }
                // No icon, and no request for one.
                link rel="icon" href="data:,";
                link rel="stylesheet" href=(assets::path(CONSOLE_CSS));
                @if page.charts {
                    link rel="stylesheet" href=(assets::path(UPLOT_CSS));
                    script defer src=(assets::path(UPLOT_JS)) {}
                }
                script defer src=(assets::path(CONSOLE_JS)) {}
            }
            body {
                a.skip href="#main" { "Skip to content" }
                header.top {
                    nav aria-label="Console" {
                        a.brand href="/" { "aiops" }
                        ul {
                            li { a href="/" aria-current=[current(Section::Overview)] { "Overview" } }
                            li { a href="/map" aria-current=[current(Section::Map)] { "Service map" } }
                            li { a href="/trace" aria-current=[current(Section::Trace)] { "Traces" } }
                            li { a href="/api/" { "API" } }
                        }
                    }
                    form.search action="/trace" method="get" role="search" {
                        label for="trace-search" { "Trace id" }
                        input #trace-search type="search" name="id" placeholder="32 hex digits"
                            pattern="[0-9a-fA-F]{32}" autocomplete="off" spellcheck="false";
                        button type="submit" { "Open" }
                    }
                    button.token type="button" data-token-button { "API token" }
                }
                main #main data-refresh=[page.refresh_secs] { (page.main) }
                dialog #token-dialog aria-labelledby="token-title" {
                    form method="dialog" {
                        h2 #token-title { "API token" }
                        p { "This server was started with an API token. It is kept in this browser tab only and sent as a header, never in a link." }
                        label for="token-input" { "Token" }
                        input #token-input type="password" name="token" autocomplete="off";
                        // "Use token" first: Enter in the field submits with the first button.
                        div.buttons {
                            button value="save" type="submit" { "Use token" }
                            button value="cancel" type="submit" { "Cancel" }
                            button value="forget" type="submit" { "Forget" }
                        }
                    }
                }
                div #announce.visually-hidden role="status" aria-live="polite" {}
            }
        }
    }
}

/// Whether the client asked for a page rather than JSON: a browser's `Accept` names
/// `text/html`.
pub fn wants_html(request: &HttpRequest) -> bool {
    request
        .headers()
        .get(ACCEPT)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|accept| accept.contains("text/html"))
}

/// What a console page may load: only the server's own files, and its own API. Inline
/// `style` attributes place the waterfall's bars; no inline script runs (chart data is JSON).
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; \
     frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/// A page response with `status`: HTML, never cached (it shows live state), loading nothing
/// from elsewhere.
fn html_response(status: actix_web::http::StatusCode, page: Page) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header((header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::REFERRER_POLICY, "no-referrer"))
        .body(render(page).into_string())
}

/// A page as a response.
pub fn respond(page: Page) -> HttpResponse {
    html_response(actix_web::http::StatusCode::OK, page)
}

/// The answer to a page request that failed: for a browser, a page with the status and what is
/// accepted; for other clients, the API's JSON error.
pub fn error_response(request: &HttpRequest, error: &ApiError) -> HttpResponse {
    if !wants_html(request) {
        return error.error_response();
    }
    let status = error.status();
    let main = html! {
        h1 { (status.as_u16()) " " (status.canonical_reason().unwrap_or("Error")) }
        p.error-message { (error.message()) }
        p { a href="/" { "Back to the overview" } }
    };
    html_response(
        status,
        Page {
            title: status.canonical_reason().unwrap_or("Error").to_owned(),
            section: Section::Error,
            refresh_secs: None,
            charts: false,
            main,
        },
    )
}

/// A page handler's result as a response.
pub fn answer(request: &HttpRequest, result: Result<Page, ApiError>) -> HttpResponse {
    match result {
        Ok(page) => respond(page),
        Err(error) => error_response(request, &error),
    }
}
