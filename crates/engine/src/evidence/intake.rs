//! The engine's intake of logs and changes: bounded queues the cycle drains, and the spans an
//! ERROR log named, which count as failed when they arrive.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use foldhash::HashSet;

use aiops_telemetry_core::{
    Change, ChangeCollector, Collector, CollectorError, LogCollector, LogRecord, RecordOutcome,
    Span, SpanId, SpanStatus, TraceId,
};

/// The attribute an exception event leaves on its span.
pub(crate) const EXCEPTION_TYPE: &str = "exception.type";

/// Where the engine's [`LogCollector`] and [`ChangeCollector`] put what they take: queues of at
/// most `max_logs` records and `max_changes` changes, drained by each cycle; what does not fit
/// is dropped and counted. Recording takes a short lock and never waits for a cycle.
#[derive(Debug)]
pub(crate) struct EvidenceIntake {
    logs: Mutex<VecDeque<LogRecord>>,
    max_logs: usize,
    dropped_logs: AtomicU64,
    changes: Mutex<Vec<Change>>,
    max_changes: usize,
    dropped_changes: AtomicU64,
    failed: FailedSpans,
    /// Spans marked failed on arrival by their ERROR logs alone, for the next cycle.
    failed_by_logs: Mutex<Vec<SpanKey>>,
}

/// Counters of the log and change intake.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EvidenceStats {
    /// Log records dropped because the queue was full.
    pub dropped_logs: u64,
    /// Changes dropped because the queue was full.
    pub dropped_changes: u64,
    /// Log records waiting for the next cycle.
    pub queued_logs: usize,
}

impl EvidenceIntake {
    pub(crate) fn new(max_logs: usize, max_changes: usize, max_failed: usize) -> Self {
        Self {
            logs: Mutex::new(VecDeque::new()),
            max_logs,
            dropped_logs: AtomicU64::new(0),
            changes: Mutex::new(Vec::new()),
            max_changes,
            dropped_changes: AtomicU64::new(0),
            failed: FailedSpans::new(max_failed),
            failed_by_logs: Mutex::new(Vec::new()),
        }
    }

    /// The spans marked failed on arrival by their ERROR logs alone since the last call.
    pub(crate) fn take_failed_by_logs(&self) -> Vec<SpanKey> {
        std::mem::take(&mut *lock(&self.failed_by_logs))
    }

    fn note_failed_by_logs(&self, keys: impl Iterator<Item = SpanKey>) {
        let mut noted = lock(&self.failed_by_logs);
        let room = self.failed.max.saturating_sub(noted.len());
        noted.extend(keys.take(room));
    }

    /// The records taken since the last call, in arrival order.
    pub(crate) fn take_logs(&self) -> Vec<LogRecord> {
        lock(&self.logs).drain(..).collect()
    }

    /// The changes taken since the last call, in arrival order.
    pub(crate) fn take_changes(&self) -> Vec<Change> {
        std::mem::take(&mut *lock(&self.changes))
    }

    pub(crate) fn failed(&self) -> &FailedSpans {
        &self.failed
    }

    pub(crate) fn stats(&self) -> EvidenceStats {
        EvidenceStats {
            dropped_logs: self.dropped_logs.load(Ordering::Relaxed),
            dropped_changes: self.dropped_changes.load(Ordering::Relaxed),
            queued_logs: lock(&self.logs).len(),
        }
    }
}

impl LogCollector for EvidenceIntake {
    fn record_logs(&self, records: Vec<LogRecord>) -> RecordOutcome {
        for record in &records {
            if let (true, Some(trace), Some(span)) =
                (record.severity.is_error(), record.trace_id, record.span_id)
            {
                self.failed.insert(trace, span);
            }
        }
        let mut queue = lock(&self.logs);
        let room = self.max_logs.saturating_sub(queue.len());
        let total = records.len();
        queue.extend(records.into_iter().take(room));
        let dropped = total.saturating_sub(room);
        if dropped > 0 {
            self.dropped_logs
                .fetch_add(dropped as u64, Ordering::Relaxed);
        }
        RecordOutcome {
            accepted: total - dropped,
            dropped,
        }
    }

    fn flush_logs(&self) -> Result<(), CollectorError> {
        Ok(())
    }
}

impl ChangeCollector for EvidenceIntake {
    fn record_change(&self, change: Change) -> RecordOutcome {
        let mut queue = lock(&self.changes);
        if queue.len() >= self.max_changes {
            self.dropped_changes.fetch_add(1, Ordering::Relaxed);
            return RecordOutcome::dropped(1);
        }
        queue.push(change);
        RecordOutcome::accepted(1)
    }
}

/// A span's identity.
pub(crate) type SpanKey = (TraceId, SpanId);

