//! The bounded buffer of recent traces that RCA samples from.

use std::collections::VecDeque;
use std::collections::hash_map::Entry;
use std::hash::BuildHasher;

use foldhash::fast::RandomState;
use foldhash::{HashMap, HashSet};
use std::sync::{Mutex, MutexGuard, PoisonError};

use aiops_telemetry_core::{
    Attributes, Collector, CollectorError, EndpointKey, RecordOutcome, Span, SpanId, SpanKind,
    SpanStatus, SpanText, TimeWindow, TraceId,
};

/// How many recent trace ids [`TraceBuffer`] remembers per endpoint, unless told otherwise.
pub const DEFAULT_TRACES_PER_ENDPOINT: usize = 256;

/// Spans recorded per lock acquisition.
const LOCKED_SLICE: usize = 256;

/// The span budget is split into this many segments; the oldest is evicted whole.
const SEGMENTS: usize = 16;

/// The presence table has at most this many slots (128 KiB); a buffer of `max_spans` spans
/// has one per two spans, rounded up to a power of two.
const MAX_PRESENCE_SLOTS: usize = 1 << 16;

/// End of a trace's chain of spans within a segment.
const NO_SPAN: u32 = u32::MAX;

/// A bounded in-memory buffer of recent spans grouped by trace, fed as a [`Collector`].
///
/// Root cause analysis needs whole traces of the requests that touched an anomalous endpoint.
/// Looking those up in a database would need an index on the random trace id, which makes
/// every insert several times slower; recent traces are all RCA needs, so they live here.
/// Spans are kept as 64-byte records without their attributes, which RCA never reads (a store
/// keeps them), and with their endpoint as a number: recording copies no text and allocates
/// nothing, and a buffered span takes less than half the memory of a [`Span`].
///
/// # Bounds
///
/// - At most `max_spans` spans are held. Spans are appended, in arrival order, to the newest
///   of up to 16 segments of `max_spans / 16` spans each (rounded up); when it is full and
///   no segment is left, the oldest segment is evicted whole and its memory reused. So the
///   buffer holds the most recent `max_spans` spans, less at most two segments, and eviction
///   costs no look-up per span. Evictions are counted
///   ([`TraceBufferStats::evicted_spans`], [`TraceBufferStats::evicted_traces`]). A trace
///   whose spans arrived on both sides of a segment boundary can lose its older spans first;
///   its remaining spans are still returned together, and a span arriving for a trace that
///   is gone starts a new, partial trace.
/// - Per endpoint, the ids of the `traces_per_endpoint` most recent traces that touched it are
///   kept in a ring, so [`sample_traces`](Self::sample_traces) examines at most that many
///   entries whatever the traffic. Rings are dropped once none of their traces are buffered,
///   so the number of rings never exceeds the number of endpoints among buffered spans.
///
/// A table of which segments hold spans of which traces (2 bytes per two spans, at most
/// 128 KiB) lets a trace look-up probe only the segments that may hold it, usually one.
///
/// Memory is therefore about 100 bytes per span of `max_spans` (the record, its link to the
/// next span of its trace and an index entry per trace and segment), plus
/// `traces_per_endpoint` trace ids (32 bytes each) per endpoint with buffered spans.
///
/// # Concurrency
///
/// Recording takes a short mutex section per slice of a few hundred spans (hash-map inserts
/// into the newest segment, no I/O, no allocation beyond the span copies), so it honours the
/// collector contract of never waiting for anything but other short sections. Readers copy
/// what they return under the same lock; [`sample_traces`](Self::sample_traces) examines one
/// endpoint's ring only.
///
/// ```
/// use aiops_rca::TraceBuffer;
/// use aiops_telemetry_core::{Collector, EndpointKey, Span, SpanId, TimeWindow, TraceId};
///
/// let buffer = TraceBuffer::new(10_000);
/// let trace_id = TraceId::random();
/// let checkout =
///     Span::new(trace_id, SpanId::random(), "shop", "/checkout").with_timing(1_000, 50);
/// let payment = Span::new(trace_id, SpanId::random(), "shop", "/payment")
///     .with_parent(checkout.span_id)
///     .with_timing(1_010, 30);
/// let _ = buffer.record_batch(vec![payment, checkout]);
///
/// let sampled = buffer.sample_traces(
///     &EndpointKey::new("shop", "/payment"),
///     TimeWindow::new(0, 2_000),
///     5,
/// );
/// assert_eq!(sampled.len(), 1);
/// assert_eq!(sampled[0].len(), 2, "the whole trace comes back, not just the matching span");
/// ```
#[derive(Debug)]
pub struct TraceBuffer {
    max_spans: usize,
    traces_per_endpoint: usize,
    state: Mutex<State>,
}

