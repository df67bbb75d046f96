//! What the writer thread does with a batch: one transaction that appends the spans, interns
//! their endpoints, widens the block directory and merges the minute rollups.

use foldhash::{HashMap, HashMapExt};

use aiops_telemetry_core::Span;
use rusqlite::{Connection, Transaction, TransactionBehavior, params};

use crate::codec::{encode_attributes, kind_code, status_code, to_sql_int, trace_hi};
use crate::error::{SqlResultExt, StoreError};
use crate::rollup::PendingRollups;
use crate::schema::BLOCK_SHIFT;

const INSERT_SPAN: &str = "INSERT INTO spans (id, block, start_ns, duration_ns, endpoint_id, \
     kind, status, http_status, trace_hi, trace_id, span_id, parent_span_id, attributes) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)";

const WIDEN_BLOCK: &str = "INSERT INTO span_blocks (block, min_start_ns, max_start_ns) \
     VALUES (?1, ?2, ?3) ON CONFLICT (block) DO UPDATE SET \
     min_start_ns = min(min_start_ns, excluded.min_start_ns), \
     max_start_ns = max(max_start_ns, excluded.max_start_ns)";

/// The writer thread's connection and the state it keeps between transactions.
#[derive(Debug)]
pub(crate) struct Ingest {
    conn: Connection,
    /// service -> operation -> endpoint id; nested so look-ups borrow the span's strings.
    endpoints: HashMap<String, HashMap<String, i64>>,
    /// The writer is the only inserter, so it hands out ids itself: the block of a span is
    /// then known before the insert.
    next_id: i64,
    rollups: PendingRollups,
}

impl Ingest {
    pub(crate) fn new(conn: Connection) -> Result<Self, StoreError> {
        let next_id = next_id(&conn)?;
        Ok(Self {
            conn,
            endpoints: HashMap::new(),
            next_id,
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
        }
        result
    }

    fn try_write(&mut self, spans: &[Span]) -> Result<(), StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .sql()?;
        // (block, min start, max start) of the blocks this transaction touches.
        let mut blocks: Vec<(i64, i64, i64)> = Vec::new();
        {
            let mut insert = tx.prepare_cached(INSERT_SPAN).sql()?;
            let mut attributes = String::new();
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
                    Some((current, min, max)) if *current == block => {
                        *min = (*min).min(start);
                        *max = (*max).max(start);
                    }
                    _ => blocks.push((block, start, start)),
                }
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
            for (block, min, max) in blocks {
                widen.execute(params![block, min, max]).sql()?;
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

/// The interned id of the span's endpoint, created on first sight.
fn endpoint_id(
    tx: &Transaction<'_>,
    cache: &mut HashMap<String, HashMap<String, i64>>,
    span: &Span,
) -> Result<i64, StoreError> {
    if let Some(id) = cache
        .get(&span.service)
        .and_then(|operations| operations.get(&span.operation))
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
        .entry(span.service.clone())
        .or_default()
        .insert(span.operation.clone(), id);
    Ok(id)
}
