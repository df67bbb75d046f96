//! Learning, freezing and the assessment each cycle returns, through the public API.

use crate::support::*;
use aiops_analyzer::{Analyzer, AnomalyKind, Config, ConfigError, HealthStatus, Severity};
use aiops_telemetry_core::{EndpointKey, TimeWindow};

// Learning and freezing.

#[test]
fn anomalous_endpoint_does_not_learn_its_fault() {
    let mut analyzer = analyzer_with(Config::default(), mature_baseline(100.0, 150.0, 0.0));
    let window = TimeWindow::ending_at(T0 + 5 * SECOND, 30 * SECOND);
    let slow = uniform(50, 0, 1000.0);

    let assessment = analyzer.observe(window, &[(payment(), slow)], &[(payment(), slow)]);

    assert_eq!(assessment.anomalies.len(), 1);
    let baseline = analyzer.baseline(&payment()).expect("kept");
    assert_eq!(baseline.mean_ms, 100.0);
    assert_eq!(baseline.sample_count, 10_000);
    assert_eq!(baseline.updated_at_unix_nanos, T0 + 5 * SECOND);
}

#[test]
fn fresh_slice_holding_a_fault_onset_is_not_learned() {
    // The window is still mostly healthy (mean 250 ms), but the newest five seconds are all
    // at 1 s: the slice must not be learned although the window does not fire yet.
    let mut analyzer = analyzer_with(Config::default(), mature_baseline(100.0, 150.0, 0.0));
    let window = TimeWindow::ending_at(T0 + 5 * SECOND, 30 * SECOND);

    let assessment = analyzer.observe(
        window,
        &[(payment(), uniform(60, 0, 250.0))],
        &[(payment(), uniform(10, 0, 1000.0))],
    );

    assert!(assessment.anomalies.is_empty());
    assert_eq!(analyzer.baseline(&payment()).expect("kept").mean_ms, 100.0);
}

#[test]
fn fresh_slice_halfway_to_a_spike_is_not_learned() {
    // 2.5x the baseline does not fire, but learning is more cautious than alerting.
    let mut analyzer = analyzer_with(Config::default(), mature_baseline(100.0, 150.0, 0.0));
    let window = TimeWindow::ending_at(T0 + 5 * SECOND, 30 * SECOND);
    let current = [(payment(), uniform(60, 0, 120.0))];

    analyzer.observe(window, &current, &[(payment(), uniform(10, 0, 250.0))]);
    assert_eq!(analyzer.baseline(&payment()).expect("kept").mean_ms, 100.0);

    analyzer.observe(window, &current, &[(payment(), uniform(10, 0, 150.0))]);
    assert!(analyzer.baseline(&payment()).expect("kept").mean_ms > 100.0);
}

#[test]
fn fault_onset_in_a_slice_of_one_or_two_requests_is_not_learned() {
    // Low traffic or a short interval: the slice holds fewer requests than detection needs,
    // yet every one of them shows the fault. Learning it would teach the baseline the fault.
    let mut analyzer = analyzer_with(Config::default(), mature_baseline(40.0, 60.0, 0.0));
    let window = TimeWindow::ending_at(T0 + 5 * SECOND, 30 * SECOND);
    let current = [(payment(), uniform(40, 0, 60.0))];

    analyzer.observe(window, &current, &[(payment(), uniform(2, 0, 1000.0))]);
    analyzer.observe(window, &current, &[(payment(), uniform(2, 2, 45.0))]);

    let baseline = analyzer.baseline(&payment()).expect("kept");
    assert_eq!(baseline.mean_ms, 40.0);
    assert_eq!(baseline.error_rate, 0.0);
}

