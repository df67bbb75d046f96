//! Per-minute rollups per endpoint: maintained by the writer in the transaction that commits
//! the spans, so they always agree with the spans and survive restarts at a fraction of the
//! spans' size.

use foldhash::HashMap;

use aiops_telemetry_core::{EndpointKey, TimeWindow};
use rusqlite::{Connection, OptionalExtension, Transaction, params};

use crate::codec::{from_sql_int, to_sql_int};
use crate::error::{SqlResultExt, StoreError};
use crate::histogram::LatencyHistogram;

/// Nanoseconds in a rollup minute.
pub(crate) const MINUTE_NANOS: u64 = 60_000_000_000;

/// One endpoint's traffic in one minute (by span start time).
///
/// Counts, sum and maximum are exact; percentiles come from the histogram and are estimates
/// (see [`LatencyHistogram`]).
#[derive(Clone, Debug, PartialEq)]
pub struct MinuteRollup {
    /// The endpoint.
    pub endpoint: EndpointKey,
    /// Start of the minute, in Unix nanoseconds (a multiple of 60 s).
    pub minute_start_unix_nanos: u64,
    /// Spans that started in the minute.
    pub count: u64,
    /// Of those, how many failed.
    pub errors: u64,
    /// Sum of their durations.
    pub latency_sum_nanos: u64,
    /// The longest duration.
    pub latency_max_nanos: u64,
    /// Their durations, bucketed.
    pub histogram: LatencyHistogram,
}

impl MinuteRollup {
    /// Mean latency in milliseconds, 0 when empty.
    pub fn mean_ms(&self) -> f64 {
        if self.count == 0 {
            0.0
        } else {
            self.latency_sum_nanos as f64 / self.count as f64 / 1e6
        }
    }

    /// Share of spans that failed, 0 when empty.
    pub fn error_rate(&self) -> f64 {
        if self.count == 0 {
            0.0
        } else {
            self.errors as f64 / self.count as f64
        }
    }

    /// Estimated nearest-rank latency quantile (`quantile` in `(0, 1]`) in milliseconds: the
    /// upper bound of its histogram bucket, capped by the maximum. Never below the exact value,
    /// at most 25% above it; 0 when empty.
    pub fn latency_quantile_ms(&self, quantile: f64) -> f64 {
        self.histogram
            .quantile_upper_bound_nanos(quantile)
            .map_or(0.0, |bound| bound.min(self.latency_max_nanos) as f64 / 1e6)
    }
}

/// Rollup increments gathered while a transaction's spans are inserted.
#[derive(Debug, Default)]
pub(crate) struct PendingRollups {
    /// Increments per (endpoint id, minute), in the order they first appeared.
    deltas: Vec<((i64, i64), Delta)>,
    /// Where each (endpoint id, minute) is in `deltas`.
    index: HashMap<(i64, i64), usize>,
    /// The slot the last span went to, tried first: spans come in runs of one endpoint.
    last: usize,
}

#[derive(Debug, Default)]
struct Delta {
    count: u64,
    errors: u64,
    sum: u64,
    max: u64,
    histogram: LatencyHistogram,
}

impl PendingRollups {
    pub(crate) fn add(&mut self, endpoint_id: i64, start_nanos: u64, duration: u64, error: bool) {
        let key = (endpoint_id, to_sql_int(start_nanos / MINUTE_NANOS));
        let slot = match self.deltas.get(self.last) {
            Some((last, _)) if *last == key => self.last,
            _ => {
                let next = self.deltas.len();
                let slot = *self.index.entry(key).or_insert(next);
                if slot == next {
                    self.deltas.push((key, Delta::default()));
                }
                self.last = slot;
                slot
            }
        };
        let delta = &mut self.deltas[slot].1;
        delta.count += 1;
        delta.errors += u64::from(error);
        delta.sum = delta.sum.saturating_add(duration);
        delta.max = delta.max.max(duration);
        delta.histogram.record(duration);
    }

    pub(crate) fn clear(&mut self) {
        self.deltas.clear();
        self.index.clear();
    }

