//! Unit tests of the buffer's internals: segments, rings and eviction.

use aiops_telemetry_core::{Attributes, SpanId};

use super::*;

fn span(trace_id: TraceId, operation: &'static str, start: u64) -> Span {
    Span::new(trace_id, SpanId::random(), "shop", operation).with_timing(start, 10)
}

/// A checkout trace of three spans starting at `start`.
fn checkout(start: u64) -> Vec<Span> {
    let trace_id = TraceId::random();
    let root = span(trace_id, "/checkout", start);
    vec![
        span(trace_id, "/payment", start + 1).with_parent(root.span_id),
        span(trace_id, "/inventory", start + 2).with_parent(root.span_id),
        root,
    ]
}

fn key(operation: &str) -> EndpointKey {
    EndpointKey::new("shop", operation)
}

#[test]
fn never_holds_more_than_max_spans_and_counts_evictions() {
    // 16 segments of 10 spans.
    let buffer = TraceBuffer::new(160);
    let mut newest = Vec::new();
    for i in 0..100 {
        newest = checkout(i * 100);
        let _ = buffer.record_batch(newest.clone());
        let stats = buffer.stats();
        assert!(stats.spans <= 160);
        assert_eq!(stats.spans as u64 + stats.evicted_spans, 3 * (i + 1));
    }
    let stats = buffer.stats();
    // 300 spans fill 30 segments exactly; the 16 newest are held.
    assert_eq!((stats.spans, stats.evicted_spans), (160, 140));
    assert!(stats.evicted_traces >= 140 / 3);
    let trace = buffer
        .trace(newest[0].trace_id)
        .expect("the newest trace is held");
    assert_eq!(trace.len(), 3);
}

#[test]
fn evicts_a_segment_at_a_time_and_reuses_it() {
    // 16 segments of 2 spans.
    let buffer = TraceBuffer::new(32);
    let first = span(TraceId::random(), "/health", 0);
    let _ = buffer.record(first.clone());
    for i in 1..32 {
        let _ = buffer.record(span(TraceId::random(), "/health", i));
    }
    assert_eq!(buffer.stats().spans, 32);
    assert!(buffer.trace(first.trace_id).is_some());

    // One more span opens a segment: the oldest two spans go together.
    let _ = buffer.record(span(TraceId::random(), "/health", 32));
    let stats = buffer.stats();
    assert_eq!(
        (stats.spans, stats.evicted_spans, stats.evicted_traces),
        (31, 2, 2)
    );
    assert!(buffer.trace(first.trace_id).is_none());
}

#[test]
fn a_trace_across_segments_comes_back_whole_until_its_first_segment_goes() {
    // 16 segments of 2 spans: the checkout's three spans fall into two segments.
    let buffer = TraceBuffer::new(32);
    let _ = buffer.record(span(TraceId::random(), "/health", 0));
    let spans = checkout(10);
    let trace_id = spans[0].trace_id;
    let _ = buffer.record_batch(spans);
    assert_eq!(buffer.trace(trace_id).map(|t| t.len()), Some(3));
    assert_eq!(buffer.stats().traces, 2);
    let sampled = buffer.sample_traces(&key("/checkout"), TimeWindow::new(0, 100), 5);
    assert_eq!(sampled.len(), 1);
    assert_eq!(sampled[0].len(), 3);

    // Evicting the first segment takes the health span and the checkout's first arrival,
    // its payment span; the rest still comes back in start order.
    for i in 0..29 {
        let _ = buffer.record(span(TraceId::random(), "/health", 100 + i));
    }
    let partial = buffer.trace(trace_id).expect("the later spans are held");
    let operations: Vec<_> = partial.iter().map(|s| &*s.operation).collect();
    assert_eq!(operations, ["/checkout", "/inventory"]);
}

#[test]
fn a_batch_larger_than_a_locked_slice_is_recorded_whole_and_bounded() {
    let buffer = TraceBuffer::new(900);
    let batch: Vec<Span> = (0..400).flat_map(|i| checkout(i * 100)).collect();

    assert_eq!(buffer.record_batch(batch), RecordOutcome::accepted(1_200));

    let stats = buffer.stats();
    // Segments of 57 spans (900 / 16 rounded up), so 15 of them: 21 full segments and 3
    // spans, the oldest 7 evicted.
    assert_eq!((stats.spans, stats.evicted_spans), (14 * 57 + 3, 7 * 57));
    let newest = buffer.sample_traces(&key("/checkout"), TimeWindow::new(0, u64::MAX), 1);
    assert_eq!(newest[0][0].start_unix_nanos, 39_900);
}

