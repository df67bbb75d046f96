//! `aiops-loadgen ingest`: OTLP/HTTP protobuf exports at a target rate of spans
//! (`POST /v1/traces`) or, with `--signal logs`, of log records (`POST /v1/logs`).
//!
//! Every connection is a task that sends one request at a time (as an OpenTelemetry
//! Collector's exporter does). Requests are paced by a shared schedule: request `n` is due at
//! `n / rate` seconds after the start, so the offered rate is the target whatever the server's
//! latency, until the connections are all busy; then the achieved rate is what the server
//! sustains. The summary separates spans accepted from spans the server reported as not
//! stored (its partial-success warning) or rejected. A request answered 429 or 503 is sent
//! again after its `Retry-After`, as OpenTelemetry exporters do, and counted as throttled.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::{Args, ValueEnum};
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceResponse;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
use prost::Message;
use serde_json::json;
use tokio::sync::Mutex;

use crate::log_traffic::LogExportGenerator;
use crate::traffic::ExportGenerator;

/// What `ingest` sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Signal {
    /// Trace exports to `POST /v1/traces`; the rate and sizes count spans.
    Traces,
    /// Log exports to `POST /v1/logs`; the rate and sizes count log records.
    Logs,
}

/// Request bodies of one signal.
enum Bodies {
    Traces(ExportGenerator),
    Logs(LogExportGenerator),
}

impl Bodies {
    fn new(signal: Signal, items: usize, seed: u64) -> Self {
        match signal {
            Signal::Traces => Self::Traces(ExportGenerator::new(items, seed)),
            Signal::Logs => Self::Logs(LogExportGenerator::new(items, seed)),
        }
    }

    fn per_request(&self) -> usize {
        match self {
            Self::Traces(generator) => generator.spans_per_request(),
            Self::Logs(generator) => generator.records_per_request(),
        }
    }

    fn next_body(&mut self) -> Vec<u8> {
        match self {
            Self::Traces(generator) => generator.next_body(),
            Self::Logs(generator) => generator.next_body(),
        }
    }
}

/// What a 200 answer said: how many items were rejected, and the message.
struct Partial {
    rejected: u64,
    message: String,
}

/// Options of `ingest`.
#[derive(Debug, Args)]
pub struct IngestArgs {
    /// The server's base URL.
    #[arg(long, default_value = "http://127.0.0.1:5000")]
    url: String,
    /// Concurrent connections.
    #[arg(long, default_value_t = 4)]
    connections: usize,
    /// Spans in every request.
    #[arg(long, default_value_t = 1_000)]
    spans_per_request: usize,
    /// Target spans per second over all connections; 0 sends as fast as the server answers.
    #[arg(long, default_value_t = 200_000)]
    rate: u64,
    /// How long to send.
    #[arg(long, default_value = "30s", value_parser = crate::parse_duration)]
    duration: Duration,
    /// Stop after this many spans, whichever comes first (0: no limit).
    #[arg(long, default_value_t = 0)]
    total_spans: u64,
    /// Print progress every this often (0s: never).
    #[arg(long, default_value = "0s", value_parser = crate::parse_duration)]
    progress: Duration,
    /// Traces (spans to /v1/traces) or logs (log records to /v1/logs); with logs, the span
    /// options count log records.
    #[arg(long, value_enum, default_value = "traces")]
    signal: Signal,
}

#[derive(Debug, Default)]
struct Tally {
    requests: u64,
    failed_requests: u64,
    spans_sent: u64,
    spans_accepted: u64,
    spans_rejected: u64,
    not_stored_warnings: u64,
    throttled: u64,
    latencies: Vec<Duration>,
    first_error: Option<String>,
}

/// Runs the load and prints the summary.
pub async fn run(args: IngestArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.connections > 0, "--connections must be at least 1");
    anyhow::ensure!(
        args.spans_per_request > 0,
        "--spans-per-request must be at least 1"
    );
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.connections)
        .timeout(Duration::from_secs(30))
        .build()
        .context("building the HTTP client")?;
    let path = match args.signal {
        Signal::Traces => "/v1/traces",
        Signal::Logs => "/v1/logs",
    };
    let url = format!("{}{path}", args.url.trim_end_matches('/'));
    let signal = args.signal;
    let spans_per_request = Bodies::new(signal, args.spans_per_request, 0).per_request();
    let max_requests = match args.total_spans {
        0 => u64::MAX,
        total => total.div_ceil(spans_per_request as u64),
    };
    let period = (args.rate > 0)
        .then(|| Duration::from_secs_f64(spans_per_request as f64 / args.rate as f64));

    let next = Arc::new(AtomicU64::new(0));
    let tally = Arc::new(Mutex::new(Tally::default()));
    let started = Instant::now();
    let deadline = started + args.duration;
    let progress = (!args.progress.is_zero())
        .then(|| tokio::spawn(report_progress(tally.clone(), started, args.progress)));
    let mut tasks = Vec::new();
    for connection in 0..args.connections {
        let client = client.clone();
        let url = url.clone();
        let next = next.clone();
        let tally = tally.clone();
        let mut generator = Bodies::new(signal, args.spans_per_request, connection as u64 + 1);
        tasks.push(tokio::spawn(async move {
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= max_requests {
                    break;
                }
                if let Some(period) = period {
                    let due = started + period.mul_f64(n as f64);
                    if due >= deadline {
                        break;
                    }
                    tokio::time::sleep_until(due.into()).await;
                } else if Instant::now() >= deadline {
                    break;
                }
                let body = generator.next_body();
                let sent = Instant::now();
                let outcome = loop {
                    match send(&client, &url, signal, body.clone()).await {
                        Sent::Throttled(delay) => {
                            tally.lock().await.throttled += 1;
                            tokio::time::sleep(delay).await;
                        }
                        Sent::Answered(outcome) => break outcome,
                    }
                };
                let latency = sent.elapsed();
                let mut tally = tally.lock().await;
                tally.requests += 1;
                tally.spans_sent += spans_per_request as u64;
                tally.latencies.push(latency);
                match outcome {
                    Ok(partial) => {
                        let rejected = partial.rejected;
                        tally.spans_rejected += rejected;
                        tally.spans_accepted += spans_per_request as u64 - rejected;
                        if partial.message.contains("not stored") {
                            tally.not_stored_warnings += 1;
                            tally.first_error.get_or_insert(partial.message);
                        }
                    }
                    Err(error) => {
                        tally.failed_requests += 1;
                        tally.first_error.get_or_insert(error.to_string());
                    }
                }
            }
        }));
    }
    for task in tasks {
        task.await.context("a connection task failed")?;
    }
    let elapsed = started.elapsed();
    if let Some(progress) = progress {
        progress.abort();
    }
    let mut tally = tally.lock().await;
    summarize(&args, &mut tally, elapsed);
    Ok(())
}

