//! The engine's JSON API: `/aiops/metrics`, `/aiops/incidents`, `/aiops/analyze`,
//! `/aiops/topology`.

use std::collections::HashSet;
use std::sync::LazyLock;
use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, web};
use aiops_engine::{Incident as EngineIncident, IncidentError, IncidentStatus};
use aiops_telemetry_core::TimeWindow;
use regex::Regex;
use serde_json::json;

use super::database;
use super::lifecycle::with_notes;
use super::params::Params;
use crate::actor::AnalysisStopped;
use crate::api_error::ApiError;
use crate::clock::now_unix_nanos;
use crate::config::parse_duration;
use crate::persistence::{archived_incident, archived_resolved};
use crate::state::AppState;
use crate::views::cycle::AnalysisReport;
use crate::views::error::ErrorBody;
use crate::views::format::{iso, iso_millis};
use crate::views::incident::{ActiveIncidents, Incident, IncidentList, Incidents, Resolution};
use crate::views::metrics::{AnalysisProgress, EndpointMetrics, MetricsReport, SpanCounts};
use crate::views::topology::Topology;

const ID_FORMAT: &str =
    "an incident id such as INC-1737404800-1, as listed by GET /aiops/incidents";

/// At most this many resolved incidents the engine no longer keeps are added from the
/// database to `GET /aiops/incidents?status=resolved|all`.
pub const ARCHIVED_LISTED: usize = 1000;

impl From<AnalysisStopped> for ApiError {
    fn from(error: AnalysisStopped) -> Self {
        ApiError::unavailable(format!("{error}; the server is shutting down"))
    }
}

/// `GET /aiops/metrics`: per-endpoint figures of the latest analysis cycle, with baselines and
/// health, plus the span pipeline's counters.
#[utoipa::path(
    get,
    path = "/aiops/metrics",
    operation_id = "getEndpointMetrics",
    tag = "aiops",
    responses((status = 200, description = "Per-endpoint live figures, baselines and health", body = MetricsReport))
)]
pub async fn metrics(
    request: HttpRequest,
    state: web::Data<AppState>,
) -> Result<web::Json<MetricsReport>, ApiError> {
    Params::parse(&request, &[])?;
    let status = state.analysis.status().await?;
    let settings = &state.settings;
    let pipeline = state.pipeline_stats();
    Ok(web::Json(MetricsReport {
        metrics: status
            .last_cycle
            .as_ref()
            .map(|cycle| {
                EndpointMetrics::by_endpoint(
                    &settings.endpoint_naming,
                    &cycle.report.endpoints,
                    &settings.analyzer,
                )
            })
            .unwrap_or_default(),
        spans: SpanCounts::from(pipeline),
        analysis: AnalysisProgress {
            analyzed_at: status
                .last_cycle
                .map(|cycle| iso_millis(cycle.at_unix_nanos)),
            window_secs: settings.analyzer.analysis_window_secs,
            cycles: status.cycles,
            early_cycles: status.early_cycles,
            persist_failures: status.persist_failures,
        },
    }))
}

/// The values of `GET /aiops/incidents?status=`.
pub const INCIDENT_STATUSES: [&str; 5] = [
    "active",
    "acknowledged",
    "unacknowledged",
    "resolved",
    "all",
];

/// The windows `GET /aiops/topology?window=` takes: whole seconds, minutes or hours from 1s to
/// 24h (`90s`, `5m`, `1h`), as the document's pattern.
pub const WINDOW_PATTERN: &str = "^(?:(?:[1-9][0-9]{0,3}|[1-7][0-9]{4}|8[0-5][0-9]{3}|86[0-3][0-9]{2}|86400)s|(?:[1-9][0-9]{0,2}|1[0-3][0-9]{2}|14[0-3][0-9]|1440)m|(?:[1-9]|1[0-9]|2[0-4])h)$";

