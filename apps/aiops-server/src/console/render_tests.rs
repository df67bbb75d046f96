//! The pages' markup from hand-made views: what the overview lists first, what the map lights
//! and how it lays out services and dependencies, which actions an incident offers.

use aiops_analyzer::{AnomalyKind, HealthStatus, Severity};
use aiops_engine::IncidentStatus;

use super::incident::{IncidentStory, actions};
use super::map::{MapEndpoint, ServiceMap};
use super::overview::{EndpointRow, Overview, sort_least_healthy_first};
use super::{incident, map, overview};
use crate::views::endpoint::EndpointName;
use crate::views::format::Window;
use crate::views::incident::{Candidate, Incident, RootCause};
use crate::views::metrics::{EndpointMetrics, Health};
use crate::views::topology::{DependencyEdge, Topology};

fn window() -> Window {
    Window {
        start: "2026-01-20T10:00:00.000Z".to_owned(),
        end: "2026-01-20T10:00:30.000Z".to_owned(),
    }
}

fn incident(id: &str, service: &str, endpoint: &str, affected: &[&str]) -> Incident {
    Incident {
        id: id.to_owned(),
        severity: Severity::High,
        title: format!("Latency spike detected in {endpoint}"),
        status: IncidentStatus::Active,
        root_cause: RootCause {
            service: service.to_owned(),
            endpoint: endpoint.to_owned(),
            kind: AnomalyKind::LatencySpike,
            description: "Latency spike: 1250ms (baseline: 180ms, 6.9x slower)".to_owned(),
            confidence: Some(0.9),
            candidates: vec![Candidate {
                service: service.to_owned(),
                endpoint: endpoint.to_owned(),
                score: Some(0.9),
            }],
            first_failing_span: None,
            deployment: None,
        },
        affected_endpoints: affected.iter().map(|name| (*name).to_owned()).collect(),
        anomalies: Vec::new(),
        first_detected: "2026-01-20T10:00:20Z".to_owned(),
        last_updated: "2026-01-20T10:00:25Z".to_owned(),
        resolved_at: None,
        alert_count: 2,
        acknowledged: None,
        silenced_by: Vec::new(),
        merged_into: None,
        changes: Vec::new(),
        insights: Vec::new(),
        log_patterns: Vec::new(),
        new_exceptions: Vec::new(),
    }
}

fn row(service: &str, operation: &str, status: HealthStatus, score: f64) -> EndpointRow {
    EndpointRow {
        name: EndpointName {
            service: service.to_owned(),
            operation: operation.to_owned(),
            endpoint: format!("{service} {operation}"),
        },
        metrics: EndpointMetrics {
            service: service.to_owned(),
            avg_latency_ms: Some(10.0),
            baseline_latency_ms: Some(9.0),
            p95_latency_ms: Some(20.0),
            baseline_p95_latency_ms: Some(18.0),
            error_rate: Some(0.0),
            baseline_error_rate: Some(0.0),
            request_count: 300,
            timeout_count: 0,
            baseline_samples: 1000,
            health: Health {
                status,
                health_score: Some(score),
            },
        },
        rate_per_sec: 10.0,
        p95_by_minute: vec![Some(18.0), None, Some(20.0)],
    }
}

fn edge(caller: &str, callee: &str, errors: u64) -> DependencyEdge {
    DependencyEdge {
        caller: caller.to_owned(),
        callee: callee.to_owned(),
        calls: 60,
        errors,
        error_rate: Some(errors as f64 / 60.0),
        mean_latency_ms: Some(12.0),
    }
}

