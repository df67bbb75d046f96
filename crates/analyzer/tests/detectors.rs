//! One test per detection rule (latency spikes, error storms, timeouts), through the public
//! API.

use crate::support::*;
use aiops_analyzer::{Analyzer, AnomalyKind, Baseline, Config, Severity};
use aiops_telemetry_core::WindowStats;

// Latency spikes.

#[test]
fn latency_spike_is_reported_in_the_seed_format() {
    let mut analyzer = analyzer_with(Config::default(), mature_baseline(180.0, 300.0, 0.01));

    let assessment = detect_once(&mut analyzer, uniform(20, 0, 1250.0));

    let spike = &assessment.anomalies[0];
    assert_eq!(spike.kind, AnomalyKind::LatencySpike);
    assert_eq!(
        spike.description,
        "Latency spike: 1250ms (baseline: 180ms, 6.9x slower)"
    );
    assert_eq!((spike.observed, spike.baseline), (1250.0, 180.0));
    assert!((spike.ratio - 1250.0 / 180.0).abs() < 1e-9);
    assert_eq!(spike.sample_count, 20);
    assert_eq!(spike.severity, Severity::High);
    assert_eq!(spike.endpoint, payment());
    assert_eq!(spike.window, assessment.window);
}

#[test]
fn latency_just_below_the_multiplier_does_not_fire() {
    let mut analyzer = analyzer_with(Config::default(), mature_baseline(100.0, 200.0, 0.0));

    assert!(
        detect_once(&mut analyzer, uniform(50, 0, 299.0))
            .anomalies
            .is_empty()
    );
    assert_eq!(
        detect_once(&mut analyzer, uniform(50, 0, 300.0))
            .anomalies
            .len(),
        1
    );
}

#[test]
fn tiny_baseline_with_jitter_does_not_fire() {
    // 1 ms normally, 9 ms in this window: nine times slower, but only 8 ms, which no user
    // notices and which scheduler jitter alone produces.
    let mut analyzer = analyzer_with(Config::default(), mature_baseline(1.0, 2.0, 0.0));

    let jittery = WindowStats {
        p50_ms: 6.0,
        p95_ms: 30.0,
        p99_ms: 40.0,
        ..uniform(12, 0, 9.0)
    };

    assert!(detect_once(&mut analyzer, jittery).anomalies.is_empty());
}

#[test]
fn tiny_baseline_fires_once_the_increase_is_above_the_absolute_floor() {
    let mut analyzer = analyzer_with(Config::default(), mature_baseline(1.0, 2.0, 0.0));

    let anomalies = detect_once(&mut analyzer, uniform(12, 0, 60.0)).anomalies;

    assert_eq!(anomalies[0].kind, AnomalyKind::LatencySpike);
    assert_eq!(
        anomalies[0].description,
        "Latency spike: 60ms (baseline: 1.0ms, 60.0x slower)"
    );
    assert_eq!(anomalies[0].severity, Severity::Critical);
}

#[test]
fn latency_spike_needs_enough_requests() {
    let mut analyzer = analyzer_with(Config::default(), mature_baseline(100.0, 200.0, 0.0));

    assert!(
        detect_once(&mut analyzer, uniform(4, 0, 2000.0))
            .anomalies
            .is_empty()
    );
    assert_eq!(
        detect_once(&mut analyzer, uniform(5, 0, 2000.0))
            .anomalies
            .len(),
        1
    );
}

#[test]
fn latency_is_not_judged_before_the_baseline_is_ready() {
    let young = aiops_analyzer::Baseline {
        sample_count: 9,
        weight: 9.0,
        ..mature_baseline(100.0, 200.0, 0.0)
    };
    let mut analyzer = analyzer_with(Config::default(), young);

    assert!(
        detect_once(&mut analyzer, uniform(50, 0, 2000.0))
            .anomalies
            .is_empty()
    );
}

#[test]
fn one_slow_outlier_does_not_fire() {
    // Nine requests at 100 ms and one at 3 s: the mean is 390 ms, but the median is normal
    // and ten requests are too few for p95 to be anything but that one request.
    let mut analyzer = analyzer_with(Config::default(), mature_baseline(100.0, 150.0, 0.0));
    let mut requests = vec![(100.0, false); 9];
    requests.push((3000.0, false));

    let assessment = detect_once(&mut analyzer, stats_of(&requests, 5000.0));

    assert!(assessment.anomalies.is_empty());
}

