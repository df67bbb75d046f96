//! The span writer: a bounded, never-blocking queue in front of one thread that commits
//! batches.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, SyncSender};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use aiops_telemetry_core::{Collector, CollectorError, RecordOutcome, Span};

use crate::error::StoreError;
use crate::transaction::Ingest;

/// What a [`SpanWriter`] has done since the store opened.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WriterStats {
    /// Spans accepted but not yet committed.
    pub queued: usize,
    /// Spans committed.
    pub written: u64,
    /// Spans refused because the queue was full or the writer shut down.
    pub dropped: u64,
    /// Spans accepted but lost because their transaction failed.
    pub failed: u64,
}

/// The store's [`Collector`]: spans recorded here are committed by one background thread.
///
/// Recording never blocks: it appends the batch to a pending list under a short mutex (the
/// batch itself, not a copy of its spans: the writer thread reads and frees it). The
/// queue's bound is counted in spans (accepted but not yet committed), and a batch that does
/// not fit is cut: the prefix that fits is accepted, the rest dropped and counted. The thread
/// commits a transaction when `batch_max_rows` spans are waiting or the oldest has waited
/// `batch_max_delay`. It is woken only for those two events (and for flushes and shutdown),
/// not per recording, so a request path that records one span at a time costs no thread
/// switch. [`Collector::flush`] blocks until everything accepted before it is committed;
/// shutdown drains the queue. A failed transaction loses its spans (counted in
/// [`WriterStats::failed`]) and is reported by the next flush or shutdown.
pub struct SpanWriter {
    queue: Arc<Queue>,
    thread: Mutex<Option<JoinHandle<Option<String>>>>,
    counters: Arc<Counters>,
    capacity: usize,
}

#[derive(Debug, Default)]
struct Counters {
    queued: AtomicUsize,
    written: AtomicU64,
    dropped: AtomicU64,
    failed: AtomicU64,
}

/// What recorders hand to the writer thread.
#[derive(Debug)]
struct Queue {
    pending: Mutex<Pending>,
    /// The writer thread waits here.
    wake: Condvar,
    max_rows: usize,
}

#[derive(Debug, Default)]
struct Pending {
    /// The batches recorded, in order.
    batches: Vec<Vec<Span>>,
    /// Spans in `batches`.
    rows: usize,
    /// The emptied list of the last transaction, handed back by the writer thread for reuse.
    spare: Vec<Vec<Span>>,
    /// When the oldest of `batches` was accepted.
    oldest: Option<Instant>,
    /// Flush requests: answered once everything accepted before them is committed.
    flushes: Vec<SyncSender<Option<String>>>,
    closed: bool,
    /// How the writer thread is waiting, so that recorders wake it only when needed.
    waiting: Waiting,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Waiting {
    /// Committing, or about to look at the queue: it will see whatever is added.
    #[default]
    No,
    /// Nothing pending: waiting without a deadline.
    Idle,
    /// Waiting for the oldest span's deadline.
    UntilDeadline,
}

impl Queue {
    fn lock(&self) -> MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Wakes the writer thread if it waits, after the caller changed `pending`.
    fn wake(&self, mut pending: MutexGuard<'_, Pending>, urgent: bool) {
        let needed = match pending.waiting {
            Waiting::No => false,
            // A first span starts the delay clock, which only the writer keeps.
            Waiting::Idle => true,
            Waiting::UntilDeadline => urgent,
        };
        if needed {
            pending.waiting = Waiting::No;
            drop(pending);
            self.wake.notify_one();
        }
    }
}

/// How the writer thread batches.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Batching {
    pub(crate) capacity: usize,
    pub(crate) max_rows: usize,
    pub(crate) max_delay: Duration,
}

impl SpanWriter {
    pub(crate) fn spawn(ingest: Ingest, batching: Batching) -> Result<Self, StoreError> {
        let queue = Arc::new(Queue {
            pending: Mutex::new(Pending::default()),
            wake: Condvar::new(),
            max_rows: batching.max_rows.max(1),
        });
        let counters = Arc::new(Counters::default());
        let worker = Worker {
            ingest,
            queue: Arc::clone(&queue),
            counters: Arc::clone(&counters),
            batching,
            failure: None,
        };
        let thread = std::thread::Builder::new()
            .name("aiops-span-writer".into())
            .spawn(move || worker.run())
            .map_err(|error| StoreError::Writer(format!("cannot start thread: {error}")))?;
        Ok(Self {
            queue,
            thread: Mutex::new(Some(thread)),
            counters,
            capacity: batching.capacity,
        })
    }

