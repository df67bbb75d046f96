//! The demo shop's traffic on a virtual clock: `/checkout` calls `/payment` then `/inventory`,
//! and both are also called directly, with lognormal latencies and optional chaos.

use aiops_engine::{CycleReport, Engine, EngineConfig};
use aiops_telemetry_core::{Collector, Span, SpanId, TraceId};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

pub const SEC: u64 = 1_000_000_000;
pub const MS: u64 = 1_000_000;
/// 2025-01-20T20:00:00Z, a Monday.
pub const T0: u64 = 1_737_403_200 * SEC;

const SERVICE: &str = "shop";

/// What the chaos endpoints would inject.
#[derive(Clone, Copy, Debug, Default)]
pub struct Chaos {
    /// Added to every `/payment` request, in milliseconds.
    pub payment_delay_ms: u64,
    /// Share of `/payment` requests that fail with a 500.
    pub payment_error_rate: f64,
    /// Share of `/inventory` requests that fail with a 500.
    pub inventory_error_rate: f64,
    /// When set, `/checkout` gives up on a dependency after this many milliseconds and answers
    /// 504, while the dependency keeps working (as the server's HTTP client does).
    pub checkout_timeout_ms: Option<u64>,
}

/// Generates the shop's spans.
#[derive(Debug)]
pub struct DemoShop {
    rng: StdRng,
    pub chaos: Chaos,
}

impl DemoShop {
    pub fn new(seed: u64) -> Self {
        Self {
            rng: StdRng::seed_from_u64(seed),
            chaos: Chaos::default(),
        }
    }

    /// A lognormal duration with the given median (in ms) and a spread of about 20%.
    fn latency(&mut self, median_ms: f64) -> u64 {
        let u1: f64 = self.rng.random_range(f64::EPSILON..1.0);
        let u2: f64 = self.rng.random();
        let normal = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
        ((median_ms * (0.2 * normal).exp()) * MS as f64) as u64
    }

    /// Background failures of healthy endpoints: 0.5% of requests.
    fn fails(&mut self, rate: f64) -> bool {
        self.rng.random_bool((rate + 0.005).min(1.0))
    }

    fn ids(&mut self) -> (TraceId, SpanId) {
        (
            TraceId::from_bytes(self.rng.random::<[u8; 16]>()),
            SpanId::from_bytes(self.rng.random::<[u8; 8]>()),
        )
    }

    fn span_id(&mut self) -> SpanId {
        SpanId::from_bytes(self.rng.random::<[u8; 8]>())
    }

    fn inventory(&mut self, trace: TraceId, span: SpanId, start: u64) -> Span {
        let failed = self.fails(self.chaos.inventory_error_rate);
        let duration = self.latency(30.0);
        Span::new(trace, span, SERVICE, "/inventory")
            .with_timing(start, duration)
            .with_http_status(if failed { 500 } else { 200 })
    }

    fn payment(&mut self, trace: TraceId, span: SpanId, start: u64) -> Span {
        let failed = self.fails(self.chaos.payment_error_rate);
        let duration = self.latency(100.0) + self.chaos.payment_delay_ms * MS;
        Span::new(trace, span, SERVICE, "/payment")
            .with_timing(start, duration)
            .with_http_status(if failed { 500 } else { 200 })
    }

    /// One checkout trace: checkout's own work, then payment, then inventory (skipped when
    /// payment failed or timed out); checkout answers 502 when a dependency failed and 504 when
    /// payment outlived the checkout's client timeout.
    pub fn checkout(&mut self, start: u64) -> Vec<Span> {
        let (trace, root) = self.ids();
        let mut clock = start + self.latency(5.0);
        let payment_id = self.span_id();
        let payment = self.payment(trace, payment_id, clock).with_parent(root);
        let gave_up = self
            .chaos
            .checkout_timeout_ms
            .filter(|&timeout| payment.duration_nanos > timeout * MS);
        let mut status = match gave_up {
            Some(timeout) => {
                clock += timeout * MS;
                504
            }
            None => {
                clock = payment.end_unix_nanos() + MS;
                if payment.is_error() { 502 } else { 200 }
            }
        };
        let mut spans = vec![payment];
        if status == 200 {
            let inventory_id = self.span_id();
            let inventory = self.inventory(trace, inventory_id, clock).with_parent(root);
            clock = inventory.end_unix_nanos() + MS;
            if inventory.is_error() {
                status = 502;
            }
            spans.push(inventory);
        }
        let end = clock + self.latency(5.0);
        let checkout = Span::new(trace, root, SERVICE, "/checkout")
            .with_timing(start, end - start)
            .with_http_status(status);
        spans.insert(0, checkout);
        spans
    }

