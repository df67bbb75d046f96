//! `/trace?id=`: any trace by id as a waterfall with self times and attributes, and the log
//! records logged in it; without an id, the search form.

use actix_web::{HttpRequest, web};
use aiops_storage_sqlite::LogQuery;
use aiops_telemetry_core::{LogRecord, TraceId};
use maud::{Markup, html};

use super::page::{Page, Section};
use super::waterfall::Waterfall;
use crate::api_error::ApiError;
use crate::routes::logs::read_logs;
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
            let logs = read_logs(
                state,
                LogQuery {
                    trace_id: Some(trace_id),
                    limit: MAX_LOGS,
                    ..LogQuery::default()
                },
            )
            .await;
            html! {
                p.crumbs { a href="/trace" { "Traces" } " › " (waterfall.trace_id) }
                h1 { "Trace" }
                (waterfall.render(lit.as_deref()))
                (logs_section(trace_id, logs.as_deref().map_err(|error| error.message())))
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

/// The most log records the trace page lists.
const MAX_LOGS: usize = 200;

/// The trace's log records, oldest first, each linked to its span; or why they cannot be read.
fn logs_section(trace_id: TraceId, logs: Result<&[LogRecord], &str>) -> Markup {
    html! {
        section aria-labelledby="trace-logs" {
            h2 #trace-logs { "Logs" }
            @match logs {
                Err(error) => p { "The log records cannot be read now: " (error) },
                Ok([]) => p { "No log record of this trace is kept." },
                Ok(records) => div.scroll { table {
                    thead { tr {
                        th scope="col" { "Time" } th scope="col" { "Service" } th scope="col" { "Severity" }
                        th scope="col" { "Message" } th scope="col" { "Attributes" }
                    } }
                    tbody {
                        @for record in records {
                            tr {
                                td { (crate::views::format::iso_millis(record.time_unix_nanos)) }
                                td { (record.service) }
                                td { span.severity { (record.severity.name()) } }
                                td {
                                    (record.body)
                                    @if let Some(span) = record.span_id {
                                        " " a href=(format!("/trace?id={trace_id}&span={span}")) { "span" }
                                    }
                                }
                                td { @for (key, value) in record.attributes.iter() {
                                    code { (key) } "=" (value) " "
                                } }
                            }
                        }
                    }
                    @if records.len() >= MAX_LOGS { caption { "The first " (MAX_LOGS) " records." } }
                } },
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use aiops_telemetry_core::{LogSeverity, SpanId};

    use super::*;

    #[test]
    fn the_logs_of_a_trace_link_their_span_and_show_their_attributes() {
        let trace = TraceId::random();
        let span = SpanId::random();
        let records = [
            LogRecord::new("pricing", 1, LogSeverity::ERROR, "lookup <failed>")
                .in_span(trace, span)
                .with_attribute("exception.type", "NullPointerException"),
        ];
        let html = logs_section(trace, Ok(&records)).into_string();
        assert!(html.contains("lookup &lt;failed&gt;"), "{html}");
        assert!(html.contains(&format!("span={span}")), "{html}");
        assert!(
            html.contains("<code>exception.type</code>=NullPointerException"),
            "{html}"
        );
        assert!(
            logs_section(trace, Ok(&[]))
                .into_string()
                .contains("No log record")
        );
        assert!(
            logs_section(trace, Err("busy"))
                .into_string()
                .contains("busy")
        );
    }
}
