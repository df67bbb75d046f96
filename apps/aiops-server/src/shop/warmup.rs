//! Start-up warm-up: a few healthy requests to each demo-shop endpoint, so that baselines exist
//! before anyone injects a fault and the documented scenarios (docs/API.md) work on a fresh server.

use std::time::Duration;

use super::table::SHOP_ROUTES;

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
        for route in SHOP_ROUTES {
            let method = reqwest::Method::from_bytes(route.method.as_bytes())
                .unwrap_or(reqwest::Method::GET);
            let sent = client
                .request(method, format!("{base_url}{}", route.path))
                .send()
                .await;
            if !sent.is_ok_and(|response| response.status().is_success()) {
                failures += 1;
            }
        }
    }
    log::info!(
        "requests={} failures={failures} Warm-up traffic sent; baselines learn from it at the next analysis cycles.",
        requests as usize * SHOP_ROUTES.len()
    );
}
