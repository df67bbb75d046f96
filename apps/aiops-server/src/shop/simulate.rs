//! Chaos control: `POST /simulate/delay`, `/simulate/error`, `/simulate/timeout`,
//! `/simulate/clear` and `GET /simulate/status`. Every parameter is validated before any rule
//! changes, so a rejected request changes nothing.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, web};
use aiops_chaos::{Chaos, ChaosError, MAX_DURATION_MS};
use serde_json::json;

use crate::api_error::ApiError;
use crate::routes::params::Params;
use crate::state::AppState;
use crate::views::chaos::{Applied, ChaosChange, ChaosStatus};
use crate::views::error::ErrorBody;

const DURATION_ACCEPTS: &str = "a number of milliseconds from 0 to 60000 (0 removes it)";
const RATE_ACCEPTS: &str = "a number from 0 to 1, the share of requests that fail (0 removes it)";

/// `POST /simulate/delay?endpoint=&duration=`: adds `duration` ms to every request.
#[utoipa::path(
    post,
    path = "/simulate/delay",
    operation_id = "simulateDelay",
    tag = "simulate",
    params(
        ("endpoint" = String, Query, description = "A demo-shop path, e.g. /payment"),
        ("duration" = f64, Query, description = "Milliseconds to add, 0 to 60000 (0 removes the rule)"),
    ),
    security((), ("bearer" = [])),
    responses(
        (status = 200, description = "Delay added; the rules now in force", body = ChaosChange),
        (status = 400, description = "Invalid parameter", body = ErrorBody),
        (status = 403, description = "Chaos is switched off", body = ErrorBody),
    )
)]
pub async fn delay(
    request: HttpRequest,
    state: web::Data<AppState>,
) -> Result<web::Json<ChaosChange>, ApiError> {
    set_rule(&request, &state, Part::Delay)
}

/// `POST /simulate/error?endpoint=&rate=`: fails a share `rate` of requests with 500.
#[utoipa::path(
    post,
    path = "/simulate/error",
    operation_id = "simulateErrors",
    tag = "simulate",
    params(
        ("endpoint" = String, Query, description = "A demo-shop path, e.g. /payment"),
        ("rate" = f64, Query, description = "Share of requests that fail, 0 to 1 (0 removes the rule)"),
    ),
    security((), ("bearer" = [])),
    responses(
        (status = 200, description = "Error rate set; the rules now in force", body = ChaosChange),
        (status = 400, description = "Invalid parameter", body = ErrorBody),
        (status = 403, description = "Chaos is switched off", body = ErrorBody),
    )
)]
pub async fn error(
    request: HttpRequest,
    state: web::Data<AppState>,
) -> Result<web::Json<ChaosChange>, ApiError> {
    set_rule(&request, &state, Part::ErrorRate)
}

/// `POST /simulate/timeout?endpoint=[&duration=]`: every request hangs for `duration` ms
/// (default: just past the timeout threshold), outlasting its caller's timeout.
#[utoipa::path(
    post,
    path = "/simulate/timeout",
    operation_id = "simulateTimeout",
    tag = "simulate",
    params(
        ("endpoint" = String, Query, description = "A demo-shop path, e.g. /payment"),
        ("duration" = Option<f64>, Query, description = "Milliseconds each request hangs; default just past the timeout threshold"),
    ),
    security((), ("bearer" = [])),
    responses(
        (status = 200, description = "Requests will hang; the rules now in force", body = ChaosChange),
        (status = 400, description = "Invalid parameter", body = ErrorBody),
        (status = 403, description = "Chaos is switched off", body = ErrorBody),
    )
)]
pub async fn timeout(
    request: HttpRequest,
    state: web::Data<AppState>,
) -> Result<web::Json<ChaosChange>, ApiError> {
    set_rule(&request, &state, Part::Hang)
}

/// `POST /simulate/clear`: removes every rule.
#[utoipa::path(
    post,
    path = "/simulate/clear",
    operation_id = "clearSimulations",
    tag = "simulate",
    security((), ("bearer" = [])),
    responses((status = 200, description = "Every rule removed", body = ChaosChange))
)]
pub async fn clear(
    request: HttpRequest,
    state: web::Data<AppState>,
) -> Result<web::Json<ChaosChange>, ApiError> {
    Params::parse(&request, &[])?;
    let cleared = state.chaos.clear();
    Ok(web::Json(ChaosChange::new(
        &state.chaos,
        format!("Cleared {cleared} simulation(s)"),
        Applied::Cleared { cleared },
    )))
}

/// `GET /simulate/status`: the active rules, per endpoint.
#[utoipa::path(
    get,
    path = "/simulate/status",
    operation_id = "getSimulationStatus",
    tag = "simulate",
    responses((status = 200, description = "The rules in force", body = ChaosStatus))
)]
pub async fn status(
    request: HttpRequest,
    state: web::Data<AppState>,
) -> Result<web::Json<ChaosStatus>, ApiError> {
    Params::parse(&request, &[])?;
    Ok(web::Json(ChaosStatus::of(&state.chaos)))
}

