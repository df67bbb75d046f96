//! Adaptive per-endpoint baselines and anomaly detection: window statistics in, anomalies out.
//!
//! An [`Analyzer`] learns a [`Baseline`] per endpoint (mean and p95 latency, error rate) from
//! the endpoint's own healthy traffic, with no manual thresholds, and on every cycle compares a
//! recent window against it to find latency spikes, error storms and timeouts ([`Anomaly`]).
//! Each cycle also grades every endpoint's [`Health`]. [`LiveWindows`] is the in-memory feed:
//! a [`Collector`](aiops_telemetry_core::Collector) that buckets spans by their start time so
//! that window statistics cost the same however busy the service is. The knobs are in
//! [`Config`], whose defaults detect within seconds. [`describe`] puts anomalies into words:
//! the detectors' sentences and their number formats, which root cause analysis uses too.
//!
//! # Learn from fresh slices, detect on windows, freeze while anomalous
//!
//! Detection and learning look at different slices of time, and that is the key decision.
//! Detection looks at a sliding window (30 s by default, every 5 s), long enough to hold a
//! handful of requests at low traffic. Learning looks only at the traffic that is new since
//! the previous cycle: the windows overlap six-fold, and learning from them would count every
//! request six times and let one bad window leave six marks. And learning stops for an endpoint
//! while it is anomalous, so a fault that lasts an hour is still a fault at the end of the
//! hour. Learning is also more cautious than alerting: a fresh slice that is even halfway to a
//! threshold on its own is not learned, because the first seconds of a fault show in the fresh
//! slice before they move the window. Baselines forget with a half-life (30 minutes by
//! default), so slow drift is absorbed while sudden change stands out.
//!
//! False positives are the classic trap of threshold detection, so every rule needs more than
//! a ratio: a latency spike needs enough requests, a mean both 3x and 20 ms above the
//! baseline, and a slowdown broad enough that one slow outlier cannot cause it; an error storm
//! needs a minimum count of failures and a rate well above what the baseline predicts.
//!
//! The crate is pure: no I/O, no threads, no clock. Time is always an argument in Unix
//! nanoseconds.
//!
//! # Example
//!
//! A service feeds its own request spans into live windows and runs a cycle every five
//! seconds; when its payment provider slows down, the next cycles report it.
//!
//! ```
//! use aiops_analyzer::{
//!     Analyzer, AnomalyKind, Config, EndpointWatermarks, HealthStatus, LiveWindows, Severity,
//! };
//! use aiops_telemetry_core::{Collector, EndpointKey, Span, SpanId, TraceId};
//!
//! const SECOND: u64 = 1_000_000_000;
//! const MS: u64 = 1_000_000;
//! let live = LiveWindows::new(SECOND, 120 * SECOND);
//! let mut analyzer = Analyzer::new(Config::default())?;
//!
//! let payment = |start: u64, duration: u64| {
//!     Span::new(TraceId::random(), SpanId::random(), "shop", "/payment")
//!         .with_timing(start, duration)
//!         .with_http_status(200)
//! };
//! let t0 = 1_700_000_000 * SECOND;
//! let mut last = None;
//! for second in 0..90 {
//!     for i in 0..10 {
//!         // Healthy: 170 to 188 ms. From second 60 on: 1250 ms.
//!         let duration = if second < 60 { (170 + 2 * i) * MS } else { 1250 * MS };
//!         let _ = live.record(payment(t0 + second * SECOND + i * SECOND / 10, duration));
//!     }
//!     if (second + 1) % 5 == 0 {
//!         let now = t0 + (second + 1) * SECOND;
//!         last = Some(analyzer.observe_live(&live, now, &EndpointWatermarks::default()));
//!     }
//! }
//!
//! let assessment = last.expect("cycles ran");
//! let spike = &assessment.anomalies[0];
//! assert_eq!(spike.kind, AnomalyKind::LatencySpike);
//! assert_eq!(spike.severity, Severity::High);
//! assert_eq!(spike.description, "Latency spike: 1250ms (baseline: 179ms, 7.0x slower)");
//! assert_eq!(assessment.endpoints[0].health.status, HealthStatus::Critical);
//!
//! // The fault was not learned: the baseline is still the healthy one.
//! let baseline = analyzer.baseline(&EndpointKey::new("shop", "/payment")).expect("learned");
//! assert_eq!(baseline.mean_ms.round(), 179.0);
//! # Ok::<(), aiops_analyzer::ConfigError>(())
//! ```

#![deny(missing_docs)]

mod analyzer;
mod anomaly;
mod baseline;
pub mod chance;
mod config;
pub mod describe;
mod detect;
mod health;
mod histogram;
mod live;
pub mod logs;
mod watermarks;

pub use analyzer::{Analyzer, Assessment, EndpointAssessment};
pub use anomaly::{Anomaly, AnomalyKind, Severity};
pub use baseline::Baseline;
pub use config::{Config, ConfigError};
pub use health::{Health, HealthStatus};
pub use live::{DEFAULT_MAX_ENDPOINTS, LiveWindows};
pub use watermarks::EndpointWatermarks;
