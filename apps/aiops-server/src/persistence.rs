//! Saving and reloading the engine's state (baselines, incidents and the rest of its snapshot)
//! and purging old spans. Every SQLite call runs on the blocking pool, never on a runtime
//! thread.

use std::collections::HashMap;
use std::time::Duration;

use aiops_rca::{Engine, EngineConfig, EngineSnapshot, Incident, IncidentStatus};
use aiops_storage_sqlite::{IncidentRecord, Store};
use anyhow::Context;
use thiserror::Error;
use tokio::task::JoinHandle;

use crate::middleware::now_unix_nanos;

/// The key under which the engine's snapshot is saved.
pub const SNAPSHOT_KEY: &str = "engine";

/// Rows deleted per retention transaction, so that the writer is never blocked for long.
const PURGE_BATCH_ROWS: usize = 2_000;

/// Why the state could not be saved.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum PersistError {
    /// The snapshot or an incident did not serialize.
    #[error("persistence: cannot serialize the engine state: {0}")]
    Serialize(#[from] serde_json::Error),
    /// The store refused the transaction.
    #[error("persistence: {0}")]
    Store(String),
}

/// Saves the engine's state to the store, remembering which incidents are already saved so
/// that each cycle writes only what changed.
#[derive(Debug)]
pub struct Persistence {
    store: Store,
    saved: HashMap<String, (u64, IncidentStatus)>,
}

impl Persistence {
    /// Persistence through `store`.
    pub fn new(store: Store) -> Self {
        Self {
            store,
            saved: HashMap::new(),
        }
    }

    /// The engine as it was last saved, or a new one when nothing usable was saved.
    pub async fn load(&mut self, config: EngineConfig) -> anyhow::Result<Engine> {
        let store = self.store.clone();
        let saved = tokio::task::spawn_blocking(move || store.load_snapshot(SNAPSHOT_KEY))
            .await
            .context("loading the saved engine state")?
            .context("loading the saved engine state")?;
        let engine = match saved.map(serde_json::from_value::<EngineSnapshot>) {
            Some(Ok(snapshot)) => {
                let engine = Engine::restore(config, snapshot)
                    .context("restoring the saved engine state")?;
                log::info!(
                    "incidents={} baselines={} Restored the saved analysis state.",
                    engine.incidents().all().len(),
                    engine.analyzer().baselines().len()
                );
                engine
            }
            Some(Err(error)) => {
                log::warn!("error={error} The saved analysis state is unreadable; starting fresh.");
                Engine::new(config).context("creating the analysis engine")?
            }
            None => Engine::new(config).context("creating the analysis engine")?,
        };
        self.saved = engine
            .incidents()
            .all()
            .into_iter()
            .map(|incident| (incident.id.clone(), version(incident)))
            .collect();
        Ok(engine)
    }

    /// Saves the snapshot and every incident changed since the last save, in one transaction.
    pub async fn save(&mut self, engine: &Engine) -> Result<(), PersistError> {
        let snapshot = serde_json::to_value(engine.snapshot())?;
        let mut records = Vec::new();
        let mut versions = Vec::new();
        for incident in engine.incidents().all() {
            let current = version(incident);
            if self.saved.get(&incident.id) != Some(&current) {
                records.push(record(incident)?);
                versions.push((incident.id.clone(), current));
            }
        }
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || {
            store
                .save_state(Some((SNAPSHOT_KEY, &snapshot)), &records)
                .map_err(|error| PersistError::Store(error.to_string()))
        })
        .await
        .map_err(|error| PersistError::Store(error.to_string()))??;
        self.saved.extend(versions);
        Ok(())
    }
}

fn version(incident: &Incident) -> (u64, IncidentStatus) {
    (incident.last_updated_unix_nanos, incident.status)
}

fn record(incident: &Incident) -> Result<IncidentRecord, serde_json::Error> {
    Ok(IncidentRecord {
        id: incident.id.clone(),
        status: match incident.status {
            IncidentStatus::Active => "active".to_owned(),
            IncidentStatus::Resolved => "resolved".to_owned(),
        },
        first_detected_unix_nanos: incident.first_detected_unix_nanos,
        last_updated_unix_nanos: incident.last_updated_unix_nanos,
        body: serde_json::to_value(incident)?,
    })
}

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
