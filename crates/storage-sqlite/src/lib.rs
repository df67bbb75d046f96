//! The SQLite store of the aiops engine: every span recorded, queries the analysis needs, and
//! the analysis state that must survive a restart.
//!
//! A [`Store`] owns one database file (or an in-memory database). Spans reach it through its
//! [`SpanWriter`], an [`aiops_telemetry_core::Collector`] that never blocks: spans wait in a
//! bounded queue (counted in spans; when full, spans are dropped and counted) and one writer
//! thread commits them in transactions of up to `batch_max_rows` rows or `batch_max_delay`,
//! keeping per-minute [`MinuteRollup`]s per endpoint in the same transaction. Queries
//! ([`Store::window_stats`], [`Store::trace`], [`Store::sample_trace_ids`],
//! [`Store::rollups`]) run on a small connection pool beside the writer, which WAL mode
//! allows. Snapshots and [`IncidentRecord`]s are saved together in one transaction, and
//! incidents are read back by id or newest first. The incident lifecycle
//! ([`LifecycleWrite`]) keeps each incident's append-only timeline, its notes and the silences.
//! Log records reach the store through its [`LogWriter`] (the same never-blocking queue and
//! batching, on a thread of its own) and are read by trace, service, time and severity
//! ([`Store::logs`]); changes (deployments, configuration, feature flags) are stored one at a
//! time ([`Store::insert_change`], [`Store::changes`]). Retention ([`Store::purge_before`])
//! deletes old spans, the rollups of the minutes they filled, and old log records.
//!
//! The key design decision is the span layout (`docs/adr/0001-span-storage-layout.md`): a
//! B-tree index on the random trace id costs several times the insert rate, so spans carry no
//! such index, and a row per span costs more than the rest of a request, so spans are stored
//! in compact binary chunks, one row per writer transaction and block. The writer numbers
//! spans itself and groups the numbers into blocks of 2,048; a tiny block directory records
//! each block's start-time range and a Bloom filter of its trace ids. A time window becomes a
//! few id ranges, so window queries cost what the window holds, not what the store holds, and
//! a trace look-up reads only the blocks whose filter may hold it.
//!
//! Durability: an application crash loses at most the spans still queued (one
//! `batch_max_delay`); `synchronous=NORMAL` in WAL mode may lose the last transactions on power
//! loss, never consistency.
//!
//! ```
//! use aiops_storage_sqlite::{Store, StoreConfig};
//! use aiops_telemetry_core::{Collector, EndpointKey, Span, SpanId, TimeWindow, TraceId};
//!
//! let store = Store::open(StoreConfig::in_memory())?;
//! let writer = store.writer();
//!
//! // One checkout whose payment call failed.
//! let start = 1_700_000_000_000_000_000;
//! let trace = TraceId::random();
//! let checkout = Span::new(trace, SpanId::random(), "shop", "/checkout")
//!     .with_timing(start, 250_000_000)
//!     .with_http_status(502);
//! let payment = Span::new(trace, SpanId::random(), "shop", "/payment")
//!     .with_parent(checkout.span_id)
//!     .with_timing(start + 1_000_000, 240_000_000)
//!     .with_http_status(503);
//! assert_eq!(writer.record_batch(vec![checkout, payment]).accepted, 2);
//! writer.flush()?;
//!
//! let minute = TimeWindow::new(start, start + 60_000_000_000);
//! let stats = store.window_stats(minute, 200.0)?;
//! let (endpoint, payment_stats) = &stats[1];
//! assert_eq!(endpoint, &EndpointKey::new("shop", "/payment"));
//! assert_eq!((payment_stats.count, payment_stats.errors, payment_stats.timeouts), (1, 1, 1));
//! assert_eq!(store.trace(trace)?.len(), 2);
//!
//! store.shutdown()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![deny(missing_docs)]

mod analysis_state;
mod chunk;
mod codec;
mod config;
mod error;
mod file_guard;
mod histogram;
mod layout;
mod lifecycle;
mod log_writer;
mod logs;
mod queries;
mod retention;
mod rollup;
mod schema;
mod store;
mod trace_filter;
mod transaction;
mod writer;

pub use analysis_state::IncidentRecord;
pub use config::StoreConfig;
pub use error::StoreError;
pub use histogram::LatencyHistogram;
pub use lifecycle::{IncidentEvent, LifecycleWrite, NoteRecord, SilenceRecord, StoredEvent};
pub use log_writer::{LogAdmission, LogQueueFull, LogWriter, LogWriterStats};
pub use logs::{ChangeRecord, LogQuery};
pub use rollup::MinuteRollup;
pub use store::Store;
pub use writer::{Admission, MAX_BUSY_BACKOFF, SHUTDOWN_BUSY_PATIENCE, SpanWriter, WriterStats};
