//! Work in progress.

mod trace_buffer;
pub use trace_buffer::{DEFAULT_TRACES_PER_ENDPOINT, TraceBuffer, TraceBufferStats};
