//! Request metrics per monitored endpoint, counted from spans as they pass on their way to the
//! engine, for `GET /metrics`.
//!
//! [`MeteredCollector`] wraps the engine's collector: it reads each batch by reference (no
//! copy) before handing it on, under a shared read lock. Batches come in runs of one endpoint:
//! a run costs two string-keyed map look-ups and a handful of relaxed atomic additions, each of
//! its spans a comparison and a local count. A lock is taken for writing only the first time an
//! endpoint is seen. Series are capped so that an OTLP sender with unbounded
//! operation names cannot grow the exposition without limit.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

use foldhash::HashMap;

use aiops_telemetry_core::{Collector, CollectorError, RecordOutcome, Span, SpanKind};

/// Upper bounds of the latency histogram buckets, in seconds (Prometheus' defaults).
pub const DURATION_BUCKETS_SECONDS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Endpoints tracked individually; spans of further endpoints are counted under
/// [`OVERFLOW_LABEL`].
pub const MAX_ENDPOINT_SERIES: usize = 2000;

/// The `service` and `endpoint` label of spans beyond [`MAX_ENDPOINT_SERIES`], and of spans
/// whose service or operation name is longer than [`MAX_LABEL_BYTES`].
pub const OVERFLOW_LABEL: &str = "_other";

/// The longest service or operation name given a series of its own, in bytes: a sender with
/// megabyte-long names would otherwise make every scrape as large.
pub const MAX_LABEL_BYTES: usize = 256;

/// Whether `service` and `operation` may be label values.
pub fn fits_label(service: &str, operation: &str) -> bool {
    service.len() <= MAX_LABEL_BYTES && operation.len() <= MAX_LABEL_BYTES
}

const BUCKET_BOUNDS_NANOS: [u64; 11] = [
    5_000_000,
    10_000_000,
    25_000_000,
    50_000_000,
    100_000_000,
    250_000_000,
    500_000_000,
    1_000_000_000,
    2_500_000_000,
    5_000_000_000,
    10_000_000_000,
];

/// The histogram bucket (an index into [`DURATION_BUCKETS_SECONDS`], or `+Inf` after them)
/// that `nanos` falls in.
fn slot_of(nanos: u64) -> usize {
    BUCKET_BOUNDS_NANOS.partition_point(|&bound| bound < nanos)
}

/// A latency histogram with atomic buckets, cheap to update from many threads.
#[derive(Debug, Default)]
pub struct DurationHistogram {
    sum_nanos: AtomicU64,
    /// Per-bucket (not cumulative) counts; the last slot is `+Inf`.
    buckets: [AtomicU64; BUCKET_BOUNDS_NANOS.len() + 1],
}

impl DurationHistogram {
    /// Adds one observation.
    pub fn observe_nanos(&self, nanos: u64) {
        self.buckets[slot_of(nanos)].fetch_add(1, Ordering::Relaxed);
        self.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    /// Adds the observations gathered in `tally`.
    fn add(&self, tally: &Tally) {
        for (bucket, &count) in self.buckets.iter().zip(&tally.buckets) {
            if count > 0 {
                bucket.fetch_add(count, Ordering::Relaxed);
            }
        }
        self.sum_nanos.fetch_add(tally.sum_nanos, Ordering::Relaxed);
    }

    /// A consistent-enough copy for one scrape.
    pub fn snapshot(&self) -> HistogramSnapshot {
        let buckets: Vec<u64> = self
            .buckets
            .iter()
            .map(|bucket| bucket.load(Ordering::Relaxed))
            .collect();
        HistogramSnapshot {
            // Counted from the buckets so that `_count` always equals the `+Inf` bucket.
            count: buckets.iter().sum(),
            sum_seconds: self.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9,
            buckets,
        }
    }
}

/// A histogram as read at one scrape.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct HistogramSnapshot {
    /// Observations.
    pub count: u64,
    /// Sum of observations, in seconds.
    pub sum_seconds: f64,
    /// Per-bucket counts matching [`DURATION_BUCKETS_SECONDS`], then `+Inf`.
    pub buckets: Vec<u64>,
}

impl HistogramSnapshot {
    /// `(upper bound, count)` pairs as the Prometheus encoder takes them (the `+Inf` bucket last).
    pub fn bounded_buckets(&self) -> Vec<(f64, u64)> {
        DURATION_BUCKETS_SECONDS
            .iter()
            .copied()
            .chain(std::iter::once(f64::INFINITY))
            .zip(self.buckets.iter().copied())
            .collect()
    }
}

