//! Retention: old spans are purged on a schedule, in small batches, on the blocking pool.

use std::time::Duration;

use aiops_storage_sqlite::Store;
use tokio::task::JoinHandle;

use crate::clock::now_unix_nanos;

/// Rows deleted per retention transaction, so that the writer is never blocked for long.
const PURGE_BATCH_ROWS: usize = 2_000;

/// Spawns the retention task: every `every`, deletes spans older than `retention` in small
/// batches. Failures are logged and retried at the next round.
pub fn spawn_retention(store: Store, retention: Duration, every: Duration) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(every.max(Duration::from_secs(1)));
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            ticker.tick().await;
            let retention_nanos = u64::try_from(retention.as_nanos()).unwrap_or(u64::MAX);
            let cutoff = now_unix_nanos().saturating_sub(retention_nanos);
            let mut purged = 0u64;
            loop {
                let store = store.clone();
                let batch = tokio::task::spawn_blocking(move || {
                    store.purge_before(cutoff, PURGE_BATCH_ROWS)
                })
                .await;
                match batch {
                    Ok(Ok(rows)) => {
                        purged += rows;
                        if rows < PURGE_BATCH_ROWS as u64 {
                            break;
                        }
                        tokio::task::yield_now().await;
                    }
                    Ok(Err(error)) => {
                        log::warn!("error={error} Could not purge old spans; will retry.");
                        break;
                    }
                    Err(error) => {
                        log::warn!("error={error} The purge task failed; will retry.");
                        break;
                    }
                }
            }
            if purged > 0 {
                log::info!("spans={purged} Purged spans older than the retention period.");
            }
        }
    })
}