    /// Counters since the store opened.
    pub fn stats(&self) -> WriterStats {
        WriterStats {
            queued: self.counters.queued.load(Ordering::Relaxed),
            written: self.counters.written.load(Ordering::Relaxed),
            dropped: self.counters.dropped.load(Ordering::Relaxed),
            failed: self.counters.failed.load(Ordering::Relaxed),
        }
    }

    /// The most spans that may wait for the writer thread.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Stops accepting spans, commits everything queued and joins the thread. Idempotent.
    pub(crate) fn shutdown(&self) -> Result<(), StoreError> {
        {
            let mut pending = self.queue.lock();
            pending.closed = true;
            pending.waiting = Waiting::No;
        }
        self.queue.wake.notify_one();
        let mut thread = self.thread.lock().unwrap_or_else(PoisonError::into_inner);
        match thread.take().map(JoinHandle::join) {
            None | Some(Ok(None)) => Ok(()),
            Some(Ok(Some(failure))) => Err(StoreError::Writer(failure)),
            Some(Err(_)) => Err(StoreError::Writer("writer thread panicked".into())),
        }
    }

    /// Reserves room for up to `wanted` spans; returns how many fit.
    fn reserve(&self, wanted: usize) -> usize {
        let queued = &self.counters.queued;
        let mut current = queued.load(Ordering::Relaxed);
        loop {
            let take = wanted.min(self.capacity.saturating_sub(current));
            if take == 0 {
                return 0;
            }
            match queued.compare_exchange_weak(
                current,
                current + take,
                Ordering::AcqRel,
                Ordering::Relaxed,
            ) {
                Ok(_) => return take,
                Err(actual) => current = actual,
            }
        }
    }

    fn count_dropped(&self, dropped: usize) -> RecordOutcome {
        self.counters
            .dropped
            .fetch_add(dropped as u64, Ordering::Relaxed);
        RecordOutcome::dropped(dropped)
    }
}

impl Collector for SpanWriter {
    fn record_batch(&self, mut spans: Vec<Span>) -> RecordOutcome {
        let offered = spans.len();
        if offered == 0 {
            return RecordOutcome::accepted(0);
        }
        let mut pending = self.queue.lock();
        if pending.closed {
            drop(pending);
            return self.count_dropped(offered);
        }
        let accepted = self.reserve(offered);
        if accepted == 0 {
            drop(pending);
            return self.count_dropped(offered);
        }
        spans.truncate(accepted);
        if pending.batches.is_empty() {
            pending.oldest = Some(Instant::now());
        }
        pending.rows += spans.len();
        pending.batches.push(spans);
        let full = pending.rows >= self.queue.max_rows;
        self.queue.wake(pending, full);
        let dropped = offered - accepted;
        if dropped > 0 {
            let _ = self.count_dropped(dropped);
        }
        RecordOutcome { accepted, dropped }
    }

    fn flush(&self) -> Result<(), CollectorError> {
        let (reply, answer) = mpsc::sync_channel(1);
        {
            let mut pending = self.queue.lock();
            // After shutdown everything accepted has been committed already.
            if pending.closed {
                return Ok(());
            }
            pending.flushes.push(reply);
            self.queue.wake(pending, true);
        }
        match answer.recv() {
            Ok(None) => Ok(()),
            Ok(Some(failure)) => Err(CollectorError::Storage(failure)),
            Err(_) => Err(CollectorError::Closed),
        }
    }
}

impl Drop for SpanWriter {
    fn drop(&mut self) {
        if let Err(error) = self.shutdown() {
            log::error!("error={error} Spans were lost while the writer shut down.");
        }
    }
}

impl std::fmt::Debug for SpanWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpanWriter")
            .field("capacity", &self.capacity)
            .field("stats", &self.stats())
            .finish()
    }
}

/// The writer thread's state.
struct Worker {
    ingest: Ingest,
    queue: Arc<Queue>,
    counters: Arc<Counters>,
    batching: Batching,
    /// The first failure since the last flush.
    failure: Option<String>,
}

/// What the writer takes from the queue in one go.
struct Work {
    batches: Vec<Vec<Span>>,
    flushes: Vec<SyncSender<Option<String>>>,
    closed: bool,
}

