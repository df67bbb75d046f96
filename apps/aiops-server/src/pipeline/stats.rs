//! [`PipelineStats`]: one reading of the span pipeline's counts, shared by `GET /metrics` and
//! `GET /aiops/metrics`.

use aiops_storage_sqlite::SpanWriter;

use super::counters::SpanCounters;

/// The span pipeline's counts, read once per request.
///
/// Each count has one source, so no two sources need reconciling:
///
/// - **Drops: the storage writer** ([`WriterStats::dropped`]). Every span reaches the
///   writer through `AppState::collector` (request metrics, then a fan-out whose primary is the
///   writer and whose secondary, the engine's live windows, is never asked for an outcome). The
///   writer is what decides to drop (its queue is full or closed) and counts each drop before
///   returning the outcome, so the outcomes the producers see are its own, counted once more
///   and a moment later. It also counts drops of any other caller.
/// - **Accepted: [`SpanCounters`]**, the sum of those outcomes' accepted spans, added by the
///   producers (the shop's [`SpanBatcher`](super::span_batch::SpanBatcher), OTLP ingest). The
///   writer keeps no such total: it moves accepted spans from queued to written or failed as
///   it commits, so a sum of its counters read one after the other could count a batch twice
///   or not at all. Accepted means accepted by the storage queue; dropped spans were still
///   analysed live, so accepted plus dropped is every span recorded.
/// - **Queued, written, failed, capacity: the storage writer**, which alone knows them.
///
/// [`WriterStats::dropped`]: aiops_storage_sqlite::WriterStats::dropped
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PipelineStats {
    /// Spans the storage queue accepted.
    pub ingested: u64,
    /// Spans not stored because the storage queue was full or closed (still analysed live).
    pub dropped: u64,
    /// Spans waiting for the storage writer.
    pub queued: u64,
    /// Spans written to storage.
    pub written: u64,
    /// Spans accepted but lost because their storage transaction failed.
    pub write_failed: u64,
    /// Spans that may wait for the storage writer before new ones are dropped.
    pub queue_capacity: u64,
}

impl PipelineStats {
    /// Reads `counters` and `writer` once.
    pub fn read(counters: &SpanCounters, writer: &SpanWriter) -> Self {
        let stats = writer.stats();
        Self {
            ingested: counters.accepted(),
            dropped: stats.dropped,
            queued: stats.queued as u64,
            written: stats.written,
            write_failed: stats.failed,
            queue_capacity: writer.capacity() as u64,
        }
    }
}
