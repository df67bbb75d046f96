//! The aiops engine's analysis tier: spans in, incidents out.
//!
//! [`aiops_analyzer`] says *where* it hurts (a latency spike on one endpoint) and [`aiops_rca`]
//! says *why* (the span where the trouble started), both as pure functions over the data they
//! are handed. Something has to hold that data between requests and decide when to look:
//! keep live per-endpoint statistics and the recent traces as spans arrive, run detection and
//! root cause analysis at each cycle, and keep one incident per problem over time. That is this
//! crate: an [`Engine`] fed through a [`Collector`](aiops_telemetry_core::Collector), driven by
//! one owner calling [`Engine::run_cycle`], and read concurrently through an [`EngineReader`].
//!
//! # The key decision: bounded memory, bounded cycles, no clock
//!
//! Everything the engine keeps is bounded: the live windows hold one window of per-second
//! buckets per endpoint, the [`TraceBuffer`] a fixed number of spans and of trace ids per
//! endpoint, the [`IncidentBook`] one active incident per cause and a capped history. A cycle
//! therefore reads the same amount of data whatever the traffic, and the engine can sit next to a
//! busy service. It never reads the clock and never spawns a thread or blocks: `now` is an
//! argument, so the same code runs on the wall clock (the server), a replayed file's clock or a
//! virtual one (tests and benchmarks), and the caller decides how often to run it.
//!
//! The [`IncidentBook`] holds the lifecycle rules as pure logic: deduplication by root cause,
//! the resolution watermark (evidence older than a resolution never brings an incident back) and
//! auto-resolve after healthy cycles.
//!
//! Beside spans, the engine takes log records and changes ([`Engine::log_collector`],
//! [`Engine::change_collector`]): an ERROR record fails the span it was logged in, log bodies
//! become templates per service, a new `service.version` is an observed deployment, and each
//! incident carries the changes near it, a deployment to blame, the attributes that explain it,
//! new log patterns and new exceptions ([`IncidentEvidence`]; ADR 0011).
//!
//! # Example
//!
//! Another Rust service monitors itself: it records its own spans into the engine, runs a cycle
//! every five seconds on its own timer, and reacts to the incidents that open.
//!
//! ```
//! use aiops_engine::{Engine, EngineConfig};
//! use aiops_telemetry_core::{Collector, Span, SpanId, TraceId};
//!
//! const SEC: u64 = 1_000_000_000;
//! const MS: u64 = 1_000_000;
//!
//! /// One request to `/orders`, which queries the `stock` service; `stock_ms` is its own time.
//! fn request(start: u64, stock_ms: u64) -> Vec<Span> {
//!     let trace = TraceId::random();
//!     let root = Span::new(trace, SpanId::random(), "orders", "GET /orders")
//!         .with_timing(start, (15 + stock_ms) * MS)
//!         .with_http_status(200);
//!     let stock = Span::new(trace, SpanId::random(), "stock", "GET /stock")
//!         .with_parent(root.span_id)
//!         .with_timing(start + 5 * MS, stock_ms * MS)
//!         .with_http_status(200);
//!     vec![root, stock]
//! }
//!
//! let mut engine = Engine::new(EngineConfig::default())?;
//! let collector = engine.collector(); // shared with the request path; never blocks
//! let reader = engine.reader(); // shared with readers; never waits for a cycle
//! let mut now = 1_700_000_000 * SEC;
//! let mut opened = Vec::new();
//!
//! // Twenty requests a second, a cycle every five seconds: a minute of normal traffic,
//! // then the stock service's own work slows from 30 ms to 400 ms.
//! for cycle in 0..16 {
//!     let stock_ms = if cycle < 12 { 30 } else { 400 };
//!     for i in 0..100 {
//!         let _ = collector.record_batch(request(now + i * 50 * MS, stock_ms + i % 7));
//!     }
//!     now += 5 * SEC;
//!     opened.extend(engine.run_cycle(now).opened().into_iter().map(str::to_owned));
//! }
//!
//! assert_eq!(opened.len(), 1, "one incident for one fault");
//! let incident = engine.incidents().get(&opened[0]).expect("kept");
//! assert_eq!(incident.root_cause.service, "stock");
//! assert!(incident.affected_endpoints.iter().any(|e| e.operation == "GET /orders"));
//! // The first failing trace can be read back while the engine keeps working.
//! let first = incident.root_cause.first_failing_span.as_ref().expect("a trace");
//! assert!(reader.trace(first.trace_id).is_some());
//! # Ok::<(), aiops_engine::EngineConfigError>(())
//! ```

#![deny(missing_docs)]

mod calls;
mod config;
mod engine;
mod evidence;
mod incident;
mod keying;
mod learn;
mod reader;
mod report;
mod shift;
#[cfg(test)]
mod test_support;
mod trace_buffer;
mod watermarks;

pub use config::{EngineConfig, EngineConfigError};
pub use engine::Engine;
pub use evidence::{
    DeploymentCause, EvidenceConfig, EvidenceStats, IncidentEvidence, Insight, LogPatternEvidence,
    NewException, ObservedVersion, ServiceVersions, VersionShare,
};
pub use incident::{
    DEFAULT_AUTO_RESOLVE_CYCLES, DEFAULT_MAX_RESOLVED_INCIDENTS, DEFAULT_REVISE_WINDOW_NANOS,
    Damping, Incident, IncidentBook, IncidentChange, IncidentError, IncidentStatus,
    MIN_CONFIDENCE_TO_OPEN, MIN_CONFIDENCE_TO_REVISE,
};
pub use reader::EngineReader;
pub use report::{CycleReport, EndpointWatermark, EngineSnapshot};
pub use trace_buffer::{CallRecord, DEFAULT_TRACES_PER_ENDPOINT, TraceBuffer, TraceBufferStats};
pub use watermarks::{CauseWatermark, Watermarks};
