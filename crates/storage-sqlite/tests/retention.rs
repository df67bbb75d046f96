//! Retention and rollups: what is old goes, spans and their rollups alike; what is summarised
//! stays consistent.

use crate::common::*;
use aiops_storage_sqlite::{MinuteRollup, Store};
use aiops_telemetry_core::{EndpointKey, Span, TimeWindow, TraceId};
use rand::Rng;

const MINUTE: u64 = 60 * SECOND;
/// A minute boundary, so that N minutes of traffic fill exactly N rollup minutes.
const BASE: u64 = T0 - T0 % MINUTE;

/// `n` spans evenly over `minutes` minutes from BASE, 10% failing, shuffled a little.
fn traffic(n: u64, minutes: u64) -> Vec<Span> {
    let mut rng = rand::rng();
    let mut spans: Vec<Span> = (0..n)
        .map(|i| {
            let start = BASE + i * minutes * MINUTE / n;
            let operation = if i % 3 == 0 { "/payment" } else { "/inventory" };
            let s = span(
                TraceId::random(),
                operation,
                start,
                rng.random_range(MS..900 * MS),
            );
            if rng.random_bool(0.1) {
                s.with_http_status(503)
            } else {
                s
            }
        })
        .collect();
    // Late arrivals: swap some neighbours.
    for i in (1..spans.len()).step_by(7) {
        spans.swap(i - 1, i);
    }
    spans
}

#[test]
fn retention_removes_only_what_is_old() {
    on_each_backend(|backend| {
        let store = &backend.store;
        let spans = traffic(9_000, 30);
        record_all(store, spans.clone());
        let cutoff = BASE + 12 * MINUTE + 7 * SECOND;
        let old = spans.iter().filter(|s| s.start_unix_nanos < cutoff).count() as u64;

        assert_eq!(store.purge_before(cutoff, 250), Ok(old), "{}", backend.name);
        assert_eq!(store.span_count(), Ok(spans.len() as u64 - old));

        let before = TimeWindow::new(BASE, cutoff);
        assert_eq!(store.window_stats(before, 1e9), Ok(vec![]));
        let after = TimeWindow::new(cutoff, BASE + 31 * MINUTE);
        let kept: u64 = store
            .window_stats(after, 1e9)
            .expect("queries")
            .iter()
            .map(|(_, stats)| stats.count)
            .sum();
        assert_eq!(kept, spans.len() as u64 - old);
        let old_trace = spans
            .iter()
            .find(|s| s.start_unix_nanos < cutoff)
            .expect("some old");
        assert_eq!(store.trace(old_trace.trace_id), Ok(vec![]));
        let new_trace = spans
            .iter()
            .find(|s| s.start_unix_nanos >= cutoff)
            .expect("some new");
        assert_eq!(store.trace(new_trace.trace_id).map(|t| t.len()), Ok(1));

        // Idempotent, and the writer carries on afterwards.
        assert_eq!(store.purge_before(cutoff, 250), Ok(0));
        record_all(
            store,
            vec![span(TraceId::random(), "/health", BASE + MINUTE, MS)],
        );
        assert_eq!(store.span_count(), Ok(spans.len() as u64 - old + 1));
        assert_eq!(
            store.purge_before(u64::MAX, 1_000),
            Ok(spans.len() as u64 - old + 1)
        );
        assert_eq!(store.span_count(), Ok(0));
    });
}

/// Rollups computed the obvious way from the spans.
fn expected_rollup(
    spans: &[Span],
    endpoint: &EndpointKey,
    minute: u64,
) -> (u64, u64, u64, u64, Vec<u64>) {
    let mut latencies: Vec<u64> = Vec::new();
    let mut errors = 0;
    for s in spans
        .iter()
        .filter(|s| &s.endpoint() == endpoint && s.start_unix_nanos / MINUTE * MINUTE == minute)
    {
        latencies.push(s.duration_nanos);
        errors += u64::from(s.is_error());
    }
    latencies.sort_unstable();
    let max = latencies.last().copied().unwrap_or(0);
    (
        latencies.len() as u64,
        errors,
        latencies.iter().sum(),
        max,
        latencies,
    )
}

fn check_rollups(store: &Store, spans: &[Span], minutes: u64) {
    let window = TimeWindow::new(BASE, BASE + minutes * MINUTE);
    let rollups: Vec<MinuteRollup> = store.rollups(None, window).expect("queries");
    assert_eq!(
        rollups.len() as u64,
        2 * minutes,
        "two endpoints per minute"
    );
    for rollup in &rollups {
        let (count, errors, sum, max, sorted) =
            expected_rollup(spans, &rollup.endpoint, rollup.minute_start_unix_nanos);
        assert_eq!(
            (
                rollup.count,
                rollup.errors,
                rollup.latency_sum_nanos,
                rollup.latency_max_nanos
            ),
            (count, errors, sum, max)
        );
        let exact_p95 = sorted[(95 * sorted.len()).div_ceil(100) - 1] as f64 / 1e6;
        let estimate = rollup.latency_quantile_ms(0.95);
        assert!(
            estimate >= exact_p95 && estimate <= exact_p95 * 1.25,
            "{estimate} vs {exact_p95}"
        );
    }
    let payment = EndpointKey::new("shop", "/payment");
    let one = store.rollups(Some(&payment), window).expect("queries");
    assert_eq!(one.len() as u64, minutes);
    assert!(one.iter().all(|rollup| rollup.endpoint == payment));
}

