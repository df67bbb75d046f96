//! The log pipeline: accepted log records go to the store's log writer first, then to every
//! other [`LogCollector`] (the listeners, built in `startup`), and are counted for `/metrics`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use aiops_storage_sqlite::{LogQueueFull, LogWriter};
use aiops_telemetry_core::{LogCollector, LogRecord, RecordOutcome};

/// Where log records go: the store, then the listeners.
pub struct LogPipeline {
    writer: Arc<LogWriter>,
    listeners: Vec<Arc<dyn LogCollector>>,
    accepted: AtomicU64,
    rejected: AtomicU64,
}

/// One reading of the log pipeline's counts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LogStats {
    /// Records the storage queue accepted.
    pub accepted: u64,
    /// OTLP records refused as unusable (partial success).
    pub rejected: u64,
    /// Records not stored because the queue was full or closed.
    pub dropped: u64,
    /// Records waiting for the log writer.
    pub queued: u64,
    /// Records written to storage.
    pub written: u64,
    /// Records accepted but lost because their storage transaction failed.
    pub write_failed: u64,
    /// Records that may wait for the log writer.
    pub queue_capacity: u64,
}

impl LogPipeline {
    /// Records go to `writer` (the store), then to `listeners`.
    pub fn new(writer: Arc<LogWriter>, listeners: Vec<Arc<dyn LogCollector>>) -> Self {
        Self {
            writer,
            listeners,
            accepted: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
        }
    }

    /// Records a batch someone will be told was accepted: all of it, or none (`Err`) when the
    /// storage queue has no room for all of it now. The listeners see it only once the store
    /// has room, so that a retried batch reaches them once.
    pub fn admit(&self, records: Vec<LogRecord>) -> Result<RecordOutcome, LogQueueFull> {
        let admission = self.writer.admit(records.len())?;
        for listener in &self.listeners {
            let _ = listener.record_logs_borrowed(&records);
        }
        let outcome = admission.record(records);
        self.accepted
            .fetch_add(outcome.accepted as u64, Ordering::Relaxed);
        Ok(outcome)
    }

    /// Counts OTLP records refused as unusable.
    pub fn add_rejected(&self, rejected: u64) {
        self.rejected.fetch_add(rejected, Ordering::Relaxed);
    }

    /// Blocks until the records accepted before the call are committed, or `limit` passed.
    pub fn settle(&self, limit: std::time::Duration) {
        match self.writer.flush_within(limit) {
            Ok(true) => {}
            Ok(false) => log::debug!("The log writer is behind; the read sees what is committed."),
            Err(error) => log::warn!("error={error} Flushing the log writer before a read failed."),
        }
    }

    /// The counts, read now.
    pub fn stats(&self) -> LogStats {
        let writer = self.writer.stats();
        LogStats {
            accepted: self.accepted.load(Ordering::Relaxed),
            rejected: self.rejected.load(Ordering::Relaxed),
            dropped: writer.dropped,
            queued: writer.queued as u64,
            written: writer.written,
            write_failed: writer.failed,
            queue_capacity: self.writer.capacity() as u64,
        }
    }
}

impl std::fmt::Debug for LogPipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogPipeline")
            .field("listeners", &self.listeners.len())
            .field("stats", &self.stats())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use aiops_storage_sqlite::{Store, StoreConfig};
    use aiops_telemetry_core::{CollectorError, LogSeverity};

    use super::*;

    #[derive(Default)]
    struct Seen(Mutex<usize>);

    impl LogCollector for Seen {
        fn record_logs(&self, records: Vec<LogRecord>) -> RecordOutcome {
            *self.0.lock().expect("lock") += records.len();
            RecordOutcome::accepted(records.len())
        }

        fn flush_logs(&self) -> Result<(), CollectorError> {
            Ok(())
        }
    }

    fn records(n: usize) -> Vec<LogRecord> {
        vec![LogRecord::new("a", 1, LogSeverity::INFO, "x"); n]
    }

    #[test]
    fn listeners_see_a_batch_only_when_the_store_takes_it_whole() {
        let store = Store::open(StoreConfig {
            queue_capacity: 4,
            batch_max_delay: std::time::Duration::from_secs(60),
            ..StoreConfig::in_memory()
        })
        .expect("opens");
        let seen = Arc::new(Seen::default());
        let pipeline = LogPipeline::new(store.log_writer(), vec![seen.clone()]);
        assert_eq!(pipeline.admit(records(3)).map(|o| o.accepted), Ok(3));
        assert!(pipeline.admit(records(3)).is_err());
        assert_eq!(*seen.0.lock().expect("lock"), 3);
        pipeline.add_rejected(2);
        let stats = pipeline.stats();
        assert_eq!((stats.accepted, stats.rejected, stats.queued), (3, 2, 3));
        pipeline.settle(std::time::Duration::from_secs(5));
        assert_eq!(pipeline.stats().written, 3);
    }
}
