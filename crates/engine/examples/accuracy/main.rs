//! Root-cause accuracy benchmark.
//!
//! Generates random microservice topologies, injects one fault per case (extra latency,
//! errors, or a hanging callee) at a random non-entry service, and runs the engine's analysis
//! cycle exactly as the server does (live windows, trace buffer, analyzer, RCA, incident
//! book) on a virtual clock: a healthy warm-up, then the fault. Cases without a fault count
//! false incidents. Prints a markdown table.
//!
//! ```text
//! cargo run -p aiops-engine --release --example accuracy [CASES_PER_KIND [SEED [NO_FAULT_CASES]]]
//! ```
//!
//! `CASES_PER_KIND` (default 200) fault cases of each kind are run, plus `NO_FAULT_CASES`
//! (default `max(200, CASES_PER_KIND)`) cases without a fault. Results depend only on the seed
//! (default 42). Set `ACCURACY_VERBOSE=1` to print every miss.
//!
//! The engine runs with `EngineConfig::default()`. To see what another sensitivity gives, set
//! `ACCURACY_LATENCY_MULTIPLIER` and/or `ACCURACY_MIN_LATENCY_INCREASE_MS` (the analyzer's
//! `latency_multiplier` and `min_latency_increase_ms`, the server's `--latency-multiplier` and
//! `--min-latency-increase`).

mod topology;
mod traffic;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use aiops_engine::{Engine, EngineConfig, Incident};
use aiops_telemetry_core::Span;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use topology::Topology;
use traffic::{Fault, Requests};

const SECOND: u64 = 1_000_000_000;
const T0: u64 = 1_700_000_000 * SECOND;
const STEP: u64 = SECOND / 10;
/// Requests per second at the entry service.
const RATE: f64 = 10.0;
const WARM_UP_SECS: u64 = 240;
const FAULT_SECS: u64 = 60;
const KINDS: [&str; 3] = ["latency", "errors", "timeout"];

