//! Integration tests of root cause analysis, as one test binary.

mod common;
mod edges;
mod explain;
mod graph;
mod properties;
mod topology;