#[test]
fn with_few_requests_one_outlier_over_a_busy_median_does_not_fire() {
    // Nine requests: eight a little slower than usual (busier), one at 2 s. The mean is 3.2x
    // the baseline's, the median just above it: too few requests to call that a spike.
    let mut analyzer = analyzer_with(Config::default(), mature_baseline(100.0, 150.0, 0.0));
    let mut requests = vec![(110.0, false); 8];
    requests.push((2000.0, false));

    let assessment = detect_once(&mut analyzer, stats_of(&requests, 5000.0));

    assert!(
        assessment.anomalies.is_empty(),
        "{:?}",
        assessment.anomalies
    );
}

#[test]
fn with_few_requests_a_median_that_spikes_fires() {
    let mut analyzer = analyzer_with(Config::default(), mature_baseline(100.0, 150.0, 0.0));

    let assessment = detect_once(&mut analyzer, uniform(9, 0, 400.0));

    assert_eq!(assessment.anomalies[0].kind, AnomalyKind::LatencySpike);
}

#[test]
fn slowdown_of_a_minority_of_requests_fires_through_p95() {
    // A quarter of the requests take 2 s: the median is unchanged, the p95 is not.
    let mut analyzer = analyzer_with(Config::default(), mature_baseline(100.0, 150.0, 0.0));
    let mut requests = vec![(100.0, false); 30];
    requests.extend(vec![(2000.0, false); 10]);

    let assessment = detect_once(&mut analyzer, stats_of(&requests, 5000.0));

    assert_eq!(assessment.anomalies[0].kind, AnomalyKind::LatencySpike);
    assert_eq!(assessment.anomalies[0].observed, 575.0);
}

#[test]
fn latency_severity_grows_with_the_ratio() {
    let severity_at = |latency_ms: f64| {
        let mut analyzer = analyzer_with(Config::default(), mature_baseline(100.0, 150.0, 0.0));
        detect_once(&mut analyzer, uniform(20, 0, latency_ms)).anomalies[0].severity
    };

    assert_eq!(severity_at(300.0), Severity::Medium);
    assert_eq!(severity_at(500.0), Severity::High);
    assert_eq!(severity_at(1000.0), Severity::Critical);
}

// Error storms.

#[test]
fn error_storm_is_reported_in_the_seed_format() {
    let mut analyzer = analyzer_with(Config::default(), mature_baseline(100.0, 150.0, 0.01));

    let assessment = detect_once(&mut analyzer, uniform(20, 16, 100.0));

    let storm = &assessment.anomalies[0];
    assert_eq!(storm.kind, AnomalyKind::ErrorStorm);
    assert_eq!(storm.description, "Error storm: 80% errors (baseline: 1%)");
    assert_eq!((storm.observed, storm.baseline), (0.8, 0.01));
    assert!((storm.ratio - 80.0).abs() < 1e-9);
    assert_eq!(storm.severity, Severity::High);
}

#[test]
fn error_storm_needs_the_rate_threshold() {
    let mut analyzer = analyzer_with(Config::default(), mature_baseline(100.0, 150.0, 0.0));

    assert!(
        detect_once(&mut analyzer, uniform(100, 19, 100.0))
            .anomalies
            .is_empty()
    );
    assert_eq!(
        detect_once(&mut analyzer, uniform(100, 20, 100.0))
            .anomalies
            .len(),
        1
    );
}

#[test]
fn error_storm_needs_the_minimum_error_count() {
    // Four failures out of five is 80%, but four requests are not a storm.
    let mut analyzer = analyzer_with(Config::default(), mature_baseline(100.0, 150.0, 0.0));

    assert!(
        detect_once(&mut analyzer, uniform(5, 4, 100.0))
            .anomalies
            .is_empty()
    );
    assert_eq!(
        detect_once(&mut analyzer, uniform(6, 5, 100.0))
            .anomalies
            .len(),
        1
    );
}

#[test]
fn error_storm_is_detected_before_the_baseline_is_ready() {
    let mut analyzer = Analyzer::new(Config::default()).expect("valid config");

    let assessment = detect_once(&mut analyzer, uniform(8, 7, 100.0));

    let storm = &assessment.anomalies[0];
    assert_eq!(storm.kind, AnomalyKind::ErrorStorm);
    assert_eq!(
        storm.description,
        "Error storm: 88% errors (no baseline yet)"
    );
    assert_eq!(storm.baseline, 0.0);
    assert!(storm.ratio.is_finite());
}

