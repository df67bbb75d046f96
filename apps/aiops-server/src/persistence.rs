//! Saving and reloading the engine's state (baselines, incidents and the rest of its
//! snapshot), and reading back the incident archive. Every SQLite call runs on the blocking
//! pool, never on a runtime thread.
//!
//! Each incident is also saved as a row of its own whenever it changes. The engine keeps only
//! the most recently resolved incidents in memory (`max_resolved_incidents`); the rows keep
//! every one, and the resolved ones the engine has let go of are the *archive*, which the
//! incident routes read.

use std::collections::{HashMap, HashSet};

use aiops_engine::{Engine, EngineConfig, EngineSnapshot, Incident, IncidentStatus};
use aiops_storage_sqlite::{IncidentRecord, Store, StoreError};
use anyhow::Context;
use thiserror::Error;

/// The key under which the engine's snapshot is saved.
pub const SNAPSHOT_KEY: &str = "engine";

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
                    engine.snapshot().baselines.len()
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
    /// After a failure nothing counts as saved, so the next save writes it all again.
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

/// Where the analysis actor saves the engine's state after every cycle and resolution.
///
/// A failed save is the actor's to retry: it counts the failure and saves again after the next
/// cycle, with whatever changed since.
pub trait StateStore: Send + 'static {
    /// Saves `engine`'s state.
    fn save(&mut self, engine: &Engine) -> impl Future<Output = Result<(), PersistError>> + Send;
}

impl StateStore for Persistence {
    fn save(&mut self, engine: &Engine) -> impl Future<Output = Result<(), PersistError>> + Send {
        Persistence::save(self, engine)
    }
}

/// The status of resolved incidents in their rows.
const RESOLVED: &str = "resolved";

/// The resolved incident `id` from the archive, if stored. Blocks on SQLite.
pub fn archived_incident(store: &Store, id: &str) -> Result<Option<Incident>, StoreError> {
    Ok(store
        .load_incident(id)?
        .filter(|record| record.status == RESOLVED)
        .and_then(incident_of))
}

/// At most `limit` resolved incidents from the archive, newest first, leaving out those in
/// `kept` (the ones the engine still holds). Blocks on SQLite.
pub fn archived_resolved(
    store: &Store,
    kept: &HashSet<String>,
    limit: usize,
) -> Result<Vec<Incident>, StoreError> {
    let mut archived = Vec::new();
    for record in store.latest_incidents(RESOLVED, kept.len().saturating_add(limit))? {
        if archived.len() == limit {
            break;
        }
        if !kept.contains(&record.id) {
            archived.extend(incident_of(record));
        }
    }
    Ok(archived)
}

/// The incident a row holds; `None`, logged, for a row this build cannot read.
fn incident_of(record: IncidentRecord) -> Option<Incident> {
    serde_json::from_value(record.body)
        .inspect_err(|error| {
            log::warn!(
                "incident={} error={error} A stored incident is unreadable; leaving it out.",
                record.id
            );
        })
        .ok()
}

fn version(incident: &Incident) -> (u64, IncidentStatus) {
    (incident.last_updated_unix_nanos, incident.status)
}

fn record(incident: &Incident) -> Result<IncidentRecord, serde_json::Error> {
    Ok(IncidentRecord {
        id: incident.id.clone(),
        status: match incident.status {
            IncidentStatus::Active => "active".to_owned(),
            IncidentStatus::Resolved => RESOLVED.to_owned(),
        },
        first_detected_unix_nanos: incident.first_detected_unix_nanos,
        last_updated_unix_nanos: incident.last_updated_unix_nanos,
        body: serde_json::to_value(incident)?,
    })
}
