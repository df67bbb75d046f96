//! Changes: `POST /aiops/changes` (a deployment, configuration change or feature flag someone
//! reports) and `GET /aiops/changes` (reported and observed changes, newest first).

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, web};
use aiops_telemetry_core::{Change, ChangeKind, ChangeSource, SpanText};
use chrono::DateTime;
use serde_json::{Value, json};

use super::database;
use super::logs::parse_limit;
use super::params::Params;
use crate::api_error::ApiError;
use crate::clock::now_unix_nanos;
use crate::state::AppState;
use crate::views::error::ErrorBody;
use crate::views::logs::{ChangeList, ChangeView, NewChange};

const TIME_FORMAT: &str =
    "RFC 3339 (e.g. 2026-12-06T18:00:00Z) or Unix nanoseconds (e.g. 1796580000000000000)";

/// Longest service name or version accepted, in bytes.
const MAX_NAME: usize = 256;
/// Longest description accepted, in characters.
const MAX_DESCRIPTION: usize = 1000;

/// A time given as RFC 3339 text or as Unix nanoseconds, or 400 naming `name`.
pub fn parse_time(name: &str, text: &str) -> Result<u64, ApiError> {
    let text = text.trim();
    text.parse::<u64>()
        .ok()
        .or_else(|| {
            DateTime::parse_from_rfc3339(text)
                .ok()
                .and_then(|time| time.timestamp_nanos_opt())
                .and_then(|nanos| u64::try_from(nanos).ok())
        })
        .ok_or_else(|| {
            ApiError::bad_request(format!("invalid {name} {text:?}; accepted: {TIME_FORMAT}"))
                .with("parameter", json!(name))
        })
}

fn invalid(field: &str, message: String) -> ApiError {
    ApiError::bad_request(message).with("field", json!(field))
}

fn name(field: &str, value: Option<String>, required: bool) -> Result<Option<SpanText>, ApiError> {
    match value.map(|v| v.trim().to_owned()) {
        Some(v) if v.is_empty() && required => Err(invalid(
            field,
            format!("{field} is empty; accepted: a name of 1 to {MAX_NAME} bytes"),
        )),
        Some(v) if v.len() > MAX_NAME => Err(invalid(
            field,
            format!("{field} is too long; accepted: at most {MAX_NAME} bytes"),
        )),
        Some(v) if v.is_empty() => Ok(None),
        Some(v) => Ok(Some(SpanText::from(v))),
        None if required => Err(invalid(
            field,
            format!("missing {field}; accepted: a name of 1 to {MAX_NAME} bytes"),
        )),
        None => Ok(None),
    }
}

/// Checks `new` and makes it a reported change at `now` (when it gives no time).
pub fn change_of(new: NewChange, now: u64) -> Result<Change, ApiError> {
    let service = name("service", Some(new.service), true)?.unwrap_or_default();
    let kind = ChangeKind::parse(new.kind.trim()).ok_or_else(|| {
        invalid(
            "kind",
            format!(
                "invalid kind {:?}; accepted: deployment, config, feature_flag",
                new.kind
            ),
        )
    })?;
    let version = name("version", new.version, false)?;
    let previous_version = name("previous_version", new.previous_version, false)?;
    let description = new
        .description
        .map(|d| d.trim().to_owned())
        .filter(|d| !d.is_empty());
    if description
        .as_ref()
        .is_some_and(|d| d.chars().count() > MAX_DESCRIPTION)
    {
        return Err(invalid(
            "description",
            format!("description is too long; accepted: at most {MAX_DESCRIPTION} characters"),
        ));
    }
    if version.is_none() && description.is_none() {
        return Err(invalid(
            "version",
            "neither version nor description is given; accepted: a change with a version, a description, or both".into(),
        ));
    }
    let time = match new.time {
        None | Some(Value::Null) => now,
        Some(Value::String(text)) => parse_time("time", &text)?,
        Some(Value::Number(number)) => number.as_u64().ok_or_else(|| {
            invalid(
                "time",
                format!("invalid time {number}; accepted: {TIME_FORMAT}"),
            )
        })?,
        Some(other) => {
            return Err(invalid(
                "time",
                format!("invalid time {other}; accepted: {TIME_FORMAT}"),
            ));
        }
    };
    Ok(Change {
        service,
        kind,
        time_unix_nanos: time,
        version,
        previous_version,
        description,
        source: ChangeSource::Reported,
    })
}

