//! Retention: deleting spans that started before a cutoff, a few chunks per transaction so the
//! writer thread is never locked out for long, and the minute rollups of the minutes they
//! filled.
//!
//! A chunk whose spans all started before the cutoff is deleted. A chunk that also holds newer
//! spans (late arrivals, or a cutoff inside the chunk's time range) is rewritten in place
//! without its old spans: it keeps its id, so its remaining spans stay in their block, and its
//! count and start range shrink. Retention is therefore exact, span by span, as it was when
//! every span had a row.
//!
//! Once the spans and rollups are gone, so are the endpoints no rollup names any more: every
//! stored span has the rollup of its minute, so an endpoint without one has no span left, and
//! the table stays as large as what is kept however many operation names passed through. The
//! writer interns endpoints in a cache of its own; a purge that deletes any bumps
//! [`EndpointPurges`] before it commits, while it holds the write lock, and the writer, which
//! reads it inside each of its transactions, then forgets its cache before it names an id.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use aiops_telemetry_core::SpanText;
use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};

use crate::chunk::{ChunkDecoder, ChunkEncoder, blob};
use crate::codec::to_sql_int;
use crate::error::{SqlResultExt, StoreError};
use crate::layout::BLOCK_SHIFT;
use crate::rollup::MINUTE_NANOS;

/// How many times a purge deleted endpoints: the writer's endpoint cache is valid only while
/// this has not moved. Shared by the store (purges) and the writer thread.
#[derive(Clone, Debug, Default)]
pub(crate) struct EndpointPurges(Arc<AtomicU64>);

impl EndpointPurges {
    /// The count now. Read inside a write transaction, it cannot move until that commits.
    pub(crate) fn current(&self) -> u64 {
        self.0.load(Ordering::Acquire)
    }

    fn bump(&self) {
        self.0.fetch_add(1, Ordering::AcqRel);
    }
}

/// Deletes spans with `start < cutoff` in transactions that each take whole chunks until they
/// have removed at least `batch_rows` spans, then the rollups of every minute that ended by the
/// cutoff, `batch_rows` rows per transaction, then the endpoints left without any rollup;
/// returns how many spans were deleted. Snapshots and incidents are kept.
pub(crate) fn purge_before(
    conn: &mut Connection,
    cutoff_unix_nanos: u64,
    batch_rows: usize,
    purges: &EndpointPurges,
) -> Result<u64, StoreError> {
    let cutoff = to_sql_int(cutoff_unix_nanos);
    let batch = u64::try_from(batch_rows.max(1)).unwrap_or(u64::MAX);
    // Only blocks that hold something old; the directory is small (one row per block).
    let blocks: Vec<i64> = conn
        .prepare("SELECT block FROM span_blocks WHERE min_start_ns < ?1 ORDER BY block")
        .sql()?
        .query_map(params![cutoff], |row| row.get(0))
        .sql()?
        .collect::<rusqlite::Result<_>>()
        .sql()?;
    let mut encoder = ChunkEncoder::default();
    let mut deleted = 0;
    for block in blocks {
        let first = block << BLOCK_SHIFT;
        let end = (block + 1) << BLOCK_SHIFT;
        let chunks: Vec<i64> = conn
            .prepare_cached(
                "SELECT id FROM span_chunks WHERE id >= ?1 AND id < ?2 AND min_start_ns < ?3 \
                 ORDER BY id",
            )
            .sql()?
            .query_map(params![first, end, cutoff], |row| row.get(0))
            .sql()?
            .collect::<rusqlite::Result<_>>()
            .sql()?;
        let mut chunks = chunks.into_iter().peekable();
        while chunks.peek().is_some() {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .sql()?;
            let mut removed = 0;
            for id in chunks.by_ref() {
                removed += purge_chunk(&tx, id, cutoff_unix_nanos, &mut encoder)?;
                if removed >= batch {
                    break;
                }
            }
            tx.commit().sql()?;
            deleted += removed;
        }
        shrink_block(conn, block, first, end)?;
    }
    // Endpoints lose their last span only with their last rollup: with no rollup gone, the
    // walk over the table is skipped.
    if purge_rollups(conn, cutoff_unix_nanos, batch)? > 0 {
        purge_endpoints(conn, batch, purges)?;
    }
    Ok(deleted)
}

/// Deletes, among up to `?2` endpoints with an id above `?1`, those no rollup names.
const PURGE_ENDPOINTS: &str = "DELETE FROM endpoints WHERE id IN
     (SELECT id FROM endpoints e WHERE id > ?1 AND id <= ?2
      AND NOT EXISTS (SELECT 1 FROM rollups r WHERE r.endpoint_id = e.id))";

/// Deletes the endpoints no rollup names, and so no stored span, walking the table by id,
/// `batch` endpoints per transaction; returns how many were deleted.
pub(crate) fn purge_endpoints(
    conn: &mut Connection,
    batch: u64,
    purges: &EndpointPurges,
) -> Result<u64, StoreError> {
    let mut after = i64::MIN;
    let mut deleted = 0;
    loop {
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .sql()?;
        let last: Option<i64> = tx
            .prepare_cached(
                "SELECT max(id) FROM (SELECT id FROM endpoints WHERE id > ?1 ORDER BY id LIMIT ?2)",
            )
            .sql()?
            .query_row(params![after, to_sql_int(batch)], |row| row.get(0))
            .sql()?;
        let Some(last) = last else {
            tx.commit().sql()?;
            return Ok(deleted);
        };
        let removed = tx
            .prepare_cached(PURGE_ENDPOINTS)
            .sql()?
            .execute(params![after, last])
            .sql()?;
        if removed > 0 {
            // Before the commit: a writer that takes the lock next sees the ids are gone.
            purges.bump();
        }
        tx.commit().sql()?;
        deleted += removed as u64;
        after = last;
    }
}