#[test]
fn a_lone_slow_request_is_learned_once_its_window_passed_without_an_anomaly() {
    // Cache hits at 5 ms, misses at 150 ms, a request or two a slice: a slice holding one
    // miss is held at first, as a fault's first request would be, and learned once a whole
    // window has passed over it without an anomaly. Held for good, the baseline would learn
    // the hits alone.
    let mut analyzer = analyzer_with(Config::default(), mature_baseline(20.0, 60.0, 0.0));
    let mut requests = vec![(5.0, false); 9];
    requests.extend([(150.0, false); 3]);
    let usual = [(payment(), stats_of(&requests, 5000.0))];
    let at = |secs| TimeWindow::ending_at(T0 + secs * SECOND, 30 * SECOND);

    analyzer.observe(at(5), &usual, &[(payment(), uniform(1, 0, 150.0))]);
    assert_eq!(analyzer.baseline(&payment()).expect("kept").mean_ms, 20.0);
    analyzer.observe(at(20), &usual, &[]);
    assert_eq!(analyzer.baseline(&payment()).expect("kept").mean_ms, 20.0);
    let assessment = analyzer.observe(at(35), &usual, &[]);

    assert!(
        assessment.anomalies.is_empty(),
        "{:?}",
        assessment.anomalies
    );
    assert!(analyzer.baseline(&payment()).expect("kept").mean_ms > 20.0);

    // A fault's first request, held the same way, is dropped when its window fires.
    let mut analyzer = analyzer_with(Config::default(), mature_baseline(20.0, 60.0, 0.0));
    analyzer.observe(at(5), &usual, &[(payment(), uniform(1, 0, 150.0))]);
    let fault = [(payment(), uniform(12, 0, 150.0))];
    let fired = analyzer.observe(at(20), &fault, &[]);
    assert_eq!(fired.anomalies.len(), 1, "{:?}", fired.anomalies);
    analyzer.observe(at(35), &usual, &[]);
    assert_eq!(analyzer.baseline(&payment()).expect("kept").mean_ms, 20.0);
}

#[test]
fn an_endpoint_that_fails_now_and_then_at_low_traffic_learns_its_failures() {
    // Four requests a slice, one failure in every fifth slice (5%): most slices that hold a
    // failure hold one. Were they all skipped, the baseline would learn that the endpoint
    // never fails, and its usual failures would storm.
    let mut analyzer = Analyzer::new(Config::default()).expect("valid config");
    let window = TimeWindow::ending_at(T0, 30 * SECOND);
    for slice in 0..200 {
        let errors = u64::from(slice % 5 == 4);
        analyzer.observe(
            window,
            &[(payment(), uniform(24, 1, 40.0))],
            &[(payment(), uniform(4, errors, 40.0))],
        );
    }
    let baseline = analyzer.baseline(&payment()).expect("learned");
    assert!(
        (baseline.error_rate - 0.05).abs() < 0.01,
        "{}",
        baseline.error_rate
    );
}

#[test]
fn healthy_fresh_slice_is_learned_once() {
    let mut analyzer = Analyzer::new(Config::default()).expect("valid config");
    let window = TimeWindow::ending_at(T0, 30 * SECOND);

    analyzer.observe(
        window,
        &[(payment(), uniform(12, 0, 80.0))],
        &[(payment(), uniform(12, 0, 80.0))],
    );

    let baseline = analyzer.baseline(&payment()).expect("learned");
    assert_eq!(baseline.sample_count, 12);
    assert_eq!(baseline.mean_ms, 80.0);
    assert_eq!(baseline.updated_at_unix_nanos, T0);
}

#[test]
fn failing_first_requests_do_not_create_a_baseline() {
    let mut analyzer = Analyzer::new(Config::default()).expect("valid config");
    let window = TimeWindow::ending_at(T0, 30 * SECOND);
    let broken = uniform(10, 9, 80.0);

    analyzer.observe(window, &[(payment(), broken)], &[(payment(), broken)]);

    assert!(analyzer.baseline(&payment()).is_none());
}

// Assessments.

#[test]
fn endpoint_without_traffic_is_reported_healthy_with_its_baseline() {
    let mut analyzer = analyzer_with(Config::default(), mature_baseline(100.0, 150.0, 0.0));

    let assessment = analyzer.observe(TimeWindow::ending_at(T0, 30 * SECOND), &[], &[]);

    let only = &assessment.endpoints[0];
    assert_eq!(only.endpoint, payment());
    assert_eq!(only.stats.count, 0);
    assert_eq!(only.baseline.as_ref().map(|b| b.mean_ms), Some(100.0));
    assert_eq!(only.health.status, HealthStatus::Healthy);
    assert_eq!(only.health.health_score, 100.0);
}