    /// Merges the increments into the stored rows and forgets them.
    pub(crate) fn write(&mut self, tx: &Transaction<'_>) -> Result<(), StoreError> {
        let mut select = tx
            .prepare_cached(
                "SELECT count, errors, latency_sum_ns, latency_max_ns, histogram
                 FROM rollups WHERE endpoint_id = ?1 AND minute = ?2",
            )
            .sql()?;
        let mut upsert = tx
            .prepare_cached(
                "INSERT OR REPLACE INTO rollups
                     (endpoint_id, minute, count, errors, latency_sum_ns, latency_max_ns, histogram)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )
            .sql()?;
        self.index.clear();
        for ((endpoint_id, minute), mut delta) in self.deltas.drain(..) {
            let stored = select
                .query_row(params![endpoint_id, minute], |row| {
                    Ok((
                        row.get::<_, i64>(0)?,
                        row.get::<_, i64>(1)?,
                        row.get::<_, i64>(2)?,
                        row.get::<_, i64>(3)?,
                        row.get::<_, Vec<u8>>(4)?,
                    ))
                })
                .optional()
                .sql()?;
            if let Some((count, errors, sum, max, histogram)) = stored {
                delta.count += from_sql_int(count);
                delta.errors += from_sql_int(errors);
                delta.sum = delta.sum.saturating_add(from_sql_int(sum));
                delta.max = delta.max.max(from_sql_int(max));
                delta
                    .histogram
                    .merge(&LatencyHistogram::decode(&histogram)?);
            }
            upsert
                .execute(params![
                    endpoint_id,
                    minute,
                    to_sql_int(delta.count),
                    to_sql_int(delta.errors),
                    to_sql_int(delta.sum),
                    to_sql_int(delta.max),
                    delta.histogram.encode(),
                ])
                .sql()?;
        }
        Ok(())
    }
}

/// The columns a rollup is read from, `?1`/`?2` bounding the minutes.
const ROLLUP_COLUMNS: &str = "SELECT e.service, e.operation, r.minute, r.count, r.errors,
        r.latency_sum_ns, r.latency_max_ns, r.histogram";

/// Every endpoint's rollups of minutes `?1` to `?2` (exclusive), through the minute index.
fn all_rollups() -> String {
    format!(
        "{ROLLUP_COLUMNS} FROM rollups r JOIN endpoints e ON e.id = r.endpoint_id
         WHERE r.minute >= ?1 AND r.minute < ?2
         ORDER BY e.service, e.operation, r.minute"
    )
}

/// The rollups of endpoint `?3 ?4` of minutes `?1` to `?2` (exclusive), through the primary
/// key: they cost what the endpoint has, not what every endpoint has in those minutes.
fn endpoint_rollups() -> String {
    format!(
        "{ROLLUP_COLUMNS} FROM endpoints e JOIN rollups r ON r.endpoint_id = e.id
         WHERE e.service = ?3 AND e.operation = ?4 AND r.minute >= ?1 AND r.minute < ?2
         ORDER BY r.minute"
    )
}

/// Rollups of every minute that overlaps `window`, for one endpoint or all, ordered by
/// endpoint then minute.
pub(crate) fn rollups(
    conn: &Connection,
    endpoint: Option<&EndpointKey>,
    window: TimeWindow,
) -> Result<Vec<MinuteRollup>, StoreError> {
    if window.length_nanos() == 0 {
        return Ok(Vec::new());
    }
    let first = to_sql_int(window.start_unix_nanos / MINUTE_NANOS);
    let end = to_sql_int(window.end_unix_nanos.div_ceil(MINUTE_NANOS));
    let mut statement;
    let mut rows = match endpoint {
        Some(key) => {
            statement = conn.prepare_cached(&endpoint_rollups()).sql()?;
            statement
                .query(params![
                    first,
                    end,
                    key.service.as_str(),
                    key.operation.as_str()
                ])
                .sql()?
        }
        None => {
            statement = conn.prepare_cached(&all_rollups()).sql()?;
            statement.query(params![first, end]).sql()?
        }
    };
    let mut out = Vec::new();
    while let Some(row) = rows.next().sql()? {
        let histogram: Vec<u8> = row.get(7).sql()?;
        out.push(MinuteRollup {
            endpoint: EndpointKey::new(
                row.get::<_, String>(0).sql()?,
                row.get::<_, String>(1).sql()?,
            ),
            minute_start_unix_nanos: from_sql_int(row.get(2).sql()?) * MINUTE_NANOS,
            count: from_sql_int(row.get(3).sql()?),
            errors: from_sql_int(row.get(4).sql()?),
            latency_sum_nanos: from_sql_int(row.get(5).sql()?),
            latency_max_nanos: from_sql_int(row.get(6).sql()?),
            histogram: LatencyHistogram::decode(&histogram)?,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::query_plan as plan;

    #[test]
    fn one_endpoints_rollups_are_read_by_primary_key_and_all_by_the_minute_index() {
        let one = plan(&endpoint_rollups());
        assert!(one.contains("SEARCH r USING PRIMARY KEY"), "{one}");
        assert!(!one.contains("rollups_by_minute"), "{one}");
        let all = plan(&all_rollups());
        assert!(all.contains("rollups_by_minute"), "{all}");
    }
}
