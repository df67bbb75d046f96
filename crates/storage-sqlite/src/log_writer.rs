//! The log writer: a bounded, never-blocking queue of log records (and changes) in front of
//! one thread that commits them in batches, beside the span writer.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, SyncSender};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use aiops_telemetry_core::{
    Change, ChangeCollector, CollectorError, LogCollector, LogRecord, RecordOutcome,
};
use rusqlite::Connection;

use crate::error::StoreError;
use crate::logs::{insert_change, insert_logs};
use crate::writer::{MAX_BUSY_BACKOFF, SHUTDOWN_BUSY_PATIENCE};

/// Most changes that may wait for the writer; changes are rare, so more means a flood.
const MAX_QUEUED_CHANGES: usize = 1_024;

/// What a [`LogWriter`] has done since the store opened.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LogWriterStats {
    /// Records accepted but not yet committed.
    pub queued: usize,
    /// Records committed.
    pub written: u64,
    /// Records refused because the queue was full or the writer shut down.
    pub dropped: u64,
    /// Records accepted but lost because their transaction failed.
    pub failed: u64,
}

/// The store's [`LogCollector`] (and [`ChangeCollector`]): records are committed by one
/// background thread, as spans are by the [`SpanWriter`](crate::SpanWriter).
///
/// Recording never blocks: records wait in a queue bounded in records (the store's
/// `queue_capacity`); what does not fit is dropped and counted. The thread commits when
/// `batch_max_rows` records wait or the oldest has waited `batch_max_delay`. A recorder that
/// acknowledges what it accepts (OTLP ingest) calls [`LogWriter::record_all`], which takes a
/// whole batch or nothing. A transaction that finds the database busy is tried again with a
/// growing pause; any other failure loses its records, counted in
/// [`LogWriterStats::failed`] and reported by the next flush.
pub struct LogWriter {
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<Option<String>>>>,
    capacity: usize,
    max_rows: usize,
}

#[derive(Debug)]
struct Shared {
    queue: Mutex<Queue>,
    wake: Condvar,
    queued: AtomicUsize,
    written: AtomicU64,
    dropped: AtomicU64,
    failed: AtomicU64,
}

#[derive(Debug, Default)]
struct Queue {
    records: Vec<LogRecord>,
    /// Room held by [`LogAdmission`]s, in records.
    reserved: usize,
    changes: Vec<Change>,
    oldest: Option<Instant>,
    flushes: Vec<SyncSender<Option<String>>>,
    closed: bool,
}

/// The queue could not take a whole batch: nothing of it was recorded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LogQueueFull {
    /// Records waiting for the writer.
    pub queued: usize,
    /// The most that may wait.
    pub capacity: usize,
}

