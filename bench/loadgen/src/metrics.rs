//! Reading the server's Prometheus exposition (`GET /metrics`), and `aiops-loadgen drain`.

use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use serde_json::json;

/// Options of `drain`.
#[derive(Debug, Args)]
pub struct DrainArgs {
    /// The server's base URL.
    #[arg(long, default_value = "http://127.0.0.1:5000")]
    url: String,
    /// Give up after this long.
    #[arg(long, default_value = "120s", value_parser = crate::parse_duration)]
    timeout: Duration,
}

/// The sum of every sample of metric `name` (all label sets), if it is exposed.
pub fn metric(exposition: &str, name: &str) -> Option<f64> {
    let mut found = None;
    for line in exposition.lines() {
        if line.starts_with('#') {
            continue;
        }
        let Some(rest) = line.strip_prefix(name) else {
            continue;
        };
        if !(rest.starts_with(' ') || rest.starts_with('{')) {
            continue;
        }
        let value = rest
            .rsplit(' ')
            .next()
            .and_then(|value| value.parse::<f64>().ok());
        if let Some(value) = value {
            *found.get_or_insert(0.0) += value;
        }
    }
    found
}

/// `GET url`, which must answer 2xx; the error names the URL and the status.
pub async fn get_ok(client: &reqwest::Client, url: &str) -> anyhow::Result<reqwest::Response> {
    let response = client
        .get(url)
        .send()
        .await
        .with_context(|| format!("GET {url}"))?;
    anyhow::ensure!(
        response.status().is_success(),
        "GET {url}: HTTP {}",
        response.status()
    );
    Ok(response)
}

/// Fetches `GET /metrics`.
pub async fn scrape(client: &reqwest::Client, url: &str) -> anyhow::Result<String> {
    let url = format!("{}/metrics", url.trim_end_matches('/'));
    Ok(get_ok(client, &url).await?.text().await?)
}

/// Polls until the span queue is empty, then prints the span counters.
pub async fn drain(args: DrainArgs) -> anyhow::Result<()> {
    let client = reqwest::Client::new();
    let started = Instant::now();
    let exposition = loop {
        let exposition = scrape(&client, &args.url).await?;
        let depth = metric(&exposition, "aiops_span_queue_depth")
            .context("the server does not expose aiops_span_queue_depth")?;
        if depth == 0.0 {
            break exposition;
        }
        anyhow::ensure!(
            started.elapsed() < args.timeout,
            "the span queue still holds {depth} spans after {:?}",
            args.timeout
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let counter = |name| metric(&exposition, name).unwrap_or(f64::NAN);
    let ingested = counter("aiops_spans_ingested_total");
    let written = counter("aiops_spans_written_total");
    let dropped = counter("aiops_spans_dropped_total");
    let rejected = counter("aiops_spans_rejected_total");
    println!(
        "drain: queue empty after {:.1}s; ingested {ingested}, written {written}, \
         dropped {dropped}, rejected {rejected}",
        started.elapsed().as_secs_f64()
    );
    println!(
        "RESULT {}",
        json!({
            "drain_secs": started.elapsed().as_secs_f64(),
            "ingested": ingested,
            "written": written,
            "dropped": dropped,
            "rejected": rejected,
        })
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_of_every_label_set_are_summed() {
        let text = "# TYPE aiops_spans_dropped_total counter\n\
                    aiops_spans_dropped_total{source=\"shop\"} 2\n\
                    aiops_spans_dropped_total{source=\"otlp\"} 3\n\
                    aiops_spans_dropped_total_extra 100\n\
                    aiops_span_queue_depth 0\n";
        assert_eq!(metric(text, "aiops_spans_dropped_total"), Some(5.0));
        assert_eq!(metric(text, "aiops_span_queue_depth"), Some(0.0));
        assert_eq!(metric(text, "aiops_missing"), None);
    }
}
