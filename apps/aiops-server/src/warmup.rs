//! Start-up warm-up: a few healthy requests to each demo-shop endpoint, so that baselines exist
//! before anyone injects a fault and the quick-reference scenarios work on a fresh server.

use std::time::Duration;

/// Sends `requests` healthy requests to each shop endpoint of the server at `base_url`.
/// Failures are logged, never fatal: the warm-up only helps.
pub async fn run(base_url: String, requests: u32) {
    let client = match reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
    {
        Ok(client) => client,
        Err(error) => {
            log::warn!("error={error} Cannot build the warm-up client; skipping the warm-up.");
            return;
        }
    };
    let mut failures = 0u32;
    for _ in 0..requests {
        for (method, path) in [
            (reqwest::Method::GET, "/health"),
            (reqwest::Method::GET, "/inventory"),
            (reqwest::Method::POST, "/payment"),
            (reqwest::Method::POST, "/checkout"),
        ] {
            let sent = client
                .request(method, format!("{base_url}{path}"))
                .send()
                .await;
            if !sent.is_ok_and(|response| response.status().is_success()) {
                failures += 1;
            }
        }
    }
    log::info!(
        "requests={} failures={failures} Warm-up traffic sent; baselines learn from it at the next analysis cycles.",
        requests * 4
    );
}