struct CaseOutcome {
    /// The injected fault's kind and service, if any.
    fault: Option<(&'static str, String)>,
    /// The fault in full, for the verbose listing of misses.
    detail: String,
    /// Root-cause services of the incidents opened after the fault began, best first,
    /// followed by their runner-up candidates.
    ranked: Vec<String>,
    /// Services ranked the naive way, for comparison: by the largest ratio (observed over
    /// baseline) of any of their anomalies, as if inclusive symptoms located the fault.
    naive: Vec<String>,
    /// Incidents opened with no fault present (before the fault, or in a no-fault case).
    false_incidents: Vec<String>,
    elapsed: Duration,
    /// CPU time of the case's thread, when the platform tells (Linux).
    cpu: Option<Duration>,
}

fn main() {
    let mut args = std::env::args().skip(1);
    let per_kind: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(200);
    let seed: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(42);
    let no_fault: usize = args
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or(per_kind.max(200));
    let verbose = std::env::var_os("ACCURACY_VERBOSE").is_some();
    let config = engine_config().unwrap_or_else(|error| {
        eprintln!("error: {error}");
        std::process::exit(2);
    });

    let mut plan: Vec<Option<&'static str>> = Vec::new();
    for _ in 0..per_kind {
        plan.extend(KINDS.iter().map(|&k| Some(k)));
    }
    plan.extend(std::iter::repeat_n(None, no_fault));

    let started = Instant::now();
    let outcomes = run_all(&plan, seed, &config);
    let total = started.elapsed();

    if verbose {
        for (index, outcome) in outcomes.iter().enumerate() {
            let hit = outcome
                .fault
                .as_ref()
                .is_some_and(|(_, s)| outcome.ranked.first() == Some(s));
            if outcome.fault.is_some() && !hit || !outcome.false_incidents.is_empty() {
                eprintln!(
                    "case {index}: fault {}, ranked {:?}, false {:?}",
                    outcome.detail, outcome.ranked, outcome.false_incidents
                );
            }
        }
    }
    print_report(&outcomes, per_kind, seed, total);
    if config != EngineConfig::default() {
        println!(
            "\nAnalyzer: latency_multiplier {}, min_latency_increase_ms {} (not the defaults).",
            config.analyzer.latency_multiplier, config.analyzer.min_latency_increase_ms
        );
    }
}

/// The engine's default configuration with the sensitivity overrides of the environment.
fn engine_config() -> Result<EngineConfig, String> {
    let mut config = EngineConfig::default();
    for (name, field) in [
        (
            "ACCURACY_LATENCY_MULTIPLIER",
            &mut config.analyzer.latency_multiplier,
        ),
        (
            "ACCURACY_MIN_LATENCY_INCREASE_MS",
            &mut config.analyzer.min_latency_increase_ms,
        ),
    ] {
        if let Ok(value) = std::env::var(name) {
            *field = value
                .parse()
                .map_err(|_| format!("{name}={value:?} is not a number"))?;
        }
    }
    config
        .analyzer
        .validate()
        .map_err(|error| error.to_string())?;
    Ok(config)
}

/// Runs every case, spread over the available cores; each case is seeded by its index.
fn run_all(plan: &[Option<&'static str>], seed: u64, config: &EngineConfig) -> Vec<CaseOutcome> {
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut slots: Vec<Option<CaseOutcome>> = (0..plan.len()).map(|_| None).collect();
    std::thread::scope(|scope| {
        let chunks: Vec<_> = slots
            .chunks_mut(plan.len().div_ceil(workers).max(1))
            .enumerate()
            .map(|(chunk, slots)| {
                let size = plan.len().div_ceil(workers).max(1);
                scope.spawn(move || {
                    for (offset, slot) in slots.iter_mut().enumerate() {
                        let index = chunk * size + offset;
                        let case_seed = seed ^ (index as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
                        *slot = Some(run_case(case_seed, plan[index], config));
                    }
                })
            })
            .collect();
        for handle in chunks {
            handle.join().expect("a case panicked");
        }
    });
    slots
        .into_iter()
        .map(|s| s.expect("every case ran"))
        .collect()
}

fn draw_fault(rng: &mut StdRng, topology: &Topology, kind: &str) -> Fault {
    let service = rng.random_range(1..topology.services.len());
    match kind {
        "latency" => Fault::Latency {
            service,
            extra_ms: rng.random_range(20f64.ln()..2_000f64.ln()).exp(),
        },
        "errors" => Fault::Errors {
            service,
            rate: rng.random_range(0.3..=1.0),
        },
        _ => {
            let longest_wait = topology
                .callers_of(service)
                .iter()
                .map(|&caller| topology.services[caller].client_timeout_ms)
                .fold(0.0, f64::max);
            Fault::Timeout {
                service,
                probability: rng.random_range(0.3..=1.0),
                hang_ms: longest_wait * rng.random_range(1.2..3.0),
            }
        }
    }
}

fn run_case(seed: u64, kind: Option<&'static str>, config: &EngineConfig) -> CaseOutcome {
    let started = Instant::now();
    let cpu_before = thread_cpu_time();
    let mut rng = StdRng::seed_from_u64(seed);
    let topology = Topology::random(&mut rng);
    let fault = kind.map(|kind| draw_fault(&mut rng, &topology, kind));

    let interval = (config.analyzer.analysis_interval_secs * SECOND as f64) as u64;
    let mut engine = Engine::new(config.clone()).expect("the configuration was validated");
    let collector = engine.collector();
    let mut requests = Requests::new(&topology);
    let mut pending: Vec<Span> = Vec::new();
    let fault_start = T0 + WARM_UP_SECS * SECOND;
    let end = fault_start + FAULT_SECS * SECOND;
    let mut next_arrival = T0;
    let mut now = T0;
    let mut worst_ratio: BTreeMap<String, f64> = BTreeMap::new();
    while now < end {
        now += STEP;
        if now == fault_start + STEP {
            requests.set_fault(fault);
        }
        while next_arrival < now {
            pending.extend(requests.request(&mut rng, next_arrival));
            let gap = -(1.0 - rng.random::<f64>()).ln() / RATE;
            next_arrival += (gap * SECOND as f64) as u64;
        }
        // A span is exported when it ends.
        let (done, waiting): (Vec<Span>, Vec<Span>) =
            pending.drain(..).partition(|s| s.end_unix_nanos() <= now);
        pending = waiting;
        if !done.is_empty() {
            let _ = collector.record_batch(done);
        }
        if (now - T0).is_multiple_of(interval) {
            let report = engine.run_cycle(now);
            if now > fault_start {
                for anomaly in report.anomalies {
                    let worst = worst_ratio
                        .entry(anomaly.endpoint.service.into())
                        .or_insert(0.0);
                    *worst = worst.max(anomaly.ratio);
                }
            }
        }
    }

    let incidents: Vec<&Incident> = engine.incidents().all();
    let (during, before): (Vec<&Incident>, Vec<&Incident>) = incidents
        .into_iter()
        .partition(|i| fault.is_some() && i.first_detected_unix_nanos > fault_start);
    CaseOutcome {
        fault: fault.map(|f| (f.kind_name(), topology.services[f.service()].name.clone())),
        detail: format!("{fault:?}"),
        ranked: rank_services(during),
        naive: {
            let mut naive: Vec<(String, f64)> = worst_ratio.into_iter().collect();
            naive.sort_by(|a, b| b.1.total_cmp(&a.1));
            naive.into_iter().map(|(service, _)| service).collect()
        },
        false_incidents: before
            .iter()
            .map(|i| {
                let evidence: Vec<String> = i
                    .anomalies
                    .iter()
                    .map(|a| {
                        format!(
                            "{} {}: {} (n={})",
                            a.endpoint,
                            a.kind.as_str(),
                            a.description,
                            a.sample_count
                        )
                    })
                    .collect();
                format!(
                    "{} at +{}s: {evidence:?}",
                    i.title,
                    (i.first_detected_unix_nanos - T0) / SECOND
                )
            })
            .collect(),
        elapsed: started.elapsed(),
        cpu: thread_cpu_time()
            .zip(cpu_before)
            .map(|(after, before)| after.saturating_sub(before)),
    }
}

/// CPU time (user and system) of the calling thread, from `/proc/thread-self/stat` in clock
/// ticks of 10 ms; `None` where that file does not exist.
fn thread_cpu_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_millis(ticks * 10))
}

/// Root-cause services, the incident that absorbed the most alerts first, then the runner-up
/// candidates of each incident in the same order; each service once.
fn rank_services(mut incidents: Vec<&Incident>) -> Vec<String> {
    incidents.sort_by(|a, b| {
        b.alert_count.cmp(&a.alert_count).then(
            a.first_detected_unix_nanos
                .cmp(&b.first_detected_unix_nanos),
        )
    });
    let mut ranked: Vec<String> = Vec::new();
    let roots = incidents.iter().map(|i| i.root_cause.service.clone());
    let runners_up = incidents
        .iter()
        .flat_map(|i| i.root_cause.candidates.iter().map(|c| c.service.clone()));
    for service in roots.chain(runners_up) {
        if !ranked.contains(&service) {
            ranked.push(service);
        }
    }
    ranked
}

fn print_report(outcomes: &[CaseOutcome], per_kind: usize, seed: u64, total: Duration) {
    #[derive(Default)]
    struct Row {
        cases: usize,
        detected: usize,
        top1: usize,
        top3: usize,
        naive_top1: usize,
    }
    let mut rows: BTreeMap<&str, Row> = BTreeMap::new();
    let (mut clean_cases, mut clean_false, mut before_fault_false) = (0, 0, 0);
    for outcome in outcomes {
        match &outcome.fault {
            Some((kind, service)) => {
                let row = rows.entry(kind).or_default();
                row.cases += 1;
                row.detected += usize::from(!outcome.ranked.is_empty());
                row.top1 += usize::from(outcome.ranked.first() == Some(service));
                row.top3 += usize::from(outcome.ranked.iter().take(3).any(|s| s == service));
                row.naive_top1 += usize::from(
                    !outcome.ranked.is_empty() && outcome.naive.first() == Some(service),
                );
                before_fault_false += outcome.false_incidents.len();
            }
            None => {
                clean_cases += 1;
                clean_false += outcome.false_incidents.len();
            }
        }
    }
    let (mean, p95) = mean_and_p95(outcomes.iter().map(|o| Some(o.elapsed)));
    let cpu = outcomes
        .iter()
        .all(|o| o.cpu.is_some())
        .then(|| mean_and_p95(outcomes.iter().map(|o| o.cpu)));

    println!(
        "Root-cause accuracy: {per_kind} fault cases per kind, {clean_cases} no-fault cases, seed {seed}\n"
    );
    println!(
        "| fault kind | cases | detected | top-1 (of detected) | top-3 (of detected) | top-1 (of all) | top-3 (of all) | naive top-1 (of detected) |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    let share = |n: usize, d: usize| if d == 0 { 0.0 } else { n as f64 / d as f64 };
    let print_row = |name: &str, row: &Row| {
        println!(
            "| {name} | {} | {} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} |",
            row.cases,
            row.detected,
            share(row.top1, row.detected),
            share(row.top3, row.detected),
            share(row.top1, row.cases),
            share(row.top3, row.cases),
            share(row.naive_top1, row.detected),
        );
    };
    let mut all = Row::default();
    for kind in KINDS {
        let row = rows.remove(kind).unwrap_or_default();
        print_row(kind, &row);
        all.cases += row.cases;
        all.detected += row.detected;
        all.top1 += row.top1;
        all.top3 += row.top3;
        all.naive_top1 += row.naive_top1;
    }
    print_row("**all**", &all);
    println!();
    println!(
        "| no-fault cases | false incidents | false incidents before the fault in fault cases |"
    );
    println!("|---:|---:|---:|");
    println!("| {clean_cases} | {clean_false} | {before_fault_false} |");
    println!();
    println!(
        "Time per case ({} s of virtual traffic at {RATE} requests/s through the engine): wall clock mean {mean:.0} ms, p95 {p95:.0} ms{}; {:.1} s in all on {} threads.",
        WARM_UP_SECS + FAULT_SECS,
        cpu.map_or(String::new(), |(mean, p95)| format!(
            "; CPU mean {mean:.0} ms, p95 {p95:.0} ms"
        )),
        total.as_secs_f64(),
        std::thread::available_parallelism().map_or(1, |n| n.get()),
    );
}

/// Mean and 95th percentile in milliseconds of the durations given.
fn mean_and_p95(durations: impl Iterator<Item = Option<Duration>>) -> (f64, f64) {
    let mut ms: Vec<f64> = durations.flatten().map(|d| d.as_secs_f64() * 1e3).collect();
    ms.sort_by(f64::total_cmp);
    let mean = ms.iter().sum::<f64>() / ms.len().max(1) as f64;
    (mean, ms.get(ms.len() * 95 / 100).copied().unwrap_or(0.0))
}
