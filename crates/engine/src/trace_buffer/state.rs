//! The buffer's state behind its lock: segments, endpoints and the trace presence table.

use std::collections::VecDeque;
use std::hash::BuildHasher;

use foldhash::HashMap;
use foldhash::fast::RandomState;

use aiops_telemetry_core::{EndpointKey, Span, TraceId};

use super::endpoints::{Endpoint, RingEntry, endpoint_of, index};
use super::segment::{Held, Segment};

/// The span budget is split into this many segments; the oldest is evicted whole.
pub(super) const SEGMENTS: usize = 16;

/// The presence table has at most this many slots (128 KiB); a buffer of `max_spans` spans
/// has one per two spans, rounded up to a power of two.
pub(super) const MAX_PRESENCE_SLOTS: usize = 1 << 16;

#[derive(Debug)]
pub(super) struct State {
    /// Oldest first; the last one receives new spans. Sequence numbers are consecutive.
    pub(super) segments: VecDeque<Segment>,
    /// Spans per segment.
    pub(super) segment_spans: usize,
    /// Segments held at most.
    pub(super) max_segments: usize,
    /// The endpoints of buffered spans, each with its recent traces; buffered spans refer to
    /// them by position. A slot is freed (and later reused) only once its ring is empty, and a
    /// ring is not empty while a span of its endpoint is buffered.
    pub(super) endpoints: Vec<Option<Endpoint>>,
    /// Free slots of `endpoints`.
    pub(super) free_endpoints: Vec<u32>,
    /// service -> operation -> position in `endpoints`. Nested so that recording looks
    /// endpoints up by `&str` without allocating a key.
    pub(super) endpoint_index: HashMap<String, HashMap<String, u32>>,
    /// The slot of the last span's endpoint: spans come in runs of one endpoint, and a span
    /// whose names match that slot's skips the look-up (a slot freed or reused since then
    /// does not match).
    pub(super) last_endpoint: u32,
    /// Which segments may hold spans of a trace, so that a look-up probes those rather than
    /// all of them: slot `hash(trace id) % len` has bit `sequence % SEGMENTS` set for every
    /// segment `sequence` with a span of a trace hashing there. A segment's bit is cleared
    /// from every slot when it is evicted (a pass over 2 bytes per slot).
    pub(super) presence: Vec<u16>,
    pub(super) hasher: RandomState,
    pub(super) spans: usize,
    pub(super) next_sequence: u64,
    pub(super) evicted_traces: u64,
    pub(super) evicted_spans: u64,
    /// Where the call census stands.
    pub(super) census: super::census::Census,
}

impl State {
    /// True while the segment `entry`'s span arrived in is buffered.
    pub(super) fn is_live(&self, entry: &RingEntry) -> bool {
        self.segments
            .front()
            .is_some_and(|oldest| entry.sequence >= oldest.sequence)
    }

    /// The slot of `endpoint` and its ring of recent traces, if it has buffered spans.
    pub(super) fn ring_of(&self, endpoint: &EndpointKey) -> Option<(u32, &VecDeque<RingEntry>)> {
        let slot = *self
            .endpoint_index
            .get(endpoint.service.as_str())?
            .get(endpoint.operation.as_str())?;
        let ring = &self.endpoints[slot as usize].as_ref()?.ring;
        Some((slot, ring))
    }

    /// The presence slot of `trace_id`.
    pub(super) fn presence_slot(&self, trace_id: &TraceId) -> usize {
        // The table's length is a power of two.
        self.hasher.hash_one(trace_id) as usize & (self.presence.len() - 1)
    }

    /// Every buffered span of `trace_id`, in arrival order.
    pub(super) fn held<'a>(&'a self, trace_id: &'a TraceId) -> impl Iterator<Item = &'a Held> {
        let present = self.presence[self.presence_slot(trace_id)];
        self.segments
            .iter()
            .filter(move |segment| present & segment_bit(segment.sequence) != 0)
            .flat_map(move |segment| segment.trace_spans(trace_id))
    }

    /// Every buffered span of `trace_id`, in start order.
    pub(super) fn trace(&self, trace_id: &TraceId) -> Option<Vec<Span>> {
        let held: Vec<&Held> = self.held(trace_id).collect();
        (!held.is_empty()).then(|| self.spans(&held))
    }

