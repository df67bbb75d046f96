use aiops_telemetry_core::{
    Collector, CollectorError, EndpointKey, RecordOutcome, Span, TimeWindow, WindowStats,
};

/// In-memory, per-endpoint time buckets of recent requests, fed as a [`Collector`].
///
/// Each span lands in the bucket of its own start time (never a clock read). Window statistics
/// merge the buckets a window covers, so their cost depends on the window length and the
/// number of endpoints, not on how many spans were recorded.
#[derive(Debug)]
pub struct LiveWindows {
    bucket_width_nanos: u64,
    retention_nanos: u64,
}

impl LiveWindows {
    /// Buckets `bucket_width_nanos` wide, kept for `retention_nanos`.
    pub fn new(bucket_width_nanos: u64, retention_nanos: u64) -> Self {
        Self {
            bucket_width_nanos: bucket_width_nanos.max(1),
            retention_nanos,
        }
    }

    /// Statistics per endpoint over `window`; a request slower than `timeout_ms` is a timeout.
    pub fn window_stats(
        &self,
        window: TimeWindow,
        timeout_ms: f64,
    ) -> Vec<(EndpointKey, WindowStats)> {
        let _ = (
            window,
            timeout_ms,
            self.bucket_width_nanos,
            self.retention_nanos,
        );
        Vec::new()
    }

    /// Every endpoint with recorded traffic still held.
    pub fn endpoints(&self) -> Vec<EndpointKey> {
        Vec::new()
    }

    /// Forgets every bucket that ends at or before `cutoff_unix_nanos`.
    pub fn evict_before(&self, cutoff_unix_nanos: u64) {
        let _ = cutoff_unix_nanos;
    }
}

impl Collector for LiveWindows {
    fn record_batch(&self, spans: Vec<Span>) -> RecordOutcome {
        RecordOutcome::accepted(spans.len())
    }

    fn flush(&self) -> Result<(), CollectorError> {
        Ok(())
    }
}
