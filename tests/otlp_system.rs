//! A small multi-service system whose requests become OpenTelemetry traces: a `frontend`
//! serving `POST /checkout` that calls `inventory` (`GET /stock/{sku}`) and then `payments`
//! (`POST /charge`, which queries its database), with faults injectable into one service.
//!
//! Traces are generated with explicit timestamps and seeded randomness, so the same seed gives
//! the same file. They are sent to the server by the OpenTelemetry SDK (tests/otlp.rs) or
//! written as OTLP JSON lines, the OpenTelemetry Collector file exporter's format
//! ([`replay_lines`], `cargo run -p aiops-e2e --example replay_fixture`).

use aiops_telemetry_core::otlp::ExportTraceServiceRequest;
use aiops_telemetry_core::otlp::testing::{
    OtlpRequestBuilder, OtlpSpanBuilder, int_attribute, string_attribute,
};
use opentelemetry_proto::tonic::trace::v1::Span;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;

/// 2026-01-20T10:00:00Z: generated files start here, so they replay the same anywhere.
pub const FIXTURE_EPOCH_UNIX_NANOS: u64 = 1_768_903_200_000_000_000;

/// The services of the system, callers first.
pub const SERVICES: [&str; 3] = ["frontend", "inventory", "payments"];

const MS: u64 = 1_000_000;

/// Something going wrong in one service's `POST /charge` or `GET /stock/{sku}` handler.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Fault {
    /// Every request of `service` takes `extra_ms` longer.
    Latency {
        /// `inventory` or `payments`.
        service: &'static str,
        /// Added to the handler's own time.
        extra_ms: u64,
    },
    /// A share `rate` of `service`'s requests fail with 503.
    Errors {
        /// `inventory` or `payments`.
        service: &'static str,
        /// 0 to 1.
        rate: f64,
    },
}

impl Fault {
    fn latency_of(&self, service: &str) -> u64 {
        match self {
            Self::Latency {
                service: target,
                extra_ms,
            } if *target == service => extra_ms * MS,
            _ => 0,
        }
    }

    fn fails(&self, service: &str, roll: f64) -> bool {
        matches!(self, Self::Errors { service: target, rate } if *target == service && roll < *rate)
    }
}

