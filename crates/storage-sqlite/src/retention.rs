//! Retention: deleting spans that started before a cutoff, a few rows per transaction so the
//! writer thread is never locked out for long.

use rusqlite::{Connection, TransactionBehavior, params};

use crate::codec::to_sql_int;
use crate::error::{SqlResultExt, StoreError};
use crate::schema::BLOCK_ROWS;

/// Deletes spans with `start < cutoff` in transactions of at most `batch_rows` rows; returns
/// how many were deleted. Rollups, snapshots and incidents are kept.
pub(crate) fn purge_before(
    conn: &mut Connection,
    cutoff_unix_nanos: u64,
    batch_rows: usize,
) -> Result<u64, StoreError> {
    let cutoff = to_sql_int(cutoff_unix_nanos);
    let batch = i64::try_from(batch_rows.max(1)).unwrap_or(i64::MAX);
    // Only blocks that hold something old; the directory is small (one row per block).
    let blocks: Vec<i64> = conn
        .prepare("SELECT block FROM span_blocks WHERE min_start_ns < ?1 ORDER BY block")
        .sql()?
        .query_map(params![cutoff], |row| row.get(0))
        .sql()?
        .collect::<rusqlite::Result<_>>()
        .sql()?;
    let mut deleted = 0;
    for block in blocks {
        let first = block * BLOCK_ROWS;
        let last = first + BLOCK_ROWS - 1;
        loop {
            // Each statement is its own (autocommit) transaction.
            let removed = conn
                .prepare_cached(
                    "DELETE FROM spans WHERE id IN (
                         SELECT id FROM spans
                         WHERE id BETWEEN ?1 AND ?2 AND start_ns < ?3 LIMIT ?4)",
                )
                .sql()?
                .execute(params![first, last, cutoff, batch])
                .sql()?;
            deleted += removed as u64;
            if (removed as i64) < batch {
                break;
            }
        }
        shrink_block(conn, block, first, last)?;
    }
    Ok(deleted)
}

/// Drops an emptied block from the directory, or tightens its start range to what remains.
/// One transaction, so a concurrent insert into the block is either seen or not at all.
fn shrink_block(
    conn: &mut Connection,
    block: i64,
    first: i64,
    last: i64,
) -> Result<(), StoreError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .sql()?;
    let remaining: Option<i64> = tx
        .query_row(
            "SELECT min(start_ns) FROM spans WHERE id BETWEEN ?1 AND ?2",
            params![first, last],
            |row| row.get(0),
        )
        .sql()?;
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
