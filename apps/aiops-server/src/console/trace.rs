//! `/trace?id=`: any trace by id as a waterfall with self times and attributes; without an id,
//! the search form.

use actix_web::{HttpRequest, web};
use maud::html;

use super::page::{Page, Section};
use super::waterfall::Waterfall;
use crate::api_error::ApiError;
use crate::routes::params::Params;
use crate::routes::traces::{load_trace, parse_trace_id};
use crate::state::AppState;

/// The trace page: 400 for a malformed id, 404 for a trace no longer kept.
pub async fn page(request: &HttpRequest, state: &web::Data<AppState>) -> Result<Page, ApiError> {
    let params = Params::parse(request, &["id", "span"])?;
    let id = params.get("id").map(str::trim).filter(|id| !id.is_empty());
    let lit = params.get("span").map(str::to_owned);
    let main = match id {
        None => html! {
            h1 { "Traces" }
            p { "Enter a trace id in the search box above: 32 hexadecimal digits, as in the "
                code { "x-trace-id" } " response header of the demo shop or a link from an incident." }
            form.search-large action="/trace" method="get" role="search" {
                label for="trace-id" { "Trace id" }
                input #trace-id type="search" name="id" required pattern="[0-9a-fA-F]{32}" autocomplete="off" spellcheck="false";
                button type="submit" { "Open" }
            }
        },
        Some(text) => {
            let trace_id = parse_trace_id(&text.to_ascii_lowercase())?;
            let spans = load_trace(state, trace_id).await?;
            let waterfall = Waterfall::new(&state.settings.endpoint_naming, &spans);
            html! {
                p.crumbs { a href="/trace" { "Traces" } " › " (waterfall.trace_id) }
                h1 { "Trace" }
                (waterfall.render(lit.as_deref()))
            }
        }
    };
    Ok(Page {
        title: id.map_or_else(|| "Traces".to_owned(), |id| format!("Trace {id}")),
        section: Section::Trace,
        refresh_secs: None,
        charts: false,
        main,
    })
}
