//! Work in progress.

#![deny(missing_docs)]

mod draft;
mod explain;
mod graph;
mod provenance;
mod rank;
mod root_cause;
mod selftime;
mod topology;
mod trace_buffer;

pub use explain::{Rca, RcaConfig};
pub use graph::TraceGraph;
pub use root_cause::{Candidate, FaultFamily, IncidentDraft, RootCause, SpanRef};
pub use selftime::SelfTimeBaseline;
pub use topology::{DependencyEdge, DependencyGraph, dependency_graph};
pub use trace_buffer::{DEFAULT_TRACES_PER_ENDPOINT, TraceBuffer, TraceBufferStats};
