//! `storage`: the database, how long spans stay in it, and the queue in front of its writer.

use std::path::PathBuf;
use std::time::Duration;

use aiops_storage_sqlite::StoreConfig;
use clap::Args;
use serde::{Deserialize, Serialize};

use super::error::{Origins, SettingsError};
use super::human::{self, format_duration, parse_duration};

/// Where spans, baselines and incidents are kept, and for how long.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Args)]
#[serde(default, deny_unknown_fields)]
#[command(next_help_heading = "Storage")]
pub struct Storage {
    /// SQLite database file, created if missing; :memory: keeps nothing after exit
    /// [default: ./aiops.db].
    #[arg(long, value_name = "PATH")]
    pub db: PathBuf,

    /// How long spans are kept, at least 1m; older ones are deleted in small batches every
    /// minute [default: 24h].
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    #[serde(with = "human::duration")]
    pub retention: Duration,

    /// Spans waiting for the database writer; when it is full, new spans are dropped from
    /// storage (still analysed live) and counted in /aiops/metrics and /metrics
    /// [default: 65536].
    #[arg(long, value_name = "N")]
    pub span_queue_capacity: usize,
}

impl Default for Storage {
    fn default() -> Self {
        Self {
            db: PathBuf::from("./aiops.db"),
            retention: Duration::from_secs(24 * 3600),
            span_queue_capacity: 65_536,
        }
    }
}

impl Storage {
    /// The store's configuration.
    pub fn store_config(&self) -> StoreConfig {
        StoreConfig {
            queue_capacity: self.span_queue_capacity,
            ..StoreConfig::new(self.db.clone())
        }
    }

    pub(super) fn validate(&self, origins: &Origins) -> Result<(), SettingsError> {
        if self.retention < Duration::from_secs(60) {
            let value = format_duration(self.retention);
            return Err(SettingsError::out_of_range(
                "retention",
                value,
                origins,
                "at least 1m (e.g. 24h)",
            ));
        }
        if self.span_queue_capacity == 0 {
            return Err(SettingsError::out_of_range(
                "span_queue_capacity",
                0,
                origins,
                "an integer of at least 1",
            ));
        }
        Ok(())
    }
}
