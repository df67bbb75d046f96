//! Segments: runs of consecutive arrivals, each holding its spans compactly and chaining the
//! spans of one trace, so that the oldest run is evicted whole.

use std::collections::hash_map::Entry;

use foldhash::HashMap;

use aiops_telemetry_core::{Attributes, Span, SpanId, SpanKind, SpanStatus, TraceId};

use super::endpoints::Endpoint;

/// End of a trace's chain of spans within a segment.
pub(super) const NO_SPAN: u32 = u32::MAX;

/// `State::endpoints`.
#[derive(Clone, Copy, Debug)]
pub(super) struct Held {
    pub(super) trace_id: TraceId,
    pub(super) span_id: SpanId,
    pub(super) parent_span_id: Option<SpanId>,
    pub(super) start_unix_nanos: u64,
    pub(super) duration_nanos: u64,
    pub(super) endpoint: u32,
    pub(super) http_status: Option<u16>,
    pub(super) kind: SpanKind,
    pub(super) status: SpanStatus,
}

impl Held {
    /// The span again, without attributes, named after `endpoint`.
    pub(super) fn to_span(self, endpoint: &Endpoint) -> Span {
        Span {
            trace_id: self.trace_id,
            span_id: self.span_id,
            parent_span_id: self.parent_span_id,
            service: endpoint.service.clone(),
            operation: endpoint.operation.clone(),
            kind: self.kind,
            start_unix_nanos: self.start_unix_nanos,
            duration_nanos: self.duration_nanos,
            http_status: self.http_status,
            status: self.status,
            attributes: Attributes::Borrowed(&[]),
        }
    }
}

#[derive(Debug, Default)]
pub(super) struct Segment {
    pub(super) sequence: u64,
    pub(super) spans: Vec<Held>,
    /// For each span, the next span of the same trace in this segment ([`NO_SPAN`] if none).
    pub(super) next: Vec<u32>,
    /// Trace id -> its first and last span in this segment.
    pub(super) traces: HashMap<TraceId, (u32, u32)>,
}

impl Segment {
    /// Appends `span`; true when it is the first span of its trace in this segment.
    pub(super) fn push(&mut self, span: Held) -> bool {
        let index = self.spans.len() as u32;
        let first = match self.traces.entry(span.trace_id) {
            Entry::Occupied(mut trace) => {
                let (_, last) = trace.get_mut();
                self.next[*last as usize] = index;
                *last = index;
                false
            }
            Entry::Vacant(trace) => {
                trace.insert((index, index));
                true
            }
        };
        self.next.push(NO_SPAN);
        self.spans.push(span);
        first
    }

    /// This segment's spans of `trace_id`, in arrival order.
    pub(super) fn trace_spans(&self, trace_id: &TraceId) -> impl Iterator<Item = &Held> {
        let mut index = self
            .traces
            .get(trace_id)
            .map_or(NO_SPAN, |&(first, _)| first);
        std::iter::from_fn(move || {
            let span = self.spans.get(index as usize)?;
            index = self.next[index as usize];
            Some(span)
        })
    }

    pub(super) fn clear(&mut self, sequence: u64) {
        self.sequence = sequence;
        self.spans.clear();
        self.next.clear();
        self.traces.clear();
    }
}