#[test]
fn evicts_the_oldest_traces_first() {
    let buffer = TraceBuffer::new(6);
    let first = checkout(0);
    let first_id = first[0].trace_id;
    let _ = buffer.record_batch(first);
    let second = checkout(100);
    let second_id = second[0].trace_id;
    let _ = buffer.record_batch(second);
    let _ = buffer.record_batch(checkout(200));
    assert!(buffer.trace(first_id).is_none());
    assert!(buffer.trace(second_id).is_some());
}

#[test]
fn trace_returns_every_span_in_start_order() {
    let buffer = TraceBuffer::new(100);
    let spans = checkout(1_000);
    let trace_id = spans[0].trace_id;
    let _ = buffer.record_batch(spans);
    let trace = buffer.trace(trace_id).expect("buffered");
    let operations: Vec<_> = trace.iter().map(|s| &*s.operation).collect();
    assert_eq!(operations, ["/checkout", "/payment", "/inventory"]);
    assert!(buffer.trace(TraceId::random()).is_none());
}

#[test]
fn a_trace_whose_matching_span_was_evicted_is_not_sampled() {
    // Two segments of one span: the trace's span in the window goes with the first.
    let buffer = TraceBuffer::new(2);
    let trace_id = TraceId::random();
    let _ = buffer.record(span(trace_id, "/e1", 918));
    let _ = buffer.record(span(trace_id, "/e1", 0));
    let _ = buffer.record(span(TraceId::random(), "/e0", 0));

    let window = TimeWindow::new(363, 919);
    assert!(buffer.sample_traces(&key("/e1"), window, 1).is_empty());
    assert_eq!(
        buffer.sample_traces(&key("/e1"), TimeWindow::new(0, 919), 1)[0].len(),
        1,
        "the span still held is sampled"
    );
}

#[test]
fn spans_are_kept_whole_but_for_their_attributes() {
    let buffer = TraceBuffer::new(100);
    let trace_id = TraceId::random();
    let owned = span(trace_id, "/payment", 5)
        .with_http_status(503)
        .with_attribute("service.version", "1.0");
    let borrowed = span(trace_id, "/checkout", 1).with_attribute("http.request.method", "POST");
    let _ = buffer.record_batch(vec![owned.clone()]);
    let _ = buffer.record_borrowed(std::slice::from_ref(&borrowed));

    let kept = buffer.trace(trace_id).expect("buffered");
    let expected: Vec<Span> = [borrowed, owned]
        .into_iter()
        .map(|mut span| {
            span.attributes = Attributes::Borrowed(&[]);
            span
        })
        .collect();
    assert_eq!(kept, expected);
}

#[test]
fn spans_of_one_trace_arriving_separately_are_grouped() {
    let buffer = TraceBuffer::new(100);
    let spans = checkout(0);
    let trace_id = spans[0].trace_id;
    for span in spans {
        let _ = buffer.record(span);
    }
    assert_eq!(buffer.trace(trace_id).map(|t| t.len()), Some(3));
    assert_eq!(buffer.stats().traces, 1);
}

#[test]
fn sample_traces_returns_whole_traces_touching_the_endpoint_in_the_window() {
    let buffer = TraceBuffer::new(1_000);
    for i in 0..10 {
        let _ = buffer.record_batch(checkout(i * 100));
    }
    let health = span(TraceId::random(), "/health", 450);
    let _ = buffer.record(health);

    let sampled = buffer.sample_traces(&key("/payment"), TimeWindow::new(300, 700), 10);

    assert_eq!(sampled.len(), 4);
    for trace in &sampled {
        assert_eq!(trace.len(), 3);
        assert!(
            trace
                .iter()
                .any(|s| s.operation == "/payment" && (300..700).contains(&s.start_unix_nanos))
        );
    }
}

#[test]
fn sample_traces_prefers_the_most_recent_and_honours_the_limit() {
    let buffer = TraceBuffer::new(1_000);
    for i in 0..10 {
        let _ = buffer.record_batch(checkout(i * 100));
    }
    let sampled = buffer.sample_traces(&key("/checkout"), TimeWindow::new(0, 10_000), 2);
    let starts: Vec<_> = sampled.iter().map(|t| t[0].start_unix_nanos).collect();
    assert_eq!(starts, [900, 800]);
    assert!(
        buffer
            .sample_traces(&key("/checkout"), TimeWindow::new(0, 10_000), 0)
            .is_empty()
    );
    assert!(
        buffer
            .sample_traces(&key("/unknown"), TimeWindow::new(0, 10_000), 5)
            .is_empty()
    );
}

#[test]
fn sampling_examines_only_the_endpoint_ring() {
    let buffer = TraceBuffer::with_traces_per_endpoint(10_000, 4);
    for i in 0..20 {
        let _ = buffer.record_batch(checkout(i * 100));
    }
    let sampled = buffer.sample_traces(&key("/payment"), TimeWindow::new(0, 100_000), 100);
    assert_eq!(sampled.len(), 4, "only the ring's four most recent traces");
}

