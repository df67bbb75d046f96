//! Logs, exceptions and deployments as evidence: failures only the logs tell, new exception
//! types, and deployments blamed (or not) as root causes.

use aiops_engine::{DeploymentCause, Engine, EngineConfig, Incident};
use aiops_telemetry_core::{
    Change, ChangeKind, ChangeSource, LogRecord, LogSeverity, Span, SpanId, SpanKind, TraceId,
};

const SEC: u64 = 1_000_000_000;
const MS: u64 = 1_000_000;
const T0: u64 = 1_700_000_000 * SEC;

/// How the pricing service behaves for one request.
#[derive(Clone, Copy, Default)]
struct Pricing {
    version: &'static str,
    /// It fails, saying so only in an ERROR log of its span (status unset, 200).
    fails_in_logs: bool,
    /// It fails with a 500.
    fails: bool,
    /// Its span carries an exception event of this type (status unset).
    exception: Option<&'static str>,
    /// It takes this much longer than its usual 20 ms.
    extra_ms: u64,
}

struct World {
    engine: Engine,
    now: u64,
    /// Whether log records are sent before their spans (else after).
    logs_first: bool,
    /// Whether log records are held back until just after the next cycle (a log pipeline
    /// slower than the traces').
    logs_a_cycle_late: bool,
    /// Records held back for after the next cycle.
    held_logs: Vec<LogRecord>,
    /// The kind of the pricing handler's span (older instrumentation leaves it unspecified,
    /// which reads as internal).
    pricing_kind: SpanKind,
    /// Whether pricing calls a rates service that logs a benign ERROR ("rate cache miss") in
    /// three requests of twenty, healthy or not ([`routine_error`]).
    rates_log_routine_errors: bool,
}

impl World {
    fn new() -> Self {
        Self {
            engine: Engine::new(EngineConfig::default()).expect("valid"),
            now: T0,
            logs_first: false,
            logs_a_cycle_late: false,
            held_logs: Vec::new(),
            pricing_kind: SpanKind::Server,
            rates_log_routine_errors: false,
        }
    }

    /// One checkout calling pricing at `start`.
    fn request(&self, start: u64, pricing: Pricing) -> (Vec<Span>, Vec<LogRecord>) {
        let trace = TraceId::random();
        let failed = pricing.fails || pricing.fails_in_logs || pricing.exception.is_some();
        let root = Span::new(trace, SpanId::random(), "checkout", "POST /checkout")
            .with_kind(SpanKind::Server)
            .with_timing(start, (40 + pricing.extra_ms) * MS)
            .with_http_status(if failed { 500 } else { 200 })
            .with_attribute("service.version", "7.0.0");
        let mut price = Span::new(trace, SpanId::random(), "pricing", "GET /price")
            .with_kind(self.pricing_kind)
            .with_parent(root.span_id)
            .with_timing(start + 5 * MS, (20 + pricing.extra_ms) * MS)
            .with_http_status(if pricing.fails { 500 } else { 200 })
            .with_attribute("service.version", pricing.version)
            .with_attribute("k8s.pod.name", "pricing-a");
        if let Some(kind) = pricing.exception {
            price = price.with_attribute("exception.type", kind);
        }
        let mut logs = vec![
            LogRecord::new(
                "pricing",
                start + 6 * MS,
                LogSeverity::INFO,
                format!("priced cart {} items", start % 7),
            )
            .in_span(trace, price.span_id),
        ];
        if pricing.fails_in_logs {
            logs.push(
                LogRecord::new(
                    "pricing",
                    start + 20 * MS,
                    LogSeverity::ERROR,
                    format!("price lookup failed for sku-{}: null price\n\tat Pricing.lookup(Pricing.java:42)", start % 1000),
                )
                .in_span(trace, price.span_id),
            );
        }
        let mut spans = vec![root, price];
        if self.rates_log_routine_errors {
            let rate = Span::new(trace, SpanId::random(), "rates", "GET /rate")
                .with_kind(SpanKind::Server)
                .with_parent(spans[1].span_id)
                .with_timing(start + 7 * MS, 5 * MS)
                .with_http_status(200);
            if routine_error((start - T0) / (100 * MS)) {
                logs.push(
                    LogRecord::new(
                        "rates",
                        start + 11 * MS,
                        LogSeverity::ERROR,
                        format!(
                            "rate cache miss for currency c-{}, reading the table",
                            start % 97
                        ),
                    )
                    .in_span(trace, rate.span_id),
                );
            }
            spans.push(rate);
        }
        (spans, logs)
    }

