//! Two versions of a service serving at once, compared on the same requests: a new version
//! that fails far more often than the old one is an error storm of its own, however small its
//! share of the traffic (a canary).

use foldhash::HashMap;

use aiops_analyzer::describe::format_percent;
use aiops_analyzer::{Anomaly, AnomalyKind, Severity};
use aiops_telemetry_core::{EndpointKey, TimeWindow};

use super::facts::{SERVICE_VERSION, SpanFacts};
use super::types::VersionShare;

/// Requests of the new version on the endpoint needed, at least.
const MIN_NEW_REQUESTS: u64 = 5;
/// Failures of the new version needed, at least.
const MIN_FAILURES: u64 = 3;
/// How many times the old versions' error rate the new one's must be.
const CONTRAST: f64 = 3.0;

/// What the comparison needs to know.
pub(crate) struct Comparison {
    /// The requests compared: those that started in this window.
    pub window: TimeWindow,
    /// Requests of each version needed.
    pub min_requests: u64,
    /// Error rate of the new version needed, at least (the analyzer's error-rate threshold).
    pub min_error_rate: f64,
}

/// For every service whose newest version served requests in the window beside an older one:
/// an error storm on the endpoint where the newest version failed most among those where it
/// failed at least `min_error_rate` of its requests (at least five) and three times as often
/// as the other versions on the same endpoint (at least `min_requests` of theirs).
pub(crate) fn compare(facts: &SpanFacts, rule: &Comparison) -> Vec<Anomaly> {
    // service -> endpoint -> version -> requests and failures.
    type Endpoints = HashMap<EndpointKey, HashMap<String, VersionShare>>;
    let mut services: HashMap<String, Endpoints> = HashMap::default();
    // Most cycles find no service running two versions: then nothing is read.
    let several = facts.services_with_several_versions();
    if several.is_empty() {
        return Vec::new();
    }
    facts.visit_recent(
        |endpoint| several.iter().any(|service| *service == *endpoint.service),
        rule.window,
        |endpoint, fact| {
            let Some(version) = fact.attribute(SERVICE_VERSION) else {
                return;
            };
            let share = services
                .entry(endpoint.service.to_string())
                .or_default()
                .entry(endpoint.clone())
                .or_default()
                .entry(version.to_owned())
                .or_default();
            share.requests += 1;
            share.bad += u64::from(fact.error);
        },
    );
    let mut found = Vec::new();
    for (service, endpoints) in services {
        let Some(newest) = facts
            .versions(&service)
            .into_iter()
            .rev()
            .find(|v| endpoints.values().any(|by| by.contains_key(&v.version)))
        else {
            continue;
        };
        let mut worst: Option<(EndpointKey, VersionShare, VersionShare)> = None;
        for (endpoint, versions) in endpoints {
            let Some(&new) = versions.get(&newest.version) else {
                continue;
            };
            let old = versions.iter().filter(|(v, _)| **v != newest.version).fold(
                VersionShare::default(),
                |sum, (_, s)| VersionShare {
                    requests: sum.requests + s.requests,
                    bad: sum.bad + s.bad,
                },
            );
            let clear = new.requests >= MIN_NEW_REQUESTS
                && old.requests >= rule.min_requests
                && new.bad >= MIN_FAILURES
                && new.share() >= rule.min_error_rate
                && new.share() >= CONTRAST * old.share();
            if clear && worst.as_ref().is_none_or(|(_, w, _)| new.bad > w.bad) {
                worst = Some((endpoint, new, old));
            }
        }
        let Some((endpoint, new, old)) = worst else {
            continue;
        };
        let rate = new.share();
        found.push(Anomaly {
            kind: AnomalyKind::ErrorStorm,
            endpoint,
            observed: rate,
            baseline: old.share(),
            ratio: rate / old.share().max(0.01),
            sample_count: new.requests,
            window: rule.window,
            severity: if rate >= 0.5 {
                Severity::High
            } else {
                Severity::Medium
            },
            description: format!(
                "Error storm in version {}: {} errors (other versions: {})",
                newest.version,
                format_percent(rate),
                format_percent(old.share()),
            ),
        });
    }
    found.sort_by(|a, b| a.endpoint.cmp(&b.endpoint));
    found
}
