//! Marking a buffered span as failed when its failure is reported after it (an ERROR log).

use aiops_telemetry_core::{Span, SpanId, SpanStatus, TraceId};

use super::TraceBuffer;
use super::state::segment_bit;

impl TraceBuffer {
    /// Marks span `span_id` of trace `trace_id` as failed (status `Error`), if it is buffered
    /// and did not fail already; returns it as it was before, so that the caller can count the
    /// failure elsewhere (the live windows) once.
    pub fn mark_failed(&self, trace_id: TraceId, span_id: SpanId) -> Option<Span> {
        let mut guard = self.lock();
        let state = &mut *guard;
        let present = state.presence[state.presence_slot(&trace_id)];
        for segment in &mut state.segments {
            if present & segment_bit(segment.sequence) == 0 {
                continue;
            }
            let Some(&(first, _)) = segment.traces.get(&trace_id) else {
                continue;
            };
            let mut index = first;
            while let Some(held) = segment.spans.get_mut(index as usize) {
                if held.span_id == span_id {
                    let endpoint = state.endpoints[held.endpoint as usize].as_ref()?;
                    let before = held.to_span(endpoint);
                    if before.is_error() {
                        return None;
                    }
                    held.status = SpanStatus::Error;
                    return Some(before);
                }
                index = segment.next[index as usize];
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use aiops_telemetry_core::Collector;

    use super::*;

    #[test]
    fn a_buffered_span_is_marked_once_and_others_are_left_alone() {
        let buffer = TraceBuffer::new(1_000);
        let trace = TraceId::random();
        let root = Span::new(trace, SpanId::random(), "shop", "/checkout").with_timing(10, 5);
        let child = Span::new(trace, SpanId::random(), "pricing", "GET /price")
            .with_parent(root.span_id)
            .with_timing(11, 2);
        let _ = buffer.record_batch(vec![root.clone(), child.clone()]);

        let before = buffer.mark_failed(trace, child.span_id).expect("buffered");
        assert!(!before.is_error());
        assert_eq!(before.operation, "GET /price");
        assert!(buffer.mark_failed(trace, child.span_id).is_none(), "once");
        assert!(buffer.mark_failed(trace, SpanId::random()).is_none());
        assert!(
            buffer
                .mark_failed(TraceId::random(), child.span_id)
                .is_none()
        );

        let spans = buffer.trace(trace).expect("buffered");
        let failed: Vec<bool> = spans.iter().map(Span::is_error).collect();
        assert_eq!(failed, [false, true]);
    }
}
