//! The incident archive: resolved incidents the engine has let go of (it keeps only the most
//! recently resolved in memory) are still served from the database by the incident routes.

use std::time::Duration;

use aiops_engine::{Engine, EngineConfig};
use aiops_server::persistence::Persistence;
use aiops_server::{Application, Settings};
use aiops_storage_sqlite::{Store, StoreConfig};
use aiops_telemetry_core::{Collector, Span, SpanId, SpanKind, SpanStatus, TraceId};
use reqwest::StatusCode;
use serde_json::Value;

const SEC: u64 = 1_000_000_000;
const MS: u64 = 1_000_000;
const START_UNIX_NANOS: u64 = 1_700_000_000 * SEC;

/// Ten failing `/payment` requests that ended just before `now`: an error storm.
fn record_failures(collector: &dyn Collector, now: u64) {
    let spans = (0..10)
        .map(|_| {
            Span::new(TraceId::random(), SpanId::random(), "shop", "/payment")
                .with_kind(SpanKind::Server)
                .with_timing(now - 60 * MS, 50 * MS)
                .with_http_status(500)
                .with_status(SpanStatus::Error)
        })
        .collect();
    let _ = collector.record_batch(spans);
}

/// Saves, into the database at `db`, an engine that keeps one resolved incident in memory and
/// has resolved two, one after the other; returns their ids, oldest first.
async fn two_resolved_incidents_one_kept(db: &std::path::Path) -> (String, String) {
    let store = Store::open(StoreConfig::new(db)).expect("the database opens");
    let mut persistence = Persistence::new(store.clone());
    let config = EngineConfig {
        max_resolved_incidents: 1,
        ..EngineConfig::default()
    };
    let mut engine = Engine::new(config).expect("a valid configuration");
    let collector = engine.collector();
    let mut ids = Vec::new();
    for round in 0..2 {
        let now = START_UNIX_NANOS + round * 120 * SEC;
        record_failures(collector.as_ref(), now);
        let opened = engine.run_cycle(now).opened().join(",");
        assert!(!opened.is_empty() && !opened.contains(','), "one: {opened}");
        persistence.save(&engine).await.expect("saved");
        engine.resolve(&opened, now + SEC).expect("resolved");
        persistence.save(&engine).await.expect("saved");
        ids.push(opened);
    }
    // The engine lets go of resolved incidents beyond its cap at the next cycle.
    engine.run_cycle(START_UNIX_NANOS + 300 * SEC);
    persistence.save(&engine).await.expect("saved");
    assert!(engine.incidents().get(&ids[0]).is_none(), "let go of");
    store.shutdown().expect("closed");
    (ids.remove(0), ids.remove(0))
}

async fn get(client: &reqwest::Client, url: String) -> (StatusCode, Value) {
    let response = client.get(url).send().await.expect("answered");
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn incidents_the_engine_let_go_of_are_served_from_the_database() {
    // Arrange: a server restarted on a database whose oldest resolved incident is in the
    // incident rows only, no longer in the engine's snapshot.
    let dir = tempfile::tempdir().expect("temporary directory");
    let db = dir.path().join("aiops.db");
    let (archived, kept) = two_resolved_incidents_one_kept(&db).await;
    let mut settings = Settings::default();
    settings.http.bind = "127.0.0.1:0".to_owned();
    settings.storage.db = db;
    settings.shop.warmup_requests = 0;
    settings.detection.analysis_window = Duration::from_secs(600);
    settings.detection.analysis_interval = Duration::from_secs(600);
    settings.detection.early_detection = false;
    let application = Application::build(settings)
        .await
        .expect("the server builds");
    let base = format!("http://127.0.0.1:{}", application.port());
    let stop = application.stop_handle();
    let server = tokio::spawn(application.run_until_stopped());
    let client = reqwest::Client::new();

    // Act
    let (one, incident) = get(&client, format!("{base}/aiops/incidents/{archived}")).await;
    let (_, resolved) = get(&client, format!("{base}/aiops/incidents?status=resolved")).await;
    let (_, all) = get(&client, format!("{base}/aiops/incidents?status=all")).await;
    let (_, active) = get(&client, format!("{base}/aiops/incidents")).await;
    let again = client
        .post(format!("{base}/aiops/incidents/{archived}/resolve"))
        .send()
        .await
        .expect("answered")
        .status();

    // Assert
    assert_eq!(one, StatusCode::OK, "{incident:#}");
    assert_eq!(incident["id"], archived.as_str());
    assert_eq!(incident["status"], "resolved");
    assert_eq!(incident["root_cause"]["endpoint"], "/payment");
    let ids = |list: &Value| -> Vec<String> {
        list["incidents"]
            .as_array()
            .expect("incidents")
            .iter()
            .map(|incident| incident["id"].as_str().expect("id").to_owned())
            .collect()
    };
    assert_eq!(
        ids(&resolved),
        [kept.clone(), archived.clone()],
        "{resolved:#}"
    );
    assert_eq!(resolved["count"], 2);
    assert_eq!(ids(&all), [kept, archived]);
    assert_eq!(
        active["count"], 0,
        "the archive holds resolved incidents only"
    );
    assert_eq!(
        again,
        StatusCode::CONFLICT,
        "an archived incident is resolved"
    );
    stop.stop().await;
    server.await.expect("server task").expect("stopped cleanly");
}