/// One span of a generated trace.
#[derive(Clone, Debug, PartialEq)]
pub struct SimSpan {
    /// 16 bytes.
    pub trace_id: [u8; 16],
    /// 8 bytes.
    pub span_id: [u8; 8],
    /// Index of the parent within the trace.
    pub parent: Option<usize>,
    /// `service.name`.
    pub service: &'static str,
    /// Span name, as instrumentation names it (`POST /checkout`, `GET`, `SELECT accounts`).
    pub name: String,
    /// OTLP span kind.
    pub kind: SpanKind,
    /// Unix nanoseconds.
    pub start_unix_nanos: u64,
    /// Unix nanoseconds.
    pub end_unix_nanos: u64,
    /// `http.request.method`, `http.route`, `http.response.status_code`, `db.system`, ...
    pub attributes: Vec<(&'static str, AttributeValue)>,
    /// Set when the span failed (status ERROR with this message).
    pub error: Option<String>,
}

/// An attribute value.
#[derive(Clone, Debug, PartialEq)]
pub enum AttributeValue {
    /// A string.
    Text(String),
    /// An integer.
    Int(i64),
}

/// Generates traces of the system.
#[derive(Clone, Debug)]
pub struct ShopSystem {
    state: u64,
}

impl ShopSystem {
    /// A generator whose output depends only on `seed`.
    pub fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    /// One checkout starting at `start_unix_nanos`, with `fault` in force.
    pub fn checkout(&mut self, start_unix_nanos: u64, fault: Option<Fault>) -> Vec<SimSpan> {
        let trace_id = self.trace_id();
        let mut spans = Vec::with_capacity(6);
        let open =
            |sim: &mut Self, spans: &mut Vec<SimSpan>, parent, service, name: &str, kind, start| {
                spans.push(SimSpan {
                    trace_id,
                    span_id: sim.span_id(),
                    parent,
                    service,
                    name: name.to_owned(),
                    kind,
                    start_unix_nanos: start,
                    end_unix_nanos: start,
                    attributes: Vec::new(),
                    error: None,
                });
                spans.len() - 1
            };

        let root = open(
            self,
            &mut spans,
            None,
            "frontend",
            "POST /checkout",
            SpanKind::Server,
            start_unix_nanos,
        );
        let mut now = start_unix_nanos + self.between(MS, 3 * MS);

        let call = open(
            self,
            &mut spans,
            Some(root),
            "frontend",
            "GET",
            SpanKind::Client,
            now,
        );
        let served = open(
            self,
            &mut spans,
            Some(call),
            "inventory",
            "GET /stock/{sku}",
            SpanKind::Server,
            now + MS / 2,
        );
        let inventory_ns =
            self.between(5 * MS, 11 * MS) + fault.map_or(0, |f| f.latency_of("inventory"));
        let inventory_failed = fault.is_some_and(|f| f.fails("inventory", self.unit()));
        let end = spans[served].start_unix_nanos + inventory_ns;
        finish(
            &mut spans[served],
            end,
            "GET",
            Some("/stock/{sku}"),
            inventory_failed,
        );
        finish(
            &mut spans[call],
            end + MS / 2,
            "GET",
            None,
            inventory_failed,
        );
        now = end + MS;

        // A checkout whose stock look-up failed never charges the card.
        let mut failed = inventory_failed;
        if !inventory_failed {
            let call = open(
                self,
                &mut spans,
                Some(root),
                "frontend",
                "POST",
                SpanKind::Client,
                now,
            );
            let served = open(
                self,
                &mut spans,
                Some(call),
                "payments",
                "POST /charge",
                SpanKind::Server,
                now + MS / 2,
            );
            let query_start = spans[served].start_unix_nanos + 2 * MS;
            let query = open(
                self,
                &mut spans,
                Some(served),
                "payments",
                "SELECT accounts",
                SpanKind::Client,
                query_start,
            );
            let query_end = query_start + self.between(3 * MS, 5 * MS);
            spans[query].end_unix_nanos = query_end;
            spans[query]
                .attributes
                .push(("db.system", AttributeValue::Text("postgresql".into())));
            let own_ns =
                self.between(22 * MS, 38 * MS) + fault.map_or(0, |f| f.latency_of("payments"));
            let payment_failed = fault.is_some_and(|f| f.fails("payments", self.unit()));
            let end = query_end + own_ns;
            finish(
                &mut spans[served],
                end,
                "POST",
                Some("/charge"),
                payment_failed,
            );
            finish(&mut spans[call], end + MS / 2, "POST", None, payment_failed);
            now = end + MS;
            failed = payment_failed;
        }

        let end = now + self.between(MS, 3 * MS);
        let root_status = if failed { 502 } else { 200 };
        spans[root].end_unix_nanos = end;
        spans[root].attributes = vec![
            ("http.request.method", AttributeValue::Text("POST".into())),
            ("http.route", AttributeValue::Text("/checkout".into())),
            (
                "http.response.status_code",
                AttributeValue::Int(root_status),
            ),
        ];
        if failed {
            spans[root].error = Some("a dependency failed".into());
        }
        spans
    }

    fn next(&mut self) -> u64 {
        // SplitMix64: tiny, seedable, good enough for jitter.
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn between(&mut self, low: u64, high: u64) -> u64 {
        low + self.next() % (high - low + 1)
    }

    fn trace_id(&mut self) -> [u8; 16] {
        let mut id = [0; 16];
        id[..8].copy_from_slice(&self.next().to_be_bytes());
        id[8..].copy_from_slice(&(self.next() | 1).to_be_bytes());
        id
    }

    fn span_id(&mut self) -> [u8; 8] {
        (self.next() | 1).to_be_bytes()
    }
}

fn finish(span: &mut SimSpan, end: u64, method: &str, route: Option<&str>, failed: bool) {
    span.end_unix_nanos = end;
    span.attributes
        .push(("http.request.method", AttributeValue::Text(method.into())));
    if let Some(route) = route {
        span.attributes
            .push(("http.route", AttributeValue::Text(route.into())));
    }
    let status = if failed { 503 } else { 200 };
    span.attributes
        .push(("http.response.status_code", AttributeValue::Int(status)));
    if failed {
        span.error = Some("service unavailable".into());
    }
}

/// The traces as one OTLP request, one resource per service.
pub fn to_request<'a>(spans: impl IntoIterator<Item = &'a [SimSpan]>) -> ExportTraceServiceRequest {
    to_request_with_versions(spans, |_| "1.4.2")
}

/// [`to_request`] with each service's `service.version` given by `version_of`.
pub fn to_request_with_versions<'a>(
    spans: impl IntoIterator<Item = &'a [SimSpan]>,
    version_of: impl Fn(&str) -> &'static str,
) -> ExportTraceServiceRequest {
    let traces: Vec<&[SimSpan]> = spans.into_iter().collect();
    let mut request = OtlpRequestBuilder::new();
    for service in SERVICES {
        let spans: Vec<Span> = traces
            .iter()
            .flat_map(|trace| {
                trace
                    .iter()
                    .filter(|span| span.service == service)
                    .map(|span| to_otlp_span(span, trace))
            })
            .collect();
        if !spans.is_empty() {
            request = request
                .resource([
                    string_attribute("service.name", service),
                    string_attribute("service.version", version_of(service)),
                ])
                .scope("shop-sim")
                .spans(spans);
        }
    }
    request.build()
}

