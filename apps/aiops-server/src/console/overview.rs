//! `/`: the active incidents first, then every endpoint's health with a sparkline of its
//! latency over the last half hour; the page refreshes itself.

use std::collections::HashMap;
use std::time::Duration;

use actix_web::web;
use aiops_analyzer::HealthStatus;
use aiops_engine::IncidentStatus;
use aiops_storage_sqlite::MinuteRollup;
use aiops_telemetry_core::{EndpointKey, TimeWindow};
use maud::{Markup, html};

use super::chart::sparkline;
use super::page::{Page, Section};
use super::{endpoint_href, incident_href, since, status_class, word};
use crate::api_error::ApiError;
use crate::clock::now_unix_nanos;
use crate::routes::database::query;
use crate::routes::lifecycle::with_notes;
use crate::state::AppState;
use crate::views::endpoint::EndpointName;
use crate::views::format::iso_millis;
use crate::views::incident::Incident;
use crate::views::metrics::EndpointMetrics;

/// How far back the sparklines reach.
pub const SPARK_RANGE: Duration = Duration::from_secs(30 * 60);
/// The sparklines' points: one a minute.
const SPARK_POINTS: usize = 30;
/// How often the overview reloads itself.
const REFRESH_SECS: u32 = 5;

/// One endpoint's line of the overview.
#[derive(Clone, Debug, PartialEq)]
pub struct EndpointRow {
    /// Its names.
    pub name: EndpointName,
    /// Its figures in the latest cycle.
    pub metrics: EndpointMetrics,
    /// Requests a second in the detection window.
    pub rate_per_sec: f64,
    /// p95 latency a minute over [`SPARK_RANGE`], oldest first; `None` for a minute without
    /// requests.
    pub p95_by_minute: Vec<Option<f64>>,
}

/// What the overview shows.
#[derive(Clone, Debug, PartialEq)]
pub struct Overview {
    /// The active incidents, newest first.
    pub incidents: Vec<Incident>,
    /// Every endpoint of the latest cycle, the least healthy first.
    pub endpoints: Vec<EndpointRow>,
    /// When the latest cycle ran, ISO 8601; `None` before the first.
    pub analyzed_at: Option<String>,
    /// Now, ISO 8601, to say how long ago incidents started.
    pub now: String,
}

