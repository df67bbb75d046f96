//! `GET /aiops/traces/{trace_id}`: one trace's spans as a tree.

use std::collections::BTreeMap;

use aiops_rca::TraceGraph;
use aiops_telemetry_core::{Span, SpanKind};
use serde::Serialize;
use utoipa::ToSchema;

use super::format::{EndpointNaming, iso_millis, rounded};

/// Deepest nesting rendered in a trace tree; the spans below it are shown as roots.
const MAX_TREE_DEPTH: usize = 64;

/// One span and the spans it called.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct SpanNode {
    /// Span id, 16 hex digits.
    pub span_id: String,
    /// The parent's span id, null for a span that started the trace.
    pub parent_span_id: Option<String>,
    /// Service.
    pub service: String,
    /// Operation.
    pub operation: String,
    /// The endpoint, named like the `metrics` keys.
    pub endpoint: String,
    /// `server`, `client`, `internal`, `producer` or `consumer`.
    #[schema(value_type = String, example = "server")]
    pub kind: SpanKind,
    /// ISO 8601 start, to the millisecond.
    pub started_at: String,
    /// How long the span took.
    pub duration_ms: Option<f64>,
    /// The HTTP status, for HTTP spans.
    pub http_status: Option<u16>,
    /// True when the span failed.
    pub error: bool,
    /// The span's attributes (none for spans read from the in-memory buffer).
    pub attributes: BTreeMap<String, String>,
    /// The spans it called, by start time.
    #[schema(no_recursion)]
    pub children: Vec<SpanNode>,
}

/// `GET /aiops/traces/{trace_id}`: spans as a tree.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct TraceTree {
    /// Trace id, 32 hex digits.
    pub trace_id: Option<String>,
    /// Spans kept.
    pub span_count: usize,
    /// ISO 8601 start of the earliest span, to the millisecond.
    pub started_at: String,
    /// From the first start to the last end.
    pub duration_ms: Option<f64>,
    /// True when any span failed.
    pub error: bool,
    /// Spans without a known parent, by start time, each with its `children`.
    pub roots: Vec<SpanNode>,
}

impl TraceTree {
    /// The spans of one trace as a tree, roots first by start time. Spans whose parent is
    /// missing are roots; cycles and duplicates cannot loop ([`TraceGraph`] cuts a cycle at its
    /// earliest span and keeps the first of duplicate ids).
    pub fn new(naming: &EndpointNaming, spans: &[Span]) -> Self {
        let graph = TraceGraph::build(spans);
        let mut walk = Walk {
            naming,
            graph: &graph,
            visited: vec![false; graph.len()],
        };
        let mut nodes: Vec<SpanNode> = walk
            .by_start(graph.roots())
            .into_iter()
            .filter_map(|root| walk.node(root, 0))
            .collect();
        // Spans below the deepest level rendered are shown as roots too, earliest first.
        let rest: Vec<usize> = (0..graph.len())
            .filter(|&node| !walk.visited[node])
            .collect();
        for node in walk.by_start(&rest) {
            if let Some(node) = walk.node(node, 0) {
                nodes.push(node);
            }
        }
        let start = spans
            .iter()
            .map(|span| span.start_unix_nanos)
            .min()
            .unwrap_or(0);
        let end = spans.iter().map(Span::end_unix_nanos).max().unwrap_or(0);
        Self {
            trace_id: spans.first().map(|span| span.trace_id.to_string()),
            span_count: spans.len(),
            started_at: iso_millis(start),
            duration_ms: rounded(end.saturating_sub(start) as f64 / 1e6),
            error: spans.iter().any(Span::is_error),
            roots: nodes,
        }
    }
}

/// A walk down a [`TraceGraph`] that renders each span once.
struct Walk<'a> {
    naming: &'a EndpointNaming,
    graph: &'a TraceGraph<'a>,
    visited: Vec<bool>,
}

