//! Read queries over stored spans.
//!
//! Time-bounded queries go through the block directory: `span_blocks` names the blocks whose
//! start-time range overlaps the window, and each block is a contiguous range of span ids, so
//! SQLite reads only the chunks of those blocks by primary key, and of those only the chunks
//! whose own start range overlaps the window. Their cost follows the spans in (and near) the
//! window, not the spans stored.

use std::collections::HashMap;

use aiops_telemetry_core::{EndpointKey, Span, SpanText, TimeWindow, TraceId, WindowStats};
use rusqlite::{Connection, params};

use crate::chunk::{RawSpan, for_each_in_block, for_each_in_rows};
use crate::codec::{corrupt, from_sql_int, to_sql_int};
use crate::error::{SqlResultExt, StoreError};
use crate::layout::BLOCK_SHIFT;
use crate::trace_filter::blob_may_contain;

/// The chunks that may hold spans that started in a window: `?1`/`?2` are the window bounds
/// in nanoseconds.
fn window_chunks() -> String {
    format!(
        "SELECT c.spans FROM span_blocks b CROSS JOIN span_chunks c
         WHERE b.max_start_ns >= ?1 AND b.min_start_ns < ?2
           AND c.id >= (b.block << {BLOCK_SHIFT}) AND c.id < ((b.block + 1) << {BLOCK_SHIFT})
           AND c.max_start_ns >= ?1 AND c.min_start_ns < ?2"
    )
}

