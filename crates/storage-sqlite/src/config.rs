use std::path::PathBuf;
use std::time::Duration;

use crate::error::StoreError;

/// How to open a [`Store`](crate::Store).
///
/// Build one with [`StoreConfig::new`] (a file) or [`StoreConfig::in_memory`] and adjust the
/// public fields; [`Store::open`](crate::Store::open) validates it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreConfig {
    /// The database file, created when missing. `:memory:` opens a private in-memory database
    /// that lives until the store is dropped.
    pub path: PathBuf,
    /// How many spans may wait for the writer thread before new ones are dropped (and counted).
    /// Default 100,000.
    pub queue_capacity: usize,
    /// The most spans committed in one transaction. Default 5,000.
    pub batch_max_rows: usize,
    /// The longest a queued span waits before its transaction commits. Default 100 ms.
    pub batch_max_delay: Duration,
    /// Connections kept for queries, snapshots and retention (the writer has its own).
    /// Default 4.
    pub pool_size: u32,
    /// How long a statement waits for a lock held by another connection before failing.
    /// Default 5 s.
    pub busy_timeout: Duration,
}

impl StoreConfig {
    /// The path that selects an in-memory database.
    pub const MEMORY: &'static str = ":memory:";

    /// Defaults, stored in the file at `path`.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            queue_capacity: 100_000,
            batch_max_rows: 5_000,
            batch_max_delay: Duration::from_millis(100),
            pool_size: 4,
            busy_timeout: Duration::from_secs(5),
        }
    }

    /// Defaults, in memory.
    pub fn in_memory() -> Self {
        Self::new(Self::MEMORY)
    }

    /// True when the store lives in memory.
    pub fn is_in_memory(&self) -> bool {
        self.path.as_os_str() == Self::MEMORY
    }

    pub(crate) fn validate(&self) -> Result<(), StoreError> {
        let positive = |ok: bool, field| {
            if ok {
                Ok(())
            } else {
                Err(StoreError::Config {
                    field,
                    expected: "must be greater than zero",
                })
            }
        };
        positive(self.queue_capacity > 0, "queue_capacity")?;
        positive(self.batch_max_rows > 0, "batch_max_rows")?;
        positive(!self.batch_max_delay.is_zero(), "batch_max_delay")?;
        positive(self.pool_size > 0, "pool_size")?;
        if self.path.as_os_str().is_empty() {
            return Err(StoreError::Config {
                field: "path",
                expected: "must name a file or be \":memory:\"",
            });
        }
        Ok(())
    }
}

impl Default for StoreConfig {
    /// [`StoreConfig::in_memory`].
    fn default() -> Self {
        Self::in_memory()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        assert_eq!(StoreConfig::default().validate(), Ok(()));
        assert!(StoreConfig::default().is_in_memory());
        assert!(!StoreConfig::new("aiops.db").is_in_memory());
    }

    #[test]
    fn zero_sizes_are_rejected_by_name() {
        let config = StoreConfig {
            batch_max_rows: 0,
            ..StoreConfig::default()
        };
        assert_eq!(
            config.validate().map_err(|e| e.to_string()),
            Err("storage: invalid configuration: batch_max_rows must be greater than zero".into())
        );
        let config = StoreConfig::new("");
        assert!(matches!(
            config.validate(),
            Err(StoreError::Config { field: "path", .. })
        ));
    }
}
