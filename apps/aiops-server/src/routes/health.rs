//! The engine's own health, apart from the demo shop's `/health`: `GET /healthz` answers while
//! the process serves HTTP (liveness: restart it when this fails), `GET /readyz` says whether
//! it can take and analyse spans now (readiness: send it traffic only while this is 200), with
//! each check named in the body.

use std::time::Duration;

use actix_web::{HttpResponse, web};

use super::resource::Resources;
use crate::clock::now_unix_nanos;
use crate::state::AppState;
use crate::views::readiness::{Liveness, Readiness, ReadinessInputs};

/// How long readiness waits for the analysis actor to answer.
const ACTOR_ANSWER_WAIT: Duration = Duration::from_secs(2);

/// Registers `GET /healthz` and `GET /readyz`.
pub fn configure(config: &mut web::ServiceConfig, resources: &mut Resources<'_>) {
    config
        .service(resources.get("/healthz", liveness))
        .service(resources.get("/readyz", readiness));
}

/// `GET /healthz`: the engine answers HTTP.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "operations",
    operation_id = "getLiveness",
    responses((status = 200, description = "The process serves HTTP", body = Liveness))
)]
pub async fn liveness() -> web::Json<Liveness> {
    web::Json(Liveness::ALIVE)
}

/// `GET /readyz`: storage writable, the span queue below its limit, analysis cycles recent.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "operations",
    operation_id = "getReadiness",
    responses(
        (status = 200, description = "Every check passes", body = Readiness),
        (status = 503, description = "A check fails; the body names it", body = Readiness),
    )
)]
pub async fn readiness(state: web::Data<AppState>) -> HttpResponse {
    let readiness = inputs(&state).await.assess();
    if readiness.is_ready() {
        HttpResponse::Ok().json(readiness)
    } else {
        HttpResponse::ServiceUnavailable().json(readiness)
    }
}

async fn inputs(state: &AppState) -> ReadinessInputs {
    let writer = state.writer.stats();
    let last_cycle = tokio::time::timeout(ACTOR_ANSWER_WAIT, state.analysis.status())
        .await
        .ok()
        .and_then(Result::ok)
        .map(|status| {
            status
                .last_cycle
                .map_or(state.started_unix_nanos, |cycle| cycle.at_unix_nanos)
        });
    ReadinessInputs {
        database_file: state.store.check_file().map_err(|error| error.to_string()),
        writer_blocked: writer.blocked,
        writer_failing: writer.failing,
        queued: writer.queued,
        queue_capacity: state.writer.capacity(),
        since_last_cycle: last_cycle
            .map(|at| Duration::from_nanos(now_unix_nanos().saturating_sub(at))),
        analysis_interval: state.settings.analysis_interval,
    }
}
