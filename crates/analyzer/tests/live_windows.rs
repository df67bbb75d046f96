//! Live windows: bucketing by start time, bounded memory, and the analyzer's live cycle.

use std::sync::Arc;

use crate::support::*;
use aiops_analyzer::{Analyzer, AnomalyKind, Config, EndpointWatermarks, LiveWindows};
use aiops_telemetry_core::{Collector, EndpointKey, Span, SpanId, TimeWindow, TraceId};

fn request(endpoint: &EndpointKey, start: u64, duration_ms: u64, status: u16) -> Span {
    Span::new(
        TraceId::random(),
        SpanId::random(),
        endpoint.service.clone(),
        endpoint.operation.clone(),
    )
    .with_timing(start, duration_ms * MS)
    .with_http_status(status)
}

fn live() -> LiveWindows {
    LiveWindows::new(SECOND, 120 * SECOND)
}

#[test]
fn window_stats_merge_the_buckets_a_window_covers() {
    let live = live();
    for second in 0..10 {
        let _ = live.record(request(&payment(), T0 + second * SECOND, 100, 200));
    }
    let _ = live.record(request(&payment(), T0 + 3 * SECOND, 300, 503));

    let stats = live.window_stats(TimeWindow::new(T0 + 2 * SECOND, T0 + 5 * SECOND), 5000.0);

    assert_eq!(stats.len(), 1);
    let (endpoint, stats) = &stats[0];
    assert_eq!(endpoint, &payment());
    assert_eq!((stats.count, stats.errors, stats.timeouts), (4, 1, 0));
    assert!((stats.mean_ms - 150.0).abs() < 1e-9);
    assert_eq!(stats.p99_ms, 300.0);
}

#[test]
fn spans_count_at_their_start_time_whatever_the_arrival_order() {
    let live = live();
    let _ = live.record(request(&payment(), T0 + 50 * SECOND, 100, 200));
    let _ = live.record(request(&payment(), T0 + 10 * SECOND, 100, 200));

    let early = live.window_stats(TimeWindow::new(T0, T0 + 20 * SECOND), 5000.0);
    let late = live.window_stats(TimeWindow::new(T0 + 20 * SECOND, T0 + 60 * SECOND), 5000.0);

    assert_eq!(early[0].1.count, 1);
    assert_eq!(late[0].1.count, 1);
}

#[test]
fn timeouts_are_counted_against_the_threshold_given_at_query_time() {
    let live = live();
    for duration_ms in [100, 200, 2500, 6000] {
        let _ = live.record(request(&payment(), T0, duration_ms, 200));
    }
    let window = TimeWindow::new(T0, T0 + SECOND);

    assert_eq!(live.window_stats(window, 5000.0)[0].1.timeouts, 1);
    assert_eq!(live.window_stats(window, 1000.0)[0].1.timeouts, 2);
}

#[test]
fn evicted_buckets_are_forgotten_and_older_spans_dropped() {
    let live = live();
    let _ = live.record(request(&payment(), T0, 100, 200));
    let _ = live.record(request(&payment(), T0 + 10 * SECOND, 100, 200));

    live.evict_before(T0 + 5 * SECOND);
    let outcome = live.record(request(&payment(), T0 + SECOND, 100, 200));

    assert_eq!((outcome.accepted, outcome.dropped), (0, 1));
    let all = live.window_stats(TimeWindow::new(0, u64::MAX), 5000.0);
    assert_eq!(all[0].1.count, 1);
    live.evict_before(T0 + 20 * SECOND);
    assert!(live.endpoints().is_empty());
    assert!(
        live.window_stats(TimeWindow::new(0, u64::MAX), 5000.0)
            .is_empty()
    );
}

#[test]
fn an_endpoint_never_holds_more_buckets_than_its_retention() {
    // Ten seconds of retention in one-second buckets: at most twelve buckets, even if
    // nobody evicts and timestamps run far ahead.
    let live = LiveWindows::new(SECOND, 10 * SECOND);
    for second in 0..100 {
        let _ = live.record(request(&payment(), T0 + second * SECOND, 100, 200));
    }

    let all = live.window_stats(TimeWindow::new(0, u64::MAX), 5000.0);

    assert_eq!(all[0].1.count, 12);
}

