//! End-to-end analysis cycles on a virtual clock: the seed's three scenarios, healthy traffic,
//! resolution and persistence.

use crate::demo_shop::{Harness, MS, SEC, T0, opened};
use aiops_analyzer::AnomalyKind;
use aiops_engine::{
    Engine, EngineConfig, EngineSnapshot, Incident, IncidentChange, IncidentError, IncidentStatus,
};
use aiops_telemetry_core::{Collector, EndpointKey, Span, SpanId, TimeWindow, TraceId};

/// Two minutes of healthy traffic: baselines are learned and nothing is reported.
fn warmed_up() -> Harness {
    let mut harness = Harness::with_defaults();
    let reports = harness.run(120);
    assert!(
        opened(&reports).is_empty(),
        "warm-up opened incidents: {:?}",
        harness.engine.incidents().all()
    );
    harness
}

fn only_incident(harness: &Harness, ids: &[String]) -> Incident {
    assert_eq!(
        ids.len(),
        1,
        "expected exactly one incident, got {:#?}",
        harness.engine.incidents().all()
    );
    let incident = harness.engine.incidents().get(&ids[0]).expect("kept");
    assert_eq!(harness.engine.incidents().active().len(), 1);
    incident.clone()
}

fn affects(incident: &Incident, operation: &str) -> bool {
    incident
        .affected_endpoints
        .iter()
        .any(|endpoint| endpoint.operation == operation)
}

#[test]
fn latency_spike_in_payment_seen_through_checkout_is_one_incident_rooted_at_payment() {
    let mut harness = warmed_up();
    harness.shop.chaos.payment_delay_ms = 1000;

    let reports = harness.run(30);

    let incident = only_incident(&harness, &opened(&reports));
    assert_eq!(incident.root_cause.endpoint, "/payment");
    assert_eq!(incident.root_cause.kind, AnomalyKind::LatencySpike);
    assert_eq!(incident.affected_endpoints[0].operation, "/payment");
    assert!(affects(&incident, "/checkout"), "{incident:#?}");
    assert!(!affects(&incident, "/inventory"), "{incident:#?}");
    assert!(incident.alert_count >= 2);
}

#[test]
fn payment_slower_than_the_checkout_client_timeout_is_one_incident_rooted_at_payment() {
    // The seed's `delay /payment 3000` against the shop's 2 s client timeout: checkout answers
    // 504 after 2 s while payment carries on.
    let mut harness = warmed_up();
    harness.shop.chaos.checkout_timeout_ms = Some(2000);
    harness.shop.chaos.payment_delay_ms = 3000;

    let reports = harness.run(30);

    let incident = only_incident(&harness, &opened(&reports));
    assert_eq!(incident.root_cause.endpoint, "/payment");
    assert!(affects(&incident, "/checkout"), "{incident:#?}");
}

#[test]
fn error_storm_in_inventory_is_one_incident_rooted_at_inventory() {
    let mut harness = warmed_up();
    harness.shop.chaos.inventory_error_rate = 0.8;

    let reports = harness.run(30);

    let incident = only_incident(&harness, &opened(&reports));
    assert_eq!(incident.root_cause.endpoint, "/inventory");
    assert_eq!(incident.root_cause.kind, AnomalyKind::ErrorStorm);
    assert_eq!(incident.affected_endpoints[0].operation, "/inventory");
}

#[test]
fn cascading_payment_errors_seen_through_checkout_are_one_incident_rooted_at_payment() {
    let mut harness = warmed_up();
    harness.shop.chaos.payment_error_rate = 1.0;

    let reports = harness.run(30);

    let incident = only_incident(&harness, &opened(&reports));
    assert_eq!(incident.root_cause.endpoint, "/payment");
    assert_eq!(incident.root_cause.kind, AnomalyKind::ErrorStorm);
    assert!(affects(&incident, "/checkout"), "{incident:#?}");
}

