//! Back-pressure instead of loss: admission of whole batches, a writer that waits out another
//! process's lock, and readers that such a lock does not hold up.

use std::time::Duration;

use crate::common::*;
use aiops_storage_sqlite::{Store, StoreConfig};
use aiops_telemetry_core::{Collector, RecordOutcome, Span, TraceId};

fn spans(n: usize) -> Vec<Span> {
    (0..n)
        .map(|i| span(TraceId::random(), "/health", T0 + i as u64 * MS, MS))
        .collect()
}

/// A store whose writer commits only when asked (a flush), with room for `capacity` spans.
fn held_store(path: impl Into<std::path::PathBuf>, capacity: usize) -> Store {
    Store::open(StoreConfig {
        queue_capacity: capacity,
        batch_max_rows: 100_000,
        batch_max_delay: Duration::from_secs(3600),
        ..StoreConfig::new(path)
    })
    .expect("opens")
}

#[test]
fn admission_holds_room_for_a_whole_batch_or_none() {
    let store = held_store(StoreConfig::MEMORY, 10);
    let writer = store.writer();

    let admission = writer.admit(8).expect("room for 8");
    assert_eq!(
        writer.stats().queued,
        8,
        "the room is held before the spans come"
    );
    assert!(
        writer.admit(3).is_none(),
        "3 more do not fit: none are taken"
    );
    assert_eq!(admission.record(spans(8)), RecordOutcome::accepted(8));
    assert_eq!(writer.stats().queued, 8);

    // An admission dropped unused gives its room back.
    drop(writer.admit(2).expect("room for 2"));
    assert_eq!(writer.stats().queued, 8);
    // Fewer spans than admitted: the rest of the room is given back.
    let admission = writer.admit(2).expect("room for 2");
    assert_eq!(admission.record(spans(1)), RecordOutcome::accepted(1));
    assert_eq!(writer.stats().queued, 9);

    writer.flush().expect("flushes");
    assert_eq!(store.span_count(), Ok(9));
    assert_eq!(writer.stats().dropped, 0, "admission never drops");
}

#[test]
fn a_batch_larger_than_the_queue_is_admitted_whole_once_the_queue_is_half_empty() {
    let store = held_store(StoreConfig::MEMORY, 10);
    let writer = store.writer();
    assert_eq!(writer.record_batch(spans(6)), RecordOutcome::accepted(6));
    assert!(
        writer.admit(25).is_none(),
        "the queue is more than half full"
    );

    writer.flush().expect("flushes");
    let admission = writer.admit(25).expect("an empty queue admits it");
    assert_eq!(admission.record(spans(25)), RecordOutcome::accepted(25));
    assert_eq!(writer.stats().queued, 25);
    assert_eq!(
        writer.record_batch(spans(1)),
        RecordOutcome::dropped(1),
        "nothing else fits until it is written"
    );
    writer.flush().expect("flushes");
    assert_eq!(store.span_count(), Ok(31));
}

#[test]
fn admission_after_shutdown_is_refused() {
    let store = held_store(StoreConfig::MEMORY, 10);
    let writer = store.writer();
    store.shutdown().expect("shuts down");
    assert!(writer.admit(1).is_none());
}

/// Another process's connection to `path` holding the write lock until dropped.
fn lock_database(path: &std::path::Path) -> rusqlite::Connection {
    let other = rusqlite::Connection::open(path).expect("opens a second connection");
    other
        .execute_batch(
            "BEGIN EXCLUSIVE; CREATE TABLE IF NOT EXISTS held (x); INSERT INTO held VALUES (1);",
        )
        .expect("takes the write lock");
    other
}

