//! One endpoint over a time range, read from the database: `/aiops/endpoints/history`, its
//! requests minute by minute from the stored rollups, and `/aiops/endpoints/window`, one
//! shorter window figured exactly from the stored spans, with the traces to look at.

use std::time::Duration;

use actix_web::{HttpRequest, web};
use aiops_telemetry_core::{EndpointKey, TimeWindow};
use chrono::DateTime;
use serde_json::json;

use super::database::query_committed;
use super::params::Params;
use crate::api_error::ApiError;
use crate::clock::now_unix_nanos;
use crate::state::AppState;
use crate::views::endpoint::{EndpointHistory, EndpointWindow};
use crate::views::error::ErrorBody;
use crate::views::format::iso_millis;

/// The range of `GET /aiops/endpoints/history` when none is given: the last hour.
pub const HISTORY_DEFAULT_RANGE: Duration = Duration::from_secs(3600);
/// The longest range of `GET /aiops/endpoints/history`: a day, so at most 1,441 minutes (a
/// range that does not start on a minute touches one more than it spans).
pub const HISTORY_MAX_RANGE: Duration = Duration::from_secs(24 * 3600);

/// The window of `GET /aiops/endpoints/window` when none is given: the last five minutes.
pub const WINDOW_DEFAULT_RANGE: Duration = Duration::from_secs(5 * 60);
/// The longest window of `GET /aiops/endpoints/window`: an hour, as it reads every span of
/// the window.
pub const WINDOW_MAX_RANGE: Duration = Duration::from_secs(3600);
/// How many trace ids `GET /aiops/endpoints/window` lists when not told.
pub const WINDOW_DEFAULT_TRACES: usize = 10;
/// The most trace ids `GET /aiops/endpoints/window` lists.
pub const WINDOW_MAX_TRACES: usize = 100;

const TIME_FORMAT: &str = "an ISO 8601 time with a time zone, e.g. 2026-01-20T10:30:00Z";

/// `GET /aiops/endpoints/history?service=&operation=[&from=&to=]`.
#[utoipa::path(
    get,
    path = "/aiops/endpoints/history",
    operation_id = "getEndpointHistory",
    tag = "aiops",
    params(
        ("service" = String, Query, description = "The endpoint's service, e.g. shop"),
        ("operation" = String, Query, description = "The endpoint's operation, e.g. /payment or POST /charge"),
        ("from" = Option<String>, Query, description = "ISO 8601 start; default an hour before `to`"),
        ("to" = Option<String>, Query, description = "ISO 8601 end; default now. At most 24 hours after `from`"),
    ),
    responses(
        (status = 200, description = "The endpoint's requests per minute, and its baseline", body = EndpointHistory),
        (status = 400, description = "A missing or invalid parameter", body = ErrorBody),
        (status = 503, description = "The database is not answering", body = ErrorBody),
    )
)]
pub async fn history(
    request: HttpRequest,
    state: web::Data<AppState>,
) -> Result<web::Json<EndpointHistory>, ApiError> {
    let EndpointQuery {
        endpoint, window, ..
    } = EndpointQuery::parse(&request, &[], HISTORY_DEFAULT_RANGE, HISTORY_MAX_RANGE)?;
    let key = endpoint.clone();
    let rollups = query_committed(&state, move |store| store.rollups(Some(&key), window)).await?;
    let baseline = state.analysis.baseline(endpoint.clone()).await?;
    Ok(web::Json(EndpointHistory::new(
        &state.settings.endpoint_naming,
        &endpoint,
        &window,
        &rollups,
        baseline.as_ref(),
        &state.settings.analyzer,
    )))
}