/// What one endpoint served.
#[derive(Debug, Default)]
struct EndpointSeries {
    errors: AtomicU64,
    duration: DurationHistogram,
}

impl EndpointSeries {
    fn observe(&self, span: &Span) {
        let mut tally = Tally::default();
        tally.observe(span);
        self.add(&tally);
    }

    fn add(&self, tally: &Tally) {
        if tally.errors > 0 {
            self.errors.fetch_add(tally.errors, Ordering::Relaxed);
        }
        self.duration.add(tally);
    }
}

/// Requests of one endpoint counted locally, then added to its shared series at once: a run
/// of spans of one endpoint costs one set of atomic additions instead of one per span.
#[derive(Debug, Default)]
struct Tally {
    errors: u64,
    sum_nanos: u64,
    buckets: [u64; BUCKET_BOUNDS_NANOS.len() + 1],
}

impl Tally {
    fn observe(&mut self, span: &Span) {
        self.errors += u64::from(span.is_error());
        self.sum_nanos = self.sum_nanos.wrapping_add(span.duration_nanos);
        self.buckets[slot_of(span.duration_nanos)] += 1;
    }
}

/// One endpoint's series as read at one scrape.
#[derive(Clone, Debug, PartialEq)]
pub struct EndpointSnapshot {
    /// The `service` label.
    pub service: String,
    /// The `endpoint` label (the operation).
    pub endpoint: String,
    /// Requests that failed.
    pub errors: u64,
    /// Latency of every request; its count is the request count.
    pub duration: HistogramSnapshot,
}

type ByOperation = HashMap<String, Arc<EndpointSeries>>;

/// Per-endpoint request counts, errors and latency, counted from server and consumer spans
/// (the work an endpoint received; client and internal spans are parts of that work).
#[derive(Default)]
pub struct SpanMetrics {
    by_service: RwLock<HashMap<String, ByOperation>>,
    series: AtomicU64,
    overflow: EndpointSeries,
    /// Spans counted under [`OVERFLOW_LABEL`].
    folded: AtomicU64,
    rejected: AtomicU64,
}

impl fmt::Debug for SpanMetrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SpanMetrics")
            .field("series", &self.series.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl SpanMetrics {
    /// Counts spans refused before recording (invalid OTLP spans).
    pub fn add_rejected(&self, count: u64) {
        self.rejected.fetch_add(count, Ordering::Relaxed);
    }

    /// Spans counted under the [`OVERFLOW_LABEL`] series so far: their endpoint came past
    /// [`MAX_ENDPOINT_SERIES`], or its names are longer than [`MAX_LABEL_BYTES`].
    pub fn folded(&self) -> u64 {
        self.folded.load(Ordering::Relaxed)
    }

    /// Spans refused before recording so far.
    pub fn rejected(&self) -> u64 {
        self.rejected.load(Ordering::Relaxed)
    }

    /// Counts every server and consumer span of `spans`.
    pub fn observe(&self, spans: &[Span]) {
        let mut unseen = Vec::new();
        {
            let by_service = self
                .by_service
                .read()
                .unwrap_or_else(PoisonError::into_inner);
            // Spans come in runs of one endpoint: its series is looked up once per run, and the
            // run's requests are counted locally, then added at once.
            for run in spans.chunk_by(Span::same_endpoint) {
                let mut requests = run.iter().filter(|span| is_request(span)).peekable();
                let Some(first) = requests.peek() else {
                    continue;
                };
                let series = by_service
                    .get(&*first.service)
                    .and_then(|operations| operations.get(&*first.operation));
                match series {
                    Some(series) => {
                        let mut tally = Tally::default();
                        requests.for_each(|span| tally.observe(span));
                        series.add(&tally);
                    }
                    None => unseen.extend(requests),
                }
            }
        }
        if !unseen.is_empty() {
            self.observe_unseen(&unseen);
        }
    }

    #[cold]
    fn observe_unseen(&self, spans: &[&Span]) {
        let mut by_service = self
            .by_service
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        for span in spans {
            let existing = by_service
                .get(&*span.service)
                .and_then(|operations| operations.get(&*span.operation))
                .cloned();
            let series = match existing {
                Some(series) => series,
                None if self.series.load(Ordering::Relaxed) < MAX_ENDPOINT_SERIES as u64
                    && fits_label(&span.service, &span.operation) =>
                {
                    self.series.fetch_add(1, Ordering::Relaxed);
                    let series = Arc::new(EndpointSeries::default());
                    by_service
                        .entry(span.service.to_string())
                        .or_default()
                        .insert(span.operation.to_string(), series.clone());
                    series
                }
                None => {
                    self.overflow.observe(span);
                    self.folded.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
            };
            series.observe(span);
        }
    }

    /// Every endpoint's series, sorted by service and endpoint; the overflow series last when
    /// it counted anything.
    pub fn snapshot(&self) -> Vec<EndpointSnapshot> {
        let by_service = self
            .by_service
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        let mut endpoints: Vec<EndpointSnapshot> = by_service
            .iter()
            .flat_map(|(service, operations)| {
                operations
                    .iter()
                    .map(move |(operation, series)| snapshot(service, operation, series))
            })
            .collect();
        drop(by_service);
        endpoints.sort_by(|a, b| (&a.service, &a.endpoint).cmp(&(&b.service, &b.endpoint)));
        let overflow = snapshot(OVERFLOW_LABEL, OVERFLOW_LABEL, &self.overflow);
        if overflow.duration.count > 0 {
            endpoints.push(overflow);
        }
        endpoints
    }
}

fn is_request(span: &Span) -> bool {
    matches!(span.kind, SpanKind::Server | SpanKind::Consumer)
}

fn snapshot(service: &str, operation: &str, series: &EndpointSeries) -> EndpointSnapshot {
    EndpointSnapshot {
        service: service.to_owned(),
        endpoint: operation.to_owned(),
        errors: series.errors.load(Ordering::Relaxed),
        duration: series.duration.snapshot(),
    }
}

/// A [`Collector`] that counts spans into [`SpanMetrics`] and passes them on unchanged.
pub struct MeteredCollector {
    inner: Arc<dyn Collector>,
    metrics: Arc<SpanMetrics>,
}

impl MeteredCollector {
    /// Counts into `metrics`, then records into `inner`.
    pub fn new(inner: Arc<dyn Collector>, metrics: Arc<SpanMetrics>) -> Self {
        Self { inner, metrics }
    }
}

impl fmt::Debug for MeteredCollector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MeteredCollector")
            .field("metrics", &self.metrics)
            .finish_non_exhaustive()
    }
}

