//! JSON views of the engine's types, in the shapes of the original quick reference: endpoints
//! named by their path for the shop's own service, times as ISO 8601, rounded figures.

use std::collections::{BTreeMap, HashMap, HashSet};

use aiops_analyzer::{Anomaly, Config as AnalyzerConfig, EndpointAssessment};
use aiops_engine::{CycleReport, Incident};
use aiops_rca::{DependencyGraph, RootCause};
use aiops_telemetry_core::{EndpointKey, Span, SpanId, TimeWindow};
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Value, json};


/// Unix nanoseconds as ISO 8601 in UTC, to the second (`2026-01-20T10:30:15Z`).
pub fn iso(unix_nanos: u64) -> String {
    iso_with(unix_nanos, SecondsFormat::Secs)
}

/// Unix nanoseconds as ISO 8601 in UTC, to the millisecond.
pub fn iso_millis(unix_nanos: u64) -> String {
    iso_with(unix_nanos, SecondsFormat::Millis)
}

fn iso_with(unix_nanos: u64, format: SecondsFormat) -> String {
    let secs = i64::try_from(unix_nanos / 1_000_000_000).unwrap_or(i64::MAX);
    let nanos = u32::try_from(unix_nanos % 1_000_000_000).unwrap_or(0);
    DateTime::<Utc>::from_timestamp(secs, nanos)
        .unwrap_or_default()
        .to_rfc3339_opts(format, true)
}

/// How endpoints are named for people: `service operation` (`checkout-svc POST /orders`),
/// except the operations of one service whose operations are its paths (the demo shop's
/// `/payment`), which are named by the operation alone.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EndpointNaming {
    /// The service named by its operations alone, if any.
    pub path_service: Option<String>,
}

impl EndpointNaming {
    /// Endpoints of `service` are named by their operation alone.
    pub fn by_path(service: impl Into<String>) -> Self {
        Self {
            path_service: Some(service.into()),
        }
    }

    /// An endpoint as users name it.
    pub fn endpoint_label(&self, endpoint: &EndpointKey) -> String {
        self.label(&endpoint.service, &endpoint.operation)
    }

    /// The operation `operation` of `service` as users name it.
    pub fn label(&self, service: &str, operation: &str) -> String {
        if self.path_service.as_deref() == Some(service) {
            operation.to_owned()
        } else {
            format!("{service} {operation}")
        }
    }
}

/// Rounds to two decimals for display; non-finite values become `null`.
pub fn round(value: f64) -> Value {
    if value.is_finite() {
        json!((value * 100.0).round() / 100.0)
    } else {
        Value::Null
    }
}

fn window(window: &TimeWindow) -> Value {
    json!({
        "start": iso_millis(window.start_unix_nanos),
        "end": iso_millis(window.end_unix_nanos),
    })
}

/// One anomaly.
pub fn anomaly(naming: &EndpointNaming, anomaly: &Anomaly) -> Value {
    json!({
        "kind": anomaly.kind,
        "endpoint": naming.endpoint_label(&anomaly.endpoint),
        "service": anomaly.endpoint.service,
        "severity": anomaly.severity,
        "description": anomaly.description,
        "observed": round(anomaly.observed),
        "baseline": round(anomaly.baseline),
        "ratio": round(anomaly.ratio),
        "sample_count": anomaly.sample_count,
        "window": window(&anomaly.window),
    })
}

fn root_cause(naming: &EndpointNaming, cause: &RootCause) -> Value {
    let candidates: Vec<Value> = cause
        .candidates
        .iter()
        .map(|candidate| {
            json!({
                "service": candidate.service,
                "endpoint": naming.label(&candidate.service, &candidate.endpoint),
                "score": round(candidate.score),
            })
        })
        .collect();
    let first_failing_span = cause.first_failing_span.as_ref().map(|span| {
        json!({
            "trace_id": span.trace_id,
            "span_id": span.span_id,
            "service": span.service,
            "endpoint": naming.label(&span.service, &span.operation),
            "started_at": iso_millis(span.start_unix_nanos),
        })
    });
    json!({
        "service": cause.service,
        "endpoint": naming.label(&cause.service, &cause.endpoint),
        "kind": cause.kind,
        "description": cause.description,
        "confidence": round(cause.confidence),
        "candidates": candidates,
        "first_failing_span": first_failing_span,
    })
}

/// One incident.
pub fn incident(naming: &EndpointNaming, incident: &Incident) -> Value {
    json!({
        "id": incident.id,
        "severity": incident.severity,
        "title": incident.title,
        "status": incident.status,
        "root_cause": root_cause(naming, &incident.root_cause),
        "affected_endpoints": incident.affected_endpoints.iter().map(|endpoint| naming.endpoint_label(endpoint)).collect::<Vec<_>>(),
        "anomalies": incident.anomalies.iter().map(|found| anomaly(naming, found)).collect::<Vec<_>>(),
        "first_detected": iso(incident.first_detected_unix_nanos),
        "last_updated": iso(incident.last_updated_unix_nanos),
        "resolved_at": incident.resolved_at_unix_nanos.map(iso),
        "alert_count": incident.alert_count,
    })
}

