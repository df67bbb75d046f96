//! Spans accepted on their way into the engine.

use std::sync::atomic::{AtomicU64, Ordering};

use aiops_telemetry_core::RecordOutcome;

/// Spans accepted on their way into the engine, by every producer (the shop's middleware,
/// OTLP ingest): the sum of the accepted spans of the outcomes they were given.
///
/// Drops are not counted here: the storage writer, which decides them, counts every one (see
/// [`PipelineStats`](super::stats::PipelineStats)).
#[derive(Debug, Default)]
pub struct SpanCounters {
    accepted: AtomicU64,
}

impl SpanCounters {
    /// Adds one recording's outcome.
    pub fn add(&self, outcome: RecordOutcome) {
        self.accepted
            .fetch_add(outcome.accepted as u64, Ordering::Relaxed);
    }

    /// Spans accepted so far.
    pub fn accepted(&self) -> u64 {
        self.accepted.load(Ordering::Relaxed)
    }
}