impl Worker {
    /// Runs until shutdown has been requested and the queue is drained; returns any failure
    /// not yet reported by a flush.
    fn run(mut self) -> Option<String> {
        loop {
            let work = self.next_work();
            for transaction in transactions(&work.batches, self.batching.max_rows.max(1)) {
                self.commit(&transaction);
            }
            // The spans are freed here, off the recorders' threads; the list goes back for
            // reuse.
            let mut emptied = work.batches;
            emptied.clear();
            self.queue.lock().spare = emptied;
            for reply in work.flushes {
                let _ = reply.send(self.failure.take());
            }
            if work.closed {
                return self.failure.take();
            }
        }
    }

    /// Waits until a transaction is due (enough rows, the oldest span's deadline, a flush or
    /// shutdown) and takes everything pending.
    fn next_work(&self) -> Work {
        let mut pending = self.queue.lock();
        loop {
            let due = pending
                .oldest
                .map(|oldest| oldest + self.batching.max_delay);
            let now = Instant::now();
            let ready = pending.closed
                || !pending.flushes.is_empty()
                || pending.rows >= self.queue.max_rows
                || due.is_some_and(|due| now >= due);
            if ready {
                pending.waiting = Waiting::No;
                pending.oldest = None;
                let spare = std::mem::take(&mut pending.spare);
                pending.rows = 0;
                return Work {
                    batches: std::mem::replace(&mut pending.batches, spare),
                    flushes: std::mem::take(&mut pending.flushes),
                    closed: pending.closed,
                };
            }
            pending = match due {
                None => {
                    pending.waiting = Waiting::Idle;
                    self.queue
                        .wake
                        .wait(pending)
                        .unwrap_or_else(PoisonError::into_inner)
                }
                Some(due) => {
                    pending.waiting = Waiting::UntilDeadline;
                    self.queue
                        .wake
                        .wait_timeout(pending, due - now)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0
                }
            };
            pending.waiting = Waiting::No;
        }
    }

    fn commit(&mut self, parts: &[&[Span]]) {
        let rows = parts.iter().map(|part| part.len()).sum();
        match self.ingest.write(parts) {
            Ok(()) => {
                self.counters
                    .written
                    .fetch_add(rows as u64, Ordering::Relaxed);
            }
            Err(error) => {
                log::error!("rows={rows} error={error} Span batch was not committed.");
                self.counters
                    .failed
                    .fetch_add(rows as u64, Ordering::Relaxed);
                self.failure.get_or_insert_with(|| error.to_string());
            }
        }
        self.counters.queued.fetch_sub(rows, Ordering::AcqRel);
    }
}

/// `batches` cut into transactions of `max_rows` spans (the last one may have fewer): each is
/// the slices of the batches it takes, in order.
fn transactions(batches: &[Vec<Span>], max_rows: usize) -> Vec<Vec<&[Span]>> {
    let mut transactions = Vec::new();
    let mut current: Vec<&[Span]> = Vec::new();
    let mut room = max_rows;
    for batch in batches {
        let mut rest = &batch[..];
        while !rest.is_empty() {
            let (part, tail) = rest.split_at(room.min(rest.len()));
            current.push(part);
            room -= part.len();
            rest = tail;
            if room == 0 {
                transactions.push(std::mem::take(&mut current));
                room = max_rows;
            }
        }
    }
    if !current.is_empty() {
        transactions.push(current);
    }
    transactions
}

#[cfg(test)]
mod tests {
    use aiops_telemetry_core::{SpanId, TraceId};

    use super::*;

    fn batch(first: u64, len: u64) -> Vec<Span> {
        (first..first + len)
            .map(|start| {
                Span::new(TraceId::random(), SpanId::random(), "svc", "op").with_timing(start, 1)
            })
            .collect()
    }

    #[test]
    fn batches_are_cut_into_transactions_of_at_most_max_rows_in_order() {
        let batches = vec![batch(0, 3), batch(3, 0), batch(3, 7), batch(10, 1)];
        for max_rows in 1..13 {
            let transactions = transactions(&batches, max_rows);
            let sizes: Vec<usize> = transactions
                .iter()
                .map(|parts| parts.iter().map(|part| part.len()).sum())
                .collect();
            let (last, full) = sizes.split_last().expect("some transactions");
            assert!(
                full.iter().all(|&size| size == max_rows),
                "{max_rows}: {sizes:?}"
            );
            assert!((1..=max_rows).contains(last), "{max_rows}: {sizes:?}");
            let starts: Vec<u64> = transactions
                .iter()
                .flatten()
                .flat_map(|part| part.iter().map(|span| span.start_unix_nanos))
                .collect();
            assert_eq!(starts, (0..11).collect::<Vec<_>>(), "{max_rows}");
        }
        assert!(transactions(&[], 5).is_empty());
    }
}
