//! Small sustained shifts of an endpoint's own time, below the spike rule, on the demo shop.

use crate::demo_shop::Harness;
use aiops_engine::EngineConfig;
use aiops_rca::SelfTimeBaseline;

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