/// The spans an ERROR log named, remembered (at most `max`, the oldest forgotten first) until
/// they arrive: logs may come before their spans.
#[derive(Debug)]
pub(crate) struct FailedSpans {
    max: usize,
    len: AtomicUsize,
    state: Mutex<(HashSet<SpanKey>, VecDeque<SpanKey>)>,
}

impl FailedSpans {
    fn new(max: usize) -> Self {
        Self {
            max: max.max(1),
            len: AtomicUsize::new(0),
            state: Mutex::new(Default::default()),
        }
    }

    fn insert(&self, trace: TraceId, span: SpanId) {
        let mut state = lock(&self.state);
        let (set, order) = &mut *state;
        if set.insert((trace, span)) {
            order.push_back((trace, span));
            while order.len() > self.max || order.front().is_some_and(|k| !set.contains(k)) {
                if let Some(old) = order.pop_front() {
                    set.remove(&old);
                }
            }
        }
        self.len.store(set.len(), Ordering::Relaxed);
    }

    /// For each of `spans`, whether an ERROR log named it; one look at the lock for the
    /// batch, none while no log named any span.
    fn named(&self, spans: &[Span]) -> Option<Vec<bool>> {
        if self.len.load(Ordering::Relaxed) == 0 {
            return None;
        }
        let state = lock(&self.state);
        let named: Vec<bool> = spans
            .iter()
            .map(|span| state.0.contains(&(span.trace_id, span.span_id)))
            .collect();
        named.contains(&true).then_some(named)
    }

    /// Forgets `span`: its failure has been counted.
    pub(crate) fn forget(&self, trace: TraceId, span: SpanId) {
        let mut state = lock(&self.state);
        if state.0.remove(&(trace, span)) {
            // Its place in the order goes when it reaches the front.
            self.len.store(state.0.len(), Ordering::Relaxed);
        }
    }
}

/// Wraps the engine's span intake: a span an ERROR log named, or that carries an exception
/// event (`exception.type`) and no status, counts as failed. An explicit `OK` status stands
/// against an exception (the instrumentation knew it was handled, ADR 0010), not against an
/// ERROR log.
#[derive(Debug)]
pub(crate) struct Marking<C> {
    inner: C,
    failed: std::sync::Arc<EvidenceIntake>,
}

impl<C> Marking<C> {
    pub(crate) fn new(inner: C, failed: std::sync::Arc<EvidenceIntake>) -> Self {
        Self { inner, failed }
    }

    /// For each of `spans`, whether it is to be marked failed and why; `None` when none is.
    fn fails(&self, spans: &[Span]) -> Option<Vec<Fails>> {
        let named = self.failed.failed().named(spans);
        let fails: Vec<Fails> = spans
            .iter()
            .enumerate()
            .map(|(i, span)| {
                if span.is_error() {
                    Fails::No
                } else if span.status == SpanStatus::Unset
                    && span.attribute(EXCEPTION_TYPE).is_some()
                {
                    Fails::Exception
                } else if named.as_ref().is_some_and(|named| named[i]) {
                    Fails::Logs
                } else {
                    Fails::No
                }
            })
            .collect();
        fails.iter().any(|f| *f != Fails::No).then_some(fails)
    }

    /// Marks `spans` failed as `fails` says, and notes those their ERROR logs alone failed.
    fn mark(&self, spans: &mut [Span], fails: &[Fails]) {
        for (span, fails) in spans.iter_mut().zip(fails) {
            if *fails != Fails::No {
                span.status = SpanStatus::Error;
            }
        }
        if fails.contains(&Fails::Logs) {
            self.failed.note_failed_by_logs(
                spans
                    .iter()
                    .zip(fails)
                    .filter(|(_, f)| **f == Fails::Logs)
                    .map(|(span, _)| (span.trace_id, span.span_id)),
            );
        }
    }
}

/// Why a span is marked failed on arrival.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fails {
    No,
    /// It carries an exception event and no status.
    Exception,
    /// An ERROR log named it, and nothing else fails it.
    Logs,
}

impl<C: Collector> Collector for Marking<C> {
    fn record_batch(&self, mut spans: Vec<Span>) -> RecordOutcome {
        if let Some(fails) = self.fails(&spans) {
            self.mark(&mut spans, &fails);
        }
        self.inner.record_batch(spans)
    }

    fn record_borrowed(&self, spans: &[Span]) -> RecordOutcome {
        match self.fails(spans) {
            Some(fails) => {
                let mut spans = spans.to_vec();
                self.mark(&mut spans, &fails);
                self.inner.record_batch(spans)
            }
            None => self.inner.record_borrowed(spans),
        }
    }

    fn flush(&self) -> Result<(), CollectorError> {
        self.inner.flush()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every update leaves the data consistent before it could panic.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
