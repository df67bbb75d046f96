//! [`PeerKeyed`]: the engine's intake, which keys every client span by the peer it called
//! before the live windows and the trace buffer see it.

use aiops_telemetry_core::{
    Collector, CollectorError, Fanout, RecordOutcome, Span, SpanKind, key_by_peer,
    peer_keyed_operation,
};

/// Forwards spans to the engine's collectors with client spans keyed by their peer
/// (`GET -> currency`, see [`aiops_telemetry_core::peer_of`]), so that each edge of the call
/// graph is an endpoint with its own baseline. Spans that are not client spans, or name no
/// peer, pass unchanged and uncopied.
#[derive(Debug)]
pub(crate) struct PeerKeyed {
    inner: Fanout,
}

impl PeerKeyed {
    pub(crate) fn new(inner: Fanout) -> Self {
        Self { inner }
    }
}

impl Collector for PeerKeyed {
    fn record_batch(&self, mut spans: Vec<Span>) -> RecordOutcome {
        for span in &mut spans {
            if span.kind != SpanKind::Server {
                key_by_peer(span);
            }
        }
        self.inner.record_batch(spans)
    }

    fn record_borrowed(&self, spans: &[Span]) -> RecordOutcome {
        let needs_keying =
            |span: &Span| span.kind != SpanKind::Server && peer_keyed_operation(span).is_some();
        if spans.iter().any(needs_keying) {
            self.record_batch(spans.to_vec())
        } else {
            self.inner.record_borrowed(spans)
        }
    }

    fn flush(&self) -> Result<(), CollectorError> {
        self.inner.flush()
    }
}