#[test]
fn healthy_endpoint_scores_high_and_failing_one_is_critical() {
    let inventory = EndpointKey::new("shop", "/inventory");
    let mut analyzer = analyzer_with(Config::default(), mature_baseline(180.0, 300.0, 0.01));
    let window = TimeWindow::ending_at(T0 + 5 * SECOND, 30 * SECOND);

    let assessment = analyzer.observe(
        window,
        &[
            (payment(), uniform(100, 1, 182.0)),
            (inventory.clone(), uniform(20, 16, 10.0)),
        ],
        &[],
    );

    let health = |endpoint: &EndpointKey| {
        assessment
            .endpoints
            .iter()
            .find(|e| &e.endpoint == endpoint)
            .expect("reported")
            .health
    };
    assert_eq!(health(&payment()).status, HealthStatus::Healthy);
    assert!(health(&payment()).health_score >= 98.0);
    assert_eq!(health(&inventory).status, HealthStatus::Critical);
}

#[test]
fn anomalies_are_listed_most_severe_first() {
    let inventory = EndpointKey::new("shop", "/inventory");
    let mut analyzer = analyzer_with(Config::default(), mature_baseline(100.0, 150.0, 0.0));
    let window = TimeWindow::ending_at(T0 + 5 * SECOND, 30 * SECOND);

    let assessment = analyzer.observe(
        window,
        &[
            (payment(), uniform(20, 0, 350.0)),
            (inventory, uniform(10, 10, 10.0)),
        ],
        &[],
    );

    let severities: Vec<_> = assessment.anomalies.iter().map(|a| a.severity).collect();
    assert_eq!(severities, vec![Severity::Critical, Severity::Medium]);
}

#[test]
fn invalid_config_is_rejected_by_the_analyzer() {
    let config = Config {
        analysis_window_secs: f64::NAN,
        ..Config::default()
    };

    let error = Analyzer::new(config).expect_err("rejected");

    assert!(matches!(
        error,
        ConfigError::OutOfRange {
            field: "analysis_window_secs",
            ..
        }
    ));
}

#[test]
fn baselines_survive_a_restart_through_json() {
    let mut analyzer = Analyzer::new(Config::default()).expect("valid config");
    let window = TimeWindow::ending_at(T0, 30 * SECOND);
    analyzer.observe(window, &[], &[(payment(), uniform(40, 1, 120.0))]);

    let json = serde_json::to_string(&analyzer.baselines()).expect("serializes");
    let restored: Vec<aiops_analyzer::Baseline> = serde_json::from_str(&json).expect("parses");
    let mut resumed = Analyzer::with_baselines(Config::default(), restored).expect("valid");

    assert_eq!(resumed.baselines(), analyzer.baselines());
    let spike = detect_once(&mut resumed, uniform(20, 0, 1200.0));
    assert_eq!(spike.anomalies[0].kind, AnomalyKind::LatencySpike);
}

#[test]
fn anomaly_serializes_with_snake_case_kind_and_lowercase_severity() {
    let mut analyzer = analyzer_with(Config::default(), mature_baseline(180.0, 300.0, 0.0));
    let anomaly = detect_once(&mut analyzer, uniform(20, 0, 1250.0))
        .anomalies
        .remove(0);

    let json = serde_json::to_value(&anomaly).expect("serializes");

    assert_eq!(json["kind"], "latency_spike");
    assert_eq!(json["severity"], "high");
    assert_eq!(json["endpoint"]["operation"], "/payment");
    assert_eq!(json["window"]["end_unix_nanos"], T0 + 5 * SECOND);
    let back: aiops_analyzer::Anomaly = serde_json::from_value(json).expect("parses");
    assert_eq!(back, anomaly);
}
