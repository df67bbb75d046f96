//! Fixtures shared by the store's integration tests.

#![allow(dead_code)]

use std::time::Duration;

use aiops_storage_sqlite::{Store, StoreConfig};
use aiops_telemetry_core::{Collector, Span, SpanId, SpanKind, TraceId};
use tempfile::TempDir;

/// 2023-11-14T22:13:20Z, a round instant to build times from.
pub const T0: u64 = 1_700_000_000_000_000_000;
pub const SECOND: u64 = 1_000_000_000;
pub const MS: u64 = 1_000_000;

/// A store under test and, for file stores, the directory that holds its file.
pub struct Backend {
    pub name: &'static str,
    pub store: Store,
    pub dir: Option<TempDir>,
}

/// A fast-committing configuration for `path`.
pub fn config(path: impl Into<std::path::PathBuf>) -> StoreConfig {
    StoreConfig {
        batch_max_delay: Duration::from_millis(5),
        ..StoreConfig::new(path)
    }
}

pub fn temp_file_store() -> Backend {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(config(dir.path().join("aiops.db"))).expect("opens file store");
    Backend {
        name: "file",
        store,
        dir: Some(dir),
    }
}

pub fn memory_store() -> Backend {
    Backend {
        name: "memory",
        store: Store::open(config(StoreConfig::MEMORY)).expect("opens memory store"),
        dir: None,
    }
}

/// Runs `test` against a temporary file store and an in-memory store.
pub fn on_each_backend(test: impl Fn(&Backend)) {
    for backend in [temp_file_store(), memory_store()] {
        test(&backend);
    }
}

/// A server span of `service operation` in `trace`.
pub fn span(trace: TraceId, operation: &str, start: u64, duration: u64) -> Span {
    Span::new(trace, SpanId::random(), "shop", operation.to_owned())
        .with_kind(SpanKind::Server)
        .with_timing(start, duration)
        .with_http_status(200)
}

/// Records spans and waits until they are committed.
pub fn record_all(store: &Store, spans: Vec<Span>) {
    let writer = store.writer();
    let outcome = writer.record_batch(spans);
    assert_eq!(outcome.dropped, 0, "test queue overflowed");
    writer.flush().expect("flushes");
}

/// Sorted copies, for order-insensitive comparisons.
pub fn sorted(mut spans: Vec<Span>) -> Vec<Span> {
    spans.sort_by_key(|span| (span.start_unix_nanos, span.span_id));
    spans
}