fn to_otlp_span(span: &SimSpan, trace: &[SimSpan]) -> Span {
    let mut otlp = OtlpSpanBuilder::new(span.name.clone(), span.kind)
        .trace_id(&span.trace_id)
        .span_id(&span.span_id)
        .timing(span.start_unix_nanos, span.end_unix_nanos);
    if let Some(parent) = span.parent {
        otlp = otlp.parent(&trace[parent].span_id);
    }
    for (key, value) in &span.attributes {
        otlp = otlp.attribute(match value {
            AttributeValue::Text(text) => string_attribute(key, text),
            AttributeValue::Int(number) => int_attribute(key, *number),
        });
    }
    if let Some(message) = &span.error {
        otlp = otlp.error(message.clone());
    }
    otlp.build()
}

/// A recorded incident-to-be: steady traffic with a fault for a while.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Scenario {
    /// How long the recording lasts.
    pub duration_secs: u64,
    /// Checkouts per second.
    pub requests_per_sec: u64,
    /// The fault, from `fault_from_secs` until `fault_until_secs` into the recording.
    pub fault: Option<Fault>,
    /// When the fault starts.
    pub fault_from_secs: u64,
    /// When it stops.
    pub fault_until_secs: u64,
    /// Seconds of traffic per line (per exporter batch).
    pub batch_secs: u64,
}

impl Scenario {
    /// Five minutes at 1 checkout per second; `payments` is 600 ms slower from 2:30 to 4:00.
    pub fn payments_latency() -> Self {
        Self {
            duration_secs: 300,
            requests_per_sec: 1,
            fault: Some(Fault::Latency {
                service: "payments",
                extra_ms: 600,
            }),
            fault_from_secs: 150,
            fault_until_secs: 240,
            batch_secs: 5,
        }
    }
}

/// The scenario as OTLP JSON lines (one `ExportTraceServiceRequest` per batch), starting at
/// [`FIXTURE_EPOCH_UNIX_NANOS`].
pub fn replay_lines(seed: u64, scenario: &Scenario) -> Vec<String> {
    let mut system = ShopSystem::new(seed);
    let gap = 1_000_000_000 / scenario.requests_per_sec.max(1);
    let mut lines = Vec::new();
    let mut second = 0;
    while second < scenario.duration_secs {
        let batch_end = (second + scenario.batch_secs.max(1)).min(scenario.duration_secs);
        let traces: Vec<Vec<SimSpan>> = (second..batch_end)
            .flat_map(|s| (0..scenario.requests_per_sec.max(1)).map(move |i| (s, i)))
            .map(|(s, i)| {
                let fault = scenario
                    .fault
                    .filter(|_| (scenario.fault_from_secs..scenario.fault_until_secs).contains(&s));
                let start = FIXTURE_EPOCH_UNIX_NANOS + s * 1_000_000_000 + i * gap;
                system.checkout(start, fault)
            })
            .collect();
        let request = to_request(traces.iter().map(Vec::as_slice));
        lines.push(serde_json::to_string(&request).expect("OTLP requests serialize"));
        second = batch_end;
    }
    lines
}
