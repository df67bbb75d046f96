//! Calls as two spans: time lost between a caller's client span and the callee is blamed on
//! the side of the edge the evidence points at, and uninstrumented dependencies can be the root
//! cause.

use aiops_analyzer::AnomalyKind::{ErrorStorm, LatencySpike};
use aiops_analyzer::Config;
use aiops_rca::{Rca, RcaConfig};
use aiops_telemetry_core::{Span, SpanId, SpanKind, TraceId};

use crate::common::{MS, T0, anomaly};

/// One frontend request: 10 ms of own work, then a client call to each of `calls` (peer, gap in
/// front of the callee, the callee's own time; a callee of `None` is an uninstrumented
/// dependency answering in the gap alone).
fn request(offset_ms: u64, calls: &[(&str, Option<&str>, u64, u64)]) -> Vec<Span> {
    let trace = TraceId::random();
    let start = T0 + offset_ms * MS;
    let root_id = SpanId::random();
    let mut spans = Vec::new();
    let mut at = start + 5 * MS;
    for &(peer, callee, gap_ms, server_ms) in calls {
        let client_id = SpanId::random();
        let client_ms = gap_ms + server_ms;
        spans.push(
            Span::new(trace, client_id, "frontend", format!("GET -> {peer}"))
                .with_kind(SpanKind::Client)
                .with_parent(root_id)
                .with_timing(at, client_ms * MS)
                .with_http_status(200),
        );
        if let Some(service) = callee {
            spans.push(
                Span::new(trace, SpanId::random(), service.to_owned(), "GET /work")
                    .with_parent(client_id)
                    .with_timing(at + gap_ms / 2 * MS, server_ms * MS)
                    .with_http_status(200),
            );
        }
        at += client_ms * MS;
    }
    let total = (at - start) / MS + 5;
    spans.push(
        Span::new(trace, root_id, "frontend", "GET /")
            .with_timing(start, total * MS)
            .with_http_status(200),
    );
    spans
}

fn trained(calls: &[(&str, Option<&str>, u64, u64)]) -> Rca {
    let mut rca = Rca::new(RcaConfig::default(), &Config::default());
    let healthy: Vec<_> = (0..100).map(|i| request(i * 100, calls)).collect();
    rca.learn(&healthy, |_| true);
    rca
}

#[test]
fn a_delay_in_front_of_one_callee_is_the_callees() {
    let normal = [
        ("currency", Some("currency"), 2, 3),
        ("cart", Some("cart"), 2, 8),
    ];
    let delayed = [
        ("currency", Some("currency"), 600, 3),
        ("cart", Some("cart"), 2, 8),
    ];
    let traces: Vec<_> = (0..10)
        .map(|i| request(10_000 + i * 100, &delayed))
        .collect();
    let anomalies = [anomaly(LatencySpike, "frontend", "GET /", 620.0, 25.0)];

    let drafts = trained(&normal).explain(&anomalies, &traces);

    assert_eq!(drafts.len(), 1);
    let root = &drafts[0].root_cause;
    assert_eq!(root.service, "currency");
    assert_eq!(root.endpoint, "GET -> currency");
    assert_eq!(
        root.description,
        "Latency spike: calls from frontend to currency took 603ms (baseline 5.0ms), while \
         currency handled them in 3.0ms"
    );
    assert_eq!(
        drafts[0].title,
        "Latency spike detected in currency GET -> currency"
    );
}

#[test]
fn a_small_delay_in_front_of_a_slow_callee_is_the_callees() {
    // The gap grows from 2 to 22 ms while the callee's 100 ms dwarf it: the calls take only
    // a fifth longer, but the time lost is all the edge's.
    let normal = [("currency", Some("currency"), 2, 100)];
    let delayed = [("currency", Some("currency"), 22, 100)];
    let traces: Vec<_> = (0..10)
        .map(|i| request(10_000 + i * 100, &delayed))
        .collect();
    let anomalies = [anomaly(LatencySpike, "frontend", "GET /", 132.0, 112.0)];

    let drafts = trained(&normal).explain(&anomalies, &traces);

    let root = &drafts[0].root_cause;
    assert_eq!(
        (root.service.as_str(), root.endpoint.as_str()),
        ("currency", "GET -> currency")
    );
    assert!(root.confidence > 0.9, "{root:?}");
}

