//! The `span_chunks` table: one row per writer transaction and block, keyed by the id of the
//! chunk's first span. What a chunk's bytes hold is [`codec`]'s business; this module moves
//! them in and out of SQLite.

mod codec;

use rusqlite::{Connection, Row, Rows, params};

pub(crate) use self::codec::{ChunkDecoder, ChunkEncoder, RawSpan};
use crate::codec::{corrupt, to_sql_int};
use crate::error::{SqlResultExt, StoreError};
use crate::layout::BLOCK_SHIFT;

/// Appends a chunk: `?1` first span id, `?2` span count, `?3`/`?4` start range, `?5` blob.
pub(crate) const INSERT_CHUNK: &str = "INSERT INTO span_chunks \
     (id, count, min_start_ns, max_start_ns, spans) VALUES (?1, ?2, ?3, ?4, ?5)";

/// Inserts the chunk in `encoder`, whose first span has id `first_id`, and clears it.
pub(crate) fn insert_chunk(
    conn: &Connection,
    first_id: i64,
    encoder: &mut ChunkEncoder,
) -> Result<(), StoreError> {
    if encoder.is_empty() {
        return Ok(());
    }
    let (min, max) = encoder.start_range();
    conn.prepare_cached(INSERT_CHUNK)
        .sql()?
        .execute(params![
            first_id,
            encoder.len() as i64,
            to_sql_int(min),
            to_sql_int(max),
            encoder.as_bytes()
        ])
        .sql()?;
    encoder.clear();
    Ok(())
}

/// The chunks of one block in id order: `?1`/`?2` bound the block's ids.
pub(crate) const BLOCK_CHUNKS: &str =
    "SELECT spans FROM span_chunks WHERE id >= ?1 AND id < ?2 ORDER BY id";

/// Calls `each` with every span stored in `block`, in id order.
pub(crate) fn for_each_in_block(
    conn: &Connection,
    block: i64,
    each: impl FnMut(RawSpan<'_>) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    let mut statement = conn.prepare_cached(BLOCK_CHUNKS).sql()?;
    let rows = statement
        .query(params![block << BLOCK_SHIFT, (block + 1) << BLOCK_SHIFT])
        .sql()?;
    for_each_in_rows(rows, each)
}

/// Calls `each` with every span of the chunks in `rows`, whose first column is the blob.
pub(crate) fn for_each_in_rows(
    mut rows: Rows<'_>,
    mut each: impl FnMut(RawSpan<'_>) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    while let Some(row) = rows.next().sql()? {
        let mut decoder = ChunkDecoder::new(blob(row, 0)?)?;
        while let Some(span) = decoder.next_span()? {
            each(span)?;
        }
    }
    Ok(())
}

/// Column `index` of `row` as a blob, borrowed.
pub(crate) fn blob<'a>(row: &'a Row<'_>, index: usize) -> Result<&'a [u8], StoreError> {
    row.get_ref(index)
        .sql()?
        .as_blob()
        .map_err(|error| corrupt("span chunk", error.to_string()))
}
