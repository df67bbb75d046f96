//! What the services log: INFO lines about a share of their requests, an ERROR line (with a
//! stack trace) for every request that fails, the ERROR lines of defects and caught exceptions
//! their spans do not show, and bursts of noise; all in their trace and span, reaching the
//! collector around when the spans do (some before, most after).

use std::collections::BTreeMap;

use aiops_telemetry_core::{LogRecord, LogSeverity, Span};
use rand::Rng;
use rand::rngs::StdRng;

use crate::fault::{CAUGHT_EXCEPTION, Effect, Note};
use crate::topology::Topology;
use crate::trace::Emitted;

const MS: u64 = 1_000_000;

/// Share of server spans with an INFO line.
const INFO_SHARE: f64 = 0.3;

/// Log records on their way to the collector.
#[derive(Debug, Default)]
pub struct LogWriter {
    in_flight: BTreeMap<(u64, u64), LogRecord>,
    sequence: u64,
    /// Records written.
    pub written: u64,
}

impl LogWriter {
    /// Writes the records about `emitted` (a span of its service) under `effects`, arriving
    /// about `arrival_ns` (when the span's batch does).
    pub fn about(
        &mut self,
        rng: &mut StdRng,
        emitted: &Emitted,
        effects: &[Effect],
        arrival_ns: u64,
    ) {
        let span = &emitted.span;
        // A service with older tracing instrumentation (server spans of unspecified kind)
        // logs all the same.
        if !emitted.handler {
            return;
        }
        let at = span.end_unix_nanos().saturating_sub(MS);
        let in_span = |record: LogRecord| record.in_span(span.trace_id, span.span_id);
        if rng.random_bool(INFO_SHARE) {
            let body = format!(
                "handled {} for customer c-{} in {} ms",
                span.operation,
                rng.random_range(1_000..99_999),
                span.duration_nanos / MS
            );
            self.send(
                rng,
                in_span(LogRecord::new(
                    span.service.clone(),
                    at,
                    LogSeverity::INFO,
                    body,
                )),
                arrival_ns,
            );
        }
        let error = |body: String| {
            in_span(LogRecord::new(
                span.service.clone(),
                at,
                LogSeverity::ERROR,
                body,
            ))
        };
        if span.is_error() {
            let body = format!(
                "request {} failed: {}\n\tat {}.Handler.serve(Handler.java:{})\n\tat io.server.Dispatcher.run(Dispatcher.java:88)",
                span.operation,
                upstream(span),
                span.service,
                rng.random_range(40..400)
            );
            self.send(rng, error(body), arrival_ns);
        }
        for effect in effects {
            if let Effect::RoutineErrors { service, share } = *effect
                && service == emitted.service
                && rng.random_bool(share)
            {
                let body = format!(
                    "cache miss for rate r-{}, falling back to the rates table",
                    rng.random_range(1_000..99_999)
                );
                self.send(rng, error(body), arrival_ns);
            }
        }
        match emitted.note {
            Note::None => {}
            Note::Defect => {
                let body = format!(
                    "unexpected empty price list for order o-{}\njava.lang.IllegalStateException: price list is empty\n\tat {}.Pricing.total(Pricing.java:{})",
                    rng.random_range(10_000..99_999),
                    span.service,
                    rng.random_range(40..400)
                );
                self.send(rng, error(body), arrival_ns);
            }
            Note::Caught => {
                let body = format!(
                    "caught {CAUGHT_EXCEPTION} in {}, serving a fallback: price is null\n\tat {}.Catalog.price(Catalog.java:{})",
                    span.operation,
                    span.service,
                    rng.random_range(40..400)
                );
                let record = error(body).with_attribute("exception.type", CAUGHT_EXCEPTION);
                self.send(rng, record, arrival_ns);
            }
        }
    }