#[test]
fn a_slow_uninstrumented_dependency_is_named_from_its_client_spans() {
    let normal = [("postgresql/orders", None, 3, 0)];
    let slow = [("postgresql/orders", None, 300, 0)];
    let traces: Vec<_> = (0..10).map(|i| request(10_000 + i * 100, &slow)).collect();
    let anomalies = [anomaly(LatencySpike, "frontend", "GET /", 310.0, 13.0)];

    let drafts = trained(&normal).explain(&anomalies, &traces);

    let root = &drafts[0].root_cause;
    assert_eq!(root.service, "postgresql/orders");
    assert_eq!(
        root.description,
        "Latency spike: calls from frontend to postgresql/orders took 300ms (baseline 3.0ms)"
    );
}

#[test]
fn a_caller_slow_towards_several_callees_is_the_callers() {
    let normal = [
        ("currency", Some("currency"), 2, 3),
        ("cart", Some("cart"), 2, 8),
    ];
    let starved = [
        ("currency", Some("currency"), 300, 3),
        ("cart", Some("cart"), 300, 8),
    ];
    let traces: Vec<_> = (0..10)
        .map(|i| request(10_000 + i * 100, &starved))
        .collect();
    let anomalies = [anomaly(LatencySpike, "frontend", "GET /", 630.0, 25.0)];

    let drafts = trained(&normal).explain(&anomalies, &traces);

    assert_eq!(drafts.len(), 1);
    let root = &drafts[0].root_cause;
    assert_eq!(root.service, "frontend");
    assert!(
        root.description
            .ends_with("and frontend was slow towards other services too"),
        "{}",
        root.description
    );
}

#[test]
fn uninstrumented_dependencies_are_nodes_of_the_topology() {
    let traces = vec![request(
        0,
        &[
            ("postgresql/orders", None, 3, 0),
            ("cart", Some("cart"), 2, 8),
        ],
    )];

    let graph = aiops_rca::dependency_graph(&traces);

    let database = graph
        .edge("frontend", "postgresql/orders")
        .expect("the database is a node");
    assert!(database.uninstrumented);
    assert_eq!((database.calls, database.mean_latency_ms), (1, 3.0));
    let cart = graph
        .edge("frontend", "cart")
        .expect("an instrumented callee");
    assert!(!cart.uninstrumented);
    assert!(graph.services().contains(&"postgresql/orders".to_owned()));
}

#[test]
fn a_hung_callee_whose_spans_are_missing_is_named_as_the_service_that_answered_before() {
    let normal = [("currency.prod.svc", Some("currency"), 2, 3)];
    // The callee hangs: its server spans arrive only when it answers, long after the caller
    // gave up, so the sampled traces hold the client spans alone.
    let hung = [("currency.prod.svc", None, 5_000, 0)];
    let traces: Vec<_> = (0..10).map(|i| request(10_000 + i * 100, &hung)).collect();
    let anomalies = [anomaly(LatencySpike, "frontend", "GET /", 5_010.0, 20.0)];

    let drafts = trained(&normal).explain(&anomalies, &traces);

    let root = &drafts[0].root_cause;
    assert_eq!(root.service, "currency");
    assert_eq!(
        root.kind,
        aiops_analyzer::AnomalyKind::Timeout,
        "past the 5 s timeout"
    );
    assert!(
        root.description
            .starts_with("Timeouts: calls from frontend to currency took 5000ms"),
        "{}",
        root.description
    );
}

