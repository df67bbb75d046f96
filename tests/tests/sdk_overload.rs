//! Overload from real OpenTelemetry SDK exporters: several services' batch span processors and
//! OTLP/HTTP exporters push into a span queue far smaller than what they send while the writer
//! is held up. The exporters retry the 429s after their `Retry-After`; every span an export
//! had acknowledged is in the database once the server has stopped.

use std::time::Duration;

use aiops_e2e::TestApp;
use aiops_loadgen::sdk_load::{SdkCounts, SdkLoad};
use aiops_storage_sqlite::{Store, StoreConfig};

/// The `queue_full` refusals counted in `/metrics`.
async fn refused_queue_full(app: &TestApp) -> u64 {
    let (_, metrics) = app.get_text("/metrics").await;
    metrics
        .lines()
        .find_map(|line| {
            line.strip_prefix("aiops_ingest_refused_requests_total{reason=\"queue_full\"} ")
        })
        .map_or(0, |value| value.trim().parse().expect("a counter"))
}

#[tokio::test]
async fn sdk_exporters_under_overload_lose_no_acknowledged_span() {
    let app = TestApp::spawn_with(|config| {
        config.storage.span_queue_capacity = 600;
    })
    .await;
    // Another process holds the database, so the writer stalls and the small queue fills.
    let lock = rusqlite::Connection::open(&app.db_path).expect("opens a second connection");
    lock.execute_batch("BEGIN EXCLUSIVE; CREATE TABLE held (x);")
        .expect("takes the write lock");

    let loads: Vec<SdkLoad> = (0..3)
        .map(|index| SdkLoad {
            url: app.address.clone(),
            service: format!("sdk-service-{index}"),
            spans: 2_000,
            duration: Duration::from_secs(120),
            rate: 0,
            queue_size: 4_096,
            batch_size: 256,
            export_timeout: Duration::from_secs(30),
        })
        .collect();
    let exporters = tokio::task::spawn_blocking(move || {
        std::thread::scope(|scope| {
            let runs: Vec<_> = loads
                .iter()
                .map(|load| scope.spawn(move || load.run().expect("the SDK pipeline runs")))
                .collect();
            runs.into_iter()
                .map(|run| run.join().expect("a service thread"))
                .fold(SdkCounts::default(), |total, counts| total.add(&counts))
        })
    });

    // Overloaded: the server refuses exports with 429 rather than dropping their spans.
    while refused_queue_full(&app).await == 0 {
        assert!(!exporters.is_finished(), "the exporters finished unrefused");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    lock.execute_batch("ROLLBACK").expect("releases the lock");
    drop(lock);
    let counts = exporters.await.expect("the exporters' task");

    let (_, metrics) = app.get_text("/metrics").await;
    assert!(
        metrics.contains("aiops_spans_dropped_total 0\n"),
        "{metrics}"
    );
    let path = app.db_path.clone();
    let (_config, _dir) = app.stop().await;
    let stored = tokio::task::spawn_blocking(move || {
        Store::open(StoreConfig::new(path))
            .expect("reopens")
            .span_count()
            .expect("counts")
    })
    .await
    .expect("count task");

    eprintln!("sdk overload: {counts:?}, stored {stored}");
    assert_eq!(counts.created, 6_000);
    assert_eq!(counts.dropped_by_queue(), 0, "{counts:?}");
    assert_eq!(counts.unsettled(), 0, "{counts:?}");
    assert!(counts.acknowledged > 0, "{counts:?}");
    // Every acknowledged span was stored; beyond those, at most spans of exports the SDK gave
    // up on (a retry the server took after the exporter's deadline).
    assert!(
        stored >= counts.acknowledged,
        "acknowledged spans lost: {counts:?}, stored {stored}"
    );
    assert!(
        stored <= counts.acknowledged + counts.failed,
        "{counts:?}, stored {stored}"
    );
}
