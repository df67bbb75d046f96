use std::sync::Arc;
use std::time::Duration;

use aiops_telemetry_core::{
    Change, EndpointKey, LogRecord, Span, TimeWindow, TraceId, WindowStats,
};
use r2d2::{Pool, PooledConnection};
use r2d2_sqlite::SqliteConnectionManager;

use crate::analysis_state::IncidentRecord;
use crate::config::StoreConfig;
use crate::error::StoreError;
use crate::file_guard::FileGuard;
use crate::lifecycle::{LifecycleWrite, NoteRecord, SilenceRecord, StoredEvent};
use crate::log_writer::LogWriter;
use crate::logs::{ChangeRecord, LogQuery};
use crate::retention::EndpointPurges;
use crate::rollup::MinuteRollup;
use crate::schema::{Location, configure, prepare};
use crate::transaction::Ingest;
use crate::writer::{Batching, SpanWriter};
use crate::{analysis_state, lifecycle, logs, queries, retention, rollup};

/// Page cache of the writer's connection, in KiB. Inserts append chunks to one table and
/// update the current block's directory row, so the working set is small; 32 MiB commits as fast as
/// 64 MiB and keeps the resident size lower.
const WRITER_CACHE_KIB: i64 = 32 * 1024;
/// Page cache of each pooled connection, in KiB.
const READER_CACHE_KIB: i64 = 16 * 1024;

/// The SQLite store: a [`SpanWriter`] to record spans, queries over them, and the analysis
/// state. Cloning is cheap and shares the database.
///
/// Queries, snapshots and retention use a pool of connections; spans are written only by the
/// writer thread, on a connection of its own. Every method blocks on SQLite: call it from a
/// blocking context, never from an async executor thread.
#[derive(Clone, Debug)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    pool: Pool<SqliteConnectionManager>,
    writer: Arc<SpanWriter>,
    log_writer: Arc<LogWriter>,
    location: Location,
    /// The lock and identity of a file database; `None` in memory.
    file: Option<FileGuard>,
    /// Retention's endpoint purges, which the writer's endpoint cache follows.
    purges: EndpointPurges,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.location.display)
            .field("writer", &self.writer)
            .finish()
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Err(error) = self.writer.shutdown() {
            log::error!("error={error} Spans were lost while the store closed.");
        }
        if let Err(error) = self.log_writer.shutdown() {
            log::error!("error={error} Log records were lost while the store closed.");
        }
        if let Some(file) = &self.file {
            file.release();
        }
    }
}

impl Store {
    /// Opens (creating if needed) the database, brings its schema up to date and starts the
    /// writer thread. A file database is locked for this store alone
    /// ([`StoreError::InUse`] when another store, in any process, has it open) until
    /// [`shutdown`](Self::shutdown) or the last clone is dropped.
    pub fn open(config: StoreConfig) -> Result<Self, StoreError> {
        config.validate()?;
        let location = Location::new(&config.path, config.is_in_memory());
        let mut file = if config.is_in_memory() {
            None
        } else {
            Some(FileGuard::lock(&config.path)?)
        };
        // Kept open until the pool and writer are connected: an in-memory database lives only
        // while some connection is open.
        let mut setup = location.open(READER_CACHE_KIB, config.busy_timeout)?;
        prepare(&mut setup, &location)?;
        let pool = build_pool(&location, &config)?;
        let purges = EndpointPurges::default();
        let ingest = Ingest::new(
            location.open(WRITER_CACHE_KIB, config.busy_timeout)?,
            purges.clone(),
        )?;
        let writer = SpanWriter::spawn(
            ingest,
            Batching {
                capacity: config.queue_capacity,
                max_rows: config.batch_max_rows,
                max_delay: config.batch_max_delay,
            },
        )?;
        let log_writer = LogWriter::spawn(
            location.open(READER_CACHE_KIB, config.busy_timeout)?,
            config.queue_capacity,
            config.batch_max_rows,
            config.batch_max_delay,
        )?;
        drop(setup);
        if let Some(file) = &mut file {
            file.remember_file();
        }
        Ok(Self {
            inner: Arc::new(Inner {
                pool,
                writer: Arc::new(writer),
                log_writer: Arc::new(log_writer),
                location,
                file,
                purges,
            }),
        })
    }

    /// The collector that records spans into this store.
    pub fn writer(&self) -> Arc<SpanWriter> {
        Arc::clone(&self.inner.writer)
    }