#[test]
fn failing_calls_to_a_callee_without_spans_of_its_own_blame_the_callee() {
    let normal = [("currency.prod.svc", Some("currency"), 2, 3)];
    let rca = trained(&normal);
    // The callee is unreachable: the client spans fail with 503, no server span exists.
    let traces: Vec<_> = (0..10)
        .map(|i| {
            request(10_000 + i * 100, &[("currency.prod.svc", None, 4, 0)])
                .into_iter()
                .map(|span| span.with_http_status(503))
                .collect::<Vec<_>>()
        })
        .collect();
    let anomalies = [anomaly(ErrorStorm, "frontend", "GET /", 1.0, 0.0)];

    let drafts = rca.explain(&anomalies, &traces);

    let root = &drafts[0].root_cause;
    assert_eq!(root.service, "currency");
    assert_eq!(root.endpoint, "GET -> currency.prod.svc");
    assert_eq!(
        root.description,
        "Error storm: 100% of the calls from frontend to currency failed (baseline 0%)"
    );
}

/// Ten frontend requests answered 504 over a call to currency of `call_ms` that records no
/// status.
fn gateway_timeouts(call_ms: u64) -> Vec<Vec<aiops_telemetry_core::Span>> {
    (0..10)
        .map(|i| {
            request(10_000 + i * 100, &[("currency.prod.svc", None, call_ms, 0)])
                .into_iter()
                .map(|mut span| {
                    span.http_status = (span.operation == "GET /").then_some(504);
                    span
                })
                .collect()
        })
        .collect()
}

/// The drafts of an error storm at the frontend over [`gateway_timeouts`] of `call_ms`, against
/// a usual call to currency of 2 ms.
fn explain_gateway_timeouts(call_ms: u64) -> Vec<aiops_rca::IncidentDraft> {
    let normal = [("currency.prod.svc", Some("currency"), 2, 3)];
    let anomalies = [anomaly(ErrorStorm, "frontend", "GET /", 1.0, 0.0)];
    trained(&normal).explain(&anomalies, &gateway_timeouts(call_ms))
}

#[test]
fn a_gateway_timeout_over_a_call_that_records_no_outcome_blames_the_silent_callee() {
    // Older instrumentation: the client span of a call that got no answer records no status,
    // the frontend answers 504, and the hung callee's spans have not arrived.
    let drafts = explain_gateway_timeouts(2_000);

    let root = &drafts[0].root_cause;
    assert_eq!(root.service, "currency");
    assert_eq!(root.endpoint, "GET -> currency.prod.svc");
    assert_eq!(root.kind, aiops_analyzer::AnomalyKind::Timeout);
    assert_eq!(root.confidence, 1.0);
}

#[test]
fn a_gateway_timeout_with_nothing_slow_below_stands_in_for_the_missing_callee() {
    // The 504 came fast, and the call below took its usual time: nothing below explains it.
    let drafts = explain_gateway_timeouts(5);

    assert_eq!(drafts[0].root_cause.endpoint, "GET /");
}

#[test]
fn failing_calls_are_told_by_the_share_their_storm_was_judged_on() {
    let normal = [("currency.prod.svc", Some("currency"), 2, 3)];
    let rca = trained(&normal);
    // Two of the ten sampled requests failed at the call; the client endpoint's own window,
    // which the storm was judged on, saw 40% of its calls fail.
    let traces: Vec<_> = (0..10)
        .map(|i| {
            let trace = request(10_000 + i * 100, &[("currency.prod.svc", None, 4, 0)]);
            if i < 2 {
                trace
                    .into_iter()
                    .map(|span| span.with_http_status(503))
                    .collect()
            } else {
                trace
            }
        })
        .collect();
    let anomalies = [anomaly(
        ErrorStorm,
        "frontend",
        "GET -> currency.prod.svc",
        0.4,
        0.0,
    )];

    let drafts = rca.explain(&anomalies, &traces);

    let root = &drafts[0].root_cause;
    assert_eq!(root.endpoint, "GET -> currency.prod.svc");
    assert_eq!(
        root.description,
        "Error storm: 40% of the calls from frontend to currency failed (baseline 0%)"
    );
}