#[test]
fn without_a_baseline_half_of_the_requests_failing_is_no_storm() {
    // A caller giving up on a heavy-tailed API about half the time, seen from the start: as
    // likely always so as broken.
    let mut analyzer = Analyzer::new(Config::default()).expect("valid config");
    assert!(
        detect_once(&mut analyzer, uniform(24, 12, 100.0))
            .anomalies
            .is_empty()
    );

    let mut analyzer = Analyzer::new(Config::default()).expect("valid config");
    let storm = detect_once(&mut analyzer, uniform(24, 20, 100.0));
    assert_eq!(storm.anomalies[0].kind, AnomalyKind::ErrorStorm);
}

#[test]
fn chronically_failing_endpoint_needs_a_meaningful_rise() {
    // An endpoint that always fails 15% of requests: 22% is a bad draw, not a storm.
    let mut analyzer = analyzer_with(Config::default(), mature_baseline(100.0, 150.0, 0.15));

    assert!(
        detect_once(&mut analyzer, uniform(50, 11, 100.0))
            .anomalies
            .is_empty()
    );
    assert_eq!(
        detect_once(&mut analyzer, uniform(50, 30, 100.0)).anomalies[0].description,
        "Error storm: 60% errors (baseline: 15%)"
    );
}

#[test]
fn failures_that_come_in_clusters_need_a_rise_beyond_their_usual_spread() {
    // 6% of requests fail on average, but in clusters: healthy windows swing between none and
    // 12.5%. A window at 22.5% is within that habit; one at half is not.
    let fresh = || analyzer_with(Config::default(), mature_baseline(100.0, 150.0, 0.06));
    let mut clustered = fresh();
    for i in 0..100 {
        let errors = if i % 2 == 0 { 0 } else { 5 };
        let healthy = detect_once(&mut clustered, uniform(40, errors, 100.0));
        assert!(healthy.anomalies.is_empty(), "window {i}");
    }

    assert!(
        detect_once(&mut clustered, uniform(40, 9, 100.0))
            .anomalies
            .is_empty()
    );
    // Even independent failures at 6% reach 22.5% of forty by chance once in 1,200 windows;
    // 30% only once in 100,000.
    assert!(
        detect_once(&mut fresh(), uniform(40, 9, 100.0))
            .anomalies
            .is_empty()
    );
    assert_eq!(
        detect_once(&mut fresh(), uniform(40, 12, 100.0)).anomalies[0].kind,
        AnomalyKind::ErrorStorm,
        "independent failures at 6% make 30% a storm"
    );
    assert_eq!(
        detect_once(&mut clustered, uniform(40, 20, 100.0)).anomalies[0].kind,
        AnomalyKind::ErrorStorm
    );
}

#[test]
fn total_failure_is_critical() {
    let mut analyzer = analyzer_with(Config::default(), mature_baseline(100.0, 150.0, 0.0));

    let storm = &detect_once(&mut analyzer, uniform(10, 10, 100.0)).anomalies[0];

    assert_eq!(storm.severity, Severity::Critical);
}

// Timeouts.

#[test]
fn timeouts_are_reported_with_counts() {
    let mut analyzer = analyzer_with(Config::default(), mature_baseline(100.0, 150.0, 0.0));
    let mut requests = vec![(100.0, false); 14];
    requests.extend(vec![(6000.0, false); 6]);

    let assessment = detect_once(&mut analyzer, stats_of(&requests, 5000.0));

    let timeout = assessment
        .anomalies
        .iter()
        .find(|anomaly| anomaly.kind == AnomalyKind::Timeout)
        .expect("timeouts found");
    assert_eq!(
        timeout.description,
        "Timeouts: 6 of 20 requests over 5000ms"
    );
    assert_eq!(timeout.observed, 0.3);
    assert_eq!(timeout.severity, Severity::High);
}

#[test]
fn timeouts_need_the_minimum_count_and_share() {
    let mut analyzer = analyzer_with(Config::default(), mature_baseline(100.0, 150.0, 0.0));
    let few = WindowStats {
        timeouts: 4,
        ..uniform(20, 0, 100.0)
    };
    let rare = WindowStats {
        timeouts: 10,
        ..uniform(1000, 0, 100.0)
    };

    assert!(detect_once(&mut analyzer, few).anomalies.is_empty());
    assert!(detect_once(&mut analyzer, rare).anomalies.is_empty());
}

