//! What the writer thread does with a batch: one transaction that appends the spans as binary
//! chunks (one row per block the batch touches, see `chunk`), interns their endpoints, widens
//! the block directory and its trace filters, and merges the minute rollups.

use foldhash::{HashMap, HashMapExt};

use aiops_telemetry_core::{Span, TraceId};
use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};

use crate::chunk::{ChunkEncoder, for_each_in_block, insert_chunk};
use crate::codec::to_sql_int;
use crate::error::{SqlResultExt, StoreError};
use crate::layout::BLOCK_SHIFT;
use crate::retention::EndpointPurges;
use crate::rollup::PendingRollups;
use crate::trace_filter::TraceFilter;

const WIDEN_BLOCK: &str = "INSERT INTO span_blocks (block, min_start_ns, max_start_ns, traces) \
     VALUES (?1, ?2, ?3, ?4) ON CONFLICT (block) DO UPDATE SET \
     min_start_ns = min(min_start_ns, excluded.min_start_ns), \
     max_start_ns = max(max_start_ns, excluded.max_start_ns), \
     traces = excluded.traces";

/// The writer thread's connection and the state it keeps between transactions.
#[derive(Debug)]
pub(crate) struct Ingest {
    conn: Connection,
    /// The ids of endpoints seen lately, bounded.
    endpoints: EndpointIds,
    /// Retention's count of endpoint purges, and the count `endpoints` is valid for.
    purges: (EndpointPurges, u64),
    /// The writer is the only inserter, so it hands out ids itself: the block of a span is
    /// then known before the insert.
    next_id: i64,
    /// The trace filter of the block `next_id` falls in, as committed.
    filter: (i64, TraceFilter),
    rollups: PendingRollups,
    /// The chunk being encoded; its buffer is reused by every transaction.
    chunk: ChunkEncoder,
}

impl Ingest {
    pub(crate) fn new(mut conn: Connection, purges: EndpointPurges) -> Result<Self, StoreError> {
        backfill_filters(&mut conn)?;
        let next_id = next_id(&conn)?;
        let filter = current_filter(&conn, next_id)?;
        let seen = purges.current();
        Ok(Self {
            conn,
            endpoints: EndpointIds::default(),
            purges: (purges, seen),
            next_id,
            filter,
            rollups: PendingRollups::default(),
            chunk: ChunkEncoder::default(),
        })
    }

    /// Commits the spans of `parts`, in order, in one transaction, or none of them.
    pub(crate) fn write(&mut self, parts: &[&[Span]]) -> Result<(), StoreError> {
        let result = self.try_write(parts);
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

    fn try_write(&mut self, parts: &[&[Span]]) -> Result<(), StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .sql()?;
        // Read under the write lock: no purge can delete an endpoint until this commits.
        let purged = self.purges.0.current();
        if purged != self.purges.1 {
            self.endpoints.clear();
            self.purges.1 = purged;
        }
        // (block, start range, trace filter) of the blocks this transaction touches, one per
        // chunk; the filter of the last one is `self.filter`, the others are complete. A failed
        // transaction reloads `self.filter` from the database (see `write`).
        let mut blocks: Vec<(i64, (u64, u64), Option<TraceFilter>)> = Vec::new();
        self.chunk.clear();
        // The id of the chunk's first span.
        let mut chunk_id = self.next_id;
        if self.filter.0 != chunk_id >> BLOCK_SHIFT {
            // The last transaction filled its block exactly: this one starts a new block.
            self.filter = (chunk_id >> BLOCK_SHIFT, TraceFilter::default());
        }
        // The previous span and its endpoint id: spans come in runs of one endpoint.
        let mut previous: Option<(&Span, i64)> = None;
        for span in parts.iter().flat_map(|part| part.iter()) {
            let endpoint_id = match previous {
                Some((previous, id)) if previous.same_endpoint(span) => id,
                _ => endpoint_id(&tx, &mut self.endpoints, span)?,
            };
            previous = Some((span, endpoint_id));
            let id = self.next_id;
            self.next_id += 1;
            if chunk_id >> BLOCK_SHIFT != id >> BLOCK_SHIFT {
                // A chunk never straddles a block, and the finished block's filter is complete.
                let done = std::mem::take(&mut self.filter.1);
                blocks.push((
                    chunk_id >> BLOCK_SHIFT,
                    self.chunk.start_range(),
                    Some(done),
                ));
                insert_chunk(&tx, chunk_id, &mut self.chunk)?;
                self.filter.0 = id >> BLOCK_SHIFT;
                chunk_id = id;
            }
            self.chunk.push(span, endpoint_id);
            self.filter.1.insert(&span.trace_id);
            self.rollups.add(
                endpoint_id,
                span.start_unix_nanos,
                span.duration_nanos,
                span.is_error(),
            );
        }
        if !self.chunk.is_empty() {
            blocks.push((chunk_id >> BLOCK_SHIFT, self.chunk.start_range(), None));
        }
        insert_chunk(&tx, chunk_id, &mut self.chunk)?;
        {
            let mut widen = tx.prepare_cached(WIDEN_BLOCK).sql()?;
            for (block, (min, max), filter) in &blocks {
                let filter = filter.as_ref().unwrap_or(&self.filter.1);
                widen
                    .execute(params![
                        block,
                        to_sql_int(*min),
                        to_sql_int(*max),
                        filter.as_bytes()
                    ])
                    .sql()?;
            }
        }
        self.rollups.write(&tx)?;
        tx.commit().sql()
    }
}

