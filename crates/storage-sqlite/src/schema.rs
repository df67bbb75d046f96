//! The schema, its forward-only migrations, and how every connection is opened.
//!
//! Layout (see `docs/adr/0001-span-storage-layout.md`): spans get ids the writer assigns, so
//! id order is arrival order, and are stored in binary chunks (`span_chunks`, see `chunk`), one
//! row per writer transaction and block, keyed by the id of the chunk's first span. Ids are
//! grouped in blocks of [`BLOCK_ROWS`]; `span_blocks` keeps each block's start-time range, which
//! turns a time window into a few id ranges without a time index, and a Bloom filter of the
//! block's trace ids (`span_blocks.traces`), which finds a trace without a trace index.
//! `span_chunks` has no secondary index at all, so an insert appends to one B-tree.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use aiops_telemetry_core::{Span, SpanId, TraceId};
use rusqlite::{Connection, OpenFlags, Row, TransactionBehavior, params};

use crate::chunk::{ChunkEncoder, insert_chunk};
use crate::codec::{corrupt, from_sql_int, kind_from_code, status_from_code};
use crate::error::{SqlResultExt, StoreError};
use crate::layout::{BLOCK_ROWS, BLOCK_SHIFT};

/// A migration step's data conversion, run on the migration's transaction.
type Convert = fn(&Connection) -> Result<(), StoreError>;

/// One migration step: SQL, then (for steps that move data) a Rust function, both in the
/// migration's transaction.
struct Step {
    sql: &'static str,
    then: Option<Convert>,
}

const fn sql(sql: &'static str) -> Step {
    Step { sql, then: None }
}

/// Each step takes the schema from version `index` to `index + 1`. Steps are never edited once
/// released; changes append a new step.
const MIGRATIONS: &[Step] = &[
    // 1: spans, their endpoints, and the block directory.
    sql("CREATE TABLE endpoints (
         id INTEGER PRIMARY KEY,
         service TEXT NOT NULL,
         operation TEXT NOT NULL,
         UNIQUE (service, operation)
     );
     CREATE TABLE spans (
         id INTEGER PRIMARY KEY,
         block INTEGER NOT NULL,
         start_ns INTEGER NOT NULL,
         duration_ns INTEGER NOT NULL,
         endpoint_id INTEGER NOT NULL,
         kind INTEGER NOT NULL,
         status INTEGER NOT NULL,
         http_status INTEGER,
         trace_hi INTEGER NOT NULL,
         trace_id BLOB NOT NULL,
         span_id BLOB NOT NULL,
         parent_span_id BLOB,
         attributes TEXT
     );
     CREATE INDEX spans_by_trace ON spans (block, trace_hi);
     CREATE TABLE span_blocks (
         block INTEGER PRIMARY KEY,
         min_start_ns INTEGER NOT NULL,
         max_start_ns INTEGER NOT NULL
     );
     CREATE INDEX span_blocks_by_max_start ON span_blocks (max_start_ns);"),
    // 2: per-minute rollups per endpoint.
    sql("CREATE TABLE rollups (
         endpoint_id INTEGER NOT NULL,
         minute INTEGER NOT NULL,
         count INTEGER NOT NULL,
         errors INTEGER NOT NULL,
         latency_sum_ns INTEGER NOT NULL,
         latency_max_ns INTEGER NOT NULL,
         histogram BLOB NOT NULL,
         PRIMARY KEY (endpoint_id, minute)
     ) WITHOUT ROWID;
     CREATE INDEX rollups_by_minute ON rollups (minute);"),
    // 3: analysis state: snapshots by key and incidents by id.
    sql("CREATE TABLE snapshots (
         key TEXT PRIMARY KEY,
         json TEXT NOT NULL
     );
     CREATE TABLE incidents (
         id TEXT PRIMARY KEY,
         status TEXT NOT NULL,
         first_detected_ns INTEGER NOT NULL,
         last_updated_ns INTEGER NOT NULL,
         body TEXT NOT NULL
     );"),
    // 4: per-block trace-id filters (`trace_filter`) replace the trace index; the writer
    // fills the filters of blocks written before this step when it starts.
    sql("ALTER TABLE span_blocks ADD COLUMN traces BLOB;
     DROP INDEX spans_by_trace;"),
    // 5: spans in binary chunks (`chunk`), one row per writer transaction and block instead
    // of one row per span; the rows of `spans` are converted, then the table is dropped.
    Step {
        sql: "CREATE TABLE span_chunks (
             id INTEGER PRIMARY KEY,
             count INTEGER NOT NULL,
             min_start_ns INTEGER NOT NULL,
             max_start_ns INTEGER NOT NULL,
             spans BLOB NOT NULL
         );",
        then: Some(convert_span_rows),
    },
    // 6: the incident lifecycle (`lifecycle`): timelines, notes and silences.
    sql("CREATE TABLE incident_events (
         seq INTEGER PRIMARY KEY,
         incident_id TEXT NOT NULL,
         at_ns INTEGER NOT NULL,
         kind TEXT NOT NULL,
         body TEXT NOT NULL
     );
     CREATE INDEX incident_events_by_incident ON incident_events (incident_id, seq);
     CREATE TABLE incident_notes (
         incident_id TEXT PRIMARY KEY,
         body TEXT NOT NULL
     );
     CREATE TABLE silences (
         id TEXT PRIMARY KEY,
         ends_ns INTEGER NOT NULL,
         body TEXT NOT NULL
     );"),
    // 7: log records (`logs`), found by trace or by time, and changes (deployments,
    // configuration, feature flags) by time. Log records are far fewer than spans in a
    // typical fleet and are read by trace, so they keep a row each and a trace index.
    sql("CREATE TABLE logs (
         id INTEGER PRIMARY KEY,
         time_ns INTEGER NOT NULL,
         service TEXT NOT NULL,
         severity INTEGER NOT NULL,
         body TEXT NOT NULL,
         trace_id BLOB,
         span_id BLOB,
         attributes TEXT
     );
     CREATE INDEX logs_by_time ON logs (time_ns);
     CREATE INDEX logs_by_trace ON logs (trace_id) WHERE trace_id IS NOT NULL;
     CREATE TABLE changes (
         id INTEGER PRIMARY KEY,
         time_ns INTEGER NOT NULL,
         service TEXT NOT NULL,
         kind TEXT NOT NULL,
         source TEXT NOT NULL,
         version TEXT,
         previous_version TEXT,
         description TEXT
     );
     CREATE INDEX changes_by_time ON changes (time_ns);"),
];

