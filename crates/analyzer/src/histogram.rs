//! A fixed log-scale latency histogram: mergeable summaries whose size does not grow with the
//! number of requests.
//!
//! Buckets grow by 10% from 0.01 ms to about 10 minutes (188 buckets, plus one below and one
//! above), so a percentile read from a bucket's geometric midpoint is within 5% of the truth,
//! and within the exact minimum and maximum that every summary also keeps.

use std::sync::LazyLock;

use smallvec::SmallVec;

use aiops_telemetry_core::WindowStats;

/// Lower edge of the first regular bucket, in milliseconds.
const FIRST_EDGE_MS: f64 = 0.01;
/// Ratio between consecutive bucket edges.
const GROWTH: f64 = 1.1;
/// Regular buckets: `FIRST_EDGE_MS * GROWTH^188` is just over 10 minutes.
const REGULAR: usize = 188;
/// Index 0 holds latencies below the first edge; index `REGULAR + 1` those beyond the last.
pub(crate) const BUCKETS: usize = REGULAR + 2;

/// The bucket a latency falls into.
pub(crate) fn bucket_of(ms: f64) -> usize {
    if ms.is_nan() || ms < FIRST_EDGE_MS {
        return 0;
    }
    let index = ((ms / FIRST_EDGE_MS).ln() / GROWTH.ln()).floor() as usize + 1;
    index.min(BUCKETS - 1)
}

/// For each bucket after the first, the shortest duration in whole nanoseconds that
/// [`bucket_of`] puts in it or a later one, found once by bisection with [`bucket_of`] itself.
static NANOS_EDGES: LazyLock<[u64; BUCKETS - 1]> = LazyLock::new(|| {
    let by_log = |nanos: u64| bucket_of(nanos as f64 / 1e6);
    std::array::from_fn(|k| {
        // The first `nanos` in bucket `k + 1` or later: `bucket_of` never decreases.
        let (mut low, mut high) = (0_u64, u64::MAX);
        while low < high {
            let middle = low + (high - low) / 2;
            if by_log(middle) > k {
                high = middle;
            } else {
                low = middle + 1;
            }
        }
        low
    })
});

/// The bucket of a latency given in nanoseconds: the same as
/// `bucket_of(duration_nanos as f64 / 1e6)`, read from a table of edges instead of taking a
/// logarithm, since the live windows do it for every span.
pub(crate) fn bucket_of_nanos(duration_nanos: u64) -> usize {
    NANOS_EDGES.partition_point(|&edge| edge <= duration_nanos)
}

/// `FIRST_EDGE_MS * GROWTH^k` for `k` in `0..=REGULAR`, computed once: reading statistics
/// looks edges up on every cycle for every endpoint.
static EDGES_MS: LazyLock<[f64; REGULAR + 1]> =
    LazyLock::new(|| std::array::from_fn(|k| FIRST_EDGE_MS * GROWTH.powi(k as i32)));

/// The edges `[lower, upper)` of a bucket, in milliseconds.
fn edges(index: usize) -> (f64, f64) {
    let edges = &*EDGES_MS;
    match index {
        0 => (0.0, FIRST_EDGE_MS),
        i if i > REGULAR => (edges[REGULAR], f64::INFINITY),
        i => (edges[i - 1], edges[i]),
    }
}

/// The latency a bucket stands for: its geometric midpoint.
fn representative(index: usize) -> f64 {
    let (lower, upper) = edges(index);
    match index {
        0 => upper / 2.0,
        i if i > REGULAR => lower,
        _ => (lower * upper).sqrt(),
    }
}

/// Counts kept in the summary itself, without an allocation: a second of one endpoint's
/// traffic rarely spans more buckets (16 buckets cover latencies a factor of 4.6 apart).
const INLINE_COUNTS: usize = 16;

/// Counts for a contiguous run of buckets; most endpoints use a dozen or two of the 190.
///
/// Short runs live inline, so that reading a cold summary (a window moving past a bucket
/// filled a minute ago) reads one place in memory rather than following a pointer.
#[derive(Clone, Debug, Default)]
struct SparseCounts {
    first: usize,
    counts: SmallVec<[u32; INLINE_COUNTS]>,
}

impl SparseCounts {
    fn add(&mut self, index: usize) {
        if self.counts.is_empty() {
            self.first = index;
            self.counts.push(0);
        } else if index < self.first {
            let grow = self.first - index;
            self.counts.insert_many(0, std::iter::repeat_n(0, grow));
            self.first = index;
        } else if index >= self.first + self.counts.len() {
            self.counts.resize(index - self.first + 1, 0);
        }
        let slot = &mut self.counts[index - self.first];
        *slot = slot.saturating_add(1);
    }

    /// Forgets every count, keeping the allocation for reuse.
    fn clear(&mut self) {
        self.first = 0;
        self.counts.clear();
    }
}

