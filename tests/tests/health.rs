//! The engine's own health: `/healthz` while it serves, `/readyz` naming the check that fails
//! when storage is held by another process or the database file is deleted, and one server
//! per database.

use std::time::Duration;

use aiops_e2e::otlp_system::{ShopSystem, to_request};
use aiops_e2e::{TestApp, test_config};
use aiops_server::Application;
use prost::Message;
use reqwest::header::CONTENT_TYPE;
use reqwest::{Method, StatusCode};
use serde_json::Value;

/// The names of the failing checks of a `/readyz` body.
fn failing(body: &Value) -> Vec<String> {
    body["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .filter(|check| check["ok"] == false)
        .map(|check| check["name"].as_str().expect("a name").to_owned())
        .collect()
}

/// Polls `/readyz` until its status is `status`; its body then. Panics after 30 s.
async fn readiness_becomes(app: &TestApp, status: StatusCode) -> Value {
    for _ in 0..600 {
        let (found, body) = app.get("/readyz").await;
        if found == status {
            return body;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("/readyz never answered {status}");
}

#[tokio::test]
async fn a_fresh_engine_is_alive_and_ready_with_every_check_named() {
    let app = TestApp::spawn().await;

    let (status, body) = app.get("/healthz").await;
    assert_eq!(
        (status, body),
        (StatusCode::OK, serde_json::json!({"status": "alive"}))
    );

    let (status, body) = app.get("/readyz").await;
    assert_eq!(status, StatusCode::OK, "{body:#}");
    assert_eq!(body["status"], "ready");
    let names: Vec<&str> = body["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .map(|check| check["name"].as_str().expect("name"))
        .collect();
    assert_eq!(
        names,
        [
            "database_file",
            "storage_writer",
            "span_queue",
            "analysis_cycle"
        ]
    );
}

#[tokio::test]
async fn a_database_held_by_another_process_makes_the_engine_not_ready_until_released() {
    let app = TestApp::spawn().await;
    let other = rusqlite::Connection::open(&app.db_path).expect("opens");
    other
        .execute_batch("BEGIN EXCLUSIVE; CREATE TABLE held (x);")
        .expect("takes the write lock");
    let trace = ShopSystem::new(5).checkout(1_700_000_000_000_000_000, None);
    let response = app
        .request(Method::POST, "/v1/traces")
        .header(CONTENT_TYPE, "application/x-protobuf")
        .body(to_request([trace.as_slice()]).encode_to_vec())
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), StatusCode::OK);

    let body = readiness_becomes(&app, StatusCode::SERVICE_UNAVAILABLE).await;
    assert_eq!(body["status"], "not_ready");
    assert_eq!(failing(&body), ["storage_writer"], "{body:#}");
    assert_eq!(app.get("/healthz").await.0, StatusCode::OK, "still alive");

    other.execute_batch("ROLLBACK").expect("releases");
    readiness_becomes(&app, StatusCode::OK).await;
}

#[tokio::test]
async fn a_deleted_database_file_is_reported_by_readiness() {
    let app = TestApp::spawn().await;
    std::fs::remove_file(&app.db_path).expect("deletes the database");

    let (status, body) = app.get("/readyz").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(failing(&body), ["database_file"], "{body:#}");
    let detail = body["checks"][0]["detail"].as_str().expect("detail");
    assert!(detail.contains("was deleted while open"), "{detail}");
}

#[tokio::test]
async fn a_second_server_on_the_same_database_refuses_to_start() {
    let app = TestApp::spawn().await;
    let dir = tempfile::TempDir::new().expect("temporary directory");
    let mut config = test_config(&dir);
    config.storage.db = app.db_path.clone();

    let refused = Application::build(config.clone()).await.map(|_| ());
    let message = format!("{:#}", refused.expect_err("refused"));
    assert!(
        message.contains("is in use by another aiops process"),
        "{message}"
    );

    // Once the first has stopped, the database is free.
    let (_first_config, _first_dir) = app.stop().await;
    let second = Application::build(config).await.expect("starts");
    drop(second);
}
