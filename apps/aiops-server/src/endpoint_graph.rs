//! Calls between endpoints, for the topology view.
//!
//! `aiops_rca::dependency_graph` is a service graph and leaves out calls within one service,
//! which is every call of the demo shop (one service, four endpoints). This view counts
//! parent -> child span pairs by endpoint instead, so `/checkout -> /payment` shows.

use std::collections::{BTreeMap, HashMap};

use aiops_telemetry_core::{EndpointKey, Span, SpanId};

/// Calls from one endpoint to another over the traces looked at.
#[derive(Clone, Debug, PartialEq)]
pub struct EndpointEdge {
    /// The calling endpoint.
    pub caller: EndpointKey,
    /// The called endpoint.
    pub callee: EndpointKey,
    /// Calls seen.
    pub calls: u64,
    /// Calls whose callee span failed.
    pub errors: u64,
    /// Mean duration of the callee spans, in milliseconds.
    pub mean_latency_ms: f64,
}

impl EndpointEdge {
    /// Share of calls that failed.
    pub fn error_rate(&self) -> f64 {
        if self.calls == 0 {
            0.0
        } else {
            self.errors as f64 / self.calls as f64
        }
    }
}

/// Every caller -> callee endpoint pair in `traces`, sorted by caller then callee.
pub fn endpoint_edges(traces: &[Vec<Span>]) -> Vec<EndpointEdge> {
    let mut tallies: BTreeMap<(EndpointKey, EndpointKey), (u64, u64, f64)> = BTreeMap::new();
    for trace in traces {
        let by_id: HashMap<SpanId, &Span> = trace.iter().map(|span| (span.span_id, span)).collect();
        for span in trace {
            let Some(parent) = span
                .parent_span_id
                .filter(|parent| *parent != span.span_id)
                .and_then(|parent| by_id.get(&parent))
            else {
                continue;
            };
            let tally = tallies
                .entry((parent.endpoint(), span.endpoint()))
                .or_default();
            tally.0 += 1;
            tally.1 += u64::from(span.is_error());
            tally.2 += span.duration_ms();
        }
    }
    tallies
        .into_iter()
        .map(
            |((caller, callee), (calls, errors, total_ms))| EndpointEdge {
                caller,
                callee,
                calls,
                errors,
                mean_latency_ms: total_ms / calls as f64,
            },
        )
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use aiops_telemetry_core::TraceId;

    #[test]
    fn counts_calls_between_endpoints_of_one_service() {
        let trace = TraceId::random();
        let checkout = Span::new(trace, SpanId::random(), "shop", "/checkout").with_timing(0, 30);
        let payment = Span::new(trace, SpanId::random(), "shop", "/payment")
            .with_parent(checkout.span_id)
            .with_timing(1, 20_000_000)
            .with_http_status(500);
        let orphan =
            Span::new(trace, SpanId::random(), "shop", "/inventory").with_parent(SpanId::random());

        let edges = endpoint_edges(&[vec![checkout, payment, orphan]]);

        assert_eq!(edges.len(), 1);
        assert_eq!(edges[0].caller, EndpointKey::new("shop", "/checkout"));
        assert_eq!(edges[0].callee, EndpointKey::new("shop", "/payment"));
        assert_eq!((edges[0].calls, edges[0].errors), (1, 1));
        assert_eq!(edges[0].error_rate(), 1.0);
        assert_eq!(edges[0].mean_latency_ms, 20.0);
    }
}
