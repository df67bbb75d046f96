//! The web console, in a real browser: headless Chromium loads the pages the server renders
//! after the demo's latency scenario and finds the incident, its root cause, the lit map node
//! and the failing span, with no request leaving the engine's origin. Without a browser the
//! same pages are checked over HTTP for their errors, caching and weight.

use std::path::{Path, PathBuf};

use aiops_e2e::TestApp;
use aiops_e2e::browser::{Browser, Visit, chromium};
use reqwest::header::{ACCEPT, CACHE_CONTROL, CONTENT_TYPE, ETAG, IF_NONE_MATCH};
use reqwest::{Method, StatusCode};
use serde_json::Value;

/// The demo's latency scenario: baselines, then `/payment` slowed by a second under checkout
/// traffic, then one cycle. Returns the one incident it opens.
async fn latency_incident(app: &TestApp) -> Value {
    app.learn_baselines().await;
    app.simulate_delay("/payment", 1000).await;
    app.traffic(Method::POST, "/checkout", 20, 10).await;
    let report = app.analyze().await;
    let incidents = app.active_incidents().await;
    assert_eq!(incidents.len(), 1, "one incident: {report:#}");
    incidents[0].clone()
}

async fn visit(browser: &'static Browser, url: String) -> Visit {
    tokio::task::spawn_blocking(move || browser.visit(&url, "http://127.0.0.1"))
        .await
        .expect("browser task")
}

/// The requests of `visit` that left `origin`.
fn foreign(visit: &Visit, origin: &str) -> Vec<String> {
    visit
        .requested
        .iter()
        .filter(|url| !url.starts_with(&format!("{origin}/")))
        .cloned()
        .collect()
}

/// The opening tag of the element holding `marker`, and what follows it for `len` bytes.
fn around<'a>(dom: &'a str, marker: &str, len: usize) -> &'a str {
    let at = dom
        .find(marker)
        .unwrap_or_else(|| panic!("{marker} not in the page:\n{dom}"));
    let start = dom[..at].rfind('<').unwrap_or(at);
    let mut end = (at + len).min(dom.len());
    while !dom.is_char_boundary(end) {
        end -= 1;
    }
    &dom[start..end]
}

#[tokio::test]
async fn the_console_shows_the_incident_its_root_cause_the_lit_map_node_and_the_failing_span() {
    // Arrange
    let Some(browser) = chromium() else { return };
    let browser: &'static Browser = Box::leak(Box::new(browser));
    let app = TestApp::spawn().await;
    let incident = latency_incident(&app).await;
    let id = incident["id"].as_str().expect("id").to_owned();
    let root = incident["root_cause"]["endpoint"]
        .as_str()
        .expect("root cause")
        .to_owned();
    let span = incident["root_cause"]["first_failing_span"]["span_id"]
        .as_str()
        .expect("a first failing span")
        .to_owned();
    let origin = app.address.clone();

    // Act
    let overview = visit(browser, format!("{origin}/")).await;
    let story = visit(browser, format!("{origin}/incidents/{id}")).await;
    let map = visit(browser, format!("{origin}/map")).await;

    // Assert: the overview lists the incident with its root cause.
    let listed = around(&overview.dom, &format!("data-incident=\"{id}\""), 1500);
    assert!(listed.contains(&format!(">{root}<")), "{listed}");
    // The incident page names the root cause the API names, draws its charts, and lights the
    // first failing span in the waterfall.
    let cause = around(&story.dom, "class=\"root-cause\"", 200);
    assert!(cause.contains(&format!(">{root}<")), "{cause}");
    assert_eq!(root, "/payment");
    assert!(
        story.dom.contains("data-drawn=\"true\""),
        "charts drawn: {}",
        story.dom
    );
    let lit = around(&story.dom, &format!("data-span-id=\"{span}\""), 400);
    assert!(lit.contains("lit"), "{lit}");
    assert!(lit.contains("failing span") && lit.contains(&root), "{lit}");
    // The map lights the root cause's node.
    let node = around(&map.dom, &format!("data-node=\"{root}\""), 300);
    assert!(node.contains("class=\"node root"), "{node}");
    // Nothing left the engine's origin; the chart library came from it.
    assert!(
        story
            .requested
            .iter()
            .any(|url| url.ends_with("/uPlot.iife.min.js")),
        "{:?}",
        story.requested
    );
    for visit in [&overview, &story, &map] {
        assert!(!visit.requested.is_empty(), "the net log recorded the page");
        assert_eq!(foreign(visit, &origin), Vec::<String>::new());
    }

    // Screenshots for the README: `AIOPS_UPDATE_DOCS=1` writes them into docs/.
    let update = std::env::var("AIOPS_UPDATE_DOCS").as_deref() == Ok("1");
    let scratch = tempfile::TempDir::new().expect("directory");
    let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs");
    for (page, name, size) in [
        (String::from("/"), "console-overview.png", (1280, 800)),
        (
            format!("/incidents/{id}"),
            "console-incident.png",
            (1280, 1560),
        ),
        (String::from("/map"), "console-map.png", (1280, 800)),
    ] {
        let path: PathBuf = if update {
            docs.join(name)
        } else {
            scratch.path().join(name)
        };
        let url = format!("{origin}{page}");
        let target = path.clone();
        tokio::task::spawn_blocking(move || browser.screenshot(&url, size, &target))
            .await
            .expect("browser task");
        let png = std::fs::read(&path).expect("screenshot");
        assert!(png.starts_with(b"\x89PNG"), "{name} is a PNG");
    }
}