    /// The collector that records log records (and observed changes) into this store.
    pub fn log_writer(&self) -> Arc<LogWriter> {
        Arc::clone(&self.inner.log_writer)
    }

    /// Stops accepting spans and log records, commits every queued one, stops the writer
    /// threads and lets another store open the file. Queries keep working. Idempotent; fails
    /// if spans or records were lost since the last flush.
    pub fn shutdown(&self) -> Result<(), StoreError> {
        let logs_drained = self.inner.log_writer.shutdown();
        let drained = self.inner.writer.shutdown().and(logs_drained);
        if let Some(file) = &self.inner.file {
            file.release();
        }
        drained
    }

    /// Fails with [`StoreError::FileChanged`] when the database file opened has been deleted
    /// or replaced since: what this store writes then reaches no file under its path.
    pub fn check_file(&self) -> Result<(), StoreError> {
        match &self.inner.file {
            Some(file) => file.check(),
            None => Ok(()),
        }
    }

    /// Exact statistics of every endpoint with a span that started in `window`, ordered by
    /// endpoint. A span is a timeout when its duration in milliseconds exceeds `timeout_ms`.
    /// Percentiles use the nearest-rank definition: the value at 1-based rank
    /// `ceil(p / 100 * count)` of the sorted latencies, always an observed latency.
    pub fn window_stats(
        &self,
        window: TimeWindow,
        timeout_ms: f64,
    ) -> Result<Vec<(EndpointKey, WindowStats)>, StoreError> {
        queries::window_stats(&*self.connection()?, window, timeout_ms)
    }

    /// Every stored span of a trace, ordered by start time; empty when unknown.
    pub fn trace(&self, trace_id: TraceId) -> Result<Vec<Span>, StoreError> {
        queries::trace(&*self.connection()?, trace_id)
    }

    /// At most `limit` distinct traces with a span of `endpoint` that started in `window`:
    /// those in which the endpoint failed first, then the slowest.
    pub fn sample_trace_ids(
        &self,
        endpoint: &EndpointKey,
        window: TimeWindow,
        limit: usize,
    ) -> Result<Vec<TraceId>, StoreError> {
        queries::sample_trace_ids(&*self.connection()?, endpoint, window, limit)
    }

    /// Minute rollups of one endpoint (or all) for every minute that overlaps `window`,
    /// ordered by endpoint then minute.
    pub fn rollups(
        &self,
        endpoint: Option<&EndpointKey>,
        window: TimeWindow,
    ) -> Result<Vec<MinuteRollup>, StoreError> {
        rollup::rollups(&*self.connection()?, endpoint, window)
    }

    /// Stores `json` under `key`, replacing what was there, in one transaction.
    pub fn save_snapshot(&self, key: &str, json: &serde_json::Value) -> Result<(), StoreError> {
        self.save_state(Some((key, json)), &[])
    }

    /// The snapshot stored under `key`.
    pub fn load_snapshot(&self, key: &str) -> Result<Option<serde_json::Value>, StoreError> {
        analysis_state::load_snapshot(&*self.connection()?, key)
    }

    /// Inserts or replaces incidents by id, in one transaction.
    pub fn save_incidents(&self, incidents: &[IncidentRecord]) -> Result<(), StoreError> {
        self.save_state(None, incidents)
    }

    /// Every stored incident, oldest first.
    pub fn load_incidents(&self) -> Result<Vec<IncidentRecord>, StoreError> {
        analysis_state::load_incidents(&*self.connection()?)
    }

    /// The stored incident `id`, if any.
    pub fn load_incident(&self, id: &str) -> Result<Option<IncidentRecord>, StoreError> {
        analysis_state::load_incident(&*self.connection()?, id)
    }

    /// At most `limit` stored incidents whose status is `status`, newest first (by first
    /// detection, then by id). The incidents table has no index but its key, so this reads
    /// every row; it holds one row per incident.
    pub fn latest_incidents(
        &self,
        status: &str,
        limit: usize,
    ) -> Result<Vec<IncidentRecord>, StoreError> {
        analysis_state::latest_incidents(&*self.connection()?, status, limit)
    }

    /// Saves a snapshot (if given) and upserts incidents in ONE transaction: after a crash
    /// either both are saved or neither.
    pub fn save_state(
        &self,
        snapshot: Option<(&str, &serde_json::Value)>,
        incidents: &[IncidentRecord],
    ) -> Result<(), StoreError> {
        analysis_state::save_state(&mut *self.connection()?, snapshot, incidents)
    }

