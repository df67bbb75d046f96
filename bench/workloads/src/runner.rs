//! Runs one case through the engine on a virtual clock, driven as the server drives it.
//!
//! Requests start at their Poisson arrival times; their spans go to their services' SDKs and
//! reach the engine's collector when their batch arrives, in arrival order. Every virtual
//! second the runner asks [`Engine::has_news`] and runs a cycle when it says so (early
//! detection, which restarts the interval, as the server's probe does); otherwise a cycle
//! runs every analysis interval.

use std::time::{Duration, Instant};

use rand::SeedableRng;
use rand::rngs::StdRng;

use crate::case::{Case, T0};
use crate::engine::{Engine, EngineConfig, Incident, IncidentChange};
use crate::export::Exporter;
use crate::fault::{Conditions, new_version};
use crate::logs::LogWriter;
use crate::sample::mix;
use crate::trace;
use crate::traffic::{self, Traffic};
use aiops_telemetry_core::SpanText;

const SECOND: u64 = 1_000_000_000;
/// Resolution of the virtual clock: requests and batch arrivals are handled this often.
const STEP: u64 = SECOND / 10;

/// An incident as the engine reported it.
#[derive(Clone, Debug, PartialEq)]
pub struct NamedIncident {
    /// Its id.
    pub id: String,
    /// When it was opened, Unix nanoseconds.
    pub opened_ns: u64,
    /// The root cause's service (or dependency node).
    pub service: String,
    /// The root cause's endpoint.
    pub endpoint: String,
    /// The root cause's anomaly kind.
    pub kind: String,
    /// The root cause's description.
    pub description: String,
    /// The root cause's confidence.
    pub confidence: f64,
    /// Ranked candidates: service, endpoint, score.
    pub candidates: Vec<(String, String, f64)>,
    /// Alerts the incident absorbed.
    pub alert_count: u64,
    /// Its title.
    pub title: String,
    /// The incident it was folded into, if a revised root cause showed both were one problem.
    pub merged_into: Option<String>,
    /// The deployment blamed as its root cause: `service version`.
    pub deployment: Option<String>,
}

impl NamedIncident {
    fn of(incident: &Incident, opened_ns: u64) -> Self {
        let root = &incident.root_cause;
        Self {
            id: incident.id.clone(),
            opened_ns,
            service: root.service.clone(),
            endpoint: root.endpoint.clone(),
            kind: root.kind.as_str().to_owned(),
            description: root.description.clone(),
            confidence: root.confidence,
            candidates: root
                .candidates
                .iter()
                .map(|c| (c.service.clone(), c.endpoint.clone(), c.score))
                .collect(),
            alert_count: incident.alert_count,
            title: incident.title.clone(),
            merged_into: incident.merged_into.clone(),
            deployment: deployment_of(incident),
        }
    }
}

/// `service version` of the deployment `incident` blames, if any.
fn deployment_of(incident: &Incident) -> Option<String> {
    incident
        .evidence
        .deployment
        .as_ref()
        .map(|d| format!("{} {}", d.service, d.version))
}

/// An incident's root cause as of a cycle that opened or updated it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sighting {
    /// The cycle's time, Unix nanoseconds.
    pub at_ns: u64,
    /// The incident.
    pub id: String,
    /// Its root cause's service then.
    pub service: String,
    /// Its root cause's endpoint then.
    pub endpoint: String,
    /// The deployment it blamed then: `service version`.
    pub deployment: Option<String>,
}

/// What one case did to the engine and what the engine said.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// Every incident opened, in opening order, as it stood at the end of the case.
    pub incidents: Vec<NamedIncident>,
    /// Root causes as they were reported cycle by cycle.
    pub sightings: Vec<Sighting>,
    /// Requests made.
    pub requests: u64,
    /// Spans delivered to the collector.
    pub spans: u64,
    /// Log records delivered to the log collector.
    pub logs: u64,
    /// Cycles run, and how many of them early.
    pub cycles: (u64, u64),
    /// Wall-clock time the case took.
    pub elapsed: Duration,
}

