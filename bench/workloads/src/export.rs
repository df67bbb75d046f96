//! Late and out-of-order arrival: each service's SDK exports its finished spans in batches.
//!
//! A service's batch span processor exports every `delay` (1 to 5 s, different per service,
//! with its own phase): a span that ends is exported at the service's next export tick, and
//! reaches the collector a few milliseconds to tens of milliseconds later. So the spans of
//! one trace arrive in pieces, seconds apart, children often before parents, and the spans of
//! a service that exports rarely arrive after those of a service that exports often.

use std::collections::BTreeMap;

use aiops_telemetry_core::Span;
use rand::Rng;
use rand::rngs::StdRng;

use crate::sample::{mix, unit};

const MS: u64 = 1_000_000;

/// One service's exporter schedule.
#[derive(Clone, Copy, Debug)]
struct Schedule {
    delay_ns: u64,
    phase_ns: u64,
    /// Salt of the per-batch transport time, so that it costs no draw.
    salt: u64,
}

/// Batches in flight from every service's SDK to the collector.
#[derive(Debug)]
pub struct Exporter {
    schedules: Vec<Schedule>,
    /// Batches by arrival time, then service and export tick.
    in_flight: BTreeMap<(u64, usize, u64), Vec<Span>>,
    pending: usize,
}

impl Exporter {
    /// Schedules for `services` services, drawn from `rng`.
    pub fn new(rng: &mut StdRng, services: usize) -> Self {
        let schedules = (0..services)
            .map(|_| {
                let delay_ns = rng.random_range(1_000..=5_000) * MS;
                Schedule {
                    delay_ns,
                    phase_ns: rng.random_range(0..delay_ns),
                    salt: rng.random(),
                }
            })
            .collect();
        Self {
            schedules,
            in_flight: BTreeMap::new(),
            pending: 0,
        }
    }

    /// The export interval of `service`, in nanoseconds.
    pub fn delay_ns(&self, service: usize) -> u64 {
        self.schedules[service].delay_ns
    }

    /// When a span of `service` that ends at `end_ns` reaches the collector.
    pub fn arrival_ns(&self, service: usize, end_ns: u64) -> u64 {
        let (tick, transport) = self.tick_and_transport(service, end_ns);
        tick + transport
    }

    fn tick_and_transport(&self, service: usize, end_ns: u64) -> (u64, u64) {
        let schedule = self.schedules[service];
        let since = end_ns.saturating_sub(schedule.phase_ns);
        let tick = schedule.phase_ns + since.div_ceil(schedule.delay_ns) * schedule.delay_ns;
        // 2 to 60 ms on the way, skewed towards the short end.
        let transport = (2.0 + 58.0 * unit(mix(schedule.salt ^ tick)).powi(3)) * MS as f64;
        (tick, transport as u64)
    }

    /// Hands a finished span of `service` to its SDK.
    pub fn submit(&mut self, service: usize, span: Span) {
        let (tick, transport) = self.tick_and_transport(service, span.end_unix_nanos());
        self.in_flight
            .entry((tick + transport, service, tick))
            .or_default()
            .push(span);
        self.pending += 1;
    }

    /// Every batch that has arrived by `now_ns`, in arrival order.
    pub fn arrived(&mut self, now_ns: u64) -> Vec<Vec<Span>> {
        let mut batches = Vec::new();
        while let Some(entry) = self.in_flight.first_entry() {
            if entry.key().0 > now_ns {
                break;
            }
            let batch = entry.remove();
            self.pending -= batch.len();
            batches.push(batch);
        }
        batches
    }

    /// Spans submitted that have not arrived yet.
    pub fn pending(&self) -> usize {
        self.pending
    }
}

#[cfg(test)]
mod tests {
    use aiops_telemetry_core::{SpanId, TraceId};
    use rand::SeedableRng;

    use super::*;

    fn span(service: usize, end_ns: u64) -> Span {
        let name = ["s0", "s1", "s2", "s3"][service];
        Span::new(
            TraceId::from_bytes([1; 16]),
            SpanId::from_bytes([1; 8]),
            name,
            "op",
        )
        .with_timing(end_ns - MS, MS)
    }

    #[test]
    fn spans_arrive_after_they_end_within_one_delay_and_a_transport() {
        let mut rng = StdRng::seed_from_u64(9);
        let exporter = Exporter::new(&mut rng, 4);
        for service in 0..4 {
            for end in [1_000 * MS, 1_700_000_000_123 * MS] {
                let arrival = exporter.arrival_ns(service, end);
                assert!(arrival >= end + 2 * MS);
                assert!(arrival <= end + exporter.delay_ns(service) + 60 * MS);
            }
        }
    }

    #[test]
    fn batches_come_out_in_arrival_order_and_only_once_arrived() {
        let mut rng = StdRng::seed_from_u64(10);
        let mut exporter = Exporter::new(&mut rng, 3);
        for i in 0..300u64 {
            let service = (i % 3) as usize;
            exporter.submit(service, span(service, 10_000 * MS + i * 37 * MS));
        }
        let (mut delivered, mut last_arrival) = (0, 0);
        for now in (10_000..40_000u64).step_by(100).map(|ms| ms * MS) {
            for batch in exporter.arrived(now) {
                let service: usize = batch[0].service[1..].parse().expect("s<index>");
                let arrival = exporter.arrival_ns(service, batch[0].end_unix_nanos());
                assert!(
                    batch
                        .iter()
                        .all(|s| exporter.arrival_ns(service, s.end_unix_nanos()) == arrival)
                );
                assert!(arrival <= now && arrival >= last_arrival);
                last_arrival = arrival;
                delivered += batch.len();
            }
        }
        assert_eq!(delivered, 300);
        assert_eq!(exporter.pending(), 0);
    }
}