/// Deletes up to `?2` rollups of minutes before `?1`, the oldest first, found through the
/// minute index.
const PURGE_ROLLUPS: &str = "DELETE FROM rollups WHERE (endpoint_id, minute) IN
     (SELECT endpoint_id, minute FROM rollups WHERE minute < ?1 ORDER BY minute LIMIT ?2)";

/// Deletes the rollups of the minutes that ended by the cutoff, whose spans are all gone; the
/// minute the cutoff falls in keeps its rollup, like the spans after the cutoff. A late span
/// older than the cutoff brings its minute's row back until the next purge, as it does its
/// own chunk. Returns how many rollups were deleted.
fn purge_rollups(
    conn: &mut Connection,
    cutoff_unix_nanos: u64,
    batch: u64,
) -> Result<u64, StoreError> {
    let first_kept = to_sql_int(cutoff_unix_nanos / MINUTE_NANOS);
    let mut deleted = 0;
    loop {
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .sql()?;
        let removed = tx
            .prepare_cached(PURGE_ROLLUPS)
            .sql()?
            .execute(params![first_kept, to_sql_int(batch)])
            .sql()?;
        tx.commit().sql()?;
        deleted += removed as u64;
        if (removed as u64) < batch {
            return Ok(deleted);
        }
    }
}

/// Removes the spans of chunk `id` that started before the cutoff; returns how many.
fn purge_chunk(
    tx: &Transaction<'_>,
    id: i64,
    cutoff_unix_nanos: u64,
    encoder: &mut ChunkEncoder,
) -> Result<u64, StoreError> {
    let mut select = tx
        .prepare_cached("SELECT count, spans FROM span_chunks WHERE id = ?1")
        .sql()?;
    let mut rows = select.query(params![id]).sql()?;
    // Read again inside the transaction: another purge may have got there first.
    let Some(row) = rows.next().sql()? else {
        return Ok(0);
    };
    let count: i64 = row.get(0).sql()?;
    let mut decoder = ChunkDecoder::new(blob(row, 1)?)?;
    encoder.clear();
    let mut old = 0;
    while let Some(span) = decoder.next_span()? {
        if span.start_unix_nanos < cutoff_unix_nanos {
            old += 1;
        } else {
            // Names are not stored in chunks; the endpoint id is.
            encoder.push(
                &span.to_span(SpanText::default(), SpanText::default())?,
                span.endpoint_id,
            );
        }
    }
    drop(rows);
    drop(select);
    if encoder.is_empty() {
        tx.prepare_cached("DELETE FROM span_chunks WHERE id = ?1")
            .sql()?
            .execute(params![id])
            .sql()?;
    } else if old > 0 {
        let (min, max) = encoder.start_range();
        tx.prepare_cached(
            "UPDATE span_chunks SET count = ?2, min_start_ns = ?3, max_start_ns = ?4, \
             spans = ?5 WHERE id = ?1",
        )
        .sql()?
        .execute(params![
            id,
            encoder.len() as i64,
            to_sql_int(min),
            to_sql_int(max),
            encoder.as_bytes()
        ])
        .sql()?;
    }
    debug_assert_eq!(old + encoder.len() as u64, count as u64);
    Ok(old)
}

/// Drops an emptied block from the directory, or tightens its start range to what remains.
/// One transaction, so a concurrent insert into the block is either seen or not at all.
fn shrink_block(conn: &mut Connection, block: i64, first: i64, end: i64) -> Result<(), StoreError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .sql()?;
    let remaining: Option<i64> = tx
        .query_row(
            "SELECT min(min_start_ns) FROM span_chunks WHERE id >= ?1 AND id < ?2",
            params![first, end],
            |row| row.get(0),
        )
        .optional()
        .sql()?
        .flatten();
    match remaining {
        None => tx
            .execute("DELETE FROM span_blocks WHERE block = ?1", params![block])
            .sql()?,
        Some(min) => tx
            .execute(
                "UPDATE span_blocks SET min_start_ns = ?2 WHERE block = ?1",
                params![block, min],
            )
            .sql()?,
    };
    tx.commit().sql()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::query_plan;

    #[test]
    fn endpoints_are_purged_by_id_range_and_rollup_primary_key() {
        let plan = query_plan(PURGE_ENDPOINTS);
        assert!(!plan.contains("SCAN rollups"), "{plan}");
        assert!(
            !plan.contains("SCAN e\n") && !plan.contains("SCAN endpoints"),
            "{plan}"
        );
    }

    #[test]
    fn rollups_are_purged_through_the_minute_index_not_a_table_scan() {
        let plan = query_plan(PURGE_ROLLUPS);
        assert!(plan.contains("rollups_by_minute"), "{plan}");
        assert!(!plan.contains("SCAN rollups"), "{plan}");
    }
}
