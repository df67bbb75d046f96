//! Log records and changes in SQLite: the rows, their queries and their retention.
//!
//! A log record is one row of `logs` (the writer appends them in transactions, see
//! `log_writer`), found by trace through a partial index on the trace id, or by time. A change
//! is one row of `changes`, written one at a time as changes are rare.

use aiops_telemetry_core::{
    Attributes, Change, ChangeKind, ChangeSource, LogRecord, LogSeverity, SpanId, SpanText, TraceId,
};
use rusqlite::{Connection, Row, ToSql, TransactionBehavior, params};
use serde::{Deserialize, Serialize};

use crate::codec::{corrupt, from_sql_int, to_sql_int};
use crate::error::{SqlResultExt, StoreError};

/// Which log records [`Store::logs`](crate::Store::logs) returns.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LogQuery {
    /// Only the records of this trace (then oldest first; otherwise newest first).
    pub trace_id: Option<TraceId>,
    /// Only the records of this service.
    pub service: Option<String>,
    /// Only records at or after this time, in Unix nanoseconds.
    pub since_unix_nanos: Option<u64>,
    /// Only records at least this severe.
    pub min_severity: Option<LogSeverity>,
    /// At most this many records.
    pub limit: usize,
}

/// A stored [`Change`] and the id the store gave it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChangeRecord {
    /// The row id, increasing in the order changes were stored.
    pub id: i64,
    /// The change.
    pub change: Change,
}

const INSERT_LOG: &str = "INSERT INTO logs \
     (time_ns, service, severity, body, trace_id, span_id, attributes) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";

/// Appends `parts`, in order, in one immediate transaction.
pub(crate) fn insert_logs(conn: &mut Connection, parts: &[&[LogRecord]]) -> Result<(), StoreError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .sql()?;
    {
        let mut insert = tx.prepare_cached(INSERT_LOG).sql()?;
        for record in parts.iter().flat_map(|part| part.iter()) {
            let attributes = if record.attributes.is_empty() {
                None
            } else {
                Some(serde_json::to_string(&record.attributes).map_err(|error| {
                    StoreError::Encode {
                        what: "log attributes",
                        message: error.to_string(),
                    }
                })?)
            };
            insert
                .execute(params![
                    to_sql_int(record.time_unix_nanos),
                    record.service.as_str(),
                    i64::from(record.severity.0),
                    record.body,
                    record.trace_id.as_ref().map(|id| &id.as_bytes()[..]),
                    record.span_id.as_ref().map(|id| &id.as_bytes()[..]),
                    attributes,
                ])
                .sql()?;
        }
    }
    tx.commit().sql()
}

/// The records `query` selects.
pub(crate) fn logs(conn: &Connection, query: &LogQuery) -> Result<Vec<LogRecord>, StoreError> {
    let mut sql = String::from(
        "SELECT time_ns, service, severity, body, trace_id, span_id, attributes FROM logs",
    );
    let mut clauses = Vec::new();
    let mut values: Vec<Box<dyn ToSql>> = Vec::new();
    if let Some(trace) = query.trace_id {
        clauses.push("trace_id = ?");
        values.push(Box::new(trace.as_bytes().to_vec()));
    }
    if let Some(service) = &query.service {
        clauses.push("service = ?");
        values.push(Box::new(service.clone()));
    }
    if let Some(since) = query.since_unix_nanos {
        clauses.push("time_ns >= ?");
        values.push(Box::new(to_sql_int(since)));
    }
    if let Some(severity) = query.min_severity {
        clauses.push("severity >= ?");
        values.push(Box::new(i64::from(severity.0)));
    }
    if !clauses.is_empty() {
        sql.push_str(" WHERE ");
        sql.push_str(&clauses.join(" AND "));
    }
    sql.push_str(if query.trace_id.is_some() {
        " ORDER BY time_ns, id LIMIT ?"
    } else {
        " ORDER BY time_ns DESC, id DESC LIMIT ?"
    });
    values.push(Box::new(i64::try_from(query.limit).unwrap_or(i64::MAX)));
    let mut statement = conn.prepare_cached(&sql).sql()?;
    let mut rows = statement
        .query(rusqlite::params_from_iter(values.iter().map(|v| &**v)))
        .sql()?;
    let mut records = Vec::new();
    while let Some(row) = rows.next().sql()? {
        records.push(log_from_row(row)?);
    }
    Ok(records)
}

fn log_from_row(row: &Row<'_>) -> Result<LogRecord, StoreError> {
    let read = |error: rusqlite::Error| corrupt("log row", error.to_string());
    let trace: Option<Vec<u8>> = row.get(4).map_err(read)?;
    let span: Option<Vec<u8>> = row.get(5).map_err(read)?;
    let attributes: Option<String> = row.get(6).map_err(read)?;
    let severity: i64 = row.get(2).map_err(read)?;
    let service: String = row.get(1).map_err(read)?;
    let id_error = |error: aiops_telemetry_core::IdError| corrupt("log ids", error.to_string());
    Ok(LogRecord {
        service: SpanText::from(service),
        time_unix_nanos: from_sql_int(row.get(0).map_err(read)?),
        severity: LogSeverity(u8::try_from(severity).unwrap_or(0)),
        body: row.get(3).map_err(read)?,
        trace_id: trace
            .map(|bytes| TraceId::from_slice(&bytes))
            .transpose()
            .map_err(id_error)?,
        span_id: span
            .map(|bytes| SpanId::from_slice(&bytes))
            .transpose()
            .map_err(id_error)?,
        attributes: attributes
            .map(|text| serde_json::from_str::<Attributes>(&text))
            .transpose()
            .map_err(|error| corrupt("log attributes", error.to_string()))?
            .unwrap_or_default(),
    })
}

