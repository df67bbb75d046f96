//! `GET /aiops/traces/{trace_id}`: one trace's spans as a tree.

use std::collections::{BTreeMap, HashMap, HashSet};

use aiops_telemetry_core::{Span, SpanId, SpanKind};
use serde::Serialize;
use utoipa::ToSchema;

use super::format::{EndpointNaming, iso_millis, rounded};

/// Deepest nesting rendered in a trace tree; deeper spans are listed flat under the last level.
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
    /// missing are roots; cycles and duplicates cannot loop.
    pub fn new(naming: &EndpointNaming, spans: &[Span]) -> Self {
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
        let mut tree = Tree {
            naming,
            spans,
            children,
            visited: HashSet::new(),
        };
        let mut nodes: Vec<SpanNode> = roots
            .iter()
            .filter_map(|&root| tree.node(root, 0))
            .collect();
        // Spans only reachable through a cycle of parents are shown as roots too.
        for &index in &order {
            if !tree.visited.contains(&spans[index].span_id)
                && let Some(node) = tree.node(index, 0)
            {
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

/// A walk over one trace's spans that visits each span once.
struct Tree<'a> {
    naming: &'a EndpointNaming,
    spans: &'a [Span],
    children: HashMap<SpanId, Vec<usize>>,
    visited: HashSet<SpanId>,
}

impl Tree<'_> {
    fn node(&mut self, index: usize, depth: usize) -> Option<SpanNode> {
        let span = &self.spans[index];
        if !self.visited.insert(span.span_id) {
            return None;
        }
        let below: Vec<usize> = if depth < MAX_TREE_DEPTH {
            self.children
                .get(&span.span_id)
                .cloned()
                .unwrap_or_default()
        } else {
            Vec::new()
        };
        let children = below
            .into_iter()
            .filter_map(|child| self.node(child, depth + 1))
            .collect();
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
    use aiops_telemetry_core::TraceId;

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
}
