//! Small sustained shifts of an endpoint's own time, below the spike rule, on the demo shop.

use crate::demo_shop::{Harness, MS, SEC, T0, busy_gateway};
use aiops_engine::{Engine, EngineConfig};
use aiops_rca::SelfTimeBaseline;
use aiops_telemetry_core::{Span, SpanId, TraceId};

fn payment_baseline(harness: &Harness) -> SelfTimeBaseline {
    harness
        .engine
        .snapshot()
        .self_time_baselines
        .into_iter()
        .find(|baseline| baseline.endpoint.operation.as_str() == "/payment")
        .expect("payment's own time is learned")
}

#[test]
fn an_own_time_rising_past_its_usual_p95_is_not_learned_while_it_lasts() {
    // A minute of history: a young baseline that would take every new sample at full weight.
    let mut harness = Harness::new(EngineConfig::default());
    harness.run(60);
    let before = payment_baseline(&harness);

    // Payment's own 100 ms become 160 ms: 1.6x, past its p95, below the spike rule.
    harness.shop.chaos.payment_delay_ms = 60;
    harness.run(40);
    let during = payment_baseline(&harness);

    assert!(
        during.sample_count > before.sample_count,
        "payment was learned before the shift began to show: {before:?} {during:?}"
    );
    assert!(
        during.p95_ms < before.p95_ms * 1.1,
        "the shift was learned as payment's usual own time: {before:?} -> {during:?}"
    );
}

/// A gateway with forty busy endpoints and one rarely taken branch: `/gateway/rare` calls
/// ledger's `/check` once a second, whose own 8 ms come before a 100 ms query of ledger-db.
struct Branches {
    rng: rand::rngs::StdRng,
    /// Added to `/check`'s own work, in milliseconds.
    check_delay_ms: f64,
}

impl Branches {
    fn new() -> Self {
        use rand::SeedableRng;
        Self {
            rng: rand::rngs::StdRng::seed_from_u64(11),
            check_delay_ms: 0.0,
        }
    }

    /// A duration around `median_ms`, spread by up to a fifth either way.
    fn around(&mut self, median_ms: f64) -> u64 {
        use rand::Rng;
        (median_ms * self.rng.random_range(0.8..1.2) * MS as f64) as u64
    }

    fn second(&mut self, start: u64) -> Vec<Span> {
        let mut spans = busy_gateway(start, 40, 20 * MS, || self.around(5.0));
        let trace = TraceId::random();
        let (root, check, query) = (SpanId::random(), SpanId::random(), SpanId::random());
        let check_start = start + self.around(2.0);
        let own = self.around(8.0 + self.check_delay_ms);
        let query_ms = self.around(100.0);
        spans.push(
            Span::new(trace, query, "ledger-db", "/query")
                .with_parent(check)
                .with_timing(check_start + own, query_ms),
        );
        spans.push(
            Span::new(trace, check, "ledger", "/check")
                .with_parent(root)
                .with_timing(check_start, own + query_ms),
        );
        spans.push(
            Span::new(trace, root, "gateway", "/gateway/rare")
                .with_timing(start, check_start - start + own + query_ms + MS),
        );
        spans
    }
}

#[test]
fn a_shift_on_a_rarely_taken_branch_is_found_while_it_lasts() {
    // Forty busy endpoints share the cycle's learning budget with ledger's /check, so its even
    // share is a dozen requests a minute: too few to judge its own 8 ms becoming 50 ms (which
    // its 108 ms in all, 1.4x, hide from the spike rule) before the fault is over.
    let mut engine = Engine::new(EngineConfig::default()).expect("valid config");
    let collector = engine.collector();
    let mut branches = Branches::new();
    let mut now = T0;
    let mut run = |engine: &mut Engine, branches: &mut Branches, secs: u64| {
        let mut reports = Vec::new();
        for _ in 0..secs {
            let _ = collector.record_batch(branches.second(now));
            now += SEC;
            if ((now - T0) / SEC).is_multiple_of(5) {
                reports.push(engine.run_cycle(now));
            }
        }
        reports
    };
    let warm_up = run(&mut engine, &mut branches, 600);
    assert!(
        engine.incidents().all().is_empty(),
        "healthy traffic opened incidents: {:#?}",
        engine.incidents().all()
    );
    drop(warm_up);

    branches.check_delay_ms = 42.0;
    let during = run(&mut engine, &mut branches, 90);
    let found = during
        .iter()
        .flat_map(|report| &report.anomalies)
        .find(|anomaly| anomaly.endpoint.operation == "/check");
    assert!(
        found.is_some_and(|anomaly| anomaly.kind.is_slowness()),
        "ledger's /check own time went from 8 to 50 ms for 90 s, unseen: {found:?}"
    );
}