/// Runs `case` through a new engine configured with `config`.
pub fn run(case: &Case, config: &EngineConfig) -> Outcome {
    let started = Instant::now();
    let mut rng = StdRng::seed_from_u64(mix(case.seed ^ 0x5EED_F00D_CAFE_0001));
    let topology = &case.topology;
    let mut engine = Engine::new(config.clone()).expect("the configuration was validated");
    let collector = engine.collector();
    let mut exporter = Exporter::new(&mut rng, topology.services.len());
    let mut traffic = Traffic::new(&mut rng, case.base_rate, case.load, T0);
    let interval = ((config.analyzer.analysis_interval_secs * 1e9) as u64).max(SECOND);
    let mut next_cycle = T0 + interval;
    let mut outcome = Outcome {
        incidents: Vec::new(),
        sightings: Vec::new(),
        requests: 0,
        spans: 0,
        logs: 0,
        cycles: (0, 0),
        elapsed: Duration::ZERO,
    };
    let logs_in = engine.log_collector();
    // Logs draw from their own generator, so that the traces are those of a run without them.
    let mut log_rng = StdRng::seed_from_u64(mix(case.seed ^ 0x0010_C50F_5E7F_0002));
    let mut writer = LogWriter::default();
    let new_versions: Vec<SpanText> = (0..topology.services.len())
        .map(|s| new_version(s).into())
        .collect();
    let mut now = T0;
    while now < case.end_ns {
        now += STEP;
        while traffic.peek() < now {
            let start = traffic.advance(&mut rng);
            let effects = case.effects_at(start);
            let entry = traffic::entry(&mut rng, topology);
            let load = traffic.load_factor(start);
            let conditions = Conditions(&effects);
            for mut emitted in trace::request(&mut rng, topology, conditions, load, entry, start) {
                let service = emitted.service;
                if conditions.deployed(emitted.span.trace_id, service, start) {
                    let attributes = emitted.span.attributes.to_mut();
                    attributes.retain(|(key, _)| key != "service.version");
                    attributes.push((
                        SpanText::from_static("service.version"),
                        new_versions[service].clone(),
                    ));
                }
                let arrival = exporter.arrival_ns(service, emitted.span.end_unix_nanos());
                writer.about(&mut log_rng, &emitted, &effects, arrival);
                exporter.submit(service, emitted.span);
            }
            outcome.requests += 1;
        }
        for batch in exporter.arrived(now) {
            outcome.spans += batch.len() as u64;
            let _ = collector.record_batch(batch);
        }
        let logs = writer.arrived(now);
        if !logs.is_empty() {
            outcome.logs += logs.len() as u64;
            let _ = logs_in.record_logs(logs);
        }
        if !(now - T0).is_multiple_of(SECOND) {
            continue;
        }
        writer.noise(&mut log_rng, topology, &case.effects_at(now), now);
        let due = now >= next_cycle;
        if due || engine.has_news(now) {
            outcome.cycles.0 += 1;
            outcome.cycles.1 += u64::from(!due);
            next_cycle = now + interval;
            let report = engine.run_cycle(now);
            for change in &report.changes {
                let (id, opened) = match change {
                    IncidentChange::Opened { id } => (id, true),
                    IncidentChange::Updated { id } | IncidentChange::Reopened { id } => (id, false),
                    IncidentChange::Resolved { .. } => continue,
                };
                let Some(incident) = engine.incidents().get(id) else {
                    continue;
                };
                if opened {
                    outcome.incidents.push(NamedIncident::of(incident, now));
                }
                outcome.sightings.push(Sighting {
                    at_ns: now,
                    id: id.clone(),
                    service: incident.root_cause.service.clone(),
                    endpoint: incident.root_cause.endpoint.clone(),
                    deployment: deployment_of(incident),
                });
            }
        }
    }
    for named in &mut outcome.incidents {
        if let Some(incident) = engine.incidents().get(&named.id) {
            *named = NamedIncident::of(incident, named.opened_ns);
        }
    }
    outcome.elapsed = started.elapsed();
    outcome
}