    /// Buffered spans as spans again, in start order.
    pub(super) fn spans(&self, held: &[&Held]) -> Vec<Span> {
        let mut spans: Vec<Span> = held
            .iter()
            .map(|held| {
                let endpoint = self.endpoints[held.endpoint as usize]
                    .as_ref()
                    .expect("a buffered span's endpoint is kept");
                held.to_span(endpoint)
            })
            .collect();
        spans.sort_by_key(|span| span.start_unix_nanos);
        spans
    }

    pub(super) fn insert(&mut self, span: &Span, traces_per_endpoint: usize) {
        if self
            .segments
            .back()
            .is_none_or(|segment| segment.spans.len() >= self.segment_spans)
        {
            self.open_segment();
        }
        let slot = self.presence_slot(&span.trace_id);
        let segment = self.segments.back_mut().expect("a segment was just opened");
        self.presence[slot] |= segment_bit(segment.sequence);
        let last = self
            .endpoints
            .get(self.last_endpoint as usize)
            .and_then(Option::as_ref);
        let endpoint = if last.is_some_and(|last| last.is_of(span)) {
            self.last_endpoint
        } else {
            endpoint_of(
                &mut self.endpoint_index,
                &mut self.endpoints,
                &mut self.free_endpoints,
                span,
            )
        };
        self.last_endpoint = endpoint;
        let ring = &mut self.endpoints[endpoint as usize]
            .as_mut()
            .expect("the endpoint of a recorded span is kept")
            .ring;
        index(ring, span, segment.sequence, traces_per_endpoint);
        let first = segment.push(Held {
            trace_id: span.trace_id,
            span_id: span.span_id,
            parent_span_id: span.parent_span_id,
            start_unix_nanos: span.start_unix_nanos,
            duration_nanos: span.duration_nanos,
            endpoint,
            http_status: span.http_status,
            kind: span.kind,
            status: span.status,
        });
        if first {
            let sequence = segment.sequence;
            self.census.arrived(span, sequence);
        }
        self.spans += 1;
    }

    /// Starts a new newest segment, evicting the oldest (and reusing its memory) when the
    /// budget is spent.
    pub(super) fn open_segment(&mut self) {
        let sequence = self.next_sequence;
        self.next_sequence += 1;
        let mut segment = if self.segments.len() >= self.max_segments {
            let oldest = self
                .segments
                .pop_front()
                .expect("max_segments is at least 1");
            let gone = !segment_bit(oldest.sequence);
            for slot in &mut self.presence {
                *slot &= gone;
            }
            self.spans -= oldest.spans.len();
            self.evicted_spans += oldest.spans.len() as u64;
            self.evicted_traces += oldest.traces.len() as u64;
            self.prune_rings();
            oldest
        } else {
            Segment {
                spans: Vec::with_capacity(self.segment_spans),
                next: Vec::with_capacity(self.segment_spans),
                ..Segment::default()
            }
        };
        segment.clear(sequence);
        self.segments.push_back(segment);
    }

    /// Drops ring entries that point into evicted segments, and rings left empty, so rings
    /// never outlive the traces they point at. Costs one pass over the rings per evicted
    /// segment, not a look-up per span.
    pub(super) fn prune_rings(&mut self) {
        let oldest = self.segments.front().map(|segment| segment.sequence);
        let (endpoints, free) = (&mut self.endpoints, &mut self.free_endpoints);
        self.endpoint_index.retain(|_, operations| {
            operations.retain(|_, position| {
                let slot = &mut endpoints[*position as usize];
                let ring = &mut slot.as_mut().expect("indexed endpoints are kept").ring;
                while ring
                    .front()
                    .is_some_and(|entry| oldest.is_none_or(|oldest| entry.sequence < oldest))
                {
                    ring.pop_front();
                }
                if !ring.is_empty() {
                    return true;
                }
                *slot = None;
                free.push(*position);
                false
            });
            !operations.is_empty()
        });
    }
}

/// The presence bit of segment `sequence`: at most SEGMENTS segments are held, so
/// consecutive ones never share a bit.
pub(super) fn segment_bit(sequence: u64) -> u16 {
    1 << (sequence % SEGMENTS as u64)
}
