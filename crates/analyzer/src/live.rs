use std::collections::BTreeMap;
use std::ops::Range;

use std::sync::{Mutex, MutexGuard};

use aiops_telemetry_core::{
    Collector, CollectorError, EndpointKey, RecordOutcome, Span, TimeWindow, WindowStats,
};

use crate::histogram::{Merged, Summary, bucket_of_nanos};

mod buckets;
use buckets::Buckets;

const SECOND_NANOS: u64 = 1_000_000_000;

/// In-memory, per-endpoint time buckets of recent requests, fed as a [`Collector`].
///
/// Each span lands in the bucket of its own start time (never a clock read), so late and
/// out-of-order spans count where they belong. A bucket keeps counts, errors, the exact
/// latency sum, minimum and maximum, and a log-scale latency histogram (within 5%), so
/// [`window_stats`](Self::window_stats) merges at most one bucket per width of the window per
/// endpoint: its cost does not depend on how many spans were recorded.
///
/// A bucket belongs to a window when the bucket's start lies in the window, so windows are in
/// effect rounded to bucket boundaries; with 1 s buckets and a 30 s window that is noise.
///
/// Memory is bounded: buckets older than the retention are evicted by
/// [`evict_before`](Self::evict_before) (which [`Analyzer::observe_live`] calls every cycle),
/// spans older than what was evicted are dropped and counted as such, and no endpoint ever
/// holds more than `retention / width + 2` buckets, whatever the span timestamps say. A
/// bucket keeps up to 16 latency counts inline, so steady traffic opens and evicts buckets
/// without allocating. Eviction touches only the buckets it drops.
///
/// Each endpoint also keeps the last window asked for merged into one dense histogram (under
/// 1 KB), updated as spans arrive and buckets are evicted, so that moving the window on to
/// the next cycle costs the buckets that entered or left it rather than every bucket in it.
///
/// At most `max_endpoints` endpoints are tracked ([`DEFAULT_MAX_ENDPOINTS`] unless told
/// otherwise), so that a sender with unbounded operation names cannot grow memory without
/// limit: spans of further endpoints are dropped and counted ([`LiveWindows::untracked_spans`])
/// until eviction frees a place.
///
/// Recording takes a mutex for a few map look-ups and counter increments per span, and never
/// waits for anything else.
///
/// [`Analyzer::observe_live`]: crate::Analyzer::observe_live
#[derive(Debug)]
pub struct LiveWindows {
    bucket_width_nanos: u64,
    retention_nanos: u64,
    max_buckets: usize,
    max_endpoints: usize,
    state: Mutex<State>,
}

/// One endpoint's part of [`LiveWindows::cycle_stats`].
#[derive(Clone, Copy, Debug)]
pub(crate) struct CycleStats {
    /// Its statistics over the detection window, if it had traffic there.
    pub(crate) current: Option<WindowStats>,
    /// Its traffic not learned from yet, if any.
    pub(crate) fresh: Option<WindowStats>,
}

/// Endpoints [`LiveWindows`] tracks at most, unless told otherwise.
pub const DEFAULT_MAX_ENDPOINTS: usize = 10_000;

#[derive(Debug, Default)]
struct State {
    /// service -> operation -> buckets, so recording looks up by `&str` without allocating,
    /// and walking it visits endpoints in order (no sort per cycle).
    services: BTreeMap<String, BTreeMap<String, Series>>,
    /// Series in `services`.
    endpoints: usize,
    /// Spans dropped because their endpoint would have exceeded the endpoint limit.
    untracked_spans: u64,
    /// Spans that started before this were evicted already and are dropped.
    evicted_before_unix_nanos: u64,
    /// Scratch space for merging buckets, kept empty between calls: allocated once rather
    /// than every cycle.
    scratch: Merged,
}

