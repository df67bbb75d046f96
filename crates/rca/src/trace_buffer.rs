//! The bounded buffer of recent traces that RCA samples from.

use std::collections::VecDeque;

use foldhash::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use aiops_telemetry_core::{
    Collector, CollectorError, EndpointKey, RecordOutcome, Span, TimeWindow, TraceId,
};

/// How many recent trace ids [`TraceBuffer`] remembers per endpoint, unless told otherwise.
pub const DEFAULT_TRACES_PER_ENDPOINT: usize = 256;

/// Spans recorded per lock acquisition.
const LOCKED_SLICE: usize = 256;

/// A bounded in-memory buffer of recent spans grouped by trace, fed as a [`Collector`].
///
/// Root cause analysis needs whole traces of the requests that touched an anomalous endpoint.
/// Looking those up in a database would need an index on the random trace id, which makes
/// every insert several times slower; recent traces are all RCA needs, so they live here.
///
/// # Bounds
///
/// - At most `max_spans` spans are held. When a batch pushes the total past it, whole traces
///   are evicted, oldest first (in the order their first span arrived), and counted
///   ([`TraceBufferStats::evicted_traces`]). A span that arrives for an evicted trace starts
///   a new, partial trace.
/// - Per endpoint, the ids of the `traces_per_endpoint` most recent traces that touched it are
///   kept in a ring, so [`sample_traces`](Self::sample_traces) examines at most that many
///   entries whatever the traffic. Rings are dropped once none of their traces are buffered,
///   so the number of rings never exceeds the number of endpoints among buffered spans.
///
/// Memory is therefore about `max_spans` spans plus `traces_per_endpoint` trace ids (24 bytes
/// each) per endpoint with buffered spans.
///
/// # Concurrency
///
/// Recording takes a short mutex section per slice of a few hundred spans (hash-map inserts,
/// no I/O, no allocation beyond the spans and their index entries), so it honours the collector
/// contract of never waiting for anything but other short sections. Readers copy what they
/// return under the same lock; [`sample_traces`](Self::sample_traces) examines one endpoint's
/// ring only.
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
    /// Traces evicted since the buffer was created.
    pub evicted_traces: u64,
    /// Spans evicted with them.
    pub evicted_spans: u64,
}

#[derive(Debug, Default)]
struct State {
    traces: HashMap<TraceId, BufferedTrace>,
    /// Trace ids in the order their first span arrived; the front is evicted first. A trace id
    /// appears once per incarnation, tagged with the incarnation's generation so that a stale
    /// entry (the trace was evicted and re-created) is recognised.
    arrival: VecDeque<(TraceId, u64)>,
    /// service -> operation -> recent traces, oldest at the front. Nested so that recording
    /// looks endpoints up by `&str` without allocating a key.
    rings: HashMap<String, HashMap<String, VecDeque<RingEntry>>>,
    spans: usize,
    next_generation: u64,
    evicted_traces: u64,
    evicted_spans: u64,
}

/// One trace that touched an endpoint: when its latest span of that endpoint started, and
/// which incarnation of the trace id it was (a trace evicted and re-created by a late span is
/// a different incarnation, which may not touch the endpoint at all).
#[derive(Clone, Copy, Debug)]
struct RingEntry {
    start_unix_nanos: u64,
    trace_id: TraceId,
    generation: u64,
}

#[derive(Debug)]
struct BufferedTrace {
    generation: u64,
    spans: Vec<Span>,
    latest_start_unix_nanos: u64,
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
        Self {
            max_spans: max_spans.max(1),
            traces_per_endpoint: traces_per_endpoint.max(1),
            state: Mutex::new(State::default()),
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
        let Some(ring) = state
            .rings
            .get(&endpoint.service)
            .and_then(|operations| operations.get(&endpoint.operation))
        else {
            return Vec::new();
        };
        let mut picked: Vec<TraceId> = Vec::with_capacity(limit.min(ring.len()));
        for entry in ring.iter().rev() {
            if picked.len() == limit {
                break;
            }
            if window.contains(entry.start_unix_nanos)
                && state.is_live(entry)
                && !picked.contains(&entry.trace_id)
            {
                picked.push(entry.trace_id);
            }
        }
        picked
            .iter()
            .filter_map(|trace_id| state.traces.get(trace_id).map(sorted_spans))
            .collect()
    }

