use std::sync::{Mutex, MutexGuard};

use crate::collector::{Collector, RecordOutcome};
use crate::error::CollectorError;
use crate::span::Span;

/// A [`Collector`] that keeps every span in memory, for tests.
///
/// It never drops, and `flush` is a no-op: spans are visible as soon as they are recorded. An
/// optional capacity makes it drop past a limit, to test callers' handling of a full collector.
#[derive(Debug, Default)]
pub struct InMemoryCollector {
    spans: Mutex<Vec<Span>>,
    capacity: Option<usize>,
    dropped: Mutex<usize>,
}

impl InMemoryCollector {
    /// A collector that holds at most `capacity` spans and drops (and counts) the rest.
    pub fn with_capacity_limit(capacity: usize) -> Self {
        Self {
            capacity: Some(capacity),
            ..Self::default()
        }
    }

    /// A copy of every span recorded so far, in arrival order.
    pub fn spans(&self) -> Vec<Span> {
        lock(&self.spans).clone()
    }

    /// How many spans are held.
    pub fn len(&self) -> usize {
        lock(&self.spans).len()
    }

    /// True when no span is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How many spans were dropped for lack of capacity.
    pub fn dropped(&self) -> usize {
        *lock(&self.dropped)
    }

    /// Removes and returns every span held.
    pub fn take(&self) -> Vec<Span> {
        std::mem::take(&mut *lock(&self.spans))
    }
}

/// Poisoning only means another test thread panicked; the data is still usable.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Collector for InMemoryCollector {
    fn record_batch(&self, mut spans: Vec<Span>) -> RecordOutcome {
        let mut held = lock(&self.spans);
        let room = self
            .capacity
            .map_or(usize::MAX, |cap| cap.saturating_sub(held.len()));
        let dropped = spans.len().saturating_sub(room);
        spans.truncate(spans.len() - dropped);
        let accepted = spans.len();
        held.extend(spans);
        *lock(&self.dropped) += dropped;
        RecordOutcome { accepted, dropped }
    }

    fn flush(&self) -> Result<(), CollectorError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{SpanId, TraceId};

    fn span() -> Span {
        Span::new(TraceId::random(), SpanId::random(), "shop", "/health")
    }

    #[test]
    fn keeps_spans_in_arrival_order() {
        let collector = InMemoryCollector::default();
        let (a, b) = (span(), span());
        let _ = collector.record(a.clone());
        let _ = collector.record(b.clone());
        assert_eq!(collector.spans(), vec![a, b]);
    }

    #[test]
    fn capacity_limit_drops_and_counts_the_rest() {
        let collector = InMemoryCollector::with_capacity_limit(2);
        let outcome = collector.record_batch(vec![span(), span(), span()]);
        assert_eq!(
            outcome,
            RecordOutcome {
                accepted: 2,
                dropped: 1
            }
        );
        assert_eq!(collector.dropped(), 1);
        assert_eq!(collector.take().len(), 2);
        assert!(collector.is_empty());
    }
}