/// Deletes up to `?2` records older than `?1`, the oldest first, found through the time index.
const PURGE_LOGS: &str = "DELETE FROM logs WHERE id IN \
     (SELECT id FROM logs WHERE time_ns < ?1 ORDER BY time_ns LIMIT ?2)";

/// Deletes the records logged before `cutoff`, `batch` per transaction; returns how many.
pub(crate) fn purge_logs(
    conn: &mut Connection,
    cutoff_unix_nanos: u64,
    batch: usize,
) -> Result<u64, StoreError> {
    let batch = batch.max(1);
    let mut deleted = 0;
    loop {
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .sql()?;
        let removed = tx
            .prepare_cached(PURGE_LOGS)
            .sql()?
            .execute(params![
                to_sql_int(cutoff_unix_nanos),
                i64::try_from(batch).unwrap_or(i64::MAX)
            ])
            .sql()?;
        tx.commit().sql()?;
        deleted += removed as u64;
        if removed < batch {
            return Ok(deleted);
        }
    }
}

/// How many log records are stored.
pub(crate) fn log_count(conn: &Connection) -> Result<u64, StoreError> {
    conn.query_row("SELECT count(*) FROM logs", [], |row| row.get(0))
        .map(from_sql_int)
        .sql()
}

const INSERT_CHANGE: &str = "INSERT INTO changes \
     (time_ns, service, kind, source, version, previous_version, description) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";

/// Stores `change`; returns it with its id.
pub(crate) fn insert_change(
    conn: &Connection,
    change: &Change,
) -> Result<ChangeRecord, StoreError> {
    conn.prepare_cached(INSERT_CHANGE)
        .sql()?
        .execute(params![
            to_sql_int(change.time_unix_nanos),
            change.service.as_str(),
            change.kind.as_str(),
            source_name(change.source),
            change.version.as_deref(),
            change.previous_version.as_deref(),
            change.description,
        ])
        .sql()?;
    Ok(ChangeRecord {
        id: conn.last_insert_rowid(),
        change: change.clone(),
    })
}

/// At most `limit` changes (of `service`, at or after `since`), newest first.
pub(crate) fn changes(
    conn: &Connection,
    service: Option<&str>,
    since_unix_nanos: Option<u64>,
    limit: usize,
) -> Result<Vec<ChangeRecord>, StoreError> {
    let mut statement = conn
        .prepare_cached(
            "SELECT id, time_ns, service, kind, source, version, previous_version, description \
             FROM changes WHERE (?1 IS NULL OR service = ?1) AND time_ns >= ?2 \
             ORDER BY time_ns DESC, id DESC LIMIT ?3",
        )
        .sql()?;
    let mut rows = statement
        .query(params![
            service,
            to_sql_int(since_unix_nanos.unwrap_or(0)),
            i64::try_from(limit).unwrap_or(i64::MAX)
        ])
        .sql()?;
    let mut changes = Vec::new();
    while let Some(row) = rows.next().sql()? {
        changes.push(change_from_row(row)?);
    }
    Ok(changes)
}

fn change_from_row(row: &Row<'_>) -> Result<ChangeRecord, StoreError> {
    let read = |error: rusqlite::Error| corrupt("change row", error.to_string());
    let kind: String = row.get(3).map_err(read)?;
    let source: String = row.get(4).map_err(read)?;
    let service: String = row.get(2).map_err(read)?;
    let text = |index| -> Result<Option<SpanText>, StoreError> {
        Ok(row
            .get::<_, Option<String>>(index)
            .map_err(read)?
            .map(SpanText::from))
    };
    Ok(ChangeRecord {
        id: row.get(0).map_err(read)?,
        change: Change {
            service: SpanText::from(service),
            kind: ChangeKind::parse(&kind)
                .ok_or_else(|| corrupt("change kind", format!("unknown kind {kind:?}")))?,
            time_unix_nanos: from_sql_int(row.get(1).map_err(read)?),
            version: text(5)?,
            previous_version: text(6)?,
            description: row.get(7).map_err(read)?,
            source: match source.as_str() {
                "reported" => ChangeSource::Reported,
                "observed" => ChangeSource::Observed,
                other => {
                    return Err(corrupt(
                        "change source",
                        format!("unknown source {other:?}"),
                    ));
                }
            },
        },
    })
}

const fn source_name(source: ChangeSource) -> &'static str {
    match source {
        ChangeSource::Reported => "reported",
        ChangeSource::Observed => "observed",
    }
}

#[cfg(test)]
mod tests {
    use crate::schema::query_plan;

    #[test]
    fn trace_and_time_queries_use_their_indexes() {
        let by_trace = query_plan(
            "SELECT time_ns FROM logs WHERE trace_id = ?1 ORDER BY time_ns, id LIMIT 10",
        );
        assert!(by_trace.contains("logs_by_trace"), "{by_trace}");
        let recent = query_plan(
            "SELECT time_ns FROM logs WHERE time_ns >= ?1 ORDER BY time_ns DESC, id DESC LIMIT 10",
        );
        assert!(recent.contains("logs_by_time"), "{recent}");
        let purge = query_plan(super::PURGE_LOGS);
        assert!(purge.contains("logs_by_time"), "{purge}");
    }
}
