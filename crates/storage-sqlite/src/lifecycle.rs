//! What happens to incidents besides detection, kept across restarts: each incident's
//! append-only timeline, its notes (acknowledgement, silences that held back its
//! notifications, what was last notified), and the silences themselves.
//!
//! Like incidents, notes and silences are stored as JSON bodies the store does not interpret,
//! beside the columns it filters or orders by.

use rusqlite::{Connection, Transaction, TransactionBehavior, params};
use serde::{Deserialize, Serialize};

use crate::codec::{corrupt, from_sql_int, to_sql_int};
use crate::error::{SqlResultExt, StoreError};

/// One event of an incident's timeline, as appended.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct IncidentEvent {
    /// The incident it happened to.
    pub incident_id: String,
    /// When it happened, in Unix nanoseconds.
    pub at_unix_nanos: u64,
    /// What happened, e.g. `opened`, `acknowledged`, `notified`.
    pub kind: String,
    /// The event's details.
    pub body: serde_json::Value,
}

/// An event as stored: its place in the store's one sequence of events, then the event.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StoredEvent {
    /// Increasing over every event stored: the timeline's order.
    pub sequence: u64,
    /// The event.
    pub event: IncidentEvent,
}

/// The notes kept about one incident, replaced whole when they change.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NoteRecord {
    /// The incident.
    pub incident_id: String,
    /// The notes.
    pub body: serde_json::Value,
}

/// A silence as stored.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SilenceRecord {
    /// Unique id.
    pub id: String,
    /// When it ends, in Unix nanoseconds.
    pub ends_unix_nanos: u64,
    /// The whole silence.
    pub body: serde_json::Value,
}

/// Writes of the lifecycle, applied together.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LifecycleWrite {
    /// Events to append to their incidents' timelines.
    pub events: Vec<IncidentEvent>,
    /// Notes to insert or replace, by incident.
    pub notes: Vec<NoteRecord>,
    /// Silences to insert or replace, by id.
    pub silences: Vec<SilenceRecord>,
}

impl LifecycleWrite {
    /// True when there is nothing to write.
    pub fn is_empty(&self) -> bool {
        self.events.is_empty() && self.notes.is_empty() && self.silences.is_empty()
    }
}

fn encode(what: &'static str, body: &serde_json::Value) -> Result<String, StoreError> {
    serde_json::to_string(body).map_err(|error| StoreError::Encode {
        what,
        message: error.to_string(),
    })
}

fn decode(what: &'static str, text: &str) -> Result<serde_json::Value, StoreError> {
    serde_json::from_str(text).map_err(|error| corrupt(what, error.to_string()))
}

pub(crate) fn save(conn: &mut Connection, write: &LifecycleWrite) -> Result<(), StoreError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .sql()?;
    append_events(&tx, &write.events)?;
    put_notes(&tx, &write.notes)?;
    put_silences(&tx, &write.silences)?;
    tx.commit().sql()
}

fn append_events(tx: &Transaction<'_>, events: &[IncidentEvent]) -> Result<(), StoreError> {
    let mut insert = tx
        .prepare_cached(
            "INSERT INTO incident_events (incident_id, at_ns, kind, body) VALUES (?1, ?2, ?3, ?4)",
        )
        .sql()?;
    for event in events {
        insert
            .execute(params![
                event.incident_id,
                to_sql_int(event.at_unix_nanos),
                event.kind,
                encode("incident event", &event.body)?,
            ])
            .sql()?;
    }
    Ok(())
}

fn put_notes(tx: &Transaction<'_>, notes: &[NoteRecord]) -> Result<(), StoreError> {
    let mut upsert = tx
        .prepare_cached(
            "INSERT INTO incident_notes (incident_id, body) VALUES (?1, ?2)
             ON CONFLICT (incident_id) DO UPDATE SET body = excluded.body",
        )
        .sql()?;
    for note in notes {
        upsert
            .execute(params![
                note.incident_id,
                encode("incident notes", &note.body)?
            ])
            .sql()?;
    }
    Ok(())
}

fn put_silences(tx: &Transaction<'_>, silences: &[SilenceRecord]) -> Result<(), StoreError> {
    let mut upsert = tx
        .prepare_cached(
            "INSERT INTO silences (id, ends_ns, body) VALUES (?1, ?2, ?3)
             ON CONFLICT (id) DO UPDATE SET ends_ns = excluded.ends_ns, body = excluded.body",
        )
        .sql()?;
    for silence in silences {
        upsert
            .execute(params![
                silence.id,
                to_sql_int(silence.ends_unix_nanos),
                encode("silence", &silence.body)?,
            ])
            .sql()?;
    }
    Ok(())
}

