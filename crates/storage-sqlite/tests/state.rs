//! Snapshots, incidents, migrations and opening errors.

use crate::common::*;
use aiops_storage_sqlite::{IncidentRecord, Store, StoreConfig, StoreError};
use serde_json::json;

fn incident(id: &str, status: &str, first: u64) -> IncidentRecord {
    IncidentRecord {
        id: id.into(),
        status: status.into(),
        first_detected_unix_nanos: first,
        last_updated_unix_nanos: first + SECOND,
        body: json!({"id": id, "status": status, "root_cause": {"service": "shop"}}),
    }
}

#[test]
fn snapshots_round_trip_and_are_replaced_by_key() {
    on_each_backend(|backend| {
        let store = &backend.store;
        assert_eq!(store.load_snapshot("baselines"), Ok(None));
        let first = json!({"baselines": [{"endpoint": "/payment", "mean_ms": 180.5}]});
        store.save_snapshot("baselines", &first).expect("saves");
        assert_eq!(store.load_snapshot("baselines"), Ok(Some(first)));
        let second = json!({"baselines": []});
        store.save_snapshot("baselines", &second).expect("saves");
        assert_eq!(store.load_snapshot("baselines"), Ok(Some(second)));
        assert_eq!(store.load_snapshot("other"), Ok(None));
    });
}

#[test]
fn incidents_round_trip_and_upsert_by_id() {
    on_each_backend(|backend| {
        let store = &backend.store;
        let older = incident("INC-1700000000-1", "active", T0);
        let newer = incident("INC-1700000100-2", "active", T0 + 100 * SECOND);
        store
            .save_incidents(&[newer.clone(), older.clone()])
            .expect("saves");
        assert_eq!(
            store.load_incidents(),
            Ok(vec![older.clone(), newer.clone()])
        );

        let resolved = IncidentRecord {
            status: "resolved".into(),
            last_updated_unix_nanos: T0 + 500 * SECOND,
            ..older
        };
        store
            .save_incidents(std::slice::from_ref(&resolved))
            .expect("upserts");
        assert_eq!(store.load_incidents(), Ok(vec![resolved, newer]));
    });
}

#[test]
fn an_incident_is_read_back_by_id_and_the_latest_of_a_status_newest_first() {
    on_each_backend(|backend| {
        // Arrange
        let store = &backend.store;
        let oldest = incident("INC-1700000000-1", "resolved", T0);
        let active = incident("INC-1700000050-2", "active", T0 + 50 * SECOND);
        let middle = incident("INC-1700000100-3", "resolved", T0 + 100 * SECOND);
        let newest = incident("INC-1700000200-4", "resolved", T0 + 200 * SECOND);
        store
            .save_incidents(&[
                middle.clone(),
                oldest.clone(),
                newest.clone(),
                active.clone(),
            ])
            .expect("saves");

        // Act + Assert
        assert_eq!(
            store.load_incident("INC-1700000100-3"),
            Ok(Some(middle.clone()))
        );
        assert_eq!(store.load_incident("INC-0-0"), Ok(None));
        assert_eq!(
            store.latest_incidents("resolved", 2),
            Ok(vec![newest.clone(), middle.clone()])
        );
        assert_eq!(
            store.latest_incidents("resolved", 10),
            Ok(vec![newest, middle, oldest])
        );
        assert_eq!(store.latest_incidents("active", 10), Ok(vec![active]));
        assert_eq!(store.latest_incidents("resolved", 0), Ok(vec![]));
    });
}

#[test]
fn state_saves_snapshot_and_incidents_together_and_survives_reopening() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("aiops.db");
    let snapshot = json!({"cycle": 42});
    let incidents = vec![incident("INC-1700000000-1", "active", T0)];
    {
        let store = Store::open(config(&path)).expect("opens");
        store
            .save_state(Some(("engine", &snapshot)), &incidents)
            .expect("saves");
        store.save_state(None, &[]).expect("saving nothing is fine");
    }
    let store = Store::open(config(&path)).expect("reopens");
    assert_eq!(store.load_snapshot("engine"), Ok(Some(snapshot)));
    assert_eq!(store.load_incidents(), Ok(incidents));
}

#[test]
fn opening_the_same_file_again_migrates_nothing_and_keeps_data() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("aiops.db");
    for round in 0..3 {
        let store = Store::open(config(&path)).expect("opens");
        store
            .save_snapshot(&format!("round-{round}"), &json!(round))
            .expect("saves");
        record_all(
            &store,
            vec![span(
                aiops_telemetry_core::TraceId::random(),
                "/health",
                T0,
                MS,
            )],
        );
        assert_eq!(store.span_count(), Ok(round + 1));
    }
    let store = Store::open(config(&path)).expect("opens");
    assert_eq!(store.load_snapshot("round-0"), Ok(Some(json!(0))));
    drop(store);
    let conn = rusqlite::Connection::open(&path).expect("opens raw");
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .expect("reads version");
    assert_eq!(version, 7);
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |row| row.get(0))
        .expect("reads mode");
    assert_eq!(mode, "wal");
}

#[test]
fn a_file_from_a_newer_build_is_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("aiops.db");
    rusqlite::Connection::open(&path)
        .expect("creates")
        .execute_batch("PRAGMA user_version = 99")
        .expect("sets version");
    assert_eq!(
        Store::open(config(&path)).map(|_| ()),
        Err(StoreError::SchemaTooNew {
            found: 99,
            supported: 7
        })
    );
}

#[test]
fn an_unreachable_path_and_bad_config_are_reported() {
    let dir = tempfile::tempdir().expect("temp dir");
    let missing = dir.path().join("no-such-dir").join("aiops.db");
    assert!(matches!(
        Store::open(config(&missing)),
        Err(StoreError::Open { .. })
    ));
    let zero_pool = StoreConfig {
        pool_size: 0,
        ..StoreConfig::in_memory()
    };
    assert!(matches!(
        Store::open(zero_pool),
        Err(StoreError::Config {
            field: "pool_size",
            ..
        })
    ));
}
