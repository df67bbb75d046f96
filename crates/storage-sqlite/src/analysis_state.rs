//! Analysis state that must survive a restart: JSON snapshots by key (baselines, learned
//! models) and incidents by id.

use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};
use serde::{Deserialize, Serialize};

use crate::codec::{corrupt, from_sql_int, to_sql_int};
use crate::error::{SqlResultExt, StoreError};

/// An incident as stored: the fields the store indexes, plus the whole incident as JSON.
///
/// The store does not interpret `body`; it keeps the columns it may filter or order by.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct IncidentRecord {
    /// Unique id, e.g. `INC-1700000000-1`.
    pub id: String,
    /// Lifecycle status, e.g. `active` or `resolved`.
    pub status: String,
    /// When the incident was first detected, in Unix nanoseconds.
    pub first_detected_unix_nanos: u64,
    /// When it last changed, in Unix nanoseconds.
    pub last_updated_unix_nanos: u64,
    /// The full incident.
    pub body: serde_json::Value,
}

pub(crate) fn save_state(
    conn: &mut Connection,
    snapshot: Option<(&str, &serde_json::Value)>,
    incidents: &[IncidentRecord],
) -> Result<(), StoreError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .sql()?;
    if let Some((key, json)) = snapshot {
        put_snapshot(&tx, key, json)?;
    }
    put_incidents(&tx, incidents)?;
    tx.commit().sql()
}

fn put_snapshot(
    tx: &Transaction<'_>,
    key: &str,
    json: &serde_json::Value,
) -> Result<(), StoreError> {
    let text = serde_json::to_string(json).map_err(|error| StoreError::Encode {
        what: "snapshot",
        message: error.to_string(),
    })?;
    tx.prepare_cached(
        "INSERT INTO snapshots (key, json) VALUES (?1, ?2)
         ON CONFLICT (key) DO UPDATE SET json = excluded.json",
    )
    .sql()?
    .execute(params![key, text])
    .sql()?;
    Ok(())
}

fn put_incidents(tx: &Transaction<'_>, incidents: &[IncidentRecord]) -> Result<(), StoreError> {
    let mut upsert = tx
        .prepare_cached(
            "INSERT INTO incidents (id, status, first_detected_ns, last_updated_ns, body)
             VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (id) DO UPDATE SET status = excluded.status,
                 first_detected_ns = excluded.first_detected_ns,
                 last_updated_ns = excluded.last_updated_ns, body = excluded.body",
        )
        .sql()?;
    for incident in incidents {
        let body = serde_json::to_string(&incident.body).map_err(|error| StoreError::Encode {
            what: "incident",
            message: error.to_string(),
        })?;
        upsert
            .execute(params![
                incident.id,
                incident.status,
                to_sql_int(incident.first_detected_unix_nanos),
                to_sql_int(incident.last_updated_unix_nanos),
                body,
            ])
            .sql()?;
    }
    Ok(())
}

pub(crate) fn load_snapshot(
    conn: &Connection,
    key: &str,
) -> Result<Option<serde_json::Value>, StoreError> {
    let text: Option<String> = conn
        .prepare_cached("SELECT json FROM snapshots WHERE key = ?1")
        .sql()?
        .query_row(params![key], |row| row.get(0))
        .optional()
        .sql()?;
    text.map(|text| {
        serde_json::from_str(&text).map_err(|error| corrupt("snapshot", error.to_string()))
    })
    .transpose()
}

/// Every incident, oldest first.
pub(crate) fn load_incidents(conn: &Connection) -> Result<Vec<IncidentRecord>, StoreError> {
    let mut statement = conn
        .prepare_cached(
            "SELECT id, status, first_detected_ns, last_updated_ns, body FROM incidents
             ORDER BY first_detected_ns, id",
        )
        .sql()?;
    read_incidents(statement.query([]).sql()?)
}

/// The incident `id`, if stored.
pub(crate) fn load_incident(
    conn: &Connection,
    id: &str,
) -> Result<Option<IncidentRecord>, StoreError> {
    let mut statement = conn
        .prepare_cached(
            "SELECT id, status, first_detected_ns, last_updated_ns, body FROM incidents
             WHERE id = ?1",
        )
        .sql()?;
    Ok(read_incidents(statement.query(params![id]).sql()?)?.pop())
}

/// At most `limit` incidents of `status`, newest first (by first detection, then id).
pub(crate) fn latest_incidents(
    conn: &Connection,
    status: &str,
    limit: usize,
) -> Result<Vec<IncidentRecord>, StoreError> {
    let mut statement = conn
        .prepare_cached(
            "SELECT id, status, first_detected_ns, last_updated_ns, body FROM incidents
             WHERE status = ?1 ORDER BY first_detected_ns DESC, id DESC LIMIT ?2",
        )
        .sql()?;
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    read_incidents(statement.query(params![status, limit]).sql()?)
}

fn read_incidents(mut rows: rusqlite::Rows<'_>) -> Result<Vec<IncidentRecord>, StoreError> {
    let mut incidents = Vec::new();
    while let Some(row) = rows.next().sql()? {
        let body: String = row.get(4).sql()?;
        incidents.push(IncidentRecord {
            id: row.get(0).sql()?,
            status: row.get(1).sql()?,
            first_detected_unix_nanos: from_sql_int(row.get(2).sql()?),
            last_updated_unix_nanos: from_sql_int(row.get(3).sql()?),
            body: serde_json::from_str(&body)
                .map_err(|error| corrupt("incident", error.to_string()))?,
        });
    }
    Ok(incidents)
}