    /// `seconds` of ten requests a second, `pricing` choosing each one's behaviour, with a cycle
    /// every five seconds.
    fn run(&mut self, seconds: u64, pricing: impl Fn(u64, u64) -> Pricing) {
        let spans_in = self.engine.collector();
        let logs_in = self.engine.log_collector();
        for second in 0..seconds {
            for i in 0..10 {
                let start = self.now + i * 100 * MS;
                let (spans, logs) = self.request(start, pricing(second, i));
                if self.logs_a_cycle_late {
                    let _ = spans_in.record_batch(spans);
                    self.held_logs.extend(logs);
                } else if self.logs_first {
                    let _ = logs_in.record_logs(logs);
                    let _ = spans_in.record_batch(spans);
                } else {
                    let _ = spans_in.record_batch(spans);
                    let _ = logs_in.record_logs(logs);
                }
            }
            self.now += SEC;
            if (second + 1) % 5 == 0 {
                let _ = self.engine.run_cycle(self.now);
                let _ = logs_in.record_logs(std::mem::take(&mut self.held_logs));
            }
        }
    }

    fn warm_up(&mut self) {
        self.run(180, |_, _| healthy("1.0.0"));
        assert!(
            self.engine.incidents().all().is_empty(),
            "healthy traffic opens nothing: {:#?}",
            self.engine.incidents().all()
        );
    }

    fn only_incident(&self) -> Incident {
        let active = self.engine.incidents().active();
        assert_eq!(active.len(), 1, "{:#?}", self.engine.incidents().all());
        active[0].clone()
    }
}

/// The deployment `incident` names as its root cause; fails the test when it names none.
fn blamed_deployment(incident: &Incident) -> &DeploymentCause {
    incident
        .evidence
        .deployment
        .as_ref()
        .unwrap_or_else(|| panic!("blamed: {incident:#?}"))
}

/// Whether the rates call of request `n` (counted from T0, ten a second) logs its routine
/// ERROR: 15% of them, under the error-rate threshold, so that rates never looks failing.
fn routine_error(n: u64) -> bool {
    matches!(n % 20, 1 | 5 | 9)
}

fn healthy(version: &'static str) -> Pricing {
    Pricing {
        version,
        ..Pricing::default()
    }
}

fn code_fault_in_logs(logs_first: bool) {
    let mut world = World::new();
    world.logs_first = logs_first;
    world.warm_up();
    world.run(30, |_, i| Pricing {
        fails_in_logs: i % 2 == 0,
        ..healthy("1.0.0")
    });
    let incident = world.only_incident();
    assert_eq!(incident.root_cause.service, "pricing", "{incident:#?}");
    assert_eq!(incident.root_cause.endpoint, "GET /price");
    let pattern = incident
        .evidence
        .log_patterns
        .iter()
        .find(|p| p.error)
        .unwrap_or_else(|| panic!("an error template: {incident:#?}"));
    assert!(pattern.new);
    assert_eq!(pattern.template, "price lookup failed for <*> null price");
    assert_eq!(pattern.operation, "GET /price");
    assert!(!pattern.examples.is_empty() && pattern.examples.len() <= 3);
    assert!(incident.evidence.deployment.is_none());
}

#[test]
fn error_logs_after_their_spans_name_the_service_that_logged_them() {
    code_fault_in_logs(false);
}

#[test]
fn error_logs_before_their_spans_name_the_service_that_logged_them() {
    code_fault_in_logs(true);
}

