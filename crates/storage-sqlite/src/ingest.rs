//! What the writer thread does with a batch: one transaction that appends the spans, interns
//! their endpoints, widens the block directory and its trace filters, and merges the minute
//! rollups.

use foldhash::{HashMap, HashMapExt};

use aiops_telemetry_core::{Span, TraceId};
use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};

use crate::codec::{corrupt, encode_attributes, kind_code, status_code, to_sql_int, trace_hi};
use crate::error::{SqlResultExt, StoreError};
use crate::rollup::PendingRollups;
use crate::schema::BLOCK_SHIFT;
use crate::trace_filter::TraceFilter;

const INSERT_SPAN: &str = "INSERT INTO spans (id, block, start_ns, duration_ns, endpoint_id, \
     kind, status, http_status, trace_hi, trace_id, span_id, parent_span_id, attributes) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)";

const WIDEN_BLOCK: &str = "INSERT INTO span_blocks (block, min_start_ns, max_start_ns, traces) \
     VALUES (?1, ?2, ?3, ?4) ON CONFLICT (block) DO UPDATE SET \
     min_start_ns = min(min_start_ns, excluded.min_start_ns), \
     max_start_ns = max(max_start_ns, excluded.max_start_ns), \
     traces = excluded.traces";

/// The writer thread's connection and the state it keeps between transactions.
#[derive(Debug)]
pub(crate) struct Ingest {
    conn: Connection,
    /// service -> operation -> endpoint id; nested so look-ups borrow the span's strings.
    endpoints: HashMap<String, HashMap<String, i64>>,
    /// The writer is the only inserter, so it hands out ids itself: the block of a span is
    /// then known before the insert.
    next_id: i64,
    /// The trace filter of the block `next_id` falls in, as committed.
    filter: (i64, TraceFilter),
    rollups: PendingRollups,
}

impl Ingest {
    pub(crate) fn new(mut conn: Connection) -> Result<Self, StoreError> {
        backfill_filters(&mut conn)?;
        let next_id = next_id(&conn)?;
        let filter = current_filter(&conn, next_id)?;
        Ok(Self {
            conn,
            endpoints: HashMap::new(),
            next_id,
            filter,
            rollups: PendingRollups::default(),
        })
    }

    /// Commits `spans` in one transaction, or none of them.
    pub(crate) fn write(&mut self, spans: &[Span]) -> Result<(), StoreError> {
        let result = self.try_write(spans);
        if result.is_err() {
            // The transaction rolled back: forget ids and endpoints it may have handed out.
            self.endpoints.clear();
            self.rollups.clear();
            if let Ok(next) = next_id(&self.conn) {
                self.next_id = next;
            }
            // Bits of spans that were rolled back would only cost a false "maybe"; reloading
            // keeps the filter exactly what is committed, whatever failed.
            match current_filter(&self.conn, self.next_id) {
                Ok(filter) => self.filter = filter,
                Err(_) => self.filter = (self.next_id >> BLOCK_SHIFT, TraceFilter::default()),
            }
        }
        result
    }

    fn try_write(&mut self, spans: &[Span]) -> Result<(), StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .sql()?;
        // (block, min start, max start, trace filter) of the blocks this transaction touches;
        // the filter of the last one is `self.filter`, the others are complete. A failed
        // transaction reloads `self.filter` from the database (see `write`).
        let mut blocks: Vec<(i64, i64, i64, Option<TraceFilter>)> = Vec::new();
        {
            let mut insert = tx.prepare_cached(INSERT_SPAN).sql()?;
            let mut attributes = Vec::new();
            for span in spans {
                let endpoint_id = endpoint_id(&tx, &mut self.endpoints, span)?;
                let id = self.next_id;
                self.next_id += 1;
                let block = id >> BLOCK_SHIFT;
                let start = to_sql_int(span.start_unix_nanos);
                insert
                    .execute(params![
                        id,
                        block,
                        start,
                        to_sql_int(span.duration_nanos),
                        endpoint_id,
                        kind_code(span.kind),
                        status_code(span.status),
                        span.http_status,
                        trace_hi(&span.trace_id),
                        &span.trace_id.as_bytes()[..],
                        &span.span_id.as_bytes()[..],
                        span.parent_span_id.as_ref().map(|id| &id.as_bytes()[..]),
                        encode_attributes(span, &mut attributes)?,
                    ])
                    .sql()?;
                match blocks.last_mut() {
                    Some((current, min, max, _)) if *current == block => {
                        *min = (*min).min(start);
                        *max = (*max).max(start);
                    }
                    _ => {
                        if self.filter.0 != block {
                            // The previous block is complete: its filter is written below with
                            // the other blocks this transaction touched.
                            let done = std::mem::take(&mut self.filter.1);
                            if let Some(last) = blocks.last_mut() {
                                last.3 = Some(done);
                            }
                            self.filter.0 = block;
                        }
                        blocks.push((block, start, start, None));
                    }
                }
                self.filter.1.insert(&span.trace_id);
                self.rollups.add(
                    endpoint_id,
                    span.start_unix_nanos,
                    span.duration_nanos,
                    span.is_error(),
                );
            }
        }
        {
            let mut widen = tx.prepare_cached(WIDEN_BLOCK).sql()?;
            for (block, min, max, filter) in &blocks {
                let filter = filter.as_ref().unwrap_or(&self.filter.1);
                widen
                    .execute(params![block, min, max, filter.as_bytes()])
                    .sql()?;
            }
        }
        self.rollups.write(&tx)?;
        tx.commit().sql()
    }
}

