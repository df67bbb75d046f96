//! `GET /openapi.json` documents every route the server registers, and nothing else.

use std::collections::BTreeSet;

use aiops_e2e::TestApp;
use aiops_server::routes::routes;
use reqwest::{Method, StatusCode};
use serde_json::Value;

fn documented(document: &Value) -> BTreeSet<(String, String)> {
    document["paths"]
        .as_object()
        .expect("paths")
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .expect("path item")
                .keys()
                .map(move |method| (method.to_uppercase(), path.clone()))
        })
        .collect()
}

/// A concrete path for a route template.
fn concrete(path: &str) -> String {
    path.replace("{id}", "INC-0-0")
        .replace("{trace_id}", "4bf92f3577b34da6a3ce929d0e0e4736")
}

#[tokio::test]
async fn every_registered_route_is_in_the_openapi_document() {
    // Arrange
    let app = TestApp::spawn().await;

    // Act
    let (status, document) = app.get("/openapi.json").await;

    // Assert
    assert_eq!(status, StatusCode::OK);
    assert!(
        document["openapi"]
            .as_str()
            .unwrap_or("")
            .starts_with("3.1"),
        "{document}"
    );
    let routes: BTreeSet<(String, String)> = routes().iter().cloned().collect();
    assert_eq!(documented(&document), routes);
}

#[tokio::test]
async fn every_listed_route_is_registered() {
    // Arrange: the list the document is checked against must be the server's routing table.
    let app = TestApp::spawn_with(|config| config.shop.chaos = false).await;

    for (method, path) in routes() {
        // Act
        let method = Method::from_bytes(method.as_bytes()).expect("method");
        let (status, body) = app.call(method.clone(), &concrete(path)).await;

        // Assert: whatever the answer, it is not the fallback's "no route".
        let fallback = status == StatusCode::NOT_FOUND && body.get("routes").is_some();
        assert!(!fallback, "{method} {path} is not routed: {body}");
    }
}
