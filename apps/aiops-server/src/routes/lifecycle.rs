//! The incident lifecycle beyond detection: `POST /aiops/incidents/{id}/acknowledge`,
//! `GET /aiops/incidents/{id}/timeline`, and the silences (`/aiops/silences[/{id}]`).

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, web};
use chrono::DateTime;
use serde_json::json;

use super::aiops::{find_incident, unknown_incident};
use super::database;
use super::params::Params;
use crate::api_error::ApiError;
use crate::clock::now_unix_nanos;
use crate::notify::{DeskError, Matcher, Notes, Silence};
use crate::state::AppState;
use crate::views::error::ErrorBody;
use crate::views::format::iso_millis;
use crate::views::incident::Incident;
use crate::views::lifecycle::{
    AcknowledgeRequest, Acknowledged, Acknowledgement, NewSilence, SilenceList, SilenceMatcher,
    SilenceView, Timeline, TimelineEvent,
};

/// Longest name or comment accepted, in characters.
const MAX_TEXT: usize = 1000;

/// The view of `incident` with its notes.
pub fn with_notes(mut view: Incident, notes: Option<&Notes>) -> Incident {
    if let Some(notes) = notes {
        view.acknowledged = notes.acknowledged.as_ref().map(|ack| Acknowledged {
            by: ack.by.clone(),
            comment: ack.comment.clone(),
            at: iso_millis(ack.at_unix_nanos),
        });
        view.silenced_by = notes.silenced_by.clone();
    }
    view
}

fn text(name: &str, value: &str, required: bool) -> Result<(), ApiError> {
    if required && value.trim().is_empty() {
        return Err(ApiError::bad_request(format!(
            "{name} is empty; accepted: a non-empty text of at most {MAX_TEXT} characters"
        ))
        .with("field", json!(name)));
    }
    if value.chars().count() > MAX_TEXT {
        return Err(ApiError::bad_request(format!(
            "{name} is too long; accepted: at most {MAX_TEXT} characters"
        ))
        .with("field", json!(name)));
    }
    Ok(())
}

fn desk_error(error: DeskError) -> ApiError {
    match error {
        DeskError::AlreadyAcknowledged(ack) => ApiError::new(
            StatusCode::CONFLICT,
            format!(
                "the incident is already acknowledged by {} (at {}); accepted: an incident \
                 nobody has acknowledged",
                ack.by,
                iso_millis(ack.at_unix_nanos)
            ),
        )
        .with("acknowledged_by", json!(ack.by)),
        other => ApiError::unavailable(format!("{other}; try again shortly")),
    }
}

/// `POST /aiops/incidents/{id}/acknowledge`: someone takes the incident on. It keeps being
/// tracked and still resolves; Alertmanager hears of it as annotations, webhooks as a
/// notification.
#[utoipa::path(
    post,
    path = "/aiops/incidents/{id}/acknowledge",
    operation_id = "acknowledgeIncident",
    tag = "aiops",
    params(("id" = String, Path, description = "Incident id, e.g. INC-1737404800-1")),
    request_body = AcknowledgeRequest,
    security((), ("bearer" = [])),
    responses(
        (status = 200, description = "Acknowledged", body = Acknowledgement),
        (status = 400, description = "Invalid body", body = ErrorBody),
        (status = 404, description = "No such incident", body = ErrorBody),
        (status = 409, description = "Resolved, or already acknowledged", body = ErrorBody),
    )
)]
pub async fn acknowledge(
    request: HttpRequest,
    id: web::Path<String>,
    body: web::Json<AcknowledgeRequest>,
    state: web::Data<AppState>,
) -> Result<web::Json<Acknowledgement>, ApiError> {
    Params::parse(&request, &[])?;
    let id = id.into_inner();
    let AcknowledgeRequest { by, comment } = body.into_inner();
    text("by", &by, true)?;
    if let Some(comment) = &comment {
        text("comment", comment, false)?;
    }
    let incident = find_incident(&state, &id)
        .await?
        .ok_or_else(|| unknown_incident(&id))?;
    if let Some(resolved_at) = incident.resolved_at_unix_nanos {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!(
                "incident {id} is already resolved (at {}); accepted: an active incident id",
                iso_millis(resolved_at)
            ),
        ));
    }
    let by = by.trim().to_owned();
    let notes = state
        .notifier
        .acknowledge(incident.clone(), by.clone(), comment)
        .await?
        .map_err(desk_error)?;
    let view = Incident::new(&state.settings.endpoint_naming, &incident);
    Ok(web::Json(Acknowledgement {
        message: format!("Incident {id} acknowledged by {by}"),
        incident: with_notes(view, Some(&notes)),
    }))
}