#[test]
fn healthy_traffic_opens_no_incident() {
    let mut harness = Harness::with_defaults();

    let reports = harness.run(600);

    assert!(harness.engine.incidents().all().is_empty());
    let anomalies: Vec<_> = reports.iter().flat_map(|r| &r.anomalies).collect();
    assert!(anomalies.is_empty(), "{anomalies:#?}");
    assert!(reports.iter().all(|r| r.changes.is_empty()));
    let learned: usize = reports.iter().map(|r| r.learned_traces).sum();
    assert!(learned > 0, "healthy traces teach RCA normal self times");
}

#[test]
fn incident_auto_resolves_once_its_endpoints_stay_healthy() {
    let mut harness = warmed_up();
    harness.shop.chaos.payment_delay_ms = 1000;
    let ids = opened(&harness.run(30));
    let id = only_incident(&harness, &ids).id;
    harness.shop.chaos = Default::default();

    let reports = harness.run(120);

    let resolved: Vec<&str> = reports.iter().flat_map(|r| r.resolved()).collect();
    assert_eq!(resolved, [id.as_str()]);
    assert!(opened(&reports).is_empty());
    let incident = harness.engine.incidents().get(&id).expect("kept");
    assert_eq!(incident.status, IncidentStatus::Resolved);
    assert!(harness.engine.incidents().active().is_empty());
}

#[test]
fn resolved_incident_is_not_reopened_by_old_evidence_still_in_the_window() {
    let mut harness = warmed_up();
    harness.shop.chaos.payment_error_rate = 1.0;
    let ids = opened(&harness.run(30));
    let id = only_incident(&harness, &ids).id;
    harness.shop.chaos = Default::default();

    let resolved = harness.engine.resolve(&id, harness.now).expect("active");
    assert_eq!(resolved.resolved_at_unix_nanos, Some(harness.now));
    // The failing requests are still inside the detection window for the next 30 s.
    let quiet = harness.idle(30);
    let healthy = harness.run(60);

    assert!(opened(&quiet).is_empty() && opened(&healthy).is_empty());
    assert!(harness.engine.incidents().active().is_empty());
    assert_eq!(harness.engine.incidents().all().len(), 1);
}

#[test]
fn a_fault_that_persists_after_a_resolution_opens_a_new_incident() {
    let mut harness = warmed_up();
    harness.shop.chaos.payment_error_rate = 1.0;
    let ids = opened(&harness.run(30));
    let first = only_incident(&harness, &ids).id;
    harness.engine.resolve(&first, harness.now).expect("active");

    let reports = harness.run(30);

    let second = only_incident(&harness, &opened(&reports));
    assert_ne!(second.id, first);
    assert_eq!(second.root_cause.endpoint, "/payment");
    assert!(second.first_detected_unix_nanos > first_resolution(&harness, &first));
}

fn first_resolution(harness: &Harness, id: &str) -> u64 {
    harness
        .engine
        .incidents()
        .get(id)
        .and_then(|incident| incident.resolved_at_unix_nanos)
        .expect("resolved")
}

#[test]
fn resolving_through_the_engine_reports_unknown_and_resolved_ids() {
    let mut harness = warmed_up();
    assert_eq!(
        harness.engine.resolve("INC-1-1", harness.now).map(|i| i.id),
        Err(IncidentError::NotFound {
            id: "INC-1-1".into()
        })
    );
    harness.shop.chaos.inventory_error_rate = 0.8;
    let ids = opened(&harness.run(30));
    let id = only_incident(&harness, &ids).id;
    harness.engine.resolve(&id, harness.now).expect("active");

    let again = harness.engine.resolve(&id, harness.now + SEC);

    assert!(matches!(again, Err(IncidentError::AlreadyResolved { .. })));
}