/// The schema version this build migrates to.
pub(crate) const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Where the database lives, as SQLite is asked to open it.
#[derive(Clone, Debug)]
pub(crate) struct Location {
    /// What SQLite opens: a path, or a `memdb` URI.
    pub(crate) target: String,
    /// What the user asked for, for messages.
    pub(crate) display: String,
    pub(crate) in_memory: bool,
}

impl Location {
    /// `:memory:` becomes a uniquely named database of SQLite's `memdb` VFS. Unlike plain
    /// `:memory:`, which gives every connection its own database, every connection that opens
    /// the same name (the pool's and the writer's) shares one, with ordinary locking and the
    /// busy timeout (memdb has no WAL, so readers wait while a transaction commits).
    pub(crate) fn new(path: &Path, in_memory: bool) -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let display = path.display().to_string();
        if in_memory {
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            let pid = std::process::id();
            Self {
                target: format!("file:/aiops-mem-{pid}-{n}?vfs=memdb"),
                display,
                in_memory,
            }
        } else {
            Self {
                target: display.clone(),
                display,
                in_memory,
            }
        }
    }

    pub(crate) fn flags() -> OpenFlags {
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_URI
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
    }

    pub(crate) fn open(
        &self,
        cache_kib: i64,
        busy_timeout: Duration,
    ) -> Result<Connection, StoreError> {
        let open_error = |error: rusqlite::Error| StoreError::Open {
            path: self.display.clone(),
            message: error.to_string(),
        };
        let conn = Connection::open_with_flags(&self.target, Self::flags()).map_err(open_error)?;
        configure(&conn, cache_kib, busy_timeout).map_err(open_error)?;
        Ok(conn)
    }
}

/// Per-connection settings. WAL is a property of the file and is set once, in [`prepare`].
pub(crate) fn configure(
    conn: &Connection,
    cache_kib: i64,
    busy_timeout: Duration,
) -> rusqlite::Result<()> {
    conn.busy_timeout(busy_timeout)?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    // Every query here is planned to read by id range or index; a transient index built on
    // the fly would mean a full table scan per query.
    conn.pragma_update(None, "automatic_index", "OFF")?;
    // A negative cache_size is in KiB.
    conn.pragma_update(None, "cache_size", -cache_kib)?;
    Ok(())
}