#[test]
fn the_overview_lists_incidents_first_and_the_least_healthy_endpoints_first() {
    let mut endpoints = vec![
        row("cart", "GET /cart", HealthStatus::Healthy, 100.0),
        row("pay", "POST /charge", HealthStatus::Critical, 20.0),
        row("web", "GET /", HealthStatus::Degraded, 70.0),
    ];
    sort_least_healthy_first(&mut endpoints);
    let overview = Overview {
        incidents: vec![incident(
            "INC-1-1",
            "pay",
            "pay POST /charge",
            &["pay POST /charge"],
        )],
        endpoints,
        analyzed_at: Some("2026-01-20T10:00:30.000Z".to_owned()),
        now: "2026-01-20T10:02:30.000Z".to_owned(),
    };

    let html = overview::render(&overview).into_string();

    let at = |text: &str| {
        html.find(text)
            .unwrap_or_else(|| panic!("{text} in {html}"))
    };
    assert!(at("data-incident=\"INC-1-1\"") < at("Endpoints (3)"));
    assert!(at(">pay POST /charge<") < at(">web GET /<"));
    assert!(at(">web GET /<") < at(">cart GET /cart<"));
    assert!(html.contains("href=\"/incidents/INC-1-1\""), "{html}");
    assert!(html.contains("2 min ago"), "{html}");
    assert!(
        html.contains("href=\"/endpoint?service=pay&amp;operation=POST%20/charge\""),
        "{html}"
    );
    assert_eq!(html.matches("<svg class=\"spark\"").count(), 3);
}

#[test]
fn the_map_draws_services_and_uninstrumented_dependencies_and_lights_the_root_cause() {
    let service_map = ServiceMap {
        topology: Topology {
            window: window(),
            traces: 40,
            services: vec!["web".into(), "cart".into(), "pay".into()],
            edges: vec![
                edge("web", "cart", 0),
                edge("web", "pay", 3),
                edge("pay", "postgres", 0),
            ],
            endpoint_edges: Vec::new(),
        },
        window_secs: 30.0,
        incidents: vec![incident(
            "INC-1-1",
            "pay",
            "pay POST /charge",
            &["pay POST /charge", "web GET /"],
        )],
        endpoints: ["web GET /", "cart GET /cart", "pay POST /charge"]
            .iter()
            .map(|name| {
                let (service, operation) = name.split_once(' ').expect("named");
                MapEndpoint {
                    name: EndpointName {
                        service: service.to_owned(),
                        operation: operation.to_owned(),
                        endpoint: (*name).to_owned(),
                    },
                    status: HealthStatus::Healthy,
                }
            })
            .collect(),
    };

    let html = map::render(&service_map).into_string();

    let node = |name: &str| {
        let at = html
            .find(&format!("data-node=\"{name}\""))
            .unwrap_or_else(|| panic!("{name} in {html}"));
        html[at..].split("</g>").next().unwrap_or("").to_owned()
    };
    assert!(
        node("pay").contains("class=\"node root affected\""),
        "{}",
        node("pay")
    );
    assert!(
        node("web").contains("class=\"node affected\""),
        "{}",
        node("web")
    );
    assert!(node("cart").contains("class=\"node\""), "{}", node("cart"));
    assert!(
        node("postgres").contains("class=\"node dependency\""),
        "{}",
        node("postgres")
    );
    assert!(
        html.contains("class=\"edge path failing\""),
        "web -> pay is on the path: {html}"
    );
    assert!(html.contains("2.0/s · 5% err · 12 ms"), "{html}");
    assert!(html.contains("Called, but sends no spans"), "{html}");
    assert!(
        html.contains("Root cause of <a href=\"/incidents/INC-1-1\">"),
        "{html}"
    );
}