impl LogWriter {
    pub(crate) fn spawn(
        conn: Connection,
        capacity: usize,
        max_rows: usize,
        max_delay: Duration,
    ) -> Result<Self, StoreError> {
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue::default()),
            wake: Condvar::new(),
            queued: AtomicUsize::new(0),
            written: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            failed: AtomicU64::new(0),
        });
        let max_rows = max_rows.max(1);
        let worker = Worker {
            conn,
            shared: Arc::clone(&shared),
            max_rows,
            max_delay,
            failure: None,
        };
        let thread = std::thread::Builder::new()
            .name("aiops-log-writer".into())
            .spawn(move || worker.run())
            .map_err(|error| StoreError::Writer(format!("cannot start thread: {error}")))?;
        Ok(Self {
            shared,
            thread: Mutex::new(Some(thread)),
            capacity,
            max_rows,
        })
    }

    /// Counters since the store opened.
    pub fn stats(&self) -> LogWriterStats {
        LogWriterStats {
            queued: self.shared.queued.load(Ordering::Relaxed),
            written: self.shared.written.load(Ordering::Relaxed),
            dropped: self.shared.dropped.load(Ordering::Relaxed),
            failed: self.shared.failed.load(Ordering::Relaxed),
        }
    }

    /// The most records that may wait for the writer thread.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Queues every one of `records`, or none: `Err` when the queue cannot take them all now
    /// (or the writer shut down), and the sender should retry later. A batch larger than the
    /// whole queue is taken once the queue is at most half full.
    pub fn record_all(&self, records: Vec<LogRecord>) -> Result<RecordOutcome, LogQueueFull> {
        Ok(self.admit(records.len())?.record(records))
    }

    /// Holds room for all `rows` records of a batch, or for none (`Err`, as
    /// [`record_all`](Self::record_all)), so that the batch can be shown to others before it
    /// is queued. Dropped unused, the admission gives the room back.
    pub fn admit(&self, rows: usize) -> Result<LogAdmission<'_>, LogQueueFull> {
        let mut queue = self.shared.lock();
        // Records the worker took are still queued until committed.
        let queued = self.shared.queued.load(Ordering::Relaxed) + queue.reserved;
        let fits = if rows <= self.capacity {
            queued + rows <= self.capacity
        } else {
            queued <= self.capacity / 2
        };
        if queue.closed || !fits {
            return Err(LogQueueFull {
                queued,
                capacity: self.capacity,
            });
        }
        queue.reserved += rows;
        Ok(LogAdmission { writer: self, rows })
    }

    /// [`LogCollector::flush_logs`], waiting at most `limit`: `Ok(false)` when the records
    /// accepted before the call are not all committed by then; they stay queued.
    pub fn flush_within(&self, limit: Duration) -> Result<bool, CollectorError> {
        let Some(answer) = self.request_flush() else {
            return Ok(true);
        };
        match answer.recv_timeout(limit) {
            Ok(None) => Ok(true),
            Ok(Some(failure)) => Err(CollectorError::Storage(failure)),
            Err(mpsc::RecvTimeoutError::Timeout) => Ok(false),
            Err(mpsc::RecvTimeoutError::Disconnected) => Err(CollectorError::Closed),
        }
    }

    fn request_flush(&self) -> Option<mpsc::Receiver<Option<String>>> {
        let (reply, answer) = mpsc::sync_channel(1);
        {
            let mut queue = self.shared.lock();
            if queue.closed {
                return None;
            }
            queue.flushes.push(reply);
        }
        self.shared.wake.notify_one();
        Some(answer)
    }

    fn push(
        &self,
        queue: &mut MutexGuard<'_, Queue>,
        mut records: Vec<LogRecord>,
    ) -> RecordOutcome {
        let rows = records.len();
        if rows == 0 {
            return RecordOutcome::accepted(0);
        }
        if queue.oldest.is_none() {
            queue.oldest = Some(Instant::now());
        }
        queue.records.append(&mut records);
        self.shared.queued.fetch_add(rows, Ordering::Relaxed);
        // An idle thread starts the delay clock; a full batch is due now. Otherwise the
        // thread wakes at the oldest record's deadline by itself.
        if queue.records.len() == rows || queue.records.len() >= self.max_rows {
            self.shared.wake.notify_one();
        }
        RecordOutcome::accepted(rows)
    }

    /// Stops accepting, commits everything queued and joins the thread. Idempotent.
    pub(crate) fn shutdown(&self) -> Result<(), StoreError> {
        self.shared.lock().closed = true;
        self.shared.wake.notify_one();
        let mut thread = self.thread.lock().unwrap_or_else(PoisonError::into_inner);
        match thread.take().map(JoinHandle::join) {
            None | Some(Ok(None)) => Ok(()),
            Some(Ok(Some(failure))) => Err(StoreError::Writer(failure)),
            Some(Err(_)) => Err(StoreError::Writer("log writer thread panicked".into())),
        }
    }

    fn count_dropped(&self, count: usize) -> RecordOutcome {
        self.shared
            .dropped
            .fetch_add(count as u64, Ordering::Relaxed);
        RecordOutcome::dropped(count)
    }
}

/// Room for `rows` records held in a [`LogWriter`]'s queue by [`LogWriter::admit`].
#[derive(Debug)]
#[must_use = "an admission holds queue room until it is recorded or dropped"]
pub struct LogAdmission<'a> {
    writer: &'a LogWriter,
    rows: usize,
}

impl LogAdmission<'_> {
    /// Queues `records` in the room held (records beyond it are dropped and counted), or
    /// drops them all if the writer shut down meanwhile.
    pub fn record(mut self, mut records: Vec<LogRecord>) -> RecordOutcome {
        let held = std::mem::take(&mut self.rows);
        let offered = records.len();
        records.truncate(held);
        let mut queue = self.writer.shared.lock();
        queue.reserved -= held;
        if queue.closed {
            drop(queue);
            return self.writer.count_dropped(offered);
        }
        let outcome = self.writer.push(&mut queue, records);
        drop(queue);
        let dropped = offered - outcome.accepted;
        if dropped > 0 {
            let _ = self.writer.count_dropped(dropped);
        }
        RecordOutcome {
            accepted: outcome.accepted,
            dropped,
        }
    }
}