/// One endpoint's buckets, keyed by `start / bucket_width`.
///
/// A bucket that is not settled yet (see [`settled_before`](Self::settled_before)) has not
/// been learned from at all, so its total is also its unlearned traffic: only spans that
/// arrive late for settled buckets need counting apart.
#[derive(Debug, Default)]
struct Series {
    buckets: Buckets,
    /// The buckets of the last window asked for, merged, and kept up to date as spans
    /// arrive and buckets are evicted: moving it on costs the buckets that entered or left
    /// it, not every bucket in it.
    window: RunningWindow,
    /// Every bucket before this key was handed out for learning already; spans that arrive
    /// for them later also go to `settled_unlearned`.
    settled_before: u64,
    /// Unlearned spans that arrived for buckets already handed out.
    settled_unlearned: Summary,
    /// Failures reported late (ERROR logs of spans counted already) for buckets already
    /// handed out: learned with the next fresh slice that has requests enough to carry them,
    /// so that an endpoint's baseline holds the failures its logs report, as its windows do.
    late_failures: u64,
}

/// The sum of the buckets with keys in `keys`.
#[derive(Debug, Default)]
struct RunningWindow {
    keys: Range<u64>,
    merged: Merged,
    /// A bucket holding the fastest or slowest request left; the extremes must be recomputed.
    stale_extremes: bool,
}

impl Default for LiveWindows {
    /// One-second buckets kept for ten minutes.
    fn default() -> Self {
        Self::new(SECOND_NANOS, 600 * SECOND_NANOS)
    }
}

impl LiveWindows {
    /// Buckets `bucket_width_nanos` wide (at least 1), kept for `retention_nanos` (at least
    /// one bucket). The retention should cover the analysis window plus a cycle or two.
    pub fn new(bucket_width_nanos: u64, retention_nanos: u64) -> Self {
        let width = bucket_width_nanos.max(1);
        let retention = retention_nanos.max(width);
        Self {
            bucket_width_nanos: width,
            retention_nanos: retention,
            max_buckets: usize::try_from(retention / width)
                .unwrap_or(usize::MAX)
                .saturating_add(2),
            max_endpoints: DEFAULT_MAX_ENDPOINTS,
            state: Mutex::new(State::default()),
        }
    }

    /// The same, tracking at most `max_endpoints` endpoints (at least one).
    pub fn with_max_endpoints(mut self, max_endpoints: usize) -> Self {
        self.max_endpoints = max_endpoints.max(1);
        self
    }

    /// Spans dropped so far because their endpoint was new while `max_endpoints` endpoints
    /// were tracked.
    pub fn untracked_spans(&self) -> u64 {
        self.lock().untracked_spans
    }

    /// Statistics per endpoint with traffic in `window`, sorted by endpoint; a request slower
    /// than `timeout_ms` is a timeout (counted from the histogram, see [`WindowStats`]).
    pub fn window_stats(
        &self,
        window: TimeWindow,
        timeout_ms: f64,
    ) -> Vec<(EndpointKey, WindowStats)> {
        let keys = self.keys_of(window);
        self.per_endpoint(|series, _| series.window_stats(keys.clone(), timeout_ms))
    }

    /// What one analysis cycle reads, in one pass over the endpoints, sorted by endpoint: per
    /// endpoint with either, its statistics over `window` (as
    /// [`window_stats`](Self::window_stats)) and, handed out, every span recorded since the
    /// last call that lies in a bucket ending at or before `learn_before_unix_nanos`: the
    /// traffic the analyzer has not learned from.
    ///
    /// Each span is handed out once, late ones included, so learning neither misses nor
    /// double counts anything. One analyzer should own this.
    pub(crate) fn cycle_stats(
        &self,
        window: TimeWindow,
        learn_before_unix_nanos: u64,
        timeout_ms: f64,
    ) -> Vec<(EndpointKey, CycleStats)> {
        let keys = self.keys_of(window);
        let end_key = learn_before_unix_nanos / self.bucket_width_nanos;
        self.per_endpoint(|series, scratch| {
            let stats = CycleStats {
                current: series.window_stats(keys.clone(), timeout_ms),
                fresh: series.take_unlearned(end_key, scratch, timeout_ms),
            };
            (stats.current.is_some() || stats.fresh.is_some()).then_some(stats)
        })
    }

