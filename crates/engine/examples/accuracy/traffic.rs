//! Requests through a topology: each becomes one trace of server spans, with the injected
//! fault (if any) applied to the faulty service.

use aiops_telemetry_core::{Span, SpanId, TraceId};
use rand::Rng;
use rand::rngs::StdRng;

use crate::topology::Topology;

const MS: f64 = 1e6;
/// One-way network time of a call, milliseconds.
const NETWORK_MS: f64 = 0.5;

/// The one fault injected into a case.
#[derive(Clone, Copy, Debug)]
pub enum Fault {
    /// Every operation of `service` does `extra_ms` more of its own work.
    Latency { service: usize, extra_ms: f64 },
    /// Every operation of `service` fails on its own with probability `rate`.
    Errors { service: usize, rate: f64 },
    /// With `probability`, an operation of `service` hangs for about `hang_ms` (longer than
    /// its callers wait) before answering.
    Timeout {
        service: usize,
        probability: f64,
        hang_ms: f64,
    },
}

impl Fault {
    pub fn service(&self) -> usize {
        match *self {
            Self::Latency { service, .. }
            | Self::Errors { service, .. }
            | Self::Timeout { service, .. } => service,
        }
    }

    pub fn kind_name(&self) -> &'static str {
        match self {
            Self::Latency { .. } => "latency",
            Self::Errors { .. } => "errors",
            Self::Timeout { .. } => "timeout",
        }
    }
}

struct Outcome {
    duration_ms: f64,
    failed: bool,
}

/// Runs requests and records their spans.
pub struct Requests<'a> {
    topology: &'a Topology,
    fault: Option<Fault>,
    trace_id: TraceId,
    /// Start of the current request; span times are kept as milliseconds after it.
    origin_nanos: u64,
    spans: Vec<Span>,
}

impl<'a> Requests<'a> {
    pub fn new(topology: &'a Topology) -> Self {
        Self {
            topology,
            fault: None,
            trace_id: TraceId::from_bytes([1; 16]),
            origin_nanos: 0,
            spans: Vec::new(),
        }
    }

    pub fn set_fault(&mut self, fault: Option<Fault>) {
        self.fault = fault;
    }

    /// One request to a random entry operation starting at `start_nanos`: its trace's spans.
    pub fn request(&mut self, rng: &mut StdRng, start_nanos: u64) -> Vec<Span> {
        self.trace_id = TraceId::from_bytes(nonzero(rng));
        self.origin_nanos = start_nanos;
        let entry = rng.random_range(0..self.topology.services[0].operations.len());
        self.execute(rng, 0, entry, None, 0.0);
        std::mem::take(&mut self.spans)
    }

    fn execute(
        &mut self,
        rng: &mut StdRng,
        service: usize,
        operation: usize,
        parent: Option<SpanId>,
        start: f64,
    ) -> Outcome {
        let topology = self.topology;
        let spec = &topology.services[service].operations[operation];
        let span_id = SpanId::from_bytes(nonzero(rng));
        let mut self_ms = spec.self_median_ms * (spec.self_sigma * standard_normal(rng)).exp();
        let mut own_error = rng.random_bool(spec.error_rate);
        match self.fault {
            Some(Fault::Latency {
                service: s,
                extra_ms,
            }) if s == service => self_ms += extra_ms,
            Some(Fault::Errors { service: s, rate }) if s == service => {
                own_error |= rng.random_bool(rate);
            }
            Some(Fault::Timeout {
                service: s,
                probability,
                hang_ms,
            }) if s == service && rng.random_bool(probability) => {
                let duration_ms = hang_ms * rng.random_range(0.9..1.1);
                self.record(service, operation, parent, span_id, start, duration_ms, 200);
                return Outcome {
                    duration_ms,
                    failed: false,
                };
            }
            _ => {}
        }

        let fail_early = own_error && rng.random_bool(0.5);
        let timeout_ms = topology.services[service].client_timeout_ms;
        let mut cursor = start + self_ms * spec.pre_share;
        let (mut callee_failed, mut timed_out) = (false, false);
        if !fail_early {
            let mut parallel_wait: f64 = 0.0;
            for call in &spec.calls {
                if call.probability < 1.0 && !rng.random_bool(call.probability) {
                    continue;
                }
                let child_start = cursor + NETWORK_MS;
                let child = self.execute(
                    rng,
                    call.service,
                    call.operation,
                    Some(span_id),
                    child_start,
                );
                let round_trip = child.duration_ms + 2.0 * NETWORK_MS;
                let (waited, gave_up) = if round_trip > timeout_ms {
                    (timeout_ms, true)
                } else {
                    (round_trip, false)
                };
                let failed = call.propagates && (child.failed || gave_up);
                timed_out |= call.propagates && gave_up;
                callee_failed |= failed;
                if spec.parallel {
                    parallel_wait = parallel_wait.max(waited);
                } else {
                    cursor += waited;
                    if failed {
                        break;
                    }
                }
            }
            cursor += parallel_wait;
        }
        let post_ms = self_ms * (1.0 - spec.pre_share);
        let duration_ms = if fail_early {
            cursor - start
        } else if callee_failed {
            (cursor - start) + 0.1 * post_ms
        } else {
            (cursor - start) + post_ms
        };
        let status = if own_error {
            500
        } else if timed_out {
            504
        } else if callee_failed {
            502
        } else {
            200
        };
        self.record(
            service,
            operation,
            parent,
            span_id,
            start,
            duration_ms,
            status,
        );
        Outcome {
            duration_ms,
            failed: status >= 500,
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn record(
        &mut self,
        service: usize,
        operation: usize,
        parent: Option<SpanId>,
        span_id: SpanId,
        start: f64,
        duration_ms: f64,
        status: u16,
    ) {
        let spec = &self.topology.services[service];
        let mut span = Span::new(
            self.trace_id,
            span_id,
            spec.name.clone(),
            spec.operations[operation].name.clone(),
        )
        .with_timing(
            self.origin_nanos + (start * MS) as u64,
            (duration_ms.max(0.0) * MS) as u64,
        )
        .with_http_status(status);
        span.parent_span_id = parent;
        self.spans.push(span);
    }
}

fn nonzero<const N: usize>(rng: &mut StdRng) -> [u8; N] {
    loop {
        let bytes: [u8; N] = std::array::from_fn(|_| rng.random());
        if bytes.iter().any(|&b| b != 0) {
            return bytes;
        }
    }
}

/// A standard normal variate (Box-Muller).
fn standard_normal(rng: &mut StdRng) -> f64 {
    let u1: f64 = 1.0 - rng.random::<f64>();
    let u2: f64 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}
