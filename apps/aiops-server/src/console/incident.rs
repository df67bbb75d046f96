//! `/incidents/{id}`: one incident's story on one screen: the root cause and why, the
//! candidates, the affected endpoints and anomalies, latency and error-rate charts around the
//! detection, the first failing trace, and the actions that apply.

use actix_web::web;
use maud::{Markup, html};

use super::chart::Chart;
use super::evidence;
use super::page::{Page, Section};
use super::waterfall::Waterfall;
use super::{endpoint_href, trace_href, word};
use crate::api_error::ApiError;
use crate::clock::now_unix_nanos;
use crate::routes::aiops::{find_incident, unknown_incident};
use crate::routes::database;
use crate::routes::lifecycle::with_notes;
use crate::state::AppState;
use crate::views::format::iso_millis;
use crate::views::incident::Incident;
use crate::views::lifecycle::TimelineEvent;

/// An action on an incident: a button that sends `method path` with the API token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Action {
    /// The button's text.
    pub label: &'static str,
    /// `POST`.
    pub method: &'static str,
    /// The route it calls.
    pub path: String,
    /// A question to confirm first, if any.
    pub confirm: Option<&'static str>,
    /// A value to ask for first and send as the JSON body's field: (field, question).
    pub ask: Option<(&'static str, &'static str)>,
    /// The JSON body to send (the asked field is added to it), if any.
    pub body: Option<String>,
    /// Adds `ends_at`, this many seconds after the moment the button is pressed, to the body.
    pub ends_in_secs: Option<u64>,
}

/// How long the incident page's silence lasts.
const SILENCE_SECS: u64 = 3600;

/// The actions that apply to `incident`: acknowledge while active and nobody has; while
/// active, silence its notifications for an hour (a silence on its root cause's service and
/// endpoint, which also holds back other incidents there) and resolve.
pub fn actions(incident: &Incident) -> Vec<Action> {
    let mut actions = Vec::new();
    if incident.status == aiops_engine::IncidentStatus::Active && incident.acknowledged.is_none() {
        actions.push(Action {
            label: "Acknowledge",
            method: "POST",
            path: format!("/aiops/incidents/{}/acknowledge", incident.id),
            confirm: None,
            ask: Some(("by", "Who takes this incident on?")),
            body: None,
            ends_in_secs: None,
        });
    }
    if incident.status == aiops_engine::IncidentStatus::Active {
        let root = &incident.root_cause;
        let silence = serde_json::json!({
            "matchers": [
                {"name": "service", "value": root.service},
                {"name": "endpoint", "value": root.endpoint},
            ],
            "comment": format!("from the console, incident {}", incident.id),
        });
        actions.push(Action {
            label: "Silence 1 h",
            method: "POST",
            path: "/aiops/silences".to_owned(),
            confirm: None,
            ask: Some((
                "created_by",
                "Who holds back notifications about this root cause for an hour?",
            )),
            body: Some(silence.to_string()),
            ends_in_secs: Some(SILENCE_SECS),
        });
        actions.push(Action {
            label: "Resolve",
            method: "POST",
            path: format!("/aiops/incidents/{}/resolve", incident.id),
            confirm: Some("Resolve this incident? Evidence older than now will not re-open it."),
            ask: None,
            body: None,
            ends_in_secs: None,
        });
    }
    actions
}

/// What the incident page shows.
#[derive(Clone, Debug, PartialEq)]
pub struct IncidentStory {
    /// The incident, as the API answers it.
    pub incident: Incident,
    /// Latency and error-rate charts, when the database answered.
    pub charts: Option<(Chart, Chart)>,
    /// The first failing trace and its failing span, when kept.
    pub trace: Option<(Waterfall, String)>,
    /// What happened to the incident, oldest first (empty when the database does not answer).
    pub timeline: Vec<TimelineEvent>,
}

