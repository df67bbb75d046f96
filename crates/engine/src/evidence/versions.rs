//! Two versions of a service serving at once, compared on the same requests: a new version
//! that fails far more often than the old one is an error storm of its own, and one whose
//! typical request is slower than nearly every request of the old one a latency spike of its
//! own, however small its share of the traffic (a canary).

use std::collections::BTreeMap;

use foldhash::HashMap;

use aiops_analyzer::describe::{format_ms, format_percent};
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
/// Requests of each side needed to compare latencies, at least: with 20, half the new
/// version's requests beyond the old versions' 95th percentile happens by chance about once
/// in fifty million comparisons.
const MIN_LATENCY_REQUESTS: usize = 20;
/// How many times the old versions' median the new version's must be.
const LATENCY_CONTRAST: f64 = 2.0;

/// What the comparison needs to know.
pub(crate) struct Comparison {
    /// The requests compared: those that started in this window.
    pub window: TimeWindow,
    /// Requests of each version needed.
    pub min_requests: u64,
    /// Error rate of the new version needed, at least (the analyzer's error-rate threshold).
    pub min_error_rate: f64,
    /// How much slower the new version's median must be, at least, in milliseconds (the
    /// analyzer's least latency increase).
    pub min_increase_ms: f64,
}

/// One version's requests on one endpoint.
#[derive(Default)]
struct Served {
    share: VersionShare,
    durations_ms: Vec<f64>,
}

/// The median and 95th percentile of `durations` (sorted in place), in milliseconds.
fn quantiles(durations: &mut [f64]) -> (f64, f64) {
    durations.sort_by(f64::total_cmp);
    let at = |q: f64| {
        let index = ((durations.len() - 1) as f64 * q).round() as usize;
        durations[index]
    };
    (at(0.5), at(0.95))
}

/// For every service whose newest version served requests in the window beside an older one,
/// on the same endpoints:
///
/// - an error storm on the endpoint where the newest version failed most among those where it
///   failed at least `min_error_rate` of its requests (at least five) and three times as often
///   as the other versions (at least `min_requests` of theirs);
/// - a latency spike on the endpoint where the newest version is slowest against the others
///   among those where its median request took longer than the others' 95th percentile, twice
///   their median and `min_increase_ms` more (at least 20 requests of each).
pub(crate) fn compare(facts: &SpanFacts, rule: &Comparison) -> Vec<Anomaly> {
    // service -> endpoint -> version -> requests, failures and durations. The endpoints in
    // order, so that of two where the new version failed alike the same one is named every
    // time.
    type Endpoints = BTreeMap<EndpointKey, HashMap<String, Served>>;
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
            let served = services
                .entry(endpoint.service.to_string())
                .or_default()
                .entry(endpoint.clone())
                .or_default()
                .entry(version.to_owned())
                .or_default();
            served.share.requests += 1;
            served.share.bad += u64::from(fact.error);
            served.durations_ms.push(fact.duration_nanos as f64 / 1e6);
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
        let mut slowest: Option<(EndpointKey, Latencies)> = None;
        for (endpoint, mut versions) in endpoints {
            let Some(mut new) = versions.remove(&newest.version) else {
                continue;
            };
            let old = versions
                .values()
                .fold(VersionShare::default(), |sum, s| VersionShare {
                    requests: sum.requests + s.share.requests,
                    bad: sum.bad + s.share.bad,
                });
            let clear = new.share.requests >= MIN_NEW_REQUESTS
                && old.requests >= rule.min_requests
                && new.share.bad >= MIN_FAILURES
                && new.share.share() >= rule.min_error_rate
                && new.share.share() >= CONTRAST * old.share();
            if clear && worst.as_ref().is_none_or(|(_, w, _)| new.share.bad > w.bad) {
                worst = Some((endpoint.clone(), new.share, old));
            }
            let mut old_ms: Vec<f64> = versions
                .into_values()
                .flat_map(|served| served.durations_ms)
                .collect();
            if let Some(latencies) = slower(&mut new.durations_ms, &mut old_ms, rule)
                && slowest
                    .as_ref()
                    .is_none_or(|(_, s)| latencies.ratio() > s.ratio())
            {
                slowest = Some((endpoint, latencies));
            }
        }
        if let Some((endpoint, new, old)) = worst {
            found.push(error_storm(
                &newest.version,
                endpoint,
                new,
                old,
                rule.window,
            ));
        }
        if let Some((endpoint, latencies)) = slowest {
            found.push(latency_spike(
                &newest.version,
                endpoint,
                latencies,
                rule.window,
            ));
        }
    }
    found.sort_by(|a, b| a.endpoint.cmp(&b.endpoint).then(a.kind.cmp(&b.kind)));
    found
}

