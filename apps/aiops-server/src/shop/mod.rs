//! The demo shop: four endpoints that do a little simulated work, so that the engine has
//! realistic traffic to learn from; the middleware that makes each request a span and applies
//! chaos; the chaos routes (`/simulate/*`); and the warm-up traffic sent at start.

pub mod handlers;
pub mod instrument;
pub mod simulate;
pub mod table;
pub mod warmup;

use actix_web::middleware::from_fn;
use actix_web::web;

use crate::routes::resource::Resources;

/// Registers the shop's monitored routes, each wrapped in the instrumentation.
pub fn configure(config: &mut web::ServiceConfig, resources: &mut Resources<'_>) {
    let instrumented = || from_fn(instrument::instrument);
    config
        .service(
            resources
                .get("/health", handlers::health)
                .wrap(instrumented()),
        )
        .service(
            resources
                .get("/inventory", handlers::inventory)
                .wrap(instrumented()),
        )
        .service(
            resources
                .post("/payment", handlers::payment)
                .wrap(instrumented()),
        )
        .service(
            resources
                .post("/checkout", handlers::checkout)
                .wrap(instrumented()),
        );
}
