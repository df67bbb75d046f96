//! The span writer: durability, shutdown, back-pressure.

use std::sync::Arc;
use std::time::Duration;

use crate::common::*;
use aiops_storage_sqlite::{Store, StoreConfig, WriterStats};
use aiops_telemetry_core::{Collector, RecordOutcome, Span, SpanId, SpanStatus, TraceId};

#[test]
fn spans_survive_closing_and_reopening() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("aiops.db");
    let trace = TraceId::random();
    let original = vec![
        span(trace, "/checkout", T0, 250 * MS)
            .with_attribute("service.version", "1.2.3")
            .with_status(SpanStatus::Ok),
        span(trace, "/payment", T0 + MS, 200 * MS)
            .with_parent(SpanId::random())
            .with_http_status(503),
    ];
    {
        let store = Store::open(config(&path)).expect("opens");
        record_all(&store, original.clone());
        store.shutdown().expect("shuts down");
    }
    let reopened = Store::open(config(&path)).expect("reopens");
    assert_eq!(reopened.span_count(), Ok(2));
    assert_eq!(reopened.trace(trace), Ok(sorted(original)));
}

#[test]
fn shutdown_loses_nothing_that_was_recorded() {
    for in_memory in [false, true] {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = if in_memory {
            StoreConfig::MEMORY.into()
        } else {
            dir.path().join("aiops.db")
        };
        // Nothing would commit on its own for an hour: only shutdown's drain can save them.
        let store = Store::open(StoreConfig {
            batch_max_rows: 700,
            batch_max_delay: Duration::from_secs(3600),
            ..StoreConfig::new(path)
        })
        .expect("opens");
        let writer = store.writer();
        let mut accepted = 0;
        for batch in 0..20 {
            let spans: Vec<Span> = (0..250)
                .map(|i| {
                    span(
                        TraceId::random(),
                        "/health",
                        T0 + (batch * 250 + i) * MS,
                        MS,
                    )
                })
                .collect();
            accepted += writer.record_batch(spans).accepted;
        }
        assert_eq!(accepted, 5_000);
        store.shutdown().expect("shuts down");
        assert_eq!(store.span_count(), Ok(5_000), "in memory: {in_memory}");
        let stats = writer.stats();
        assert_eq!((stats.written, stats.queued, stats.dropped), (5_000, 0, 0));
    }
}

#[test]
fn a_full_queue_drops_and_counts_without_blocking_the_caller() {
    let dir = tempfile::tempdir().expect("temp dir");
    for path in [dir.path().join("aiops.db"), StoreConfig::MEMORY.into()] {
        let store = Store::open(StoreConfig {
            queue_capacity: 10,
            batch_max_rows: 1_000,
            batch_max_delay: Duration::from_secs(3600),
            ..StoreConfig::new(path)
        })
        .expect("opens");
        let writer = store.writer();
        let spans = |n: usize| -> Vec<Span> {
            (0..n)
                .map(|_| span(TraceId::random(), "/health", T0, MS))
                .collect()
        };

        // The writer holds these for an hour, so the queue stays full: the calls below return
        // at once instead of waiting for room.
        assert_eq!(writer.record_batch(spans(8)), RecordOutcome::accepted(8));
        assert_eq!(
            writer.record_batch(spans(5)),
            RecordOutcome {
                accepted: 2,
                dropped: 3
            }
        );
        assert_eq!(writer.record(spans(1).remove(0)), RecordOutcome::dropped(1));
        assert_eq!(
            writer.stats(),
            WriterStats {
                queued: 10,
                written: 0,
                dropped: 4,
                failed: 0,
                busy_retries: 0,
                blocked: false,
                failing: false,
            }
        );

        writer.flush().expect("flushes");
        assert_eq!(writer.stats().queued, 0);
        assert_eq!(writer.stats().written, 10);
        assert_eq!(store.span_count(), Ok(10));
        // Room again.
        assert_eq!(writer.record_batch(spans(3)), RecordOutcome::accepted(3));
    }
}

