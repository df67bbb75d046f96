//! Root cause analysis as a specification: error provenance, self-time excess, hangs,
//! confidence and grouping.

use crate::common::{TraceBuilder, anomaly, endpoint, shop_trace};
use aiops_analyzer::AnomalyKind::{ErrorStorm, LatencyShift, LatencySpike, Timeout};
use aiops_analyzer::Config;
use aiops_rca::{FaultFamily, Rca, RcaConfig};

/// An `Rca` that learned from 100 healthy shop traces: checkout 20 ms of own work, payment
/// 30 ms, bank 20 ms, with a little jitter.
fn trained() -> Rca {
    let healthy: Vec<_> = (0..100)
        .map(|i| shop_trace(i * 100, 18 + i % 5, 28 + i % 5, &[]))
        .collect();
    learned_from(&healthy)
}

/// An `Rca` that learned from `healthy`, every trace of it healthy.
fn learned_from(healthy: &[Vec<aiops_telemetry_core::Span>]) -> Rca {
    let mut rca = Rca::new(RcaConfig::default(), &Config::default());
    rca.learn(healthy, |_| true);
    rca
}

#[test]
fn a_failure_passed_up_through_spans_that_record_no_status_starts_below_them() {
    // The gateway's instrumentation records no outcome: the checkout fails, the gateway looks
    // fine, and the failure started at pricing below it.
    let traces: Vec<_> = (0..10)
        .map(|i| {
            let mut trace = TraceBuilder::new(i * 100);
            let checkout = trace.add(None, "checkout", "/checkout", 0, 40, 500);
            let gateway = trace.silent(Some(checkout), "gateway", "/route", 2, 30);
            trace.add(Some(gateway), "pricing", "/price", 4, 20, 500);
            trace.build()
        })
        .collect();
    let anomalies = [anomaly(ErrorStorm, "checkout", "/checkout", 1.0, 0.0)];

    let drafts = trained().explain(&anomalies, &traces);

    let root = &drafts[0].root_cause;
    assert_eq!(
        (&*root.service, root.endpoint.as_str()),
        ("pricing", "/price")
    );
    assert_eq!(root.confidence, 1.0);
}

#[test]
fn error_origin_is_the_deepest_failing_span_whose_children_succeeded() {
    let traces: Vec<_> = (0..10)
        .map(|i| shop_trace(i * 100, 20, 30, &["checkout", "payment", "bank"]))
        .collect();
    let anomalies = [
        anomaly(ErrorStorm, "checkout", "/checkout", 1.0, 0.0),
        anomaly(ErrorStorm, "payments", "/payment", 1.0, 0.0),
    ];

    let drafts = trained().explain(&anomalies, &traces);

    assert_eq!(drafts.len(), 1);
    let root = &drafts[0].root_cause;
    assert_eq!(
        (&*root.service, root.endpoint.as_str()),
        ("bank", "/charge")
    );
    assert_eq!(root.kind, ErrorStorm);
    assert_eq!(root.confidence, 1.0);
    assert_eq!(root.description, "Error storm: 100% errors (baseline: 0%)");
    assert_eq!(drafts[0].title, "Error storm detected in /charge");
    assert_eq!(
        drafts[0].affected_endpoints,
        [
            endpoint("bank", "/charge"),
            endpoint("checkout", "/checkout"),
            endpoint("payments", "/payment")
        ]
    );
    let first = root.first_failing_span.as_ref().expect("a span is named");
    assert_eq!(first.operation, "/charge");
    assert_eq!(first.start_unix_nanos, traces[0][2].start_unix_nanos);
}

#[test]
fn failing_span_with_healthy_children_is_the_origin() {
    let traces: Vec<_> = (0..10)
        .map(|i| shop_trace(i * 100, 20, 30, &["checkout", "payment"]))
        .collect();
    let anomalies = [
        anomaly(ErrorStorm, "checkout", "/checkout", 1.0, 0.0),
        anomaly(ErrorStorm, "payments", "/payment", 1.0, 0.0),
    ];

    let drafts = trained().explain(&anomalies, &traces);

    assert_eq!(drafts.len(), 1);
    assert_eq!(drafts[0].root_cause.endpoint, "/payment");
    assert_eq!(drafts[0].root_cause.description, anomalies[1].description);
    assert_eq!(drafts[0].anomalies.len(), 2);
}

