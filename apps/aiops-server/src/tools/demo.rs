//! `aiops demo`: the quick-reference scenarios run against a live server, with a report of
//! what the engine found.
//!
//! The demo talks to the server only over its public HTTP API, exactly as a user with curl
//! would: it warms the shop up until every endpoint has a baseline, then for each scenario
//! injects a fault through `/simulate/*`, sends shop traffic, lets the engine analyse it
//! (`POST /aiops/analyze` in quick mode, the background cycle otherwise), checks the incident
//! found against the expected root cause, and cleans up (clears the fault and resolves the
//! incident, whose resolution watermark keeps old evidence out of the next scenario).
//!
//! Without `--url` it starts its own server in-process on a free local port, with a temporary
//! database and a short analysis window and interval, and stops it at the end.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};
use clap::Args;
use reqwest::{Method, Url};

mod client;
mod findings;
mod local;

use client::{Api, send};
use findings::{
    Check, Expectation, active_ids, baselines, describe_analysis, endpoint_summary, verdict_word,
};

/// Options of `aiops demo`.
#[derive(Clone, Debug, Default, Args)]
pub struct DemoArgs {
    /// Base URL of a running aiops server, e.g. http://127.0.0.1:5000. Without it the demo
    /// starts its own server on a free local port with a temporary database.
    #[arg(long, value_name = "URL")]
    pub url: Option<Url>,

    /// Trigger analysis with POST /aiops/analyze right after each scenario's traffic instead
    /// of pacing traffic and waiting for the background analysis (a few seconds in all,
    /// instead of about a minute).
    #[arg(long)]
    pub quick: bool,

    /// Bearer token for a server started with --api-token.
    #[arg(
        long,
        env = "AIOPS_API_TOKEN",
        value_name = "TOKEN",
        hide_env_values = true
    )]
    pub token: Option<String>,
}

/// Runs the three scenarios and prints a report; `Ok(true)` when every scenario passed.
///
/// Errors are reserved for a server that cannot be started or reached; a scenario that goes
/// wrong (a rejected injection, a missing or wrong incident) is a FAIL in the report.
pub async fn run(args: DemoArgs) -> Result<bool> {
    let started = Instant::now();
    let (base, local) = match args.url.clone() {
        Some(url) => (url, None),
        None => {
            let server = local::LocalServer::start().await?;
            (server.url()?, Some(server))
        }
    };
    let api = Api::new(base, args.token.clone())?;
    let mode = Mode::from_quick(args.quick);

    println!(
        "aiops demo: three failure scenarios against {} ({}, {})",
        api.base.as_str().trim_end_matches('/'),
        if local.is_some() {
            "started in-process with a temporary database"
        } else {
            "running server"
        },
        mode.describe(),
    );
    api.get("/aiops/metrics").await.with_context(|| {
        format!(
            "cannot reach the aiops server at {}; start it with `aiops`, or run `aiops demo` \
             without --url",
            api.base.as_str().trim_end_matches('/')
        )
    })?;

    let outcomes = match run_all(&api, mode).await {
        Ok(outcomes) => outcomes,
        Err(error) => {
            // Best effort: leave no fault behind in a server the demo did not start.
            let _ = api.post("/simulate/clear", &[]).await;
            return Err(error);
        }
    };

    let passed = outcomes.iter().filter(|(_, passed)| *passed).count();
    println!();
    println!(
        "Summary: {passed} of {} scenarios passed in {:.1} s",
        outcomes.len(),
        started.elapsed().as_secs_f64()
    );
    for (title, ok) in &outcomes {
        println!("  {}  {title}", verdict_word(*ok));
    }
    println!();
    let console = api.base.as_str();
    if local.is_some() {
        println!(
            "Web console: {console} (this in-process server stops now; start `aiops` and run \
             `aiops demo --url http://127.0.0.1:5000` to keep the incidents above on screen)"
        );
    } else {
        println!("Web console: {console} (incidents, the service map, traces)");
    }
    if let Some(server) = local {
        server.stop().await;
    }
    Ok(passed == outcomes.len())
}

