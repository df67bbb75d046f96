//! Synthetic OTLP trace exports: ten services of five routes each (50 endpoints), two-span
//! traces (a caller and the callee it waits for, in another service), fresh ids and current
//! timestamps in every request.
//!
//! The request's structure is built once; each [`ExportGenerator::next_body`] only rewrites
//! ids and timestamps in place and encodes, so the generator costs little CPU next to the
//! server it loads on the same machine.

use std::time::{SystemTime, UNIX_EPOCH};

use aiops_telemetry_core::otlp::ExportTraceServiceRequest;
use aiops_telemetry_core::otlp::testing::{
    OtlpRequestBuilder, OtlpSpanBuilder, OtlpSpanKind, int_attribute, string_attribute,
};
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const SERVICES: usize = 10;
const ROUTES: usize = 5;
const MS: u64 = 1_000_000;

/// Builds request bodies of a fixed number of spans.
#[derive(Debug)]
pub struct ExportGenerator {
    request: ExportTraceServiceRequest,
    /// Per trace: (resource, span index) of the caller, then of the callee.
    traces: Vec<[(usize, usize); 2]>,
    rng: StdRng,
}

impl ExportGenerator {
    /// A generator of requests holding `spans` spans (rounded up to an even number).
    pub fn new(spans: usize, seed: u64) -> Self {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut resources: Vec<Vec<Span>> = vec![Vec::new(); SERVICES];
        let mut traces = Vec::with_capacity(spans.div_ceil(2));
        for _ in 0..spans.div_ceil(2) {
            let caller = rng.random_range(0..SERVICES);
            let callee = (caller + rng.random_range(1..SERVICES)) % SERVICES;
            let mut positions = [(0, 0); 2];
            for (slot, service) in [caller, callee].into_iter().enumerate() {
                let route = rng.random_range(0..ROUTES);
                // One request in two hundred fails, as healthy production traffic does.
                let status = if rng.random_range(0..200) == 0 {
                    500
                } else {
                    200
                };
                positions[slot] = (service, resources[service].len());
                resources[service].push(span_template(route, status));
            }
            traces.push(positions);
        }
        let mut request = OtlpRequestBuilder::new();
        for (service, spans) in resources.into_iter().enumerate() {
            request = request
                .resource([
                    string_attribute("service.name", &format!("svc-{service:02}")),
                    string_attribute("service.version", "1.4.2"),
                ])
                .scope("aiops-loadgen")
                .spans(spans);
        }
        Self {
            request: request.build(),
            traces,
            rng,
        }
    }

    /// Spans in every request.
    pub fn spans_per_request(&self) -> usize {
        self.traces.len() * 2
    }

    /// The next request body: fresh trace and span ids, spans that ended within the last
    /// second.
    pub fn next_body(&mut self) -> Vec<u8> {
        let now = now_unix_nanos();
        for index in 0..self.traces.len() {
            let [(caller_resource, caller), (callee_resource, callee)] = self.traces[index];
            let trace_id: [u8; 16] = self.rng.random();
            let caller_id: [u8; 8] = self.rng.random();
            let callee_id: [u8; 8] = self.rng.random();
            let callee_nanos = self.rng.random_range(10..30) * MS;
            let caller_nanos = callee_nanos + self.rng.random_range(5..25) * MS;
            let end = now - self.rng.random_range(0..1_000) * MS;
            let start = end - caller_nanos;

            let span = self.span_mut(caller_resource, caller);
            span.trace_id.copy_from_slice(&trace_id);
            span.span_id.copy_from_slice(&caller_id);
            span.start_time_unix_nano = start;
            span.end_time_unix_nano = end;

            let span = self.span_mut(callee_resource, callee);
            span.trace_id.copy_from_slice(&trace_id);
            span.span_id.copy_from_slice(&callee_id);
            span.parent_span_id.copy_from_slice(&caller_id);
            span.start_time_unix_nano = start + 2 * MS;
            span.end_time_unix_nano = start + 2 * MS + callee_nanos;
        }
        self.request.encode_to_vec()
    }

    fn span_mut(&mut self, resource: usize, index: usize) -> &mut Span {
        &mut self.request.resource_spans[resource].scope_spans[0].spans[index]
    }
}

fn span_template(route: usize, status: i64) -> Span {
    let route = format!("/api/v1/op-{route}");
    OtlpSpanBuilder::new(format!("GET {route}"), OtlpSpanKind::Server)
        .trace_id(&[0; 16])
        .span_id(&[0; 8])
        // Callers overwrite it with their id; roots keep an absent parent.
        .parent(&[0; 8])
        .attribute(string_attribute("http.request.method", "GET"))
        .attribute(string_attribute("http.route", &route))
        .attribute(int_attribute("http.response.status_code", status))
        .build()
}

/// Current wall-clock time in Unix nanoseconds.
pub fn now_unix_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_nanos() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_hold_the_requested_spans_with_fresh_ids() {
        let mut generator = ExportGenerator::new(1_000, 7);
        let first = ExportTraceServiceRequest::decode(&generator.next_body()[..]).expect("decodes");
        let second =
            ExportTraceServiceRequest::decode(&generator.next_body()[..]).expect("decodes");
        let spans = |request: &ExportTraceServiceRequest| -> Vec<Span> {
            request
                .resource_spans
                .iter()
                .flat_map(|r| r.scope_spans[0].spans.clone())
                .collect()
        };
        let (first, second) = (spans(&first), spans(&second));
        assert_eq!(first.len(), 1_000);
        assert!(
            first
                .iter()
                .all(|s| s.end_time_unix_nano > s.start_time_unix_nano)
        );
        assert_ne!(first[0].trace_id, second[0].trace_id);
        let roots = first.iter().filter(|s| s.parent_span_id == [0; 8]).count();
        assert_eq!(roots, 500, "every trace is a caller and its callee");
    }
}
