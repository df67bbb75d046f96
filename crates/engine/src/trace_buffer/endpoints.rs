//! The endpoints of buffered spans, each with a ring of the recent traces that touched it.

use std::collections::VecDeque;

use foldhash::HashMap;

use aiops_telemetry_core::{Span, SpanText, TraceId};

/// An endpoint with buffered spans.
#[derive(Debug)]
pub(super) struct Endpoint {
    pub(super) service: SpanText,
    pub(super) operation: SpanText,
    /// Its recent traces, oldest at the front, in segment order.
    pub(super) ring: VecDeque<RingEntry>,
}

impl Endpoint {
    /// True when `span` belongs to this endpoint.
    pub(super) fn is_of(&self, span: &Span) -> bool {
        self.operation == span.operation && self.service == span.service
    }
}

/// One trace that touched an endpoint: when its latest span of that endpoint started, and in
/// which segment that span arrived (the entry is live while that segment is buffered).
#[derive(Clone, Copy, Debug)]
pub(super) struct RingEntry {
    pub(super) start_unix_nanos: u64,
    pub(super) trace_id: TraceId,
    pub(super) sequence: u64,
}

/// The position of `span`'s endpoint in `endpoints`, added (in a free slot if there is one)
pub(super) fn endpoint_of(
    index: &mut HashMap<String, HashMap<String, u32>>,
    endpoints: &mut Vec<Option<Endpoint>>,
    free: &mut Vec<u32>,
    span: &Span,
) -> u32 {
    let operations = match index.get_mut(&*span.service) {
        Some(operations) => operations,
        None => index.entry(span.service.to_string()).or_default(),
    };
    if let Some(&position) = operations.get(&*span.operation) {
        return position;
    }
    let endpoint = Endpoint {
        service: span.service.clone(),
        operation: span.operation.clone(),
        ring: VecDeque::new(),
    };
    let position = match free.pop() {
        Some(position) => {
            endpoints[position as usize] = Some(endpoint);
            position
        }
        None => {
            // A span's endpoint is a u32; more endpoints than spans are never buffered.
            endpoints.push(Some(endpoint));
            u32::try_from(endpoints.len() - 1).expect("fewer endpoints than u32::MAX")
        }
    };
    operations.insert(span.operation.to_string(), position);
    position
}

/// Records that `span`'s trace touched the endpoint of `ring` in segment `sequence`.
pub(super) fn index(
    ring: &mut VecDeque<RingEntry>,
    span: &Span,
    sequence: u64,
    traces_per_endpoint: usize,
) {
    if let Some(back) = ring
        .back_mut()
        .filter(|back| back.trace_id == span.trace_id)
    {
        // One entry per trace suffices for sampling; keep the latest start and segment.
        back.start_unix_nanos = back.start_unix_nanos.max(span.start_unix_nanos);
        back.sequence = sequence;
        return;
    }
    ring.push_back(RingEntry {
        start_unix_nanos: span.start_unix_nanos,
        trace_id: span.trace_id,
        sequence,
    });
    if ring.len() > traces_per_endpoint {
        ring.pop_front();
    }
}