/// Starts from a clean server, warms it up and runs every scenario: (title, passed).
async fn run_all(api: &Api, mode: Mode) -> Result<Vec<(&'static str, bool)>> {
    let reset = reset(api).await?;
    if !reset.is_empty() {
        println!("Reset:   {}", reset.join("; "));
        tokio::time::sleep(BUCKET_SETTLE).await;
    }
    warm_up(api, mode).await?;
    let mut outcomes = Vec::with_capacity(SCENARIOS.len());
    for (index, scenario) in SCENARIOS.iter().enumerate() {
        println!();
        println!(
            "== Scenario {}/{}: {}",
            index + 1,
            SCENARIOS.len(),
            scenario.title
        );
        let passed = run_scenario(api, scenario, mode).await?;
        outcomes.push((scenario.title, passed));
    }
    Ok(outcomes)
}

/// How the demo lets the engine see each scenario.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// Traffic in a burst, then `POST /aiops/analyze`.
    Quick,
    /// Traffic paced like users, then wait for the background analysis.
    Paced,
}

impl Mode {
    fn from_quick(quick: bool) -> Self {
        if quick { Mode::Quick } else { Mode::Paced }
    }

    fn describe(self) -> &'static str {
        match self {
            Mode::Quick => "quick mode: analysis triggered with POST /aiops/analyze",
            Mode::Paced => "paced traffic, waiting for the background analysis",
        }
    }

    /// Gap between request starts.
    fn pace(self, paced: Duration) -> Duration {
        match self {
            Mode::Quick => Duration::from_millis(10),
            Mode::Paced => paced,
        }
    }
}