/// What one attempt got: an answer, or "retry after this long".
enum Sent {
    Answered(anyhow::Result<Partial>),
    Throttled(Duration),
}

async fn send(client: &reqwest::Client, url: &str, signal: Signal, body: Vec<u8>) -> Sent {
    let response = client
        .post(url)
        .header("content-type", "application/x-protobuf")
        .body(body)
        .send()
        .await;
    let response = match response {
        Ok(response) => response,
        Err(error) => return Sent::Answered(Err(error.into())),
    };
    let status = response.status();
    if status.as_u16() == 429 || status.as_u16() == 503 {
        let seconds = response
            .headers()
            .get("retry-after")
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.trim().parse::<f64>().ok())
            .unwrap_or(1.0);
        return Sent::Throttled(Duration::from_secs_f64(seconds.clamp(0.0, 30.0)));
    }
    Sent::Answered(answer(status, signal, response).await)
}

async fn answer(
    status: reqwest::StatusCode,
    signal: Signal,
    response: reqwest::Response,
) -> anyhow::Result<Partial> {
    let bytes = response.bytes().await?;
    anyhow::ensure!(
        status.is_success(),
        "HTTP {status}: {}",
        String::from_utf8_lossy(&bytes)
    );
    Ok(match signal {
        Signal::Traces => {
            let partial = ExportTraceServiceResponse::decode(bytes)?
                .partial_success
                .unwrap_or_default();
            Partial {
                rejected: partial.rejected_spans.max(0) as u64,
                message: partial.error_message,
            }
        }
        Signal::Logs => {
            let partial = ExportLogsServiceResponse::decode(bytes)?
                .partial_success
                .unwrap_or_default();
            Partial {
                rejected: partial.rejected_log_records.max(0) as u64,
                message: partial.error_message,
            }
        }
    })
}

async fn report_progress(tally: Arc<Mutex<Tally>>, started: Instant, every: Duration) {
    let mut last = 0;
    loop {
        tokio::time::sleep(every).await;
        let accepted = tally.lock().await.spans_accepted;
        eprintln!(
            "{:>6.1}s  {:>12} spans accepted  {:>9.0} spans/s",
            started.elapsed().as_secs_f64(),
            accepted,
            (accepted - last) as f64 / every.as_secs_f64()
        );
        last = accepted;
    }
}

fn summarize(args: &IngestArgs, tally: &mut Tally, elapsed: Duration) {
    tally.latencies.sort();
    let percentile = |p: f64| -> f64 {
        if tally.latencies.is_empty() {
            return 0.0;
        }
        let index = ((tally.latencies.len() - 1) as f64 * p).round() as usize;
        tally.latencies[index].as_secs_f64() * 1e3
    };
    let rate = tally.spans_accepted as f64 / elapsed.as_secs_f64();
    let items = match args.signal {
        Signal::Traces => "spans",
        Signal::Logs => "log records",
    };
    println!(
        "ingest: {} requests ({} failed) of {} {items} over {} connections in {:.1}s; \
         {} {items} accepted = {:.0} {items}/s (target {}); rejected {}; not-stored warnings {}; \
         throttled (429/503, retried) {}; request latency p50 {:.1} ms, p99 {:.1} ms",
        tally.requests,
        tally.failed_requests,
        args.spans_per_request,
        args.connections,
        elapsed.as_secs_f64(),
        tally.spans_accepted,
        rate,
        if args.rate == 0 {
            "max".to_owned()
        } else {
            args.rate.to_string()
        },
        tally.spans_rejected,
        tally.not_stored_warnings,
        tally.throttled,
        percentile(0.5),
        percentile(0.99),
    );
    if let Some(error) = &tally.first_error {
        println!("ingest: first problem: {error}");
    }
    println!(
        "RESULT {}",
        json!({
            "signal": items,
            "requests": tally.requests,
            "failed_requests": tally.failed_requests,
            "spans_sent": tally.spans_sent,
            "spans_accepted": tally.spans_accepted,
            "spans_rejected": tally.spans_rejected,
            "not_stored_warnings": tally.not_stored_warnings,
            "throttled": tally.throttled,
            "elapsed_secs": elapsed.as_secs_f64(),
            "spans_per_sec": rate,
            "target_spans_per_sec": args.rate,
            "latency_p50_ms": percentile(0.5),
            "latency_p99_ms": percentile(0.99),
        })
    );
}