/// `GET /aiops/incidents/{id}/timeline`: what happened to the incident, oldest first.
#[utoipa::path(
    get,
    path = "/aiops/incidents/{id}/timeline",
    operation_id = "getIncidentTimeline",
    tag = "aiops",
    params(("id" = String, Path, description = "Incident id, e.g. INC-1737404800-1")),
    responses(
        (status = 200, description = "The incident's events, oldest first", body = Timeline),
        (status = 404, description = "No such incident", body = ErrorBody),
    )
)]
pub async fn timeline(
    request: HttpRequest,
    id: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<web::Json<Timeline>, ApiError> {
    Params::parse(&request, &[])?;
    let id = id.into_inner();
    let wanted = id.clone();
    let stored = database::query(&state.store, move |store| store.timeline(&wanted)).await?;
    if stored.is_empty() && find_incident(&state, &id).await?.is_none() {
        return Err(unknown_incident(&id));
    }
    let events: Vec<TimelineEvent> = stored
        .into_iter()
        .map(|stored| TimelineEvent {
            sequence: stored.sequence,
            at: iso_millis(stored.event.at_unix_nanos),
            kind: stored.event.kind,
            details: stored.event.body,
        })
        .collect();
    Ok(web::Json(Timeline {
        incident_id: id,
        count: events.len(),
        events,
    }))
}

fn silence_view(silence: &Silence, now: u64) -> SilenceView {
    let state = serde_json::to_value(silence.state(now))
        .ok()
        .and_then(|value| value.as_str().map(str::to_owned))
        .unwrap_or_default();
    SilenceView {
        id: silence.id.clone(),
        state,
        matchers: silence
            .matchers
            .iter()
            .map(|matcher| SilenceMatcher {
                name: matcher.name.clone(),
                value: matcher.value.clone(),
                is_regex: matcher.is_regex,
                is_equal: matcher.is_equal,
            })
            .collect(),
        starts_at: iso_millis(silence.starts_at_unix_nanos),
        ends_at: iso_millis(silence.ends_at_unix_nanos),
        created_by: silence.created_by.clone(),
        comment: silence.comment.clone(),
        created_at: iso_millis(silence.created_at_unix_nanos),
    }
}

const TIME_FORMAT: &str = "an ISO 8601 time with a zone, e.g. 2026-01-20T23:00:00Z";

fn time_field(name: &str, text: &str) -> Result<u64, ApiError> {
    DateTime::parse_from_rfc3339(text.trim())
        .ok()
        .and_then(|time| time.timestamp_nanos_opt())
        .and_then(|nanos| u64::try_from(nanos).ok())
        .ok_or_else(|| {
            ApiError::bad_request(format!("invalid {name} {text:?}; accepted: {TIME_FORMAT}"))
                .with("field", json!(name))
        })
}

/// Checks `new` and makes it a silence at `now`.
fn silence_of(new: NewSilence, now: u64) -> Result<Silence, ApiError> {
    if new.matchers.is_empty() {
        return Err(ApiError::bad_request(
            "a silence needs matchers; accepted: at least one of {\"name\": \"service\" | \
             \"endpoint\" | \"kind\" | \"severity\", \"value\": \"...\", \"is_regex\": false, \
             \"is_equal\": true}",
        )
        .with("field", json!("matchers")));
    }
    let matchers: Vec<Matcher> = new
        .matchers
        .into_iter()
        .map(|matcher| Matcher {
            name: matcher.name,
            value: matcher.value,
            is_regex: matcher.is_regex,
            is_equal: matcher.is_equal,
        })
        .collect();
    for matcher in &matchers {
        matcher
            .check()
            .map_err(|message| ApiError::bad_request(message).with("field", json!("matchers")))?;
    }
    text("created_by", &new.created_by, true)?;
    text("comment", &new.comment, false)?;
    let starts = match &new.starts_at {
        Some(text) => time_field("starts_at", text)?,
        None => now,
    };
    let ends = time_field("ends_at", &new.ends_at)?;
    if ends <= starts.max(now) {
        return Err(ApiError::bad_request(format!(
            "ends_at {} is not after starts_at and now; accepted: a time after both",
            new.ends_at.trim()
        ))
        .with("field", json!("ends_at")));
    }
    Ok(Silence {
        id: uuid::Uuid::new_v4().to_string(),
        matchers,
        starts_at_unix_nanos: starts,
        ends_at_unix_nanos: ends,
        created_by: new.created_by.trim().to_owned(),
        comment: new.comment,
        created_at_unix_nanos: now,
    })
}

/// `POST /aiops/silences`: holds back notifications about the incidents it matches, from
/// `starts_at` to `ends_at`; detection, incidents and resolution go on.
#[utoipa::path(
    post,
    path = "/aiops/silences",
    operation_id = "createSilence",
    tag = "aiops",
    request_body = NewSilence,
    security((), ("bearer" = [])),
    responses(
        (status = 201, description = "Created", body = SilenceView),
        (status = 400, description = "Invalid silence", body = ErrorBody),
    )
)]
pub async fn create_silence(
    request: HttpRequest,
    body: web::Json<NewSilence>,
    state: web::Data<AppState>,
) -> Result<(web::Json<SilenceView>, StatusCode), ApiError> {
    Params::parse(&request, &[])?;
    let now = now_unix_nanos();
    let silence = silence_of(body.into_inner(), now)?;
    let silence = state
        .notifier
        .create_silence(silence)
        .await?
        .map_err(desk_error)?;
    Ok((web::Json(silence_view(&silence, now)), StatusCode::CREATED))
}