/// `POST /aiops/changes`: stores a change someone reports and hands it to the analysis.
#[utoipa::path(
    post,
    path = "/aiops/changes",
    operation_id = "reportChange",
    tag = "aiops",
    request_body = NewChange,
    security((), ("bearer" = [])),
    responses(
        (status = 201, description = "Stored", body = ChangeView),
        (status = 400, description = "Invalid change", body = ErrorBody),
        (status = 503, description = "The database is not answering", body = ErrorBody),
    )
)]
pub async fn report_change(
    request: HttpRequest,
    body: web::Json<NewChange>,
    state: web::Data<AppState>,
) -> Result<(web::Json<ChangeView>, StatusCode), ApiError> {
    Params::parse(&request, &[])?;
    let change = change_of(body.into_inner(), now_unix_nanos())?;
    let stored = database::query(&state.store, move |store| store.insert_change(&change)).await?;
    state.change_listeners.tell(&stored.change);
    log::info!(
        "service={} kind={} version={} Change reported.",
        stored.change.service,
        stored.change.kind.as_str(),
        stored.change.version.as_deref().unwrap_or("")
    );
    Ok((web::Json(ChangeView::new(&stored)), StatusCode::CREATED))
}

/// `GET /aiops/changes`: reported and observed changes, newest first.
#[utoipa::path(
    get,
    path = "/aiops/changes",
    operation_id = "listChanges",
    tag = "aiops",
    params(
        ("service" = Option<String>, Query, description = "Only this service's changes"),
        ("since" = Option<String>, Query, description = "Only changes at or after this time: RFC 3339, or Unix nanoseconds"),
        ("limit" = Option<usize>, Query, description = "At most this many changes, 1 to 1000 (default 100)"),
    ),
    responses(
        (status = 200, description = "The changes, newest first", body = ChangeList),
        (status = 400, description = "Invalid parameter", body = ErrorBody),
        (status = 503, description = "The database is not answering", body = ErrorBody),
    )
)]
pub async fn list_changes(
    request: HttpRequest,
    state: web::Data<AppState>,
) -> Result<web::Json<ChangeList>, ApiError> {
    let params = Params::parse(&request, &["service", "since", "limit"])?;
    let service = params.get("service").map(str::to_owned);
    let since = params
        .get("since")
        .map(|text| parse_time("since", text))
        .transpose()?;
    let limit = parse_limit(&params)?;
    let logs = state.logs.clone();
    let changes = database::query(&state.store, move |store| {
        // Observed changes travel through the log writer's queue.
        logs.settle(std::time::Duration::from_millis(500));
        store.changes(service.as_deref(), since, limit)
    })
    .await?;
    let changes: Vec<ChangeView> = changes.iter().map(ChangeView::new).collect();
    Ok(web::Json(ChangeList {
        count: changes.len(),
        changes,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new(
        kind: &str,
        version: Option<&str>,
        description: Option<&str>,
        time: Option<Value>,
    ) -> NewChange {
        NewChange {
            service: " payments ".into(),
            kind: kind.into(),
            version: version.map(str::to_owned),
            previous_version: None,
            description: description.map(str::to_owned),
            time,
        }
    }

    #[test]
    fn a_change_needs_a_version_or_a_description_and_a_known_kind() {
        let change = change_of(new("deployment", Some("1.4.2"), None, None), 7).expect("valid");
        assert_eq!(
            (
                change.service.as_str(),
                change.time_unix_nanos,
                change.source
            ),
            ("payments", 7, ChangeSource::Reported)
        );
        let error = change_of(new("config", None, Some("  "), None), 7).expect_err("neither");
        assert!(
            error.message().contains("neither version nor description"),
            "{}",
            error.message()
        );
        let error = change_of(new("rollout", Some("1"), None, None), 7).expect_err("kind");
        assert!(
            error
                .message()
                .contains("accepted: deployment, config, feature_flag")
        );
    }

    #[test]
    fn times_are_rfc_3339_or_unix_nanoseconds() {
        let at = |time| {
            change_of(new("config", None, Some("x"), Some(time)), 0).map(|c| c.time_unix_nanos)
        };
        assert_eq!(
            at(json!("2023-11-14T22:13:20Z")).ok(),
            Some(1_700_000_000_000_000_000)
        );
        assert_eq!(
            at(json!(1_700_000_000_000_000_000u64)).ok(),
            Some(1_700_000_000_000_000_000)
        );
        assert_eq!(
            at(json!("1700000000000000000")).ok(),
            Some(1_700_000_000_000_000_000)
        );
        for bad in [json!("yesterday"), json!(-1), json!(true)] {
            let error = at(bad.clone()).expect_err("bad time");
            assert!(error.message().contains("accepted: RFC 3339"), "{bad}");
        }
    }
}
