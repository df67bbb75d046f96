//! Properties of the recent-trace buffer under arbitrary traffic.

use aiops_engine::TraceBuffer;
use aiops_telemetry_core::{Collector, EndpointKey, Span, SpanId, TimeWindow, TraceId};
use proptest::prelude::*;

/// A span of one of a few traces and endpoints, starting somewhere in the first 1000 ns.
fn span() -> impl Strategy<Value = Span> {
    (1u8..=20, 0u8..4, 0u64..1_000, 1u8..=u8::MAX).prop_map(|(trace, endpoint, start, id)| {
        Span::new(
            TraceId::from_bytes([trace; 16]),
            SpanId::from_bytes([id; 8]),
            "shop",
            format!("/e{endpoint}"),
        )
        .with_timing(start, 10)
    })
}

proptest! {
    #[test]
    fn buffer_stays_bounded_and_samples_only_matching_whole_traces(
        batches in prop::collection::vec(prop::collection::vec(span(), 0..40), 0..20),
        max_spans in 1usize..60,
        ring in 1usize..8,
        window_start in 0u64..1_000,
        window_length in 0u64..1_000,
        limit in 0usize..10,
    ) {
        let buffer = TraceBuffer::with_traces_per_endpoint(max_spans, ring);
        let mut recorded = 0;
        let mut arrivals: Vec<Span> = Vec::new();
        for batch in batches {
            recorded += batch.len();
            arrivals.extend(batch.iter().cloned());
            let outcome = buffer.record_batch(batch);
            prop_assert_eq!(outcome.dropped, 0);
            let stats = buffer.stats();
            prop_assert!(stats.spans <= max_spans);
            prop_assert_eq!(stats.spans as u64 + stats.evicted_spans, recorded as u64);
        }

        // Segments are evicted oldest first, so the buffer holds the latest arrivals: a trace
        // comes back as exactly its spans among them, in start order.
        let held = &arrivals[arrivals.len() - buffer.stats().spans..];
        for trace in 1u8..=20 {
            let id = TraceId::from_bytes([trace; 16]);
            let mut expected: Vec<Span> =
                held.iter().filter(|span| span.trace_id == id).cloned().collect();
            expected.sort_by_key(|span| span.start_unix_nanos);
            let expected = (!expected.is_empty()).then_some(expected);
            prop_assert_eq!(buffer.trace(id), expected, "every held span of the trace");
        }

        let window = TimeWindow::new(window_start, window_start + window_length);
        let endpoint = EndpointKey::new("shop", "/e1");
        let sampled = buffer.sample_traces(&endpoint, window, limit);
        prop_assert!(sampled.len() <= limit.min(ring));
        let mut ids: Vec<TraceId> = Vec::new();
        for trace in &sampled {
            let id = trace[0].trace_id;
            prop_assert!(!ids.contains(&id), "a trace is sampled once");
            ids.push(id);
            prop_assert!(trace.iter().all(|span| span.trace_id == id));
            let matches = trace.iter().any(|span| {
                span.endpoint() == endpoint && window.contains(span.start_unix_nanos)
            });
            prop_assert!(matches, "the trace touches the endpoint in the window");
            let whole = buffer.trace(id);
            prop_assert_eq!(Some(trace), whole.as_ref(), "whole traces");
        }
        prop_assert!(buffer.recent_traces(window, limit).len() <= limit);
    }
}