#[test]
fn snapshot_round_trip_restores_incidents_and_baselines() {
    let mut harness = warmed_up();
    harness.shop.chaos.payment_delay_ms = 1000;
    let ids = opened(&harness.run(30));
    let id = only_incident(&harness, &ids).id;
    let snapshot = harness.engine.snapshot();
    assert!(!snapshot.baselines.is_empty());
    assert!(!snapshot.self_time_baselines.is_empty());

    let text = serde_json::to_string(&snapshot).expect("serializes");
    let parsed: EngineSnapshot = serde_json::from_str(&text).expect("parses");
    let exact: EngineSnapshot =
        serde_json::from_value(serde_json::to_value(&snapshot).expect("serializes"))
            .expect("deserializes");
    let config = EngineConfig {
        auto_resolve_cycles: 5,
        ..EngineConfig::default()
    };
    let restored = Engine::restore(config, exact).expect("valid config");

    assert_eq!(restored.incidents().all(), harness.engine.incidents().all());
    let (before, after) = (harness.engine.snapshot(), restored.snapshot());
    assert_eq!(after.baselines, before.baselines);
    assert_eq!(after.self_time_baselines, before.self_time_baselines);
    assert_eq!(after.watermarks, before.watermarks);
    assert_eq!(after.cause_watermarks, before.cause_watermarks);
    assert_eq!(restored.incidents().auto_resolve_cycles(), 5);
    assert_eq!(parsed.incidents.get(&id).map(|i| i.is_active()), Some(true));
}

#[test]
fn a_restored_engine_keeps_deduplicating_and_numbering() {
    let mut harness = warmed_up();
    harness.shop.chaos.payment_delay_ms = 1000;
    let ids = opened(&harness.run(30));
    let id = only_incident(&harness, &ids).id;
    let restored =
        Engine::restore(EngineConfig::default(), harness.engine.snapshot()).expect("valid config");
    harness.replace_engine(restored);

    // The restored engine starts with empty live windows and refills them from new traffic.
    let reports = harness.run(30);

    assert!(
        opened(&reports).is_empty(),
        "the fault is still the same incident"
    );
    let updated: Vec<&str> = reports.iter().flat_map(|r| r.updated()).collect();
    assert!(updated.contains(&id.as_str()));
}

#[test]
fn the_first_failing_span_can_be_looked_up_by_trace() {
    let mut harness = warmed_up();
    harness.shop.chaos.payment_error_rate = 1.0;
    let ids = opened(&harness.run(30));
    let incident = only_incident(&harness, &ids);
    let span = incident
        .root_cause
        .first_failing_span
        .expect("traces were sampled");

    let trace = harness
        .engine
        .reader()
        .trace(span.trace_id)
        .expect("still buffered");

    assert!(trace.iter().any(|s| s.span_id == span.span_id));
    assert!(harness.engine.reader().trace(TraceId::random()).is_none());
}

#[test]
fn topology_comes_from_the_buffered_traces() {
    let engine = Engine::new(EngineConfig::default()).expect("valid config");
    let collector = engine.collector();
    for i in 0..10 {
        let trace = TraceId::random();
        let root = Span::new(trace, SpanId::random(), "frontend", "/checkout")
            .with_timing(T0 + i * SEC, 80 * MS)
            .with_http_status(200);
        let call = Span::new(trace, SpanId::random(), "payments", "/payment")
            .with_parent(root.span_id)
            .with_timing(T0 + i * SEC + MS, 50 * MS)
            .with_http_status(if i < 2 { 500 } else { 200 });
        let _ = collector.record_batch(vec![root, call]);
    }

    let graph = engine.reader().topology(TimeWindow::new(T0, T0 + 10 * SEC));

    let edge = graph
        .edge("frontend", "payments")
        .expect("frontend calls payments");
    assert_eq!((edge.calls, edge.errors), (10, 2));
    assert!(
        engine
            .reader()
            .topology(TimeWindow::new(0, T0))
            .edges
            .is_empty()
    );
}

