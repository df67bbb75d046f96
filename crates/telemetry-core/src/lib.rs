//! The vocabulary of the aiops engine: spans, their ids, W3C trace context, and the
//! [`Collector`] trait every span travels through.
//!
//! A [`Span`] is one unit of work (a request served, a call made) in a trace. Spans come from
//! the demo shop's middleware, from OpenTelemetry exporters (with the `otlp` feature, see
//! `otlp::spans_from_request`) and from replayed files; whatever their source, they are handed
//! to a [`Collector`]. The one design decision that shapes everything downstream is the
//! collector contract: **recording never blocks**. A collector that cannot keep up drops spans
//! and counts them, so monitoring can slow down or lose data but never slows down the service
//! it watches.
//!
//! Beside spans travel [`LogRecord`]s (what services logged, through a [`LogCollector`]) and
//! [`Change`]s (deployments, configuration changes, through a [`ChangeCollector`]).
//!
//! Window statistics ([`WindowStats`] over a [`TimeWindow`] for an [`EndpointKey`]) are the
//! common currency between the stores that aggregate spans and the analyzer that learns
//! baselines from them.
//!
//! ```
//! use aiops_telemetry_core::{Collector, Fanout, InMemoryCollector, Span, SpanId, SpanKind,
//!     TraceId, TraceParent};
//! use std::sync::Arc;
//!
//! // A checkout arrives with a traceparent from its caller.
//! let parent: TraceParent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".parse()?;
//! let span = Span::new(parent.trace_id, SpanId::random(), "shop", "/checkout")
//!     .with_parent(parent.parent_id)
//!     .with_kind(SpanKind::Server)
//!     .with_timing(1_700_000_000_000_000_000, 42_000_000)
//!     .with_http_status(200);
//!
//! // The context it passes on to /payment names this span as the parent.
//! let outgoing = TraceParent::new(span.trace_id, span.span_id);
//! assert_eq!(outgoing.to_string().len(), 55);
//!
//! let store = Arc::new(InMemoryCollector::default());
//! let collector = Fanout::new(vec![store.clone()]);
//! assert_eq!(collector.record(span).accepted, 1);
//! assert_eq!(store.spans()[0].operation, "/checkout");
//! # Ok::<(), aiops_telemetry_core::TraceContextError>(())
//! ```
//!
//! # Features
//!
//! - `testing`: `InMemoryCollector`, a collector that keeps spans in memory; with `otlp`, also
//!   `otlp::testing`, builders of OTLP requests for tests and load generators.
//! - `otlp`: mapping from OpenTelemetry OTLP `ExportTraceServiceRequest` messages to spans.

#![deny(missing_docs)]

mod collector;
mod error;
mod ids;
mod log;
#[cfg(any(test, feature = "testing"))]
mod memory;
#[cfg(feature = "otlp")]
pub mod otlp;
mod peer;
mod span;
mod text;
mod traceparent;
mod window;

pub use collector::{Collector, Fanout, RecordOutcome};
pub use error::{CollectorError, IdError, TraceContextError};
pub use ids::{SpanId, TraceId};
pub use log::{
    Change, ChangeCollector, ChangeKind, ChangeSource, LogCollector, LogRecord, LogSeverity,
};
#[cfg(any(test, feature = "testing"))]
pub use memory::InMemoryCollector;
pub use peer::{
    PEER_ATTRIBUTES, PEER_SEPARATOR, is_outgoing_call, key_by_peer, peer_in_operation,
    peer_keyed_operation, peer_of,
};
pub use span::{Attributes, EndpointKey, Span, SpanKind, SpanStatus};
pub use text::SpanText;
pub use traceparent::TraceParent;
pub use window::{TimeWindow, WindowStats};