#[test]
fn error_logs_of_a_handler_span_of_internal_kind_name_its_service() {
    let mut world = World::new();
    world.pricing_kind = SpanKind::Internal;
    world.warm_up();
    world.run(30, |_, i| Pricing {
        fails_in_logs: i % 2 == 0,
        ..healthy("1.0.0")
    });
    let incident = world.only_incident();
    assert_eq!(incident.root_cause.service, "pricing", "{incident:#?}");
}

#[test]
fn error_logs_a_cycle_after_their_spans_still_name_the_service_that_logged_them() {
    let mut world = World::new();
    world.logs_a_cycle_late = true;
    world.warm_up();
    // Each cycle sees the checkouts of its last interval fail with nothing failing below
    // them: the ERROR logs of pricing arrive only after the cycle. The older traces, by then
    // with their logs, show where it started.
    world.run(60, |_, i| Pricing {
        fails_in_logs: i % 2 == 0,
        ..healthy("1.0.0")
    });
    let incident = world.only_incident();
    assert_eq!(incident.root_cause.service, "pricing", "{incident:#?}");
    assert_eq!(incident.root_cause.endpoint, "GET /price");
    assert_eq!(
        world.engine.incidents().all().len(),
        1,
        "no incident blames checkout: {:#?}",
        world.engine.incidents().all()
    );
}

#[test]
fn a_callee_that_routinely_logs_errors_is_not_named_below_a_defect_that_logs_news() {
    routine_errors_below_a_defect(false);
}

#[test]
fn routine_error_logs_that_come_before_their_spans_are_not_named_either() {
    routine_errors_below_a_defect(true);
}

fn routine_errors_below_a_defect(logs_first: bool) {
    let mut world = World::new();
    world.logs_first = logs_first;
    world.rates_log_routine_errors = true;
    world.warm_up();
    // A quarter of the checkouts fail; below three in five of their pricing spans (failed by
    // pricing's new ERROR template), the rates span that its routine ERROR failed is the
    // deepest failure.
    world.run(30, |second, i| Pricing {
        fails_in_logs: routine_error((second % 2) * 10 + i)
            || matches!(i, 3 | 7) && second % 2 == 1,
        ..healthy("1.0.0")
    });
    let incident = world.only_incident();
    assert_eq!(incident.root_cause.service, "pricing", "{incident:#?}");
    assert_eq!(incident.root_cause.endpoint, "GET /price");
}

#[test]
fn a_new_exception_type_is_named_in_the_incident() {
    let mut world = World::new();
    world.warm_up();
    world.run(30, |_, i| Pricing {
        exception: (i % 2 == 0).then_some("java.lang.NullPointerException"),
        ..healthy("1.0.0")
    });
    let incident = world.only_incident();
    assert_eq!(incident.root_cause.service, "pricing", "{incident:#?}");
    let named: Vec<&str> = incident
        .evidence
        .new_exceptions
        .iter()
        .map(|e| e.description.as_str())
        .collect();
    assert_eq!(
        named,
        ["new exception java.lang.NullPointerException in pricing GET /price"]
    );
}

#[test]
fn a_canary_that_fails_is_the_root_cause_with_its_versions_and_the_insight() {
    let mut world = World::new();
    world.warm_up();
    // Three requests in ten go to 2.0.0, and two of those three fail.
    world.run(30, |second, i| match i {
        0..=2 => Pricing {
            fails: i < 2 || second % 2 == 0,
            ..healthy("2.0.0")
        },
        _ => healthy("1.0.0"),
    });
    let incident = world.only_incident();
    assert_eq!(incident.root_cause.service, "pricing", "{incident:#?}");
    let deployment = blamed_deployment(&incident);
    assert_eq!(deployment.version, "2.0.0");
    assert_eq!(deployment.previous_version.as_deref(), Some("1.0.0"));
    assert_eq!(deployment.source, ChangeSource::Observed);
    assert_eq!(deployment.old_versions.bad, 0);
    assert!(
        deployment
            .description
            .starts_with("Deployment of pricing 2.0.0 (from 1.0.0)")
    );
    let insight = incident
        .evidence
        .insights
        .iter()
        .find(|i| i.key == "service.version")
        .unwrap_or_else(|| panic!("a version insight: {incident:#?}"));
    assert_eq!(insight.value, "2.0.0");
    assert!(
        insight.anomalous_share > 0.9 && insight.overall_share < 0.5,
        "{insight:?}"
    );
    assert!(
        insight
            .description
            .contains("of failing requests carry service.version=2.0.0")
    );
    assert!(
        incident
            .evidence
            .changes
            .iter()
            .any(|c| c.kind == ChangeKind::Deployment && c.version.as_deref() == Some("2.0.0")),
        "{incident:#?}"
    );
}