    /// Statistics of one endpoint over `window`, or `None` when it had no traffic there.
    pub(crate) fn endpoint_stats(
        &self,
        endpoint: &EndpointKey,
        window: TimeWindow,
        timeout_ms: f64,
    ) -> Option<WindowStats> {
        let keys = self.keys_of(window);
        let mut guard = self.lock();
        let state = &mut *guard;
        let series = state
            .services
            .get(endpoint.service.as_str())?
            .get(endpoint.operation.as_str())?;
        let merged = &mut state.scratch;
        series.merge_into(keys, merged);
        let stats = (!merged.is_empty()).then(|| merged.stats(timeout_ms));
        merged.reset();
        stats
    }

    /// When the newest bucket of `endpoint` in `window` that holds a request ends, or `None`
    /// when it had no traffic there.
    pub(crate) fn newest_traffic_end(
        &self,
        endpoint: &EndpointKey,
        window: TimeWindow,
    ) -> Option<u64> {
        let keys = self.keys_of(window);
        let state = self.lock();
        let series = state
            .services
            .get(endpoint.service.as_str())?
            .get(endpoint.operation.as_str())?;
        let newest = series.buckets.newest_in(keys)?;
        Some((newest + 1).saturating_mul(self.bucket_width_nanos))
    }

    /// Every endpoint with buckets still held, sorted.
    pub fn endpoints(&self) -> Vec<EndpointKey> {
        let state = self.lock();
        state.series().map(|(endpoint, _)| endpoint).collect()
    }

    /// Forgets every bucket that ends at or before `cutoff_unix_nanos`; spans that would land
    /// in such a bucket are dropped from now on.
    pub fn evict_before(&self, cutoff_unix_nanos: u64) {
        let first_kept = cutoff_unix_nanos / self.bucket_width_nanos;
        let mut guard = self.lock();
        let state = &mut *guard;
        let boundary = first_kept.saturating_mul(self.bucket_width_nanos);
        state.evicted_before_unix_nanos = state.evicted_before_unix_nanos.max(boundary);
        let mut removed = 0;
        state.services.retain(|_, operations| {
            operations.retain(|_, series| {
                series.evict_before(first_kept);
                let keep = !series.buckets.is_empty();
                removed += usize::from(!keep);
                keep
            });
            !operations.is_empty()
        });
        state.endpoints -= removed;
    }

    /// The retention this was built with, in nanoseconds.
    pub(crate) fn retention_nanos(&self) -> u64 {
        self.retention_nanos
    }

    /// `read` of every endpoint that gives something, sorted by endpoint. `read` gets scratch
    /// space to merge in, which it must leave empty.
    fn per_endpoint<T>(
        &self,
        mut read: impl FnMut(&mut Series, &mut Merged) -> Option<T>,
    ) -> Vec<(EndpointKey, T)> {
        let mut guard = self.lock();
        let state = &mut *guard;
        let mut out = Vec::with_capacity(state.endpoints);
        for (service, operations) in &mut state.services {
            for (operation, series) in operations {
                if let Some(value) = read(series, &mut state.scratch) {
                    out.push((EndpointKey::new(service, operation), value));
                }
            }
        }
        // The maps are walked in (service, operation) order, which is the endpoints' order.
        debug_assert!(out.is_sorted_by(|a, b| a.0 < b.0));
        out
    }

    /// Counts a request of `endpoint` that started at `start_unix_nanos`, recorded earlier as a
    /// success, as failed: its failure was reported after the span (an ERROR log of the span
    /// that arrived later). Returns false, changing nothing, when the endpoint or the bucket is
    /// gone, or every request of the bucket is counted as failed already.
    pub fn record_late_failure(&self, endpoint: &EndpointKey, start_unix_nanos: u64) -> bool {
        let key = start_unix_nanos / self.bucket_width_nanos;
        let mut state = self.lock();
        let Some(series) = state
            .services
            .get_mut(endpoint.service.as_str())
            .and_then(|operations| operations.get_mut(endpoint.operation.as_str()))
        else {
            return false;
        };
        let Ok(index) = series.buckets.find(key) else {
            return false;
        };
        if !series.buckets.summaries[index].add_failure() {
            return false;
        }
        if series.window.keys.contains(&key) {
            series.window.merged.add_failure();
        }
        if key < series.settled_before {
            series.late_failures += 1;
        }
        true
    }

