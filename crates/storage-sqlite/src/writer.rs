//! The span writer: a bounded, never-blocking queue in front of one thread that commits
//! batches.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender, SyncSender};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use aiops_telemetry_core::{Collector, CollectorError, RecordOutcome, Span};

use crate::error::StoreError;
use crate::ingest::Ingest;

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
/// Recording never blocks. Each `record_batch` is a single channel send of the whole batch;
/// the queue's bound is counted in spans (accepted but not yet committed), and a batch that
/// does not fit is cut: the prefix that fits is accepted, the rest dropped and counted. The
/// thread commits a transaction when `batch_max_rows` spans are waiting or the oldest has
/// waited `batch_max_delay`. [`Collector::flush`] blocks until everything accepted before it
/// is committed; shutdown drains the queue. A failed transaction loses its spans (counted in
/// [`WriterStats::failed`]) and is reported by the next flush or shutdown.
pub struct SpanWriter {
    /// `None` once shut down. Readers (recorders) never wait except while shutdown takes it.
    sender: RwLock<Option<Sender<Command>>>,
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

enum Command {
    Spans(Vec<Span>),
    /// Commit everything before this; reply with the failure seen since the last flush.
    Flush(SyncSender<Option<String>>),
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
        let (sender, receiver) = mpsc::channel();
        let counters = Arc::new(Counters::default());
        let worker = Worker {
            ingest,
            receiver,
            counters: Arc::clone(&counters),
            batching,
            pending: Vec::new(),
            deadline: None,
            failure: None,
        };
        let thread = std::thread::Builder::new()
            .name("aiops-span-writer".into())
            .spawn(move || worker.run())
            .map_err(|error| StoreError::Writer(format!("cannot start thread: {error}")))?;
        Ok(Self {
            sender: RwLock::new(Some(sender)),
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
        // Dropping the only sender ends the thread once it has drained the channel.
        drop(
            self.sender
                .write()
                .unwrap_or_else(PoisonError::into_inner)
                .take(),
        );
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
        let sender = self.sender.read().unwrap_or_else(PoisonError::into_inner);
        let Some(sender) = sender.as_ref() else {
            return self.count_dropped(offered);
        };
        let accepted = self.reserve(offered);
        if accepted == 0 {
            return self.count_dropped(offered);
        }
        spans.truncate(accepted);
        if sender.send(Command::Spans(spans)).is_err() {
            self.counters.queued.fetch_sub(accepted, Ordering::AcqRel);
            return self.count_dropped(offered);
        }
        let dropped = offered - accepted;
        if dropped > 0 {
            let _ = self.count_dropped(dropped);
        }
        RecordOutcome { accepted, dropped }
    }

    fn flush(&self) -> Result<(), CollectorError> {
        let (reply, answer) = mpsc::sync_channel(1);
        {
            let sender = self.sender.read().unwrap_or_else(PoisonError::into_inner);
            // After shutdown everything accepted has been committed already.
            let Some(sender) = sender.as_ref() else {
                return Ok(());
            };
            sender
                .send(Command::Flush(reply))
                .map_err(|_| CollectorError::Closed)?;
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
    receiver: Receiver<Command>,
    counters: Arc<Counters>,
    batching: Batching,
    pending: Vec<Span>,
    /// When the oldest pending span must be committed.
    deadline: Option<Instant>,
    /// The first failure since the last flush.
    failure: Option<String>,
}

impl Worker {
    /// Runs until every sender is gone and the channel is drained; returns any failure not
    /// yet reported by a flush.
    fn run(mut self) -> Option<String> {
        loop {
            let received = match self.deadline {
                None => self
                    .receiver
                    .recv()
                    .map_err(|_| RecvTimeoutError::Disconnected),
                Some(deadline) => self
                    .receiver
                    .recv_timeout(deadline.saturating_duration_since(Instant::now())),
            };
            match received {
                Ok(Command::Spans(spans)) => {
                    self.enqueue(spans);
                    if self.deadline.is_some_and(|due| Instant::now() >= due) {
                        self.commit_pending();
                    }
                }
                Ok(Command::Flush(reply)) => {
                    self.commit_pending();
                    let _ = reply.send(self.failure.take());
                }
                Err(RecvTimeoutError::Timeout) => self.commit_pending(),
                Err(RecvTimeoutError::Disconnected) => {
                    self.commit_pending();
                    return self.failure.take();
                }
            }
        }
    }

    /// Adds spans to the pending batch and commits every full transaction's worth.
    fn enqueue(&mut self, mut spans: Vec<Span>) {
        if self.pending.is_empty() {
            self.deadline = Some(Instant::now() + self.batching.max_delay);
            self.pending = spans;
        } else {
            self.pending.append(&mut spans);
        }
        let max_rows = self.batching.max_rows;
        if self.pending.len() >= max_rows {
            let mut pending = std::mem::take(&mut self.pending);
            let full = pending.len() / max_rows * max_rows;
            for chunk in pending[..full].chunks(max_rows) {
                self.commit(chunk);
            }
            pending.drain(..full);
            self.pending = pending;
            if self.pending.is_empty() {
                self.deadline = None;
            }
        }
    }

    fn commit_pending(&mut self) {
        let pending = std::mem::take(&mut self.pending);
        for chunk in pending.chunks(self.batching.max_rows) {
            self.commit(chunk);
        }
        self.deadline = None;
    }

    fn commit(&mut self, spans: &[Span]) {
        let rows = spans.len();
        match self.ingest.write(spans) {
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