#[test]
fn a_cycle_reads_a_bounded_number_of_traces() {
    let config = EngineConfig {
        max_learn_traces: 7,
        ..EngineConfig::default()
    };
    let mut harness = Harness::new(config.clone());
    let healthy = harness.run(120);
    harness.shop.chaos.payment_error_rate = 1.0;
    let faulty = harness.run(30);

    assert!(healthy.iter().all(|r| r.learned_traces <= 7));
    for report in &faulty {
        let anomalous: std::collections::HashSet<&EndpointKey> =
            report.anomalies.iter().map(|a| &a.endpoint).collect();
        assert!(report.sampled_traces <= anomalous.len() * config.rca.max_traces_per_anomaly);
    }
    assert!(faulty.iter().any(|r| r.sampled_traces > 0));
}

#[test]
fn live_buckets_older_than_the_window_are_evicted() {
    let mut harness = warmed_up();
    assert!(!harness.engine.reader().live_endpoints().is_empty());

    let _ = harness.idle(60);

    assert!(harness.engine.reader().live_endpoints().is_empty());
}

#[test]
fn trace_buffer_stays_within_its_span_budget() {
    let config = EngineConfig {
        trace_buffer_max_spans: 500,
        ..EngineConfig::default()
    };
    let mut harness = Harness::new(config);

    let _ = harness.run(120);

    let stats = harness.engine.reader().trace_buffer_stats();
    assert!(stats.spans <= 500);
    assert!(stats.evicted_traces > 0);
}

#[test]
fn cycle_report_lists_changes_by_kind() {
    let mut harness = warmed_up();
    harness.shop.chaos.payment_delay_ms = 1000;

    let reports = harness.run(30);

    let changes: Vec<&IncidentChange> = reports.iter().flat_map(|r| &r.changes).collect();
    assert!(matches!(
        changes.first(),
        Some(IncidentChange::Opened { .. })
    ));
    let json = serde_json::to_value(&reports[reports.len() - 1]).expect("serializes");
    assert!(json["changes"].is_array() && json["endpoints"].is_array());
}

#[test]
fn engine_config_rejects_nonsense_with_the_field_named() {
    let zero_bucket = EngineConfig {
        live_bucket_secs: 0.0,
        ..EngineConfig::default()
    };
    assert_eq!(
        Engine::new(zero_bucket)
            .map(|_| ())
            .unwrap_err()
            .to_string(),
        "invalid engine config: live_bucket_secs is 0, expected a finite number greater than 0 and at most analysis_window_secs"
    );
    let no_buffer = EngineConfig {
        trace_buffer_max_spans: 0,
        ..EngineConfig::default()
    };
    assert_eq!(
        no_buffer.validate().unwrap_err().to_string(),
        "invalid engine config: trace_buffer_max_spans is 0, expected an integer of at least 1"
    );
    let partial: EngineConfig = serde_json::from_str(
        r#"{"auto_resolve_cycles": 5, "analyzer": {"latency_multiplier": 4.0}}"#,
    )
    .expect("partial config");
    assert_eq!(partial.auto_resolve_cycles, 5);
    assert_eq!(partial.analyzer.latency_multiplier, 4.0);
    assert!(serde_json::from_str::<EngineConfig>(r#"{"auto_resolve_cycle": 5}"#).is_err());
}

#[test]
fn a_small_learning_budget_still_gives_every_endpoint_a_self_time_baseline() {
    let config = EngineConfig {
        max_learn_traces: 2,
        ..EngineConfig::default()
    };
    let mut harness = Harness::new(config.clone());

    let reports = harness.run(120);

    assert!(reports.iter().all(|r| r.learned_traces <= 2));
    let snapshot = harness.engine.snapshot();
    assert!(!snapshot.baselines.is_empty());
    for baseline in &snapshot.baselines {
        let learned = snapshot
            .self_time_baselines
            .iter()
            .find(|learned| learned.endpoint == baseline.endpoint)
            .unwrap_or_else(|| panic!("no self-time baseline for {}", baseline.endpoint));
        assert!(
            learned.is_ready(config.analyzer.min_samples_for_baseline),
            "{learned:?}"
        );
    }
}