    /// One second of traffic from `start`: two checkouts and one direct call each to
    /// `/inventory` and `/payment`.
    pub fn second(&mut self, start: u64) -> Vec<Span> {
        let mut spans = self.checkout(start + 100 * MS);
        spans.extend(self.checkout(start + 600 * MS));
        let (trace, span) = self.ids();
        spans.push(self.inventory(trace, span, start + 300 * MS));
        let (trace, span) = self.ids();
        spans.push(self.payment(trace, span, start + 800 * MS));
        spans
    }
}

/// An engine fed by the demo shop on a virtual clock.
pub struct Harness {
    pub engine: Engine,
    pub shop: DemoShop,
    pub now: u64,
    collector: std::sync::Arc<dyn Collector>,
}

impl std::fmt::Debug for Harness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Harness")
            .field("engine", &self.engine)
            .field("now", &self.now)
            .finish_non_exhaustive()
    }
}

impl Harness {
    pub fn new(config: EngineConfig) -> Self {
        let engine = Engine::new(config).expect("valid config");
        let collector = engine.collector();
        Self {
            engine,
            shop: DemoShop::new(7),
            now: T0,
            collector,
        }
    }

    /// Swaps in `engine` (e.g. one restored from a snapshot) and feeds it from now on.
    pub fn replace_engine(&mut self, engine: Engine) {
        self.collector = engine.collector();
        self.engine = engine;
    }

    /// Default configuration: 30 s window, a cycle every 5 s, auto-resolve after 3 cycles.
    pub fn with_defaults() -> Self {
        Self::new(EngineConfig::default())
    }

    fn interval_secs(&self) -> u64 {
        self.engine.config().analyzer.analysis_interval_secs as u64
    }

    /// `secs` seconds of shop traffic, a cycle at the end of every interval.
    pub fn run(&mut self, secs: u64) -> Vec<CycleReport> {
        let interval = self.interval_secs();
        let mut reports = Vec::new();
        for _ in 0..secs {
            let spans = self.shop.second(self.now);
            let _ = self.collector.record_batch(spans);
            self.now += SEC;
            if ((self.now - T0) / SEC).is_multiple_of(interval) {
                reports.push(self.engine.run_cycle(self.now));
            }
        }
        reports
    }

    /// `secs` seconds without traffic, a cycle at the end of every interval.
    pub fn idle(&mut self, secs: u64) -> Vec<CycleReport> {
        let interval = self.interval_secs();
        let mut reports = Vec::new();
        for _ in 0..secs {
            self.now += SEC;
            if ((self.now - T0) / SEC).is_multiple_of(interval) {
                reports.push(self.engine.run_cycle(self.now));
            }
        }
        reports
    }
}

/// Every incident id the reports opened, in order.
pub fn opened(reports: &[CycleReport]) -> Vec<String> {
    reports
        .iter()
        .flat_map(|report| report.opened())
        .map(str::to_owned)
        .collect()
}

/// One request to each of the gateway's `count` busy endpoints (`/gateway/0`, ...), single
/// spans `spacing` apart from `start`, each taking `duration()`: traffic that competes with the
/// endpoints under test for the traces a cycle reads.
pub fn busy_gateway(
    start: u64,
    count: u64,
    spacing: u64,
    mut duration: impl FnMut() -> u64,
) -> Vec<Span> {
    (0..count)
        .map(|endpoint| {
            Span::new(
                TraceId::random(),
                SpanId::random(),
                "gateway",
                format!("/gateway/{endpoint}"),
            )
            .with_timing(start + endpoint * spacing, duration())
        })
        .collect()
}