#[tokio::test]
async fn console_pages_and_their_assets_weigh_under_300_kb_and_assets_are_cached_by_content() {
    // Arrange
    let app = TestApp::spawn().await;
    let incident = latency_incident(&app).await;
    let id = incident["id"].as_str().expect("id");

    for page in [
        "/".to_owned(),
        format!("/incidents/{id}"),
        "/map".to_owned(),
    ] {
        // Act
        let response = app
            .request(Method::GET, &page)
            .header(ACCEPT, "text/html")
            .send()
            .await
            .expect("page");
        assert_eq!(response.status(), StatusCode::OK, "{page}");
        assert!(
            response.headers()[CONTENT_TYPE]
                .to_str()
                .expect("type")
                .starts_with("text/html")
        );
        let html = response.text().await.expect("html");
        let mut weight = html.len();
        for asset in html
            .split("\"/assets/")
            .skip(1)
            .filter_map(|rest| rest.split('"').next())
        {
            let response = app
                .request(Method::GET, &format!("/assets/{asset}"))
                .send()
                .await
                .expect("asset");
            assert_eq!(response.status(), StatusCode::OK, "{asset}");
            let cache = response.headers()[CACHE_CONTROL]
                .to_str()
                .expect("cache")
                .to_owned();
            assert!(
                cache.contains("immutable") && cache.contains("max-age=31536000"),
                "{cache}"
            );
            let etag = response.headers()[ETAG].clone();
            weight += response.bytes().await.expect("bytes").len();
            let again = app
                .request(Method::GET, &format!("/assets/{asset}"))
                .header(IF_NONE_MATCH, etag)
                .send()
                .await
                .expect("asset");
            assert_eq!(again.status(), StatusCode::NOT_MODIFIED, "{asset}");
        }

        // Assert
        assert!(weight < 300 * 1024, "{page} weighs {weight} bytes");
        assert!(
            !html.contains("http://") && !html.contains("https://"),
            "{page} links nothing outside"
        );
    }
}

#[tokio::test]
async fn console_errors_are_pages_for_browsers_and_json_for_api_clients() {
    // Arrange
    let app = TestApp::spawn().await;

    for (path, status, phrase) in [
        (
            "/incidents/INC-1-1",
            StatusCode::NOT_FOUND,
            "no incident has id",
        ),
        ("/trace?id=xyz", StatusCode::BAD_REQUEST, "invalid trace id"),
        (
            "/trace?id=4bf92f3577b34da6a3ce929d0e0e4736",
            StatusCode::NOT_FOUND,
            "no spans of trace",
        ),
        (
            "/endpoint?service=shop",
            StatusCode::BAD_REQUEST,
            "operation",
        ),
        ("/map?colour=red", StatusCode::BAD_REQUEST, "colour"),
        ("/assets/0/none.js", StatusCode::NOT_FOUND, "no asset"),
    ] {
        // Act
        let page = app
            .request(Method::GET, path)
            .header(ACCEPT, "text/html")
            .send()
            .await
            .expect("page");
        let page_status = page.status();
        let html = page.text().await.expect("html");
        let (json_status, json) = app.get(path).await;

        // Assert
        assert_eq!(page_status, status, "{path}: {html}");
        assert!(
            html.contains(phrase) || path.starts_with("/assets"),
            "{path}: {html}"
        );
        assert_eq!(json_status, status, "{path}");
        assert!(
            json["error"]
                .as_str()
                .is_some_and(|error| error.contains(phrase)),
            "{path}: {json}"
        );
    }
    let (status, body) = app.post("/").await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{body}");
    // HEAD (link checkers, uptime probes) answers like GET, without the page.
    let head = app
        .request(Method::HEAD, "/map")
        .send()
        .await
        .expect("HEAD");
    assert_eq!(head.status(), StatusCode::OK);
    assert!(head.text().await.expect("body").is_empty());
}

#[tokio::test]
async fn the_api_browser_is_swagger_ui_over_the_engine_document_from_the_binary() {
    // Arrange
    let app = TestApp::spawn().await;

    // Act
    let index = app
        .request(Method::GET, "/api/")
        .send()
        .await
        .expect("page");
    let status = index.status();
    let html = index.text().await.expect("html");
    let initializer = app
        .request(Method::GET, "/api/swagger-initializer.js")
        .send()
        .await
        .expect("script")
        .text()
        .await
        .expect("text");
    let redirect = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
        .get(format!("{}/api", app.address))
        .send()
        .await
        .expect("redirect");

    // Assert
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("swagger-ui"), "{html}");
    assert!(initializer.contains("/openapi.json"), "{initializer}");
    assert!(
        initializer.contains("\"validatorUrl\": \"none\""),
        "{initializer}"
    );
    assert_eq!(redirect.status(), StatusCode::PERMANENT_REDIRECT);
    assert_eq!(redirect.headers()["location"], "/api/");
}

#[tokio::test]
async fn with_an_api_token_pages_open_without_it_and_offer_to_ask_for_it_once() {
    // Arrange
    let app = TestApp::spawn_with(|config| config.http.api_token = Some("s3cret".to_owned())).await;

    // Act
    let page = reqwest::Client::new()
        .get(format!("{}/", app.address))
        .header(ACCEPT, "text/html")
        .send()
        .await
        .expect("page");
    let status = page.status();
    let html = page.text().await.expect("html");

    // Assert: reading needs no token; the dialog that asks for it is there, the token is not.
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(html.contains("id=\"token-dialog\""), "{html}");
    assert!(html.contains("type=\"password\""), "{html}");
    assert!(!html.contains("s3cret"), "the page never carries the token");
    let script = app
        .request(Method::GET, "/assets/x/console.js")
        .send()
        .await
        .expect("script")
        .text()
        .await
        .expect("text");
    assert!(script.contains("sessionStorage"), "kept for the tab only");
    assert!(
        !script.contains("localStorage"),
        "never kept beyond the tab"
    );
}