impl Walk<'_> {
    /// `nodes` by start time, then span id: the order of roots and of siblings. (The graph
    /// breaks ties of start time by input order, which depends on where the spans were read.)
    fn by_start(&self, nodes: &[usize]) -> Vec<usize> {
        let mut sorted = nodes.to_vec();
        sorted.sort_by_key(|&node| {
            let span = self.graph.span(node);
            (span.start_unix_nanos, span.span_id)
        });
        sorted
    }

    fn node(&mut self, node: usize, depth: usize) -> Option<SpanNode> {
        if std::mem::replace(self.visited.get_mut(node)?, true) {
            return None;
        }
        let below = if depth < MAX_TREE_DEPTH {
            self.by_start(self.graph.children(node))
        } else {
            Vec::new()
        };
        let children = below
            .into_iter()
            .filter_map(|child| self.node(child, depth + 1))
            .collect();
        let span = self.graph.span(node);
        Some(SpanNode {
            span_id: span.span_id.to_string(),
            parent_span_id: span.parent_span_id.map(|parent| parent.to_string()),
            service: span.service.to_string(),
            operation: span.operation.to_string(),
            endpoint: self.naming.label(&span.service, &span.operation),
            kind: span.kind,
            started_at: iso_millis(span.start_unix_nanos),
            duration_ms: rounded(span.duration_ms()),
            http_status: span.http_status,
            error: span.is_error(),
            attributes: span
                .attributes
                .iter()
                .map(|(key, value)| (key.to_string(), value.to_string()))
                .collect(),
            children,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aiops_telemetry_core::{SpanId, TraceId};

    #[test]
    fn children_nest_under_their_parent_and_parent_cycles_cannot_loop() {
        let naming = EndpointNaming::by_path("shop");
        let trace = TraceId::random();
        let root = Span::new(trace, SpanId::random(), "shop", "/checkout").with_timing(1, 10);
        let child = Span::new(trace, SpanId::random(), "shop", "/payment")
            .with_parent(root.span_id)
            .with_timing(2, 5);
        let tree = TraceTree::new(&naming, &[child.clone(), root.clone()]);
        assert_eq!(tree.span_count, 2);
        assert_eq!(tree.roots[0].endpoint, "/checkout");
        assert_eq!(tree.roots[0].children[0].endpoint, "/payment");

        let a_id = SpanId::random();
        let b_id = SpanId::random();
        let a = Span::new(trace, a_id, "x", "a").with_parent(b_id);
        let b = Span::new(trace, b_id, "x", "b").with_parent(a_id);
        let tree = TraceTree::new(&naming, &[a, b]);
        assert_eq!(tree.roots.len(), 1);
    }

    #[test]
    fn siblings_that_start_together_are_ordered_by_span_id_whatever_the_input_order() {
        let naming = EndpointNaming::by_path("shop");
        let trace = TraceId::random();
        let root = Span::new(trace, SpanId::random(), "shop", "/checkout").with_timing(1, 10);
        let mut calls: Vec<Span> = (0..5)
            .map(|_| {
                Span::new(trace, SpanId::random(), "shop", "/payment")
                    .with_parent(root.span_id)
                    .with_timing(2, 5)
            })
            .collect();
        let mut expected: Vec<String> = calls.iter().map(|span| span.span_id.to_string()).collect();
        expected.sort();
        for _ in 0..2 {
            calls.reverse();
            let mut spans = calls.clone();
            spans.push(root.clone());
            let tree = TraceTree::new(&naming, &spans);
            let order: Vec<&str> = tree.roots[0]
                .children
                .iter()
                .map(|child| child.span_id.as_str())
                .collect();
            assert_eq!(order, expected);
        }
    }

    #[test]
    fn spans_below_the_deepest_level_start_another_root_and_duplicates_show_once() {
        let naming = EndpointNaming::by_path("shop");
        let trace = TraceId::random();
        let mut spans: Vec<Span> = Vec::new();
        for level in 0..MAX_TREE_DEPTH as u64 + 6 {
            let span = Span::new(trace, SpanId::random(), "shop", format!("/{level}"))
                .with_timing(level + 1, 1000 - level);
            spans.push(match spans.last() {
                Some(parent) => span.with_parent(parent.span_id),
                None => span,
            });
        }
        spans.push(spans[3].clone());
        let tree = TraceTree::new(&naming, &spans);
        assert_eq!(tree.span_count, MAX_TREE_DEPTH + 7);
        assert_eq!(tree.roots.len(), 2);
        let depth = |mut node: &SpanNode| {
            let mut levels = 1;
            while let [child] = node.children.as_slice() {
                node = child;
                levels += 1;
            }
            assert!(node.children.is_empty());
            levels
        };
        assert_eq!(depth(&tree.roots[0]), MAX_TREE_DEPTH + 1);
        assert_eq!(depth(&tree.roots[1]), 5);
        assert_eq!(tree.roots[1].endpoint, format!("/{}", MAX_TREE_DEPTH + 1));
    }
}