/// `GET /aiops/endpoints/window?service=&operation=[&from=&to=&limit=]`.
#[utoipa::path(
    get,
    path = "/aiops/endpoints/window",
    operation_id = "getEndpointWindow",
    tag = "aiops",
    params(
        ("service" = String, Query, description = "The endpoint's service, e.g. shop"),
        ("operation" = String, Query, description = "The endpoint's operation, e.g. /payment or POST /charge"),
        ("from" = Option<String>, Query, description = "ISO 8601 start; default five minutes before `to`"),
        ("to" = Option<String>, Query, description = "ISO 8601 end; default now. At most an hour after `from`"),
        ("limit" = Option<u32>, Query, description = "How many trace ids, 1 to 100; default 10"),
    ),
    responses(
        (status = 200, description = "Exact figures of the window, and the traces that best show trouble", body = EndpointWindow),
        (status = 400, description = "A missing or invalid parameter", body = ErrorBody),
        (status = 503, description = "The database is not answering", body = ErrorBody),
    )
)]
pub async fn window(
    request: HttpRequest,
    state: web::Data<AppState>,
) -> Result<web::Json<EndpointWindow>, ApiError> {
    let EndpointQuery {
        params,
        endpoint,
        window,
    } = EndpointQuery::parse(&request, &["limit"], WINDOW_DEFAULT_RANGE, WINDOW_MAX_RANGE)?;
    let limit = traces_limit(&params)?;
    let key = endpoint.clone();
    let timeout_ms = state.settings.analyzer.timeout_ms;
    let (stats, traces) = query_committed(&state, move |store| {
        let stats = store
            .window_stats(window, timeout_ms)?
            .into_iter()
            .find_map(|(found, stats)| (found == key).then_some(stats));
        let traces = store.sample_trace_ids(&key, window, limit)?;
        Ok((stats, traces))
    })
    .await?;
    Ok(web::Json(EndpointWindow::new(
        &state.settings.endpoint_naming,
        &endpoint,
        &window,
        stats.as_ref(),
        &traces,
    )))
}

/// The number of trace ids the `limit` parameter asks for: a whole number from 1 to
/// [`WINDOW_MAX_TRACES`], [`WINDOW_DEFAULT_TRACES`] when not given.
fn traces_limit(params: &Params) -> Result<usize, ApiError> {
    const ACCEPTS: &str = "a whole number of traces from 1 to 100";
    match params.number("limit", 1.0, WINDOW_MAX_TRACES as f64, ACCEPTS)? {
        None => Ok(WINDOW_DEFAULT_TRACES),
        Some(limit) if limit.fract() == 0.0 => Ok(limit as usize),
        Some(limit) => Err(ApiError::bad_request(format!(
            "invalid limit {limit}; accepted: {ACCEPTS}"
        ))
        .with("parameter", json!("limit"))),
    }
}

/// What a request to either route names: its endpoint and time range, checked, and its
/// parameters for the rest.
struct EndpointQuery {
    params: Params,
    endpoint: EndpointKey,
    window: TimeWindow,
}

impl EndpointQuery {
    /// Parses `service`, `operation`, `from` and `to` (see [`range_of`]), accepting `extra`
    /// parameters besides.
    fn parse(
        request: &HttpRequest,
        extra: &[&str],
        default_length: Duration,
        max_length: Duration,
    ) -> Result<Self, ApiError> {
        let mut accepted = vec!["service", "operation", "from", "to"];
        accepted.extend_from_slice(extra);
        let params = Params::parse(request, &accepted)?;
        let endpoint = endpoint_of(&params)?;
        let window = range_of(&params, now_unix_nanos(), default_length, max_length)?;
        Ok(Self {
            params,
            endpoint,
            window,
        })
    }
}

/// The endpoint named by the `service` and `operation` parameters, both required.
pub fn endpoint_of(params: &Params) -> Result<EndpointKey, ApiError> {
    let service = params.required("service", "a service name, e.g. shop")?;
    let operation = params.required(
        "operation",
        "an operation of the service, e.g. /payment or POST /charge",
    )?;
    Ok(EndpointKey::new(service, operation))
}

