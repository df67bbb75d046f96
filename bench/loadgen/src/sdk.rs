//! `aiops-loadgen sdk`: spans from instrumented services through the real OpenTelemetry SDK
//! (batch span processor, OTLP/HTTP protobuf exporter with its retries), counted by what
//! became of them: acknowledged by the server, dropped by the SDK after its retries, or dropped
//! by the batch processor's full queue before any export.

use std::time::{Duration, Instant};

use aiops_loadgen::sdk_load::{SdkCounts, SdkLoad};
use clap::Args;
use serde_json::json;

/// Options of `sdk`.
#[derive(Debug, Args)]
pub struct SdkArgs {
    /// The server's base URL.
    #[arg(long, default_value = "http://127.0.0.1:5000")]
    url: String,
    /// Services in this process, each its own tracer provider, batch processor and exporter.
    #[arg(long, default_value_t = 1)]
    services: usize,
    /// Prefix of the services' names (`<prefix>-<n>`).
    #[arg(long, default_value = "sdk-service")]
    service_prefix: String,
    /// Spans each service creates per second (0: as fast as it can).
    #[arg(long, default_value_t = 0)]
    rate: u64,
    /// How long each service creates spans.
    #[arg(long, default_value = "10s", value_parser = crate::parse_duration)]
    duration: Duration,
    /// Stop each service after this many spans, whichever comes first (0: no limit).
    #[arg(long, default_value_t = 0)]
    spans: u64,
    /// The batch processor's queue of each service (the SDK's default is 2048).
    #[arg(long, default_value_t = 2048)]
    queue_size: usize,
    /// Spans per export (the SDK's default is 512).
    #[arg(long, default_value_t = 512)]
    batch_size: usize,
    /// How long one export may take with its retries (the SDK's default is 10s).
    #[arg(long, default_value = "10s", value_parser = crate::parse_duration)]
    export_timeout: Duration,
}

/// Runs the services and prints the summary.
pub async fn run(args: SdkArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.services > 0, "--services must be at least 1");
    let started = Instant::now();
    let loads: Vec<SdkLoad> = (0..args.services)
        .map(|index| SdkLoad {
            url: args.url.clone(),
            service: format!("{}-{index}", args.service_prefix),
            spans: args.spans,
            duration: args.duration,
            rate: args.rate,
            queue_size: args.queue_size,
            batch_size: args.batch_size,
            export_timeout: args.export_timeout,
        })
        .collect();
    let counts = tokio::task::spawn_blocking(move || {
        std::thread::scope(|scope| {
            let runs: Vec<_> = loads
                .iter()
                .map(|load| scope.spawn(move || load.run()))
                .collect();
            runs.into_iter()
                .map(|run| run.join().expect("a service thread panicked"))
                .try_fold(SdkCounts::default(), |total, counts| {
                    counts.map(|counts| total.add(&counts))
                })
        })
    })
    .await??;
    let elapsed = started.elapsed().as_secs_f64();
    println!(
        "sdk: {} services, {:.1} s: created {}, acknowledged {} ({:.0}/s), dropped by the SDK \
         after its retries {} ({} failed exports), dropped by the batch queue {}, exports unsettled \
         at exit {}",
        args.services,
        elapsed,
        counts.created,
        counts.acknowledged,
        counts.acknowledged as f64 / elapsed,
        counts.failed,
        counts.exports_failed,
        counts.dropped_by_queue(),
        counts.unsettled(),
    );
    println!(
        "RESULT {}",
        json!({
            "services": args.services,
            "seconds": elapsed,
            "spans_created": counts.created,
            "spans_acknowledged": counts.acknowledged,
            "spans_failed_after_retries": counts.failed,
            "spans_dropped_by_queue": counts.dropped_by_queue(),
            "spans_unsettled": counts.unsettled(),
            "exports_ok": counts.exports_ok,
            "exports_failed": counts.exports_failed,
        })
    );
    Ok(())
}
