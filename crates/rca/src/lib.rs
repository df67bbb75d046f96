//! Root cause analysis over traces: which service started the trouble, how sure we are, and
//! which alerts it explains.
//!
//! The analyzer says *where* it hurts: a latency spike on `/checkout`, an error storm on
//! `/payment`. In a system of services calling each other one fault hurts everywhere upstream
//! of it, so those alerts are symptoms. This crate walks the traces of the anomalous endpoints
//! back to the span where each symptom started, ranks the candidates across many traces, and
//! folds every anomaly with the same origin into one [`IncidentDraft`].
//!
//! # Exclusive time and error provenance
//!
//! The key decision is what a trace is allowed to blame.
//!
//! - **Slowness is judged on exclusive (self) time**, never on inclusive duration. A caller's
//!   duration contains its callees', so when `/payment` slows down by a second, `/checkout`
//!   slows down by the same second and looks just as guilty. Its *self* time (its duration
//!   minus the time covered by its children, parallel children counted once) has not moved.
//!   [`Rca::learn`] learns each endpoint's normal self time from healthy traces; the span whose
//!   self time exceeds its endpoint's baseline the most is where the latency came from.
//! - **Errors are followed to their provenance.** Errors propagate to callers, so a failing
//!   span is only the origin if none of its children failed: the walk follows failing children
//!   down to the deepest failure whose callees all succeeded.
//! - **Hangs are failures of the callee.** A caller whose client timed out fails (often with a
//!   504) while its callee, still working, has not failed yet, or never reports failure. A
//!   child that outlived its parent or ran past the timeout is therefore treated as failed,
//!   and the hang is blamed on the span below with the largest self-time excess.
//!
//! Each trace that shows an anomaly's symptom votes for the endpoints it leads back to; the
//! confidence of a root cause is the share of those traces that name it, and runner-ups keep
//! their own shares in [`RootCause::candidates`]. Anomalies whose root cause is the same
//! endpoint with the same [`FaultFamily`] become one draft, whose impact lists every anomalous
//! endpoint it explains.
//!
//! [`TraceGraph`] builds the call tree from whatever spans arrived (out of order, missing
//! parents, duplicates, even cycles) without panicking, and computes exclusive time;
//! [`dependency_graph`] aggregates caller-to-callee edges between services as a by-product.
//!
//! The crate is pure: no I/O, no clock, no threads and no shared state. It works on the traces
//! it is handed; keeping recent traces, running cycles and tracking incidents over time is the
//! job of `aiops-engine`, which builds on it.
//!
//! # Example
//!
//! A shop's checkout calls a payment service. After learning what normal traces look like,
//! the shop's own analysis gets a latency spike on both endpoints and asks for the root cause.
//!
//! ```
//! use aiops_analyzer::{Anomaly, AnomalyKind, Config, Severity};
//! use aiops_rca::{Rca, RcaConfig};
//! use aiops_telemetry_core::{EndpointKey, Span, SpanId, TimeWindow, TraceId};
//!
//! const MS: u64 = 1_000_000;
//! // One checkout: 20 ms of its own work around a call to /payment that takes `payment_ms`.
//! fn checkout(start: u64, payment_ms: u64) -> Vec<Span> {
//!     let (trace, root) = (TraceId::random(), SpanId::random());
//!     vec![
//!         Span::new(trace, root, "checkout", "/checkout")
//!             .with_timing(start, (payment_ms + 20) * MS)
//!             .with_http_status(200),
//!         Span::new(trace, SpanId::random(), "payments", "/payment")
//!             .with_parent(root)
//!             .with_timing(start + 10 * MS, payment_ms * MS)
//!             .with_http_status(200),
//!     ]
//! }
//!
//! let mut rca = Rca::new(RcaConfig::default(), &Config::default());
//! let healthy: Vec<_> = (0..50).map(|i| checkout(i * 1_000 * MS, 160 + i % 5)).collect();
//! rca.learn(&healthy, |_endpoint| true);
//!
//! // Payment slows down; the analyzer flags both endpoints.
//! let spike = |service: &str, operation: &str, observed: f64, baseline: f64| Anomaly {
//!     kind: AnomalyKind::LatencySpike,
//!     endpoint: EndpointKey::new(service, operation),
//!     observed,
//!     baseline,
//!     ratio: observed / baseline,
//!     sample_count: 10,
//!     window: TimeWindow::new(0, 30_000 * MS),
//!     severity: Severity::High,
//!     description: format!(
//!         "Latency spike: {observed:.0}ms (baseline: {baseline:.0}ms, {:.1}x slower)",
//!         observed / baseline
//!     ),
//! };
//! let anomalies = [
//!     spike("checkout", "/checkout", 1270.0, 182.0),
//!     spike("payments", "/payment", 1250.0, 162.0),
//! ];
//! let sampled: Vec<_> = (0..10).map(|i| checkout(i * 2_000 * MS, 1250)).collect();
//!
//! let drafts = rca.explain(&anomalies, &sampled);
//!
//! // One incident, blamed on payment (checkout only looked slow), explaining both alerts.
//! assert_eq!(drafts.len(), 1);
//! let root = &drafts[0].root_cause;
//! assert_eq!((&*root.service, root.endpoint.as_str()), ("payments", "/payment"));
//! assert_eq!(root.description, "Latency spike: 1250ms (baseline: 162ms, 7.7x slower)");
//! assert_eq!(root.confidence, 1.0);
//! assert_eq!(drafts[0].title, "Latency spike detected in /payment");
//! assert_eq!(drafts[0].affected_endpoints.len(), 2);
//! ```

#![deny(missing_docs)]

mod contrast;
mod draft;
mod edge;
mod expect;
mod explain;
mod graph;
mod provenance;
mod rank;
mod root_cause;
mod selftime;
mod topology;

pub use expect::RcaConfig;
pub use explain::{MIN_SETTLED_WITNESSES, Rca};
pub use graph::TraceGraph;
pub use root_cause::{Candidate, FaultFamily, IncidentDraft, RootCause, SpanRef};
pub use selftime::SelfTimeBaseline;
pub use topology::{DependencyEdge, DependencyGraph, EndpointEdge, dependency_graph};
