//! Storage benchmarks: spans committed per second through the writer, and query time for a
//! fixed 60 s window as the store grows from 10k to 1M spans.
//!
//! Run with `cargo bench -p aiops-storage-sqlite --bench storage`.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::time::Duration;

use aiops_storage_sqlite::{Store, StoreConfig};
use aiops_telemetry_core::{Collector, EndpointKey, Span, SpanId, SpanKind, TimeWindow, TraceId};
use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

const T0: u64 = 1_700_000_000_000_000_000;
const SECOND: u64 = 1_000_000_000;
const MS: u64 = 1_000_000;
/// Spans per `record_batch` call, as an OTLP export or a busy middleware flush would send.
const BATCH: usize = 1_000;
/// Spans per measured write iteration.
const WRITE_SPANS: usize = 50_000;
/// The queried window: one minute, an hour into the data.
const WINDOW: TimeWindow = TimeWindow::new(T0 + 3_600 * SECOND, T0 + 3_660 * SECOND);
/// Spans inside the window at every store size (100 per second).
const WINDOW_SPANS: u64 = 6_000;

/// One demo-shop checkout: three spans of one trace, as the middleware records them.
fn checkout(start: u64, sequence: u64) -> [Span; 3] {
    let trace = TraceId::random();
    let root = SpanId::random();
    let latency = (20 + sequence % 180) * MS;
    let make = |span_id, operation: &'static str, offset, duration| {
        Span::new(trace, span_id, "shop", operation)
            .with_kind(SpanKind::Server)
            .with_timing(start + offset, duration)
            .with_http_status(if sequence.is_multiple_of(50) {
                503
            } else {
                200
            })
            .with_attribute("service.version", "0.1.0")
    };
    [
        make(root, "/checkout", 0, latency + 4 * MS),
        make(SpanId::random(), "/payment", MS, latency).with_parent(root),
        make(SpanId::random(), "/inventory", 2 * MS, 2 * MS).with_parent(root),
    ]
}

/// `count` spans (in checkouts) evenly spread over `[from, from + length)`, in time order.
fn spans_between(from: u64, length: u64, count: u64) -> Vec<Span> {
    let checkouts = count.div_ceil(3);
    let mut spans: Vec<Span> = (0..checkouts)
        .flat_map(|i| checkout(from + i * length / checkouts, i))
        .collect();
    spans.truncate(count as usize);
    spans
}

fn open(dir: &tempfile::TempDir) -> Store {
    Store::open(StoreConfig::new(dir.path().join("bench.db"))).expect("opens")
}

fn record_and_flush(store: &Store, spans: Vec<Span>) {
    let writer = store.writer();
    let mut spans = spans.into_iter();
    for round in 1u64.. {
        // Loading a large fixture: let the queue drain now and then instead of overflowing.
        if round.is_multiple_of(64) {
            writer.flush().expect("flushes");
        }
        let batch: Vec<Span> = spans.by_ref().take(BATCH).collect();
        if batch.is_empty() {
            break;
        }
        let outcome = writer.record_batch(batch);
        assert_eq!(outcome.dropped, 0, "benchmark overflowed the queue");
    }
    writer.flush().expect("flushes");
}

fn write_throughput(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = open(&dir);
    let mut next_start = T0;
    let mut group = c.benchmark_group("writer");
    group.throughput(Throughput::Elements(WRITE_SPANS as u64));
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(30));
    group.bench_function("record_batch_then_flush", |b| {
        b.iter_batched(
            || {
                // 1,000 spans per second of span time, continuing where the last left off.
                let spans = spans_between(next_start, WRITE_SPANS as u64 * MS, WRITE_SPANS as u64);
                next_start += WRITE_SPANS as u64 * MS;
                spans
            },
            |spans| record_and_flush(&store, spans),
            BatchSize::PerIteration,
        );
    });
    group.finish();
    let written = store.writer().stats().written;
    let cpu = thread_cpu_seconds("aiops-span-writ");
    store.shutdown().expect("shuts down");
    // Wall-clock throughput depends on what else the machine runs; the writer thread's own
    // CPU time says what one dedicated core would sustain.
    if let Some(cpu) = cpu {
        println!(
            "writer thread: {written} spans in {cpu:.2} s of its CPU time = {:.0} spans per CPU-second",
            written as f64 / cpu
        );
    }
}

