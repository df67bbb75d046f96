//! The span writer: a bounded, never-blocking queue in front of one thread that commits
//! batches, retrying a transaction while another connection holds the database.

mod transactions;

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, SyncSender};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use aiops_telemetry_core::{Collector, CollectorError, RecordOutcome, Span};

use self::transactions::transactions;
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
    /// Transactions tried again because another connection held the database.
    pub busy_retries: u64,
    /// True while the writer thread waits for another connection to release the database:
    /// nothing commits meanwhile and the queue fills.
    pub blocked: bool,
    /// True when the latest transaction failed (and lost its spans), until one commits.
    pub failing: bool,
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
/// shutdown drains the queue.
///
/// A recorder that must not lose what it accepts (a protocol that acknowledges) takes room
/// first with [`SpanWriter::admit`], all of a batch or none, and answers "retry later" when
/// there is none, instead of having a part of the batch dropped.
///
/// A transaction that finds the database held by another connection (`SQLITE_BUSY` or
/// `SQLITE_LOCKED` past the busy timeout) is tried again, with a growing pause up to
/// [`MAX_BUSY_BACKOFF`], for as long as the writer runs: the queue takes new spans meanwhile,
/// and once it is full recorders are refused, which is the back-pressure. After shutdown was
/// asked for, a busy transaction is tried for [`SHUTDOWN_BUSY_PATIENCE`] more. Any other failed
/// transaction loses its spans (counted in [`WriterStats::failed`]) and is reported by the
/// next flush or shutdown.
pub struct SpanWriter {
    queue: Arc<Queue>,
    thread: Mutex<Option<JoinHandle<Option<String>>>>,
    counters: Arc<Counters>,
    capacity: usize,
}

/// The longest pause between two tries of a transaction that found the database busy.
pub const MAX_BUSY_BACKOFF: Duration = Duration::from_secs(1);

/// How long a busy transaction is still tried once shutdown was asked for.
pub const SHUTDOWN_BUSY_PATIENCE: Duration = Duration::from_secs(10);

/// The first pause after a busy transaction; it doubles up to [`MAX_BUSY_BACKOFF`].
const FIRST_BUSY_BACKOFF: Duration = Duration::from_millis(10);

#[derive(Debug, Default)]
struct Counters {
    queued: AtomicUsize,
    written: AtomicU64,
    dropped: AtomicU64,
    failed: AtomicU64,
    busy_retries: AtomicU64,
    blocked: AtomicBool,
    failing: AtomicBool,
}

/// Room for `rows` spans held in a [`SpanWriter`]'s queue by [`SpanWriter::admit`]. Record
/// the batch with [`Admission::record`]; dropped unused, the room is given back.
#[derive(Debug)]
#[must_use = "an admission holds queue room until it is recorded or dropped"]
pub struct Admission<'a> {
    writer: &'a SpanWriter,
    rows: usize,
}

impl Admission<'_> {
    /// How many spans the admission holds room for.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Queues `spans` in the room held: every one of them when there are no more than
    /// [`rows`](Self::rows) (room not used is given back); spans beyond it, and all of them
    /// if the writer shut down meanwhile, are dropped and counted as [`Collector::record_batch`]
    /// would.
    pub fn record(mut self, mut spans: Vec<Span>) -> RecordOutcome {
        let offered = spans.len();
        let held = std::mem::take(&mut self.rows);
        let kept = offered.min(held);
        self.writer.release(held - kept);
        spans.truncate(kept);
        let outcome = self.writer.push_reserved(spans);
        let dropped = offered - kept;
        if dropped > 0 {
            let _ = self.writer.count_dropped(dropped);
        }
        RecordOutcome {
            accepted: outcome.accepted,
            dropped: outcome.dropped + dropped,
        }
    }
}