    /// One second of noise starting at `second_ns` from the log-noise effects in `effects`.
    pub fn noise(
        &mut self,
        rng: &mut StdRng,
        topology: &Topology,
        effects: &[Effect],
        second_ns: u64,
    ) {
        for effect in effects {
            let Effect::LogNoise {
                service,
                per_second,
            } = *effect
            else {
                continue;
            };
            let name = topology.services[service].name.clone();
            for i in 0..per_second {
                let at = second_ns + i * 1_000 * MS / per_second.max(1);
                let (severity, body) = match rng.random_range(0..4) {
                    0 => (
                        LogSeverity::WARN,
                        format!(
                            "GC pause of {} ms in region {:x}",
                            rng.random_range(5..80),
                            rng.random::<u32>()
                        ),
                    ),
                    1 => (
                        LogSeverity::WARN,
                        format!(
                            "slow config refresh from 10.0.{}.{}: {} ms",
                            rng.random_range(0..255),
                            rng.random_range(0..255),
                            rng.random_range(100..900)
                        ),
                    ),
                    2 => (
                        LogSeverity::INFO,
                        format!(
                            "cache rebalanced: {} keys moved",
                            rng.random_range(10..5_000)
                        ),
                    ),
                    _ => (
                        LogSeverity::ERROR,
                        format!(
                            "failed to publish metrics batch {}: connection reset, retrying",
                            rng.random_range(1..9_999)
                        ),
                    ),
                };
                let record = LogRecord::new(name.clone(), at, severity, body);
                let arrival = at + rng.random_range(50..2_000) * MS;
                self.send(rng, record, arrival);
            }
        }
    }

    fn send(&mut self, rng: &mut StdRng, record: LogRecord, arrival_ns: u64) {
        // Logs travel their own pipeline: up to a second before or after the spans.
        let jitter = rng.random_range(0..2_000) * MS;
        let arrival = (arrival_ns + jitter)
            .saturating_sub(1_000 * MS)
            .max(record.time_unix_nanos);
        self.sequence += 1;
        self.written += 1;
        self.in_flight.insert((arrival, self.sequence), record);
    }

    /// The records that reached the collector by `now_ns`, in arrival order.
    pub fn arrived(&mut self, now_ns: u64) -> Vec<LogRecord> {
        let later = self.in_flight.split_off(&(now_ns, 0));
        std::mem::replace(&mut self.in_flight, later)
            .into_values()
            .collect()
    }
}

fn upstream(span: &Span) -> String {
    match span.http_status {
        Some(code) => format!("status {code}"),
        None => "an upstream call failed".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aiops_telemetry_core::{SpanId, SpanKind, TraceId};
    use rand::SeedableRng;

    fn handled(kind: SpanKind, handler: bool) -> Emitted {
        let span = Span::new(TraceId::random(), SpanId::random(), "pricing", "GET /price")
            .with_timing(1_000 * MS, 20 * MS)
            .with_kind(kind);
        Emitted {
            service: 0,
            span,
            note: Note::Defect,
            handler,
        }
    }

    fn errors_about(emitted: &Emitted) -> Vec<LogRecord> {
        let mut writer = LogWriter::default();
        writer.about(&mut StdRng::seed_from_u64(7), emitted, &[], 2_000 * MS);
        writer
            .arrived(u64::MAX)
            .into_iter()
            .filter(|record| record.severity.is_error())
            .collect()
    }

    #[test]
    fn a_defect_is_logged_in_its_span_whatever_kind_the_instrumentation_gave_it() {
        for kind in [SpanKind::Server, SpanKind::Internal] {
            let emitted = handled(kind, true);
            let errors = errors_about(&emitted);
            assert_eq!(errors.len(), 1, "{kind:?}");
            assert_eq!(errors[0].span_id, Some(emitted.span.span_id));
            assert_eq!(errors[0].trace_id, Some(emitted.span.trace_id));
        }
    }

    #[test]
    fn spans_that_handle_no_request_log_nothing() {
        assert!(errors_about(&handled(SpanKind::Client, false)).is_empty());
    }

    #[test]
    fn a_service_with_routine_errors_logs_them_in_its_spans_and_others_do_not() {
        let mut emitted = handled(SpanKind::Server, true);
        emitted.note = Note::None;
        let routine = |service| Effect::RoutineErrors {
            service,
            share: 1.0,
        };
        for (effect, lines) in [(routine(0), 1), (routine(1), 0)] {
            let mut writer = LogWriter::default();
            writer.about(
                &mut StdRng::seed_from_u64(7),
                &emitted,
                &[effect],
                2_000 * MS,
            );
            let errors: Vec<LogRecord> = writer
                .arrived(u64::MAX)
                .into_iter()
                .filter(|record| record.severity.is_error())
                .collect();
            assert_eq!(errors.len(), lines);
            if let Some(error) = errors.first() {
                assert!(
                    error.body.starts_with("cache miss for rate"),
                    "{}",
                    error.body
                );
                assert_eq!(error.span_id, Some(emitted.span.span_id));
            }
        }
    }
}