#[test]
fn slow_callee_is_blamed_not_its_slow_looking_caller() {
    let traces: Vec<_> = (0..10)
        .map(|i| shop_trace(i * 2_000, 20, 1_200, &[]))
        .collect();
    let anomalies = [
        anomaly(LatencySpike, "checkout", "/checkout", 1_240.0, 70.0),
        anomaly(LatencySpike, "payments", "/payment", 1_220.0, 50.0),
    ];

    let drafts = trained().explain(&anomalies, &traces);

    assert_eq!(drafts.len(), 1);
    let root = &drafts[0].root_cause;
    assert_eq!(
        (&*root.service, root.endpoint.as_str()),
        ("payments", "/payment")
    );
    assert_eq!(root.kind, LatencySpike);
    assert_eq!(root.confidence, 1.0);
    assert_eq!(
        root.description,
        "Latency spike: 1220ms (baseline: 50ms, 24.4x slower)"
    );
    assert_eq!(drafts[0].title, "Latency spike detected in /payment");
}

#[test]
fn caller_slow_in_its_own_work_is_blamed_when_its_callees_are_fine() {
    let traces: Vec<_> = (0..10)
        .map(|i| shop_trace(i * 2_000, 900, 30, &[]))
        .collect();
    let anomalies = [anomaly(LatencySpike, "checkout", "/checkout", 950.0, 70.0)];

    let drafts = trained().explain(&anomalies, &traces);

    assert_eq!(drafts[0].root_cause.endpoint, "/checkout");
    assert_eq!(
        drafts[0].affected_endpoints,
        [endpoint("checkout", "/checkout")]
    );
}

/// Checkout gives up on payment after 2 s and answers 504; payment hangs for 8 s, then
/// answers 200 to nobody.
fn timed_out_checkout(offset_ms: u64, with_callee_span: bool) -> Vec<aiops_telemetry_core::Span> {
    let mut trace = TraceBuilder::new(offset_ms);
    let checkout = trace.add(None, "checkout", "/checkout", 0, 2_010, 504);
    if with_callee_span {
        trace.ok(Some(checkout), "payments", "/payment", 10, 8_000);
    }
    trace.build()
}

#[test]
fn hung_callee_is_blamed_for_its_callers_client_timeouts() {
    let traces: Vec<_> = (0..10)
        .map(|i| timed_out_checkout(i * 1_000, true))
        .collect();
    let anomalies = [
        anomaly(ErrorStorm, "checkout", "/checkout", 1.0, 0.0),
        anomaly(LatencySpike, "checkout", "/checkout", 2_010.0, 70.0),
        anomaly(Timeout, "payments", "/payment", 1.0, 0.0),
    ];

    let drafts = trained().explain(&anomalies, &traces);

    assert_eq!(drafts.len(), 1, "{drafts:#?}");
    let root = &drafts[0].root_cause;
    assert_eq!(root.endpoint, "/payment");
    assert_eq!(root.kind, Timeout);
    assert_eq!(root.description, anomalies[2].description);
    assert_eq!(drafts[0].anomalies.len(), 3);
}

#[test]
fn timeout_on_a_caller_that_answered_504_leads_to_the_hung_callee() {
    // The detector's timeout (say 2 s) is shorter than RCA's 5 s default: the 504 still
    // marks the caller's span as timed out.
    let traces: Vec<_> = (0..10)
        .map(|i| timed_out_checkout(i * 1_000, true))
        .collect();
    let anomalies = [anomaly(Timeout, "checkout", "/checkout", 1.0, 0.0)];

    let drafts = trained().explain(&anomalies, &traces);

    assert_eq!(drafts[0].root_cause.endpoint, "/payment");
    assert_eq!(drafts[0].root_cause.kind, Timeout);
    assert_eq!(drafts[0].root_cause.confidence, 1.0);
}

#[test]
fn caller_that_gave_up_stands_in_only_while_no_callee_span_has_arrived() {
    let anomalies = [anomaly(ErrorStorm, "checkout", "/checkout", 1.0, 0.0)];
    let without: Vec<_> = (0..10)
        .map(|i| timed_out_checkout(i * 1_000, false))
        .collect();
    let mut mixed = without.clone();
    mixed.extend((10..13).map(|i| timed_out_checkout(i * 1_000, true)));

    let alone = trained().explain(&anomalies, &without);
    let partly = trained().explain(&anomalies, &mixed);

    assert_eq!(alone[0].root_cause.endpoint, "/checkout");
    assert_eq!(alone[0].root_cause.confidence, 1.0);
    assert_eq!(partly[0].root_cause.endpoint, "/payment");
    assert_eq!(partly[0].root_cause.confidence, 3.0 / 13.0);
}

