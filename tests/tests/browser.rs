//! Web pages cannot drive the engine: cross-origin browser requests that change something are
//! refused, and a server bound to loopback answers only the names loopback is reached by (no
//! DNS rebinding).

use aiops_e2e::{TestApp, json_of};
use reqwest::header::{CONTENT_TYPE, HOST, ORIGIN};
use reqwest::{Method, StatusCode};

#[tokio::test]
async fn a_cross_origin_post_is_refused_and_changes_nothing() {
    let app = TestApp::spawn().await;
    app.simulate_delay("/payment", 200).await;

    let refused = app
        .request(Method::POST, "/simulate/clear")
        .header(ORIGIN, "https://evil.example")
        .send()
        .await
        .expect("sent");
    let (status, body) = json_of(refused).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let message = body["error"].as_str().expect("a JSON error");
    assert!(
        message.starts_with("cross-origin request refused (Origin https://evil.example"),
        "{message}"
    );
    assert_eq!(
        app.active_simulations()
            .await
            .as_object()
            .map(|rules| rules.len()),
        Some(1)
    );

    let fetched = app
        .request(Method::POST, "/aiops/analyze")
        .header("sec-fetch-site", "cross-site")
        .send()
        .await
        .expect("sent");
    assert_eq!(fetched.status(), StatusCode::FORBIDDEN);
    let ingest = app
        .request(Method::POST, "/v1/traces")
        .header(CONTENT_TYPE, "application/json")
        .header("sec-fetch-site", "same-site")
        .body("{}")
        .send()
        .await
        .expect("sent");
    assert_eq!(ingest.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn same_origin_pages_and_clients_without_an_origin_are_served() {
    let app = TestApp::spawn().await;
    let own = app
        .request(Method::POST, "/simulate/clear")
        .header(ORIGIN, app.address.as_str())
        .send()
        .await
        .expect("sent");
    assert_eq!(own.status(), StatusCode::OK);
    let fetched = app
        .request(Method::POST, "/simulate/clear")
        .header("sec-fetch-site", "same-origin")
        .send()
        .await
        .expect("sent");
    assert_eq!(fetched.status(), StatusCode::OK);
    assert_eq!(app.post("/simulate/clear").await.0, StatusCode::OK, "curl");
    let read = app
        .request(Method::GET, "/aiops/incidents")
        .header(ORIGIN, "https://evil.example")
        .send()
        .await
        .expect("sent");
    assert_eq!(read.status(), StatusCode::OK, "reads change nothing");
}

#[tokio::test]
async fn a_loopback_server_answers_only_loopback_names_and_those_allowed() {
    let app = TestApp::spawn_with(|config| {
        config.http.allowed_hosts = Some("aiops.internal".to_owned());
    })
    .await;
    let with_host = |host: String| {
        app.request(Method::GET, "/aiops/metrics")
            .header(HOST, host)
            .send()
    };

    let rebound = with_host(format!("evil.example:{}", app.port))
        .await
        .expect("sent");
    let (status, body) = json_of(rebound).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let message = body["error"].as_str().expect("a JSON error");
    assert!(
        message.starts_with("host \"evil.example:")
            && message.contains("accepted: localhost, 127.0.0.1, [::1], aiops.internal"),
        "{message}"
    );
    for host in ["localhost", "127.0.0.1", "aiops.internal"] {
        let answered = with_host(format!("{host}:{}", app.port))
            .await
            .expect("sent");
        assert_eq!(answered.status(), StatusCode::OK, "{host}");
    }
    let ingest = app
        .request(Method::POST, "/v1/traces")
        .header(HOST, "evil.example")
        .header(CONTENT_TYPE, "application/json")
        .body("{}")
        .send()
        .await
        .expect("sent");
    assert_eq!(ingest.status(), StatusCode::FORBIDDEN);
}