    /// The bucket keys whose start lies in `window`.
    fn keys_of(&self, window: TimeWindow) -> Range<u64> {
        let width = self.bucket_width_nanos;
        window.start_unix_nanos.div_ceil(width)..window.end_unix_nanos.div_ceil(width)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic elsewhere while holding the lock leaves counters that are still usable.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Records `spans`; returns how many were kept. Spans usually come in runs of one
    /// endpoint: its series is looked up once per run.
    fn record_spans(&self, state: &mut State, spans: &[Span]) -> usize {
        let mut kept = 0;
        for run in spans.chunk_by(Span::same_endpoint) {
            let first = &run[0];
            // Spans older than what was evicted are dropped, and never open an endpoint.
            let evicted_before = state.evicted_before_unix_nanos;
            let is_recent = |span: &&Span| span.start_unix_nanos >= evicted_before;
            if !run.iter().any(|span| is_recent(&span)) {
                continue;
            }
            let recent = || run.iter().filter(is_recent).count() as u64;

            let full = state.endpoints >= self.max_endpoints;
            let operations = match state.services.get_mut(&*first.service) {
                Some(operations) => operations,
                None if full => {
                    state.untracked_spans += recent();
                    continue;
                }
                None => state.services.entry(first.service.to_string()).or_default(),
            };
            let series = match operations.get_mut(&*first.operation) {
                Some(series) => series,
                None if full => {
                    state.untracked_spans += recent();
                    continue;
                }
                None => {
                    state.endpoints += 1;
                    operations.entry(first.operation.to_string()).or_default()
                }
            };
            for span in run.iter().filter(is_recent) {
                let key = span.start_unix_nanos / self.bucket_width_nanos;
                if series.record(key, span.duration_nanos, span.is_error(), self.max_buckets) {
                    kept += 1;
                }
            }
        }
        kept
    }
}

impl State {
    fn series(&self) -> impl Iterator<Item = (EndpointKey, &Series)> {
        self.services.iter().flat_map(|(service, operations)| {
            operations
                .iter()
                .map(move |(operation, series)| (EndpointKey::new(service, operation), series))
        })
    }
}

impl Series {
    fn record(&mut self, key: u64, duration_nanos: u64, is_error: bool, max: usize) -> bool {
        let index = match self.buckets.find(key) {
            Ok(index) => index,
            Err(mut index) => {
                if self.buckets.len() >= max {
                    match self.buckets.keys.front() {
                        Some(&oldest) if oldest < key => {
                            self.evict_first();
                            // The oldest bucket lay before the new one.
                            index -= 1;
                        }
                        _ => return false,
                    }
                }
                self.buckets.insert(index, key, Summary::default());
                index
            }
        };
        let latency_bucket = bucket_of_nanos(duration_nanos);
        self.buckets.summaries[index].record_in(latency_bucket, duration_nanos, is_error);
        if key < self.settled_before {
            self.settled_unlearned
                .record_in(latency_bucket, duration_nanos, is_error);
        }
        if self.window.keys.contains(&key) {
            self.window
                .merged
                .record_in(latency_bucket, duration_nanos, is_error);
        }
        true
    }

    /// Drops the buckets before key `first_kept`, oldest first, keeping a few for reuse.
    fn evict_before(&mut self, first_kept: u64) {
        while self
            .buckets
            .keys
            .front()
            .is_some_and(|&key| key < first_kept)
        {
            self.evict_first();
        }
    }

    /// Drops the oldest bucket, taking it out of the running window first.
    fn evict_first(&mut self) {
        let Some((key, evicted)) = self.buckets.pop_front() else {
            return;
        };
        if self.window.keys.contains(&key) {
            self.window.remove(&evicted);
        }
    }

