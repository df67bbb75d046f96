//! Window statistics, trace look-up and trace sampling.

use crate::common::*;
use aiops_storage_sqlite::{Store, StoreConfig};
use aiops_telemetry_core::{EndpointKey, Span, SpanStatus, TimeWindow, TraceId, WindowStats};
use proptest::prelude::*;
use rand::Rng;

/// Window statistics computed the obvious way, from the spans themselves.
fn brute_force(
    spans: &[Span],
    window: TimeWindow,
    timeout_ms: f64,
) -> Vec<(EndpointKey, WindowStats)> {
    let mut endpoints: Vec<EndpointKey> = spans.iter().map(Span::endpoint).collect();
    endpoints.sort();
    endpoints.dedup();
    endpoints
        .into_iter()
        .filter_map(|endpoint| {
            let inside: Vec<&Span> = spans
                .iter()
                .filter(|s| s.endpoint() == endpoint && window.contains(s.start_unix_nanos))
                .collect();
            if inside.is_empty() {
                return None;
            }
            let mut latencies: Vec<f64> = inside.iter().map(|s| s.duration_ms()).collect();
            latencies.sort_by(f64::total_cmp);
            let n = latencies.len();
            let at = |percent: usize| latencies[(percent * n).div_ceil(100).max(1) - 1];
            Some((
                endpoint,
                WindowStats {
                    count: n as u64,
                    errors: inside.iter().filter(|s| s.is_error()).count() as u64,
                    timeouts: inside
                        .iter()
                        .filter(|s| s.duration_ms() > timeout_ms)
                        .count() as u64,
                    mean_ms: latencies.iter().sum::<f64>() / n as f64,
                    p50_ms: at(50),
                    p95_ms: at(95),
                    p99_ms: at(99),
                },
            ))
        })
        .collect()
}

fn assert_same_stats(
    actual: &[(EndpointKey, WindowStats)],
    expected: &[(EndpointKey, WindowStats)],
) {
    assert_eq!(
        actual.len(),
        expected.len(),
        "endpoints differ: {actual:?} vs {expected:?}"
    );
    for ((key, got), (want_key, want)) in actual.iter().zip(expected) {
        assert_eq!(key, want_key);
        let mean_error = (got.mean_ms - want.mean_ms).abs();
        assert!(
            mean_error <= 1e-9 * want.mean_ms.max(1.0),
            "{key}: mean {got:?} vs {want:?}"
        );
        let without_mean = |s: &WindowStats| WindowStats { mean_ms: 0.0, ..*s };
        assert_eq!(without_mean(got), without_mean(want), "{key}");
    }
}

