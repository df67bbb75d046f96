//! Files of schema 4 (one row per span) keep their spans when opened by this version.

use crate::common::*;
use aiops_storage_sqlite::Store;
use aiops_telemetry_core::{EndpointKey, Span, SpanId, SpanKind, SpanStatus, TimeWindow, TraceId};
use rusqlite::{Connection, params};

/// Schema 4 as released: migrations 1 to 4 applied.
const SCHEMA_4: &str = "
    CREATE TABLE endpoints (
        id INTEGER PRIMARY KEY,
        service TEXT NOT NULL,
        operation TEXT NOT NULL,
        UNIQUE (service, operation)
    );
    CREATE TABLE spans (
        id INTEGER PRIMARY KEY,
        block INTEGER NOT NULL,
        start_ns INTEGER NOT NULL,
        duration_ns INTEGER NOT NULL,
        endpoint_id INTEGER NOT NULL,
        kind INTEGER NOT NULL,
        status INTEGER NOT NULL,
        http_status INTEGER,
        trace_hi INTEGER NOT NULL,
        trace_id BLOB NOT NULL,
        span_id BLOB NOT NULL,
        parent_span_id BLOB,
        attributes TEXT
    );
    CREATE TABLE span_blocks (
        block INTEGER PRIMARY KEY,
        min_start_ns INTEGER NOT NULL,
        max_start_ns INTEGER NOT NULL,
        traces BLOB
    );
    CREATE INDEX span_blocks_by_max_start ON span_blocks (max_start_ns);
    CREATE TABLE rollups (
        endpoint_id INTEGER NOT NULL,
        minute INTEGER NOT NULL,
        count INTEGER NOT NULL,
        errors INTEGER NOT NULL,
        latency_sum_ns INTEGER NOT NULL,
        latency_max_ns INTEGER NOT NULL,
        histogram BLOB NOT NULL,
        PRIMARY KEY (endpoint_id, minute)
    ) WITHOUT ROWID;
    CREATE INDEX rollups_by_minute ON rollups (minute);
    CREATE TABLE snapshots (key TEXT PRIMARY KEY, json TEXT NOT NULL);
    CREATE TABLE incidents (
        id TEXT PRIMARY KEY,
        status TEXT NOT NULL,
        first_detected_ns INTEGER NOT NULL,
        last_updated_ns INTEGER NOT NULL,
        body TEXT NOT NULL
    );
    PRAGMA user_version = 4;";

/// Writes `spans` as the schema-4 writer did, under ids `ids` (gaps are what retention
/// leaves), with block directory rows but no trace filters (`traces` NULL, as after
/// migration 4).
fn write_schema_4(conn: &Connection, spans: &[Span], ids: &[i64]) {
    conn.execute_batch(SCHEMA_4).expect("creates schema 4");
    conn.execute_batch("BEGIN").expect("begins");
    for (span, id) in spans.iter().zip(ids) {
        conn.execute(
            "INSERT INTO endpoints (service, operation) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
            params![span.service.as_str(), span.operation.as_str()],
        )
        .expect("interns");
        let endpoint: i64 = conn
            .query_row(
                "SELECT id FROM endpoints WHERE service = ?1 AND operation = ?2",
                params![span.service.as_str(), span.operation.as_str()],
                |row| row.get(0),
            )
            .expect("endpoint");
        let attributes = (!span.attributes.is_empty())
            .then(|| serde_json::to_string(&span.attributes).expect("json"));
        let kind = match span.kind {
            SpanKind::Server => 0,
            SpanKind::Client => 1,
            SpanKind::Internal => 2,
            SpanKind::Producer => 3,
            SpanKind::Consumer => 4,
        };
        let status = match span.status {
            SpanStatus::Unset => 0,
            SpanStatus::Ok => 1,
            SpanStatus::Error => 2,
        };
        let trace = span.trace_id.as_bytes();
        let start = span.start_unix_nanos as i64;
        conn.execute(
            "INSERT INTO spans VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
            params![
                id,
                id >> 11,
                start,
                span.duration_nanos as i64,
                endpoint,
                kind,
                status,
                span.http_status,
                i64::from_be_bytes(trace[..8].try_into().expect("8 bytes")),
                &trace[..],
                &span.span_id.as_bytes()[..],
                span.parent_span_id
                    .as_ref()
                    .map(|id| id.as_bytes().to_vec()),
                attributes,
            ],
        )
        .expect("inserts span");
        conn.execute(
            "INSERT INTO span_blocks (block, min_start_ns, max_start_ns) VALUES (?1, ?2, ?2)
             ON CONFLICT (block) DO UPDATE SET
                 min_start_ns = min(min_start_ns, excluded.min_start_ns),
                 max_start_ns = max(max_start_ns, excluded.max_start_ns)",
            params![id >> 11, start],
        )
        .expect("widens block");
    }
    conn.execute_batch("COMMIT").expect("commits");
}