/// Gathers incident `id`'s story: 404 when there is no such incident.
pub async fn gather(state: &web::Data<AppState>, id: &str) -> Result<IncidentStory, ApiError> {
    let found = find_incident(state, id)
        .await?
        .ok_or_else(|| unknown_incident(id))?;
    let charts = evidence::charts(state, &found, now_unix_nanos()).await;
    let trace = evidence::first_failing_trace(state, &found).await;
    let notes = state.notifier.notes(vec![id.to_owned()]).await?;
    let wanted = id.to_owned();
    let timeline = database::query(&state.store, move |store| store.timeline(&wanted))
        .await
        .unwrap_or_default()
        .into_iter()
        .map(|stored| TimelineEvent {
            sequence: stored.sequence,
            at: iso_millis(stored.event.at_unix_nanos),
            kind: stored.event.kind,
            details: stored.event.body,
        })
        .collect();
    Ok(IncidentStory {
        incident: with_notes(
            Incident::new(&state.settings.endpoint_naming, &found),
            notes.get(id),
        ),
        charts,
        trace,
        timeline,
    })
}

/// The incident page; an active incident's page refreshes itself.
pub fn page(story: &IncidentStory) -> Page {
    let active = story.incident.status == aiops_engine::IncidentStatus::Active;
    Page {
        title: format!("{} {}", story.incident.id, story.incident.title),
        section: Section::Overview,
        refresh_secs: active.then_some(15),
        charts: story.charts.is_some(),
        main: render(story),
    }
}

fn percent(value: Option<f64>) -> String {
    value.map_or_else(|| "–".to_owned(), |value| format!("{:.0}%", value * 100.0))
}

fn figure(value: Option<f64>) -> String {
    value.map_or_else(|| "–".to_owned(), |value| format!("{value:.2}"))
}

