//! `aiops-loadgen detect`: time from injecting a delay to the incident being listed.
//!
//! Steady open-loop traffic (each request on its own task, so slow answers do not slow the
//! sender) runs for a settling period; then the delay is injected with
//! `POST /simulate/delay` and `GET /aiops/incidents` is polled until an incident that was not
//! there before appears. The figure runs from just before the injection request is sent to
//! the first poll that lists the incident, so it overstates by at most one poll period.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use serde_json::{Value, json};

/// Options of `detect`.
#[derive(Debug, Args)]
pub struct DetectArgs {
    /// The server's base URL.
    #[arg(long, default_value = "http://127.0.0.1:5000")]
    url: String,
    /// Requests per second, spread evenly.
    #[arg(long, default_value_t = 10.0)]
    rate: f64,
    /// The demo-shop route the traffic goes to (`/payment` and `/checkout` are POSTs).
    #[arg(long, default_value = "/payment")]
    path: String,
    /// The endpoint the delay is injected on.
    #[arg(long, default_value = "/payment")]
    endpoint: String,
    /// The injected delay, in milliseconds.
    #[arg(long, default_value_t = 2_000)]
    delay_ms: u64,
    /// Healthy traffic before the injection.
    #[arg(long, default_value = "20s", value_parser = crate::parse_duration)]
    settle: Duration,
    /// Give up when no incident appears within this long after the injection.
    #[arg(long, default_value = "60s", value_parser = crate::parse_duration)]
    timeout: Duration,
    /// How often the incident list is read.
    #[arg(long, default_value = "50ms", value_parser = crate::parse_duration)]
    poll: Duration,
}

/// Runs one measurement and prints it.
pub async fn run(args: DetectArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.rate > 0.0, "--rate must be positive");
    let base = args.url.trim_end_matches('/').to_owned();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .context("building the HTTP client")?;
    wait_until_up(&client, &base).await?;

    let sent = Arc::new(AtomicU64::new(0));
    let traffic = tokio::spawn(send_traffic(
        client.clone(),
        format!("{base}{}", args.path),
        args.path != "/health" && args.path != "/inventory",
        args.rate,
        sent.clone(),
    ));
    tokio::time::sleep(args.settle).await;

    let known = incident_ids(&client, &base, "all").await?;
    let injected = Instant::now();
    let response = client
        .post(format!(
            "{base}/simulate/delay?endpoint={}&duration={}",
            args.endpoint, args.delay_ms
        ))
        .send()
        .await
        .context("POST /simulate/delay")?;
    anyhow::ensure!(
        response.status().is_success(),
        "POST /simulate/delay: HTTP {}: {}",
        response.status(),
        response.text().await.unwrap_or_default()
    );

    let found = loop {
        let active = get_json(&client, &format!("{base}/aiops/incidents")).await?;
        let new = active["active_incidents"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|incident| {
                incident["id"]
                    .as_str()
                    .is_some_and(|id| !known.contains(id))
            })
            .cloned();
        if let Some(incident) = new {
            break Some((injected.elapsed(), incident));
        }
        if injected.elapsed() > args.timeout {
            break None;
        }
        tokio::time::sleep(args.poll).await;
    };
    traffic.abort();
    let _ = client.post(format!("{base}/simulate/clear")).send().await;

    let requests = sent.load(Ordering::Relaxed);
    match found {
        Some((elapsed, incident)) => {
            println!(
                "detect: {}ms delay on {} at {} req/s to {}: incident {} after {:.2}s \
                 (root cause {}, \"{}\"); {requests} requests sent",
                args.delay_ms,
                args.endpoint,
                args.rate,
                args.path,
                incident["id"].as_str().unwrap_or("?"),
                elapsed.as_secs_f64(),
                incident["root_cause"]["endpoint"],
                incident["title"].as_str().unwrap_or(""),
            );
            println!(
                "RESULT {}",
                json!({
                    "detected": true,
                    "seconds": elapsed.as_secs_f64(),
                    "incident": incident["id"],
                    "root_cause": incident["root_cause"]["endpoint"],
                    "requests": requests,
                })
            );
        }
        None => {
            println!(
                "detect: no incident within {:?} of injecting {}ms on {}",
                args.timeout, args.delay_ms, args.endpoint
            );
            println!(
                "RESULT {}",
                json!({"detected": false, "requests": requests})
            );
        }
    }
    Ok(())
}

async fn send_traffic(
    client: reqwest::Client,
    url: String,
    post: bool,
    rate: f64,
    sent: Arc<AtomicU64>,
) {
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    loop {
        tick.tick().await;
        let request = if post {
            client
                .post(&url)
                .header("content-type", "application/json")
                .body(r#"{"amount": 42.5, "currency": "USD"}"#)
        } else {
            client.get(&url)
        };
        sent.fetch_add(1, Ordering::Relaxed);
        tokio::spawn(async move {
            let _ = request.send().await;
        });
    }
}

async fn incident_ids(
    client: &reqwest::Client,
    base: &str,
    status: &str,
) -> anyhow::Result<HashSet<String>> {
    let body = get_json(client, &format!("{base}/aiops/incidents?status={status}")).await?;
    Ok(body["incidents"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|incident| incident["id"].as_str().map(str::to_owned))
        .collect())
}

async fn get_json(client: &reqwest::Client, url: &str) -> anyhow::Result<Value> {
    Ok(crate::metrics::get_ok(client, url).await?.json().await?)
}

async fn wait_until_up(client: &reqwest::Client, base: &str) -> anyhow::Result<()> {
    let started = Instant::now();
    loop {
        match client.get(format!("{base}/health")).send().await {
            Ok(response) if response.status().is_success() => return Ok(()),
            _ if started.elapsed() > Duration::from_secs(30) => {
                anyhow::bail!("{base}/health did not answer within 30s")
            }
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}