impl Drop for Admission<'_> {
    fn drop(&mut self) {
        self.writer.release(self.rows);
    }
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
            busy_retries: self.counters.busy_retries.load(Ordering::Relaxed),
            blocked: self.counters.blocked.load(Ordering::Relaxed),
            failing: self.counters.failing.load(Ordering::Relaxed),
        }
    }

    /// Holds room for all `rows` spans of a batch, or for none: `None` when the queue cannot
    /// take them all now (or the writer shut down), and the caller should ask its sender to
    /// retry later. A batch larger than the whole queue is admitted once the queue is at most
    /// half full, so it is never refused forever; the queue then holds up to half its capacity
    /// plus that batch.
    pub fn admit(&self, rows: usize) -> Option<Admission<'_>> {
        if self.queue.lock().closed {
            return None;
        }
        let queued = &self.counters.queued;
        let mut current = queued.load(Ordering::Relaxed);
        loop {
            let fits = if rows <= self.capacity {
                current + rows <= self.capacity
            } else {
                current <= self.capacity / 2
            };
            if !fits {
                return None;
            }
            match queued.compare_exchange_weak(
                current,
                current + rows,
                Ordering::AcqRel,
                Ordering::Relaxed,
            ) {
                Ok(_) => return Some(Admission { writer: self, rows }),
                Err(actual) => current = actual,
            }
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

    /// Gives back room reserved for spans that will not come.
    fn release(&self, rows: usize) {
        if rows > 0 {
            self.counters.queued.fetch_sub(rows, Ordering::AcqRel);
        }
    }

    /// Queues `spans`, for which room is already reserved; drops them (giving the room back)
    /// if the writer shut down.
    fn push_reserved(&self, spans: Vec<Span>) -> RecordOutcome {
        let rows = spans.len();
        if rows == 0 {
            return RecordOutcome::accepted(0);
        }
        let mut pending = self.queue.lock();
        if pending.closed {
            drop(pending);
            self.release(rows);
            return self.count_dropped(rows);
        }
        if pending.batches.is_empty() {
            pending.oldest = Some(Instant::now());
        }
        pending.rows += rows;
        pending.batches.push(spans);
        let full = pending.rows >= self.queue.max_rows;
        self.queue.wake(pending, full);
        RecordOutcome::accepted(rows)
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
        let accepted = self.reserve(offered);
        if accepted == 0 {
            return self.count_dropped(offered);
        }
        spans.truncate(accepted);
        let outcome = self.push_reserved(spans);
        let dropped = offered - accepted;
        if dropped > 0 {
            let _ = self.count_dropped(dropped);
        }
        RecordOutcome {
            accepted: outcome.accepted,
            dropped: outcome.dropped + dropped,
        }
    }

    fn flush(&self) -> Result<(), CollectorError> {
        match self.request_flush() {
            None => Ok(()),
            Some(answer) => match answer.recv() {
                Ok(None) => Ok(()),
                Ok(Some(failure)) => Err(CollectorError::Storage(failure)),
                Err(_) => Err(CollectorError::Closed),
            },
        }
    }
}

impl SpanWriter {
    /// [`Collector::flush`], waiting at most `limit`: `Ok(false)` when the spans accepted
    /// before the call are not all committed by then (the database is held by another
    /// connection, say); they stay queued. For readers that would rather see what is
    /// committed now than wait.
    pub fn flush_within(&self, limit: Duration) -> Result<bool, CollectorError> {
        match self.request_flush() {
            None => Ok(true),
            Some(answer) => match answer.recv_timeout(limit) {
                Ok(None) => Ok(true),
                Ok(Some(failure)) => Err(CollectorError::Storage(failure)),
                Err(mpsc::RecvTimeoutError::Timeout) => Ok(false),
                Err(mpsc::RecvTimeoutError::Disconnected) => Err(CollectorError::Closed),
            },
        }
    }

    /// Asks the writer thread to commit everything queued; `None` after shutdown, when
    /// everything accepted has been committed already.
    fn request_flush(&self) -> Option<mpsc::Receiver<Option<String>>> {
        let (reply, answer) = mpsc::sync_channel(1);
        let mut pending = self.queue.lock();
        if pending.closed {
            return None;
        }
        pending.flushes.push(reply);
        self.queue.wake(pending, true);
        Some(answer)
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
        match self.write_retrying_busy(parts) {
            Ok(()) => {
                self.counters.failing.store(false, Ordering::Relaxed);
                self.counters
                    .written
                    .fetch_add(rows as u64, Ordering::Relaxed);
            }
            Err(error) => {
                self.counters.failing.store(true, Ordering::Relaxed);
                log::error!("rows={rows} error={error} Span batch was not committed.");
                self.counters
                    .failed
                    .fetch_add(rows as u64, Ordering::Relaxed);
                self.failure.get_or_insert_with(|| error.to_string());
            }
        }
        self.counters.queued.fetch_sub(rows, Ordering::AcqRel);
    }

    /// Writes one transaction, trying again while the database is busy: until it commits,
    /// fails otherwise, or has been busy for [`SHUTDOWN_BUSY_PATIENCE`] since shutdown was
    /// asked for.
    fn write_retrying_busy(&mut self, parts: &[&[Span]]) -> Result<(), StoreError> {
        let mut backoff = FIRST_BUSY_BACKOFF;
        let mut closed_at: Option<Instant> = None;
        loop {
            let error = match self.ingest.write(parts) {
                Err(error @ StoreError::Busy(_)) => error,
                other => {
                    if self.counters.blocked.swap(false, Ordering::Relaxed) {
                        log::info!("The database is writable again; spans are being committed.");
                    }
                    return other;
                }
            };
            if self.queue.lock().closed {
                let since = *closed_at.get_or_insert_with(Instant::now);
                if since.elapsed() >= SHUTDOWN_BUSY_PATIENCE {
                    self.counters.blocked.store(false, Ordering::Relaxed);
                    return Err(error);
                }
            }
            if !self.counters.blocked.swap(true, Ordering::Relaxed) {
                log::warn!(
                    "error={error} The database is held by another connection; retrying the span batch until it is free."
                );
            }
            self.counters.busy_retries.fetch_add(1, Ordering::Relaxed);
            std::thread::sleep(backoff);
            backoff = (backoff * 2).min(MAX_BUSY_BACKOFF);
        }
    }
}