/// `GET /aiops/silences`: pending and active silences, and those expired in the last day.
#[utoipa::path(
    get,
    path = "/aiops/silences",
    operation_id = "listSilences",
    tag = "aiops",
    responses((status = 200, description = "The silences, by end", body = SilenceList))
)]
pub async fn list_silences(
    request: HttpRequest,
    state: web::Data<AppState>,
) -> Result<web::Json<SilenceList>, ApiError> {
    Params::parse(&request, &[])?;
    let now = now_unix_nanos();
    let mut silences = state.notifier.silences().await?;
    silences.sort_by(|a, b| (a.ends_at_unix_nanos, &a.id).cmp(&(b.ends_at_unix_nanos, &b.id)));
    let silences: Vec<SilenceView> = silences.iter().map(|s| silence_view(s, now)).collect();
    Ok(web::Json(SilenceList {
        count: silences.len(),
        silences,
    }))
}

/// `DELETE /aiops/silences/{id}`: ends the silence now; it stays listed as expired.
#[utoipa::path(
    delete,
    path = "/aiops/silences/{id}",
    operation_id = "expireSilence",
    tag = "aiops",
    params(("id" = String, Path, description = "Silence id, as listed by GET /aiops/silences")),
    security((), ("bearer" = [])),
    responses(
        (status = 200, description = "Expired", body = SilenceView),
        (status = 404, description = "No such silence", body = ErrorBody),
    )
)]
pub async fn expire_silence(
    request: HttpRequest,
    id: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<web::Json<SilenceView>, ApiError> {
    Params::parse(&request, &[])?;
    let id = id.into_inner();
    let expired = state
        .notifier
        .expire_silence(id.clone())
        .await?
        .map_err(desk_error)?;
    match expired {
        Some(silence) => Ok(web::Json(silence_view(&silence, now_unix_nanos()))),
        None => Err(ApiError::not_found(format!(
            "no silence has id {id:?}; accepted: a silence id as listed by GET /aiops/silences"
        ))
        .with("id", json!(id))),
    }
}