    /// The running window moved to `keys`: buckets that left it are taken out, buckets that
    /// entered it are added, so a cycle touches only the buckets that changed sides. A window
    /// that moved backwards, or jumped past the previous one, is merged afresh.
    fn advance_window(&mut self, keys: Range<u64>) {
        let current = self.window.keys.clone();
        if current == keys {
            return;
        }
        let incremental = !current.is_empty()
            && keys.start >= current.start
            && keys.end >= current.end
            && keys.start <= current.end;
        let window = &mut self.window;
        if incremental {
            for left in self.buckets.range(current.start..keys.start) {
                window.remove(left);
            }
            for entered in self.buckets.range(current.end..keys.end) {
                window.add(entered);
            }
        } else {
            window.merged.reset();
            window.stale_extremes = false;
            for summary in self.buckets.range(keys.clone()) {
                window.add(summary);
            }
        }
        if window.stale_extremes {
            window.stale_extremes = false;
            let extremes = self
                .buckets
                .range(keys.clone())
                .filter(|summary| !summary.is_empty())
                .map(Summary::extremes)
                .reduce(|(low, high), (min, max)| (low.min(min), high.max(max)));
            if let Some(extremes) = extremes {
                window.merged.set_extremes(extremes);
            }
        }
        window.keys = keys;
    }

    /// Moves the running window to `keys` and reads it, `None` when it is empty.
    fn window_stats(&mut self, keys: Range<u64>, timeout_ms: f64) -> Option<WindowStats> {
        self.advance_window(keys);
        let merged = &self.window.merged;
        (!merged.is_empty()).then(|| merged.stats(timeout_ms))
    }

    /// Hands out the unlearned traffic of buckets before key `end_key`, `None` when there is
    /// none: what was recorded late into buckets already settled, and the buckets settled
    /// since the previous call (whole: nothing of them was learned yet). Merges in `scratch`
    /// and leaves it empty.
    fn take_unlearned(
        &mut self,
        end_key: u64,
        scratch: &mut Merged,
        timeout_ms: f64,
    ) -> Option<WindowStats> {
        scratch.add(&self.settled_unlearned);
        self.settled_unlearned.clear();
        if end_key > self.settled_before {
            for summary in self.buckets.range(self.settled_before..end_key) {
                scratch.add(summary);
            }
            self.settled_before = end_key;
        }
        self.late_failures -= scratch.add_failures(self.late_failures);
        let stats = (!scratch.is_empty()).then(|| scratch.stats(timeout_ms));
        scratch.reset();
        stats
    }

    /// Adds the buckets with keys in `keys` to `merged`.
    fn merge_into(&self, keys: Range<u64>, merged: &mut Merged) {
        for summary in self.buckets.range(keys) {
            merged.add(summary);
        }
    }
}

impl RunningWindow {
    fn add(&mut self, summary: &Summary) {
        self.merged.add(summary);
    }

    /// Takes `summary` out; when it held the window's fastest or slowest request, the
    /// extremes are recomputed from the buckets before they are read.
    fn remove(&mut self, summary: &Summary) {
        if summary.is_empty() {
            return;
        }
        let (min, max) = summary.extremes();
        let (low, high) = self.merged.extremes();
        if min <= low || max >= high {
            self.stale_extremes = true;
        }
        self.merged.subtract(summary);
    }
}

impl Collector for LiveWindows {
    /// Never blocks beyond a brief mutex; drops the span only if it is older than what was
    /// evicted.
    fn record(&self, span: Span) -> RecordOutcome {
        let mut state = self.lock();
        if self.record_spans(&mut state, std::slice::from_ref(&span)) == 1 {
            RecordOutcome::accepted(1)
        } else {
            RecordOutcome::dropped(1)
        }
    }

    /// Never blocks beyond a brief mutex; drops only spans older than what was evicted.
    fn record_batch(&self, spans: Vec<Span>) -> RecordOutcome {
        self.record_borrowed(&spans)
    }

    /// Only reads the spans: counters and histograms, no copy.
    fn record_borrowed(&self, spans: &[Span]) -> RecordOutcome {
        let total = spans.len();
        let accepted = self.record_spans(&mut self.lock(), spans);
        RecordOutcome {
            accepted,
            dropped: total - accepted,
        }
    }

    /// Spans are visible as soon as they are recorded; nothing to flush.
    fn flush(&self) -> Result<(), CollectorError> {
        Ok(())
    }
}