#[test]
fn confidence_is_the_share_of_anomalous_traces_a_candidate_explains() {
    // 7 checkouts fail because payment fails, 3 because their own code fails; 5 succeed.
    let mut traces: Vec<_> = (0..7)
        .map(|i| shop_trace(i * 100, 20, 30, &["checkout", "payment"]))
        .collect();
    traces.extend((7..10).map(|i| shop_trace(i * 100, 20, 30, &["checkout"])));
    traces.extend((10..15).map(|i| shop_trace(i * 100, 20, 30, &[])));
    let anomalies = [anomaly(
        ErrorStorm,
        "checkout",
        "/checkout",
        10.0 / 15.0,
        0.0,
    )];

    let drafts = trained().explain(&anomalies, &traces);

    let root = &drafts[0].root_cause;
    assert_eq!(root.endpoint, "/payment");
    assert!((root.confidence - 0.7).abs() < 1e-9);
    let runner_up = &root.candidates[1];
    assert_eq!(runner_up.endpoint, "/checkout");
    assert!((runner_up.score - 0.3).abs() < 1e-9);
    assert_eq!(root.candidates[0].score, root.confidence);
}

#[test]
fn anomaly_without_traces_is_explained_by_its_own_endpoint() {
    let anomalies = [anomaly(ErrorStorm, "shop", "/inventory", 0.8, 0.01)];

    let drafts = Rca::new(RcaConfig::default(), &Config::default()).explain(&anomalies, &[]);

    assert_eq!(drafts.len(), 1);
    let root = &drafts[0].root_cause;
    assert_eq!(
        (&*root.service, root.endpoint.as_str()),
        ("shop", "/inventory")
    );
    assert_eq!(root.kind, ErrorStorm);
    assert_eq!(root.confidence, 1.0);
    assert_eq!(root.first_failing_span, None);
    assert_eq!(root.description, anomalies[0].description);
}

#[test]
fn anomalies_with_different_root_causes_become_separate_drafts() {
    // Payment fails in some checkouts; an unrelated search endpoint is slow on its own.
    let mut traces: Vec<_> = (0..10)
        .map(|i| shop_trace(i * 100, 20, 30, &["checkout", "payment"]))
        .collect();
    let mut search = TraceBuilder::new(0);
    search.ok(None, "catalog", "/search", 0, 900);
    traces.push(search.build());
    let anomalies = [
        anomaly(ErrorStorm, "checkout", "/checkout", 1.0, 0.0),
        anomaly(ErrorStorm, "payments", "/payment", 1.0, 0.0),
        anomaly(LatencySpike, "catalog", "/search", 900.0, 40.0),
    ];

    let drafts = trained().explain(&anomalies, &traces);

    assert_eq!(drafts.len(), 2);
    assert_eq!(drafts[0].root_cause.endpoint, "/payment");
    assert_eq!(drafts[0].anomalies.len(), 2);
    assert_eq!(drafts[1].root_cause.endpoint, "/search");
    assert!(!drafts[0].root_cause.same_cause(&drafts[1].root_cause));
}

#[test]
fn errors_and_slowness_at_the_same_endpoint_are_different_causes() {
    let anomalies = [
        anomaly(ErrorStorm, "shop", "/inventory", 0.8, 0.01),
        anomaly(LatencySpike, "shop", "/inventory", 900.0, 40.0),
        anomaly(Timeout, "shop", "/inventory", 0.5, 0.0),
    ];

    let drafts = Rca::new(RcaConfig::default(), &Config::default()).explain(&anomalies, &[]);

    assert_eq!(drafts.len(), 2);
    let families: Vec<_> = drafts
        .iter()
        .map(|d| FaultFamily::of(d.root_cause.kind))
        .collect();
    assert_eq!(families, [FaultFamily::Slowness, FaultFamily::Errors]);
}

#[test]
fn learned_baselines_survive_a_serde_round_trip() {
    let rca = trained();

    let json = serde_json::to_string(&rca).expect("serializes");
    let restored: Rca = serde_json::from_str(&json).expect("deserializes");

    assert_eq!(restored.self_time_baselines(), rca.self_time_baselines());
    let payment = restored
        .self_time_baseline(&endpoint("payments", "/payment"))
        .expect("learned");
    assert!((payment.mean_ms - 30.0).abs() < 0.5);
    assert_eq!(payment.sample_count, 100);
}