/// Counters describing a [`TraceBuffer`]'s contents and what it has evicted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TraceBufferStats {
    /// Spans currently held.
    pub spans: usize,
    /// Traces currently held.
    pub traces: usize,
    /// Endpoints with a ring of recent trace ids.
    pub endpoints: usize,
    /// Traces evicted since the buffer was created; a trace whose spans arrived in two
    /// segments counts once for each.
    pub evicted_traces: u64,
    /// Spans evicted since the buffer was created.
    pub evicted_spans: u64,
}

#[derive(Debug)]
struct State {
    /// Oldest first; the last one receives new spans. Sequence numbers are consecutive.
    segments: VecDeque<Segment>,
    /// Spans per segment.
    segment_spans: usize,
    /// Segments held at most.
    max_segments: usize,
    /// The endpoints of buffered spans, each with its recent traces; buffered spans refer to
    /// them by position. A slot is freed (and later reused) only once its ring is empty, and a
    /// ring is not empty while a span of its endpoint is buffered.
    endpoints: Vec<Option<Endpoint>>,
    /// Free slots of `endpoints`.
    free_endpoints: Vec<u32>,
    /// service -> operation -> position in `endpoints`. Nested so that recording looks
    /// endpoints up by `&str` without allocating a key.
    endpoint_index: HashMap<String, HashMap<String, u32>>,
    /// The slot of the last span's endpoint: spans come in runs of one endpoint, and a span
    /// whose names match that slot's skips the look-up (a slot freed or reused since then
    /// does not match).
    last_endpoint: u32,
    /// Which segments may hold spans of a trace, so that a look-up probes those rather than
    /// all of them: slot `hash(trace id) % len` has bit `sequence % SEGMENTS` set for every
    /// segment `sequence` with a span of a trace hashing there. A segment's bit is cleared
    /// from every slot when it is evicted (a pass over 2 bytes per slot).
    presence: Vec<u16>,
    hasher: RandomState,
    spans: usize,
    next_sequence: u64,
    evicted_traces: u64,
    evicted_spans: u64,
}

/// An endpoint with buffered spans.
#[derive(Debug)]
struct Endpoint {
    service: SpanText,
    operation: SpanText,
    /// Its recent traces, oldest at the front, in segment order.
    ring: VecDeque<RingEntry>,
}

/// A span as the buffer holds it: what RCA reads, its endpoint as a position in
/// `State::endpoints`.
#[derive(Clone, Copy, Debug)]
struct Held {
    trace_id: TraceId,
    span_id: SpanId,
    parent_span_id: Option<SpanId>,
    start_unix_nanos: u64,
    duration_nanos: u64,
    endpoint: u32,
    http_status: Option<u16>,
    kind: SpanKind,
    status: SpanStatus,
}

impl Endpoint {
    /// True when `span` belongs to this endpoint.
    fn is_of(&self, span: &Span) -> bool {
        self.operation == span.operation && self.service == span.service
    }
}