/// Incidents, newest first (by first detection, then by id).
pub fn incidents<'a>(
    naming: &EndpointNaming,
    incidents: impl IntoIterator<Item = &'a Incident>,
) -> Vec<Value> {
    let mut sorted: Vec<&Incident> = incidents.into_iter().collect();
    sorted.sort_by(|a, b| {
        b.first_detected_unix_nanos
            .cmp(&a.first_detected_unix_nanos)
            .then_with(|| b.id.cmp(&a.id))
    });
    sorted
        .into_iter()
        .map(|found| incident(naming, found))
        .collect()
}

/// The `metrics` map of `GET /aiops/metrics`, keyed by endpoint label.
pub fn endpoint_metrics(
    naming: &EndpointNaming,
    endpoints: &[EndpointAssessment],
    config: &AnalyzerConfig,
) -> Value {
    let map: BTreeMap<String, Value> = endpoints
        .iter()
        .map(|assessment| {
            let ready = assessment
                .baseline
                .as_ref()
                .filter(|baseline| baseline.is_ready(config));
            let stats = &assessment.stats;
            let value = json!({
                "service": assessment.endpoint.service,
                "avg_latency_ms": round(stats.mean_ms),
                "baseline_latency_ms": ready.map(|baseline| round(baseline.mean_ms)),
                "p95_latency_ms": round(stats.p95_ms),
                "baseline_p95_latency_ms": ready.map(|baseline| round(baseline.p95_ms)),
                "error_rate": round(stats.error_rate()),
                "baseline_error_rate": ready.map(|baseline| round(baseline.error_rate)),
                "request_count": stats.count,
                "timeout_count": stats.timeouts,
                "baseline_samples": assessment.baseline.as_ref().map_or(0, |baseline| baseline.sample_count),
                "health": {
                    "status": assessment.health.status,
                    "health_score": round(assessment.health.health_score),
                },
            });
            (naming.endpoint_label(&assessment.endpoint), value)
        })
        .collect();
    json!(map)
}

/// The report of `POST /aiops/analyze`: the cycle run at `at_unix_nanos`, the incidents it
/// changed and every active one.
pub fn cycle(
    naming: &EndpointNaming,
    at_unix_nanos: u64,
    report: &CycleReport,
    changed: &[Incident],
    active: &[Incident],
    config: &AnalyzerConfig,
) -> Value {
    json!({
        "analyzed_at": iso_millis(at_unix_nanos),
        "window": window(&report.window),
        "anomalies": report.anomalies.iter().map(|found| anomaly(naming, found)).collect::<Vec<_>>(),
        "changes": report.changes,
        "changed_incidents": incidents(naming, changed),
        "active_incidents": incidents(naming, active),
        "metrics": endpoint_metrics(naming, &report.endpoints, config),
    })
}

/// `GET /aiops/topology`: caller -> callee edges between services, and between endpoints
/// (the demo shop is one service, so its calls only show at endpoint level).
pub fn topology(naming: &EndpointNaming, graph: &DependencyGraph, over: &TimeWindow) -> Value {
    let edges: Vec<Value> = graph
        .edges
        .iter()
        .map(|edge| {
            json!({
                "caller": edge.caller,
                "callee": edge.callee,
                "calls": edge.calls,
                "errors": edge.errors,
                "error_rate": round(edge.error_rate),
                "mean_latency_ms": round(edge.mean_latency_ms),
            })
        })
        .collect();
    let endpoint_edges: Vec<Value> = graph
        .endpoint_edges
        .iter()
        .map(|edge| {
            json!({
                "caller": naming.endpoint_label(&edge.caller),
                "callee": naming.endpoint_label(&edge.callee),
                "calls": edge.calls,
                "errors": edge.errors,
                "error_rate": round(edge.error_rate),
                "mean_latency_ms": round(edge.mean_latency_ms),
            })
        })
        .collect();
    json!({
        "window": window(over),
        "traces": graph.traces,
        "services": graph.services(),
        "edges": edges,
        "endpoint_edges": endpoint_edges,
    })
}

/// Deepest nesting rendered in a trace tree; deeper spans are listed flat under the last level.
const MAX_TREE_DEPTH: usize = 64;

