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

use aiops_telemetry_core::{EndpointKey, Span, is_outgoing_call, peer_in_operation};

use crate::graph::TraceGraph;

/// Least spans of an endpoint in failing requests, and in successful ones, to compare them.
const MIN_SPANS: u32 = 3;

/// Most calls per request an endpoint makes in the failing requests, as a share of those it
/// makes in the successful ones, to have gone quiet.
const MAX_SHARE_OF_CALLS_WHEN_FAILING: f64 = 0.5;

/// How many calls one endpoint below the failing one made, in failing and in successful
/// requests.
#[derive(Default)]
struct Quiet {
    failing: u32,
    failing_calls: u64,
    succeeding: u32,
    succeeding_calls: u64,
}

impl Quiet {
    /// Enough spans on both sides, calls made in the successful requests (at least one per
    /// request), and at most half as many per request in the failing ones.
    fn went_quiet(&self) -> bool {
        if self.failing < MIN_SPANS || self.succeeding < MIN_SPANS {
            return false;
        }
        let failing = self.failing_calls as f64 / f64::from(self.failing);
        let succeeding = self.succeeding_calls as f64 / f64::from(self.succeeding);
        succeeding >= 1.0 && failing <= MAX_SHARE_OF_CALLS_WHEN_FAILING * succeeding
    }
}

/// The endpoints (service, operation) below the spans `at` (trace, node) that made at most half
/// as many calls per request in the requests where that span failed as where it succeeded.
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
            if span.is_error() || is_outgoing_call(span) {
                continue;
            }
            let calls = calls_of(graph, below).len() as u64;
            let entry = seen.entry((&*span.service, &*span.operation)).or_default();
            if failing {
                entry.failing += 1;
                entry.failing_calls += calls;
            } else {
                entry.succeeding += 1;
                entry.succeeding_calls += calls;
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

/// What `root` did in the sampled traces when it is blamed for failures it never reported: how
/// many calls per request it made in the requests that failed above it, against those where
/// nothing above it failed, and whom it calls. `None` when the failing requests show no fewer
/// calls.
pub(crate) fn describe_quiet(root: &EndpointKey, graphs: &[TraceGraph<'_>]) -> Option<String> {
    let mut quiet = Quiet::default();
    let mut callees: HashMap<&str, u32> = HashMap::default();
    for graph in graphs {
        for (node, span) in graph.nodes() {
            if span.service != root.service || span.operation != root.operation {
                continue;
            }
            let calls = calls_of(graph, node);
            if failed_above(graph, node) {
                quiet.failing += 1;
                quiet.failing_calls += calls.len() as u64;
            } else {
                quiet.succeeding += 1;
                quiet.succeeding_calls += calls.len() as u64;
            }
            for callee in calls {
                *callees.entry(callee_name(graph, callee, span)).or_default() += 1;
            }
        }
    }
    if quiet.failing == 0 || quiet.succeeding == 0 {
        return None;
    }
    let failing = quiet.failing_calls as f64 / f64::from(quiet.failing);
    let succeeding = quiet.succeeding_calls as f64 / f64::from(quiet.succeeding);
    if failing >= succeeding {
        return None;
    }
    let mut usual_callees: Vec<(&str, u32)> = callees.into_iter().collect();
    usual_callees.sort_unstable_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let named: Vec<&str> = usual_callees
        .iter()
        .take(3)
        .map(|(name, _)| *name)
        .collect();
    let whom = if named.is_empty() {
        String::new()
    } else {
        format!(" (to {})", named.join(", "))
    };
    Some(format!(
        "Returned early: {failing:.1} calls per request{whom} in {} requests that failed above it, against {succeeding:.1} in {} that did not, with no error of its own",
        quiet.failing, quiet.succeeding
    ))
}

/// True when a span above `node` in its trace failed.
fn failed_above(graph: &TraceGraph<'_>, node: usize) -> bool {
    let mut at = graph.parent(node);
    while let Some(above) = at {
        if graph.span(above).is_error() {
            return true;
        }
        at = graph.parent(above);
    }
    false
}

/// How a call of `caller` is named: the service of the server span below a client span, else
/// the peer its operation is keyed by, else its operation; a span of another service by its
/// service.
fn callee_name<'a>(graph: &TraceGraph<'a>, callee: usize, caller: &Span) -> &'a str {
    let called = graph.span(callee);
    if called.service != caller.service {
        return &called.service;
    }
    let server = graph
        .children(callee)
        .iter()
        .map(|&below| graph.span(below))
        .find(|below| below.service != caller.service);
    match server {
        Some(server) => &server.service,
        None => peer_in_operation(&called.operation).unwrap_or(&called.operation),
    }
}

/// The calls `node` made: its children that are calls out or spans of another service, looking
/// through its own service's internal spans.
fn calls_of(graph: &TraceGraph<'_>, node: usize) -> Vec<usize> {
    let service = &graph.span(node).service;
    let mut calls = Vec::new();
    let mut stack: Vec<usize> = graph.children(node).to_vec();
    while let Some(child) = stack.pop() {
        let span = graph.span(child);
        if is_outgoing_call(span) || span.service != *service {
            calls.push(child);
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
    fn an_endpoint_that_went_quiet_is_described_by_what_it_skipped() {
        let traces: Vec<Vec<Span>> = [true, false, true, false]
            .iter()
            .map(|&e| request(e))
            .collect();
        let graphs: Vec<TraceGraph<'_>> = traces.iter().map(|t| TraceGraph::build(t)).collect();
        let cart = EndpointKey::new("cart", "GET /cart");
        assert_eq!(
            describe_quiet(&cart, &graphs).as_deref(),
            Some(
                "Returned early: 0.0 calls per request (to pricing) in 2 requests that failed \
                 above it, against 1.0 in 2 that did not, with no error of its own"
            )
        );
        let web = EndpointKey::new("web", "GET /");
        assert_eq!(describe_quiet(&web, &graphs), None);
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
