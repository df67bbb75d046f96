//! `GET /metrics`: the Prometheus exposition names what the engine sees, and `promtool`
//! accepts it.

use std::io::Write;
use std::process::{Command, Stdio};

use aiops_e2e::TestApp;
use reqwest::Method;
use reqwest::header::CONTENT_TYPE;

async fn scrape(app: &TestApp) -> String {
    let response = app
        .request(Method::GET, "/metrics")
        .send()
        .await
        .expect("scraped");
    assert_eq!(response.status(), reqwest::StatusCode::OK);
    assert_eq!(
        response.headers()[CONTENT_TYPE],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    response.text().await.expect("text")
}

/// Lines of the exposition that start with `prefix`.
fn samples<'a>(text: &'a str, prefix: &str) -> Vec<&'a str> {
    text.lines()
        .filter(|line| line.starts_with(prefix))
        .collect()
}

#[tokio::test]
async fn exposition_counts_requests_per_endpoint_and_the_span_pipeline() {
    // Arrange
    let app = TestApp::spawn().await;
    app.learn_baselines().await;

    // Act
    let text = scrape(&app).await;

    // Assert: 20 checkouts, each calling /inventory and /payment, 20 more /inventory, 20 /health.
    assert!(
        text.contains("aiops_requests_total{service=\"shop\",endpoint=\"/checkout\"} 20"),
        "{text}"
    );
    assert!(
        text.contains("aiops_requests_total{service=\"shop\",endpoint=\"/inventory\"} 40"),
        "{text}"
    );
    assert!(
        text.contains(
            "aiops_request_duration_seconds_count{service=\"shop\",endpoint=\"/payment\"} 20"
        ),
        "{text}"
    );
    assert!(text.contains("aiops_spans_ingested_total 100"), "{text}");
    assert!(text.contains("aiops_spans_dropped_total 0"), "{text}");
    assert!(text.contains("aiops_analysis_cycles_total 1"), "{text}");
    assert!(
        text.contains("aiops_analysis_cycle_duration_seconds_count 1"),
        "{text}"
    );
    assert!(
        text.contains("aiops_incidents_active{severity=\"critical\"} 0"),
        "{text}"
    );
    assert_eq!(
        samples(&text, "aiops_baseline_samples{").len(),
        4,
        "a baseline per shop endpoint: {text}"
    );
    assert!(
        !samples(&text, "aiops_span_queue_depth ").is_empty(),
        "{text}"
    );
}

#[tokio::test]
async fn incidents_show_by_severity() {
    // Arrange
    let app = TestApp::spawn().await;
    app.learn_baselines().await;
    app.simulate_error("/payment", 1.0).await;
    app.traffic(Method::POST, "/checkout", 20, 4).await;
    app.analyze().await;

    // Act
    let text = scrape(&app).await;

    // Assert
    let active: u64 = samples(&text, "aiops_incidents_active{")
        .iter()
        .filter_map(|line| line.rsplit(' ').next()?.parse::<u64>().ok())
        .sum();
    assert_eq!(active, 1, "{text}");
}

#[tokio::test]
async fn exposition_passes_promtool_check_metrics() {
    // Arrange
    let Some(promtool) = promtool() else {
        assert!(
            std::env::var("AIOPS_REQUIRE_PROMTOOL").as_deref() != Ok("1"),
            "promtool is not on PATH but AIOPS_REQUIRE_PROMTOOL=1 (Debian package `prometheus`)"
        );
        eprintln!("promtool not found; skipping the exposition check");
        return;
    };
    let app = TestApp::spawn().await;
    app.learn_baselines().await;
    app.simulate_delay("/payment", 300).await;
    app.traffic(Method::POST, "/checkout", 10, 4).await;
    app.analyze().await;
    let text = scrape(&app).await;

    // Act
    let mut child = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool starts");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("exposition written");
    let output = child.wait_with_output().expect("promtool ends");

    // Assert
    assert!(
        output.status.success(),
        "promtool check metrics failed:\n{}{}\n{text}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

fn promtool() -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join("promtool"))
        .find(|candidate| candidate.is_file())
}