/// User plus system CPU time of this process's threads named `name` (Linux only).
fn thread_cpu_seconds(name: &str) -> Option<f64> {
    let mut ticks = 0u64;
    for task in std::fs::read_dir("/proc/self/task").ok()? {
        let path = task.ok()?.path();
        let comm = std::fs::read_to_string(path.join("comm")).unwrap_or_default();
        if comm.trim_end() != name {
            continue;
        }
        let stat = std::fs::read_to_string(path.join("stat")).ok()?;
        // Fields after the parenthesised command; utime and stime are the 12th and 13th.
        let fields: Vec<&str> = stat[stat.rfind(')')? + 2..].split_whitespace().collect();
        ticks += fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    }
    // The kernel reports clock ticks, 100 per second on Linux.
    (ticks > 0).then(|| ticks as f64 / 100.0)
}

/// A store holding `total` spans over two hours, exactly WINDOW_SPANS of them inside WINDOW.
fn store_with(total: u64) -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = open(&dir);
    let outside = total - WINDOW_SPANS;
    let before = outside / 2;
    let window_length = WINDOW.length_nanos();
    let mut spans = spans_between(T0, WINDOW.start_unix_nanos - T0, before);
    spans.extend(spans_between(
        WINDOW.start_unix_nanos,
        window_length,
        WINDOW_SPANS,
    ));
    spans.extend(spans_between(
        WINDOW.end_unix_nanos,
        3_540 * SECOND,
        outside - before,
    ));
    record_and_flush(&store, spans);
    assert_eq!(store.span_count(), Ok(total));
    (dir, store)
}

/// Stores of each size, built on first use so that a filtered run builds only what it needs.
#[derive(Default)]
struct Fixtures {
    stores: RefCell<BTreeMap<u64, (tempfile::TempDir, Store)>>,
}

impl Fixtures {
    fn store(&self, total: u64) -> Store {
        let mut stores = self.stores.borrow_mut();
        let (_, store) = stores.entry(total).or_insert_with(|| store_with(total));
        store.clone()
    }
}

const SIZES: [u64; 3] = [10_000, 100_000, 1_000_000];

fn queries(c: &mut Criterion) {
    let fixtures = Fixtures::default();
    let mut stats_group = c.benchmark_group("window_stats_60s");
    stats_group.sample_size(30);
    for total in SIZES {
        stats_group.bench_function(BenchmarkId::from_parameter(total), |b| {
            let store = fixtures.store(total);
            let stats = store.window_stats(WINDOW, 1_000.0).expect("queries");
            assert_eq!(
                stats.iter().map(|(_, s)| s.count).sum::<u64>(),
                WINDOW_SPANS
            );
            b.iter(|| store.window_stats(WINDOW, 1_000.0).expect("queries"));
        });
    }
    stats_group.finish();

    let payment = EndpointKey::new("shop", "/payment");
    let mut other = c.benchmark_group("lookups");
    other.sample_size(30);
    for total in SIZES {
        other.bench_function(BenchmarkId::new("sample_trace_ids_20", total), |b| {
            let store = fixtures.store(total);
            b.iter(|| {
                store
                    .sample_trace_ids(&payment, WINDOW, 20)
                    .expect("samples")
            });
        });
        other.bench_function(BenchmarkId::new("trace", total), |b| {
            let store = fixtures.store(total);
            let sample = store
                .sample_trace_ids(&payment, WINDOW, 1)
                .expect("samples");
            b.iter(|| store.trace(sample[0]).expect("finds"));
        });
        other.bench_function(BenchmarkId::new("rollups_60s", total), |b| {
            let store = fixtures.store(total);
            b.iter(|| store.rollups(None, WINDOW).expect("rolls up"));
        });
    }
    other.finish();
}

criterion_group!(benches, write_throughput, queries);
criterion_main!(benches);