/// What a set of requests did: counts, exact sum, minimum and maximum, and a histogram.
#[derive(Clone, Debug, Default)]
pub(crate) struct Summary {
    count: u64,
    errors: u64,
    sum_nanos: u64,
    min_nanos: u64,
    max_nanos: u64,
    histogram: SparseCounts,
}

impl Summary {
    /// Adds one request.
    #[cfg(test)]
    pub(crate) fn record(&mut self, duration_nanos: u64, is_error: bool) {
        self.record_in(bucket_of_nanos(duration_nanos), duration_nanos, is_error);
    }

    /// Adds one request whose histogram bucket ([`bucket_of_nanos`]) is already known.
    pub(crate) fn record_in(&mut self, bucket: usize, duration_nanos: u64, is_error: bool) {
        if self.count == 0 {
            self.min_nanos = duration_nanos;
            self.max_nanos = duration_nanos;
        } else {
            self.min_nanos = self.min_nanos.min(duration_nanos);
            self.max_nanos = self.max_nanos.max(duration_nanos);
        }
        self.count += 1;
        self.errors += u64::from(is_error);
        self.sum_nanos = self.sum_nanos.saturating_add(duration_nanos);
        self.histogram.add(bucket);
    }

    /// True when no request was added.
    pub(crate) fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Counts one request already added, and counted as a success, as failed after all (its
    /// error was reported later). False when every request is counted as failed already.
    pub(crate) fn add_failure(&mut self) -> bool {
        let room = self.errors < self.count;
        self.errors += u64::from(room);
        room
    }

    /// The fastest and slowest request, in nanoseconds; meaningless when empty.
    pub(crate) fn extremes(&self) -> (u64, u64) {
        (self.min_nanos, self.max_nanos)
    }

    /// Forgets every request, keeping the histogram's allocation for reuse.
    pub(crate) fn clear(&mut self) {
        self.count = 0;
        self.errors = 0;
        self.sum_nanos = 0;
        self.min_nanos = 0;
        self.max_nanos = 0;
        self.histogram.clear();
    }
}

/// Several summaries merged, for reading statistics out.
///
/// The histogram is dense, but only the run of buckets that summaries touched is read or
/// reset, so one `Merged` can be reused for many endpoints at the cost of their own buckets.
#[derive(Clone, Debug)]
pub(crate) struct Merged {
    count: u64,
    errors: u64,
    sum_nanos: u128,
    min_nanos: u64,
    max_nanos: u64,
    /// Per-bucket counts; 32 bits (saturating) keep it to 12 cache lines.
    histogram: Box<[u32; BUCKETS]>,
    /// Every non-zero histogram bucket lies in `touched`.
    touched: std::ops::Range<usize>,
}

impl Default for Merged {
    fn default() -> Self {
        Self {
            count: 0,
            errors: 0,
            sum_nanos: 0,
            min_nanos: u64::MAX,
            max_nanos: 0,
            histogram: Box::new([0; BUCKETS]),
            touched: 0..0,
        }
    }
}

impl Merged {
    /// Adds a summary.
    pub(crate) fn add(&mut self, summary: &Summary) {
        if summary.count == 0 {
            return;
        }
        self.count += summary.count;
        self.errors += summary.errors;
        self.sum_nanos += u128::from(summary.sum_nanos);
        self.min_nanos = self.min_nanos.min(summary.min_nanos);
        self.max_nanos = self.max_nanos.max(summary.max_nanos);
        let first = summary.histogram.first;
        let counts = &summary.histogram.counts;
        for (slot, &count) in self.histogram[first..first + counts.len()]
            .iter_mut()
            .zip(counts)
        {
            *slot = slot.saturating_add(count);
        }
        let end = first + counts.len();
        self.touched = if self.touched.is_empty() {
            first..end
        } else {
            self.touched.start.min(first)..self.touched.end.max(end)
        };
    }

    /// Adds one request whose histogram bucket ([`bucket_of_nanos`]) is already known.
    pub(crate) fn record_in(&mut self, bucket: usize, duration_nanos: u64, is_error: bool) {
        self.count += 1;
        self.errors += u64::from(is_error);
        self.sum_nanos += u128::from(duration_nanos);
        self.min_nanos = self.min_nanos.min(duration_nanos);
        self.max_nanos = self.max_nanos.max(duration_nanos);
        self.histogram[bucket] = self.histogram[bucket].saturating_add(1);
        self.touched = if self.touched.is_empty() {
            bucket..bucket + 1
        } else {
            self.touched.start.min(bucket)..self.touched.end.max(bucket + 1)
        };
    }

    /// Counts one request added before as failed (see [`Summary::add_failure`]).
    pub(crate) fn add_failure(&mut self) {
        self.errors = (self.errors + 1).min(self.count);
    }