#[test]
fn a_run_of_one_endpoint_survives_its_ring_being_dropped() {
    // One segment of one span: each span evicts the previous one, and with it the ring of
    // the endpoint the next span of the run is recorded for.
    let buffer = TraceBuffer::new(1);
    let spans: Vec<Span> = (0..3)
        .map(|start| span(TraceId::random(), "/a", start))
        .collect();
    let _ = buffer.record_batch(spans.clone());
    assert_eq!(
        buffer.trace(spans[2].trace_id),
        Some(vec![spans[2].clone()])
    );
    let sampled = buffer.sample_traces(&key("/a"), TimeWindow::new(0, 10), 5);
    assert_eq!(sampled, vec![vec![spans[2].clone()]]);
    assert_eq!(buffer.stats().endpoints, 1);
}

#[test]
fn a_buffered_span_takes_less_than_half_a_span() {
    assert!(size_of::<Held>() <= 64, "{} bytes", size_of::<Held>());
    assert!(2 * size_of::<Held>() <= size_of::<Span>());
}

#[test]
fn runs_of_one_endpoint_index_the_right_rings_across_evictions() {
    // 4 segments of 4 spans; runs of one endpoint cross segment boundaries, and evictions
    // drop rings and renumber the others while later runs are recorded.
    let buffer = TraceBuffer::new(16);
    let operations = ["/a", "/b", "/c", "/a", "/d", "/b", "/b", "/a"];
    let mut expected: Vec<(&str, TraceId)> = Vec::new();
    let mut start = 0;
    for (run, operation) in operations.iter().enumerate() {
        let batch: Vec<Span> = (0..run % 3 + 2)
            .map(|_| {
                start += 1;
                let trace_id = TraceId::random();
                expected.push((operation, trace_id));
                span(trace_id, operation, start)
            })
            .collect();
        let _ = buffer.record_batch(batch);
    }
    let held = &expected[expected.len() - buffer.stats().spans..];
    for operation in ["/a", "/b", "/c", "/d"] {
        let mut sampled: Vec<TraceId> = buffer
            .sample_traces(&key(operation), TimeWindow::new(0, 1_000), 100)
            .iter()
            .map(|trace| trace[0].trace_id)
            .collect();
        sampled.reverse();
        let wanted: Vec<TraceId> = held
            .iter()
            .filter(|(held, _)| *held == operation)
            .map(|&(_, trace_id)| trace_id)
            .collect();
        assert_eq!(sampled, wanted, "{operation}");
    }
    let endpoints: HashSet<&str> = held.iter().map(|&(operation, _)| operation).collect();
    assert_eq!(buffer.stats().endpoints, endpoints.len());
}

#[test]
fn rings_of_evicted_endpoints_are_dropped() {
    let buffer = TraceBuffer::new(3);
    let _ = buffer.record(span(TraceId::random(), "/old", 0));
    for i in 0..3 {
        let _ = buffer.record(span(TraceId::random(), "/new", 10 + i));
    }
    assert_eq!(buffer.stats().endpoints, 1);
    assert!(
        buffer
            .sample_traces(&key("/old"), TimeWindow::new(0, 100), 5)
            .is_empty()
    );
}

#[test]
fn a_late_span_of_an_evicted_trace_starts_a_new_partial_trace() {
    let buffer = TraceBuffer::new(3);
    let mut spans = checkout(0);
    let late = spans.pop().expect("three spans");
    let trace_id = late.trace_id;
    let _ = buffer.record_batch(spans);
    let _ = buffer.record_batch(checkout(100));
    assert!(buffer.trace(trace_id).is_none());
    let _ = buffer.record(late);
    assert_eq!(buffer.trace(trace_id).map(|t| t.len()), Some(1));
    assert!(buffer.stats().spans <= 3);
}

#[test]
fn recent_traces_are_newest_first_and_limited_to_the_window() {
    let buffer = TraceBuffer::new(1_000);
    for i in 0..10 {
        let _ = buffer.record_batch(checkout(i * 100));
    }
    let recent = buffer.recent_traces(TimeWindow::new(500, 800), 10);
    let starts: Vec<_> = recent.iter().map(|t| t[0].start_unix_nanos).collect();
    assert_eq!(starts, [700, 600, 500]);
    assert_eq!(buffer.recent_traces(TimeWindow::new(0, 10_000), 2).len(), 2);
}

#[test]
fn flush_succeeds_and_everything_is_accepted() {
    let buffer = TraceBuffer::new(2);
    assert_eq!(buffer.record_batch(checkout(0)), RecordOutcome::accepted(3));
    assert_eq!(buffer.flush(), Ok(()));
}