/// Gathers the overview: the incidents and the latest cycle from the actor, the sparklines
/// from the stored minute rollups (without them when the database does not answer).
pub async fn gather(state: &web::Data<AppState>) -> Result<Overview, ApiError> {
    let settings = &state.settings;
    let naming = &settings.endpoint_naming;
    let incidents = state
        .analysis
        .incidents(Some(IncidentStatus::Active))
        .await?;
    let status = state.analysis.status().await?;
    let now = now_unix_nanos();
    let minute = 60_000_000_000;
    let end = now / minute * minute + minute;
    let window = TimeWindow::new(end - SPARK_POINTS as u64 * minute, end);
    let rollups = query(&state.store, move |store| store.rollups(None, window))
        .await
        .unwrap_or_default();
    let by_minute = p95_by_minute(&rollups, window.start_unix_nanos, minute);
    let window_secs = settings.analyzer.analysis_window_secs.max(1.0);
    let mut endpoints: Vec<EndpointRow> = status
        .last_cycle
        .as_ref()
        .map(|cycle| {
            cycle
                .report
                .endpoints
                .iter()
                .map(|assessment| {
                    let metrics = EndpointMetrics::new(assessment, &settings.analyzer);
                    EndpointRow {
                        name: EndpointName::new(naming, &assessment.endpoint),
                        rate_per_sec: metrics.request_count as f64 / window_secs,
                        metrics,
                        p95_by_minute: by_minute
                            .get(&assessment.endpoint)
                            .cloned()
                            .unwrap_or_else(|| vec![None; SPARK_POINTS]),
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    sort_least_healthy_first(&mut endpoints);
    let notes = state
        .notifier
        .notes(
            incidents
                .iter()
                .map(|incident| incident.id.clone())
                .collect(),
        )
        .await?;
    Ok(Overview {
        incidents: Incident::newest_first(naming, &incidents)
            .into_iter()
            .map(|view| {
                let of = notes.get(&view.id).cloned();
                with_notes(view, of.as_ref())
            })
            .collect(),
        endpoints,
        analyzed_at: status
            .last_cycle
            .map(|cycle| iso_millis(cycle.at_unix_nanos)),
        now: iso_millis(now),
    })
}

/// Per endpoint, the p95 of each minute from `start` on ([`SPARK_POINTS`] minutes).
fn p95_by_minute(
    rollups: &[MinuteRollup],
    start: u64,
    minute: u64,
) -> HashMap<EndpointKey, Vec<Option<f64>>> {
    let mut series: HashMap<EndpointKey, Vec<Option<f64>>> = HashMap::new();
    for rollup in rollups {
        let Some(index) = rollup
            .minute_start_unix_nanos
            .checked_sub(start)
            .map(|offset| (offset / minute) as usize)
            .filter(|index| *index < SPARK_POINTS)
        else {
            continue;
        };
        let points = series
            .entry(rollup.endpoint.clone())
            .or_insert_with(|| vec![None; SPARK_POINTS]);
        points[index] = Some(rollup.latency_quantile_ms(0.95)).filter(|_| rollup.count > 0);
    }
    series
}

/// Critical endpoints first, then degraded ones, each by health score, then by name.
pub fn sort_least_healthy_first(endpoints: &mut [EndpointRow]) {
    let rank = |status: HealthStatus| match status {
        HealthStatus::Critical => 0,
        HealthStatus::Degraded => 1,
        HealthStatus::Healthy => 2,
    };
    endpoints.sort_by(|a, b| {
        rank(a.metrics.health.status)
            .cmp(&rank(b.metrics.health.status))
            .then_with(|| {
                let score = |row: &EndpointRow| row.metrics.health.health_score.unwrap_or(100.0);
                score(a).total_cmp(&score(b))
            })
            .then_with(|| a.name.endpoint.cmp(&b.name.endpoint))
    });
}

/// The overview page.
pub fn page(overview: &Overview) -> Page {
    Page {
        title: "Overview".to_owned(),
        section: Section::Overview,
        refresh_secs: Some(REFRESH_SECS),
        charts: false,
        main: render(overview),
    }
}

fn figure(value: Option<f64>, unit: &str) -> String {
    value.map_or_else(|| "–".to_owned(), |value| format!("{value:.1}{unit}"))
}

fn percent(value: Option<f64>) -> String {
    value.map_or_else(|| "–".to_owned(), |value| format!("{:.1}%", value * 100.0))
}

/// `points` from the first with a value on: an endpoint seen for a few minutes fills the
/// sparkline rather than its right edge.
fn since_first(points: &[Option<f64>]) -> &[Option<f64>] {
    let first = points
        .iter()
        .position(Option::is_some)
        .unwrap_or(points.len());
    &points[first..]
}

/// The overview's main content.
pub fn render(overview: &Overview) -> Markup {
    html! {
        h1 { "Overview" }
        p.meta {
            @match &overview.analyzed_at {
                Some(at) => { "Latest analysis " time datetime=(at) { (at) } "." }
                None => { "No analysis has run yet." }
            }
        }
        section aria-labelledby="incidents-title" {
            h2 #incidents-title { "Active incidents (" (overview.incidents.len()) ")" }
            @if overview.incidents.is_empty() {
                p.calm { "No active incidents." }
            } @else {
                ul.incidents {
                    @for incident in &overview.incidents {
                        li.incident.(format!("sev-{}", word(&incident.severity))) data-incident=(incident.id) {
                            a href=(incident_href(&incident.id)) {
                                span.severity { (word(&incident.severity)) }
                                span.title { (incident.title) }
                            }
                            p {
                                "Root cause: " strong.root-cause { (incident.root_cause.endpoint) }
                                " (" (incident.root_cause.service) ") — " (incident.root_cause.description)
                            }
                            p.meta {
                                "Since " time datetime=(incident.first_detected) { (since(&incident.first_detected, &overview.now)) }
                                " · " (incident.affected_endpoints.len()) " endpoints affected · "
                                (incident.alert_count) " alerts · " span.state { (word(&incident.status)) }
                                @if let Some(ack) = &incident.acknowledged { " · " span.ack { "acknowledged by " (ack.by) } }
                                @if !incident.silenced_by.is_empty() { " · " span.silenced { "silenced" } }
                            }
                        }
                    }
                }
            }
        }
        section aria-labelledby="endpoints-title" {
            h2 #endpoints-title { "Endpoints (" (overview.endpoints.len()) ")" }
            @if overview.endpoints.is_empty() {
                p { "No requests seen yet." }
            } @else {
                div.scroll {
                    table.endpoints {
                        thead { tr {
                            th scope="col" { "Endpoint" }
                            th scope="col" { "Status" }
                            th scope="col" class="num" { "Score" }
                            th scope="col" class="num" { "Requests/s" }
                            th scope="col" class="num" { "Errors" }
                            th scope="col" class="num" { "p95 / baseline" }
                            th scope="col" { "p95 a minute, up to 30 min" }
                        } }
                        tbody {
                            @for row in &overview.endpoints {
                                @let metrics = &row.metrics;
                                tr {
                                    th scope="row" {
                                        a href=(endpoint_href(&row.name.service, &row.name.operation)) { (row.name.endpoint) }
                                        @if row.name.endpoint != format!("{} {}", row.name.service, row.name.operation) && !row.name.endpoint.starts_with(&row.name.service) {
                                            " " span.service { (row.name.service) }
                                        }
                                    }
                                    td { span.status.(status_class(metrics.health.status)) { (word(&metrics.health.status)) } }
                                    td.num { (figure(metrics.health.health_score, "")) }
                                    td.num { (format!("{:.1}", row.rate_per_sec)) }
                                    td.num { (percent(metrics.error_rate)) }
                                    td.num { (figure(metrics.p95_latency_ms, " ms")) " / " (figure(metrics.baseline_p95_latency_ms, " ms")) }
                                    td { (sparkline(since_first(&row.p95_by_minute), metrics.baseline_p95_latency_ms)) }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}