    /// Counts up to `failures` of the requests added before that have not failed as failed;
    /// returns how many were.
    pub(crate) fn add_failures(&mut self, failures: u64) -> u64 {
        let added = failures.min(self.count - self.errors.min(self.count));
        self.errors += added;
        added
    }

    /// Takes away a summary that was added before. The minimum and maximum are left as they
    /// were: the caller knows whether they still hold and sets them with
    /// [`set_extremes`](Self::set_extremes) if not.
    pub(crate) fn subtract(&mut self, summary: &Summary) {
        if summary.count == 0 {
            return;
        }
        self.count -= summary.count.min(self.count);
        self.errors -= summary.errors.min(self.errors);
        self.sum_nanos -= u128::from(summary.sum_nanos).min(self.sum_nanos);
        let first = summary.histogram.first;
        let counts = &summary.histogram.counts;
        for (slot, &count) in self.histogram[first..first + counts.len()]
            .iter_mut()
            .zip(counts)
        {
            *slot -= count.min(*slot);
        }
        if self.count == 0 {
            self.reset();
        }
    }

    /// The fastest and slowest request, in nanoseconds; meaningless when empty.
    pub(crate) fn extremes(&self) -> (u64, u64) {
        (self.min_nanos, self.max_nanos)
    }

    /// Sets the fastest and slowest request, in nanoseconds.
    pub(crate) fn set_extremes(&mut self, (min_nanos, max_nanos): (u64, u64)) {
        self.min_nanos = min_nanos;
        self.max_nanos = max_nanos;
    }

    /// Back to empty, clearing only the buckets that were touched.
    pub(crate) fn reset(&mut self) {
        self.histogram[self.touched.clone()].fill(0);
        self.touched = 0..0;
        self.count = 0;
        self.errors = 0;
        self.sum_nanos = 0;
        self.min_nanos = u64::MAX;
        self.max_nanos = 0;
    }

    /// True when no request was added.
    pub(crate) fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The window statistics; a request slower than `timeout_ms` is a timeout.
    ///
    /// Mean, count and errors are exact. Percentiles (nearest rank) are the geometric midpoint
    /// of their bucket, clamped to the exact minimum and maximum. Timeouts are counted from the
    /// histogram: exactly when every request is on one side of `timeout_ms`, otherwise the
    /// bucket holding `timeout_ms` contributes the share of its log-width above it.
    pub(crate) fn stats(&self, timeout_ms: f64) -> WindowStats {
        if self.count == 0 {
            return WindowStats::default();
        }
        let [p50_ms, p95_ms, p99_ms] = self.percentiles([0.50, 0.95, 0.99]);
        WindowStats {
            count: self.count,
            errors: self.errors,
            timeouts: self.timeouts(timeout_ms),
            mean_ms: self.sum_nanos as f64 / self.count as f64 / 1e6,
            p50_ms,
            p95_ms,
            p99_ms,
        }
    }

    fn min_ms(&self) -> f64 {
        self.min_nanos as f64 / 1e6
    }

    fn max_ms(&self) -> f64 {
        self.max_nanos as f64 / 1e6
    }

    /// Nearest-rank percentiles for ascending `quantiles`, in one pass over the histogram.
    fn percentiles<const N: usize>(&self, quantiles: [f64; N]) -> [f64; N] {
        let ranks = quantiles.map(|q| ((q * self.count as f64).ceil() as u64).clamp(1, self.count));
        let mut out = [self.max_ms(); N];
        let mut next = 0;
        let mut seen = 0;
        let first = self.touched.start;
        for (offset, &count) in self.histogram[self.touched.clone()].iter().enumerate() {
            seen += u64::from(count);
            while next < N && seen >= ranks[next] {
                out[next] = representative(first + offset).clamp(self.min_ms(), self.max_ms());
                next += 1;
            }
            if next == N {
                break;
            }
        }
        out
    }