/// The new and old versions' latencies on one endpoint, in milliseconds.
struct Latencies {
    new_p50: f64,
    new_p95: f64,
    old_p50: f64,
    old_p95: f64,
    requests: u64,
}

impl Latencies {
    fn ratio(&self) -> f64 {
        self.new_p50 / self.old_p50.max(0.001)
    }
}

/// The latencies of `new` and `old` when the new version is clearly slower: its median past
/// the old versions' 95th percentile, twice their median and `min_increase_ms` more.
fn slower(new: &mut [f64], old: &mut [f64], rule: &Comparison) -> Option<Latencies> {
    if new.len() < MIN_LATENCY_REQUESTS || old.len() < MIN_LATENCY_REQUESTS {
        return None;
    }
    let (new_p50, new_p95) = quantiles(new);
    let (old_p50, old_p95) = quantiles(old);
    let clear = new_p50 > old_p95
        && new_p50 >= LATENCY_CONTRAST * old_p50
        && new_p50 - old_p50 >= rule.min_increase_ms;
    clear.then_some(Latencies {
        new_p50,
        new_p95,
        old_p50,
        old_p95,
        requests: new.len() as u64,
    })
}

fn error_storm(
    version: &str,
    endpoint: EndpointKey,
    new: VersionShare,
    old: VersionShare,
    window: TimeWindow,
) -> Anomaly {
    let rate = new.share();
    Anomaly {
        kind: AnomalyKind::ErrorStorm,
        endpoint,
        observed: rate,
        baseline: old.share(),
        ratio: rate / old.share().max(0.01),
        sample_count: new.requests,
        window,
        severity: if rate >= 0.5 {
            Severity::High
        } else {
            Severity::Medium
        },
        description: format!(
            "Error storm in version {version}: {} errors (other versions: {})",
            format_percent(rate),
            format_percent(old.share()),
        ),
    }
}

fn latency_spike(
    version: &str,
    endpoint: EndpointKey,
    latencies: Latencies,
    window: TimeWindow,
) -> Anomaly {
    let ratio = latencies.ratio();
    Anomaly {
        kind: AnomalyKind::LatencySpike,
        endpoint,
        observed: latencies.new_p50,
        baseline: latencies.old_p50,
        ratio,
        sample_count: latencies.requests,
        window,
        severity: if ratio >= 5.0 {
            Severity::High
        } else {
            Severity::Medium
        },
        description: format!(
            "Latency spike in version {version}: median {}, p95 {} (other versions: median {}, p95 {})",
            format_ms(latencies.new_p50),
            format_ms(latencies.new_p95),
            format_ms(latencies.old_p50),
            format_ms(latencies.old_p95),
        ),
    }
}

#[cfg(test)]
mod tests {
    use aiops_telemetry_core::{Collector, Span, SpanId, TraceId};

    use super::*;

    const MS: u64 = 1_000_000;
    const SEC: u64 = 1_000_000_000;

    fn rule() -> Comparison {
        Comparison {
            window: TimeWindow::new(0, 120 * SEC),
            min_requests: 10,
            min_error_rate: 0.05,
            min_increase_ms: 20.0,
        }
    }

