//! `workloads`: runs the realistic workload suite and prints its tables.
//!
//! ```text
//! cargo run -p aiops-workloads --release -- --seeds report
//! ```
//!
//! Tune the engine on `--seeds tune` only; report on `--seeds report`, a disjoint range. See
//! the library's documentation for what the cases are and how they are scored.

use std::io::Write as _;
use std::time::Instant;

use aiops_workloads::{report, suite};
use clap::Parser;

/// Realistic workload suite: detection and root-cause quality of the engine.
#[derive(Debug, Parser)]
#[command(name = "workloads")]
struct Args {
    /// Seed range: `tune` (seeds from 1, for tuning), `report` (from 1,000,000, for
    /// measuring), or the first seed of another range.
    #[arg(long, default_value = "report", value_parser = suite::Seeds::parse)]
    seeds: suite::Seeds,
    /// Cases per scenario (fault class and magnitude, or healthy class).
    #[arg(long, default_value_t = 16)]
    cases: usize,
    /// Only the scenarios whose name contains this text (e.g. `timeout`, `CPU`, `steady`).
    #[arg(long)]
    class: Option<String>,
    /// Run only the case with this seed (of each scenario matching `--class`), e.g. to look
    /// again at a case listed by `--verbose`.
    #[arg(long)]
    seed: Option<u64>,
    /// Worker threads (default: the available cores).
    #[arg(long)]
    threads: Option<usize>,
    /// List every miss, false incident and extra incident (more than one per fault) on
    /// standard error.
    #[arg(long)]
    verbose: bool,
}

fn main() {
    let args = Args::parse();
    let config = suite::engine_config().unwrap_or_else(|error| {
        eprintln!("error: {error}");
        std::process::exit(2);
    });
    let plan = match args.seed {
        Some(seed) => suite::plan_seed(seed, args.class.as_deref()),
        None => suite::plan(args.seeds, args.cases, args.class.as_deref()),
    };
    if plan.is_empty() {
        eprintln!("error: no scenario matches the filter");
        std::process::exit(2);
    }
    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let started = Instant::now();
    let total = plan.len();
    let progress = |done: usize| {
        if done.is_multiple_of(10) || done == total {
            eprint!("\r{done}/{total} cases");
            let _ = std::io::stderr().flush();
        }
    };
    let finished = suite::run_all(&plan, &config, threads, &progress);
    eprintln!();
    let elapsed = started.elapsed();

    if args.verbose {
        for done in &finished {
            if let Some(miss) = report::miss(&done.case, &done.score, &done.outcome) {
                eprintln!("{miss}");
            }
        }
    }
    let scores: Vec<_> = finished.iter().map(|f| f.score.clone()).collect();
    let spans: u64 = finished.iter().map(|f| f.outcome.spans).sum();
    let virtual_secs: u64 = finished
        .iter()
        .map(|f| (f.case.end_ns - aiops_workloads::case::T0) / 1_000_000_000)
        .sum();
    println!(
        "Realistic workload suite: seeds {:?} (first {}), {} cases per scenario, {} cases\n",
        args.seeds,
        args.seeds.first(),
        args.cases,
        finished.len()
    );
    print!("{}", report::tables(&scores));
    println!(
        "\n{:.1} M spans over {:.1} virtual hours in {:.0} s on {threads} threads.",
        spans as f64 / 1e6,
        virtual_secs as f64 / 3600.0,
        elapsed.as_secs_f64()
    );
    if config != aiops_workloads::engine::EngineConfig::default() {
        println!(
            "\nAnalyzer: latency_multiplier {}, min_latency_increase_ms {} (not the defaults).",
            config.analyzer.latency_multiplier, config.analyzer.min_latency_increase_ms
        );
    }
}