/// The part of an endpoint's rule a setter changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Part {
    /// `POST /simulate/delay`: milliseconds added to every request.
    Delay,
    /// `POST /simulate/error`: the share of requests that fail.
    ErrorRate,
    /// `POST /simulate/timeout`: milliseconds every request hangs.
    Hang,
}

impl Part {
    /// The query parameter holding the value, its largest value and what it accepts.
    fn parameter(self) -> (&'static str, f64, &'static str) {
        match self {
            Self::Delay | Self::Hang => ("duration", MAX_DURATION_MS, DURATION_ACCEPTS),
            Self::ErrorRate => ("rate", 1.0, RATE_ACCEPTS),
        }
    }

    fn apply(self, chaos: &Chaos, endpoint: &str, value: f64) -> Result<(), ChaosError> {
        match self {
            Self::Delay => chaos.set_delay(endpoint, value),
            Self::ErrorRate => chaos.set_error_rate(endpoint, value),
            Self::Hang => chaos.set_timeout(endpoint, value),
        }
    }

    fn message(self, endpoint: &str, value: f64) -> String {
        match (self, value > 0.0) {
            (Self::Delay, true) => format!("Added {value}ms delay to {endpoint}"),
            (Self::Delay, false) => format!("Removed the delay from {endpoint}"),
            (Self::ErrorRate, true) => {
                format!("{endpoint} will fail {}% of requests", percent(value))
            }
            (Self::ErrorRate, false) => format!("Removed the error rate from {endpoint}"),
            (Self::Hang, true) => format!("{endpoint} requests will hang for {value}ms"),
            (Self::Hang, false) => format!("Removed the timeout from {endpoint}"),
        }
    }

    fn applied(self, endpoint: &str, value: f64) -> Applied {
        let endpoint = endpoint.to_owned();
        match self {
            Self::Delay => Applied::Delay {
                endpoint,
                delay_ms: value,
            },
            Self::ErrorRate => Applied::Error {
                endpoint,
                error_rate: value,
            },
            Self::Hang => Applied::Timeout {
                endpoint,
                hang_ms: value,
            },
        }
    }
}

/// Sets `part` of an endpoint's rule from the request's parameters, every one checked before
/// the rule changes. A hang without a duration lasts the server's default hang.
fn set_rule(
    request: &HttpRequest,
    state: &AppState,
    part: Part,
) -> Result<web::Json<ChaosChange>, ApiError> {
    ensure_enabled(state)?;
    let (name, max, accepts) = part.parameter();
    let params = Params::parse(request, &["endpoint", name])?;
    let endpoint = endpoint(&params, &state.chaos)?;
    let value = match part {
        Part::Hang => params.number(name, 0.0, max, accepts)?.unwrap_or_else(|| {
            (state.settings.default_hang.as_secs_f64() * 1000.0).min(MAX_DURATION_MS)
        }),
        Part::Delay | Part::ErrorRate => params.required_number(name, 0.0, max, accepts)?,
    };
    part.apply(&state.chaos, endpoint, value)
        .map_err(chaos_error)?;
    Ok(web::Json(ChaosChange::new(
        &state.chaos,
        part.message(endpoint, value),
        part.applied(endpoint, value),
    )))
}

/// Setting a rule on a server started without chaos is refused before anything else.
fn ensure_enabled(state: &AppState) -> Result<(), ApiError> {
    if state.chaos.is_enabled() {
        Ok(())
    } else {
        let error = ChaosError::Disabled;
        let message = format!("{error} ({})", state.settings.chaos_off);
        Err(ApiError::new(StatusCode::FORBIDDEN, message))
    }
}

fn endpoint<'a>(params: &'a Params, chaos: &Chaos) -> Result<&'a str, ApiError> {
    let accepts = format!("one of {}", chaos.monitored().join(", "));
    params
        .required("endpoint", &accepts)
        .map_err(|error| error.with("accepted_endpoints", json!(chaos.monitored())))
}

fn chaos_error(error: ChaosError) -> ApiError {
    match &error {
        ChaosError::Disabled => ApiError::new(StatusCode::FORBIDDEN, error.to_string()),
        ChaosError::UnknownEndpoint { accepted, .. } => ApiError::bad_request(error.to_string())
            .with("parameter", json!("endpoint"))
            .with("accepted_endpoints", json!(accepted)),
        ChaosError::InvalidDuration { .. } => ApiError::bad_request(error.to_string())
            .with("parameter", json!("duration"))
            .with("min", json!(0))
            .with("max", json!(MAX_DURATION_MS)),
        ChaosError::InvalidRate { .. } => ApiError::bad_request(error.to_string())
            .with("parameter", json!("rate"))
            .with("min", json!(0))
            .with("max", json!(1)),
        _ => ApiError::bad_request(error.to_string()),
    }
}

fn percent(rate: f64) -> String {
    let value = (rate * 1000.0).round() / 10.0;
    format!("{value}")
}