#[test]
fn unhealthy_endpoints_are_not_learned() {
    let mut rca = Rca::new(RcaConfig::default(), &Config::default());
    let traces: Vec<_> = (0..20).map(|i| shop_trace(i * 100, 20, 900, &[])).collect();

    rca.learn(&traces, |e| e.service != "payments");

    assert!(
        rca.self_time_baseline(&endpoint("payments", "/payment"))
            .is_none()
    );
    assert!(
        rca.self_time_baseline(&endpoint("checkout", "/checkout"))
            .is_some()
    );
}

#[test]
fn root_cause_serializes_with_the_documented_field_names() {
    let anomalies = [anomaly(LatencySpike, "shop", "/payment", 1_250.0, 180.0)];
    let drafts = Rca::new(RcaConfig::default(), &Config::default()).explain(&anomalies, &[]);

    let json = serde_json::to_value(&drafts[0]).expect("serializes");

    assert_eq!(json["root_cause"]["endpoint"], "/payment");
    assert_eq!(json["root_cause"]["kind"], "latency_spike");
    assert_eq!(
        json["root_cause"]["description"],
        "Latency spike: 1250ms (baseline: 180ms, 6.9x slower)"
    );
    assert_eq!(json["root_cause"]["confidence"], 1.0);
    assert_eq!(json["severity"], "high");
    assert_eq!(json["title"], "Latency spike detected in /payment");
    assert_eq!(json["affected_endpoints"][0]["operation"], "/payment");
}

/// A frontend request: `/a` (own work `a_self_ms` around a 100 ms call to `/c`), then `/b`
/// (`b_ms`, a leaf).
fn fan_out(offset_ms: u64, a_self_ms: u64, b_ms: u64) -> Vec<aiops_telemetry_core::Span> {
    let mut trace = TraceBuilder::new(offset_ms);
    let a_ms = a_self_ms + 100;
    let root = trace.ok(None, "frontend", "/", 0, a_ms + b_ms + 10);
    let a = trace.ok(Some(root), "alpha", "/a", 2, a_ms);
    trace.ok(Some(a), "gamma", "/c", 2 + a_self_ms / 2, 100);
    trace.ok(Some(root), "beta", "/b", 4 + a_ms, b_ms);
    trace.build()
}

/// An `Rca` that learned from 100 healthy fan-outs: `/a`'s own work and `/b` around 10 ms.
fn trained_on_fan_outs() -> Rca {
    let healthy: Vec<_> = (0..100)
        .map(|i| fan_out(i * 100, 9 + i % 3, 9 + i % 3))
        .collect();
    learned_from(&healthy)
}

#[test]
fn a_root_cause_is_itself_slow_not_just_busier_on_its_own() {
    let rca = trained_on_fan_outs();
    // `/a` does 6 ms more of its own work in every trace, which its 110 ms hardly notice;
    // `/b` takes 40 ms instead of 10 in four traces of ten.
    let traces: Vec<_> = (0..10)
        .map(|i| fan_out(20_000 + i * 100, 16, if i % 10 < 4 { 40 } else { 10 }))
        .collect();
    let anomalies = [anomaly(LatencySpike, "frontend", "/", 140.0, 125.0)];

    let drafts = rca.explain(&anomalies, &traces);

    let root = &drafts[0].root_cause;
    assert_eq!((&*root.service, root.endpoint.as_str()), ("beta", "/b"));
}

#[test]
fn a_service_whose_own_work_slowed_in_every_request_is_where_the_time_went() {
    let rca = trained_on_fan_outs();
    // A saturated CPU: `/a` does twice its own work in every request, which its 110 ms hardly
    // show; `/b` takes 40 ms instead of 10 in one trace of ten.
    let traces: Vec<_> = (0..10)
        .map(|i| fan_out(20_000 + i * 100, 20, if i == 0 { 40 } else { 10 }))
        .collect();
    let anomalies = [anomaly(LatencySpike, "frontend", "/", 140.0, 125.0)];

    let drafts = rca.explain(&anomalies, &traces);

    let root = &drafts[0].root_cause;
    assert_eq!((&*root.service, root.endpoint.as_str()), ("alpha", "/a"));
    assert!(
        root.description
            .starts_with("Latency spike: own work took 20ms"),
        "{}",
        root.description
    );
}

