//! With an API token configured, mutating API routes need it; reads and the shop do not.

use aiops_e2e::{TestApp, json_of};
use reqwest::{Method, StatusCode};
use serde_json::json;

const TOKEN: &str = "s3cret-token";

#[tokio::test]
async fn mutating_routes_need_the_bearer_token() {
    // Arrange
    let app = TestApp::spawn_with(|config| config.http.api_token = Some(TOKEN.to_owned())).await;
    let url = |path: &str| format!("{}{path}", app.address);

    for path in [
        "/simulate/delay?endpoint=/payment&duration=100",
        "/simulate/error?endpoint=/payment&rate=0.5",
        "/simulate/clear",
        "/aiops/analyze",
        "/aiops/incidents/INC-1-1/resolve",
    ] {
        // Act
        let missing = json_of(app.client.post(url(path)).send().await.expect("sent")).await;
        let wrong = json_of(
            app.client
                .post(url(path))
                .bearer_auth("not-the-token")
                .send()
                .await
                .expect("sent"),
        )
        .await;

        // Assert
        assert_eq!(missing.0, StatusCode::UNAUTHORIZED, "{path}: {}", missing.1);
        assert!(
            missing.1["error"]
                .as_str()
                .is_some_and(|e| e.contains("Bearer"))
        );
        assert_eq!(wrong.0, StatusCode::UNAUTHORIZED, "{path}: {}", wrong.1);
    }
    assert_eq!(
        app.active_simulations().await,
        json!({}),
        "nothing was applied"
    );

    // With the token (TestApp adds it), the same requests work.
    app.simulate_delay("/payment", 100).await;
    app.analyze().await;
}

#[tokio::test]
async fn reads_and_the_shop_need_no_token() {
    // Arrange
    let app = TestApp::spawn_with(|config| config.http.api_token = Some(TOKEN.to_owned())).await;

    for (method, path) in [
        (Method::GET, "/simulate/status"),
        (Method::GET, "/aiops/metrics"),
        (Method::GET, "/aiops/incidents"),
        (Method::POST, "/checkout"),
        (Method::GET, "/health"),
    ] {
        // Act
        let status = app
            .client
            .request(method.clone(), format!("{}{path}", app.address))
            .send()
            .await
            .expect("sent")
            .status();

        // Assert
        assert_eq!(status, StatusCode::OK, "{method} {path}");
    }
}
