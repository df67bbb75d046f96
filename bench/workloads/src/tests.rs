//! The generator's shape: what real instrumentation would have produced.

use std::collections::HashMap;

use aiops_telemetry_core::{Span, SpanId, SpanKind};
use rand::SeedableRng;
use rand::rngs::StdRng;

use crate::case::{Case, FaultClass, HealthyClass, Scenario, T0};
use crate::export::Exporter;
use crate::fault::{Conditions, Effect};
use crate::topology::{Target, Topology};
use crate::trace::{self, Emitted};
use crate::traffic;

const SECOND: u64 = 1_000_000_000;

/// `requests` requests of `case` under `effects`, one every 100 ms from `T0`.
fn requests(case: &Case, effects: &[Effect], requests: u64, seed: u64) -> Vec<Vec<Emitted>> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..requests)
        .map(|i| {
            let entry = traffic::entry(&mut rng, &case.topology);
            let start = T0 + i * SECOND / 10;
            trace::request(
                &mut rng,
                &case.topology,
                Conditions(effects),
                1.0,
                entry,
                start,
            )
        })
        .collect()
}

fn healthy_case(seed: u64) -> Case {
    Case::draw(Scenario::Healthy(HealthyClass::Steady), seed)
}

fn by_id(trace: &[Emitted]) -> HashMap<SpanId, &Emitted> {
    trace.iter().map(|e| (e.span.span_id, e)).collect()
}

fn is_legacy(topology: &Topology, service: usize) -> bool {
    topology.services[service].legacy
}

#[test]
fn every_call_between_services_is_a_client_span_with_a_server_child_and_gaps() {
    for seed in 1..=12 {
        let case = healthy_case(seed);
        let topology = &case.topology;
        let mut calls = 0;
        for trace in requests(&case, &[], 100, seed) {
            let spans = by_id(&trace);
            assert_eq!(
                trace
                    .iter()
                    .filter(|e| e.span.parent_span_id.is_none())
                    .count(),
                1
            );
            for child in &trace {
                let Some(parent) = child.span.parent_span_id.map(|p| spans[&p]) else {
                    continue;
                };
                assert!(child.span.start_unix_nanos >= parent.span.start_unix_nanos);
                if child.service == parent.service {
                    continue;
                }
                calls += 1;
                if !is_legacy(topology, parent.service) {
                    assert_eq!(parent.span.kind, SpanKind::Client, "{:?}", parent.span);
                }
                if !is_legacy(topology, child.service) {
                    assert_eq!(child.span.kind, SpanKind::Server, "{:?}", child.span);
                }
                assert!(
                    child.span.start_unix_nanos > parent.span.start_unix_nanos,
                    "a gap before"
                );
                // A gap after, unless the caller gave up waiting at its client timeout.
                let timeout_ms = topology.services[parent.service].client_timeout_ms;
                assert!(
                    child.span.end_unix_nanos() < parent.span.end_unix_nanos()
                        || (parent.span.duration_ms() - timeout_ms).abs() < 0.01,
                    "a gap after"
                );
                // A client span has exactly this one child.
                let siblings = trace
                    .iter()
                    .filter(|e| e.span.parent_span_id == Some(parent.span.span_id))
                    .count();
                assert_eq!(siblings, 1);
            }
        }
        assert!(calls > 100, "seed {seed}: {calls} calls");
    }
}

#[test]
fn client_span_names_carry_no_route_and_say_whom_they_call() {
    let case = healthy_case(3);
    let mut seen = 0;
    for trace in requests(&case, &[], 200, 3) {
        for e in trace.iter().filter(|e| e.span.kind == SpanKind::Client) {
            seen += 1;
            assert!(!e.span.operation.contains('/') || e.span.attribute("rpc.system").is_some());
            assert!(e.span.attribute("server.address").is_some(), "{:?}", e.span);
            assert!(e.span.attribute("service.version").is_some());
        }
    }
    assert!(seen > 0);
}

#[test]
fn database_spans_have_no_children_and_carry_db_system() {
    let mut databases = 0;
    for seed in 1..=10 {
        let case = healthy_case(seed);
        for trace in requests(&case, &[], 100, seed) {
            for e in &trace {
                let Some(system) = e.span.attribute("db.system") else {
                    continue;
                };
                databases += 1;
                assert!(["postgresql", "mysql", "mongodb", "redis", "memcached"].contains(&system));
                assert!(e.span.attribute("server.address").is_some());
                assert!(
                    !trace
                        .iter()
                        .any(|c| c.span.parent_span_id == Some(e.span.span_id))
                );
                if !is_legacy(&case.topology, e.service) {
                    assert_eq!(e.span.kind, SpanKind::Client);
                }
            }
        }
    }
    assert!(databases > 500, "{databases}");
}