#[test]
fn an_active_incident_offers_resolve_and_a_resolved_one_nothing() {
    let mut story = IncidentStory {
        incident: incident("INC-1-1", "shop", "/payment", &["/payment", "/checkout"]),
        charts: None,
        trace: None,
        timeline: Vec::new(),
    };
    assert_eq!(actions(&story.incident).len(), 3);
    let html = incident::render(&story).into_string();
    assert!(
        html.contains("data-action-path=\"/aiops/incidents/INC-1-1/resolve\""),
        "{html}"
    );
    assert!(
        html.contains("data-ask-field=\"by\""),
        "acknowledge asks who: {html}"
    );
    // Silence: a silence of the root cause's service and endpoint for an hour, asking who.
    let silence = actions(&story.incident)
        .into_iter()
        .find(|action| action.path == "/aiops/silences")
        .expect("a silence button");
    assert_eq!(silence.ends_in_secs, Some(3600));
    assert_eq!(silence.ask.map(|ask| ask.0), Some("created_by"));
    let body: serde_json::Value =
        serde_json::from_str(silence.body.as_deref().expect("a body")).expect("JSON");
    assert_eq!(
        body["matchers"],
        serde_json::json!([
            {"name": "service", "value": "shop"},
            {"name": "endpoint", "value": "/payment"},
        ])
    );
    assert!(html.contains("data-ends-in-secs=\"3600\""), "{html}");
    // What the button sends once it has asked who and added `ends_at` is a valid new silence.
    let mut sent = body.clone();
    sent["created_by"] = "alice".into();
    sent["ends_at"] = "2026-01-20T11:00:00.000Z".into();
    serde_json::from_value::<crate::views::lifecycle::NewSilence>(sent).expect("a new silence");
    assert!(html.contains("No trace was sampled"), "{html}");
    assert!(incident::page(&story).refresh_secs.is_some());

    story.incident.status = IncidentStatus::Resolved;
    story.incident.resolved_at = Some("2026-01-20T10:05:00Z".to_owned());
    assert!(actions(&story.incident).is_empty());
    let html = incident::render(&story).into_string();
    assert!(!html.contains("data-action-path"), "{html}");
    assert!(incident::page(&story).refresh_secs.is_none());
}

#[test]
fn an_incident_page_shows_the_deployment_blamed_the_insights_and_the_changes() {
    use crate::views::evidence::{Change, Deployment, Insight, LogPattern};
    let mut incident = incident("INC-2-1", "pricing", "GET /price", &["GET /price"]);
    incident.root_cause.deployment = Some(Deployment {
        kind: "deployment".to_owned(),
        service: "pricing".to_owned(),
        version: "1.4.2".to_owned(),
        previous_version: Some("1.4.1".to_owned()),
        deployed_at: "2026-01-20T10:00:00Z".to_owned(),
        source: "observed".to_owned(),
        new_version_requests: 120,
        new_version_bad: 48,
        old_version_requests: 1080,
        old_version_bad: 0,
        description: "Deployment of pricing 1.4.2 (from 1.4.1): 40% of its 120 requests failed"
            .to_owned(),
    });
    incident.insights.push(Insight {
        key: "service.version".to_owned(),
        value: "1.4.2".to_owned(),
        anomalous_share: Some(0.93),
        overall_share: Some(0.11),
        description:
            "93% of failing requests carry service.version=1.4.2 against 11% of all traffic"
                .to_owned(),
    });
    incident.log_patterns.push(LogPattern {
        service: "pricing".to_owned(),
        operation: "GET /price".to_owned(),
        template: "price <*> is null".to_owned(),
        examples: vec!["price 42 is null".to_owned()],
        count: 12,
        new: true,
        error: true,
    });
    incident.changes.push(Change {
        service: "pricing".to_owned(),
        kind: "deployment".to_owned(),
        time: "2026-01-20T10:00:00Z".to_owned(),
        version: Some("1.4.2".to_owned()),
        previous_version: Some("1.4.1".to_owned()),
        description: None,
        source: "observed".to_owned(),
    });
    let story = IncidentStory {
        incident,
        charts: None,
        trace: None,
        timeline: Vec::new(),
    };
    let html = incident::render(&story).into_string();
    assert!(html.contains("Root cause: deployment"), "{html}");
    assert!(html.contains("1.4.1 → 1.4.2"), "{html}");
    assert!(
        html.contains("93% of failing requests carry service.version=1.4.2"),
        "{html}"
    );
    assert!(
        html.contains("New error log pattern in pricing GET /price"),
        "{html}"
    );
    assert!(html.contains("price &lt;*&gt; is null"), "{html}");
}

#[test]
fn an_incident_page_without_clues_says_nothing_of_them() {
    let story = IncidentStory {
        incident: incident("INC-3-1", "shop", "/payment", &["/payment"]),
        charts: None,
        trace: None,
        timeline: Vec::new(),
    };
    let html = incident::render(&story).into_string();
    assert!(!html.contains("Changes near the start"), "{html}");
    assert!(!html.contains("Root cause: deployment"), "{html}");
}