impl Held {
    /// The span again, without attributes, named after `endpoint`.
    fn to_span(self, endpoint: &Endpoint) -> Span {
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

/// A run of consecutive arrivals.
#[derive(Debug, Default)]
struct Segment {
    sequence: u64,
    spans: Vec<Held>,
    /// For each span, the next span of the same trace in this segment ([`NO_SPAN`] if none).
    next: Vec<u32>,
    /// Trace id -> its first and last span in this segment.
    traces: HashMap<TraceId, (u32, u32)>,
}

impl Segment {
    fn push(&mut self, span: Held) {
        let index = self.spans.len() as u32;
        match self.traces.entry(span.trace_id) {
            Entry::Occupied(mut trace) => {
                let (_, last) = trace.get_mut();
                self.next[*last as usize] = index;
                *last = index;
            }
            Entry::Vacant(trace) => {
                trace.insert((index, index));
            }
        }
        self.next.push(NO_SPAN);
        self.spans.push(span);
    }

    /// This segment's spans of `trace_id`, in arrival order.
    fn trace_spans(&self, trace_id: &TraceId) -> impl Iterator<Item = &Held> {
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

    fn clear(&mut self, sequence: u64) {
        self.sequence = sequence;
        self.spans.clear();
        self.next.clear();
        self.traces.clear();
    }
}

/// One trace that touched an endpoint: when its latest span of that endpoint started, and in
/// which segment that span arrived (the entry is live while that segment is buffered).
#[derive(Clone, Copy, Debug)]
struct RingEntry {
    start_unix_nanos: u64,
    trace_id: TraceId,
    sequence: u64,
}

impl TraceBuffer {
    /// A buffer holding at most `max_spans` spans (at least one) and remembering
    /// [`DEFAULT_TRACES_PER_ENDPOINT`] recent traces per endpoint.
    pub fn new(max_spans: usize) -> Self {
        Self::with_traces_per_endpoint(max_spans, DEFAULT_TRACES_PER_ENDPOINT)
    }

    /// A buffer holding at most `max_spans` spans and remembering the `traces_per_endpoint`
    /// most recent traces of each endpoint (both at least one).
    pub fn with_traces_per_endpoint(max_spans: usize, traces_per_endpoint: usize) -> Self {
        let max_spans = max_spans.max(1);
        // Spans live in u32-indexed segments.
        // Rounded up, so that there are never more than SEGMENTS segments.
        let segment_spans = max_spans.div_ceil(SEGMENTS).clamp(1, NO_SPAN as usize - 1);
        let presence_slots = (max_spans / 2)
            .next_power_of_two()
            .clamp(64, MAX_PRESENCE_SLOTS);
        Self {
            max_spans,
            traces_per_endpoint: traces_per_endpoint.max(1),
            state: Mutex::new(State {
                segments: VecDeque::new(),
                segment_spans,
                max_segments: max_spans / segment_spans,
                endpoints: Vec::new(),
                free_endpoints: Vec::new(),
                endpoint_index: HashMap::default(),
                last_endpoint: 0,
                presence: vec![0; presence_slots],
                hasher: RandomState::default(),
                spans: 0,
                next_sequence: 0,
                evicted_traces: 0,
                evicted_spans: 0,
            }),
        }
    }

    /// The most spans this buffer holds.
    pub fn max_spans(&self) -> usize {
        self.max_spans
    }

    /// Up to `limit` whole traces with a span of `endpoint` that started in `window`, most
    /// recent first.
    ///
    /// Examines at most the endpoint's ring of recent trace ids, so the cost does not depend
    /// on how much traffic the buffer has seen. Each trace's spans are in start order.
    pub fn sample_traces(
        &self,
        endpoint: &EndpointKey,
        window: TimeWindow,
        limit: usize,
    ) -> Vec<Vec<Span>> {
        if limit == 0 {
            return Vec::new();
        }
        let state = self.lock();
        let Some((position, ring)) = state
            .endpoint_index
            .get(&endpoint.service)
            .and_then(|operations| operations.get(&endpoint.operation))
            .and_then(|&position| {
                let ring = &state.endpoints[position as usize].as_ref()?.ring;
                Some((position, ring))
            })
        else {
            return Vec::new();
        };
        let mut seen: HashSet<TraceId> =
            HashSet::with_capacity_and_hasher(ring.len(), Default::default());
        let mut sampled = Vec::new();
        // The held spans of the trace being examined, reused from trace to trace.
        let mut held: Vec<&Held> = Vec::new();
        for entry in ring.iter().rev() {
            if sampled.len() == limit {
                break;
            }
            if !window.contains(entry.start_unix_nanos)
                || !state.is_live(entry)
                || !seen.insert(entry.trace_id)
            {
                continue;
            }
            held.clear();
            held.extend(state.held(&entry.trace_id));
            // The entry's start may be that of a span evicted with an older segment while a
            // later span of the trace is still held: check what is held.
            let touches =
                |span: &&Held| span.endpoint == position && window.contains(span.start_unix_nanos);
            if held.iter().any(touches) {
                sampled.push(state.spans(&held));
            }
        }
        sampled
    }

    /// Up to `limit` whole traces with a span that started in `window`, those with the most
    /// recently arrived such span first.
    ///
    /// Scans spans from the newest back and stops once `limit` traces are found, so recent
    /// windows are cheap; a window far in the past may scan the whole buffer (bounded by
    /// `max_spans`).
    pub fn recent_traces(&self, window: TimeWindow, limit: usize) -> Vec<Vec<Span>> {
        let state = self.lock();
        let mut picked: Vec<TraceId> = Vec::new();
        let mut seen = HashSet::default();
        'scan: for segment in state.segments.iter().rev() {
            for span in segment.spans.iter().rev() {
                if picked.len() == limit {
                    break 'scan;
                }
                if window.contains(span.start_unix_nanos) && seen.insert(span.trace_id) {
                    picked.push(span.trace_id);
                }
            }
        }
        picked
            .iter()
            .filter_map(|trace_id| state.trace(trace_id))
            .collect()
    }

    /// The buffered spans of trace `trace_id`, in start order, if it is still buffered.
    pub fn trace(&self, trace_id: TraceId) -> Option<Vec<Span>> {
        self.lock().trace(&trace_id)
    }

    /// Current contents and eviction counters. Counting distinct traces reads every
    /// segment's index: meant for diagnostics, not for every request.
    pub fn stats(&self) -> TraceBufferStats {
        let state = self.lock();
        let traces: HashSet<&TraceId> = state
            .segments
            .iter()
            .flat_map(|segment| segment.traces.keys())
            .collect();
        TraceBufferStats {
            spans: state.spans,
            traces: traces.len(),
            endpoints: state.endpoints.iter().flatten().count(),
            evicted_traces: state.evicted_traces,
            evicted_spans: state.evicted_spans,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Every update leaves the state consistent before it could panic, so a poisoned lock
        // still guards valid data.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records `spans`, a slice at a time under the lock.
    fn record_spans(&self, spans: &[Span]) {
        // Large batches (an OTLP export) take the lock in slices, so that a request recording
        // its one span never waits behind thousands.
        for slice in spans.chunks(LOCKED_SLICE) {
            let mut state = self.lock();
            for span in slice {
                state.insert(span, self.traces_per_endpoint);
            }
        }
    }
}

impl State {
    /// True while the segment `entry`'s span arrived in is buffered.
    fn is_live(&self, entry: &RingEntry) -> bool {
        self.segments
            .front()
            .is_some_and(|oldest| entry.sequence >= oldest.sequence)
    }

    /// The presence slot of `trace_id`.
    fn presence_slot(&self, trace_id: &TraceId) -> usize {
        // The table's length is a power of two.
        self.hasher.hash_one(trace_id) as usize & (self.presence.len() - 1)
    }

    /// Every buffered span of `trace_id`, in arrival order.
    fn held<'a>(&'a self, trace_id: &'a TraceId) -> impl Iterator<Item = &'a Held> {
        let present = self.presence[self.presence_slot(trace_id)];
        self.segments
            .iter()
            .filter(move |segment| present & segment_bit(segment.sequence) != 0)
            .flat_map(move |segment| segment.trace_spans(trace_id))
    }

    /// Every buffered span of `trace_id`, in start order.
    fn trace(&self, trace_id: &TraceId) -> Option<Vec<Span>> {
        let held: Vec<&Held> = self.held(trace_id).collect();
        (!held.is_empty()).then(|| self.spans(&held))
    }

    /// Buffered spans as spans again, in start order.
    fn spans(&self, held: &[&Held]) -> Vec<Span> {
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

    fn insert(&mut self, span: &Span, traces_per_endpoint: usize) {
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
        segment.push(Held {
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
        self.spans += 1;
    }

    /// Starts a new newest segment, evicting the oldest (and reusing its memory) when the
    /// budget is spent.
    fn open_segment(&mut self) {
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
    fn prune_rings(&mut self) {
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
fn segment_bit(sequence: u64) -> u16 {
    1 << (sequence % SEGMENTS as u64)
}

/// The position of `span`'s endpoint in `endpoints`, added (in a free slot if there is one)
/// if it is not there.
fn endpoint_of(
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
fn index(ring: &mut VecDeque<RingEntry>, span: &Span, sequence: u64, traces_per_endpoint: usize) {
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

impl Collector for TraceBuffer {
    fn record_batch(&self, spans: Vec<Span>) -> RecordOutcome {
        self.record_borrowed(&spans)
    }

    /// Copies what RCA reads of each span straight into the buffer.
    fn record_borrowed(&self, spans: &[Span]) -> RecordOutcome {
        self.record_spans(spans);
        RecordOutcome::accepted(spans.len())
    }

    /// Spans are visible as soon as they are recorded; nothing to wait for.
    fn flush(&self) -> Result<(), CollectorError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use aiops_telemetry_core::SpanId;

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
}