/// Calls `each` with every stored span that started in `window`.
fn for_each_in_window(
    conn: &Connection,
    window: TimeWindow,
    mut each: impl FnMut(RawSpan<'_>),
) -> Result<(), StoreError> {
    let mut statement = conn.prepare_cached(&window_chunks()).sql()?;
    let rows = statement
        .query(params![
            to_sql_int(window.start_unix_nanos),
            to_sql_int(window.end_unix_nanos)
        ])
        .sql()?;
    for_each_in_rows(rows, |span| {
        if window.contains(span.start_unix_nanos) {
            each(span);
        }
        Ok(())
    })
}

/// Latencies and counts of one endpoint's spans in a window.
#[derive(Default)]
struct Sample {
    durations: Vec<u64>,
    errors: u64,
    timeouts: u64,
}

/// Statistics of every endpoint with at least one span that started in `window`, ordered by
/// endpoint.
pub(crate) fn window_stats(
    conn: &Connection,
    window: TimeWindow,
    timeout_ms: f64,
) -> Result<Vec<(EndpointKey, WindowStats)>, StoreError> {
    let mut samples: HashMap<i64, Sample> = HashMap::new();
    for_each_in_window(conn, window, |span| {
        let duration = span.duration_nanos;
        let sample = samples.entry(span.endpoint_id).or_default();
        sample.durations.push(duration);
        sample.errors += u64::from(span.is_error());
        // Same arithmetic as `Span::duration_ms`, so callers comparing spans agree exactly.
        sample.timeouts += u64::from(duration as f64 / 1e6 > timeout_ms);
    })?;
    let names = endpoint_names(conn)?;
    let mut stats: Vec<(EndpointKey, WindowStats)> = samples
        .into_iter()
        .filter_map(|(id, sample)| Some((names.get(&id)?.clone(), summarize(sample))))
        .collect();
    stats.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(stats)
}

/// Exact statistics; percentiles by nearest rank (see [`nearest_rank`]).
fn summarize(mut sample: Sample) -> WindowStats {
    let durations = &mut sample.durations;
    durations.sort_unstable();
    let count = durations.len() as u64;
    let total: u128 = durations.iter().map(|nanos| u128::from(*nanos)).sum();
    let percentile = |percent| durations[nearest_rank(percent, durations.len()) - 1] as f64 / 1e6;
    WindowStats {
        count,
        errors: sample.errors,
        timeouts: sample.timeouts,
        mean_ms: total as f64 / count as f64 / 1e6,
        p50_ms: percentile(50),
        p95_ms: percentile(95),
        p99_ms: percentile(99),
    }
}

/// The 1-based nearest rank of the `percent` percentile among `n > 0` sorted values:
/// `ceil(percent / 100 * n)`, at least 1. The percentile is the value at that rank, always an
/// observed latency.
pub(crate) fn nearest_rank(percent: usize, n: usize) -> usize {
    (percent * n).div_ceil(100).clamp(1, n)
}

/// How many endpoints the table holds.
pub(crate) fn endpoint_count(conn: &Connection) -> Result<u64, StoreError> {
    let count: i64 = conn
        .query_row("SELECT count(*) FROM endpoints", [], |row| row.get(0))
        .sql()?;
    Ok(u64::try_from(count).unwrap_or(0))
}

/// Every endpoint id and its key: one row per endpoint with stored spans (retention deletes
/// the others).
fn endpoint_names(conn: &Connection) -> Result<HashMap<i64, EndpointKey>, StoreError> {
    let mut statement = conn
        .prepare_cached("SELECT id, service, operation FROM endpoints")
        .sql()?;
    let names = statement
        .query_map([], |row| {
            Ok((
                row.get(0)?,
                EndpointKey::new(row.get::<_, String>(1)?, row.get::<_, String>(2)?),
            ))
        })
        .sql()?
        .collect::<rusqlite::Result<_>>()
        .sql()?;
    Ok(names)
}

/// Every stored span of a trace, by start time.
pub(crate) fn trace(conn: &Connection, trace_id: TraceId) -> Result<Vec<Span>, StoreError> {
    // The blocks whose trace filter may hold the trace; each is then read by id range.
    let mut candidates = Vec::new();
    {
        let mut statement = conn
            .prepare_cached("SELECT block, traces FROM span_blocks ORDER BY block")
            .sql()?;
        let mut rows = statement.query([]).sql()?;
        while let Some(row) = rows.next().sql()? {
            let filter = row
                .get_ref(1)
                .sql()?
                .as_blob_or_null()
                .map_err(|error| corrupt("span block trace filter", error.to_string()))?;
            if filter.is_none_or(|blob| blob_may_contain(blob, &trace_id)) {
                candidates.push(row.get::<_, i64>(0).sql()?);
            }
        }
    }
    let wanted = trace_id.as_bytes();
    // Every endpoint's names, read at the first matching span and shared by its spans.
    let mut names: Option<HashMap<i64, (SpanText, SpanText)>> = None;
    let mut spans = Vec::new();
    for block in candidates {
        for_each_in_block(conn, block, |span| {
            if span.trace_id != wanted {
                return Ok(());
            }
            let names = match &mut names {
                Some(names) => names,
                None => names.insert(
                    endpoint_names(conn)?
                        .into_iter()
                        .map(|(id, endpoint)| (id, (endpoint.service, endpoint.operation)))
                        .collect(),
                ),
            };
            let (service, operation) = names.get(&span.endpoint_id).ok_or_else(|| {
                corrupt("span endpoint", format!("unknown id {}", span.endpoint_id))
            })?;
            spans.push(span.to_span(service.clone(), operation.clone())?);
            Ok(())
        })?;
    }
    // Blocks and chunks come in id order; a stable sort keeps it among equal start times.
    spans.sort_by_key(|span| span.start_unix_nanos);
    Ok(spans)
}

/// Up to `limit` distinct traces with a span of `endpoint` that started in `window`; traces
/// where that endpoint failed come first, then the slowest, as they best explain an anomaly.
pub(crate) fn sample_trace_ids(
    conn: &Connection,
    endpoint: &EndpointKey,
    window: TimeWindow,
    limit: usize,
) -> Result<Vec<TraceId>, StoreError> {
    if limit == 0 {
        return Ok(Vec::new());
    }
    let Some(endpoint_id) = endpoint_id(conn, endpoint)? else {
        return Ok(Vec::new());
    };
    // Grouped here rather than in SQL: a hash map beats SQLite's temporary B-tree on blobs.
    let mut traces: HashMap<TraceId, (bool, u64)> = HashMap::new();
    for_each_in_window(conn, window, |span| {
        if span.endpoint_id != endpoint_id {
            return;
        }
        let evidence = traces
            .entry(TraceId::from_bytes(*span.trace_id))
            .or_insert((false, 0));
        evidence.0 |= span.is_error();
        evidence.1 = evidence.1.max(span.duration_nanos);
    })?;
    let mut ranked: Vec<(TraceId, (bool, u64))> = traces.into_iter().collect();
    ranked.sort_unstable_by(
        |(a_id, (a_failed, a_slowest)), (b_id, (b_failed, b_slowest))| {
            b_failed
                .cmp(a_failed)
                .then(b_slowest.cmp(a_slowest))
                .then(a_id.cmp(b_id))
        },
    );
    Ok(ranked.into_iter().take(limit).map(|(id, _)| id).collect())
}

fn endpoint_id(conn: &Connection, endpoint: &EndpointKey) -> Result<Option<i64>, StoreError> {
    use rusqlite::OptionalExtension;
    conn.prepare_cached("SELECT id FROM endpoints WHERE service = ?1 AND operation = ?2")
        .sql()?
        .query_row(
            params![endpoint.service.as_str(), endpoint.operation.as_str()],
            |row| row.get(0),
        )
        .optional()
        .sql()
}

/// How many spans are stored.
pub(crate) fn span_count(conn: &Connection) -> Result<u64, StoreError> {
    conn.query_row(
        "SELECT coalesce(sum(count), 0) FROM span_chunks",
        [],
        |row| row.get(0),
    )
    .map(from_sql_int)
    .sql()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::query_plan as plan;

    #[test]
    fn window_scans_read_chunks_by_id_range_not_whole_table() {
        let window = plan(&window_chunks());
        assert!(
            window.contains("SEARCH c USING INTEGER PRIMARY KEY"),
            "{window}"
        );
        assert!(window.contains("span_blocks_by_max_start"), "{window}");
        assert!(!window.contains("AUTOMATIC"), "{window}");
        let block = plan(crate::chunk::BLOCK_CHUNKS);
        assert!(
            block.contains("SEARCH span_chunks USING INTEGER PRIMARY KEY"),
            "{block}"
        );
        assert!(!block.contains("TEMP B-TREE"), "{block}");
    }

    #[test]
    fn nearest_rank_follows_the_definition() {
        assert_eq!(nearest_rank(50, 1), 1);
        assert_eq!(nearest_rank(95, 20), 19);
        assert_eq!(nearest_rank(95, 21), 20);
        assert_eq!(nearest_rank(99, 100), 99);
        assert_eq!(nearest_rank(50, 4), 2);
    }

    #[test]
    fn summary_of_known_latencies() {
        let sample = Sample {
            durations: (1..=100).rev().map(|ms| ms * 1_000_000).collect(),
            errors: 3,
            timeouts: 1,
        };
        let stats = summarize(sample);
        assert_eq!(stats.count, 100);
        assert_eq!(stats.mean_ms, 50.5);
        assert_eq!(
            (stats.p50_ms, stats.p95_ms, stats.p99_ms),
            (50.0, 95.0, 99.0)
        );
        assert_eq!((stats.errors, stats.timeouts), (3, 1));
    }
}