impl Collector for MeteredCollector {
    fn record(&self, span: Span) -> RecordOutcome {
        self.metrics.observe(std::slice::from_ref(&span));
        self.inner.record(span)
    }

    fn record_batch(&self, spans: Vec<Span>) -> RecordOutcome {
        self.metrics.observe(&spans);
        self.inner.record_batch(spans)
    }

    fn record_borrowed(&self, spans: &[Span]) -> RecordOutcome {
        self.metrics.observe(spans);
        self.inner.record_borrowed(spans)
    }

    fn flush(&self) -> Result<(), CollectorError> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aiops_telemetry_core::{SpanId, TraceId};
    use std::sync::Mutex;

    #[derive(Debug, Default)]
    struct Recorded(Mutex<Vec<Span>>);

    impl Collector for Recorded {
        fn record_batch(&self, spans: Vec<Span>) -> RecordOutcome {
            let count = spans.len();
            self.0.lock().expect("lock").extend(spans);
            RecordOutcome::accepted(count)
        }

        fn flush(&self) -> Result<(), CollectorError> {
            Ok(())
        }
    }

    fn span(service: &str, operation: &str, millis: u64) -> Span {
        Span::new(
            TraceId::random(),
            SpanId::random(),
            service.to_owned(),
            operation.to_owned(),
        )
        .with_timing(1, millis * 1_000_000)
    }

    #[test]
    fn histogram_buckets_are_inclusive_upper_bounds() {
        let histogram = DurationHistogram::default();
        for nanos in [5_000_000, 5_000_001, 20_000_000_000] {
            histogram.observe_nanos(nanos);
        }
        let snapshot = histogram.snapshot();
        assert_eq!(snapshot.count, 3);
        assert_eq!(snapshot.buckets[0], 1, "5ms is in the le=0.005 bucket");
        assert_eq!(snapshot.buckets[1], 1);
        assert_eq!(snapshot.buckets[11], 1, "+Inf");
        assert!((snapshot.sum_seconds - 20.010000001).abs() < 1e-9);
    }

