//! Log records and changes: written through the log writer, read back, purged.

use crate::common::*;
use aiops_storage_sqlite::{LogQuery, Store, StoreConfig};
use aiops_telemetry_core::{
    Change, ChangeCollector, ChangeKind, ChangeSource, LogCollector, LogRecord, LogSeverity,
    SpanId, TraceId,
};

fn record(service: &str, at: u64, severity: LogSeverity, body: &str) -> LogRecord {
    LogRecord::new(service.to_owned(), at, severity, body.to_owned())
}

fn bodies(records: &[LogRecord]) -> Vec<&str> {
    records.iter().map(|r| r.body.as_str()).collect()
}

#[test]
fn a_traces_records_come_back_oldest_first_with_ids_and_attributes() {
    on_each_backend(|backend| {
        let store = &backend.store;
        let trace = TraceId::random();
        let span = SpanId::random();
        let writer = store.log_writer();
        let outcome = writer.record_logs(vec![
            record("pricing", T0 + 2 * MS, LogSeverity::ERROR, "lookup failed")
                .in_span(trace, span)
                .with_attribute("exception.type", "java.lang.NullPointerException"),
            record("pricing", T0 + MS, LogSeverity::INFO, "lookup").in_span(trace, span),
            record("pricing", T0, LogSeverity::INFO, "other trace")
                .in_span(TraceId::random(), SpanId::random()),
            record("pricing", T0, LogSeverity::WARN, "no trace"),
        ]);
        assert_eq!(outcome.accepted, 4);
        writer.flush_logs().expect("flushes");

        let found = store
            .logs(&LogQuery {
                trace_id: Some(trace),
                limit: 10,
                ..LogQuery::default()
            })
            .expect("reads");
        assert_eq!(
            bodies(&found),
            ["lookup", "lookup failed"],
            "{}",
            backend.name
        );
        assert_eq!(found[1].span_id, Some(span));
        assert_eq!(
            found[1].attribute("exception.type"),
            Some("java.lang.NullPointerException")
        );
        assert_eq!(found[1].severity, LogSeverity::ERROR);
        assert_eq!(store.log_count(), Ok(4));
        assert_eq!(writer.stats().written, 4);
    });
}

#[test]
fn service_time_and_severity_select_the_newest_records_first() {
    on_each_backend(|backend| {
        let store = &backend.store;
        let writer = store.log_writer();
        let _ = writer.record_logs(vec![
            record("pricing", T0, LogSeverity::ERROR, "old error"),
            record("pricing", T0 + SECOND, LogSeverity::INFO, "info"),
            record("pricing", T0 + 2 * SECOND, LogSeverity::FATAL, "fatal"),
            record("cart", T0 + 3 * SECOND, LogSeverity::ERROR, "cart error"),
        ]);
        writer.flush_logs().expect("flushes");
        let query = |service: Option<&str>, since, severity, limit| {
            store
                .logs(&LogQuery {
                    trace_id: None,
                    service: service.map(str::to_owned),
                    since_unix_nanos: since,
                    min_severity: severity,
                    limit,
                })
                .expect("reads")
        };
        assert_eq!(
            bodies(&query(Some("pricing"), None, None, 10)),
            ["fatal", "info", "old error"]
        );
        assert_eq!(
            bodies(&query(
                None,
                Some(T0 + SECOND),
                Some(LogSeverity::ERROR),
                10
            )),
            ["cart error", "fatal"]
        );
        assert_eq!(bodies(&query(None, None, None, 1)), ["cart error"]);
    });
}

#[test]
fn a_batch_is_queued_whole_or_not_at_all() {
    let store = Store::open(StoreConfig {
        queue_capacity: 3,
        batch_max_delay: std::time::Duration::from_secs(60),
        batch_max_rows: 1_000,
        ..StoreConfig::in_memory()
    })
    .expect("opens");
    let writer = store.log_writer();
    let two = || vec![record("a", T0, LogSeverity::INFO, "x"); 2];
    assert_eq!(writer.record_all(two()).map(|o| o.accepted), Ok(2));
    let full = writer.record_all(two()).expect_err("no room for both");
    assert_eq!((full.queued, full.capacity), (2, 3));
    assert_eq!(writer.stats().queued, 2);
    let cut = writer.record_logs(two());
    assert_eq!((cut.accepted, cut.dropped), (1, 1));
    writer.flush_logs().expect("flushes");
    assert_eq!(store.log_count(), Ok(3));
    assert_eq!(writer.stats().dropped, 1);
    assert!(
        writer
            .record_all(vec![record("a", T0, LogSeverity::INFO, "x"); 5])
            .is_ok(),
        "a batch larger than the queue is taken once the queue is at most half full"
    );
}

#[test]
fn retention_purges_old_records_with_old_spans() {
    on_each_backend(|backend| {
        let store = &backend.store;
        let writer = store.log_writer();
        let _ = writer.record_logs(
            (0..10)
                .map(|i| record("a", T0 + i * SECOND, LogSeverity::INFO, "x"))
                .collect(),
        );
        writer.flush_logs().expect("flushes");
        store.purge_before(T0 + 4 * SECOND, 3).expect("purges");
        assert_eq!(store.log_count(), Ok(6), "{}", backend.name);
    });
}

#[test]
fn changes_are_stored_now_or_through_the_writer_and_listed_newest_first() {
    on_each_backend(|backend| {
        let store = &backend.store;
        let deployment = Change {
            service: "payments".into(),
            kind: ChangeKind::Deployment,
            time_unix_nanos: T0,
            version: Some("1.4.2".into()),
            previous_version: Some("1.4.1".into()),
            description: None,
            source: ChangeSource::Reported,
        };
        let stored = store.insert_change(&deployment).expect("stores");
        assert_eq!(stored.change, deployment);
        let flag = Change {
            service: "cart".into(),
            kind: ChangeKind::FeatureFlag,
            time_unix_nanos: T0 + SECOND,
            version: None,
            previous_version: None,
            description: Some("new-checkout on".into()),
            source: ChangeSource::Observed,
        };
        let writer = store.log_writer();
        assert_eq!(writer.record_change(flag.clone()).accepted, 1);
        writer.flush_logs().expect("flushes");

        let all = store.changes(None, None, 10).expect("lists");
        let listed: Vec<&Change> = all.iter().map(|c| &c.change).collect();
        assert_eq!(listed, [&flag, &deployment], "{}", backend.name);
        assert!(all[0].id > all[1].id);
        assert_eq!(
            store
                .changes(Some("payments"), None, 10)
                .expect("lists")
                .len(),
            1
        );
        assert!(
            store
                .changes(None, Some(T0 + 2 * SECOND), 10)
                .expect("lists")
                .is_empty()
        );
    });
}

#[test]
fn records_queued_at_shutdown_are_committed() {
    let backend = temp_file_store();
    let writer = backend.store.log_writer();
    let _ = writer.record_logs(vec![record("a", T0, LogSeverity::INFO, "x"); 7]);
    backend.store.shutdown().expect("drains");
    assert_eq!(backend.store.log_count(), Ok(7));
    assert_eq!(
        writer
            .record_logs(vec![record("a", T0, LogSeverity::INFO, "x")])
            .dropped,
        1
    );
}
