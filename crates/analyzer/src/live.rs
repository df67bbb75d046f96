use std::collections::BTreeMap;

use foldhash::HashMap;
use std::sync::{Mutex, MutexGuard};

use aiops_telemetry_core::{
    Collector, CollectorError, EndpointKey, RecordOutcome, Span, TimeWindow, WindowStats,
};

use crate::histogram::{Merged, Summary, bucket_of};

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
/// holds more than `retention / width + 2` buckets, whatever the span timestamps say.
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
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// service -> operation -> buckets, so recording looks up by `&str` without allocating.
    services: HashMap<String, HashMap<String, Series>>,
    /// Spans that started before this were evicted already and are dropped.
    evicted_before_unix_nanos: u64,
}

/// One endpoint's buckets, keyed by `start / bucket_width`.
#[derive(Debug, Default)]
struct Series {
    buckets: BTreeMap<u64, TimeBucket>,
}

#[derive(Debug, Default)]
struct TimeBucket {
    total: Summary,
    /// Spans recorded since the analyzer last learned from this bucket.
    unlearned: Option<Box<Summary>>,
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
            state: Mutex::new(State::default()),
        }
    }

    /// Statistics per endpoint with traffic in `window`, sorted by endpoint; a request slower
    /// than `timeout_ms` is a timeout (counted from the histogram, see [`WindowStats`]).
    pub fn window_stats(
        &self,
        window: TimeWindow,
        timeout_ms: f64,
    ) -> Vec<(EndpointKey, WindowStats)> {
        let keys = self.keys_of(window);
        let state = self.lock();
        let mut out: Vec<_> = state
            .series()
            .filter_map(|(endpoint, series)| {
                let merged = series.merge(keys.clone());
                (!merged.is_empty()).then(|| (endpoint, merged.stats(timeout_ms)))
            })
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// Statistics of one endpoint over `window`, or `None` when it had no traffic there.
    pub(crate) fn endpoint_stats(
        &self,
        endpoint: &EndpointKey,
        window: TimeWindow,
        timeout_ms: f64,
    ) -> Option<WindowStats> {
        let keys = self.keys_of(window);
        let state = self.lock();
        let series = state
            .services
            .get(&endpoint.service)?
            .get(&endpoint.operation)?;
        let merged = series.merge(keys);
        (!merged.is_empty()).then(|| merged.stats(timeout_ms))
    }

    /// Every endpoint with buckets still held, sorted.
    pub fn endpoints(&self) -> Vec<EndpointKey> {
        let state = self.lock();
        let mut endpoints: Vec<_> = state.series().map(|(endpoint, _)| endpoint).collect();
        endpoints.sort();
        endpoints
    }

    /// Forgets every bucket that ends at or before `cutoff_unix_nanos`; spans that would land
    /// in such a bucket are dropped from now on.
    pub fn evict_before(&self, cutoff_unix_nanos: u64) {
        let first_kept = cutoff_unix_nanos / self.bucket_width_nanos;
        let mut state = self.lock();
        let boundary = first_kept.saturating_mul(self.bucket_width_nanos);
        state.evicted_before_unix_nanos = state.evicted_before_unix_nanos.max(boundary);
        state.services.retain(|_, operations| {
            operations.retain(|_, series| {
                series.buckets = series.buckets.split_off(&first_kept);
                !series.buckets.is_empty()
            });
            !operations.is_empty()
        });
    }

    /// The retention this was built with, in nanoseconds.
    pub(crate) fn retention_nanos(&self) -> u64 {
        self.retention_nanos
    }

    /// Takes, per endpoint, every span recorded since the last call that lies in a bucket
    /// ending at or before `before_unix_nanos`: the traffic the analyzer has not learned from.
    ///
    /// Each span is handed out once, late ones included, so learning neither misses nor
    /// double counts anything. One analyzer should own this.
    pub(crate) fn take_unlearned(
        &self,
        before_unix_nanos: u64,
        timeout_ms: f64,
    ) -> Vec<(EndpointKey, WindowStats)> {
        let end_key = before_unix_nanos / self.bucket_width_nanos;
        let mut state = self.lock();
        let mut out = Vec::new();
        for (service, operations) in &mut state.services {
            for (operation, series) in operations {
                let mut merged = Merged::default();
                for bucket in series.buckets.range_mut(..end_key).map(|(_, b)| b) {
                    if let Some(unlearned) = bucket.unlearned.take() {
                        merged.add(&unlearned);
                    }
                }
                if !merged.is_empty() {
                    let endpoint = EndpointKey::new(service.clone(), operation.clone());
                    out.push((endpoint, merged.stats(timeout_ms)));
                }
            }
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// The bucket keys whose start lies in `window`.
    fn keys_of(&self, window: TimeWindow) -> std::ops::Range<u64> {
        let width = self.bucket_width_nanos;
        window.start_unix_nanos.div_ceil(width)..window.end_unix_nanos.div_ceil(width)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic elsewhere while holding the lock leaves counters that are still usable.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Records one span; false when it is dropped.
    fn record_one(&self, state: &mut State, span: &Span) -> bool {
        if span.start_unix_nanos < state.evicted_before_unix_nanos {
            return false;
        }
        let key = span.start_unix_nanos / self.bucket_width_nanos;
        let is_error = span.is_error();
        let operations = match state.services.get_mut(&*span.service) {
            Some(operations) => operations,
            None => state.services.entry(span.service.to_string()).or_default(),
        };
        let series = match operations.get_mut(&*span.operation) {
            Some(series) => series,
            None => operations.entry(span.operation.to_string()).or_default(),
        };
        series.record(key, span.duration_nanos, is_error, self.max_buckets)
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
        if !self.buckets.contains_key(&key) && self.buckets.len() >= max {
            match self.buckets.first_key_value() {
                Some((&oldest, _)) if oldest < key => {
                    self.buckets.pop_first();
                }
                _ => return false,
            }
        }
        let latency_bucket = bucket_of(duration_nanos as f64 / 1e6);
        let bucket = self.buckets.entry(key).or_default();
        bucket
            .total
            .record_in(latency_bucket, duration_nanos, is_error);
        bucket.unlearned.get_or_insert_default().record_in(
            latency_bucket,
            duration_nanos,
            is_error,
        );
        true
    }

    fn merge(&self, keys: std::ops::Range<u64>) -> Merged {
        let mut merged = Merged::default();
        if keys.start < keys.end {
            for bucket in self.buckets.range(keys).map(|(_, bucket)| bucket) {
                merged.add(&bucket.total);
            }
        }
        merged
    }
}

impl Collector for LiveWindows {
    /// Never blocks beyond a brief mutex; drops the span only if it is older than what was
    /// evicted.
    fn record(&self, span: Span) -> RecordOutcome {
        let mut state = self.lock();
        if self.record_one(&mut state, &span) {
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
        let mut state = self.lock();
        let accepted = spans
            .iter()
            .map(|span| self.record_one(&mut state, span))
            .filter(|&kept| kept)
            .count();
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
