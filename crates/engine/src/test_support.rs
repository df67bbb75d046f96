//! What the unit tests of the trace detectors share: time units, a start instant, and the
//! trace graphs the detectors read.

use aiops_rca::TraceGraph;
use aiops_telemetry_core::Span;

pub(crate) const MS: u64 = 1_000_000;
pub(crate) const SEC: u64 = 1_000_000_000;
pub(crate) const T0: u64 = 1_700_000_000 * SEC;

/// One graph per trace, as the engine hands them to the detectors.
pub(crate) fn graphs(traces: &[Vec<Span>]) -> Vec<TraceGraph<'_>> {
    traces
        .iter()
        .map(|trace| TraceGraph::build(trace))
        .collect()
}