    fn timeouts(&self, timeout_ms: f64) -> u64 {
        if self.max_ms() <= timeout_ms {
            return 0;
        }
        if self.min_ms() > timeout_ms {
            return self.count;
        }
        let straddling = bucket_of(timeout_ms);
        let above: u64 = self.histogram[straddling + 1..]
            .iter()
            .map(|&count| u64::from(count))
            .sum();
        let (lower, upper) = edges(straddling);
        let share_above = if lower == 0.0 {
            (upper - timeout_ms) / upper
        } else if upper.is_infinite() {
            0.0
        } else {
            (upper / timeout_ms).ln() / (upper / lower).ln()
        };
        let partial = (self.histogram[straddling] as f64 * share_above).round() as u64;
        (above + partial).min(self.count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    fn merged(latencies_ms: &[f64]) -> Merged {
        let mut summary = Summary::default();
        for &ms in latencies_ms {
            summary.record((ms * 1e6) as u64, false);
        }
        let mut merged = Merged::default();
        merged.add(&summary);
        merged
    }

    #[test]
    fn buckets_cover_ten_microseconds_to_ten_minutes() {
        assert_eq!(bucket_of(0.001), 0);
        assert_eq!(bucket_of(0.01), 1);
        assert_eq!(bucket_of(f64::NAN), 0);
        assert!(bucket_of(599_000.0) <= REGULAR);
        assert_eq!(bucket_of(3_600_000.0), BUCKETS - 1);
        for index in 1..=REGULAR {
            let (lower, upper) = edges(index);
            let middle = representative(index);
            assert_eq!(bucket_of(middle), index);
            assert!(upper / middle <= 1.05 && middle / lower <= 1.05);
        }
    }

    #[test]
    fn the_edge_table_buckets_every_duration_as_the_logarithm_does() {
        let by_log = |nanos: u64| bucket_of(nanos as f64 / 1e6);
        for &edge in NANOS_EDGES.iter() {
            for nanos in [edge.saturating_sub(1), edge, edge + 1] {
                assert_eq!(bucket_of_nanos(nanos), by_log(nanos), "{nanos} ns");
            }
        }
        let mut nanos = 1_u64;
        while nanos < u64::MAX / 32 {
            for probe in [nanos - 1, nanos, nanos + nanos / 3, nanos + nanos / 7] {
                assert_eq!(bucket_of_nanos(probe), by_log(probe), "{probe} ns");
            }
            nanos = nanos * 21 / 20 + 1;
        }
        assert_eq!(bucket_of_nanos(0), 0);
        assert_eq!(bucket_of_nanos(u64::MAX), BUCKETS - 1);
    }

    #[test]
    fn percentiles_are_within_five_percent() {
        let latencies: Vec<f64> = (1..=1000).map(|i| i as f64).collect();
        let stats = merged(&latencies).stats(5000.0);
        assert_eq!(stats.count, 1000);
        assert!((stats.mean_ms - 500.5).abs() < 1e-9);
        for (got, want) in [
            (stats.p50_ms, 500.0),
            (stats.p95_ms, 950.0),
            (stats.p99_ms, 990.0),
        ] {
            assert!((got / want - 1.0).abs() <= 0.05, "{got} vs {want}");
        }
    }

    #[test]
    fn single_request_percentiles_are_exact() {
        let stats = merged(&[123.456]).stats(5000.0);
        assert_eq!(
            (stats.p50_ms, stats.p95_ms, stats.p99_ms),
            (123.456, 123.456, 123.456)
        );
    }

    #[test]
    fn timeouts_are_exact_when_requests_are_clear_of_the_threshold() {
        let stats = merged(&[10.0, 20.0, 6000.0, 7000.0]).stats(5000.0);
        assert_eq!(stats.timeouts, 2);
        assert_eq!(merged(&[10.0, 20.0]).stats(5000.0).timeouts, 0);
        assert_eq!(merged(&[6000.0, 7000.0]).stats(5000.0).timeouts, 2);
    }

    #[test]
    fn merging_summaries_adds_them_up() {
        let mut first = Summary::default();
        first.record(10 * MS, true);
        let mut second = Summary::default();
        second.record(30 * MS, false);
        let mut merged = Merged::default();
        merged.add(&first);
        merged.add(&second);
        merged.add(&Summary::default());
        let stats = merged.stats(5000.0);
        assert_eq!((stats.count, stats.errors), (2, 1));
        assert!((stats.mean_ms - 20.0).abs() < 1e-9);
        assert_eq!(stats.p99_ms, 30.0);
    }

    #[test]
    fn a_reset_merge_reads_like_a_fresh_one() {
        let mut reused = merged(&[1.0, 5_000.0, 9_000.0]);
        reused.reset();
        let mut summary = Summary::default();
        for ms in [20, 30, 40] {
            summary.record(ms * MS, false);
        }
        reused.add(&summary);
        let mut fresh = Merged::default();
        fresh.add(&summary);
        assert_eq!(reused.stats(5000.0), fresh.stats(5000.0));
        assert_eq!(reused.stats(5000.0).timeouts, 0);
    }

    #[test]
    fn a_cleared_summary_adds_nothing() {
        let mut summary = Summary::default();
        summary.record(10 * MS, true);
        summary.clear();
        assert!(summary.is_empty());
        let mut merged = Merged::default();
        merged.add(&summary);
        assert!(merged.is_empty());
    }

    #[test]
    fn sparse_counts_grow_in_both_directions() {
        let mut counts = SparseCounts::default();
        counts.add(50);
        counts.add(40);
        counts.add(60);
        counts.add(50);
        assert_eq!(counts.first, 40);
        assert_eq!(counts.counts.len(), 21);
        assert_eq!(counts.counts[10], 2);
    }
}
