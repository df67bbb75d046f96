//! The trace graph: tolerance of bad span data and exclusive time.

use aiops_rca::TraceGraph;
use aiops_telemetry_core::{Span, SpanId, TraceId};
use proptest::prelude::*;

const MS: u64 = 1_000_000;

fn id(n: u8) -> SpanId {
    SpanId::from_bytes([0, 0, 0, 0, 0, 0, 0, n])
}

fn trace() -> TraceId {
    TraceId::from_bytes([7; 16])
}

/// A span `n` of `service` with parent `parent` (0 for none), starting and lasting in ms.
fn span(n: u8, parent: u8, service: &str, start_ms: u64, duration_ms: u64) -> Span {
    let span = Span::new(trace(), id(n), service.to_owned(), format!("/{service}"))
        .with_timing(start_ms * MS, duration_ms * MS);
    if parent == 0 {
        span
    } else {
        span.with_parent(id(parent))
    }
}

fn operation_of(graph: &TraceGraph<'_>, node: usize) -> String {
    graph.span(node).operation.to_string()
}

#[test]
fn empty_input_gives_an_empty_graph() {
    let graph = TraceGraph::build(&[]);
    assert!(graph.is_empty());
    assert!(graph.roots().is_empty());
}

#[test]
fn children_are_linked_whatever_the_arrival_order() {
    let spans = vec![
        span(3, 2, "db", 20, 10),
        span(2, 1, "payment", 10, 40),
        span(1, 0, "checkout", 0, 100),
    ];
    let graph = TraceGraph::build(&spans);
    assert_eq!(graph.roots().len(), 1);
    let root = graph.roots()[0];
    assert_eq!(operation_of(&graph, root), "/checkout");
    let payment = graph.children(root)[0];
    assert_eq!(operation_of(&graph, payment), "/payment");
    assert_eq!(graph.depth(graph.children(payment)[0]), 2);
    assert_eq!(graph.subtree(root).len(), 3);
}

#[test]
fn span_with_a_missing_parent_becomes_a_root() {
    let spans = vec![
        span(1, 0, "checkout", 0, 100),
        span(2, 9, "payment", 10, 40),
    ];
    let graph = TraceGraph::build(&spans);
    assert_eq!(graph.roots().len(), 2);
    assert_eq!(graph.parent(1), None);
}

#[test]
fn duplicate_span_ids_keep_the_first_span() {
    let spans = vec![
        span(1, 0, "checkout", 0, 100),
        span(1, 0, "impostor", 0, 5),
        span(2, 1, "payment", 10, 40),
    ];
    let graph = TraceGraph::build(&spans);
    assert_eq!(graph.len(), 2);
    assert_eq!(graph.duplicates(), 1);
    assert_eq!(operation_of(&graph, graph.roots()[0]), "/checkout");
}

#[test]
fn same_span_id_in_different_traces_is_not_a_duplicate() {
    let other = Span::new(TraceId::from_bytes([8; 16]), id(1), "shop", "/health");
    let spans = vec![span(1, 0, "checkout", 0, 100), other];
    let graph = TraceGraph::build(&spans);
    assert_eq!(graph.len(), 2);
    assert_eq!(graph.duplicates(), 0);
}

#[test]
fn cycles_are_cut_at_their_earliest_span() {
    let spans = vec![
        span(1, 3, "a", 0, 100),
        span(2, 1, "b", 10, 50),
        span(3, 2, "c", 20, 10),
        span(4, 4, "self", 0, 1),
        span(5, 2, "below-cycle", 30, 5),
    ];
    let graph = TraceGraph::build(&spans);
    assert_eq!(graph.broken_cycles(), 2);
    let roots: Vec<String> = graph
        .roots()
        .iter()
        .map(|&n| operation_of(&graph, n))
        .collect();
    assert_eq!(roots, ["/a", "/self"]);
    assert_eq!(graph.subtree(graph.roots()[0]).len(), 4);
}

#[test]
fn self_time_subtracts_sequential_children() {
    let spans = vec![
        span(1, 0, "checkout", 0, 100),
        span(2, 1, "payment", 10, 30),
        span(3, 1, "inventory", 50, 20),
    ];
    let graph = TraceGraph::build(&spans);
    assert_eq!(graph.self_time_nanos(0), 50 * MS);
    assert_eq!(graph.self_time_nanos(1), 30 * MS);
}

#[test]
fn self_time_counts_overlapping_parallel_children_once() {
    let spans = vec![
        span(1, 0, "gateway", 0, 100),
        span(2, 1, "a", 10, 40),
        span(3, 1, "b", 20, 40),
        span(4, 1, "c", 25, 5),
    ];
    let graph = TraceGraph::build(&spans);
    // Children cover [10, 60): 50 ms of the parent's 100 ms.
    assert_eq!(graph.self_time_nanos(0), 50 * MS);
}

#[test]
fn children_are_clipped_to_the_parent_interval() {
    // The caller gave up at 60 ms; its callee hung until 510 ms.
    let spans = vec![
        span(1, 0, "caller", 0, 60),
        span(2, 1, "callee", 10, 500),
        span(3, 1, "early", 0, 0),
    ];
    let graph = TraceGraph::build(&spans);
    assert_eq!(graph.self_time_nanos(0), 10 * MS);
    assert_eq!(graph.self_time_nanos(1), 500 * MS);
}

#[test]
fn self_time_is_never_negative() {
    let spans = vec![span(1, 0, "p", 100, 10), span(2, 1, "c", 0, 1_000)];
    let graph = TraceGraph::build(&spans);
    assert_eq!(graph.self_time_nanos(0), 0);
}

fn arbitrary_span() -> impl Strategy<Value = Span> {
    (
        1u8..12,
        proptest::option::of(0u8..12),
        0u8..2,
        any::<u64>(),
        any::<u64>(),
    )
        .prop_map(|(n, parent, trace, start, duration)| {
            let mut span = Span::new(TraceId::from_bytes([trace + 1; 16]), id(n), "s", "/op")
                .with_timing(start, duration);
            span.parent_span_id = parent.map(id);
            span
        })
}

proptest! {
    #[test]
    fn build_never_panics_and_every_span_is_reachable(
        spans in proptest::collection::vec(arbitrary_span(), 0..40)
    ) {
        let graph = TraceGraph::build(&spans);
        let reachable: usize = graph.roots().iter().map(|&r| graph.subtree(r).len()).sum();
        prop_assert_eq!(reachable, graph.len());
        for (node, span) in graph.nodes() {
            prop_assert!(graph.self_time_nanos(node) <= span.duration_nanos);
        }
    }
}
