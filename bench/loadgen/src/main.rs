//! `aiops-loadgen`: the traffic side of the performance suite (`bench/run.sh`).
//!
//! - `ingest` sends OTLP/HTTP protobuf trace exports of a fixed size to `POST /v1/traces` from
//!   several connections at a target span rate, and reports the rate the server accepted;
//!   `ingest --signal logs` sends log exports to `POST /v1/logs` the same way.
//! - `detect` sends steady demo-shop traffic, injects a delay through `/simulate/delay`, and
//!   reports how long the server took to list a new incident in `/aiops/incidents`.
//! - `sdk` sends spans through the real OpenTelemetry SDK (batch processor, OTLP/HTTP exporter
//!   with its retries) and counts them as acknowledged, dropped after retries, or dropped by
//!   the SDK's queue.
//! - `drain` waits until the server's span queue is empty and prints its span counters.
//!
//! Each subcommand prints one human-readable summary and one `RESULT {json}` line for scripts.

mod detect;
mod duration;
mod ingest;
mod log_traffic;
mod metrics;
mod sdk;
mod traffic;

use clap::{Parser, Subcommand};
use duration::parse_duration;

/// Traffic for the aiops performance suite.
#[derive(Debug, Parser)]
#[command(name = "aiops-loadgen", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Send OTLP protobuf trace (or log) exports to POST /v1/traces (or /v1/logs) at a
    /// target rate.
    Ingest(ingest::IngestArgs),
    /// Measure the time from injecting a delay to the incident appearing.
    Detect(detect::DetectArgs),
    /// Send spans through the OpenTelemetry SDK and count what the server acknowledged.
    Sdk(sdk::SdkArgs),
    /// Wait until the server's span and log queues are empty; print their counters.
    Drain(metrics::DrainArgs),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Ingest(args) => ingest::run(args).await,
        Command::Detect(args) => detect::run(args).await,
        Command::Sdk(args) => sdk::run(args).await,
        Command::Drain(args) => metrics::drain(args).await,
    }
}