#[test]
fn batching_delivers_out_of_order_across_services() {
    let case = healthy_case(5);
    let mut rng = StdRng::seed_from_u64(5);
    let mut exporter = Exporter::new(&mut rng, case.topology.services.len());
    for trace in requests(&case, &[], 300, 5) {
        for e in trace {
            exporter.submit(e.service, e.span);
        }
    }
    let mut delivered: Vec<Span> = Vec::new();
    let mut now = T0;
    while exporter.pending() > 0 {
        now += SECOND / 10;
        delivered.extend(exporter.arrived(now).into_iter().flatten());
    }
    let ends: Vec<u64> = delivered.iter().map(Span::end_unix_nanos).collect();
    let inversions = ends.windows(2).filter(|w| w[1] + SECOND < w[0]).count();
    assert!(
        inversions > 10,
        "spans ending a second apart arrive in reverse: {inversions}"
    );
    let position: HashMap<SpanId, usize> = delivered
        .iter()
        .enumerate()
        .map(|(i, s)| (s.span_id, i))
        .collect();
    let children_first = delivered
        .iter()
        .filter(|s| {
            s.parent_span_id
                .is_some_and(|p| position[&p] > position[&s.span_id])
        })
        .count();
    let parents_first = delivered
        .iter()
        .filter(|s| {
            s.parent_span_id
                .is_some_and(|p| position[&p] < position[&s.span_id])
        })
        .count();
    assert!(
        children_first > 100 && parents_first > 100,
        "{children_first} / {parents_first}"
    );
}

#[test]
fn network_delay_grows_the_callers_client_spans_not_the_callees_server_spans() {
    let case = Case::draw(Scenario::Fault(FaultClass::NetworkDelay, 2), 21);
    let Effect::NetworkDelay { service, .. } = case.faults[0].injected.effect else {
        panic!("a network delay");
    };
    let delay = [Effect::NetworkDelay {
        service,
        extra_ms: 200.0,
    }];
    let median_ms = |effects: &[Effect]| {
        let (mut clients, mut servers) = (Vec::new(), Vec::new());
        for trace in requests(&case, effects, 600, 21) {
            let spans = by_id(&trace);
            for e in trace.iter().filter(|e| e.service == service) {
                let Some(parent) = e.span.parent_span_id.map(|p| spans[&p]) else {
                    continue;
                };
                if parent.service != service {
                    servers.push(e.span.duration_ms());
                    clients.push(parent.span.duration_ms());
                }
            }
        }
        assert!(clients.len() > 50, "the callee is called");
        (median(clients), median(servers))
    };
    let (healthy_client, healthy_server) = median_ms(&[]);
    let (slow_client, slow_server) = median_ms(&delay);
    assert!(
        slow_client > healthy_client + 150.0,
        "{healthy_client} -> {slow_client}"
    );
    assert!((slow_server - healthy_server).abs() < 0.2 * healthy_server + 1.0);
}

#[test]
fn errors_fault_fails_the_service_and_propagates() {
    let case = Case::draw(Scenario::Fault(FaultClass::ErrorsWithStatus, 2), 31);
    let node = &case.faults[0].truth.node;
    let effects = [case.faults[0].injected.effect.clone()];
    let failed = requests(&case, &effects, 400, 31)
        .into_iter()
        .flatten()
        .filter(|e| e.span.service == *node && e.span.kind != SpanKind::Client)
        .filter(|e| e.span.http_status.is_some_and(|c| c >= 500) || e.span.is_error())
        .count();
    let service = &case.topology.services[case
        .topology
        .services
        .iter()
        .position(|s| s.name == *node)
        .expect("a service")];
    let visible = !(service.legacy && service.protocol == crate::topology::Protocol::Grpc);
    assert_eq!(
        failed > 20,
        visible,
        "{failed} failed server spans in {node}"
    );
}

#[test]
fn not_every_trace_goes_everywhere() {
    let case = healthy_case(8);
    let sizes: Vec<usize> = requests(&case, &[], 200, 8).iter().map(Vec::len).collect();
    let (min, max) = (sizes.iter().min(), sizes.iter().max());
    assert!(min < max, "{min:?} {max:?}");
    let optional = case
        .topology
        .operations()
        .flat_map(|op| case.topology.operation(op).stages.iter().flatten())
        .any(|c| c.probability < 1.0 || matches!(c.target, Target::CacheAside { .. }));
    assert!(optional);
}

#[test]
fn the_same_seed_gives_the_same_spans() {
    for scenario in [
        Scenario::Fault(FaultClass::TwoFaults, 1),
        Scenario::Fault(FaultClass::SlowDependency, 0),
        Scenario::Healthy(HealthyClass::NoisyDatabase),
    ] {
        let (a, b) = (Case::draw(scenario, 77), Case::draw(scenario, 77));
        assert_eq!(format!("{:?}", a.topology), format!("{:?}", b.topology));
        assert_eq!(a.faults, b.faults);
        let effects = a.effects_at(a.fault_start_ns());
        assert_eq!(requests(&a, &effects, 50, 9), requests(&b, &effects, 50, 9));
        let other = Case::draw(scenario, 78);
        assert_ne!(format!("{:?}", a.topology), format!("{:?}", other.topology));
    }
}