/// The range named by the `from` and `to` parameters: `to` defaults to `now` and `from` to
/// `default_length` before `to`; `from` must come before `to`, at most `max_length` before.
fn range_of(
    params: &Params,
    now: u64,
    default_length: Duration,
    max_length: Duration,
) -> Result<TimeWindow, ApiError> {
    let nanos = |length: Duration| u64::try_from(length.as_nanos()).unwrap_or(u64::MAX);
    let end = time_of(params, "to")?.unwrap_or(now);
    let start = time_of(params, "from")?.unwrap_or(end.saturating_sub(nanos(default_length)));
    if start >= end {
        return Err(ApiError::bad_request(format!(
            "invalid range: from {} is not before to {}; accepted: from before to",
            iso_millis(start),
            iso_millis(end)
        ))
        .with("parameter", json!("from")));
    }
    if end - start > nanos(max_length) {
        let hours = max_length.as_secs() / 3600;
        return Err(ApiError::bad_request(format!(
            "invalid range: from {} to {} is longer than {hours}h; accepted: at most {hours}h",
            iso_millis(start),
            iso_millis(end)
        ))
        .with("parameter", json!("from"))
        .with("max_secs", json!(max_length.as_secs())));
    }
    Ok(TimeWindow::new(start, end))
}

/// The time in parameter `name`, in Unix nanoseconds, if given.
fn time_of(params: &Params, name: &str) -> Result<Option<u64>, ApiError> {
    let Some(text) = params.get(name) else {
        return Ok(None);
    };
    DateTime::parse_from_rfc3339(text.trim())
        .ok()
        .and_then(|time| time.timestamp_nanos_opt())
        .and_then(|nanos| u64::try_from(nanos).ok())
        .map(Some)
        .ok_or_else(|| {
            ApiError::bad_request(format!("invalid {name} {text:?}; accepted: {TIME_FORMAT}"))
                .with("parameter", json!(name))
        })
}

#[cfg(test)]
mod tests {
    use actix_web::test::TestRequest;

    use super::*;

    const NOW: u64 = 1_768_905_000_000_000_000; // 2026-01-20T10:30:00Z
    const HOUR: Duration = Duration::from_secs(3600);

    fn range(query: &str) -> Result<TimeWindow, ApiError> {
        let request = TestRequest::with_uri(&format!("/x?{query}")).to_http_request();
        let params = Params::parse(&request, &["from", "to"]).expect("known names");
        range_of(&params, NOW, HOUR, 24 * HOUR)
    }

    #[test]
    fn the_default_range_is_the_last_hour() {
        assert_eq!(
            range("").expect("valid"),
            TimeWindow::new(NOW - 3_600_000_000_000, NOW)
        );
    }

    #[test]
    fn times_are_iso_8601_with_a_zone() {
        let window =
            range("from=2026-01-20T10:00:00Z&to=2026-01-20T11:30:00%2B01:00").expect("valid");
        assert_eq!(window, TimeWindow::new(NOW - 1_800_000_000_000, NOW));
    }

    #[test]
    fn the_trace_limit_is_a_whole_number_from_1_to_100() {
        let limit = |query: &str| {
            let request = TestRequest::with_uri(&format!("/x?{query}")).to_http_request();
            traces_limit(&Params::parse(&request, &["limit"]).expect("known names"))
        };
        assert_eq!(limit("").expect("default"), WINDOW_DEFAULT_TRACES);
        assert_eq!(limit("limit=100").expect("the most"), 100);
        for bad in ["0", "101", "2.5", "ten", "NaN"] {
            let error = limit(&format!("limit={bad}")).expect_err(bad);
            assert!(
                error
                    .message()
                    .ends_with("accepted: a whole number of traces from 1 to 100"),
                "{bad}: {}",
                error.message()
            );
        }
    }

    #[test]
    fn bad_ranges_say_what_is_accepted() {
        for (query, phrase) in [
            (
                "from=yesterday",
                "invalid from \"yesterday\"; accepted: an ISO 8601 time",
            ),
            ("to=2026-01-20T10:30:00", "invalid to"),
            ("from=2026-01-20T10:30:00Z", "is not before to"),
            (
                "from=2026-01-18T10:30:00Z",
                "longer than 24h; accepted: at most 24h",
            ),
            ("from=1960-01-01T00:00:00Z", "invalid from"),
        ] {
            let error = range(query).expect_err(query);
            assert!(
                error.message().contains(phrase),
                "{query}: {}",
                error.message()
            );
            assert_eq!(error.status(), actix_web::http::StatusCode::BAD_REQUEST);
        }
    }
}