/// The timeline of incident `id`, in the order its events were appended.
pub(crate) fn timeline(conn: &Connection, id: &str) -> Result<Vec<StoredEvent>, StoreError> {
    let mut statement = conn
        .prepare_cached(
            "SELECT seq, at_ns, kind, body FROM incident_events WHERE incident_id = ?1
             ORDER BY seq",
        )
        .sql()?;
    let mut rows = statement.query(params![id]).sql()?;
    let mut events = Vec::new();
    while let Some(row) = rows.next().sql()? {
        let body: String = row.get(3).sql()?;
        events.push(StoredEvent {
            sequence: from_sql_int(row.get(0).sql()?),
            event: IncidentEvent {
                incident_id: id.to_owned(),
                at_unix_nanos: from_sql_int(row.get(1).sql()?),
                kind: row.get(2).sql()?,
                body: decode("incident event", &body)?,
            },
        });
    }
    Ok(events)
}

/// The notes of the incidents that have some, at most `limit`, most recently written first.
pub(crate) fn notes(conn: &Connection, limit: usize) -> Result<Vec<NoteRecord>, StoreError> {
    let mut statement = conn
        .prepare_cached("SELECT incident_id, body FROM incident_notes ORDER BY rowid DESC LIMIT ?1")
        .sql()?;
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let mut rows = statement.query(params![limit]).sql()?;
    let mut notes = Vec::new();
    while let Some(row) = rows.next().sql()? {
        let body: String = row.get(1).sql()?;
        notes.push(NoteRecord {
            incident_id: row.get(0).sql()?,
            body: decode("incident notes", &body)?,
        });
    }
    Ok(notes)
}

/// The silences that end at or after `since_unix_nanos`, by end.
pub(crate) fn silences(
    conn: &Connection,
    since_unix_nanos: u64,
) -> Result<Vec<SilenceRecord>, StoreError> {
    let mut statement = conn
        .prepare_cached(
            "SELECT id, ends_ns, body FROM silences WHERE ends_ns >= ?1 ORDER BY ends_ns, id",
        )
        .sql()?;
    let mut rows = statement
        .query(params![to_sql_int(since_unix_nanos)])
        .sql()?;
    let mut silences = Vec::new();
    while let Some(row) = rows.next().sql()? {
        let body: String = row.get(2).sql()?;
        silences.push(SilenceRecord {
            id: row.get(0).sql()?,
            ends_unix_nanos: from_sql_int(row.get(1).sql()?),
            body: decode("silence", &body)?,
        });
    }
    Ok(silences)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::schema::migrate;

    fn database() -> Connection {
        let mut conn = Connection::open_in_memory().expect("opens");
        migrate(&mut conn).expect("migrates");
        conn
    }

    fn event(id: &str, at: u64, kind: &str) -> IncidentEvent {
        IncidentEvent {
            incident_id: id.to_owned(),
            at_unix_nanos: at,
            kind: kind.to_owned(),
            body: json!({"n": at}),
        }
    }

    #[test]
    fn timelines_keep_append_order_per_incident() {
        let mut conn = database();
        let first = LifecycleWrite {
            events: vec![event("INC-1-1", 5, "opened"), event("INC-1-2", 6, "opened")],
            ..LifecycleWrite::default()
        };
        save(&mut conn, &first).expect("saved");
        // Appended later with an earlier time: the timeline keeps the order of appending.
        let second = LifecycleWrite {
            events: vec![event("INC-1-1", 4, "acknowledged")],
            ..LifecycleWrite::default()
        };
        save(&mut conn, &second).expect("saved");

        let timeline = timeline(&conn, "INC-1-1").expect("read");
        let kinds: Vec<&str> = timeline.iter().map(|e| e.event.kind.as_str()).collect();
        assert_eq!(kinds, ["opened", "acknowledged"]);
        assert!(timeline[0].sequence < timeline[1].sequence);
        assert_eq!(timeline[1].event, event("INC-1-1", 4, "acknowledged"));
        assert_eq!(super::timeline(&conn, "INC-9-9").expect("read"), []);
    }

    #[test]
    fn notes_and_silences_are_replaced_whole() {
        let mut conn = database();
        let note = |body| NoteRecord {
            incident_id: "INC-1-1".into(),
            body,
        };
        let silence = |ends, body| SilenceRecord {
            id: "s-1".into(),
            ends_unix_nanos: ends,
            body,
        };
        let write = LifecycleWrite {
            notes: vec![note(json!({"a": 1}))],
            silences: vec![silence(100, json!({"v": 1}))],
            ..LifecycleWrite::default()
        };
        save(&mut conn, &write).expect("saved");
        let write = LifecycleWrite {
            notes: vec![note(json!({"a": 2}))],
            silences: vec![silence(50, json!({"v": 2}))],
            ..LifecycleWrite::default()
        };
        save(&mut conn, &write).expect("saved");

        assert_eq!(notes(&conn, 10).expect("read"), [note(json!({"a": 2}))]);
        assert_eq!(
            silences(&conn, 50).expect("read"),
            [silence(50, json!({"v": 2}))]
        );
        assert_eq!(silences(&conn, 51).expect("read"), []);
    }
}
