//! Request spans gathered per HTTP worker thread and handed on in batches.
//!
//! Every collector behind the shop's middleware (the store's queue, the live windows, the trace
//! buffer, the request metrics) takes a lock or updates shared counters per recording. Recorded
//! one span at a time from two worker threads on two cores, those cache lines move between the
//! cores on every request. [`SpanBatcher`] keeps one pending list per thread instead (each on
//! its own cache line, locked only by its thread, by [`SpanBatcher::flush_pending`] and at
//! shutdown) and records [`BATCH_SPANS`] spans at a time.
//!
//! A span waits at most until its list fills or until the next [`SpanBatcher::flush_pending`],
//! which the server runs every [`FLUSH_PERIOD`], before every `/aiops` and `/metrics` request
//! (so what a client reads includes its own earlier requests) and at shutdown.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use aiops_telemetry_core::{Collector, Span};

use crate::state::SpanCounters;

/// Spans a thread gathers before handing them on.
pub const BATCH_SPANS: usize = 64;

/// How often the server hands on partly filled lists.
pub const FLUSH_PERIOD: Duration = Duration::from_millis(10);

/// Pending lists; threads beyond this many share them.
const SHARDS: usize = 16;

/// One thread's pending spans, alone on its cache line.
#[derive(Debug, Default)]
#[repr(align(128))]
struct Shard(Mutex<Vec<Span>>);

impl Shard {
    fn lock(&self) -> MutexGuard<'_, Vec<Span>> {
        // Pushing and taking a vector cannot leave it inconsistent.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Gathers request spans per thread and records them into `collector` in batches, counting
/// each batch's outcome in `counters`.
pub struct SpanBatcher {
    shards: Box<[Shard]>,
    collector: Arc<dyn Collector>,
    counters: Arc<SpanCounters>,
}

impl std::fmt::Debug for SpanBatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpanBatcher")
            .field("pending", &self.pending())
            .finish_non_exhaustive()
    }
}

impl SpanBatcher {
    /// A batcher in front of `collector`.
    pub fn new(collector: Arc<dyn Collector>, counters: Arc<SpanCounters>) -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Shard::default()).collect(),
            collector,
            counters,
        }
    }

    /// Adds `span` to this thread's list, recording the list once it holds [`BATCH_SPANS`].
    pub fn record(&self, span: Span) {
        let full = {
            let mut pending = self.shards[thread_shard()].lock();
            if pending.capacity() == 0 {
                pending.reserve_exact(BATCH_SPANS);
            }
            pending.push(span);
            (pending.len() >= BATCH_SPANS)
                .then(|| std::mem::replace(&mut *pending, Vec::with_capacity(BATCH_SPANS)))
        };
        if let Some(batch) = full {
            self.hand_on(batch);
        }
    }

    /// Records every pending span now.
    pub fn flush_pending(&self) {
        for shard in &self.shards {
            let batch = std::mem::take(&mut *shard.lock());
            if !batch.is_empty() {
                self.hand_on(batch);
            }
        }
    }

    /// Spans waiting in the lists.
    pub fn pending(&self) -> usize {
        self.shards.iter().map(|shard| shard.lock().len()).sum()
    }

    fn hand_on(&self, batch: Vec<Span>) {
        self.counters.add(self.collector.record_batch(batch));
    }
}

/// This thread's list: threads take the next one the first time they record.
fn thread_shard() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static SHARD: usize = NEXT.fetch_add(1, Ordering::Relaxed) % SHARDS;
    }
    SHARD.with(|shard| *shard)
}

#[cfg(test)]
mod tests {
    use aiops_telemetry_core::{InMemoryCollector, SpanId, TraceId};

    use super::*;

    fn span() -> Span {
        Span::new(TraceId::random(), SpanId::random(), "shop", "/health")
    }

    fn batcher() -> (SpanBatcher, Arc<InMemoryCollector>, Arc<SpanCounters>) {
        let collector = Arc::new(InMemoryCollector::default());
        let counters = Arc::new(SpanCounters::default());
        let batcher = SpanBatcher::new(collector.clone(), counters.clone());
        (batcher, collector, counters)
    }

    #[test]
    fn spans_wait_until_a_batch_fills_or_a_flush() {
        let (batcher, collector, counters) = batcher();
        for _ in 0..BATCH_SPANS - 1 {
            batcher.record(span());
        }
        assert_eq!((collector.len(), batcher.pending()), (0, BATCH_SPANS - 1));

        batcher.record(span());
        assert_eq!((collector.len(), batcher.pending()), (BATCH_SPANS, 0));
        assert_eq!(counters.accepted(), BATCH_SPANS as u64);

        batcher.record(span());
        batcher.flush_pending();
        assert_eq!((collector.len(), batcher.pending()), (BATCH_SPANS + 1, 0));
        assert_eq!(counters.accepted(), BATCH_SPANS as u64 + 1);
    }

    #[test]
    fn a_flush_takes_every_thread_s_spans() {
        let (batcher, collector, _) = batcher();
        let batcher = Arc::new(batcher);
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let batcher = batcher.clone();
                std::thread::spawn(move || {
                    for _ in 0..10 {
                        batcher.record(span());
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().expect("records");
        }
        assert_eq!(batcher.pending(), 40);
        batcher.flush_pending();
        assert_eq!((collector.len(), batcher.pending()), (40, 0));
    }
}
