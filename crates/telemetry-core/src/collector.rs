use std::sync::Arc;

use crate::error::CollectorError;
use crate::span::Span;

/// How many spans a [`Collector`] took and how many it had to drop.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[must_use]
pub struct RecordOutcome {
    /// Spans accepted: they will be visible after the next [`Collector::flush`].
    pub accepted: usize,
    /// Spans dropped because the collector was full or closed; the collector counts them too.
    pub dropped: usize,
}

impl RecordOutcome {
    /// Every one of `count` spans accepted.
    pub const fn accepted(count: usize) -> Self {
        Self {
            accepted: count,
            dropped: 0,
        }
    }

    /// Every one of `count` spans dropped.
    pub const fn dropped(count: usize) -> Self {
        Self {
            accepted: 0,
            dropped: count,
        }
    }
}

/// Where finished spans go.
///
/// # Contract
///
/// - **Non-blocking.** [`record`](Self::record) and [`record_batch`](Self::record_batch) are
///   called on the request path and must return promptly: they never wait for I/O, a full queue
///   or another caller's work. A collector that cannot take a span now drops it, counts it, and
///   says so in the returned [`RecordOutcome`]. Callers do not retry.
/// - **Thread-safe.** Collectors are `Send + Sync` and are called concurrently from many threads.
/// - **Ordering.** Spans may arrive in any order, children before parents, and from any number
///   of traces interleaved.
/// - **Flush blocks.** [`flush`](Self::flush) returns once every span accepted before the call
///   is durable (or visible to readers), or fails saying why. It is for shutdown, tests and
///   benchmarks, never the request path.
///
/// ```
/// use aiops_telemetry_core::{Collector, RecordOutcome, Span, SpanId, TraceId};
/// use std::sync::atomic::{AtomicUsize, Ordering};
///
/// #[derive(Debug, Default)]
/// struct CountingCollector(AtomicUsize);
///
/// impl Collector for CountingCollector {
///     fn record_batch(&self, spans: Vec<Span>) -> RecordOutcome {
///         self.0.fetch_add(spans.len(), Ordering::Relaxed);
///         RecordOutcome::accepted(spans.len())
///     }
///     fn flush(&self) -> Result<(), aiops_telemetry_core::CollectorError> {
///         Ok(())
///     }
/// }
///
/// let collector = CountingCollector::default();
/// let outcome = collector.record(Span::new(TraceId::random(), SpanId::random(), "shop", "/health"));
/// assert_eq!(outcome.accepted, 1);
/// ```
pub trait Collector: Send + Sync {
    /// Takes one finished span. Never blocks.
    fn record(&self, span: Span) -> RecordOutcome {
        self.record_batch(vec![span])
    }

    /// Takes many finished spans at once. Never blocks; may accept a prefix and drop the rest.
    fn record_batch(&self, spans: Vec<Span>) -> RecordOutcome;

    /// Takes copies of spans someone else keeps. Never blocks. The default clones them into
    /// [`record_batch`](Self::record_batch); a collector that only reads spans (counters,
    /// histograms) overrides it to skip the copies, which [`Fanout`] relies on for every
    /// collector but its primary.
    fn record_borrowed(&self, spans: &[Span]) -> RecordOutcome {
        self.record_batch(spans.to_vec())
    }

    /// Blocks until every span accepted before this call is durable or visible.
    fn flush(&self) -> Result<(), CollectorError>;
}

impl<C: Collector + ?Sized> Collector for Arc<C> {
    fn record(&self, span: Span) -> RecordOutcome {
        (**self).record(span)
    }

    fn record_batch(&self, spans: Vec<Span>) -> RecordOutcome {
        (**self).record_batch(spans)
    }

    fn record_borrowed(&self, spans: &[Span]) -> RecordOutcome {
        (**self).record_borrowed(spans)
    }

    fn flush(&self) -> Result<(), CollectorError> {
        (**self).flush()
    }
}

/// Sends every span to several collectors: the first is the primary (usually the store), whose
/// outcome is returned; the others (live statistics, recent-trace buffers) see the spans
/// through [`Collector::record_borrowed`] before the primary takes them, so a secondary that
/// only reads spans costs no copy.
///
/// ```
/// use aiops_telemetry_core::{Collector, Fanout, InMemoryCollector, Span, SpanId, TraceId};
/// use std::sync::Arc;
///
/// let store = Arc::new(InMemoryCollector::default());
/// let live = Arc::new(InMemoryCollector::default());
/// let fanout = Fanout::new(vec![store.clone(), live.clone()]);
/// let _ = fanout.record(Span::new(TraceId::random(), SpanId::random(), "shop", "/health"));
/// assert_eq!((store.len(), live.len()), (1, 1));
/// ```
#[derive(Clone, Default)]
pub struct Fanout {
    collectors: Vec<Arc<dyn Collector>>,
}

