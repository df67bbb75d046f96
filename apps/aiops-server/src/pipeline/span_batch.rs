//! Request spans gathered per HTTP worker thread and recorded in batches off the request path.
//!
//! Every collector behind the shop's middleware (the store's queue, the live windows, the trace
//! buffer, the request metrics) takes a lock or updates shared state per recording. Recorded
//! from two worker threads on two cores, those locks and cache lines move between the cores,
//! and each request pays for it. [`SpanBatcher`] keeps one pending list per thread instead
//! (each on its own cache line, locked only by its thread and by
//! [`SpanBatcher::flush_pending`]); a request only appends its span. The server's flusher takes
//! every list each [`FLUSH_PERIOD`] and records them on its own thread, hundreds of spans at a
//! time at high rates, where the collectors' data stays in one core's cache (docs/BENCHMARKS.md
//! has the measurement).
//!
//! A span waits at most until the next [`SpanBatcher::flush_pending`]: the flusher runs it
//! every [`FLUSH_PERIOD`], and it also runs before every `/aiops` and `/metrics` request (so
//! what a client reads includes its own earlier requests) and at shutdown. A list is bounded: should
//! the flusher fall behind, the thread records its list itself once it holds
//! [`MAX_PENDING_SPANS`].

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use aiops_telemetry_core::{Collector, Span};

use super::counters::SpanCounters;

/// Spans a thread holds at most: at this many (the flusher is late) it records them itself.
pub const MAX_PENDING_SPANS: usize = 4096;

/// Room a thread's list starts with; after a flush, a list starts with the room its
/// predecessor needed.
const INITIAL_PENDING: usize = 256;

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

    /// Adds `span` to this thread's list; records the list if it holds [`MAX_PENDING_SPANS`].
    pub fn record(&self, span: Span) {
        let full = {
            let mut pending = self.shards[thread_shard()].lock();
            if pending.capacity() == 0 {
                pending.reserve_exact(INITIAL_PENDING);
            }
            pending.push(span);
            (pending.len() >= MAX_PENDING_SPANS).then(|| take_list(&mut pending))
        };
        if let Some(batch) = full {
            self.hand_on(batch);
        }
    }

    /// Records every pending span now.
    pub fn flush_pending(&self) {
        for shard in &self.shards {
            let batch = {
                let mut pending = shard.lock();
                if pending.is_empty() {
                    continue;
                }
                take_list(&mut pending)
            };
            self.hand_on(batch);
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

/// Takes a thread's list, leaving it an empty one with the same room: the collectors keep the
/// list taken (the store frees it once written).
fn take_list(pending: &mut Vec<Span>) -> Vec<Span> {
    let room = pending.len().clamp(INITIAL_PENDING, MAX_PENDING_SPANS);
    std::mem::replace(pending, Vec::with_capacity(room))
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
    fn spans_wait_for_a_flush_unless_a_list_fills() {
        let (batcher, collector, counters) = batcher();
        for _ in 0..MAX_PENDING_SPANS - 1 {
            batcher.record(span());
        }
        assert_eq!(
            (collector.len(), batcher.pending()),
            (0, MAX_PENDING_SPANS - 1)
        );

        // The flusher is late: the thread records its full list itself.
        batcher.record(span());
        assert_eq!((collector.len(), batcher.pending()), (MAX_PENDING_SPANS, 0));
        assert_eq!(counters.accepted(), MAX_PENDING_SPANS as u64);

        batcher.record(span());
        batcher.flush_pending();
        assert_eq!(
            (collector.len(), batcher.pending()),
            (MAX_PENDING_SPANS + 1, 0)
        );
        assert_eq!(counters.accepted(), MAX_PENDING_SPANS as u64 + 1);
        batcher.flush_pending();
        assert_eq!(collector.len(), MAX_PENDING_SPANS + 1, "nothing twice");
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