fn old_spans(n: u64) -> Vec<Span> {
    let parent = SpanId::random();
    (0..n)
        .map(|i| {
            let trace = TraceId::from_bytes(((i / 3) as u128 + 1).to_be_bytes());
            let mut s = span(
                trace,
                ["/checkout", "/payment", "/inventory"][(i % 3) as usize],
                T0 + i * MS,
                (i % 97 + 1) * MS,
            );
            if i % 3 != 0 {
                s = s.with_parent(parent);
            }
            if i % 11 == 0 {
                s.http_status = None;
                s = s.with_status(SpanStatus::Error).with_kind(SpanKind::Client);
            }
            if i % 5 == 0 {
                s = s
                    .with_attribute("service.version", "0.1.0")
                    .with_attribute("note", "a \"quoted\"\n ✓");
            }
            s
        })
        .collect()
}

fn chunks(conn: &Connection) -> Vec<(i64, i64)> {
    conn.prepare("SELECT id, count FROM span_chunks ORDER BY id")
        .expect("prepares")
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
        .expect("queries")
        .collect::<rusqlite::Result<_>>()
        .expect("reads")
}

#[test]
fn spans_of_schema_4_are_converted_into_chunks_once() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("aiops.db");
    let spans = old_spans(7_000);
    // Ids from 1 with a gap inside block 1 and an emptied block 2, as retention leaves them.
    let ids: Vec<i64> = (1..=spans.len() as i64)
        .map(|i| if i < 3_000 { i } else { i + 2_500 })
        .collect();
    let raw = Connection::open(&path).expect("opens raw");
    write_schema_4(&raw, &spans, &ids);

    let store = Store::open(config(&path)).expect("migrates");
    assert_eq!(store.span_count(), Ok(spans.len() as u64));
    let version: i64 = raw
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .expect("version");
    assert_eq!(version, 7);
    let old_table: i64 = raw
        .query_row(
            "SELECT count(*) FROM sqlite_schema WHERE name = 'spans'",
            [],
            |row| row.get(0),
        )
        .expect("schema");
    assert_eq!(old_table, 0, "the per-span table is dropped");
    let converted = chunks(&raw);
    for (id, count) in &converted {
        assert_eq!(
            id >> 11,
            (id + count - 1) >> 11,
            "chunk {id}+{count} straddles"
        );
    }
    assert_eq!(
        converted.iter().map(|(_, count)| count).sum::<i64>(),
        spans.len() as i64
    );

    // Every span is found, with every field.
    for trace in [1u128, 2, 1_000, 2_333] {
        let trace_id = TraceId::from_bytes(trace.to_be_bytes());
        let expected: Vec<Span> = spans
            .iter()
            .filter(|s| s.trace_id == trace_id)
            .cloned()
            .collect();
        assert_eq!(store.trace(trace_id), Ok(sorted(expected)), "trace {trace}");
    }
    let window = TimeWindow::new(T0 + 2_500 * MS, T0 + 4_000 * MS);
    let stats = store.window_stats(window, 50.0).expect("queries");
    let payment = stats
        .iter()
        .find(|(key, _)| key == &EndpointKey::new("shop", "/payment"))
        .expect("payment")
        .1;
    let expected: Vec<&Span> = spans
        .iter()
        .filter(|s| s.operation == "/payment" && window.contains(s.start_unix_nanos))
        .collect();
    assert_eq!(payment.count, expected.len() as u64);
    assert_eq!(
        payment.errors,
        expected.iter().filter(|s| s.is_error()).count() as u64
    );
    assert_eq!(
        payment.timeouts,
        expected.iter().filter(|s| s.duration_ms() > 50.0).count() as u64
    );

    // New spans go after the converted ones; opening again migrates nothing.
    let late = span(TraceId::random(), "/payment", T0, MS);
    record_all(&store, vec![late.clone()]);
    store.shutdown().expect("shuts down");
    drop(store);
    let before = chunks(&raw);
    let store = Store::open(config(&path)).expect("reopens");
    assert_eq!(chunks(&raw), before);
    assert_eq!(store.span_count(), Ok(spans.len() as u64 + 1));
    assert_eq!(store.trace(late.trace_id), Ok(vec![late]));
}