#[test]
fn the_writer_waits_out_a_locked_database_and_loses_nothing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("aiops.db");
    let store = Store::open(StoreConfig {
        busy_timeout: Duration::from_millis(20),
        batch_max_delay: Duration::from_millis(5),
        ..StoreConfig::new(&path)
    })
    .expect("opens");
    let writer = store.writer();
    let other = lock_database(&path);

    assert_eq!(
        writer.record_batch(spans(500)),
        RecordOutcome::accepted(500)
    );
    // The writer tries, finds the database locked well past its busy timeout, and tries again.
    while writer.stats().busy_retries < 3 {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(writer.stats().blocked);
    assert_eq!(writer.stats().written, 0);
    other.execute_batch("COMMIT").expect("releases the lock");

    writer.flush().expect("flushes once the lock is gone");
    let stats = writer.stats();
    assert_eq!((stats.written, stats.failed, stats.dropped), (500, 0, 0));
    assert!(!stats.blocked);
    assert_eq!(store.span_count(), Ok(500));
}

#[test]
fn reads_are_not_held_up_by_another_process_s_write_transaction() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("aiops.db");
    // With a busy timeout this short, a read that had to wait for the lock would fail.
    let store = Store::open(StoreConfig {
        busy_timeout: Duration::from_millis(1),
        ..config(&path)
    })
    .expect("opens");
    let recorded = spans(3);
    let trace = recorded[0].trace_id;
    record_all(&store, recorded.clone());

    let other = lock_database(&path);
    assert_eq!(store.trace(trace), Ok(vec![recorded[0].clone()]));
    assert_eq!(store.span_count(), Ok(3));
    assert!(store.load_incidents().is_ok());
    drop(other);
}

#[test]
fn a_second_store_on_the_same_file_is_refused_until_the_first_shuts_down() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("aiops.db");
    let first = Store::open(config(&path)).expect("opens");

    let second = Store::open(config(&path));
    let expected = format!(
        "storage: the database {} is in use by another aiops process (it holds {}.lock); stop it, or give this one another --db",
        path.display(),
        path.display()
    );
    assert_eq!(second.map(|_| ()).map_err(|e| e.to_string()), Err(expected));

    first.shutdown().expect("shuts down");
    let second = Store::open(config(&path)).expect("opens once the first let go");
    drop(second);
    drop(first);
    Store::open(config(&path)).expect("opens once both are dropped");
}

#[test]
fn a_deleted_or_replaced_database_file_is_reported() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("aiops.db");
    let store = Store::open(config(&path)).expect("opens");
    assert_eq!(store.check_file(), Ok(()));

    std::fs::rename(&path, dir.path().join("moved.db")).expect("moves the file away");
    assert_eq!(
        store.check_file().map_err(|e| e.to_string()),
        Err(format!(
            "storage: the database file {} was deleted while open; restart to use the file now there",
            path.display()
        ))
    );
    std::fs::write(&path, b"").expect("a new file under the old name");
    assert!(
        store
            .check_file()
            .is_err_and(|e| e.to_string().contains("was replaced while open"))
    );
    assert_eq!(
        Store::open(config(StoreConfig::MEMORY))
            .expect("opens")
            .check_file(),
        Ok(())
    );
}

#[test]
fn more_distinct_endpoints_than_the_writer_caches_are_all_stored_under_their_own_names() {
    let store = Store::open(config(StoreConfig::MEMORY)).expect("opens");
    let spans: Vec<Span> = (0..12_500u64)
        .map(|n| span(TraceId::random(), &format!("/item/{n}"), T0 + n * MS, MS))
        .collect();
    record_all(&store, spans[..6_000].to_vec());
    record_all(&store, spans[6_000..].to_vec());
    record_all(
        &store,
        spans[..10]
            .iter()
            .map(|s| span(s.trace_id, &s.operation, s.start_unix_nanos + 1, MS))
            .collect(),
    );

    for s in spans.iter().step_by(499).chain(&spans[..10]) {
        let stored = store.trace(s.trace_id).expect("reads");
        assert!(
            stored.iter().all(|stored| stored.operation == s.operation),
            "{}",
            s.operation
        );
        assert!(!stored.is_empty());
    }
    assert_eq!(store.span_count(), Ok(12_510));
}
