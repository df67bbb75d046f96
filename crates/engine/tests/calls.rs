//! Call patterns through the engine: a handler that stops making a call it usually makes.

use crate::demo_shop::{MS, SEC, T0, busy_gateway};
use aiops_analyzer::AnomalyKind;
use aiops_engine::{CycleReport, Engine, EngineConfig};
use aiops_telemetry_core::{Collector, Span, SpanId, TraceId};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Twenty busy single-span endpoints, and a checkout five times a second that calls pricing,
/// whose quote reads pricing-db twice.
struct Shop {
    rng: StdRng,
    /// The share of checkouts that return before calling pricing.
    early_return: f64,
}

impl Shop {
    fn new() -> Self {
        Self {
            rng: StdRng::seed_from_u64(17),
            early_return: 0.0,
        }
    }

    fn second(&mut self, start: u64) -> Vec<Span> {
        let rng = &mut self.rng;
        let mut spans = busy_gateway(start, 20, 40 * MS, || rng.random_range(4..6) * MS);
        for request in 0..5u64 {
            spans.extend(self.checkout(start + request * 200 * MS));
        }
        spans
    }

    /// One checkout, its deepest spans first (as SDKs export them).
    fn checkout(&mut self, start: u64) -> Vec<Span> {
        let trace = TraceId::random();
        let root = SpanId::random();
        let own = self.rng.random_range(5..8) * MS;
        let mut spans = Vec::new();
        let mut end = start + own;
        if !self.rng.random_bool(self.early_return) {
            let quote = SpanId::random();
            let quote_start = start + own;
            let mut at = quote_start + MS;
            for _ in 0..2 {
                let ms = self.rng.random_range(2..4) * MS;
                spans.push(
                    Span::new(trace, SpanId::random(), "pricing-db", "SELECT prices")
                        .with_parent(quote)
                        .with_timing(at, ms),
                );
                at += ms;
            }
            spans.push(
                Span::new(trace, quote, "pricing", "/quote")
                    .with_parent(root)
                    .with_timing(quote_start, at + MS - quote_start),
            );
            end = at + 2 * MS;
        }
        spans.push(Span::new(trace, root, "shop", "/checkout").with_timing(start, end - start));
        spans
    }
}

fn run(engine: &mut Engine, shop: &mut Shop, now: &mut u64, secs: u64) -> Vec<CycleReport> {
    let collector = engine.collector();
    let mut reports = Vec::new();
    for _ in 0..secs {
        let _ = collector.record_batch(shop.second(*now));
        *now += SEC;
        if ((*now - T0) / SEC).is_multiple_of(5) {
            reports.push(engine.run_cycle(*now));
        }
    }
    reports
}

#[test]
fn a_checkout_that_returns_early_on_a_quarter_of_requests_is_an_incident_on_it() {
    // Twenty busy endpoints share the learning budget with checkout, pricing and pricing-db,
    // and the traces read to learn pricing's and pricing-db's own times all show checkout
    // calling pricing: learned traces would see a diluted drop in a few checkouts a minute.
    // The call census counts checkouts chosen whatever they did.
    let mut engine = Engine::new(EngineConfig::default()).expect("valid config");
    let mut shop = Shop::new();
    let mut now = T0;
    run(&mut engine, &mut shop, &mut now, 600);
    assert!(
        engine.incidents().all().is_empty(),
        "healthy traffic opened incidents: {:#?}",
        engine.incidents().all()
    );

    shop.early_return = 0.25;
    let during = run(&mut engine, &mut shop, &mut now, 90);

    let drop = during
        .iter()
        .flat_map(|report| &report.anomalies)
        .find(|anomaly| anomaly.kind == AnomalyKind::CallDrop);
    let drop = drop.expect("a quarter of checkouts stopped calling pricing for 90 s, unseen");
    assert_eq!(drop.endpoint.operation.as_str(), "/checkout", "{drop:?}");
    let incidents = engine.incidents().all();
    assert_eq!(incidents.len(), 1, "{incidents:#?}");
    assert_eq!(incidents[0].root_cause.service, "shop");
    assert_eq!(incidents[0].root_cause.endpoint, "/checkout");
}
