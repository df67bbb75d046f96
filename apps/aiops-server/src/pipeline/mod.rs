//! The span pipeline between the producers (the shop's middleware, OTLP ingest) and the
//! engine and store: per-thread batching, per-endpoint request metrics, and the counts of
//! what was accepted and dropped, read together as [`stats::PipelineStats`]. Beside it, the
//! log pipeline ([`logs::LogPipeline`]) and the changes ([`changes::VersionWatch`],
//! [`changes::ChangeListeners`]).

pub mod changes;
pub mod counters;
pub mod logs;
pub mod refusals;
pub mod settle;
pub mod span_batch;
pub mod span_metrics;
pub mod stats;