#[test]
fn a_dependency_that_usually_crosses_the_timeout_now_and_then_needs_a_rise_beyond_that() {
    // A heavy-tailed external API: 4% of its calls normally take longer than the timeout.
    let usual_tail = Baseline {
        timeout_rate: 0.04,
        ..mature_baseline(300.0, 900.0, 0.0)
    };
    let mut analyzer = analyzer_with(Config::default(), usual_tail.clone());
    let unlucky = WindowStats {
        timeouts: 7,
        ..uniform(100, 0, 300.0)
    };
    assert!(detect_once(&mut analyzer, unlucky).anomalies.is_empty());

    let mut analyzer = analyzer_with(Config::default(), usual_tail);
    let stuck = WindowStats {
        timeouts: 25,
        ..uniform(100, 0, 300.0)
    };
    let anomalies = detect_once(&mut analyzer, stuck).anomalies;
    assert_eq!(anomalies.len(), 1, "{anomalies:?}");
    assert_eq!(anomalies[0].kind, AnomalyKind::Timeout);
}

#[test]
fn a_rare_crossing_of_the_timeout_needs_a_count_no_bad_luck_explains() {
    // 1.5% of the calls usually cross the timeout: six in a window of a hundred is twice that
    // and three binomial deviations above it, yet it happens by chance in one window of about
    // two hundred, which at a cycle every few seconds is every quarter of an hour.
    let usual_tail = Baseline {
        timeout_rate: 0.015,
        ..mature_baseline(300.0, 900.0, 0.0)
    };
    let mut analyzer = analyzer_with(Config::default(), usual_tail.clone());
    let unlucky = WindowStats {
        timeouts: 6,
        ..uniform(100, 0, 300.0)
    };
    assert!(detect_once(&mut analyzer, unlucky).anomalies.is_empty());

    // A hang of one request in eight is no bad luck.
    let mut analyzer = analyzer_with(Config::default(), usual_tail);
    let hung = WindowStats {
        timeouts: 12,
        ..uniform(100, 0, 300.0)
    };
    let anomalies = detect_once(&mut analyzer, hung).anomalies;
    assert_eq!(anomalies.len(), 1, "{anomalies:?}");
    assert_eq!(anomalies[0].kind, AnomalyKind::Timeout);
}

#[test]
fn a_young_baseline_that_saw_no_timeout_does_not_take_a_few_for_a_hang() {
    // Two hundred calls learned without one crossing the timeout: that says it rarely
    // crosses, not never. Five of a hundred in the next window can be a heavy tail's luck.
    let young = Baseline {
        sample_count: 200,
        weight: 200.0,
        ..mature_baseline(300.0, 900.0, 0.0)
    };
    let five = WindowStats {
        timeouts: 5,
        ..uniform(100, 0, 300.0)
    };
    let mut analyzer = analyzer_with(Config::default(), young);
    assert!(detect_once(&mut analyzer, five).anomalies.is_empty());

    // Ten thousand calls without one: five of a hundred is a hang.
    let mut analyzer = analyzer_with(Config::default(), mature_baseline(300.0, 900.0, 0.0));
    let anomalies = detect_once(&mut analyzer, five).anomalies;
    assert_eq!(anomalies.len(), 1, "{anomalies:?}");
    assert_eq!(anomalies[0].kind, AnomalyKind::Timeout);
}

#[test]
fn timeouts_on_a_normally_slow_endpoint_are_left_to_the_latency_detector() {
    // A p95 of 2 s is within three times of the 5 s timeout: crossing it is ordinary here.
    let mut analyzer = analyzer_with(Config::default(), mature_baseline(1500.0, 2000.0, 0.0));
    let usual = WindowStats {
        timeouts: 5,
        ..uniform(20, 0, 1500.0)
    };

    assert!(detect_once(&mut analyzer, usual).anomalies.is_empty());
}

#[test]
fn timeouts_need_a_ready_baseline() {
    let mut analyzer = Analyzer::new(Config::default()).expect("valid config");
    let stuck = WindowStats {
        timeouts: 5,
        ..uniform(5, 0, 6000.0)
    };

    assert!(detect_once(&mut analyzer, stuck).anomalies.is_empty());
}
