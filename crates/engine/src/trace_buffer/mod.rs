//! The bounded buffer of recent traces that RCA samples from.

use std::collections::VecDeque;

use foldhash::fast::RandomState;
use foldhash::{HashMap, HashSet};
use std::sync::{Mutex, MutexGuard, PoisonError};

use aiops_telemetry_core::{
    Collector, CollectorError, EndpointKey, RecordOutcome, Span, TimeWindow, TraceId,
};

/// How many recent trace ids [`TraceBuffer`] remembers per endpoint, unless told otherwise.
pub const DEFAULT_TRACES_PER_ENDPOINT: usize = 256;

/// Spans recorded per lock acquisition.
const LOCKED_SLICE: usize = 256;

mod census;
mod endpoints;
mod marks;
mod segment;
mod state;
#[cfg(test)]
mod tests;

pub use census::CallRecord;
use segment::{Held, NO_SPAN};
use state::{MAX_PRESENCE_SLOTS, SEGMENTS, State};

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
/// use aiops_engine::TraceBuffer;
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
                census: Default::default(),
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
        let Some((position, ring)) = state.ring_of(endpoint) else {
            return Vec::new();
        };
        // Sized for the few traces a sample takes, not the whole ring: a cycle samples many
        // endpoints, and clearing a table for every trace the ring could hold costs more
        // than the sample.
        let mut seen: HashSet<TraceId> = HashSet::with_capacity_and_hasher(
            limit.saturating_mul(2).min(ring.len()),
            Default::default(),
        );
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

    /// The calls made in a share of the traces recorded since the last census (about `limit`
    /// traces at the current traffic), chosen by a hash of their trace id, so that they show
    /// each endpoint's calls as often as it made them; each trace is read once the first of its
    /// spans to arrive started before `settled_until`. One record per span.
    ///
    /// The choice costs a hash per trace as its first span is recorded; at most eight times
    /// `limit` chosen traces (and at least 1,024) wait to settle, and the census reads only
    /// those.
    ///
    /// The `watched` endpoints (those whose calls are dropping) are counted in full on top:
    /// each of their traces that started since the last census, before `settled_until`, and
    /// was not chosen is read too (at most 64 per endpoint, chosen by id when more), for the
    /// watched endpoint's own spans only.
    pub fn census(
        &self,
        settled_until: u64,
        limit: usize,
        watched: &[EndpointKey],
    ) -> Vec<CallRecord> {
        self.lock().census(settled_until, limit, watched)
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