impl std::fmt::Debug for Fanout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fanout")
            .field("collectors", &self.collectors.len())
            .finish()
    }
}

impl Fanout {
    /// Fans out to `collectors`, the first of which is the primary.
    pub fn new(collectors: Vec<Arc<dyn Collector>>) -> Self {
        Self { collectors }
    }
}

impl Collector for Fanout {
    fn record(&self, span: Span) -> RecordOutcome {
        match self.collectors.split_first() {
            None => RecordOutcome::dropped(1),
            Some((primary, rest)) => {
                for collector in rest {
                    let _ = collector.record_borrowed(std::slice::from_ref(&span));
                }
                primary.record(span)
            }
        }
    }

    fn record_batch(&self, spans: Vec<Span>) -> RecordOutcome {
        match self.collectors.split_first() {
            None => RecordOutcome::dropped(spans.len()),
            Some((primary, rest)) => {
                for collector in rest {
                    let _ = collector.record_borrowed(&spans);
                }
                primary.record_batch(spans)
            }
        }
    }

    fn record_borrowed(&self, spans: &[Span]) -> RecordOutcome {
        match self.collectors.split_first() {
            None => RecordOutcome::dropped(spans.len()),
            Some((primary, rest)) => {
                for collector in rest {
                    let _ = collector.record_borrowed(spans);
                }
                primary.record_borrowed(spans)
            }
        }
    }

    fn flush(&self) -> Result<(), CollectorError> {
        self.collectors
            .iter()
            .try_for_each(|collector| collector.flush())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{SpanId, TraceId};

    #[derive(Debug)]
    struct Full;

    impl Collector for Full {
        fn record_batch(&self, spans: Vec<Span>) -> RecordOutcome {
            RecordOutcome::dropped(spans.len())
        }

        fn flush(&self) -> Result<(), CollectorError> {
            Err(CollectorError::Closed)
        }
    }

    fn span() -> Span {
        Span::new(TraceId::random(), SpanId::random(), "shop", "/health")
    }

    #[test]
    fn fanout_returns_the_primary_outcome() {
        let fanout = Fanout::new(vec![Arc::new(Full)]);
        assert_eq!(
            fanout.record_batch(vec![span(), span()]),
            RecordOutcome::dropped(2)
        );
        assert_eq!(fanout.flush(), Err(CollectorError::Closed));
    }

    #[test]
    fn empty_fanout_drops_everything() {
        let fanout = Fanout::default();
        assert_eq!(fanout.record(span()), RecordOutcome::dropped(1));
        assert_eq!(fanout.flush(), Ok(()));
    }

    /// Counts how spans reached it: owned (`record_batch`) or borrowed.
    #[derive(Debug, Default)]
    struct Reader {
        owned: std::sync::atomic::AtomicUsize,
        borrowed: std::sync::atomic::AtomicUsize,
    }

    impl Collector for Reader {
        fn record_batch(&self, spans: Vec<Span>) -> RecordOutcome {
            self.owned
                .fetch_add(spans.len(), std::sync::atomic::Ordering::Relaxed);
            RecordOutcome::accepted(spans.len())
        }

        fn record_borrowed(&self, spans: &[Span]) -> RecordOutcome {
            self.borrowed
                .fetch_add(spans.len(), std::sync::atomic::Ordering::Relaxed);
            RecordOutcome::accepted(spans.len())
        }

        fn flush(&self) -> Result<(), CollectorError> {
            Ok(())
        }
    }

    #[test]
    fn fanout_hands_secondaries_borrowed_spans_and_the_primary_owned_ones() {
        use std::sync::atomic::Ordering::Relaxed;
        let primary = Arc::new(Reader::default());
        let secondary = Arc::new(Reader::default());
        let nested = Arc::new(Reader::default());
        let inner = Arc::new(Fanout::new(vec![secondary.clone(), nested.clone()]));
        let fanout = Fanout::new(vec![primary.clone(), inner]);

        let _ = fanout.record_batch(vec![span(), span()]);
        let _ = fanout.record(span());

        assert_eq!(
            (primary.owned.load(Relaxed), primary.borrowed.load(Relaxed)),
            (3, 0)
        );
        for reader in [&secondary, &nested] {
            assert_eq!(
                (reader.owned.load(Relaxed), reader.borrowed.load(Relaxed)),
                (0, 3)
            );
        }
    }

    #[test]
    fn the_default_record_borrowed_copies_into_record_batch() {
        let store = crate::InMemoryCollector::default();
        let spans = vec![span(), span()];
        assert_eq!(store.record_borrowed(&spans), RecordOutcome::accepted(2));
        assert_eq!(store.len(), 2);
    }
}