/// The incident page's main content.
pub fn render(story: &IncidentStory) -> Markup {
    let incident = &story.incident;
    let cause = &incident.root_cause;
    let why = incident
        .anomalies
        .iter()
        .find(|anomaly| anomaly.endpoint == cause.endpoint && anomaly.kind == cause.kind)
        .or_else(|| {
            incident
                .anomalies
                .iter()
                .find(|anomaly| anomaly.endpoint == cause.endpoint)
        });
    html! {
        p.crumbs { a href="/" { "Overview" } " › " (incident.id) }
        header.incident-head.(format!("sev-{}", word(&incident.severity))) {
            h1 { (incident.title) }
            p.meta {
                span.severity { (word(&incident.severity)) } " · "
                span.state data-state=(word(&incident.status)) { (word(&incident.status)) } " · "
                "detected " time datetime=(incident.first_detected) { (incident.first_detected) }
                " · updated " time datetime=(incident.last_updated) { (incident.last_updated) }
                @if let Some(resolved) = &incident.resolved_at { " · resolved " time datetime=(resolved) { (resolved) } }
                " · " (incident.alert_count) " alerts"
                @if let Some(merged) = &incident.merged_into { " · merged into " a href=(super::incident_href(merged)) { (merged) } }
            }
            @if let Some(ack) = &incident.acknowledged {
                p.ack { "Acknowledged by " strong { (ack.by) } " at " time datetime=(ack.at) { (ack.at) }
                    @if let Some(comment) = &ack.comment { ": " (comment) } }
            }
            @if !incident.silenced_by.is_empty() {
                p.meta { "Notifications held back by silence " (incident.silenced_by.join(", ")) " (detection goes on)." }
            }
            div.actions {
                @for action in actions(incident) {
                    button type="button" data-action-method=(action.method) data-action-path=(action.path)
                        data-confirm=[action.confirm] data-ask-field=[action.ask.map(|ask| ask.0)]
                        data-ask-question=[action.ask.map(|ask| ask.1)] data-body=[action.body.as_deref()]
                        data-ends-in-secs=[action.ends_in_secs] { (action.label) }
                }
            }
        }
        section.cause-box aria-labelledby="cause-title" {
            h2 #cause-title { "Root cause" }
            p.cause {
                a.root-cause href=(endpoint_href(&cause.service, operation_of(&cause.service, &cause.endpoint))) { (cause.endpoint) }
                " in " strong { (cause.service) } " — " (word(&cause.kind))
            }
            p { (cause.description) }
            dl.why {
                dt { "Explains" } dd { (percent(cause.confidence)) " of the anomalous traces" }
                @if let Some(anomaly) = why {
                    dt { "Observed" } dd { (figure(anomaly.observed)) }
                    dt { "Baseline" } dd { (figure(anomaly.baseline)) }
                    dt { "Ratio" } dd { (figure(anomaly.ratio)) "×" }
                    dt { "Requests" } dd { (anomaly.sample_count) }
                }
            }
            @if !cause.candidates.is_empty() {
                h3 { "Candidates" }
                div.scroll { table {
                    thead { tr { th scope="col" { "Endpoint" } th scope="col" { "Service" } th scope="col" class="num" { "Share of traces" } } }
                    tbody {
                        @for candidate in &cause.candidates {
                            tr { th scope="row" { (candidate.endpoint) } td { (candidate.service) } td.num { (percent(candidate.score)) } }
                        }
                    }
                } }
            }
        }
        (super::clues::render(incident))
        section aria-labelledby="affected-title" {
            h2 #affected-title { "Affected endpoints (" (incident.affected_endpoints.len()) ")" }
            ul.affected {
                @for endpoint in &incident.affected_endpoints {
                    li.lit[endpoint == &cause.endpoint] { (endpoint) }
                }
            }
        }
        @if let Some((latency, errors)) = &story.charts {
            section aria-labelledby="charts-title" {
                h2 #charts-title { "Around the detection" }
                div.charts {
                    (latency.figure("chart-latency"))
                    (errors.figure("chart-errors"))
                }
            }
        }
        section aria-labelledby="anomalies-title" {
            h2 #anomalies-title { "Anomalies (" (incident.anomalies.len()) ")" }
            div.scroll { table {
                thead { tr {
                    th scope="col" { "Endpoint" } th scope="col" { "Kind" } th scope="col" { "Severity" }
                    th scope="col" { "Description" } th scope="col" class="num" { "Requests" } th scope="col" { "Window" }
                } }
                tbody {
                    @for anomaly in &incident.anomalies {
                        tr {
                            th scope="row" { (anomaly.endpoint) }
                            td { (word(&anomaly.kind)) }
                            td { (word(&anomaly.severity)) }
                            td { (anomaly.description) }
                            td.num { (anomaly.sample_count) }
                            td { time datetime=(anomaly.window.start) { (anomaly.window.start) } " – " time datetime=(anomaly.window.end) { (anomaly.window.end) } }
                        }
                    }
                }
            } }
        }
        @if !story.timeline.is_empty() {
            section aria-labelledby="timeline-title" {
                h2 #timeline-title { "Timeline (" (story.timeline.len()) ")" }
                ol.timeline {
                    @for event in &story.timeline {
                        li {
                            time datetime=(event.at) { (event.at) } " " strong { (event.kind) }
                            @if let Some(details) = event.details.as_object().filter(|details| !details.is_empty()) {
                                " — " (details.iter().map(|(key, value)| format!("{key}: {}", value.as_str().map_or_else(|| value.to_string(), str::to_owned))).collect::<Vec<_>>().join(", "))
                            }
                        }
                    }
                }
            }
        }
        section aria-labelledby="trace-title" {
            h2 #trace-title { "First failing trace" }
            @match (&story.trace, &cause.first_failing_span) {
                (Some((waterfall, lit)), _) => {
                    p { a href=(trace_href(&waterfall.trace_id)) { "Open the trace on its own page" } }
                    (waterfall.render(Some(lit)))
                }
                (None, Some(span)) => { p { "Trace " code { (span.trace_id) } " is no longer kept." } }
                (None, None) => { p { "No trace was sampled for this incident." } }
            }
        }
    }
}

/// The operation of an endpoint named `endpoint` in `service` (the shop's are named by their
/// path alone, others `service operation`).
fn operation_of<'a>(service: &str, endpoint: &'a str) -> &'a str {
    endpoint
        .strip_prefix(service)
        .and_then(|rest| rest.strip_prefix(' '))
        .unwrap_or(endpoint)
}