#[test]
fn a_slow_ten_percent_canary_is_the_root_cause_by_its_latency_against_the_old_version() {
    let mut world = World::new();
    world.warm_up();
    // One request in ten goes to 2.0.0, which takes 150 ms longer; none fails.
    world.run(60, |_, i| match i {
        0 => Pricing {
            extra_ms: 150,
            ..healthy("2.0.0")
        },
        _ => healthy("1.0.0"),
    });
    let incident = world.only_incident();
    assert_eq!(incident.root_cause.service, "pricing", "{incident:#?}");
    let deployment = blamed_deployment(&incident);
    assert_eq!(deployment.version, "2.0.0");
    assert_eq!(deployment.old_versions.bad, 0, "{deployment:?}");
    assert!(
        incident
            .anomalies
            .iter()
            .any(|a| a.description.starts_with("Latency spike in version 2.0.0")),
        "{incident:#?}"
    );
}

#[test]
fn a_deployment_whose_old_version_fails_the_same_way_is_not_blamed() {
    let mut world = World::new();
    world.warm_up();
    world.run(30, |_, i| Pricing {
        fails: i % 2 == 0,
        ..healthy(if i < 5 { "2.0.0" } else { "1.0.0" })
    });
    let incident = world.only_incident();
    assert_eq!(incident.root_cause.service, "pricing");
    assert!(incident.evidence.deployment.is_none(), "{incident:#?}");
    assert!(
        !incident.evidence.changes.is_empty(),
        "the change is still listed"
    );
}

#[test]
fn a_healthy_deployment_long_before_a_fault_is_listed_but_not_blamed() {
    let mut world = World::new();
    world.warm_up();
    world.run(300, |_, _| healthy("2.0.0"));
    assert!(
        world.engine.incidents().all().is_empty(),
        "a healthy deployment opens nothing"
    );
    world.run(30, |_, i| Pricing {
        fails: i % 2 == 0,
        ..healthy("2.0.0")
    });
    let incident = world.only_incident();
    assert!(incident.evidence.deployment.is_none(), "{incident:#?}");
    assert_eq!(incident.evidence.changes.len(), 1);
}

#[test]
fn a_reported_deployment_at_the_start_of_a_fault_is_blamed() {
    let mut world = World::new();
    world.warm_up();
    let _ = world.engine.change_collector().record_change(Change {
        service: "pricing".into(),
        kind: ChangeKind::Deployment,
        time_unix_nanos: world.now,
        version: Some("1.0.1".into()),
        previous_version: Some("1.0.0".into()),
        description: None,
        source: ChangeSource::Reported,
    });
    world.run(30, |_, i| Pricing {
        fails: i % 2 == 0,
        ..healthy("1.0.1")
    });
    let incident = world.only_incident();
    let deployment = incident.evidence.deployment.as_ref().expect("blamed");
    assert_eq!(deployment.version, "1.0.1");
    assert_eq!(deployment.source, ChangeSource::Reported);
}

