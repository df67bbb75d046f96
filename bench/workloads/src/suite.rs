//! The suite: which cases run (scenarios times seeds), running them on a few threads, and the
//! engine configuration they run with.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::case::{Case, Scenario};
use crate::engine::EngineConfig;
use crate::runner::{self, Outcome};
use crate::score::{self, CaseScore};

/// Seeds per scenario are `first + scenario index * SEEDS_PER_SCENARIO + case index`.
pub const SEEDS_PER_SCENARIO: u64 = 1_000;

/// Which seeds the cases are drawn from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Seeds {
    /// The tuning range, starting at 1: look at these while changing the engine.
    Tune,
    /// The report range, starting at 1,000,000, disjoint from the tuning range: measure on
    /// these, never tune on them.
    Report,
    /// Another range, starting at the given seed.
    From(u64),
}

impl Seeds {
    /// The first seed of the range.
    pub fn first(self) -> u64 {
        match self {
            Self::Tune => 1,
            Self::Report => 1_000_000,
            Self::From(first) => first,
        }
    }

    /// `tune`, `report` or a number.
    pub fn parse(text: &str) -> Result<Self, String> {
        match text {
            "tune" => Ok(Self::Tune),
            "report" => Ok(Self::Report),
            other => other
                .parse()
                .map(Self::From)
                .map_err(|_| format!("--seeds {other:?}: expected tune, report or a number")),
        }
    }
}

/// One case to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Planned {
    /// What kind of case.
    pub scenario: Scenario,
    /// Its seed.
    pub seed: u64,
}

/// `cases` cases of every scenario whose name contains `filter` (all when `None`).
pub fn plan(seeds: Seeds, cases: usize, filter: Option<&str>) -> Vec<Planned> {
    let cases = (cases as u64).min(SEEDS_PER_SCENARIO);
    Scenario::all()
        .into_iter()
        .enumerate()
        .filter(|(_, scenario)| filter.is_none_or(|f| scenario.name().contains(f)))
        .flat_map(|(index, scenario)| {
            (0..cases).map(move |case| Planned {
                scenario,
                seed: seeds.first() + index as u64 * SEEDS_PER_SCENARIO + case,
            })
        })
        .collect()
}

/// The case with seed `seed` of every scenario whose name contains `filter`: reruns a case
/// from a verbose listing.
pub fn plan_seed(seed: u64, filter: Option<&str>) -> Vec<Planned> {
    Scenario::all()
        .into_iter()
        .filter(|scenario| filter.is_none_or(|f| scenario.name().contains(f)))
        .map(|scenario| Planned { scenario, seed })
        .collect()
}

/// A case run and scored.
#[derive(Debug)]
pub struct Finished {
    /// The case.
    pub case: Case,
    /// What the engine did.
    pub outcome: Outcome,
    /// How it scored.
    pub score: CaseScore,
}

/// Draws, runs and scores every planned case on `threads` threads; results in plan order.
/// `progress` is called after each case with the number finished.
pub fn run_all(
    plan: &[Planned],
    config: &EngineConfig,
    threads: usize,
    progress: &(dyn Fn(usize) + Sync),
) -> Vec<Finished> {
    let next = AtomicUsize::new(0);
    let done = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<Finished>>> = Mutex::new((0..plan.len()).map(|_| None).collect());
    std::thread::scope(|scope| {
        for _ in 0..threads.max(1) {
            scope.spawn(|| {
                loop {
                    let index = next.fetch_add(1, Ordering::Relaxed);
                    let Some(planned) = plan.get(index) else {
                        break;
                    };
                    let case = Case::draw(planned.scenario, planned.seed);
                    let outcome = runner::run(&case, config);
                    let score = score::score(&case, &outcome);
                    results.lock().expect("no worker panicked")[index] = Some(Finished {
                        case,
                        outcome,
                        score,
                    });
                    progress(done.fetch_add(1, Ordering::Relaxed) + 1);
                }
            });
        }
    });
    results
        .into_inner()
        .expect("no worker panicked")
        .into_iter()
        .map(|r| r.expect("every case ran"))
        .collect()
}

/// The engine's default configuration, with the detection sensitivity overridden by
/// `WORKLOADS_LATENCY_MULTIPLIER` and `WORKLOADS_MIN_LATENCY_INCREASE_MS` when set.
pub fn engine_config() -> Result<EngineConfig, String> {
    let mut config = EngineConfig::default();
    for (name, field) in [
        (
            "WORKLOADS_LATENCY_MULTIPLIER",
            &mut config.analyzer.latency_multiplier,
        ),
        (
            "WORKLOADS_MIN_LATENCY_INCREASE_MS",
            &mut config.analyzer.min_latency_increase_ms,
        ),
    ] {
        if let Ok(value) = std::env::var(name) {
            *field = value
                .parse()
                .map_err(|_| format!("{name}={value:?} is not a number"))?;
        }
    }
    config.validate().map_err(|error| error.to_string())?;
    Ok(config)
}
