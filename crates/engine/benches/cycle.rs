//! Analysis cost: one [`Engine::run_cycle`] with 50 endpoints after 10k, 100k and 1M spans
//! were recorded over the last hour.
//!
//! The engine is first fed an hour of traffic, in time order and in batches of 1,000 spans (as
//! OTLP ingest records them). Each measured iteration then advances the clock by one analysis
//! interval, records that interval's share of the hourly rate (untimed), and times the cycle
//! alone, so the figure is a steady-state cycle at that traffic level. Two scenarios:
//!
//! - `healthy`: every endpoint behaves; the cycle detects, learns and finds nothing.
//! - `incident`: one leaf endpoint is 400 ms slower from the first measured cycle on, so every
//!   cycle also samples traces, runs root cause analysis and updates the incident (at 1M
//!   spans an hour; at 10k and 100k its slow calls are too few per window to be judged).
//!
//! The bench links the allocator the server ships with (mimalloc), so the figure is the cycle
//! as the server runs it, including what freeing the previous interval's spans costs there.
//!
//! Run with `cargo bench -p aiops-engine --bench cycle`; `bench/run.sh` reads the medians.

use std::hint::black_box;
use std::time::{Duration, Instant};

use aiops_engine::{CycleReport, Engine, EngineConfig};
use aiops_telemetry_core::{Collector, Span, SpanId, SpanKind, SpanText, TraceId};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const SECOND: u64 = 1_000_000_000;
const MS: u64 = 1_000_000;
const HOUR: u64 = 3_600 * SECOND;
const T0: u64 = 1_700_000_000 * SECOND;
/// Ten services of five operations each.
const SERVICES: usize = 10;
const OPERATIONS: usize = 5;
const ENDPOINTS: usize = SERVICES * OPERATIONS;
/// Spans per `record_batch`, as one OTLP export request.
const BATCH: usize = 1_000;
/// The leaf endpoint that slows down in the `incident` scenario.
const SLOW_ENDPOINT: usize = 7;

/// Deterministic traffic over the 50 endpoints: two-span traces, a caller and the callee it
/// waits for, each in a different service.
struct Traffic {
    rng: StdRng,
    /// Each endpoint's service and operation, made once and shared by its spans (OTLP decoding
    /// shares them within a request).
    names: Vec<(SpanText, SpanText)>,
    slow: Option<usize>,
}

impl Traffic {
    fn new(seed: u64) -> Self {
        let names = (0..ENDPOINTS)
            .map(|e| {
                (
                    format!("svc-{:02}", e / OPERATIONS).into(),
                    format!("GET /api/op-{}", e % OPERATIONS).into(),
                )
            })
            .collect();
        Self {
            rng: StdRng::seed_from_u64(seed),
            names,
            slow: None,
        }
    }

    /// `count` spans starting evenly in `[from, from + length)`, in time order.
    fn spans(&mut self, from: u64, length: u64, count: usize) -> Vec<Span> {
        let traces = count.div_ceil(2);
        let mut spans = Vec::with_capacity(traces * 2);
        for i in 0..traces {
            let start = from + (i as u64 * length) / traces as u64;
            spans.extend(self.trace(start));
        }
        spans.truncate(count);
        spans
    }

    fn trace(&mut self, start: u64) -> [Span; 2] {
        let caller = self.rng.random_range(0..ENDPOINTS);
        // The callee lives in another service, so self time separates the two.
        let callee = (caller + OPERATIONS * self.rng.random_range(1..SERVICES)) % ENDPOINTS;
        let mut callee_ms = self.rng.random_range(10..30);
        if self.slow == Some(callee) {
            callee_ms += 400;
        }
        let caller_self_ms = self.rng.random_range(5..25);
        let trace_id = TraceId::from_slice(&self.rng.random::<[u8; 16]>()).expect("16 bytes");
        let root_id = SpanId::from_slice(&self.rng.random::<[u8; 8]>()).expect("8 bytes");
        let child_id = SpanId::from_slice(&self.rng.random::<[u8; 8]>()).expect("8 bytes");
        let span = |id, endpoint: usize, offset, ms: u64| {
            let (service, operation) = &self.names[endpoint];
            Span::new(trace_id, id, service.clone(), operation.clone())
                .with_kind(SpanKind::Server)
                .with_timing(start + offset, ms * MS)
                .with_http_status(200)
                .with_attribute("service.version", "1.0.0")
        };
        [
            span(root_id, caller, 0, caller_self_ms + callee_ms),
            span(child_id, callee, MS, callee_ms).with_parent(root_id),
        ]
    }
}

/// An engine that has seen `spans_per_hour` spans over the hour before `now`, with cycles
/// run every interval as the server would.
fn primed(spans_per_hour: usize, traffic: &mut Traffic) -> (Engine, u64) {
    let config = EngineConfig::default();
    let interval = (config.analyzer.analysis_interval_secs * 1e9) as u64;
    let mut engine = Engine::new(config).expect("default configuration is valid");
    let collector = engine.collector();
    let per_interval = spans_per_hour * interval as usize / HOUR as usize;
    let mut now = T0;
    while now < T0 + HOUR {
        for batch in traffic.spans(now, interval, per_interval).chunks(BATCH) {
            let _ = collector.record_batch(batch.to_vec());
        }
        now += interval;
        let _ = engine.run_cycle(now);
    }
    (engine, now)
}

/// The measured call, kept out of line so that a profiler can count it alone
/// (`valgrind --tool=callgrind --toggle-collect='cycle::measured_cycle'`).
#[inline(never)]
fn measured_cycle(engine: &mut Engine, now: u64) -> CycleReport {
    engine.run_cycle(now)
}

fn run_cycle(c: &mut Criterion) {
    let mut group = c.benchmark_group("run_cycle");
    group
        .sample_size(30)
        .warm_up_time(Duration::from_secs(2))
        .measurement_time(Duration::from_secs(8))
        .throughput(Throughput::Elements(1));
    for scenario in ["healthy", "incident"] {
        for spans_per_hour in [10_000, 100_000, 1_000_000] {
            let mut traffic = Traffic::new(42);
            let (mut engine, mut now) = primed(spans_per_hour, &mut traffic);
            if scenario == "incident" {
                traffic.slow = Some(SLOW_ENDPOINT);
            }
            let collector = engine.collector();
            let interval = (engine.config().analyzer.analysis_interval_secs * 1e9) as u64;
            let per_interval = spans_per_hour * interval as usize / HOUR as usize;
            let id = BenchmarkId::new(scenario, spans_per_hour);
            group.bench_function(id, |b| {
                b.iter_custom(|iterations| {
                    let mut elapsed = Duration::ZERO;
                    for _ in 0..iterations {
                        for batch in traffic.spans(now, interval, per_interval).chunks(BATCH) {
                            let _ = collector.record_batch(batch.to_vec());
                        }
                        now += interval;
                        let started = Instant::now();
                        black_box(measured_cycle(&mut engine, black_box(now)));
                        elapsed += started.elapsed();
                    }
                    elapsed
                });
            });
            if scenario == "incident" {
                // At 10k and 100k spans an hour the slow endpoint's slow calls are too few
                // per window to be judged, so those cycles measure detection without RCA.
                eprintln!(
                    "{scenario}/{spans_per_hour}: {} active incident(s)",
                    engine.incidents().active().len()
                );
            }
        }
    }
    group.finish();
}

criterion_group!(benches, run_cycle);
criterion_main!(benches);
