//! `--no-demo`: an engine watching only OTLP serves no demo shop, no chaos routes and no
//! warm-up, and describes only what it serves.

use aiops_e2e::TestApp;
use aiops_e2e::otlp_system::{ShopSystem, to_request};
use prost::Message;
use reqwest::header::CONTENT_TYPE;
use reqwest::{Method, StatusCode};

#[tokio::test]
async fn without_the_demo_only_the_engine_s_routes_are_served_and_documented() {
    let app = TestApp::spawn_with(|config| {
        config.shop.demo = false;
        config.shop.warmup_requests = 20;
    })
    .await;

    for path in ["/health", "/inventory", "/simulate/status"] {
        let (status, body) = app.get(path).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        let routes = body["routes"].as_array().expect("the routes served");
        assert!(
            routes.iter().all(|route| {
                let route = route.as_str().unwrap_or_default();
                !route.ends_with(" /health")
                    && !route.contains("/simulate")
                    && !route.ends_with("/checkout")
            }),
            "{routes:?}"
        );
        assert!(
            routes.iter().any(|route| route == "GET /healthz"),
            "{routes:?}"
        );
    }
    assert_eq!(app.post("/checkout").await.0, StatusCode::NOT_FOUND);

    let (status, document) = app.get("/openapi.json").await;
    assert_eq!(status, StatusCode::OK);
    let paths = document["paths"].as_object().expect("paths");
    assert!(!paths.contains_key("/checkout") && !paths.contains_key("/simulate/delay"));
    assert!(paths.contains_key("/v1/traces") && paths.contains_key("/aiops/incidents"));

    let trace = ShopSystem::new(9).checkout(1_700_000_000_000_000_000, None);
    let response = app
        .request(Method::POST, "/v1/traces")
        .header(CONTENT_TYPE, "application/x-protobuf")
        .body(to_request([trace.as_slice()]).encode_to_vec())
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), StatusCode::OK);
    let metrics = app.metrics().await;
    let endpoints = metrics["metrics"].as_object().expect("metrics");
    assert!(
        endpoints.keys().all(|name| !name.starts_with('/')),
        "no demo-shop endpoint, no warm-up: {endpoints:?}"
    );
}