#[test]
fn a_call_whose_gap_grew_a_little_in_every_request_is_judged_as_a_call() {
    let healthy: Vec<_> = (0..100).map(|i| gapped(i * 100, 2, 9 + i % 3)).collect();
    let rca = learned_from(&healthy);
    // The gap in front of the callee grew from 2 ms to 8 ms in every request, while the callee
    // answers 20 ms faster: the calls took less time than usual, and are no root cause.
    let traces: Vec<_> = (0..10)
        .map(|i| gapped(20_000 + i * 100, 8, if i == 0 { 40 } else { 10 }))
        .collect();
    let anomalies = [anomaly(LatencySpike, "frontend", "/", 110.0, 100.0)];

    let drafts = rca.explain(&anomalies, &traces);

    let root = &drafts[0].root_cause;
    assert_ne!(root.endpoint, "GET -> gamma", "{}", root.description);
}

/// A frontend request: a call to `/c` (`gap_ms` in front of 100 ms, less 20 ms once the gap
/// grew), then `/b` (`b_ms`, a leaf).
fn gapped(offset_ms: u64, gap_ms: u64, b_ms: u64) -> Vec<aiops_telemetry_core::Span> {
    let mut trace = TraceBuilder::new(offset_ms);
    let callee_ms = if gap_ms > 2 { 80 } else { 100 };
    let call_ms = gap_ms + callee_ms;
    let root = trace.ok(None, "frontend", "/", 0, call_ms + b_ms + 10);
    let call = trace.ok(Some(root), "frontend", "GET -> gamma", 2, call_ms);
    trace.ok(Some(call), "gamma", "/c", 2 + gap_ms / 2, callee_ms);
    trace.ok(Some(root), "beta", "/b", 4 + call_ms, b_ms);
    trace.build()
}

#[test]
fn a_noisy_endpoints_usual_tail_is_not_a_root_cause() {
    // `/b` takes 25 ms instead of 10 in one request of four, healthy or not; `/a` usually does
    // 20 ms of its own work around its 100 ms call.
    let healthy: Vec<_> = (0..100)
        .map(|i| fan_out(i * 100, 19 + i % 3, if i % 4 == 0 { 25 } else { 10 }))
        .collect();
    let rca = learned_from(&healthy);
    // A saturated CPU: `/a` does a third more of its own work in every request; `/b` shows its
    // usual tail, in three requests of ten.
    let traces: Vec<_> = (0..10)
        .map(|i| fan_out(20_000 + i * 100, 27, if i % 4 == 0 { 25 } else { 10 }))
        .collect();
    let anomalies = [anomaly(LatencySpike, "frontend", "/", 145.0, 135.0)];

    assert_first_draft_blames(&rca.explain(&anomalies, &traces), ("alpha", "/a"));
}

/// A frontend request into `/a`: `a_self_ms` of its own work around a call to `/c`, a leaf
/// taking `c_ms`.
fn nested(offset_ms: u64, a_self_ms: u64, c_ms: u64) -> Vec<aiops_telemetry_core::Span> {
    let mut trace = TraceBuilder::new(offset_ms);
    let root = trace.ok(None, "frontend", "/", 0, a_self_ms + c_ms + 10);
    let a = trace.ok(Some(root), "alpha", "/a", 2, a_self_ms + c_ms);
    trace.ok(Some(a), "gamma", "/c", 2 + a_self_ms / 2, c_ms);
    trace.build()
}

#[test]
fn a_callee_slow_no_more_often_than_usual_is_not_the_root_cause() {
    // `/c` takes 60 ms instead of 10 in one request of five, healthy or not: a tail past what
    // a log-normal shape would put at its 95th percentile.
    let healthy: Vec<_> = (0..100)
        .map(|i| nested(i * 100, 19 + i % 3, if i % 5 == 0 { 60 } else { 9 + i % 3 }))
        .collect();
    let rca = learned_from(&healthy);
    // `/a`'s own work shifted: 32 ms instead of 20 in half the requests. `/c` shows its usual
    // tail, in four requests of ten: more traces name it than the shift's own excess.
    let traces: Vec<_> = (0..10)
        .map(|i| {
            let a_self = if i % 2 == 0 { 32 } else { 20 };
            nested(20_000 + i * 100, a_self, if i % 3 == 0 { 60 } else { 10 })
        })
        .collect();
    let anomalies = [anomaly(LatencyShift, "alpha", "/a", 26.0, 20.0)];

    assert_first_draft_blames(&rca.explain(&anomalies, &traces), ("alpha", "/a"));
}

/// Asserts that the first of `drafts` blames `service`'s `endpoint`.
fn assert_first_draft_blames(
    drafts: &[aiops_rca::IncidentDraft],
    (service, endpoint): (&str, &str),
) {
    let root = &drafts[0].root_cause;
    assert_eq!(
        (&*root.service, root.endpoint.as_str()),
        (service, endpoint),
        "{}",
        root.description
    );
}