fn next_id(conn: &Connection) -> Result<i64, StoreError> {
    conn.query_row("SELECT coalesce(max(id), 0) + 1 FROM spans", [], |row| {
        row.get(0)
    })
    .sql()
}

/// The committed trace filter of the block `next_id` falls in (empty for a new block).
fn current_filter(conn: &Connection, next_id: i64) -> Result<(i64, TraceFilter), StoreError> {
    let block = next_id >> BLOCK_SHIFT;
    let stored: Option<Option<Vec<u8>>> = conn
        .query_row(
            "SELECT traces FROM span_blocks WHERE block = ?1",
            params![block],
            |row| row.get(0),
        )
        .optional()
        .sql()?;
    let filter = match stored {
        None => TraceFilter::default(),
        Some(blob) => match blob.as_deref().and_then(TraceFilter::from_bytes) {
            Some(filter) => filter,
            None => filter_from_rows(conn, block)?,
        },
    };
    Ok((block, filter))
}

/// The trace filter of `block`, built from its rows.
fn filter_from_rows(conn: &Connection, block: i64) -> Result<TraceFilter, StoreError> {
    let mut statement = conn
        .prepare_cached("SELECT trace_id FROM spans WHERE id >= ?1 AND id < ?2")
        .sql()?;
    let mut rows = statement
        .query(params![block << BLOCK_SHIFT, (block + 1) << BLOCK_SHIFT])
        .sql()?;
    let mut filter = TraceFilter::default();
    while let Some(row) = rows.next().sql()? {
        let bytes: Vec<u8> = row.get(0).sql()?;
        let trace_id = TraceId::from_slice(&bytes)
            .map_err(|error| corrupt("span trace id", error.to_string()))?;
        filter.insert(&trace_id);
    }
    Ok(filter)
}

/// Gives every block stored before trace filters existed (schema 3 and older) its filter, in
/// one transaction.
fn backfill_filters(conn: &mut Connection) -> Result<(), StoreError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .sql()?;
    let blocks: Vec<i64> = tx
        .prepare("SELECT block FROM span_blocks WHERE traces IS NULL")
        .sql()?
        .query_map([], |row| row.get(0))
        .sql()?
        .collect::<rusqlite::Result<_>>()
        .sql()?;
    for block in blocks {
        let filter = filter_from_rows(&tx, block)?;
        tx.execute(
            "UPDATE span_blocks SET traces = ?2 WHERE block = ?1",
            params![block, filter.as_bytes()],
        )
        .sql()?;
    }
    tx.commit().sql()
}

/// The interned id of the span's endpoint, created on first sight.
fn endpoint_id(
    tx: &Transaction<'_>,
    cache: &mut HashMap<String, HashMap<String, i64>>,
    span: &Span,
) -> Result<i64, StoreError> {
    if let Some(id) = cache
        .get(&*span.service)
        .and_then(|operations| operations.get(&*span.operation))
    {
        return Ok(*id);
    }
    tx.prepare_cached(
        "INSERT INTO endpoints (service, operation) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
    )
    .sql()?
    .execute(params![span.service, span.operation])
    .sql()?;
    let id: i64 = tx
        .prepare_cached("SELECT id FROM endpoints WHERE service = ?1 AND operation = ?2")
        .sql()?
        .query_row(params![span.service, span.operation], |row| row.get(0))
        .sql()?;
    cache
        .entry(span.service.to_string())
        .or_default()
        .insert(span.operation.to_string(), id);
    Ok(id)
}