/// One fault, the traffic that exposes it, and the incident the engine should report.
#[derive(Debug)]
struct Scenario {
    title: &'static str,
    /// The `/simulate/*` route and its query parameters.
    inject: (&'static str, [(&'static str, &'static str); 2]),
    /// Why the injection differs from the quick reference, if it does.
    note: Option<&'static str>,
    traffic: (Method, &'static str),
    requests: usize,
    /// Gap between request starts in paced mode.
    pace: Duration,
    expected: Expectation,
}

static SCENARIOS: [Scenario; 3] = [
    Scenario {
        title: "latency spike in /payment",
        inject: (
            "/simulate/delay",
            [("endpoint", "/payment"), ("duration", "1000")],
        ),
        note: Some(
            "the quick reference injects 3000 ms; 1000 ms keeps the demo fast and stays \
             inside /checkout's 2 s dependency timeout",
        ),
        traffic: (Method::POST, "/checkout"),
        requests: 20,
        pace: Duration::from_millis(500),
        expected: Expectation {
            root_cause: "/payment",
            checkout_affected: true,
        },
    },
    Scenario {
        title: "error storm in /inventory",
        inject: (
            "/simulate/error",
            [("endpoint", "/inventory"), ("rate", "0.8")],
        ),
        note: None,
        traffic: (Method::GET, "/inventory"),
        requests: 40,
        pace: Duration::from_millis(250),
        expected: Expectation {
            root_cause: "/inventory",
            checkout_affected: false,
        },
    },
    Scenario {
        title: "cascading failure: /payment errors seen through /checkout",
        inject: (
            "/simulate/error",
            [("endpoint", "/payment"), ("rate", "1.0")],
        ),
        note: None,
        traffic: (Method::POST, "/checkout"),
        requests: 20,
        pace: Duration::from_millis(500),
        expected: Expectation {
            root_cause: "/payment",
            checkout_affected: true,
        },
    },
];

/// The shop's endpoints, all of which get warm-up traffic.
static SHOP: [(Method, &str); 4] = [
    (Method::GET, "/health"),
    (Method::GET, "/inventory"),
    (Method::POST, "/payment"),
    (Method::POST, "/checkout"),
];

/// Endpoints whose baselines the scenarios rely on.
const BASELINED: [&str; 3] = ["/checkout", "/inventory", "/payment"];

/// Warm-up rounds per attempt: more than the default `min_samples_for_baseline` (10).
const WARM_UP_ROUNDS: usize = 12;

/// A little more than the engine's live time buckets (one second by default). The engine
/// learns only from closed buckets, and a resolution watermark also excludes the rest of the
/// bucket it falls in; pausing this long keeps a quick demo's traffic on the right side of both.
const BUCKET_SETTLE: Duration = Duration::from_millis(1100);

/// How long paced mode waits for the background analysis before giving up.
const PACED_DEADLINE: Duration = Duration::from_secs(60);

/// Sends healthy traffic until the scenario endpoints have baselines.
async fn warm_up(api: &Api, mode: Mode) -> Result<()> {
    let requests: Vec<(Method, &str)> = (0..WARM_UP_ROUNDS)
        .flat_map(|_| SHOP.iter().cloned())
        .collect();
    println!();
    println!(
        "Warm-up: {WARM_UP_ROUNDS} rounds of GET /health, GET /inventory, POST /payment, \
         POST /checkout, until baselines are learned"
    );
    let deadline = Instant::now() + PACED_DEADLINE;
    for attempt in 1..=5 {
        let traffic = send(api, &requests, mode.pace(Duration::from_millis(100))).await;
        println!("  traffic:   {}", traffic.describe());
        let baselines = match mode {
            Mode::Quick => {
                tokio::time::sleep(BUCKET_SETTLE).await;
                api.post("/aiops/analyze", &[]).await?;
                baselines(&api.get("/aiops/metrics").await?, &BASELINED)
            }
            Mode::Paced => loop {
                let baselines = baselines(&api.get("/aiops/metrics").await?, &BASELINED);
                if baselines.len() == BASELINED.len() || Instant::now() >= deadline {
                    break baselines;
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            },
        };
        if baselines.len() == BASELINED.len() {
            let list: Vec<String> = baselines
                .iter()
                .map(|(endpoint, ms)| format!("{endpoint} {ms:.0} ms"))
                .collect();
            println!("  baselines: {}", list.join(", "));
            return Ok(());
        }
        if attempt == 5 || Instant::now() >= deadline {
            break;
        }
    }
    println!("  baselines: not all learned yet; the scenarios may not be detected");
    Ok(())
}

/// Injects, sends traffic, checks the incident, cleans up; true when the scenario passed.
async fn run_scenario(api: &Api, scenario: &Scenario, mode: Mode) -> Result<bool> {
    let (route, params) = scenario.inject;
    let query: Vec<String> = params.iter().map(|(k, v)| format!("{k}={v}")).collect();
    println!("  injected:    POST {route}?{}", query.join("&"));
    if let Some(note) = scenario.note {
        println!("               ({note})");
    }
    let reply = api.post(route, &params).await?;
    if !reply.ok() {
        println!(
            "  result:      FAIL: the server rejected the injection: {}",
            reply.error()
        );
        return Ok(false);
    }

    let (method, path) = &scenario.traffic;
    let requests = vec![(method.clone(), *path); scenario.requests];
    let traffic = send(api, &requests, mode.pace(scenario.pace)).await;
    println!(
        "  traffic:     {} x {method} {path}: {}",
        scenario.requests,
        traffic.describe()
    );

    let (check, analysis) = observe(api, scenario, mode).await?;
    println!("  analysis:    {analysis}");
    check.print(&scenario.expected, api.base.as_str());
    if !check.passed() {
        let metrics = api.get("/aiops/metrics").await?;
        let mut endpoints = vec![scenario.expected.root_cause];
        if scenario.expected.checkout_affected {
            endpoints.push("/checkout");
        }
        for endpoint in endpoints {
            if let Some(summary) = endpoint_summary(&metrics, endpoint) {
                println!("  metrics:     {summary}");
            }
        }
    }

    let cleared = api.post("/simulate/clear", &[]).await?;
    let mut cleanup = vec![if cleared.ok() {
        "POST /simulate/clear".to_owned()
    } else {
        format!("POST /simulate/clear failed: {}", cleared.error())
    }];
    cleanup.extend(resolve_active(api).await?);
    println!("  cleanup:     {}", cleanup.join("; "));
    tokio::time::sleep(BUCKET_SETTLE).await;
    Ok(check.passed())
}

/// Removes faults and resolves incidents left over from before the demo; says what it did.
async fn reset(api: &Api) -> Result<Vec<String>> {
    let cleared = api.post("/simulate/clear", &[]).await?;
    if matches!(cleared.status, 401 | 403) {
        return Err(anyhow!(
            "the server at {} refused POST /simulate/clear ({}); pass its API token with \
             --token (or AIOPS_API_TOKEN)",
            api.base.as_str().trim_end_matches('/'),
            cleared.error()
        ));
    }
    let mut done = Vec::new();
    if !cleared.ok() {
        done.push(format!("POST /simulate/clear failed: {}", cleared.error()));
    }
    done.extend(resolve_active(api).await?);
    Ok(done)
}

/// Resolves every active incident, so that its resolution watermark keeps its evidence out
/// of what comes next; one line per incident.
async fn resolve_active(api: &Api) -> Result<Vec<String>> {
    let mut done = Vec::new();
    for id in active_ids(&api.get("/aiops/incidents").await?) {
        let reply = api
            .post(&format!("/aiops/incidents/{id}/resolve"), &[])
            .await?;
        done.push(if reply.ok() {
            format!("resolved {id}")
        } else {
            format!("resolving {id} failed: {}", reply.error())
        });
    }
    Ok(done)
}

/// Lets the engine analyse the scenario's traffic and checks the active incidents, returning
/// the check and how the analysis was obtained.
async fn observe(api: &Api, scenario: &Scenario, mode: Mode) -> Result<(Check, String)> {
    let started = Instant::now();
    match mode {
        Mode::Quick => {
            // A span is recorded as its response completes, so the very last requests may
            // land a moment after the client saw them; a second run picks them up.
            let mut runs = Vec::new();
            loop {
                let reply = api.post("/aiops/analyze", &[]).await?;
                runs.push(describe_analysis(&reply));
                let check = Check::new(&api.get("/aiops/incidents").await?, &scenario.expected);
                if check.passed() || runs.len() == 3 {
                    let runs = runs.join(", then ");
                    return Ok((check, format!("POST /aiops/analyze: {runs}")));
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
        Mode::Paced => {
            // An incident that showed up but never met the expectation tells more than an
            // empty list after it resolved itself.
            let mut last_seen: Option<(Check, Duration)> = None;
            loop {
                let check = Check::new(&api.get("/aiops/incidents").await?, &scenario.expected);
                let waited = started.elapsed();
                if check.passed() {
                    let how = if waited < Duration::from_secs(1) {
                        "background analysis; the incident was open when the traffic ended"
                            .to_owned()
                    } else {
                        format!(
                            "background analysis; incident found {:.0} s after the traffic",
                            waited.as_secs_f64()
                        )
                    };
                    return Ok((check, how));
                }
                if check.found_any() {
                    last_seen = Some((check.clone(), waited));
                }
                if waited >= PACED_DEADLINE {
                    let limit = PACED_DEADLINE.as_secs();
                    return Ok(match last_seen {
                        Some((seen, at)) => {
                            let how = format!(
                                "background analysis; no matching incident within {limit} s \
                                 (the one below was active {:.0} s after the traffic)",
                                at.as_secs_f64()
                            );
                            (seen, how)
                        }
                        None => (
                            check,
                            format!("background analysis; no incident within {limit} s"),
                        ),
                    });
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}
