//! Two versions of a service serving at once, compared on the same requests: a new version
//! that fails far more often than the old one is an error storm of its own, however small its
//! share of the traffic (a canary).

use foldhash::HashMap;

use aiops_analyzer::describe::format_percent;
use aiops_analyzer::{Anomaly, AnomalyKind, Severity};
use aiops_telemetry_core::{EndpointKey, TimeWindow};

use super::facts::{SERVICE_VERSION, SpanFacts};
use super::types::VersionShare;

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
/// an error storm on the endpoint where the newest version failed most, when it failed at
/// least `min_error_rate` of its requests and three times as often as the other versions.
pub(crate) fn compare(facts: &SpanFacts, rule: &Comparison) -> Vec<Anomaly> {
    // service -> version -> (requests, failures) and endpoint -> failures of each version.
    let mut shares: HashMap<String, HashMap<String, VersionShare>> = HashMap::default();
    let mut failing: HashMap<(String, String), HashMap<EndpointKey, u64>> = HashMap::default();
    facts.visit_recent(
        |_| true,
        rule.window,
        |endpoint, fact| {
            let Some(version) = fact.attribute(SERVICE_VERSION) else {
                return;
            };
            let share = shares
                .entry(endpoint.service.to_string())
                .or_default()
                .entry(version.to_owned())
                .or_default();
            share.requests += 1;
            share.bad += u64::from(fact.error);
            if fact.error {
                *failing
                    .entry((endpoint.service.to_string(), version.to_owned()))
                    .or_default()
                    .entry(endpoint.clone())
                    .or_default() += 1;
            }
        },
    );
    let mut found = Vec::new();
    for (service, versions) in shares {
        if versions.len() < 2 {
            continue;
        }
        let newest = facts
            .versions(&service)
            .into_iter()
            .rev()
            .find(|v| versions.contains_key(&v.version));
        let Some(newest) = newest else {
            continue;
        };
        let new = versions[&newest.version];
        let old = versions.iter().filter(|(v, _)| **v != newest.version).fold(
            VersionShare::default(),
            |sum, (_, s)| VersionShare {
                requests: sum.requests + s.requests,
                bad: sum.bad + s.bad,
            },
        );
        let clear = new.requests >= rule.min_requests
            && old.requests >= rule.min_requests
            && new.bad >= MIN_FAILURES
            && new.share() >= rule.min_error_rate
            && new.share() >= CONTRAST * old.share();
        if !clear {
            continue;
        }
        let Some(endpoint) = failing
            .get(&(service.clone(), newest.version.clone()))
            .and_then(|by_endpoint| {
                by_endpoint
                    .iter()
                    .max_by(|a, b| a.1.cmp(b.1).then_with(|| b.0.cmp(a.0)))
                    .map(|(e, _)| e.clone())
            })
        else {
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