#[test]
fn rollups_match_the_spans_and_survive_reopening() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("aiops.db");
    let spans = traffic(6_000, 5);
    let (early, late) = spans.split_at(2_500);
    {
        let store = Store::open(config(&path)).expect("opens");
        record_all(&store, early.to_vec());
        store.shutdown().expect("shuts down");
    }
    // After a restart the writer merges into the minute rows it finds.
    let store = Store::open(config(&path)).expect("reopens");
    record_all(&store, late.to_vec());
    check_rollups(&store, &spans, 5);

    let partial = TimeWindow::new(BASE + 90 * SECOND, BASE + 150 * SECOND);
    let minutes: Vec<u64> = store
        .rollups(None, partial)
        .expect("queries")
        .iter()
        .map(|rollup| (rollup.minute_start_unix_nanos - BASE) / MINUTE)
        .collect();
    assert_eq!(
        minutes,
        vec![1, 2, 1, 2],
        "minutes overlapping the window, per endpoint"
    );
}

#[test]
fn retention_purges_the_rollups_of_the_minutes_whose_spans_it_purged() {
    on_each_backend(|backend| {
        // Arrange: 30 minutes of traffic, two endpoints each minute.
        let store = &backend.store;
        record_all(store, traffic(9_000, 30));
        let everything = TimeWindow::new(BASE, BASE + 30 * MINUTE);

        // Act: the cutoff falls 7 s into minute 12, in batches smaller than what goes.
        store
            .purge_before(BASE + 12 * MINUTE + 7 * SECOND, 5)
            .expect("purges");

        // Assert: minutes 0 to 11 ended before the cutoff and went with their spans; minute
        // 12 still holds spans, so it keeps its rollup, as do the later ones.
        let kept = store.rollups(None, everything).expect("queries");
        assert_eq!(kept.len(), 2 * 18, "{}", backend.name);
        assert!(
            kept.iter()
                .all(|rollup| rollup.minute_start_unix_nanos >= BASE + 12 * MINUTE)
        );
        let payment = EndpointKey::new("shop", "/payment");
        let first_payment = store.rollups(Some(&payment), everything).expect("queries");
        assert_eq!(
            first_payment
                .first()
                .map(|rollup| rollup.minute_start_unix_nanos),
            Some(BASE + 12 * MINUTE)
        );

        // Everything goes once every span has.
        store.purge_before(u64::MAX, 1_000).expect("purges");
        assert_eq!(store.rollups(None, everything), Ok(vec![]));
    });
}

#[test]
fn rollups_in_memory_match_the_spans() {
    let backend = memory_store();
    let spans = traffic(3_000, 3);
    record_all(&backend.store, spans.clone());
    check_rollups(&backend.store, &spans, 3);
}

#[test]
fn retention_deletes_the_endpoints_no_kept_span_names_and_the_writer_forgets_them() {
    on_each_backend(|backend| {
        // Arrange: 1,000 operation names seen once, long ago, and one endpoint that stays.
        let store = &backend.store;
        let old: Vec<Span> = (0..1_000)
            .map(|i| span(TraceId::random(), &format!("/old/{i}"), BASE + i * MS, MS))
            .collect();
        record_all(store, old);
        let kept = span(TraceId::random(), "/kept", BASE + 10 * MINUTE, MS);
        record_all(store, vec![kept.clone()]);
        assert_eq!(store.endpoint_count(), Ok(1_001), "{}", backend.name);

        // Act
        store.purge_before(BASE + 5 * MINUTE, 100).expect("purges");

        // Assert: only the endpoint of the kept span is left.
        assert_eq!(store.endpoint_count(), Ok(1), "{}", backend.name);
        let stored = store.trace(kept.trace_id).expect("reads");
        assert_eq!(stored.len(), 1);
        assert_eq!(&*stored[0].operation, "/kept");

        // A name the writer had cached before the purge is interned anew, not written under
        // the deleted id: its span reads back with its own name.
        let again = span(TraceId::random(), "/old/7", BASE + 11 * MINUTE, MS);
        let newer = span(TraceId::random(), "/new", BASE + 11 * MINUTE, MS);
        record_all(store, vec![again.clone(), newer.clone()]);
        assert_eq!(store.endpoint_count(), Ok(3));
        for expected in [&again, &newer, &kept] {
            let read = store.trace(expected.trace_id).expect("reads");
            assert_eq!(read.len(), 1, "{}", expected.operation);
            assert_eq!(read[0].operation, expected.operation);
        }
        let names: Vec<String> = store
            .rollups(None, TimeWindow::new(BASE, BASE + 20 * MINUTE))
            .expect("queries")
            .iter()
            .map(|rollup| rollup.endpoint.operation.to_string())
            .collect();
        assert_eq!(names.len(), 3, "{names:?}");
        assert!(names.iter().any(|name| name == "/old/7"), "{names:?}");
    });
}
