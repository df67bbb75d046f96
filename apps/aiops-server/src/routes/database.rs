//! Database queries from handlers: run on the blocking pool, never on a runtime thread, and
//! answered with 503 when the database does not answer.

use aiops_storage_sqlite::{Store, StoreError};
use aiops_telemetry_core::Collector;

use crate::api_error::ApiError;
use crate::state::AppState;

/// Runs `query` on the blocking pool.
pub async fn query<T: Send + 'static>(
    store: &Store,
    query: impl FnOnce(&Store) -> Result<T, StoreError> + Send + 'static,
) -> Result<T, ApiError> {
    let store = store.clone();
    tokio::task::spawn_blocking(move || query(&store))
        .await
        .map_err(|error| ApiError::internal(format!("the database query failed: {error}")))?
        .map_err(|error| {
            log::warn!("error={error} A database query failed.");
            ApiError::unavailable(format!(
                "the database is not answering ({error}); try again shortly"
            ))
        })
}

/// [`query`] once the spans of requests answered before this one are committed, so that it
/// sees them.
pub async fn query_committed<T: Send + 'static>(
    state: &AppState,
    then: impl FnOnce(&Store) -> Result<T, StoreError> + Send + 'static,
) -> Result<T, ApiError> {
    let writer = state.writer.clone();
    query(&state.store, move |store| {
        if let Err(error) = writer.flush() {
            log::warn!("error={error} Flushing the span writer before a query failed.");
        }
        then(store)
    })
    .await
}