impl Drop for LogAdmission<'_> {
    fn drop(&mut self) {
        if self.rows > 0 {
            self.writer.shared.lock().reserved -= self.rows;
        }
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl LogCollector for LogWriter {
    fn record_logs(&self, mut records: Vec<LogRecord>) -> RecordOutcome {
        let offered = records.len();
        let mut queue = self.shared.lock();
        if queue.closed {
            drop(queue);
            return self.count_dropped(offered);
        }
        let room = self
            .capacity
            .saturating_sub(self.shared.queued.load(Ordering::Relaxed) + queue.reserved);
        records.truncate(room);
        let outcome = self.push(&mut queue, records);
        drop(queue);
        let dropped = offered - outcome.accepted;
        if dropped > 0 {
            let _ = self.count_dropped(dropped);
        }
        RecordOutcome {
            accepted: outcome.accepted,
            dropped,
        }
    }

    fn flush_logs(&self) -> Result<(), CollectorError> {
        let Some(answer) = self.request_flush() else {
            return Ok(());
        };
        match answer.recv() {
            Ok(None) => Ok(()),
            Ok(Some(failure)) => Err(CollectorError::Storage(failure)),
            Err(_) => Err(CollectorError::Closed),
        }
    }
}

impl ChangeCollector for LogWriter {
    fn record_change(&self, change: Change) -> RecordOutcome {
        let mut queue = self.shared.lock();
        if queue.closed || queue.changes.len() >= MAX_QUEUED_CHANGES {
            return RecordOutcome::dropped(1);
        }
        queue.changes.push(change);
        drop(queue);
        self.shared.wake.notify_one();
        RecordOutcome::accepted(1)
    }
}

impl Drop for LogWriter {
    fn drop(&mut self) {
        if let Err(error) = self.shutdown() {
            log::error!("error={error} Log records were lost while the writer shut down.");
        }
    }
}

impl std::fmt::Debug for LogWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogWriter")
            .field("capacity", &self.capacity)
            .field("stats", &self.stats())
            .finish()
    }
}

struct Worker {
    conn: Connection,
    shared: Arc<Shared>,
    max_rows: usize,
    max_delay: Duration,
    failure: Option<String>,
}

struct Work {
    records: Vec<LogRecord>,
    changes: Vec<Change>,
    flushes: Vec<SyncSender<Option<String>>>,
    closed: bool,
}

impl Worker {
    fn run(mut self) -> Option<String> {
        loop {
            let work = self.next_work();
            for change in &work.changes {
                if let Err(error) =
                    self.retrying_busy(&work, |conn| insert_change(conn, change).map(|_| ()))
                {
                    log::error!(
                        "service={} error={error} A change was not stored.",
                        change.service
                    );
                    self.failure.get_or_insert_with(|| error.to_string());
                }
            }
            for batch in work.records.chunks(self.max_rows) {
                match self.retrying_busy(&work, |conn| insert_logs(conn, &[batch])) {
                    Ok(()) => {
                        self.shared
                            .written
                            .fetch_add(batch.len() as u64, Ordering::Relaxed);
                    }
                    Err(error) => {
                        log::error!(
                            "rows={} error={error} Log batch was not committed.",
                            batch.len()
                        );
                        self.shared
                            .failed
                            .fetch_add(batch.len() as u64, Ordering::Relaxed);
                        self.failure.get_or_insert_with(|| error.to_string());
                    }
                }
                self.shared.queued.fetch_sub(batch.len(), Ordering::Relaxed);
            }
            for reply in work.flushes {
                let _ = reply.send(self.failure.take());
            }
            if work.closed {
                return self.failure.take();
            }
        }
    }

    fn next_work(&self) -> Work {
        let mut queue = self.shared.lock();
        loop {
            let due = queue.oldest.map(|oldest| oldest + self.max_delay);
            let now = Instant::now();
            let ready = queue.closed
                || !queue.flushes.is_empty()
                || !queue.changes.is_empty()
                || queue.records.len() >= self.max_rows
                || due.is_some_and(|due| now >= due);
            if ready {
                queue.oldest = None;
                return Work {
                    records: std::mem::take(&mut queue.records),
                    changes: std::mem::take(&mut queue.changes),
                    flushes: std::mem::take(&mut queue.flushes),
                    closed: queue.closed,
                };
            }
            queue = match due {
                None => self
                    .shared
                    .wake
                    .wait(queue)
                    .unwrap_or_else(PoisonError::into_inner),
                Some(due) => {
                    self.shared
                        .wake
                        .wait_timeout(queue, due - now)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0
                }
            };
        }
    }

    /// Runs `write`, again while the database is busy (another connection, such as the span
    /// writer's, holds it), for at most [`SHUTDOWN_BUSY_PATIENCE`] once shutdown was asked.
    fn retrying_busy(
        &mut self,
        work: &Work,
        mut write: impl FnMut(&mut Connection) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let mut backoff = Duration::from_millis(10);
        let started = Instant::now();
        loop {
            match write(&mut self.conn) {
                Err(error @ StoreError::Busy(_)) => {
                    let closing = work.closed || self.shared.lock().closed;
                    if closing && started.elapsed() >= SHUTDOWN_BUSY_PATIENCE {
                        return Err(error);
                    }
                    std::thread::sleep(backoff);
                    backoff = (backoff * 2).min(MAX_BUSY_BACKOFF);
                }
                other => return other,
            }
        }
    }
}
