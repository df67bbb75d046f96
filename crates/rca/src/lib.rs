//! Work in progress.

#![deny(missing_docs)]

mod graph;
mod topology;
mod trace_buffer;

pub use graph::TraceGraph;
pub use topology::{DependencyEdge, DependencyGraph, dependency_graph};
pub use trace_buffer::{DEFAULT_TRACES_PER_ENDPOINT, TraceBuffer, TraceBufferStats};