    #[test]
    fn requests_errors_and_latency_are_counted_per_endpoint() {
        let metrics = SpanMetrics::default();
        metrics.observe(&[
            span("shop", "/payment", 30),
            span("shop", "/payment", 300).with_http_status(503),
            span("shop", "/health", 1),
        ]);
        metrics.observe(&[span("shop", "/payment", 2)]);

        let snapshot = metrics.snapshot();
        let names: Vec<_> = snapshot.iter().map(|s| s.endpoint.as_str()).collect();
        assert_eq!(names, ["/health", "/payment"]);
        let payment = &snapshot[1];
        assert_eq!((payment.duration.count, payment.errors), (3, 1));
        assert_eq!(payment.duration.bounded_buckets()[0], (0.005, 1));
    }

    #[test]
    fn a_batch_counts_the_same_as_its_spans_one_by_one() {
        // Runs of one endpoint broken by others, by an endpoint not seen yet and by a client
        // span, with errors and latencies in several buckets.
        let batch = [
            span("shop", "/payment", 3),
            span("shop", "/payment", 40).with_http_status(500),
            span("shop", "/health", 1),
            span("shop", "/payment", 700),
            span("shop", "/new", 20),
            span("shop", "/payment", 9).with_kind(SpanKind::Client),
            span("shop", "/payment", 12_000).with_status(aiops_telemetry_core::SpanStatus::Error),
            span("other", "/payment", 2),
        ];
        let batched = SpanMetrics::default();
        batched.observe(&batch[..1]);
        batched.observe(&batch);
        let single = SpanMetrics::default();
        for span in batch[..1].iter().chain(&batch) {
            single.observe(std::slice::from_ref(span));
        }
        assert_eq!(batched.snapshot(), single.snapshot());
        let payment = &batched.snapshot()[3];
        assert_eq!(
            (
                payment.endpoint.as_str(),
                payment.duration.count,
                payment.errors
            ),
            ("/payment", 5, 2)
        );
    }

    #[test]
    fn client_and_internal_spans_are_not_requests() {
        let metrics = SpanMetrics::default();
        metrics.observe(&[
            span("shop", "GET", 1).with_kind(SpanKind::Client),
            span("shop", "query", 1).with_kind(SpanKind::Internal),
            span("queue", "consume", 1).with_kind(SpanKind::Consumer),
        ]);
        let snapshot = metrics.snapshot();
        assert_eq!(snapshot.len(), 1);
        assert_eq!(snapshot[0].service, "queue");
    }

    #[test]
    fn endpoints_beyond_the_cap_share_one_overflow_series() {
        let metrics = SpanMetrics::default();
        let spans: Vec<Span> = (0..MAX_ENDPOINT_SERIES + 3)
            .map(|index| span("svc", &format!("/item/{index}"), 1))
            .collect();
        metrics.observe(&spans);

        let snapshot = metrics.snapshot();
        assert_eq!(snapshot.len(), MAX_ENDPOINT_SERIES + 1);
        let overflow = snapshot.last().expect("overflow series");
        assert_eq!(
            (&*overflow.service, overflow.duration.count),
            (OVERFLOW_LABEL, 3)
        );
        assert_eq!(metrics.folded(), 3);
    }

    #[test]
    fn names_too_long_for_a_label_are_folded_into_the_overflow_series() {
        let metrics = SpanMetrics::default();
        let long = "x".repeat(MAX_LABEL_BYTES + 1);
        let longest = "y".repeat(MAX_LABEL_BYTES);
        metrics.observe(&[
            span("svc", &long, 1),
            span(&long, "/a", 1),
            span("svc", &longest, 1),
        ]);

        let snapshot = metrics.snapshot();
        let names: Vec<(&str, &str)> = snapshot
            .iter()
            .map(|series| (&*series.service, &*series.endpoint))
            .collect();
        assert_eq!(
            names,
            [("svc", longest.as_str()), (OVERFLOW_LABEL, OVERFLOW_LABEL)]
        );
        assert_eq!(snapshot[1].duration.count, 2);
        assert_eq!(metrics.folded(), 2);
    }

    #[test]
    fn metered_collector_passes_spans_on_unchanged() {
        let inner = Arc::new(Recorded::default());
        let metrics = Arc::new(SpanMetrics::default());
        let collector = MeteredCollector::new(inner.clone(), metrics.clone());

        let outcome = collector.record_batch(vec![span("shop", "/a", 1), span("shop", "/b", 1)]);

        assert_eq!(outcome, RecordOutcome::accepted(2));
        assert_eq!(inner.0.lock().expect("lock").len(), 2);
        assert_eq!(metrics.snapshot().len(), 2);
    }
}
