//! `GET /aiops/topology`: who calls whom in recent traces.

use aiops_rca::DependencyGraph;
use aiops_telemetry_core::TimeWindow;
use serde::Serialize;
use utoipa::ToSchema;

use super::format::{EndpointNaming, Window, rounded};

/// A caller -> callee edge.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct DependencyEdge {
    /// The caller: a service, or an endpoint named like the `metrics` keys.
    pub caller: String,
    /// The callee, named like the caller.
    pub callee: String,
    /// Calls seen.
    pub calls: u64,
    /// Failed calls.
    pub errors: u64,
    /// `errors / calls`.
    pub error_rate: Option<f64>,
    /// Mean latency of the calls.
    pub mean_latency_ms: Option<f64>,
}

/// `GET /aiops/topology`.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct Topology {
    /// The window looked at.
    pub window: Window,
    /// Recent traces the graph was built from.
    pub traces: usize,
    /// Services seen calling one another.
    pub services: Vec<String>,
    /// Dependencies between services (calls within one service are left out).
    pub edges: Vec<DependencyEdge>,
    /// Dependencies between endpoints, named like the `metrics` keys (e.g. `/checkout` ->
    /// `/payment` in the demo shop).
    pub endpoint_edges: Vec<DependencyEdge>,
}

impl Topology {
    /// The view of `graph`, built from the traces of `over`: service edges, then endpoint
    /// edges (the demo shop is one service, so its calls only show at endpoint level).
    pub fn new(naming: &EndpointNaming, graph: &DependencyGraph, over: &TimeWindow) -> Self {
        Self {
            window: Window::from(over),
            traces: graph.traces,
            services: graph.services(),
            edges: graph
                .edges
                .iter()
                .map(|edge| DependencyEdge {
                    caller: edge.caller.clone(),
                    callee: edge.callee.clone(),
                    calls: edge.calls,
                    errors: edge.errors,
                    error_rate: rounded(edge.error_rate),
                    mean_latency_ms: rounded(edge.mean_latency_ms),
                })
                .collect(),
            endpoint_edges: graph
                .endpoint_edges
                .iter()
                .map(|edge| DependencyEdge {
                    caller: naming.endpoint(&edge.caller),
                    callee: naming.endpoint(&edge.callee),
                    calls: edge.calls,
                    errors: edge.errors,
                    error_rate: rounded(edge.error_rate),
                    mean_latency_ms: rounded(edge.mean_latency_ms),
                })
                .collect(),
        }
    }
}
