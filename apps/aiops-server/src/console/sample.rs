//! Synthetic views of a large fleet, for the console's benchmark (`benches/console.rs`): a
//! given number of services with a given number of endpoints each, some of them unhealthy,
//! each with a full half hour of sparkline, and incidents rooted at some of them.

use aiops_analyzer::{AnomalyKind, HealthStatus, Severity};
use aiops_engine::IncidentStatus;

use super::map::{MapEndpoint, ServiceMap};
use super::overview::{EndpointRow, Overview, sort_least_healthy_first};
use crate::views::endpoint::EndpointName;
use crate::views::format::Window;
use crate::views::incident::{Candidate, Incident, RootCause};
use crate::views::metrics::{EndpointMetrics, Health};
use crate::views::topology::{DependencyEdge, Topology};

fn name(service: usize, endpoint: usize) -> EndpointName {
    let service = format!("service-{service:03}");
    let operation = format!("GET /api/v1/resource-{endpoint:02}/{{id}}");
    EndpointName {
        endpoint: format!("{service} {operation}"),
        service,
        operation,
    }
}

fn incident(index: usize, root: &EndpointName, affected: Vec<String>) -> Incident {
    Incident {
        id: format!("INC-1768905000-{index}"),
        severity: Severity::High,
        title: format!("Latency spike detected in {}", root.endpoint),
        status: IncidentStatus::Active,
        root_cause: RootCause {
            service: root.service.clone(),
            endpoint: root.endpoint.clone(),
            kind: AnomalyKind::LatencySpike,
            description: "Latency spike: 1250ms (baseline: 180ms, 6.9x slower)".to_owned(),
            confidence: Some(0.92),
            candidates: vec![Candidate {
                service: root.service.clone(),
                endpoint: root.endpoint.clone(),
                score: Some(0.92),
            }],
            first_failing_span: None,
            deployment: None,
        },
        affected_endpoints: affected,
        anomalies: Vec::new(),
        first_detected: "2026-01-20T10:25:00Z".to_owned(),
        last_updated: "2026-01-20T10:29:30Z".to_owned(),
        resolved_at: None,
        alert_count: 12,
        acknowledged: None,
        silenced_by: Vec::new(),
        merged_into: None,
        changes: Vec::new(),
        insights: Vec::new(),
        log_patterns: Vec::new(),
        new_exceptions: Vec::new(),
    }
}

/// An overview of `services` services with `endpoints` endpoints each (one in fifty critical,
/// one in twenty degraded) and `incidents` incidents.
pub fn overview(services: usize, endpoints: usize, incidents: usize) -> Overview {
    let mut rows = Vec::with_capacity(services * endpoints);
    for service in 0..services {
        for endpoint in 0..endpoints {
            let index = service * endpoints + endpoint;
            let (status, score) = match index {
                _ if index.is_multiple_of(50) => (HealthStatus::Critical, 30.0),
                _ if index.is_multiple_of(20) => (HealthStatus::Degraded, 70.0),
                _ => (HealthStatus::Healthy, 100.0),
            };
            let base = 20.0 + (index % 17) as f64;
            rows.push(EndpointRow {
                name: name(service, endpoint),
                metrics: EndpointMetrics {
                    service: format!("service-{service:03}"),
                    avg_latency_ms: Some(base * 0.6),
                    baseline_latency_ms: Some(base * 0.55),
                    p95_latency_ms: Some(base),
                    baseline_p95_latency_ms: Some(base * 0.9),
                    error_rate: Some(0.001),
                    baseline_error_rate: Some(0.001),
                    request_count: 1500,
                    timeout_count: 0,
                    baseline_samples: 90_000,
                    health: Health {
                        status,
                        health_score: Some(score),
                    },
                },
                rate_per_sec: 50.0,
                p95_by_minute: (0..30)
                    .map(|minute| Some(base + ((minute * 7 + index) % 11) as f64))
                    .collect(),
            });
        }
    }
    sort_least_healthy_first(&mut rows);
    Overview {
        incidents: (0..incidents)
            .map(|index| {
                let root = name(index * 7 % services.max(1), 0);
                let affected = vec![root.endpoint.clone(), name(0, 1).endpoint];
                incident(index, &root, affected)
            })
            .collect(),
        endpoints: rows,
        analyzed_at: Some("2026-01-20T10:30:00.000Z".to_owned()),
        now: "2026-01-20T10:30:01.000Z".to_owned(),
    }
}

/// A service map of `services` services in a call tree four levels deep (each service calls
/// three of the next level), with a database called by the deepest ones and one incident.
pub fn service_map(services: usize) -> ServiceMap {
    let names: Vec<String> = (0..services)
        .map(|service| format!("service-{service:03}"))
        .collect();
    let mut edges = Vec::new();
    for (index, caller) in names.iter().enumerate() {
        for callee in (index * 3 + 1..=index * 3 + 3).filter(|callee| *callee < services) {
            edges.push(DependencyEdge {
                caller: caller.clone(),
                callee: names[callee].clone(),
                calls: 3000,
                errors: (callee.is_multiple_of(13)) as u64 * 30,
                error_rate: Some(if callee.is_multiple_of(13) { 0.01 } else { 0.0 }),
                mean_latency_ms: Some(12.5),
            });
        }
        if index * 3 + 1 >= services {
            edges.push(DependencyEdge {
                caller: caller.clone(),
                callee: "postgres".to_owned(),
                calls: 900,
                errors: 0,
                error_rate: Some(0.0),
                mean_latency_ms: Some(2.5),
            });
        }
    }
    let root = name(services / 2, 0);
    ServiceMap {
        topology: Topology {
            window: Window {
                start: "2026-01-20T10:29:30.000Z".to_owned(),
                end: "2026-01-20T10:30:00.000Z".to_owned(),
            },
            traces: 1000,
            services: names.clone(),
            edges,
            endpoint_edges: Vec::new(),
        },
        window_secs: 30.0,
        incidents: vec![incident(1, &root, vec![root.endpoint.clone()])],
        endpoints: (0..services)
            .map(|service| MapEndpoint {
                name: name(service, 0),
                status: HealthStatus::Healthy,
            })
            .collect(),
    }
}
