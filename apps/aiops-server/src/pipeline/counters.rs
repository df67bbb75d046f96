//! Spans accepted and dropped on their way into the engine.

use std::sync::atomic::{AtomicU64, Ordering};

use aiops_telemetry_core::RecordOutcome;

/// Spans accepted and dropped on their way into the engine, by every producer (the shop's
/// middleware, OTLP ingest).
#[derive(Debug, Default)]
pub struct SpanCounters {
    accepted: AtomicU64,
    dropped: AtomicU64,
}

impl SpanCounters {
    /// Adds one recording's outcome.
    pub fn add(&self, outcome: RecordOutcome) {
        self.accepted
            .fetch_add(outcome.accepted as u64, Ordering::Relaxed);
        self.dropped
            .fetch_add(outcome.dropped as u64, Ordering::Relaxed);
    }

    /// Spans accepted so far.
    pub fn accepted(&self) -> u64 {
        self.accepted.load(Ordering::Relaxed)
    }

    /// Spans dropped so far because the writer's queue was full or closed.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}
