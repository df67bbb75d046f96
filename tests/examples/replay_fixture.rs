//! Writes a recording of the multi-service system (frontend -> inventory, payments) as OTLP
//! JSON lines, the OpenTelemetry Collector file exporter's format, for `aiops replay`:
//!
//! ```text
//! cargo run -p aiops-e2e --example replay_fixture -- tests/data/replay-payments-latency.jsonl
//! cargo run -- replay --otlp-file tests/data/replay-payments-latency.jsonl --format text
//! ```
//!
//! Five minutes at one checkout per second; `payments` is 600 ms slower from 2:30 to 4:00.
//! A second argument `inventory-errors` records an error storm in `inventory` instead.

use std::io::Write;

use aiops_e2e::otlp_system::{Fault, Scenario, replay_lines};

use anyhow::Context;

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let path = args
        .next()
        .unwrap_or_else(|| "tests/data/replay-payments-latency.jsonl".to_owned());
    let scenario = match args.next().as_deref() {
        None | Some("payments-latency") => Scenario::payments_latency(),
        Some("inventory-errors") => Scenario {
            fault: Some(Fault::Errors {
                service: "inventory",
                rate: 0.8,
            }),
            ..Scenario::payments_latency()
        },
        Some(other) => anyhow::bail!(
            "unknown scenario {other:?}; accepted: payments-latency, inventory-errors"
        ),
    };
    if let Some(parent) = std::path::Path::new(&path).parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create the directory of {path}"))?;
    }
    let file = std::fs::File::create(&path).with_context(|| format!("cannot create {path}"))?;
    let mut file = std::io::BufWriter::new(file);
    let lines = replay_lines(7, &scenario);
    for line in &lines {
        writeln!(file, "{line}")?;
    }
    file.flush()?;
    eprintln!("Wrote {} lines to {path}.", lines.len());
    Ok(())
}