/// Switches a file database to WAL and brings its schema up to date.
pub(crate) fn prepare(conn: &mut Connection, location: &Location) -> Result<(), StoreError> {
    if !location.in_memory {
        let mode: String = conn
            .query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))
            .map_err(|error| StoreError::Open {
                path: location.display.clone(),
                message: error.to_string(),
            })?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Open {
                path: location.display.clone(),
                message: format!("journal mode is {mode}, WAL is required"),
            });
        }
    }
    migrate(conn)?;
    Ok(())
}

/// Applies every missing migration step in one immediate transaction, so that two processes
/// opening the same new file cannot both run a step. Returns the version reached.
pub(crate) fn migrate(conn: &mut Connection) -> Result<i64, StoreError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .sql()?;
    let found: i64 = tx
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .sql()?;
    if found > SCHEMA_VERSION {
        return Err(StoreError::SchemaTooNew {
            found,
            supported: SCHEMA_VERSION,
        });
    }
    if (1..SCHEMA_VERSION).contains(&found) {
        log::info!(
            "from={found} to={SCHEMA_VERSION} Migrating the database schema; converting stored \
             spans takes a while on a large file."
        );
    }
    for (index, step) in MIGRATIONS.iter().enumerate().skip(found.max(0) as usize) {
        let version = index as i64 + 1;
        let failed = |error: rusqlite::Error| StoreError::Migration {
            version,
            message: error.to_string(),
        };
        tx.execute_batch(step.sql).map_err(failed)?;
        if let Some(then) = step.then {
            then(&tx).map_err(|error| StoreError::Migration {
                version,
                message: error.to_string(),
            })?;
        }
        // PRAGMA takes no bound parameters; the value is our own integer.
        tx.execute_batch(&format!("PRAGMA user_version = {version}"))
            .map_err(failed)?;
    }
    tx.commit().sql()?;
    if (1..SCHEMA_VERSION).contains(&found) {
        log::info!("from={found} to={SCHEMA_VERSION} Migrated the database schema.");
    }
    Ok(SCHEMA_VERSION)
}

/// The query plan SQLite chooses for `sql` on a freshly migrated database, its steps joined by
/// `"; "`: what the tests that pin query plans read.
#[cfg(test)]
pub(crate) fn query_plan(sql: &str) -> String {
    let mut conn = Connection::open_in_memory().expect("opens");
    migrate(&mut conn).expect("migrates");
    let mut statement = conn
        .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
        .expect("explains");
    // Unbound parameters are NULL, which is all a plan needs.
    let mut rows = statement.raw_query();
    let mut details = Vec::new();
    while let Some(row) = rows.next().expect("runs") {
        details.push(row.get::<_, String>(3).expect("reads"));
    }
    details.join("; ")
}

/// Spans read per batch when converting rows of schema 4.
const CONVERT_BATCH: i64 = 4 * BLOCK_ROWS;

/// Migration 5: converts every row of the per-span table of schema 4 into chunks, a batch of
/// rows at a time, then drops the table. Chunks never straddle a block; a span keeps its block.
/// Ids inside a block may close up where retention had left gaps: a chunk of `n` spans whose
/// first span had id `i` covers ids `i..i + n`, all within the block of `i` because the old ids
/// were distinct and increasing.
pub(crate) fn convert_span_rows(conn: &Connection) -> Result<(), StoreError> {
    let mut select = conn
        .prepare(
            "SELECT id, trace_id, span_id, parent_span_id, endpoint_id, kind, status, \
             start_ns, duration_ns, http_status, attributes \
             FROM spans WHERE id >= ?1 ORDER BY id LIMIT ?2",
        )
        .sql()?;
    let mut encoder = ChunkEncoder::default();
    let mut cursor = i64::MIN;
    loop {
        let mut rows = select.query(params![cursor, CONVERT_BATCH]).sql()?;
        let mut first_id = 0;
        let mut read = 0;
        while let Some(row) = rows.next().sql()? {
            read += 1;
            let id: i64 = row.get(0).sql()?;
            if !encoder.is_empty() && id >> BLOCK_SHIFT != first_id >> BLOCK_SHIFT {
                insert_chunk(conn, first_id, &mut encoder)?;
            }
            if encoder.is_empty() {
                first_id = id;
            }
            let (span, endpoint_id) = span_from_row(row)?;
            encoder.push(&span, endpoint_id);
            cursor = id + 1;
        }
        drop(rows);
        insert_chunk(conn, first_id, &mut encoder)?;
        if read < CONVERT_BATCH {
            break;
        }
    }
    drop(select);
    conn.execute_batch("DROP TABLE spans").sql()
}