    /// Appends timeline events and replaces notes and silences, in one transaction.
    pub fn save_lifecycle(&self, write: &LifecycleWrite) -> Result<(), StoreError> {
        if write.is_empty() {
            return Ok(());
        }
        lifecycle::save(&mut *self.connection()?, write)
    }

    /// The timeline of incident `id`, in the order its events were appended; empty when it
    /// has none.
    pub fn timeline(&self, id: &str) -> Result<Vec<StoredEvent>, StoreError> {
        lifecycle::timeline(&*self.connection()?, id)
    }

    /// The notes of at most `limit` incidents, the most recently written first.
    pub fn incident_notes(&self, limit: usize) -> Result<Vec<NoteRecord>, StoreError> {
        lifecycle::notes(&*self.connection()?, limit)
    }

    /// The silences that end at or after `since_unix_nanos`, by end.
    pub fn silences(&self, since_unix_nanos: u64) -> Result<Vec<SilenceRecord>, StoreError> {
        lifecycle::silences(&*self.connection()?, since_unix_nanos)
    }

    /// Deletes spans that started before `cutoff_unix_nanos`, in short transactions of whole
    /// chunks that each end once they removed `batch_rows` spans or more (a chunk holds at most
    /// 2,048), so that the writer keeps going meanwhile; returns how many spans were deleted. A
    /// chunk that also holds newer spans is rewritten without the old ones. The rollups of the
    /// minutes that ended by the cutoff go too, `batch_rows` rows per transaction, so they are
    /// kept exactly as long as their spans, and so do log records, `batch_rows` per transaction;
    /// then the endpoints no stored span names go, so that the endpoints table holds only what
    /// is kept however many operation names came and went (the writer's cache of endpoint ids
    /// forgets them). Snapshots, incidents and changes are kept.
    pub fn purge_before(
        &self,
        cutoff_unix_nanos: u64,
        batch_rows: usize,
    ) -> Result<u64, StoreError> {
        let mut conn = self.connection()?;
        let spans =
            retention::purge_before(&mut conn, cutoff_unix_nanos, batch_rows, &self.inner.purges)?;
        logs::purge_logs(&mut conn, cutoff_unix_nanos, batch_rows)?;
        Ok(spans)
    }

    /// How many endpoints (service and operation) the database names.
    pub fn endpoint_count(&self) -> Result<u64, StoreError> {
        queries::endpoint_count(&*self.connection()?)
    }

    /// The stored log records `query` selects: a trace's oldest first, otherwise newest first.
    pub fn logs(&self, query: &LogQuery) -> Result<Vec<LogRecord>, StoreError> {
        logs::logs(&*self.connection()?, query)
    }

    /// How many log records are stored (committed ones only).
    pub fn log_count(&self) -> Result<u64, StoreError> {
        logs::log_count(&*self.connection()?)
    }

    /// Stores a change now (not through the log writer's queue) and returns it with its id.
    pub fn insert_change(&self, change: &Change) -> Result<ChangeRecord, StoreError> {
        logs::insert_change(&*self.connection()?, change)
    }

    /// At most `limit` stored changes, of `service` when given, at or after `since` when
    /// given, newest first.
    pub fn changes(
        &self,
        service: Option<&str>,
        since_unix_nanos: Option<u64>,
        limit: usize,
    ) -> Result<Vec<ChangeRecord>, StoreError> {
        logs::changes(&*self.connection()?, service, since_unix_nanos, limit)
    }

    /// How many spans are stored (committed ones only).
    pub fn span_count(&self) -> Result<u64, StoreError> {
        queries::span_count(&*self.connection()?)
    }

    fn connection(&self) -> Result<PooledConnection<SqliteConnectionManager>, StoreError> {
        self.inner
            .pool
            .get()
            .map_err(|error| StoreError::Pool(error.to_string()))
    }
}

fn build_pool(
    location: &Location,
    config: &StoreConfig,
) -> Result<Pool<SqliteConnectionManager>, StoreError> {
    let busy_timeout = config.busy_timeout;
    let manager = SqliteConnectionManager::file(&location.target)
        .with_flags(Location::flags())
        .with_init(move |conn| configure(conn, READER_CACHE_KIB, busy_timeout));
    Pool::builder()
        .max_size(config.pool_size)
        .connection_timeout(busy_timeout.max(Duration::from_secs(1)))
        .build(manager)
        .map_err(|error| StoreError::Open {
            path: location.display.clone(),
            message: error.to_string(),
        })
}