#[test]
fn endpoints_are_listed_sorted() {
    let live = live();
    let inventory = EndpointKey::new("shop", "/inventory");
    let _ = live.record_batch(vec![
        request(&payment(), T0, 100, 200),
        request(&inventory, T0, 100, 200),
    ]);

    assert_eq!(live.endpoints(), vec![inventory, payment()]);
}

#[test]
fn concurrent_recording_loses_nothing() {
    let live = Arc::new(live());
    let threads: Vec<_> = (0..4)
        .map(|thread| {
            let live = Arc::clone(&live);
            std::thread::spawn(move || {
                for i in 0..1000 {
                    let _ = live.record(request(&payment(), T0 + (thread * 1000 + i) * MS, 5, 200));
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().expect("recorder finished");
    }

    let all = live.window_stats(TimeWindow::new(0, u64::MAX), 5000.0);

    assert_eq!(all[0].1.count, 4000);
}

#[test]
fn each_span_is_learned_once_even_when_it_arrives_late() {
    let live = live();
    let mut analyzer = Analyzer::new(Config::default()).expect("valid config");
    for i in 0..10 {
        let _ = live.record(request(&payment(), T0 + i * 100 * MS, 100, 200));
    }
    analyzer.observe_live(&live, T0 + 5 * SECOND, &EndpointWatermarks::default());
    // A request that started at T0 + 4 s but took long arrives after the cycle.
    let _ = live.record(request(&payment(), T0 + 4 * SECOND, 120, 200));

    analyzer.observe_live(&live, T0 + 10 * SECOND, &EndpointWatermarks::default());
    analyzer.observe_live(&live, T0 + 15 * SECOND, &EndpointWatermarks::default());

    let baseline = analyzer.baseline(&payment()).expect("learned");
    assert_eq!(baseline.sample_count, 11);
}

#[test]
fn spans_in_the_bucket_still_open_at_now_wait_for_the_next_cycle() {
    let live = live();
    let mut analyzer = Analyzer::new(Config::default()).expect("valid config");
    let now = T0 + 5 * SECOND + 500 * MS;
    for i in 0..10 {
        let _ = live.record(request(&payment(), T0 + 5 * SECOND + i * MS, 100, 200));
    }

    analyzer.observe_live(&live, now, &EndpointWatermarks::default());
    assert!(analyzer.baseline(&payment()).is_none());
    analyzer.observe_live(&live, now + 5 * SECOND, &EndpointWatermarks::default());
    assert_eq!(
        analyzer.baseline(&payment()).expect("learned").sample_count,
        10
    );
}

#[test]
fn watermark_hides_evidence_from_before_a_resolution() {
    let live = live();
    let mut analyzer = Analyzer::new(Config::default()).expect("valid config");
    // Broken for ten seconds, then fixed and resolved at T0 + 10 s.
    for i in 0..20 {
        let _ = live.record(request(&payment(), T0 + i * 500 * MS, 100, 500));
    }
    assert_eq!(
        analyzer
            .observe_live(&live, T0 + 10 * SECOND, &EndpointWatermarks::default())
            .anomalies[0]
            .kind,
        AnomalyKind::ErrorStorm
    );
    let mut marks = EndpointWatermarks::default();
    marks.raise(&payment(), T0 + 10 * SECOND);
    for i in 0..10 {
        let _ = live.record(request(
            &payment(),
            T0 + 10 * SECOND + i * 500 * MS,
            100,
            200,
        ));
    }

    let assessment = analyzer.observe_live(&live, T0 + 15 * SECOND, &marks);

    assert!(assessment.anomalies.is_empty());
    let reported = &assessment.endpoints[0];
    assert_eq!((reported.stats.count, reported.stats.errors), (10, 0));
}

#[test]
fn window_clears_once_the_fault_has_left_it() {
    let live = live();
    let mut analyzer = Analyzer::new(Config::default()).expect("valid config");
    for i in 0..20 {
        let _ = live.record(request(&payment(), T0 + i * 500 * MS, 100, 500));
    }
    assert!(
        !analyzer
            .observe_live(&live, T0 + 10 * SECOND, &EndpointWatermarks::default())
            .anomalies
            .is_empty()
    );

    let later = analyzer.observe_live(&live, T0 + 45 * SECOND, &EndpointWatermarks::default());

    assert!(later.anomalies.is_empty());
}

#[test]
fn a_sliding_window_reads_the_same_as_one_merged_afresh() {
    let sliding = live();
    let fresh = live();
    let mut seed = 7u64;
    let mut next = move |bound: u64| {
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (seed >> 33) % bound
    };
    let far_future = TimeWindow::new(T0 + 10_000 * SECOND, T0 + 10_001 * SECOND);
    for step in 0..60u64 {
        let now = T0 + (step + 1) * SECOND * 2;
        // New spans in the last two seconds, and a late one up to 40 s back.
        for _ in 0..next(6) {
            let start = now - 1 - next(2 * SECOND);
            let span = request(
                &payment(),
                start,
                1 + next(900),
                200 + 300 * (next(4) / 3) as u16,
            );
            let _ = sliding.record(span.clone());
            let _ = fresh.record(span);
        }
        let late = request(
            &payment(),
            now.saturating_sub(next(40) * SECOND),
            2 + next(50),
            200,
        );
        let _ = sliding.record(late.clone());
        let _ = fresh.record(late);
        if step % 7 == 6 {
            sliding.evict_before(now - 30 * SECOND);
            fresh.evict_before(now - 30 * SECOND);
        }
        // Mostly forward, sometimes back, sometimes a jump.
        let length = [10, 30, 30, 5][(step % 4) as usize] * SECOND;
        let end = if step % 9 == 8 {
            now - 20 * SECOND
        } else {
            now
        };
        let window = TimeWindow::new(end - length, end);

        let _ = fresh.window_stats(far_future, 5000.0);
        assert_eq!(
            sliding.window_stats(window, 5000.0),
            fresh.window_stats(window, 5000.0),
            "step {step}"
        );
    }
}

#[test]
fn endpoints_beyond_the_limit_are_dropped_and_counted_until_eviction_frees_a_place() {
    let live = LiveWindows::new(SECOND, 10 * SECOND).with_max_endpoints(2);
    let endpoint = |n: u32| EndpointKey::new("svc", format!("/op-{n}"));
    let _ = live.record(request(&endpoint(1), T0, 10, 200));
    let _ = live.record(request(&endpoint(2), T0, 10, 200));

    let outcome = live.record(request(&endpoint(3), T0, 10, 200));
    let other_service = EndpointKey::new("other", "/op-1");
    let _ = live.record(request(&other_service, T0, 10, 200));
    let tracked = live.record(request(&endpoint(1), T0 + SECOND, 10, 200));

    assert_eq!((outcome.accepted, outcome.dropped), (0, 1));
    assert_eq!((tracked.accepted, tracked.dropped), (1, 0));
    assert_eq!(live.untracked_spans(), 2);
    assert_eq!(live.endpoints(), vec![endpoint(1), endpoint(2)]);

    // Once the first two endpoints' buckets are evicted, new endpoints fit again.
    live.evict_before(T0 + 20 * SECOND);
    assert!(live.endpoints().is_empty());
    let _ = live.record(request(&endpoint(3), T0 + 20 * SECOND, 10, 200));
    let _ = live.record(request(&other_service, T0 + 20 * SECOND, 10, 200));
    assert_eq!(live.endpoints(), vec![other_service, endpoint(3)]);
    assert_eq!(live.untracked_spans(), 2);
}

#[test]
fn a_batch_records_the_same_as_its_spans_one_by_one() {
    let endpoint = |n: u32| EndpointKey::new("svc", format!("/op-{n}"));
    let at = |n: u32, seconds: u64, status: u16| {
        request(&endpoint(n), T0 + seconds * SECOND, 10 + seconds, status)
    };
    // Runs of one endpoint broken by others; a third endpoint beyond the limit of two; spans
    // older than what was evicted, on a tracked endpoint and on one that was never seen.
    let spans = vec![
        at(1, 5, 200),
        at(1, 6, 500),
        at(1, 0, 200),
        at(2, 5, 200),
        at(3, 0, 200),
        at(3, 6, 200),
        at(3, 7, 200),
        at(1, 7, 200),
        at(2, 0, 200),
        at(2, 8, 503),
    ];
    let batched = LiveWindows::new(SECOND, 60 * SECOND).with_max_endpoints(2);
    let single = LiveWindows::new(SECOND, 60 * SECOND).with_max_endpoints(2);
    batched.evict_before(T0 + 2 * SECOND);
    single.evict_before(T0 + 2 * SECOND);

    let outcome = batched.record_batch(spans.clone());
    let (mut accepted, mut dropped) = (0, 0);
    for span in spans {
        let one = single.record(span);
        accepted += one.accepted;
        dropped += one.dropped;
    }

    assert_eq!((outcome.accepted, outcome.dropped), (accepted, dropped));
    assert_eq!((accepted, dropped), (5, 5));
    assert_eq!(batched.untracked_spans(), single.untracked_spans());
    assert_eq!(batched.untracked_spans(), 2);
    assert_eq!(batched.endpoints(), vec![endpoint(1), endpoint(2)]);
    let window = TimeWindow::new(T0, T0 + 10 * SECOND);
    assert_eq!(
        batched.window_stats(window, 5000.0),
        single.window_stats(window, 5000.0)
    );
}

/// A mature payment baseline (100 ms, p95 150 ms) and a live window holding 30 s of one
/// request a second at 100 ms, plus six requests of 2 s spread evenly over the given seconds:
/// the window's mean is more than 4x the baseline's, its median normal, its p95 slow.
fn window_with_slow_requests(slow_seconds: &[u64]) -> (Analyzer, LiveWindows) {
    let analyzer = analyzer_with(Config::default(), mature_baseline(100.0, 150.0, 0.0));
    let live = live();
    for second in 0..30 {
        let _ = live.record(request(&payment(), T0 + second * SECOND, 100, 200));
    }
    for &second in slow_seconds {
        for i in 0..6 / slow_seconds.len() as u64 {
            let _ = live.record(request(
                &payment(),
                T0 + second * SECOND + i * MS,
                2000,
                200,
            ));
        }
    }
    (analyzer, live)
}

#[test]
fn a_one_second_burst_of_outliers_is_not_a_latency_spike() {
    // Six 2 s requests in one second among 30 normal ones: the window's p95 is 2 s, but the
    // other half of the window is untouched.
    let (mut analyzer, live) = window_with_slow_requests(&[7]);

    let assessment = analyzer.observe_live(&live, T0 + 30 * SECOND, &EndpointWatermarks::default());

    assert!(
        assessment.anomalies.is_empty(),
        "{:?}",
        assessment.anomalies
    );
}

#[test]
fn a_burst_is_not_a_spike_when_the_usual_median_sits_a_little_above_the_baseline_mean() {
    // Ten requests a second at 104 ms against a 100 ms mean (as often above it as below), and
    // one second in which 60 requests took 2.5 s: the window's mean is 4.6x the baseline's,
    // its median a hair above the mean, nowhere near the baseline's p95 of 150 ms.
    let mut analyzer = analyzer_with(Config::default(), mature_baseline(100.0, 150.0, 0.0));
    let live = live();
    for tenth in 0..300 {
        let _ = live.record(request(&payment(), T0 + tenth * 100 * MS, 104, 200));
    }
    for i in 0..60 {
        let _ = live.record(request(&payment(), T0 + 25 * SECOND + i * MS, 2500, 200));
    }

    let burst = analyzer.observe_live(&live, T0 + 30 * SECOND, &EndpointWatermarks::default());

    assert!(burst.anomalies.is_empty(), "{:?}", burst.anomalies);

    // The same tail through the whole window is a spike.
    let (mut analyzer, live) = window_with_slow_requests(&[2, 15, 27]);
    let sustained = analyzer.observe_live(&live, T0 + 30 * SECOND, &EndpointWatermarks::default());
    assert_eq!(sustained.anomalies.len(), 1, "{:?}", sustained.anomalies);
}

/// A mature payment baseline (100 ms, p95 150 ms) and a live window of ten requests a second
/// at 100 ms from the window's start until `step`, then 2.5 s requests started until `done`:
/// those started later are still in flight at +30 s and have no span yet.
fn window_with_a_step_change(step: u64, done: u64) -> (Analyzer, LiveWindows) {
    let analyzer = analyzer_with(Config::default(), mature_baseline(100.0, 150.0, 0.0));
    let live = live();
    for tenth in 0..done * 10 {
        let millis = if tenth < step * 10 { 100 } else { 2500 };
        let _ = live.record(request(&payment(), T0 + tenth * 100 * MS, millis, 200));
    }
    (analyzer, live)
}

#[test]
fn a_step_change_is_a_spike_once_its_newest_three_seconds_are_slow() {
    // Slow from +25 s; at +30 s the requests started from +28 s are still running, so the
    // newest three seconds with spans, 25 to 28, are all slow: no need to wait until the
    // slowdown reaches the window's first third.
    let (mut analyzer, live) = window_with_a_step_change(25, 28);

    let assessment = analyzer.observe_live(&live, T0 + 30 * SECOND, &EndpointWatermarks::default());

    assert_eq!(assessment.anomalies.len(), 1, "{:?}", assessment.anomalies);
    assert_eq!(assessment.anomalies[0].kind, AnomalyKind::LatencySpike);

    // Two slow seconds are not yet three: a burst can last that long.
    let (mut analyzer, live) = window_with_a_step_change(25, 27);
    let early = analyzer.observe_live(&live, T0 + 30 * SECOND, &EndpointWatermarks::default());
    assert!(early.anomalies.is_empty(), "{:?}", early.anomalies);
}

#[test]
fn a_surge_of_slow_requests_in_the_newest_second_is_not_a_spike() {
    // Sixty requests arriving at once in the newest second, all slow, outnumber the three
    // seconds' usual thirty; the two seconds before them are normal.
    let mut analyzer = analyzer_with(Config::default(), mature_baseline(100.0, 150.0, 0.0));
    let live = live();
    for tenth in 0..300 {
        let _ = live.record(request(&payment(), T0 + tenth * 100 * MS, 100, 200));
    }
    for i in 0..60 {
        let _ = live.record(request(&payment(), T0 + 29 * SECOND + i * MS, 2500, 200));
    }

    let surge = analyzer.observe_live(&live, T0 + 30 * SECOND, &EndpointWatermarks::default());

    assert!(surge.anomalies.is_empty(), "{:?}", surge.anomalies);
}

#[test]
fn a_burst_and_one_outlier_in_the_other_third_are_not_a_latency_spike() {
    // The burst fills the first third's tail and carries the window's mean; the last third's
    // ten requests hold one slow one, which is all their p95 is, and which leaves their mean
    // under three times the baseline's: a heavy tail's outlier, not a spike.
    let (mut analyzer, live) = window_with_slow_requests(&[7]);
    let _ = live.record(request(&payment(), T0 + 25 * SECOND + MS, 2000, 200));

    let assessment = analyzer.observe_live(&live, T0 + 30 * SECOND, &EndpointWatermarks::default());

    assert!(
        assessment.anomalies.is_empty(),
        "{:?}",
        assessment.anomalies
    );

    // Two slow requests in the last third carry its mean too.
    let (mut analyzer, live) = window_with_slow_requests(&[7]);
    for second in [22, 25] {
        let _ = live.record(request(&payment(), T0 + second * SECOND + MS, 2000, 200));
    }
    let tail = analyzer.observe_live(&live, T0 + 30 * SECOND, &EndpointWatermarks::default());
    assert_eq!(tail.anomalies.len(), 1, "{:?}", tail.anomalies);
}

#[test]
fn a_slow_tail_in_both_halves_of_the_window_is_a_latency_spike() {
    let (mut analyzer, live) = window_with_slow_requests(&[7, 22]);

    let assessment = analyzer.observe_live(&live, T0 + 30 * SECOND, &EndpointWatermarks::default());

    assert_eq!(assessment.anomalies.len(), 1);
    assert_eq!(assessment.anomalies[0].kind, AnomalyKind::LatencySpike);
}

#[test]
fn a_burst_at_an_endpoint_with_few_requests_is_not_a_latency_spike() {
    // Five requests in 30 s, three of them caught in one slow second: the median is slow, but
    // only one half of the window saw anything slow.
    let mut analyzer = analyzer_with(Config::default(), mature_baseline(100.0, 150.0, 0.0));
    let live = live();
    for second in [3, 25] {
        let _ = live.record(request(&payment(), T0 + second * SECOND, 100, 200));
    }
    for i in 0..3 {
        let _ = live.record(request(&payment(), T0 + 20 * SECOND + i * MS, 2000, 200));
    }

    let quiet = analyzer.observe_live(&live, T0 + 30 * SECOND, &EndpointWatermarks::default());

    assert!(quiet.anomalies.is_empty(), "{:?}", quiet.anomalies);

    // Still slow twenty seconds later: slow in the first and the last third of the window,
    // it is a spike, few requests or not.
    let _ = live.record(request(&payment(), T0 + 42 * SECOND, 2000, 200));
    let _ = live.record(request(&payment(), T0 + 43 * SECOND, 2000, 200));
    let slow = analyzer.observe_live(&live, T0 + 50 * SECOND, &EndpointWatermarks::default());
    assert_eq!(slow.anomalies.len(), 1, "{:?}", slow.anomalies);
}

#[test]
fn a_failure_reported_after_its_span_counts_where_the_span_started() {
    let live = live();
    for second in 0..4 {
        let _ = live.record(request(&payment(), T0 + second * SECOND, 100, 200));
    }
    let window = TimeWindow::new(T0, T0 + 4 * SECOND);
    // The running window is merged once before the late failure, then updated in place.
    assert_eq!(live.window_stats(window, 5000.0)[0].1.errors, 0);
    assert!(live.record_late_failure(&payment(), T0 + 2 * SECOND));
    assert!(
        !live.record_late_failure(&payment(), T0 + 2 * SECOND),
        "the bucket's one request already counts as failed"
    );
    assert!(
        !live.record_late_failure(&payment(), T0 + 9 * SECOND),
        "no such bucket"
    );
    assert!(!live.record_late_failure(&EndpointKey::new("shop", "/nope"), T0));
    let stats = live.window_stats(window, 5000.0);
    assert_eq!((stats[0].1.count, stats[0].1.errors), (4, 1));
}

#[test]
fn a_failure_reported_after_its_span_was_learned_is_learned_too() {
    // Ten requests a second, one in twenty failing, each failure reported by a log that comes
    // after the cycle that learned its span.
    let live = live();
    let mut analyzer = Analyzer::new(Config::default()).expect("valid config");
    let mut failed = Vec::new();
    for second in 0..60 {
        for i in 0..10 {
            let start = T0 + second * SECOND + i * 100 * MS;
            let _ = live.record(request(&payment(), start, 100, 200));
            if i == 3 && second % 2 == 0 {
                failed.push(start);
            }
        }
        if second % 5 == 4 {
            let now = T0 + (second + 1) * SECOND;
            analyzer.observe_live(&live, now, &EndpointWatermarks::default());
            for start in failed.drain(..) {
                assert!(live.record_late_failure(&payment(), start));
            }
        }
    }
    analyzer.observe_live(&live, T0 + 65 * SECOND, &EndpointWatermarks::default());

    let baseline = analyzer.baseline(&payment()).expect("learned");
    assert!(
        (baseline.error_rate - 0.05).abs() < 0.01,
        "the baseline holds the failures the logs reported: {}",
        baseline.error_rate
    );
}
