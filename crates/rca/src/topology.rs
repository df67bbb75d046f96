//! The service dependency graph: who calls whom, how often, how reliably and how fast.

use std::collections::{BTreeMap, BTreeSet};

use aiops_telemetry_core::Span;
use serde::{Deserialize, Serialize};

use crate::graph::TraceGraph;

/// Calls from one service to another, aggregated over traces.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DependencyEdge {
    /// The calling service (the service of the parent span).
    pub caller: String,
    /// The called service (the service of the child span).
    pub callee: String,
    /// How many calls were seen.
    pub calls: u64,
    /// How many of them failed on the callee's side.
    pub errors: u64,
    /// `errors / calls`.
    pub error_rate: f64,
    /// Mean duration of the callee's spans, in milliseconds.
    pub mean_latency_ms: f64,
}

/// Caller-to-callee edges between services, sorted by caller then callee.
///
/// An edge is a parent span and a child span of different services: a server span calling
/// another service directly, or a client span whose server-side child runs elsewhere. Calls
/// within one service are not edges.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DependencyGraph {
    /// Every edge seen, sorted by caller then callee.
    pub edges: Vec<DependencyEdge>,
}

impl DependencyGraph {
    /// The edge from `caller` to `callee`, if any call was seen.
    pub fn edge(&self, caller: &str, callee: &str) -> Option<&DependencyEdge> {
        self.edges
            .iter()
            .find(|edge| edge.caller == caller && edge.callee == callee)
    }

    /// Every service that appears on an edge, sorted.
    pub fn services(&self) -> Vec<String> {
        let names: BTreeSet<&str> = self
            .edges
            .iter()
            .flat_map(|edge| [edge.caller.as_str(), edge.callee.as_str()])
            .collect();
        names.into_iter().map(str::to_owned).collect()
    }
}

/// Builds the service dependency graph of `traces` (each a trace's spans, in any order).
///
/// ```
/// use aiops_rca::dependency_graph;
/// use aiops_telemetry_core::{Span, SpanId, TraceId};
///
/// let (trace, checkout) = (TraceId::random(), SpanId::random());
/// let spans = vec![
///     Span::new(trace, checkout, "shop", "/checkout").with_timing(0, 50_000_000),
///     Span::new(trace, SpanId::random(), "payments", "/payment")
///         .with_parent(checkout)
///         .with_timing(1_000_000, 30_000_000)
///         .with_http_status(503),
/// ];
/// let graph = dependency_graph(&[spans]);
/// let edge = graph.edge("shop", "payments").expect("shop calls payments");
/// assert_eq!((edge.calls, edge.errors, edge.error_rate), (1, 1, 1.0));
/// assert_eq!(edge.mean_latency_ms, 30.0);
/// ```
pub fn dependency_graph(traces: &[Vec<Span>]) -> DependencyGraph {
    #[derive(Default)]
    struct Tally {
        calls: u64,
        errors: u64,
        total_ms: f64,
    }
    let mut tallies: BTreeMap<(String, String), Tally> = BTreeMap::new();
    for trace in traces {
        let graph = TraceGraph::build(trace);
        for (node, callee) in graph.nodes() {
            let Some(parent) = graph.parent(node) else {
                continue;
            };
            let caller = graph.span(parent);
            if caller.service == callee.service {
                continue;
            }
            let tally = tallies
                .entry((caller.service.clone(), callee.service.clone()))
                .or_default();
            tally.calls += 1;
            tally.errors += u64::from(callee.is_error());
            tally.total_ms += callee.duration_ms();
        }
    }
    let edges = tallies
        .into_iter()
        .map(|((caller, callee), tally)| DependencyEdge {
            caller,
            callee,
            calls: tally.calls,
            errors: tally.errors,
            error_rate: tally.errors as f64 / tally.calls as f64,
            mean_latency_ms: tally.total_ms / tally.calls as f64,
        })
        .collect();
    DependencyGraph { edges }
}
