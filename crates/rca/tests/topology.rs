//! The service dependency graph.

use crate::common::{TraceBuilder, shop_trace};
use aiops_rca::dependency_graph;

#[test]
fn edges_count_calls_errors_and_latency_between_services() {
    let traces = vec![
        shop_trace(0, 20, 30, &[]),
        shop_trace(100, 20, 30, &["checkout", "payment"]),
        shop_trace(200, 20, 70, &[]),
    ];

    let graph = dependency_graph(&traces);

    assert_eq!(graph.edges.len(), 2);
    let payments = graph
        .edge("checkout", "payments")
        .expect("checkout calls payments");
    assert_eq!((payments.calls, payments.errors), (3, 1));
    assert!((payments.error_rate - 1.0 / 3.0).abs() < 1e-9);
    assert!((payments.mean_latency_ms - (50.0 + 50.0 + 90.0) / 3.0).abs() < 1e-9);
    let bank = graph.edge("payments", "bank").expect("payments calls bank");
    assert_eq!(
        (bank.calls, bank.errors, bank.mean_latency_ms),
        (3, 0, 20.0)
    );
    assert_eq!(graph.services(), ["bank", "checkout", "payments"]);
}

#[test]
fn calls_within_a_service_and_orphans_are_not_edges() {
    let mut trace = TraceBuilder::new(0);
    let handler = trace.ok(None, "shop", "/checkout", 0, 50);
    trace.ok(Some(handler), "shop", "validate", 1, 5);
    let mut orphan = TraceBuilder::new(0);
    orphan.ok(
        Some(aiops_telemetry_core::SpanId::random()),
        "payments",
        "/payment",
        0,
        5,
    );

    let graph = dependency_graph(&[trace.build(), orphan.build()]);

    assert!(graph.edges.is_empty());
    assert_eq!(graph.endpoint_edges.len(), 1, "only /checkout -> validate");
}

#[test]
fn routes_of_one_service_calling_each_other_are_endpoint_edges() {
    let mut trace = TraceBuilder::new(0);
    let checkout = trace.ok(None, "shop", "/checkout", 0, 50);
    trace.ok(Some(checkout), "shop", "/payment", 1, 30);
    trace.ok(Some(checkout), "shop", "/inventory", 31, 10);

    let graph = dependency_graph(&[trace.build()]);

    let callees: Vec<&str> = graph
        .endpoint_edges
        .iter()
        .map(|edge| &*edge.callee.operation)
        .collect();
    assert_eq!(callees, ["/inventory", "/payment"]);
    assert!(graph.endpoint_edges.iter().all(|edge| {
        edge.caller.operation == "/checkout" && edge.calls == 1 && edge.errors == 0
    }));
}

#[test]
fn graph_serializes_as_a_list_of_edges() {
    let graph = dependency_graph(&[shop_trace(0, 20, 30, &[])]);

    let json = serde_json::to_value(&graph).expect("serializes");

    assert_eq!(json["edges"][0]["caller"], "checkout");
    assert_eq!(json["edges"][0]["callee"], "payments");
    assert_eq!(json["edges"][0]["calls"], 1);
}
