//! The detection contract as properties over simulated lognormal traffic.

use crate::support::*;
use aiops_analyzer::{AnomalyKind, Assessment, Config, LiveWindows};
use aiops_telemetry_core::{Collector, Span, SpanId, TimeWindow, TraceId};
use proptest::prelude::*;

/// A baseline mean drawn log-uniformly from 0.5 ms to 5 s.
fn baseline_ms() -> impl Strategy<Value = f64> {
    (0.5f64.ln()..5000f64.ln()).prop_map(f64::exp)
}

fn fired(assessments: &[Assessment]) -> Vec<String> {
    assessments
        .iter()
        .flat_map(|assessment| &assessment.anomalies)
        .map(|anomaly| anomaly.description.clone())
        .collect()
}

/// The mean a step must reach to be called a spike against `base_ms`, with a margin for
/// sampling noise: a fifth above both the relative and the absolute threshold.
fn clear_step(config: &Config, base_ms: f64, factor: f64) -> f64 {
    let relative = base_ms * config.latency_multiplier * 1.25;
    let absolute = base_ms + config.min_latency_increase_ms * 1.25;
    (base_ms * factor).max(relative).max(absolute)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(16))]

    #[test]
    fn stationary_lognormal_noise_never_fires(
        base_ms in baseline_ms(),
        sigma in 0.1f64..0.6,
        rate in 0.5f64..10.0,
        error_rate in 0.0f64..0.02,
        seed in any::<u64>(),
    ) {
        let mut simulation = Simulation::new(Config::default(), seed, rate);

        let assessments = simulation.run(20.0 * 60.0, base_ms, sigma, error_rate);

        prop_assert_eq!(fired(&assessments), Vec::<String>::new());
        let baseline = simulation.baseline().expect("learned");
        prop_assert!((baseline.mean_ms / base_ms - 1.0).abs() < 0.25, "{}", baseline.mean_ms);
    }

    #[test]
    fn step_past_the_thresholds_always_fires(
        base_ms in baseline_ms(),
        sigma in 0.1f64..0.5,
        rate in 2.0f64..10.0,
        multiplier in 2.0f64..5.0,
        factor in 1.0f64..20.0,
        seed in any::<u64>(),
    ) {
        let config = Config { latency_multiplier: multiplier, ..Config::default() };
        let mut simulation = Simulation::new(config.clone(), seed, rate);
        simulation.run(10.0 * 60.0, base_ms, sigma, 0.0);
        let learned = simulation.baseline().expect("learned").mean_ms;
        let faulty_ms = clear_step(&config, learned, factor);

        let during = simulation.run(config.analysis_window_secs, faulty_ms, sigma, 0.0);

        let last = during.last().expect("cycles ran");
        prop_assert!(
            last.anomalies.iter().any(|a| a.kind == AnomalyKind::LatencySpike),
            "no spike at {} ms against {} ms", faulty_ms, learned
        );
    }

    #[test]
    fn drift_of_fifty_percent_over_an_hour_does_not_fire_and_moves_the_baseline(
        base_ms in baseline_ms(),
        sigma in 0.1f64..0.4,
        rate in 1.0f64..5.0,
        seed in any::<u64>(),
    ) {
        let mut simulation = Simulation::new(Config::default(), seed, rate);
        let mut assessments = simulation.run(20.0 * 60.0, base_ms, sigma, 0.0);
        let before = simulation.baseline().expect("learned").mean_ms;

        let cycles = 3600 / 5;
        for cycle in 1..=cycles {
            let mean_ms = base_ms * (1.0 + 0.5 * cycle as f64 / cycles as f64);
            assessments.push(simulation.cycle(mean_ms, sigma, 0.0));
        }

        prop_assert_eq!(fired(&assessments), Vec::<String>::new());
        let after = simulation.baseline().expect("learned").mean_ms;
        prop_assert!(after > before * 1.1, "baseline {} -> {}", before, after);
    }

    #[test]
    fn fault_held_for_an_hour_is_not_learned(
        base_ms in baseline_ms(),
        sigma in 0.1f64..0.4,
        rate in 1.0f64..5.0,
        factor in 1.0f64..10.0,
        seed in any::<u64>(),
    ) {
        let config = Config::default();
        let mut simulation = Simulation::new(config.clone(), seed, rate);
        simulation.run(20.0 * 60.0, base_ms, sigma, 0.0);
        let before = simulation.baseline().expect("learned");
        let faulty_ms = clear_step(&config, before.mean_ms, factor);

        let during = simulation.run(3600.0, faulty_ms, sigma, 0.0);

        prop_assert!(during.iter().any(|a| !a.anomalies.is_empty()));
        prop_assert!(during.last().is_some_and(|a| !a.anomalies.is_empty()));
        let after = simulation.baseline().expect("kept");
        prop_assert!(
            (after.mean_ms / before.mean_ms - 1.0).abs() < 0.02,
            "baseline {} -> {}", before.mean_ms, after.mean_ms
        );
    }

    #[test]
    fn live_window_percentiles_are_within_five_percent(
        mean_ms in baseline_ms(),
        sigma in 0.1f64..1.5,
        count in 1usize..400,
        seed in any::<u64>(),
    ) {
        let mut simulation = Simulation::new(Config::default(), seed, 1.0);
        let latencies: Vec<f64> = (0..count).map(|_| simulation.lognormal(mean_ms, sigma)).collect();
        let live = LiveWindows::new(SECOND, 60 * SECOND);
        let spans = latencies.iter().enumerate().map(|(i, ms)| {
            Span::new(TraceId::random(), SpanId::random(), "shop", "/payment")
                .with_timing(T0 + i as u64 * MS, (ms * 1e6) as u64)
        });
        let _ = live.record_batch(spans.collect());

        let live_stats = live.window_stats(TimeWindow::new(T0, T0 + SECOND), 5000.0)[0].1;

        let requests: Vec<(f64, bool)> =
            latencies.iter().map(|ms| ((ms * 1e6).trunc() / 1e6, false)).collect();
        let exact = stats_of(&requests, 5000.0);
        prop_assert_eq!(live_stats.count, exact.count);
        prop_assert!((live_stats.mean_ms / exact.mean_ms - 1.0).abs() < 1e-9);
        for (live_value, exact_value) in [
            (live_stats.p50_ms, exact.p50_ms),
            (live_stats.p95_ms, exact.p95_ms),
            (live_stats.p99_ms, exact.p99_ms),
        ] {
            prop_assert!(
                (live_value / exact_value - 1.0).abs() <= 0.05,
                "{} vs {}", live_value, exact_value
            );
        }
    }
}
