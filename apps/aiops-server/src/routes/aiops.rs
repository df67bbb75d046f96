//! The engine's JSON API: `/aiops/metrics`, `/aiops/incidents`, `/aiops/analyze`,
//! `/aiops/topology`.

use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use aiops_engine::{IncidentError, IncidentStatus};
use aiops_telemetry_core::TimeWindow;
use serde_json::json;

use crate::actor::AnalysisStopped;
use crate::api_error::ApiError;
use crate::clock::now_unix_nanos;
use crate::render;
use crate::routes::params::Params;
use crate::state::AppState;

const ID_FORMAT: &str =
    "an incident id such as INC-1737404800-1, as listed by GET /aiops/incidents";

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
    tag = "aiops",
    responses((status = 200, description = "Per-endpoint live figures, baselines and health", body = crate::views::MetricsReport))
)]
pub async fn metrics(
    request: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    Params::parse(&request, &[])?;
    let naming = state.settings.endpoint_naming.clone();
    let (metrics, analyzed_at, cycles, early_cycles, persist_failures, window_secs) = state
        .analysis
        .inspect(move |view| {
            let config = view.engine.analyzer().config();
            let metrics = view.last_cycle.map_or_else(
                || json!({}),
                |(_, report)| render::endpoint_metrics(&naming, &report.endpoints, config),
            );
            (
                metrics,
                view.last_cycle.map(|(at, _)| render::iso_millis(at)),
                view.cycles,
                view.early_cycles,
                view.persist_failures,
                config.analysis_window_secs,
            )
        })
        .await?;
    let writer = state.writer.stats();
    Ok(HttpResponse::Ok().json(json!({
        "metrics": metrics,
        "spans": {
            "ingested": state.counters.accepted(),
            "dropped": state.counters.dropped().max(writer.dropped),
            "written": writer.written,
            "queued": writer.queued,
        },
        "analysis": {
            "analyzed_at": analyzed_at,
            "window_secs": window_secs,
            "cycles": cycles,
            "early_cycles": early_cycles,
            "persist_failures": persist_failures,
        },
    })))
}

/// `GET /aiops/incidents[?status=active|resolved|all]`.
///
/// `active` (the default) answers `{"active_incidents": [...]}` as the quick reference shows;
/// `resolved` and `all` answer `{"status": ..., "incidents": [...]}`.
#[utoipa::path(
    get,
    path = "/aiops/incidents",
    tag = "aiops",
    params(("status" = Option<String>, Query, description = "active (default), resolved or all")),
    responses(
        (status = 200, description = "`active_incidents` (default), or `incidents` with `status`", body = crate::views::ActiveIncidents),
        (status = 400, description = "Unknown status", body = crate::views::ErrorBody),
    )
)]
pub async fn incidents(
    request: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let params = Params::parse(&request, &["status"])?;
    let status = params.get("status").unwrap_or("active");
    let wanted: Option<IncidentStatus> = match status {
        "active" => Some(IncidentStatus::Active),
        "resolved" => Some(IncidentStatus::Resolved),
        "all" => None,
        other => {
            return Err(ApiError::bad_request(format!(
                "invalid status {other:?}; accepted: active, resolved, all"
            ))
            .with("parameter", json!("status"))
            .with("accepted", json!(["active", "resolved", "all"])));
        }
    };
    let naming = state.settings.endpoint_naming.clone();
    let list = state
        .analysis
        .inspect(move |view| {
            let book = view.engine.incidents();
            render::incidents(
                &naming,
                book.all()
                    .into_iter()
                    .filter(|incident| wanted.is_none_or(|wanted| incident.status == wanted)),
            )
        })
        .await?;
    let body = if wanted == Some(IncidentStatus::Active) {
        json!({ "active_incidents": list, "count": list.len() })
    } else {
        json!({ "status": status, "incidents": list, "count": list.len() })
    };
    Ok(HttpResponse::Ok().json(body))
}