#[test]
fn a_log_flood_beyond_the_queue_is_dropped_and_counted() {
    let engine = Engine::new(EngineConfig {
        evidence: aiops_engine::EvidenceConfig {
            max_queued_logs: 5,
            ..Default::default()
        },
        ..EngineConfig::default()
    })
    .expect("valid");
    let records: Vec<LogRecord> = (0..8)
        .map(|i| LogRecord::new("svc", T0 + i, LogSeverity::INFO, "hello"))
        .collect();
    let outcome = engine.log_collector().record_logs(records);
    assert_eq!((outcome.accepted, outcome.dropped), (5, 3));
    let stats = engine.evidence_stats();
    assert_eq!((stats.dropped_logs, stats.queued_logs), (3, 5));
}

#[test]
fn a_ten_percent_canary_too_thin_for_the_error_rate_is_caught_by_comparing_versions() {
    let mut world = World::new();
    world.warm_up();
    // One request in ten goes to 2.0.0, and it fails: 10% errors overall.
    world.run(30, |_, i| match i {
        0 => Pricing {
            fails: true,
            ..healthy("2.0.0")
        },
        _ => healthy("1.0.0"),
    });
    let incident = world.only_incident();
    assert_eq!(incident.root_cause.service, "pricing", "{incident:#?}");
    assert!(
        incident.root_cause.description.contains("version 2.0.0")
            || incident
                .anomalies
                .iter()
                .any(|a| a.description.contains("version 2.0.0")),
        "{incident:#?}"
    );
    let deployment = incident.evidence.deployment.as_ref().expect("blamed");
    assert_eq!(deployment.version, "2.0.0");
}

#[test]
fn a_healthy_canary_raises_nothing() {
    let mut world = World::new();
    world.warm_up();
    world.run(60, |_, i| healthy(if i == 0 { "2.0.0" } else { "1.0.0" }));
    assert!(world.engine.incidents().all().is_empty());
    assert_eq!(
        world.engine.changes().len(),
        1,
        "the deployment is remembered"
    );
}

impl World {
    /// Restarts the engine from its snapshot, saved and read back as JSON.
    fn restart(&mut self) {
        let saved = serde_json::to_string(&self.engine.snapshot()).expect("serializes");
        let snapshot = serde_json::from_str(&saved).expect("reads back");
        self.engine = Engine::restore(EngineConfig::default(), snapshot).expect("valid");
    }
}

#[test]
fn versions_seen_before_a_restart_make_a_canary_after_it_a_deployment() {
    let mut world = World::new();
    world.warm_up();
    world.restart();
    // The first request after the restart is the canary's: without the versions seen before,
    // 2.0.0 would be what pricing ran and 1.0.0 the newcomer.
    world.run(30, |second, i| match i {
        0..=2 => Pricing {
            fails: i < 2 || second % 2 == 0,
            ..healthy("2.0.0")
        },
        _ => healthy("1.0.0"),
    });
    let observed: Vec<_> = world
        .engine
        .changes()
        .into_iter()
        .map(|c| (c.version, c.previous_version))
        .collect();
    assert_eq!(
        observed,
        [(Some("2.0.0".into()), Some("1.0.0".into()))],
        "one deployment, from the version seen before the restart"
    );
    let incident = world.only_incident();
    let deployment = blamed_deployment(&incident);
    assert_eq!(
        (
            deployment.version.as_str(),
            deployment.previous_version.as_deref()
        ),
        ("2.0.0", Some("1.0.0"))
    );
}

#[test]
fn a_deployment_just_before_a_restart_is_listed_on_an_incident_after_it() {
    let mut world = World::new();
    world.warm_up();
    world.run(10, |_, _| healthy("2.0.0"));
    world.restart();
    world.run(30, |_, i| Pricing {
        fails: i % 2 == 0,
        ..healthy("2.0.0")
    });
    let incident = world.only_incident();
    let listed: Vec<_> = incident
        .evidence
        .changes
        .iter()
        .map(|c| (c.version.clone(), c.previous_version.clone()))
        .collect();
    assert_eq!(
        listed,
        [(Some("2.0.0".into()), Some("1.0.0".into()))],
        "{incident:#?}"
    );
}
