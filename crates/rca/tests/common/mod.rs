//! Fixtures: traces written as call trees, and anomalies as the analyzer reports them.

#![allow(dead_code)]

use aiops_analyzer::{Anomaly, AnomalyKind, Severity};
use aiops_telemetry_core::{EndpointKey, Span, SpanId, TimeWindow, TraceId};

pub const MS: u64 = 1_000_000;
pub const T0: u64 = 1_700_000_000_000_000_000;

/// Builds one trace span by span; times are milliseconds after the trace's start.
#[derive(Debug)]
pub struct TraceBuilder {
    trace_id: TraceId,
    start: u64,
    spans: Vec<Span>,
}

impl TraceBuilder {
    /// A trace starting `offset_ms` after `T0`.
    pub fn new(offset_ms: u64) -> Self {
        Self {
            trace_id: TraceId::random(),
            start: T0 + offset_ms * MS,
            spans: Vec::new(),
        }
    }

    /// Adds a successful span of `service` serving `operation` under `parent`.
    pub fn ok(
        &mut self,
        parent: Option<SpanId>,
        service: &str,
        operation: &str,
        start_ms: u64,
        duration_ms: u64,
    ) -> SpanId {
        self.add(parent, service, operation, start_ms, duration_ms, 200)
    }

    /// Adds a span that answered with `status`.
    pub fn add(
        &mut self,
        parent: Option<SpanId>,
        service: &str,
        operation: &str,
        start_ms: u64,
        duration_ms: u64,
        status: u16,
    ) -> SpanId {
        let id = SpanId::random();
        let mut span = Span::new(self.trace_id, id, service.to_owned(), operation.to_owned())
            .with_timing(self.start + start_ms * MS, duration_ms * MS)
            .with_http_status(status);
        span.parent_span_id = parent;
        self.spans.push(span);
        id
    }

    /// Adds a span whose instrumentation recorded no outcome: no status, no HTTP status.
    pub fn silent(
        &mut self,
        parent: Option<SpanId>,
        service: &str,
        operation: &str,
        start_ms: u64,
        duration_ms: u64,
    ) -> SpanId {
        let id = SpanId::random();
        let mut span = Span::new(self.trace_id, id, service.to_owned(), operation.to_owned())
            .with_timing(self.start + start_ms * MS, duration_ms * MS);
        span.parent_span_id = parent;
        self.spans.push(span);
        id
    }

    pub fn build(self) -> Vec<Span> {
        self.spans
    }
}

/// `checkout` (own work `checkout_self_ms`) calling `payment` (own work `payment_self_ms`)
/// which calls `bank` (20 ms). `failing` lists which of the three answer 500.
pub fn shop_trace(
    offset_ms: u64,
    checkout_self_ms: u64,
    payment_self_ms: u64,
    failing: &[&str],
) -> Vec<Span> {
    let status = |name: &str| if failing.contains(&name) { 500 } else { 200 };
    let mut trace = TraceBuilder::new(offset_ms);
    let payment_ms = payment_self_ms + 20;
    let checkout = trace.add(
        None,
        "checkout",
        "/checkout",
        0,
        checkout_self_ms + payment_ms,
        status("checkout"),
    );
    let payment = trace.add(
        Some(checkout),
        "payments",
        "/payment",
        checkout_self_ms / 2,
        payment_ms,
        status("payment"),
    );
    trace.add(
        Some(payment),
        "bank",
        "/charge",
        checkout_self_ms / 2 + payment_self_ms / 2,
        20,
        status("bank"),
    );
    trace.build()
}

pub fn endpoint(service: &str, operation: &str) -> EndpointKey {
    EndpointKey::new(service, operation)
}

/// An anomaly as the analyzer reports it, with a recognisable description.
pub fn anomaly(
    kind: AnomalyKind,
    service: &str,
    operation: &str,
    observed: f64,
    baseline: f64,
) -> Anomaly {
    let description = match kind {
        AnomalyKind::LatencySpike => format!(
            "Latency spike: {observed:.0}ms (baseline: {baseline:.0}ms, {:.1}x slower)",
            observed / baseline
        ),
        AnomalyKind::ErrorStorm => format!(
            "Error storm: {:.0}% errors (baseline: {:.0}%)",
            observed * 100.0,
            baseline * 100.0
        ),
        AnomalyKind::Timeout => format!("Timeouts: {:.0}% of requests", observed * 100.0),
        AnomalyKind::LatencyShift => format!("Latency shift: own time {observed:.0}ms"),
        AnomalyKind::CallDrop => format!("Dropped calls: {observed:.2} per request"),
        AnomalyKind::LogPattern => format!("New log pattern: {observed:.0} records"),
    };
    Anomaly {
        kind,
        endpoint: endpoint(service, operation),
        observed,
        baseline,
        ratio: observed / baseline.max(0.01),
        sample_count: 20,
        window: TimeWindow::new(T0, T0 + 30_000 * MS),
        severity: Severity::High,
        description,
    }
}