/// The id after the last stored span: a chunk of `count` spans holds ids `id..id + count`.
fn next_id(conn: &Connection) -> Result<i64, StoreError> {
    let last: Option<i64> = conn
        .query_row(
            "SELECT id + count FROM span_chunks ORDER BY id DESC LIMIT 1",
            [],
            |row| row.get(0),
        )
        .optional()
        .sql()?;
    Ok(last.unwrap_or(1))
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
            None => filter_from_chunks(conn, block)?,
        },
    };
    Ok((block, filter))
}

/// The trace filter of `block`, built from its chunks.
fn filter_from_chunks(conn: &Connection, block: i64) -> Result<TraceFilter, StoreError> {
    let mut filter = TraceFilter::default();
    for_each_in_block(conn, block, |span| {
        filter.insert(&TraceId::from_bytes(*span.trace_id));
        Ok(())
    })?;
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
        let filter = filter_from_chunks(&tx, block)?;
        tx.execute(
            "UPDATE span_blocks SET traces = ?2 WHERE block = ?1",
            params![block, filter.as_bytes()],
        )
        .sql()?;
    }
    tx.commit().sql()
}

/// Endpoint ids the writer holds at most; past this many it forgets them all and looks ids up
/// again as spans need them. A sender with unbounded operation names then costs the writer a
/// look-up per new name, never unbounded memory.
pub(crate) const MAX_CACHED_ENDPOINTS: usize = 10_000;

/// The endpoint ids of recent spans: service -> operation -> id, nested so that look-ups
/// borrow the span's strings; at most [`MAX_CACHED_ENDPOINTS`] of them.
#[derive(Debug, Default)]
pub(crate) struct EndpointIds {
    by_service: HashMap<String, HashMap<String, i64>>,
    len: usize,
}

impl EndpointIds {
    fn get(&self, span: &Span) -> Option<i64> {
        self.by_service
            .get(&*span.service)
            .and_then(|operations| operations.get(&*span.operation))
            .copied()
    }

    fn insert(&mut self, span: &Span, id: i64) {
        if self.len >= MAX_CACHED_ENDPOINTS && self.get(span).is_none() {
            self.clear();
        }
        let previous = self
            .by_service
            .entry(span.service.to_string())
            .or_default()
            .insert(span.operation.to_string(), id);
        if previous.is_none() {
            self.len += 1;
        }
    }

    pub(crate) fn clear(&mut self) {
        self.by_service = HashMap::new();
        self.len = 0;
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.len
    }
}

/// The interned id of the span's endpoint, created on first sight.
fn endpoint_id(
    tx: &Transaction<'_>,
    cache: &mut EndpointIds,
    span: &Span,
) -> Result<i64, StoreError> {
    if let Some(id) = cache.get(span) {
        return Ok(id);
    }
    tx.prepare_cached(
        "INSERT INTO endpoints (service, operation) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
    )
    .sql()?
    .execute(params![span.service.as_str(), span.operation.as_str()])
    .sql()?;
    let id: i64 = tx
        .prepare_cached("SELECT id FROM endpoints WHERE service = ?1 AND operation = ?2")
        .sql()?
        .query_row(
            params![span.service.as_str(), span.operation.as_str()],
            |row| row.get(0),
        )
        .sql()?;
    cache.insert(span, id);
    Ok(id)
}

#[cfg(test)]
mod tests {
    use aiops_telemetry_core::SpanId;

    use super::*;

    fn span(operation: usize) -> Span {
        Span::new(
            TraceId::random(),
            SpanId::random(),
            "svc",
            format!("op {operation}"),
        )
    }

    #[test]
    fn the_endpoint_cache_forgets_everything_past_its_bound() {
        let mut ids = EndpointIds::default();
        for n in 0..MAX_CACHED_ENDPOINTS {
            ids.insert(&span(n), n as i64);
        }
        ids.insert(&span(0), 0);
        assert_eq!(
            ids.len(),
            MAX_CACHED_ENDPOINTS,
            "a known endpoint is not counted twice"
        );
        assert_eq!(ids.get(&span(7)), Some(7));

        ids.insert(&span(MAX_CACHED_ENDPOINTS), -1);
        assert_eq!(ids.len(), 1);
        assert_eq!(ids.get(&span(7)), None, "looked up again when needed");
        assert_eq!(ids.get(&span(MAX_CACHED_ENDPOINTS)), Some(-1));
    }
}
