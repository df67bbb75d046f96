//! The service dependency graph: who calls whom, how often, how reliably and how fast.

use std::collections::{BTreeMap, BTreeSet};

use aiops_telemetry_core::{EndpointKey, Span, SpanKind, peer_in_operation};
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
    /// True when the callee has no spans of its own (a database, a cache, an external API):
    /// it is named after the caller's client spans' peer, and they are what is measured.
    #[serde(default)]
    pub uninstrumented: bool,
}

/// Calls from one endpoint to another, aggregated over traces.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EndpointEdge {
    /// The calling endpoint (the parent span's service and operation).
    pub caller: EndpointKey,
    /// The called endpoint (the child span's service and operation).
    pub callee: EndpointKey,
    /// How many calls were seen.
    pub calls: u64,
    /// How many of them failed on the callee's side.
    pub errors: u64,
    /// `errors / calls`.
    pub error_rate: f64,
    /// Mean duration of the callee's spans, in milliseconds.
    pub mean_latency_ms: f64,
}

/// Caller-to-callee edges between services and between endpoints, sorted by caller then
/// callee.
///
/// A service edge is a parent span and a child span of different services: a server span
/// calling another service directly, or a client span whose server-side child runs elsewhere.
/// Calls within one service are not service edges, but they are endpoint edges when the
/// operations differ, so a single service whose routes call each other (the demo shop's
/// `/checkout` calling `/payment`) still has a call graph. A client span with no child, keyed
/// by its peer (`SELECT orders -> postgresql/orders`), is a call to a dependency without spans
/// of its own: the peer becomes a node, and the client span is the call measured.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DependencyGraph {
    /// Every service edge seen, sorted by caller then callee.
    pub edges: Vec<DependencyEdge>,
    /// Every endpoint edge seen, sorted by caller then callee.
    #[serde(default)]
    pub endpoint_edges: Vec<EndpointEdge>,
    /// How many traces the graph was built from.
    #[serde(default)]
    pub traces: usize,
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
    let mut services: BTreeMap<(&str, &str), Tally> = BTreeMap::new();
    let mut dependencies: BTreeMap<(&str, &str), Tally> = BTreeMap::new();
    let mut endpoints: BTreeMap<(Endpoint<'_>, Endpoint<'_>), Tally> = BTreeMap::new();
    for trace in traces {
        let graph = TraceGraph::build(trace);
        for (node, callee) in graph.nodes() {
            let leaf_client = callee.kind == SpanKind::Client && graph.children(node).is_empty();
            if let Some(peer) = peer_in_operation(&callee.operation).filter(|_| leaf_client) {
                dependencies
                    .entry((&callee.service, peer))
                    .or_default()
                    .add(callee);
            }
            let Some(parent) = graph.parent(node) else {
                continue;
            };
            let caller = graph.span(parent);
            if caller.service != callee.service {
                services
                    .entry((&caller.service, &callee.service))
                    .or_default()
                    .add(callee);
            }
            if caller.service != callee.service || caller.operation != callee.operation {
                endpoints
                    .entry((
                        (&caller.service, &caller.operation),
                        (&callee.service, &callee.operation),
                    ))
                    .or_default()
                    .add(callee);
            }
        }
    }
    let edge = |((caller, callee), tally): ((&str, &str), Tally), uninstrumented| DependencyEdge {
        caller: caller.to_owned(),
        callee: callee.to_owned(),
        calls: tally.calls,
        errors: tally.errors,
        error_rate: tally.error_rate(),
        mean_latency_ms: tally.mean_ms(),
        uninstrumented,
    };
    let mut edges: Vec<DependencyEdge> = services
        .into_iter()
        .map(|entry| edge(entry, false))
        .chain(dependencies.into_iter().map(|entry| edge(entry, true)))
        .collect();
    edges.sort_by(|a, b| (&a.caller, &a.callee).cmp(&(&b.caller, &b.callee)));
    let endpoint_edges = endpoints
        .into_iter()
        .map(|((caller, callee), tally)| EndpointEdge {
            caller: EndpointKey::new(caller.0, caller.1),
            callee: EndpointKey::new(callee.0, callee.1),
            calls: tally.calls,
            errors: tally.errors,
            error_rate: tally.error_rate(),
            mean_latency_ms: tally.mean_ms(),
        })
        .collect();
    DependencyGraph {
        edges,
        endpoint_edges,
        traces: traces.len(),
    }
}

/// A borrowed endpoint key: (service, operation).
type Endpoint<'a> = (&'a str, &'a str);

/// Calls into one callee, as they are counted.
#[derive(Default)]
struct Tally {
    calls: u64,
    errors: u64,
    total_ms: f64,
}

impl Tally {
    fn add(&mut self, callee: &Span) {
        self.calls += 1;
        self.errors += u64::from(callee.is_error());
        self.total_ms += callee.duration_ms();
    }

    fn error_rate(&self) -> f64 {
        self.errors as f64 / self.calls as f64
    }

    fn mean_ms(&self) -> f64 {
        self.total_ms / self.calls as f64
    }
}
