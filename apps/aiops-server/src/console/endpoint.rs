//! `/endpoint?service=&operation=`: one endpoint's last hour from the stored minute rollups,
//! charted against its baseline.

use actix_web::{HttpRequest, web};
use aiops_telemetry_core::TimeWindow;
use maud::html;

use super::chart::{Band, Chart, Line};
use super::page::{Page, Section};
use crate::api_error::ApiError;
use crate::clock::now_unix_nanos;
use crate::routes::database::query_committed;
use crate::routes::endpoints::{HISTORY_DEFAULT_RANGE, endpoint_of};
use crate::routes::params::Params;
use crate::state::AppState;
use crate::views::endpoint::EndpointHistory;

/// The endpoint page: 400 when `service` or `operation` is missing.
pub async fn page(request: &HttpRequest, state: &web::Data<AppState>) -> Result<Page, ApiError> {
    let params = Params::parse(request, &["service", "operation"])?;
    let endpoint = endpoint_of(&params)?;
    let now = now_unix_nanos();
    let window = TimeWindow::ending_at(
        now,
        u64::try_from(HISTORY_DEFAULT_RANGE.as_nanos()).unwrap_or(u64::MAX),
    );
    let key = endpoint.clone();
    let rollups = query_committed(state, move |store| store.rollups(Some(&key), window)).await?;
    let baseline = state.analysis.baseline(endpoint.clone()).await?;
    let history = EndpointHistory::new(
        &state.settings.endpoint_naming,
        &endpoint,
        &window,
        &rollups,
        baseline.as_ref(),
        &state.settings.analyzer,
    );
    let x: Vec<f64> = rollups
        .iter()
        .map(|rollup| rollup.minute_start_unix_nanos as f64 / 1e9)
        .collect();
    let figures = &history.points;
    let latency = Chart {
        title: "Latency per minute".to_owned(),
        unit: "ms".to_owned(),
        x: x.clone(),
        lines: vec![
            Line {
                label: "mean".to_owned(),
                values: figures.iter().map(|point| point.avg_latency_ms).collect(),
            },
            Line {
                label: "p95".to_owned(),
                values: figures.iter().map(|point| point.p95_latency_ms).collect(),
            },
        ],
        band: history.baseline.as_ref().and_then(|baseline| {
            Some(Band {
                low_label: Some("baseline mean".to_owned()),
                low: baseline.avg_latency_ms?,
                high_label: "baseline p95".to_owned(),
                high: baseline.p95_latency_ms?,
            })
        }),
        marks: Vec::new(),
    };
    let errors = Chart {
        title: "Error rate per minute".to_owned(),
        unit: "%".to_owned(),
        x,
        lines: vec![Line {
            label: "error rate".to_owned(),
            values: figures
                .iter()
                .map(|point| point.error_rate.map(|rate| rate * 100.0))
                .collect(),
        }],
        band: history.baseline.as_ref().and_then(|baseline| {
            Some(Band {
                low_label: None,
                low: 0.0,
                high_label: "baseline".to_owned(),
                high: baseline.error_rate? * 100.0,
            })
        }),
        marks: Vec::new(),
    };
    let requests: u64 = figures.iter().map(|point| point.request_count).sum();
    let main = html! {
        p.crumbs { a href="/" { "Overview" } " › " (history.name.endpoint) }
        h1 { (history.name.endpoint) }
        p.meta { "Service " strong { (history.name.service) } " · operation " code { (history.name.operation) }
            " · " (requests) " requests in the last hour" }
        @match &history.baseline {
            Some(baseline) => dl.why {
                dt { "Baseline mean" } dd { (opt(baseline.avg_latency_ms, " ms")) }
                dt { "Baseline p95" } dd { (opt(baseline.p95_latency_ms, " ms")) }
                dt { "Baseline errors" } dd { (opt(baseline.error_rate.map(|rate| rate * 100.0), "%")) }
                dt { "Learned from" } dd { (baseline.samples) " requests" }
            },
            None => p { "No baseline learned yet." },
        }
        @if figures.is_empty() {
            p { "No stored requests in the last hour." }
        } @else {
            div.charts {
                (latency.figure("chart-latency"))
                (errors.figure("chart-errors"))
            }
        }
    };
    Ok(Page {
        title: history.name.endpoint.clone(),
        section: Section::Endpoint,
        refresh_secs: Some(30),
        charts: !figures.is_empty(),
        main,
    })
}

fn opt(value: Option<f64>, unit: &str) -> String {
    value.map_or_else(|| "–".to_owned(), |value| format!("{value:.2}{unit}"))
}
