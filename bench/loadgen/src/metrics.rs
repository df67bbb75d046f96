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
            .context("the server does not expose aiops_span_queue_depth")?
            + metric(&exposition, "aiops_log_queue_depth").unwrap_or(0.0);
        if depth == 0.0 {
            break exposition;
        }
        anyhow::ensure!(
            started.elapsed() < args.timeout,
            "the span and log queues still hold {depth} items after {:?}",
            args.timeout
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let counter = |name| metric(&exposition, name).unwrap_or(f64::NAN);
    let ingested = counter("aiops_spans_ingested_total");
    let written = counter("aiops_spans_written_total");
    let dropped = counter("aiops_spans_dropped_total");
    let rejected = counter("aiops_spans_rejected_total");
    let logs_accepted = metric(&exposition, "aiops_log_records_accepted_total").unwrap_or(0.0);
    let logs_written = metric(&exposition, "aiops_log_records_written_total").unwrap_or(0.0);
    let logs_dropped = metric(&exposition, "aiops_log_records_dropped_total").unwrap_or(0.0);
    println!(
        "drain: queues empty after {:.1}s; spans ingested {ingested}, written {written}, \
         dropped {dropped}, rejected {rejected}; log records accepted {logs_accepted}, \
         written {logs_written}, dropped {logs_dropped}",
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
            "log_records_accepted": logs_accepted,
            "log_records_written": logs_written,
            "log_records_dropped": logs_dropped,
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