/// `GET /aiops/incidents/{id}`.
#[utoipa::path(
    get,
    path = "/aiops/incidents/{id}",
    tag = "aiops",
    params(("id" = String, Path, description = "Incident id, e.g. INC-1737404800-1")),
    responses(
        (status = 200, description = "The incident", body = crate::views::Incident),
        (status = 404, description = "No such incident", body = crate::views::ErrorBody),
    )
)]
pub async fn incident(
    request: HttpRequest,
    id: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    Params::parse(&request, &[])?;
    let id = id.into_inner();
    let lookup = id.clone();
    let naming = state.settings.endpoint_naming.clone();
    let found = state
        .analysis
        .inspect(move |view| {
            view.engine
                .incidents()
                .get(&lookup)
                .map(|incident| render::incident(&naming, incident))
        })
        .await?;
    found
        .map(|incident| HttpResponse::Ok().json(incident))
        .ok_or_else(|| unknown_incident(&id))
}

/// `POST /aiops/incidents/{id}/resolve`.
#[utoipa::path(
    post,
    path = "/aiops/incidents/{id}/resolve",
    tag = "aiops",
    params(("id" = String, Path, description = "Incident id, e.g. INC-1737404800-1")),
    security((), ("bearer" = [])),
    responses(
        (status = 200, description = "Resolved; older evidence never re-opens it", body = crate::views::Resolution),
        (status = 404, description = "No such incident", body = crate::views::ErrorBody),
        (status = 409, description = "Already resolved", body = crate::views::ErrorBody),
    )
)]
pub async fn resolve(
    request: HttpRequest,
    id: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    Params::parse(&request, &[])?;
    let id = id.into_inner();
    match state.analysis.resolve(id.clone()).await? {
        Ok(incident) => Ok(HttpResponse::Ok().json(json!({
            "message": format!("Incident {} resolved", incident.id),
            "incident": render::incident(&state.settings.endpoint_naming, &incident),
        }))),
        Err(IncidentError::AlreadyResolved {
            resolved_at_unix_nanos,
            ..
        }) => Err(ApiError::new(
            StatusCode::CONFLICT,
            format!(
                "incident {id} is already resolved (at {}); accepted: an active incident id",
                render::iso(resolved_at_unix_nanos)
            ),
        )
        .with("resolved_at", json!(render::iso(resolved_at_unix_nanos)))),
        Err(_) => Err(unknown_incident(&id)),
    }
}

fn unknown_incident(id: &str) -> ApiError {
    ApiError::not_found(format!("no incident has id {id:?}; accepted: {ID_FORMAT}"))
        .with("id", json!(id))
}

/// `POST /aiops/analyze`: runs a cycle now and returns its anomalies and incidents.
#[utoipa::path(
    post,
    path = "/aiops/analyze",
    tag = "aiops",
    security((), ("bearer" = [])),
    responses((status = 200, description = "The cycle's anomalies and incident changes", body = crate::views::AnalysisReport))
)]
pub async fn analyze(
    request: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    Params::parse(&request, &[])?;
    let outcome = state.analysis.analyze_now().await?;
    Ok(HttpResponse::Ok().json(render::cycle(
        &state.settings.endpoint_naming,
        outcome.at_unix_nanos,
        &outcome.report,
        &outcome.changed,
        &outcome.active,
        &state.settings.analyzer,
    )))
}

/// `GET /aiops/topology[?window=DURATION]`: the service dependency graph of recent traces.
#[utoipa::path(
    get,
    path = "/aiops/topology",
    tag = "aiops",
    params(("window" = Option<String>, Query, description = "How far back, 1s to 24h (e.g. 5m); default the analysis window")),
    responses(
        (status = 200, description = "Service dependency graph", body = crate::views::Topology),
        (status = 400, description = "Invalid window", body = crate::views::ErrorBody),
    )
)]
pub async fn topology(
    request: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let params = Params::parse(&request, &["window"])?;
    let length = match params.get("window") {
        None => state.settings.analysis_window,
        Some(text) => crate::config::parse_duration(text)
            .ok()
            .filter(|length| {
                (Duration::from_secs(1)..=Duration::from_secs(24 * 3600)).contains(length)
            })
            .ok_or_else(|| {
                ApiError::bad_request(format!(
                    "invalid window {text:?}; accepted: a duration from 1s to 24h, e.g. 30s or 5m"
                ))
                .with("parameter", json!("window"))
            })?,
    };
    let over = TimeWindow::ending_at(
        now_unix_nanos(),
        u64::try_from(length.as_nanos()).unwrap_or(u64::MAX),
    );
    let naming = state.settings.endpoint_naming.clone();
    let body = state
        .analysis
        .inspect(move |view| render::topology(&naming, &view.engine.topology(over), &over))
        .await?;
    Ok(HttpResponse::Ok().json(body))
}
