//! [`EngineReader`]: reads that need not wait for the analysis cycle.

use std::sync::Arc;

use aiops_analyzer::LiveWindows;
use aiops_rca::{DependencyGraph, dependency_graph};
use aiops_telemetry_core::{EndpointKey, Span, TimeWindow, TraceId};

use crate::trace_buffer::{TraceBuffer, TraceBufferStats};

/// A cloneable, `Send + Sync` handle on what an [`Engine`](crate::Engine) has buffered: recent
/// traces, the dependency graph built from them, and the live windows' counters.
///
/// Every read takes only the buffer's own short lock, as recording does; none waits for a
/// cycle, so an HTTP handler can serve a trace or the topology while the engine analyses.
#[derive(Clone, Debug)]
pub struct EngineReader {
    traces: Arc<TraceBuffer>,
    live: Arc<LiveWindows>,
    topology_max_traces: usize,
}

impl EngineReader {
    pub(crate) fn new(
        traces: Arc<TraceBuffer>,
        live: Arc<LiveWindows>,
        topology_max_traces: usize,
    ) -> Self {
        Self {
            traces,
            live,
            topology_max_traces,
        }
    }

    /// The spans of trace `trace_id`, if it is still buffered.
    pub fn trace(&self, trace_id: TraceId) -> Option<Vec<Span>> {
        self.traces.trace(trace_id)
    }

    /// The service dependency graph of the buffered traces with a span in `window` (at most
    /// `topology_max_traces` of the most recent).
    pub fn topology(&self, window: TimeWindow) -> DependencyGraph {
        dependency_graph(&self.traces.recent_traces(window, self.topology_max_traces))
    }

    /// What the trace buffer holds and has evicted.
    pub fn trace_buffer_stats(&self) -> TraceBufferStats {
        self.traces.stats()
    }

    /// The endpoints with traffic in the live windows (at most one window and an interval old).
    pub fn live_endpoints(&self) -> Vec<EndpointKey> {
        self.live.endpoints()
    }

    /// Spans the live windows left out because their endpoint was past the tracked-endpoint
    /// cap.
    pub fn untracked_spans(&self) -> u64 {
        self.live.untracked_spans()
    }
}