/// Random spans of a few endpoints over ten minutes, arriving slightly out of order.
fn random_spans(rng: &mut impl Rng, n: usize) -> Vec<Span> {
    let operations = ["/health", "/inventory", "/payment", "/checkout"];
    (0..n)
        .map(|i| {
            let jitter = rng.random_range(0..20 * SECOND);
            let start = T0 + (i as u64 * 600 * SECOND / n as u64) + jitter;
            let mut s = span(
                TraceId::random(),
                operations[rng.random_range(0..operations.len())],
                start,
                rng.random_range(0..3_000 * MS),
            );
            if rng.random_bool(0.1) {
                s = s.with_http_status(503);
            }
            if rng.random_bool(0.05) {
                s = s.with_status(SpanStatus::Error);
            }
            s
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn window_statistics_match_a_brute_force_computation(
        seed in any::<u64>(),
        n in 1usize..400,
        from in 0u64..700,
        length in 1u64..400,
        timeout_ms in 0.0f64..3_000.0,
    ) {
        use rand::SeedableRng;
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let spans = random_spans(&mut rng, n);
        let store = Store::open(StoreConfig::in_memory()).expect("opens");
        record_all(&store, spans.clone());
        let window = TimeWindow::new(T0 + from * SECOND, T0 + (from + length) * SECOND);
        let actual = store.window_stats(window, timeout_ms).expect("queries");
        assert_same_stats(&actual, &brute_force(&spans, window, timeout_ms));
    }
}

#[test]
fn window_statistics_are_exact_across_many_blocks() {
    on_each_backend(|backend| {
        let spans = random_spans(&mut rand::rng(), 12_000);
        record_all(&backend.store, spans.clone());
        for (from, length) in [(0, 60), (95, 30), (300, 1), (0, 700), (590, 60), (800, 60)] {
            let window = TimeWindow::new(T0 + from * SECOND, T0 + (from + length) * SECOND);
            let actual = backend
                .store
                .window_stats(window, 1_000.0)
                .expect("queries");
            assert_same_stats(&actual, &brute_force(&spans, window, 1_000.0));
        }
    });
}

#[test]
fn an_empty_window_has_no_statistics() {
    on_each_backend(|backend| {
        record_all(
            &backend.store,
            vec![span(TraceId::random(), "/health", T0, MS)],
        );
        let before = TimeWindow::new(T0 - SECOND, T0);
        assert_eq!(backend.store.window_stats(before, 1.0), Ok(vec![]));
        assert_eq!(
            backend.store.window_stats(TimeWindow::new(T0, T0), 1.0),
            Ok(vec![])
        );
    });
}

#[test]
fn trace_look_up_returns_every_span_of_the_trace() {
    on_each_backend(|backend| {
        let wanted = TraceId::random();
        // Shares the first eight bytes with `wanted`: the index prefix must not mix them up.
        let mut twin_bytes = wanted.to_bytes();
        twin_bytes[15] ^= 0xff;
        let twin = TraceId::from_bytes(twin_bytes);
        let mut expected = Vec::new();
        let mut all = Vec::new();
        // Spread over several blocks with other traffic between the spans of the trace.
        for round in 0..5u64 {
            let start = T0 + round * SECOND;
            let member = span(wanted, "/payment", start, 5 * MS);
            expected.push(member.clone());
            all.push(member);
            all.push(span(twin, "/payment", start, 5 * MS));
            all.extend((0..1_500).map(|i| span(TraceId::random(), "/health", start + i, MS)));
        }
        record_all(&backend.store, all);
        assert_eq!(
            backend.store.trace(wanted),
            Ok(sorted(expected)),
            "{}",
            backend.name
        );
        assert_eq!(backend.store.trace(twin).map(|spans| spans.len()), Ok(5));
        assert_eq!(backend.store.trace(TraceId::random()), Ok(vec![]));
        // The spans of one endpoint share its names instead of each holding a copy.
        let spans = backend.store.trace(wanted).expect("reads");
        assert!(spans.windows(2).all(|pair| {
            pair[0].service.as_ptr() == pair[1].service.as_ptr()
                && pair[0].operation.as_ptr() == pair[1].operation.as_ptr()
        }));
    });
}

#[test]
fn traces_are_found_across_batches_and_reopening_into_the_same_block() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("aiops.db");
    // One trace per batch, never seen again: one block's trace filter is written by several
    // transactions and by writers that restarted, and must still know every one of them.
    let mut written: Vec<Span> = Vec::new();
    for session in 0..3u64 {
        let store = Store::open(config(&path)).expect("opens");
        for batch in 0..4u64 {
            let start = T0 + (session * 4 + batch) * SECOND;
            let member = span(TraceId::random(), "/payment", start, 5 * MS);
            written.push(member.clone());
            let mut spans = vec![member];
            spans.extend((0..150).map(|i| span(TraceId::random(), "/health", start + i, MS)));
            record_all(&store, spans);
        }
        for member in &written {
            assert_eq!(
                store.trace(member.trace_id),
                Ok(vec![member.clone()]),
                "session {session}"
            );
        }
        store.shutdown().expect("shuts down");
    }
}

#[test]
fn blocks_without_a_trace_filter_are_read_and_filled_on_the_next_start() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("aiops.db");
    let wanted = TraceId::random();
    let mut expected = Vec::new();
    let mut all = Vec::new();
    for round in 0..3u64 {
        let start = T0 + round * SECOND;
        let member = span(wanted, "/payment", start, 5 * MS);
        expected.push(member.clone());
        all.push(member);
        all.extend((0..1_500).map(|i| span(TraceId::random(), "/health", start + i, MS)));
    }
    let store = Store::open(config(&path)).expect("opens");
    record_all(&store, all);

    // As a file written before trace filters existed: no block has one.
    let raw = rusqlite::Connection::open(&path).expect("opens raw");
    let forget = |raw: &rusqlite::Connection| {
        raw.execute("UPDATE span_blocks SET traces = NULL", [])
            .expect("clears filters")
    };
    assert!(forget(&raw) >= 2, "the spans fill several blocks");
    assert_eq!(store.trace(wanted), Ok(sorted(expected.clone())));
    store.shutdown().expect("shuts down");
    forget(&raw);

    let store = Store::open(config(&path)).expect("reopens");
    let missing: i64 = raw
        .query_row(
            "SELECT count(*) FROM span_blocks WHERE traces IS NULL",
            [],
            |row| row.get(0),
        )
        .expect("counts");
    assert_eq!(missing, 0, "filled when the writer started");
    assert_eq!(store.trace(wanted), Ok(sorted(expected)));
    assert_eq!(store.trace(TraceId::random()), Ok(vec![]));
}

#[test]
fn trace_sample_is_bounded_and_stays_in_its_endpoint_and_window() {
    on_each_backend(|backend| {
        let window = TimeWindow::new(T0 + 10 * SECOND, T0 + 20 * SECOND);
        let mut spans = Vec::new();
        let mut inside = Vec::new();
        for second in 0..30u64 {
            for i in 0..20u64 {
                let start = T0 + second * SECOND + i * MS;
                let payment = span(TraceId::random(), "/payment", start, (i + 1) * MS);
                if window.contains(start) {
                    inside.push(payment.clone());
                }
                spans.push(payment);
                spans.push(span(TraceId::random(), "/inventory", start, MS));
            }
        }
        // The one failure inside the window comes first.
        let failed =
            span(TraceId::random(), "/payment", T0 + 15 * SECOND, MS).with_http_status(500);
        inside.push(failed.clone());
        spans.push(failed.clone());
        record_all(&backend.store, spans);

        let payment = EndpointKey::new("shop", "/payment");
        let sample = backend
            .store
            .sample_trace_ids(&payment, window, 25)
            .expect("samples");
        assert_eq!(sample.len(), 25);
        assert_eq!(sample[0], failed.trace_id);
        let allowed: Vec<TraceId> = inside.iter().map(|s| s.trace_id).collect();
        assert!(sample.iter().all(|id| allowed.contains(id)));
        let mut distinct = sample.clone();
        distinct.sort();
        distinct.dedup();
        assert_eq!(distinct.len(), sample.len());

        let all = backend
            .store
            .sample_trace_ids(&payment, window, 1_000)
            .expect("samples");
        assert_eq!(all.len(), inside.len());
        let unknown = EndpointKey::new("shop", "/nope");
        assert_eq!(
            backend.store.sample_trace_ids(&unknown, window, 5),
            Ok(vec![])
        );
        assert_eq!(
            backend.store.sample_trace_ids(&payment, window, 0),
            Ok(vec![])
        );
    });
}