#[test]
fn spans_recorded_after_shutdown_are_dropped_and_counted() {
    on_each_backend(|backend| {
        let writer = backend.store.writer();
        backend.store.shutdown().expect("shuts down");
        let outcome = writer.record(span(TraceId::random(), "/health", T0, MS));
        assert_eq!(outcome, RecordOutcome::dropped(1), "{}", backend.name);
        assert_eq!(writer.stats().dropped, 1);
        assert_eq!(writer.flush(), Ok(()), "nothing accepted is pending");
        assert_eq!(backend.store.shutdown(), Ok(()), "shutdown is idempotent");
    });
}

#[test]
fn concurrent_recorders_and_readers_see_one_database() {
    on_each_backend(|backend| {
        let store = &backend.store;
        let writer: Arc<dyn Collector> = store.writer();
        std::thread::scope(|scope| {
            for thread in 0..4u64 {
                let writer = Arc::clone(&writer);
                scope.spawn(move || {
                    for batch in 0..25u64 {
                        let start = T0 + (thread * 100 + batch) * SECOND;
                        let spans = (0..40)
                            .map(|i| span(TraceId::random(), "/inventory", start + i * MS, 3 * MS))
                            .collect();
                        assert_eq!(writer.record_batch(spans).dropped, 0);
                    }
                });
            }
            scope.spawn(|| {
                for _ in 0..20 {
                    let window = aiops_telemetry_core::TimeWindow::new(T0, T0 + 1000 * SECOND);
                    store
                        .window_stats(window, 1000.0)
                        .expect("reads while writing");
                }
            });
        });
        writer.flush().expect("flushes");
        assert_eq!(store.span_count(), Ok(4 * 25 * 40), "{}", backend.name);
    });
}

#[test]
fn a_memory_store_is_private_to_its_handle() {
    let first = memory_store();
    let second = memory_store();
    record_all(
        &first.store,
        vec![span(TraceId::random(), "/health", T0, MS)],
    );
    assert_eq!(first.store.span_count(), Ok(1));
    assert_eq!(second.store.span_count(), Ok(0));
}

#[test]
fn chunks_end_at_block_boundaries_and_every_span_is_found() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("aiops.db");
    let store = Store::open(StoreConfig {
        batch_max_rows: 5_000,
        batch_max_delay: Duration::from_secs(3600),
        ..StoreConfig::new(&path)
    })
    .expect("opens");
    // One transaction of 5,000 spans from id 1, then one of 100.
    let first: Vec<Span> = (0..5_000)
        .map(|i| span(TraceId::random(), "/health", T0 + i * MS, MS))
        .collect();
    let second: Vec<Span> = (0..100)
        .map(|i| span(TraceId::random(), "/health", T0 + (5_000 + i) * MS, MS))
        .collect();
    record_all(&store, first.clone());
    record_all(&store, second.clone());
    let raw = rusqlite::Connection::open(&path).expect("opens raw");
    let chunks: Vec<(i64, i64)> = raw
        .prepare("SELECT id, count FROM span_chunks ORDER BY id")
        .expect("prepares")
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
        .expect("queries")
        .collect::<rusqlite::Result<_>>()
        .expect("reads");
    assert_eq!(
        chunks,
        vec![(1, 2_047), (2_048, 2_048), (4_096, 905), (5_001, 100)]
    );
    for s in first.iter().chain(&second).step_by(97) {
        assert_eq!(store.trace(s.trace_id), Ok(vec![s.clone()]));
    }
    // The spans on either side of each boundary.
    for index in [2_046, 2_047, 4_094, 4_095, 4_999] {
        let s = &first[index];
        assert_eq!(store.trace(s.trace_id), Ok(vec![s.clone()]), "span {index}");
    }
    assert_eq!(store.span_count(), Ok(5_100));
}