    /// Up to `limit` whole traces with a span that started in `window`, most recently
    /// arrived first.
    ///
    /// Scans traces from the newest back and stops once `limit` are found, so recent windows
    /// are cheap; a window far in the past may scan the whole buffer (bounded by `max_spans`).
    pub fn recent_traces(&self, window: TimeWindow, limit: usize) -> Vec<Vec<Span>> {
        let state = self.lock();
        let mut found = Vec::new();
        for (trace_id, generation) in state.arrival.iter().rev() {
            if found.len() == limit {
                break;
            }
            let Some(trace) = state.traces.get(trace_id) else {
                continue;
            };
            if trace.generation == *generation
                && trace.latest_start_unix_nanos >= window.start_unix_nanos
                && trace
                    .spans
                    .iter()
                    .any(|span| window.contains(span.start_unix_nanos))
            {
                found.push(sorted_spans(trace));
            }
        }
        found
    }

    /// The buffered spans of trace `trace_id`, in start order, if it is still buffered.
    pub fn trace(&self, trace_id: TraceId) -> Option<Vec<Span>> {
        self.lock().traces.get(&trace_id).map(sorted_spans)
    }

    /// Current contents and eviction counters.
    pub fn stats(&self) -> TraceBufferStats {
        let state = self.lock();
        TraceBufferStats {
            spans: state.spans,
            traces: state.traces.len(),
            endpoints: state.rings.values().map(HashMap::len).sum(),
            evicted_traces: state.evicted_traces,
            evicted_spans: state.evicted_spans,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Every update leaves the state consistent before it could panic, so a poisoned lock
        // still guards valid data.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl State {
    /// True while the incarnation of the trace `entry` points at is buffered.
    fn is_live(&self, entry: &RingEntry) -> bool {
        self.traces
            .get(&entry.trace_id)
            .is_some_and(|trace| trace.generation == entry.generation)
    }

    fn insert(&mut self, span: Span, traces_per_endpoint: usize) {
        let trace_id = span.trace_id;
        let start = span.start_unix_nanos;
        let trace = match self.traces.get_mut(&trace_id) {
            Some(trace) => trace,
            None => {
                let generation = self.next_generation;
                self.next_generation += 1;
                self.arrival.push_back((trace_id, generation));
                self.traces.entry(trace_id).or_insert(BufferedTrace {
                    generation,
                    spans: Vec::new(),
                    latest_start_unix_nanos: 0,
                })
            }
        };
        trace.latest_start_unix_nanos = trace.latest_start_unix_nanos.max(start);
        index(
            &mut self.rings,
            &span,
            trace.generation,
            traces_per_endpoint,
        );
        trace.spans.push(span);
        self.spans += 1;
    }

    fn evict_until_within(&mut self, max_spans: usize) {
        while self.spans > max_spans {
            let Some((trace_id, generation)) = self.arrival.pop_front() else {
                break;
            };
            let current = self
                .traces
                .get(&trace_id)
                .is_some_and(|trace| trace.generation == generation);
            if !current {
                continue;
            }
            if let Some(trace) = self.traces.remove(&trace_id) {
                self.spans -= trace.spans.len();
                self.evicted_traces += 1;
                self.evicted_spans += trace.spans.len() as u64;
                self.prune_rings(&trace.spans);
            }
        }
    }

    /// Drops ring entries of evicted traces from the front of the rings the evicted spans
    /// touched, and rings left empty, so rings never outlive the traces they point at.
    fn prune_rings(&mut self, evicted: &[Span]) {
        for span in evicted {
            let Some(operations) = self.rings.get_mut(&span.service) else {
                continue;
            };
            let Some(ring) = operations.get_mut(&span.operation) else {
                continue;
            };
            let traces = &self.traces;
            let live = |entry: &RingEntry| {
                traces
                    .get(&entry.trace_id)
                    .is_some_and(|trace| trace.generation == entry.generation)
            };
            while ring.front().is_some_and(|entry| !live(entry)) {
                ring.pop_front();
            }
            if ring.is_empty() {
                operations.remove(&span.operation);
                if operations.is_empty() {
                    self.rings.remove(&span.service);
                }
            }
        }
    }
}

/// Records that `span`'s trace (incarnation `generation`) touched its endpoint.
fn index(
    rings: &mut HashMap<String, HashMap<String, VecDeque<RingEntry>>>,
    span: &Span,
    generation: u64,
    traces_per_endpoint: usize,
) {
    let operations = match rings.get_mut(&span.service) {
        Some(operations) => operations,
        None => rings.entry(span.service.clone()).or_default(),
    };
    let ring = match operations.get_mut(&span.operation) {
        Some(ring) => ring,
        None => operations.entry(span.operation.clone()).or_default(),
    };
    if let Some(back) = ring
        .back_mut()
        .filter(|back| back.trace_id == span.trace_id && back.generation == generation)
    {
        // One entry per trace suffices for sampling; keep the latest start.
        back.start_unix_nanos = back.start_unix_nanos.max(span.start_unix_nanos);
        return;
    }
    ring.push_back(RingEntry {
        start_unix_nanos: span.start_unix_nanos,
        trace_id: span.trace_id,
        generation,
    });
    if ring.len() > traces_per_endpoint {
        ring.pop_front();
    }
}

fn sorted_spans(trace: &BufferedTrace) -> Vec<Span> {
    let mut spans = trace.spans.clone();
    spans.sort_by_key(|span| span.start_unix_nanos);
    spans
}

impl Collector for TraceBuffer {
    fn record_batch(&self, spans: Vec<Span>) -> RecordOutcome {
        let count = spans.len();
        let mut spans = spans.into_iter().peekable();
        while spans.peek().is_some() {
            // Large batches (an OTLP export) take the lock in slices, so that a request
            // recording its one span never waits behind thousands.
            let mut state = self.lock();
            for span in spans.by_ref().take(LOCKED_SLICE) {
                state.insert(span, self.traces_per_endpoint);
            }
            state.evict_until_within(self.max_spans);
        }
        RecordOutcome::accepted(count)
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

    fn span(trace_id: TraceId, operation: &str, start: u64) -> Span {
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
        let buffer = TraceBuffer::new(10);
        for i in 0..10 {
            let _ = buffer.record_batch(checkout(i * 100));
        }
        let stats = buffer.stats();
        assert!(stats.spans <= 10);
        assert_eq!(stats.traces, 3);
        assert_eq!(stats.evicted_traces, 7);
        assert_eq!(stats.evicted_spans, 21);
    }

    #[test]
    fn a_batch_larger_than_a_locked_slice_is_recorded_whole_and_bounded() {
        let buffer = TraceBuffer::new(900);
        let batch: Vec<Span> = (0..400).flat_map(|i| checkout(i * 100)).collect();

        assert_eq!(buffer.record_batch(batch), RecordOutcome::accepted(1_200));

        let stats = buffer.stats();
        assert_eq!((stats.spans, stats.traces), (900, 300));
        assert_eq!(stats.evicted_traces, 100);
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
        let operations: Vec<_> = trace.iter().map(|s| s.operation.as_str()).collect();
        assert_eq!(operations, ["/checkout", "/payment", "/inventory"]);
        assert!(buffer.trace(TraceId::random()).is_none());
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
