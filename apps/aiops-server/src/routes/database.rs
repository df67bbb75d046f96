//! Database queries from handlers: run on the blocking pool, never on a runtime thread, and
//! answered with 503 when the database does not answer.

use std::time::Duration;

use aiops_storage_sqlite::{SpanWriter, Store, StoreError};

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
        settle_writer(&writer);
        then(store)
    })
    .await
}

/// How long a read waits for the span writer to commit what is queued.
const SETTLE_WAIT: Duration = Duration::from_millis(500);

/// Lets the span writer commit the spans queued before this call, waiting at most
/// [`SETTLE_WAIT`]: a writer that cannot commit (another process holds the database) is not
/// waited for, and the read sees what is committed. Blocks: call it on the blocking pool.
pub fn settle_writer(writer: &SpanWriter) {
    match writer.flush_within(SETTLE_WAIT) {
        Ok(true) => {}
        Ok(false) => log::debug!("The span writer is behind; the read sees what is committed."),
        Err(error) => log::warn!("error={error} Flushing the span writer before a read failed."),
    }
}
