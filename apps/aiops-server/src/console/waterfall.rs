//! A trace drawn as a waterfall: one row a span, in tree order, indented by depth, with a bar
//! placed on the trace's time line, its own (self) time, and its attributes; a chosen span (the
//! first failing span of an incident) is lit.

use std::collections::{BTreeMap, HashMap};

use aiops_rca::TraceGraph;
use aiops_telemetry_core::Span;
use maud::{Markup, html};

use super::word;
use crate::views::format::EndpointNaming;
use crate::views::trace::{SpanNode, TraceTree};

/// One span's row.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    /// Depth in the tree, 0 for a root.
    pub depth: usize,
    /// Span id, 16 hex digits.
    pub span_id: String,
    /// Service.
    pub service: String,
    /// The endpoint, named like the `metrics` keys.
    pub endpoint: String,
    /// `server`, `client`, ...
    pub kind: String,
    /// From the trace's start to the span's, in milliseconds.
    pub offset_ms: f64,
    /// How long the span took.
    pub duration_ms: f64,
    /// Of that, the time in no child span.
    pub self_ms: f64,
    /// The HTTP status, for HTTP spans.
    pub http_status: Option<u16>,
    /// True when the span failed.
    pub error: bool,
    /// Its attributes.
    pub attributes: BTreeMap<String, String>,
}

/// A trace, row by row.
#[derive(Clone, Debug, PartialEq)]
pub struct Waterfall {
    /// Trace id.
    pub trace_id: String,
    /// From the first start to the last end.
    pub duration_ms: f64,
    /// ISO 8601 start.
    pub started_at: String,
    /// The rows, in tree order (a span, then the spans it called by start time).
    pub rows: Vec<Row>,
}

impl Waterfall {
    /// The waterfall of `spans` (one trace), in the order of the API's span tree
    /// ([`TraceTree`]), with self times from the trace graph RCA reads.
    pub fn new(naming: &EndpointNaming, spans: &[Span]) -> Self {
        let tree = TraceTree::new(naming, spans);
        let graph = TraceGraph::build(spans);
        let start = spans
            .iter()
            .map(|span| span.start_unix_nanos)
            .min()
            .unwrap_or(0);
        let timing: HashMap<String, (f64, f64)> = graph
            .nodes()
            .map(|(node, span)| {
                (
                    span.span_id.to_string(),
                    (
                        span.start_unix_nanos.saturating_sub(start) as f64 / 1e6,
                        graph.self_time_ms(node),
                    ),
                )
            })
            .collect();
        let mut rows = Vec::with_capacity(tree.span_count);
        let mut stack: Vec<(&SpanNode, usize)> =
            tree.roots.iter().rev().map(|root| (root, 0)).collect();
        while let Some((node, depth)) = stack.pop() {
            let (offset_ms, self_ms) = timing.get(&node.span_id).copied().unwrap_or_default();
            rows.push(Row {
                depth,
                span_id: node.span_id.clone(),
                service: node.service.clone(),
                endpoint: node.endpoint.clone(),
                kind: word(&node.kind),
                offset_ms,
                duration_ms: node.duration_ms.unwrap_or(0.0),
                self_ms,
                http_status: node.http_status,
                error: node.error,
                attributes: node.attributes.clone(),
            });
            stack.extend(node.children.iter().rev().map(|child| (child, depth + 1)));
        }
        Self {
            trace_id: tree.trace_id.unwrap_or_default(),
            duration_ms: tree.duration_ms.unwrap_or(0.0),
            started_at: tree.started_at,
            rows,
        }
    }

    /// The waterfall as a list, with span `lit` (if any) marked as the failing span.
    pub fn render(&self, lit: Option<&str>) -> Markup {
        let total = self.duration_ms.max(0.001);
        let share = |ms: f64| (ms / total * 100.0).clamp(0.0, 100.0);
        html! {
            div.waterfall {
                p.meta {
                    "Trace " code { (self.trace_id) } " · started " time datetime=(self.started_at) { (self.started_at) }
                    " · " (format!("{:.1}", self.duration_ms)) " ms · " (self.rows.len()) " spans"
                }
                ol.spans role="list" {
                    @for row in &self.rows {
                        @let is_lit = lit == Some(row.span_id.as_str());
                        li.span.error[row.error].lit[is_lit] data-span-id=(row.span_id) style=(format!("--depth:{}", row.depth.min(24))) {
                            details {
                                summary {
                                    span.name {
                                        span.service { (row.service) }
                                        " " (row.endpoint)
                                        @if is_lit { " " strong.badge { "failing span" } }
                                        @else if row.error { " " span.badge.bad { "error" } }
                                        @if let Some(exception) = row.attributes.get("exception.type") {
                                            " " span.exception title=(row.attributes.get("exception.message").map_or("", String::as_str)) { (exception) }
                                        }
                                    }
                                    span.track aria-hidden="true" {
                                        span.bar style=(format!("left:{:.2}%;width:{:.2}%", share(row.offset_ms), share(row.duration_ms).max(0.3))) {}
                                    }
                                    span.time {
                                        (format!("{:.1} ms", row.duration_ms))
                                        span.self-time { " (self " (format!("{:.1}", row.self_ms)) ")" }
                                    }
                                }
                                dl.attributes {
                                    dt { "span" } dd { code { (row.span_id) } }
                                    dt { "kind" } dd { (row.kind) }
                                    dt { "starts at" } dd { "+" (format!("{:.1}", row.offset_ms)) " ms" }
                                    dt { "self time" } dd { (format!("{:.2}", row.self_ms)) " ms" }
                                    @if let Some(status) = row.http_status { dt { "http status" } dd { (status) } }
                                    @for (key, value) in &row.attributes { dt { (key) } dd { (value) } }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use aiops_telemetry_core::{SpanId, TraceId};

    use super::*;

    #[test]
    fn rows_follow_the_tree_with_offsets_self_times_and_the_lit_span() {
        let naming = EndpointNaming::by_path("shop");
        let trace = TraceId::random();
        let ms = 1_000_000;
        let root = Span::new(trace, SpanId::random(), "shop", "/checkout")
            .with_timing(1_000 * ms, 100 * ms);
        let payment = Span::new(trace, SpanId::random(), "shop", "/payment")
            .with_parent(root.span_id)
            .with_timing(1_010 * ms, 80 * ms)
            .with_http_status(500);
        let waterfall = Waterfall::new(&naming, &[payment.clone(), root.clone()]);
        assert_eq!(waterfall.rows.len(), 2);
        let (first, second) = (&waterfall.rows[0], &waterfall.rows[1]);
        assert_eq!((first.endpoint.as_str(), first.depth), ("/checkout", 0));
        assert_eq!((second.endpoint.as_str(), second.depth), ("/payment", 1));
        assert!((first.self_ms - 20.0).abs() < 1e-6, "{}", first.self_ms);
        assert!((second.offset_ms - 10.0).abs() < 1e-6);
        let html = waterfall
            .render(Some(&payment.span_id.to_string()))
            .into_string();
        assert_eq!(html.matches("failing span").count(), 1, "{html}");
        assert!(html.contains("class=\"span error lit\""), "{html}");
        let thrown = payment
            .clone()
            .with_attribute("exception.type", "PaymentDeclined")
            .with_attribute("exception.message", "card <expired>");
        let html = Waterfall::new(&naming, &[thrown, root.clone()])
            .render(None)
            .into_string();
        assert!(
            html.contains(
                r#"<span class="exception" title="card &lt;expired&gt;">PaymentDeclined</span>"#
            ),
            "the exception is named on its span's row: {html}"
        );
    }
}