#[test]
fn two_faults_are_in_unrelated_services() {
    for seed in 0..20 {
        let case = Case::draw(Scenario::Fault(FaultClass::TwoFaults, 0), seed);
        let index = |node: &str| case.topology.services.iter().position(|s| s.name == node);
        let (a, b) = (
            index(&case.faults[0].truth.node).expect("a service"),
            index(&case.faults[1].truth.node).expect("a service"),
        );
        assert!(case.topology.unrelated(a, b));
    }
}

#[test]
fn systems_have_5_to_30_services_and_dependencies_named_by_the_rule() {
    for seed in 0..40 {
        let case = healthy_case(seed);
        let topology = &case.topology;
        assert!((5..=30).contains(&topology.services.len()));
        assert!(!topology.dependencies.is_empty());
        let mut names: Vec<String> = topology
            .dependencies
            .iter()
            .map(|d| d.node_name())
            .collect();
        names.sort();
        names.dedup();
        assert_eq!(
            names.len(),
            topology.dependencies.len(),
            "node names are distinct"
        );
    }
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

#[test]
fn two_runs_of_the_same_case_print_the_same_report() {
    // A small system (5 services) with a minute of warm-up: a few seconds unoptimised.
    let plan = [crate::suite::Planned {
        scenario: Scenario::Fault(FaultClass::NetworkDelay, 1),
        seed: 1004,
    }];
    let config = crate::engine::EngineConfig::default();
    let printed = || {
        let finished = crate::suite::run_all(&plan, &config, 1, &|_| {});
        let scores: Vec<_> = finished.iter().map(|f| f.score.clone()).collect();
        let mut out = crate::report::tables(&scores);
        for done in &finished {
            out.push_str(
                &crate::report::miss(&done.case, &done.score, &done.outcome).unwrap_or_default(),
            );
            out.push_str(&format!(
                "{:?}\n{:?}\n{} {} {:?}\n",
                done.outcome.incidents,
                done.outcome.sightings,
                done.outcome.requests,
                done.outcome.spans,
                done.outcome.cycles
            ));
        }
        out
    };
    let first = printed();
    assert!(first.contains("**Targets:**"), "{first}");
    assert_eq!(first, printed());
}

#[test]
fn log_cases_have_a_service_with_routine_error_lines_below_the_defect_when_it_calls_one() {
    use crate::evidence::EvidenceClass;
    let mut below = 0;
    for seed in 0..20 {
        let case = Case::draw(Scenario::Evidence(EvidenceClass::LoggedDefect, 0), seed);
        let Some(Effect::LoggedDefect { op, .. }) = case.faults.first().map(|f| &f.injected.effect)
        else {
            panic!("a logged defect: {case:?}");
        };
        let routine: Vec<(usize, f64)> = case
            .effects_at(T0)
            .iter()
            .filter_map(|effect| match *effect {
                Effect::RoutineErrors { service, share } => Some((service, share)),
                _ => None,
            })
            .collect();
        let [(service, share)] = routine[..] else {
            panic!("one service with routine errors from the start: {routine:?}");
        };
        assert!(
            (0.02..0.06).contains(&share),
            "far under the error threshold: {share}"
        );
        assert_ne!(service, op.service);
        let callees = case.topology.callee_services(*op);
        if !callees.is_empty() {
            assert!(
                callees.contains(&service),
                "{service} is not called by {op:?}"
            );
            below += 1;
        }
    }
    assert!(below > 0, "some defects call a service");
}

#[test]
fn on_a_healthy_day_calls_rarely_time_out() {
    // Two systems whose clients' drawn timeouts sat below what their calls normally take:
    // most of those calls timed out before the fault, a broken system rather than a healthy
    // one. Their timeouts are raised above the calls.
    for (scenario, seed) in [
        (Scenario::Fault(FaultClass::SilentEarlyReturn, 1), 5_016_012),
        (Scenario::Fault(FaultClass::Timeout, 2), 5_020_008),
    ] {
        let case = Case::draw(scenario, seed);
        let (mut calls, mut timed_out) = (0, 0);
        for trace in requests(&case, &[], 500, seed) {
            let spans = by_id(&trace);
            for child in &trace {
                let Some(parent) = child.span.parent_span_id.map(|p| spans[&p]) else {
                    continue;
                };
                if child.service == parent.service {
                    continue;
                }
                calls += 1;
                let timeout_ms = case.topology.services[parent.service].client_timeout_ms;
                timed_out += u64::from((parent.span.duration_ms() - timeout_ms).abs() < 0.01);
            }
        }
        let share = timed_out as f64 / f64::from(calls);
        assert!(
            share < 0.005,
            "seed {seed}: {timed_out} of {calls} calls timed out"
        );
    }
}