/// A span of schema 4's per-span table, and its endpoint id.
fn span_from_row(row: &Row<'_>) -> Result<(Span, i64), StoreError> {
    let read = |error: rusqlite::Error| corrupt("span row", error.to_string());
    let id_error = |error: aiops_telemetry_core::IdError| corrupt("span id", error.to_string());
    let trace_id: Vec<u8> = row.get(1).map_err(read)?;
    let span_id: Vec<u8> = row.get(2).map_err(read)?;
    let parent: Option<Vec<u8>> = row.get(3).map_err(read)?;
    let http_status: Option<i64> = row.get(9).map_err(read)?;
    let attributes: Option<String> = row.get(10).map_err(read)?;
    let kind: i64 = row.get(5).map_err(read)?;
    let status: i64 = row.get(6).map_err(read)?;
    let span = Span {
        trace_id: TraceId::from_slice(&trace_id).map_err(id_error)?,
        span_id: SpanId::from_slice(&span_id).map_err(id_error)?,
        parent_span_id: parent
            .map(|bytes| SpanId::from_slice(&bytes))
            .transpose()
            .map_err(id_error)?,
        // The chunk records the endpoint id, not the names.
        service: "".into(),
        operation: "".into(),
        kind: kind_from_code(kind)?,
        start_unix_nanos: from_sql_int(row.get(7).map_err(read)?),
        duration_nanos: from_sql_int(row.get(8).map_err(read)?),
        http_status: http_status
            .map(|code| u16::try_from(code).map_err(|_| corrupt("http status", code.to_string())))
            .transpose()?,
        status: status_from_code(status)?,
        attributes: attributes
            .map(|text| serde_json::from_str(&text))
            .transpose()
            .map_err(|error| corrupt("span attributes", error.to_string()))?
            .unwrap_or_default(),
    };
    Ok((span, row.get(4).map_err(read)?))
}

/// The schema version recorded in the file.
#[cfg(test)]
pub(crate) fn user_version(conn: &Connection) -> i64 {
    conn.query_row("PRAGMA user_version", [], |row| row.get(0))
        .expect("user_version is readable")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrating_twice_is_harmless() {
        let mut conn = Connection::open_in_memory().expect("opens");
        assert_eq!(migrate(&mut conn), Ok(SCHEMA_VERSION));
        conn.execute("INSERT INTO snapshots (key, json) VALUES ('k', '1')", [])
            .expect("inserts");
        assert_eq!(migrate(&mut conn), Ok(SCHEMA_VERSION));
        assert_eq!(user_version(&conn), SCHEMA_VERSION);
        let kept: i64 = conn
            .query_row("SELECT count(*) FROM snapshots", [], |row| row.get(0))
            .expect("counts");
        assert_eq!(kept, 1);
    }

    #[test]
    fn a_newer_schema_is_refused() {
        let mut conn = Connection::open_in_memory().expect("opens");
        conn.execute_batch("PRAGMA user_version = 99")
            .expect("sets");
        assert_eq!(
            migrate(&mut conn),
            Err(StoreError::SchemaTooNew {
                found: 99,
                supported: SCHEMA_VERSION
            })
        );
    }

    #[test]
    fn a_partly_migrated_file_gets_only_the_missing_steps() {
        let mut conn = Connection::open_in_memory().expect("opens");
        conn.execute_batch(MIGRATIONS[0].sql).expect("step 1");
        conn.execute_batch("PRAGMA user_version = 1").expect("sets");
        assert_eq!(migrate(&mut conn), Ok(SCHEMA_VERSION));
        assert_eq!(user_version(&conn), SCHEMA_VERSION);
    }
}