/// `GET /aiops/incidents[?status=active|acknowledged|unacknowledged|resolved|all]`.
///
/// `active` (the default) answers `{"active_incidents": [...]}` as docs/API.md shows; the
/// others answer `{"status": ..., "incidents": [...]}`: `acknowledged` and `unacknowledged`
/// are the active incidents someone has (or nobody has) acknowledged; `resolved` and `all`
/// add up to [`ARCHIVED_LISTED`] older resolved incidents from the database to those the
/// engine keeps.
#[utoipa::path(
    get,
    path = "/aiops/incidents",
    operation_id = "listIncidents",
    tag = "aiops",
    params(("status" = Option<String>, Query, description = "active (default), acknowledged, unacknowledged, resolved or all; resolved and all include up to 1000 older resolved incidents from the database")),
    responses(
        (status = 200, description = "`active_incidents` (default), or `incidents` with `status`", body = Incidents),
        (status = 400, description = "Unknown status", body = ErrorBody),
    )
)]
pub async fn incidents(
    request: HttpRequest,
    state: web::Data<AppState>,
) -> Result<web::Json<Incidents>, ApiError> {
    const ACCEPTED: [&str; 5] = INCIDENT_STATUSES;
    let params = Params::parse(&request, &["status"])?;
    let status = params.get("status").unwrap_or("active");
    let wanted: Option<IncidentStatus> = match status {
        "active" | "acknowledged" | "unacknowledged" => Some(IncidentStatus::Active),
        "resolved" => Some(IncidentStatus::Resolved),
        "all" => None,
        other => {
            return Err(ApiError::bad_request(format!(
                "invalid status {other:?}; accepted: {}",
                ACCEPTED.join(", ")
            ))
            .with("parameter", json!("status"))
            .with("accepted", json!(ACCEPTED)));
        }
    };
    let mut found = state.analysis.incidents(wanted).await?;
    if wanted != Some(IncidentStatus::Active) {
        let archived = archived_beside(&state, &found).await;
        found.extend(archived);
    }
    let ids = found.iter().map(|incident| incident.id.clone()).collect();
    let notes = state.notifier.notes(ids).await?;
    let acknowledged = |id: &str| notes.get(id).is_some_and(|n| n.acknowledged.is_some());
    match status {
        "acknowledged" => found.retain(|incident| acknowledged(&incident.id)),
        "unacknowledged" => found.retain(|incident| !acknowledged(&incident.id)),
        _ => {}
    }
    let list: Vec<Incident> = Incident::newest_first(&state.settings.endpoint_naming, &found)
        .into_iter()
        .map(|view| {
            let of = notes.get(&view.id).cloned();
            with_notes(view, of.as_ref())
        })
        .collect();
    let count = list.len();
    Ok(web::Json(if status == "active" {
        Incidents::Active(ActiveIncidents {
            active_incidents: list,
            count,
        })
    } else {
        Incidents::Listed(IncidentList {
            status: status.to_owned(),
            incidents: list,
            count,
        })
    }))
}

/// The resolved incidents the database keeps beyond `kept`, the engine's; none when the
/// database does not answer, so that the list still shows what the engine keeps.
async fn archived_beside(state: &AppState, kept: &[EngineIncident]) -> Vec<EngineIncident> {
    let kept: HashSet<String> = kept.iter().map(|incident| incident.id.clone()).collect();
    database::query(&state.store, move |store| {
        archived_resolved(store, &kept, ARCHIVED_LISTED)
    })
    .await
    .unwrap_or_default()
}

/// Incident `id`: from the engine, or else from the archive of resolved incidents.
pub async fn find_incident(state: &AppState, id: &str) -> Result<Option<EngineIncident>, ApiError> {
    if let Some(incident) = state.analysis.incident(id.to_owned()).await? {
        return Ok(Some(incident));
    }
    let id = id.to_owned();
    database::query(&state.store, move |store| archived_incident(store, &id)).await
}

