//! Failing requests against successful ones of the same endpoint: which place below it went
//! quiet.
//!
//! A handler that returns early on bad data makes no call and reports no error; the error
//! surfaces above it, where the empty answer is checked. Nothing in the failing trace fails
//! below the span that reported it, and a learned call pattern may not exist yet (the defect
//! can start a minute after the service did). The sampled traces hold the answer on their own:
//! in the failing requests one endpoint below made no call at all, while in the successful
//! requests of the same window it made its calls. That endpoint is where the failure began.

use foldhash::HashMap;

use aiops_telemetry_core::{Span, is_outgoing_call};

use crate::graph::TraceGraph;

/// Least spans of an endpoint in failing requests, and in successful ones, to compare them.
const MIN_SPANS: u32 = 3;

/// Least share of the endpoint's spans in failing requests that made no call.
const MIN_QUIET_WHEN_FAILING: f64 = 0.8;

/// Most share of the endpoint's spans in successful requests that made no call.
const MAX_QUIET_WHEN_SUCCEEDING: f64 = 0.2;

/// How often one endpoint below the failing one made no call, in failing and in successful
/// requests.
#[derive(Default)]
struct Quiet {
    failing: u32,
    failing_quiet: u32,
    succeeding: u32,
    succeeding_quiet: u32,
}

impl Quiet {
    fn went_quiet(&self) -> bool {
        self.failing >= MIN_SPANS
            && self.succeeding >= MIN_SPANS
            && f64::from(self.failing_quiet) >= MIN_QUIET_WHEN_FAILING * f64::from(self.failing)
            && f64::from(self.succeeding_quiet)
                <= MAX_QUIET_WHEN_SUCCEEDING * f64::from(self.succeeding)
    }
}

/// The endpoints (service, operation) below the spans `at` (trace, node) that made no call in
/// the requests where that span failed and made their calls where it succeeded.
pub(crate) fn went_quiet<'a>(
    graphs: &[TraceGraph<'a>],
    at: &[(usize, usize)],
) -> Vec<(&'a str, &'a str)> {
    let mut seen: HashMap<(&'a str, &'a str), Quiet> = HashMap::default();
    for &(trace, node) in at {
        let graph = &graphs[trace];
        let failing = graph.span(node).is_error();
        for below in graph.subtree(node).into_iter().skip(1) {
            let span = graph.span(below);
            if span.is_error() || is_call(span) {
                continue;
            }
            let quiet = calls_made(graph, below) == 0;
            let entry = seen.entry((&*span.service, &*span.operation)).or_default();
            if failing {
                entry.failing += 1;
                entry.failing_quiet += u32::from(quiet);
            } else {
                entry.succeeding += 1;
                entry.succeeding_quiet += u32::from(quiet);
            }
        }
    }
    let mut quiet: Vec<(&str, &str)> = seen
        .into_iter()
        .filter(|(_, quiet)| quiet.went_quiet())
        .map(|(endpoint, _)| endpoint)
        .collect();
    quiet.sort_unstable();
    quiet
}

/// A span that stands for a call rather than for work in a service.
fn is_call(span: &Span) -> bool {
    is_outgoing_call(span)
}

/// The calls `node` made: its children that are calls out or spans of another service, looking
/// through its own service's internal spans.
fn calls_made(graph: &TraceGraph<'_>, node: usize) -> usize {
    let service = &graph.span(node).service;
    let mut calls = 0;
    let mut stack: Vec<usize> = graph.children(node).to_vec();
    while let Some(child) = stack.pop() {
        let span = graph.span(child);
        if is_call(span) || span.service != *service {
            calls += 1;
        } else {
            stack.extend_from_slice(graph.children(child));
        }
    }
    calls
}

#[cfg(test)]
mod tests {
    use super::*;
    use aiops_telemetry_core::{SpanId, SpanKind, TraceId};

    const MS: u64 = 1_000_000;
    const T0: u64 = 1_700_000_000_000_000_000;

    /// web -> cart -> (client) pricing -> pricing; cart returns early (no call) when `early`,
    /// and web answers 500 when it does.
    fn request(early: bool) -> Vec<Span> {
        let trace = TraceId::random();
        let web = Span::new(trace, SpanId::random(), "web", "GET /")
            .with_timing(T0, 50 * MS)
            .with_http_status(if early { 500 } else { 200 });
        let cart = Span::new(trace, SpanId::random(), "cart", "GET /cart")
            .with_parent(web.span_id)
            .with_timing(T0 + MS, 30 * MS);
        let render = Span::new(trace, SpanId::random(), "cart", "render")
            .with_kind(SpanKind::Internal)
            .with_parent(cart.span_id)
            .with_timing(T0 + 2 * MS, MS);
        let mut spans = vec![web, cart.clone(), render];
        if !early {
            let call = Span::new(trace, SpanId::random(), "cart", "GET")
                .with_kind(SpanKind::Client)
                .with_parent(cart.span_id)
                .with_timing(T0 + 3 * MS, 20 * MS);
            let pricing = Span::new(trace, SpanId::random(), "pricing", "GET /price")
                .with_parent(call.span_id)
                .with_timing(T0 + 4 * MS, 18 * MS);
            spans.extend([call, pricing]);
        }
        spans
    }

    fn quiet_below_web(early: &[bool]) -> Vec<(String, String)> {
        let traces: Vec<Vec<Span>> = early.iter().map(|&e| request(e)).collect();
        let graphs: Vec<TraceGraph<'_>> = traces.iter().map(|t| TraceGraph::build(t)).collect();
        let at: Vec<(usize, usize)> = (0..graphs.len()).map(|trace| (trace, 0)).collect();
        went_quiet(&graphs, &at)
            .into_iter()
            .map(|(s, o)| (s.to_owned(), o.to_owned()))
            .collect()
    }

    #[test]
    fn the_endpoint_that_made_no_call_in_the_failing_requests_went_quiet() {
        let early = [
            true, false, true, false, false, true, false, true, false, false,
        ];
        assert_eq!(
            quiet_below_web(&early),
            vec![("cart".to_owned(), "GET /cart".to_owned())]
        );
    }

    #[test]
    fn an_endpoint_quiet_in_successful_requests_too_did_not_go_quiet() {
        // Leaves (pricing) never call anything: no contrast, no suspicion.
        let early = [false, false, false, false, false, false];
        assert!(quiet_below_web(&early).is_empty());
        // Too few failing requests to compare.
        assert!(quiet_below_web(&[true, true, false, false, false]).is_empty());
    }
}