    /// 300 requests of pricing over 60 s; `version_of(i)` and `ms_of(i)` shape request `i`.
    fn facts(version_of: impl Fn(u64) -> &'static str, ms_of: impl Fn(u64) -> u64) -> SpanFacts {
        let facts = SpanFacts::new(512, 100);
        let spans: Vec<Span> = (0..300)
            .map(|i| {
                Span::new(TraceId::random(), SpanId::random(), "pricing", "GET /price")
                    .with_timing(i * 200 * MS, ms_of(i) * MS)
                    .with_attribute("service.version", version_of(i))
            })
            .collect();
        let _ = facts.record_borrowed(&spans);
        facts
    }

    /// A healthy spread of durations: 20 to 59 ms, in a pattern that is not the version's.
    fn usual(i: u64) -> u64 {
        20 + (i * 37) % 40
    }

    fn canary(i: u64) -> &'static str {
        if i >= 100 && i.is_multiple_of(5) {
            "2.0.0"
        } else {
            "1.0.0"
        }
    }

    #[test]
    fn a_slow_canary_is_a_latency_spike_of_its_endpoint() {
        let facts = facts(canary, |i| {
            if canary(i) == "2.0.0" {
                200 + i % 30
            } else {
                usual(i)
            }
        });
        let found = compare(&facts, &rule());
        assert_eq!(found.len(), 1, "{found:#?}");
        let spike = &found[0];
        assert_eq!(spike.kind, AnomalyKind::LatencySpike);
        assert_eq!(spike.endpoint.service, "pricing");
        assert!(spike.observed > 200.0 && spike.baseline < 60.0, "{spike:?}");
        assert!(
            spike
                .description
                .starts_with("Latency spike in version 2.0.0: median "),
            "{}",
            spike.description
        );
        assert!(spike.description.contains("(other versions: median "));
    }

    #[test]
    fn a_canary_as_fast_as_the_old_version_is_nothing() {
        let facts = facts(canary, usual);
        assert!(compare(&facts, &rule()).is_empty());
    }

    #[test]
    fn a_canary_slower_only_in_its_tail_is_nothing() {
        // One request in ten of the new version is slow: its median is the old one's.
        let facts = facts(canary, |i| {
            if canary(i) == "2.0.0" && i.is_multiple_of(50) {
                400
            } else {
                usual(i)
            }
        });
        assert!(compare(&facts, &rule()).is_empty());
    }

    #[test]
    fn of_endpoints_where_a_canary_failed_alike_the_same_one_is_named_every_time() {
        // Eight operations of pricing; the canary fails every request on each of them.
        let facts = SpanFacts::new(4096, 100);
        let spans: Vec<Span> = (0..800)
            .map(|i| {
                let new = i >= 400 && i % 5 == 0;
                let operation = format!("GET /op{}", i % 8);
                let span = Span::new(TraceId::random(), SpanId::random(), "pricing", operation)
                    .with_timing(i * 100 * MS, 20 * MS)
                    .with_attribute("service.version", if new { "2.0.0" } else { "1.0.0" });
                if new {
                    span.with_http_status(500)
                } else {
                    span
                }
            })
            .collect();
        let _ = facts.record_borrowed(&spans);
        for _ in 0..5 {
            let found = compare(&facts, &rule());
            assert_eq!(found.len(), 1, "{found:#?}");
            assert_eq!(found[0].endpoint, EndpointKey::new("pricing", "GET /op0"));
        }
    }

    #[test]
    fn too_few_requests_of_the_new_version_are_nothing() {
        let version = |i: u64| if i >= 290 { "2.0.0" } else { "1.0.0" };
        let facts = facts(version, |i| if i >= 290 { 300 } else { usual(i) });
        assert!(compare(&facts, &rule()).is_empty());
    }
}