/// `GET /aiops/incidents/{id}`.
#[utoipa::path(
    get,
    path = "/aiops/incidents/{id}",
    operation_id = "getIncident",
    tag = "aiops",
    params(("id" = String, Path, description = "Incident id, e.g. INC-1737404800-1")),
    responses(
        (status = 200, description = "The incident", body = Incident),
        (status = 404, description = "No such incident", body = ErrorBody),
    )
)]
pub async fn incident(
    request: HttpRequest,
    id: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<web::Json<Incident>, ApiError> {
    Params::parse(&request, &[])?;
    let id = id.into_inner();
    let incident = find_incident(&state, &id)
        .await?
        .ok_or_else(|| unknown_incident(&id))?;
    let notes = state.notifier.notes(vec![id.clone()]).await?;
    let view = Incident::new(&state.settings.endpoint_naming, &incident);
    Ok(web::Json(with_notes(view, notes.get(&id))))
}

/// `POST /aiops/incidents/{id}/resolve`.
#[utoipa::path(
    post,
    path = "/aiops/incidents/{id}/resolve",
    operation_id = "resolveIncident",
    tag = "aiops",
    params(("id" = String, Path, description = "Incident id, e.g. INC-1737404800-1")),
    security((), ("bearer" = [])),
    responses(
        (status = 200, description = "Resolved; older evidence never re-opens it", body = Resolution),
        (status = 404, description = "No such incident", body = ErrorBody),
        (status = 409, description = "Already resolved", body = ErrorBody),
    )
)]
pub async fn resolve(
    request: HttpRequest,
    id: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<web::Json<Resolution>, ApiError> {
    Params::parse(&request, &[])?;
    let id = id.into_inner();
    match state.analysis.resolve(id.clone()).await? {
        Ok(incident) => Ok(web::Json(Resolution::new(
            &state.settings.endpoint_naming,
            &incident,
        ))),
        Err(IncidentError::AlreadyResolved {
            resolved_at_unix_nanos,
            ..
        }) => Err(already_resolved(&id, resolved_at_unix_nanos)),
        // An incident resolved long ago is in the archive, no longer in the engine.
        Err(_) => match find_incident(&state, &id)
            .await?
            .and_then(|incident| incident.resolved_at_unix_nanos)
        {
            Some(resolved_at_unix_nanos) => Err(already_resolved(&id, resolved_at_unix_nanos)),
            None => Err(unknown_incident(&id)),
        },
    }
}

fn already_resolved(id: &str, resolved_at_unix_nanos: u64) -> ApiError {
    ApiError::new(
        StatusCode::CONFLICT,
        format!(
            "incident {id} is already resolved (at {}); accepted: an active incident id",
            iso(resolved_at_unix_nanos)
        ),
    )
    .with("resolved_at", json!(iso(resolved_at_unix_nanos)))
}

/// 404 for an incident id the engine and the archive do not know.
pub fn unknown_incident(id: &str) -> ApiError {
    ApiError::not_found(format!("no incident has id {id:?}; accepted: {ID_FORMAT}"))
        .with("id", json!(id))
}

/// `POST /aiops/analyze`: runs a cycle now and returns its anomalies and incidents.
#[utoipa::path(
    post,
    path = "/aiops/analyze",
    operation_id = "runAnalysis",
    tag = "aiops",
    security((), ("bearer" = [])),
    responses((status = 200, description = "The cycle's anomalies and incident changes", body = AnalysisReport))
)]
pub async fn analyze(
    request: HttpRequest,
    state: web::Data<AppState>,
) -> Result<web::Json<AnalysisReport>, ApiError> {
    Params::parse(&request, &[])?;
    let outcome = state.analysis.analyze_now().await?;
    Ok(web::Json(AnalysisReport::new(
        &state.settings.endpoint_naming,
        outcome.at_unix_nanos,
        &outcome.report,
        &outcome.changed,
        &outcome.active,
        &state.settings.analyzer,
    )))
}

/// `GET /aiops/topology[?window=DURATION]`: the service dependency graph of recent traces,
/// read from the engine's trace buffer without waiting for a cycle.
#[utoipa::path(
    get,
    path = "/aiops/topology",
    operation_id = "getTopology",
    tag = "aiops",
    params(("window" = Option<String>, Query, description = "How far back: whole seconds, minutes or hours from 1s to 24h (e.g. 90s, 5m, 1h); default the analysis window")),
    responses(
        (status = 200, description = "Service dependency graph", body = Topology),
        (status = 400, description = "Invalid window", body = ErrorBody),
    )
)]
pub async fn topology(
    request: HttpRequest,
    state: web::Data<AppState>,
) -> Result<web::Json<Topology>, ApiError> {
    let params = Params::parse(&request, &["window"])?;
    let length = match params.get("window") {
        None => state.settings.analysis_window,
        Some(text) => window_length(text).ok_or_else(|| {
            ApiError::bad_request(format!(
                "invalid window {text:?}; accepted: whole seconds, minutes or hours from 1s to 24h, e.g. 30s or 5m"
            ))
            .with("parameter", json!("window"))
            .with("pattern", json!(WINDOW_PATTERN))
        })?,
    };
    let over = TimeWindow::ending_at(
        now_unix_nanos(),
        u64::try_from(length.as_nanos()).unwrap_or(u64::MAX),
    );
    let graph = state.engine.topology(over);
    Ok(web::Json(Topology::new(
        &state.settings.endpoint_naming,
        &graph,
        &over,
    )))
}

/// The length `text` names when it matches [`WINDOW_PATTERN`].
fn window_length(text: &str) -> Option<Duration> {
    static PATTERN: LazyLock<Option<Regex>> = LazyLock::new(|| Regex::new(WINDOW_PATTERN).ok());
    PATTERN
        .as_ref()
        .filter(|pattern| pattern.is_match(text))
        .and_then(|_| parse_duration(text).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topology_windows_are_whole_units_from_one_second_to_a_day() {
        for (text, seconds) in [
            ("1s", 1),
            ("86400s", 86_400),
            ("90s", 90),
            ("5m", 300),
            ("1440m", 86_400),
            ("24h", 86_400),
        ] {
            assert_eq!(
                window_length(text),
                Some(Duration::from_secs(seconds)),
                "{text}"
            );
        }
        for text in [
            "0s", "86401s", "1441m", "25h", "1.5m", "05m", "500ms", "30", " 5m", "5m\n", "1d", "",
        ] {
            assert_eq!(window_length(text), None, "{text:?}");
        }
    }
}