/// `GET /aiops/traces/{id}`: the spans of one trace as a tree, roots first by start time.
/// Spans whose parent is missing are roots; cycles and duplicates cannot loop.
pub fn trace_tree(naming: &EndpointNaming, spans: &[Span]) -> Value {
    let mut order: Vec<usize> = (0..spans.len()).collect();
    order.sort_by_key(|&index| (spans[index].start_unix_nanos, spans[index].span_id));
    let ids: HashSet<SpanId> = spans.iter().map(|span| span.span_id).collect();
    let mut children: HashMap<SpanId, Vec<usize>> = HashMap::new();
    let mut roots = Vec::new();
    for &index in &order {
        match spans[index].parent_span_id {
            Some(parent) if ids.contains(&parent) && parent != spans[index].span_id => {
                children.entry(parent).or_default().push(index);
            }
            _ => roots.push(index),
        }
    }
    let mut visited = HashSet::new();
    let mut tree: Vec<Value> = roots
        .iter()
        .filter_map(|&root| node(naming, spans, root, &children, &mut visited, 0))
        .collect();
    // Spans only reachable through a cycle of parents are shown as roots too.
    for &index in &order {
        if !visited.contains(&spans[index].span_id)
            && let Some(value) = node(naming, spans, index, &children, &mut visited, 0)
        {
            tree.push(value);
        }
    }
    let start = spans
        .iter()
        .map(|span| span.start_unix_nanos)
        .min()
        .unwrap_or(0);
    let end = spans.iter().map(Span::end_unix_nanos).max().unwrap_or(0);
    json!({
        "trace_id": spans.first().map(|span| span.trace_id.to_string()),
        "span_count": spans.len(),
        "started_at": iso_millis(start),
        "duration_ms": round(end.saturating_sub(start) as f64 / 1e6),
        "error": spans.iter().any(Span::is_error),
        "roots": tree,
    })
}

fn node(
    naming: &EndpointNaming,
    spans: &[Span],
    index: usize,
    children: &HashMap<SpanId, Vec<usize>>,
    visited: &mut HashSet<SpanId>,
    depth: usize,
) -> Option<Value> {
    let span = &spans[index];
    if !visited.insert(span.span_id) {
        return None;
    }
    let kids: Vec<Value> = if depth < MAX_TREE_DEPTH {
        children
            .get(&span.span_id)
            .into_iter()
            .flatten()
            .filter_map(|&child| node(naming, spans, child, children, visited, depth + 1))
            .collect()
    } else {
        Vec::new()
    };
    let attributes: Map<String, Value> = span
        .attributes
        .iter()
        .map(|(key, value)| (key.to_string(), Value::String(value.to_string())))
        .collect();
    Some(json!({
        "span_id": span.span_id,
        "parent_span_id": span.parent_span_id,
        "service": span.service,
        "operation": span.operation,
        "endpoint": naming.label(&span.service, &span.operation),
        "kind": span.kind,
        "started_at": iso_millis(span.start_unix_nanos),
        "duration_ms": round(span.duration_ms()),
        "http_status": span.http_status,
        "error": span.is_error(),
        "attributes": attributes,
        "children": kids,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use aiops_telemetry_core::TraceId;

    #[test]
    fn times_are_iso_8601_utc() {
        assert_eq!(iso(1_737_369_015_000_000_000), "2025-01-20T10:30:15Z");
        assert_eq!(
            iso_millis(1_737_369_015_250_000_000),
            "2025-01-20T10:30:15.250Z"
        );
    }

    #[test]
    fn shop_endpoints_are_named_by_path_and_others_by_service() {
        assert_eq!(
            EndpointNaming::by_path("shop").endpoint_label(&EndpointKey::new("shop", "/payment")),
            "/payment"
        );
        assert_eq!(
            EndpointNaming::by_path("shop").endpoint_label(&EndpointKey::new("cart", "GET /cart")),
            "cart GET /cart"
        );
    }

    #[test]
    fn trace_tree_nests_children_and_survives_cycles() {
        let trace = TraceId::random();
        let root = Span::new(trace, SpanId::random(), "shop", "/checkout").with_timing(1, 10);
        let child = Span::new(trace, SpanId::random(), "shop", "/payment")
            .with_parent(root.span_id)
            .with_timing(2, 5);
        let tree = trace_tree(&EndpointNaming::by_path("shop"), &[child.clone(), root.clone()]);
        assert_eq!(tree["span_count"], 2);
        assert_eq!(tree["roots"][0]["endpoint"], "/checkout");
        assert_eq!(tree["roots"][0]["children"][0]["endpoint"], "/payment");

        let a_id = SpanId::random();
        let b_id = SpanId::random();
        let a = Span::new(trace, a_id, "x", "a").with_parent(b_id);
        let b = Span::new(trace, b_id, "x", "b").with_parent(a_id);
        let tree = trace_tree(&EndpointNaming::by_path("shop"), &[a, b]);
        assert_eq!(tree["roots"].as_array().map(Vec::len), Some(1));
    }
}
