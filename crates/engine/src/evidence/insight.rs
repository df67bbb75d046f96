//! Attribute insight: the attribute values most over-represented among an incident's anomalous
//! requests, against all requests of the same endpoints.

use foldhash::HashMap;

use aiops_telemetry_core::{EndpointKey, SpanText, TimeWindow};

use super::facts::{Fact, SpanFacts};
use super::types::Insight;

/// Insights reported per incident at most.
pub(crate) const MAX_INSIGHTS: usize = 3;
/// Distinct attribute values counted at most (the rest are ignored).
const MAX_VALUES: usize = 4_096;
/// Anomalous requests needed before anything is said.
const MIN_ANOMALOUS: u64 = 5;
/// Share of the anomalous requests a value needs, at least.
const MIN_SHARE: f64 = 0.5;
/// By how much its anomalous share must exceed its overall share, at least.
const MIN_LIFT: f64 = 0.2;

/// The attribute values over-represented among the anomalous requests (per `bad`) of the
/// `endpoints` in `window`: carried by at least half of them, and by at least 20 points more
/// of them than of all requests; strongest first. Values that merely restate the failure
/// (an error status code, the exception's own attributes) are left out of failure incidents.
pub(crate) fn insights(
    facts: &SpanFacts,
    endpoints: &[EndpointKey],
    window: TimeWindow,
    bad: &dyn Fn(&EndpointKey, &Fact) -> bool,
    failures: bool,
) -> Vec<Insight> {
    let (mut requests, mut anomalous) = (0u64, 0u64);
    let mut counts: HashMap<(SpanText, SpanText), (u64, u64)> = HashMap::default();
    facts.visit_recent(
        |e| endpoints.contains(e),
        window,
        |endpoint, fact| {
            let is_bad = bad(endpoint, fact);
            requests += 1;
            anomalous += u64::from(is_bad);
            let status = fact
                .http_status
                .filter(|_| fact.attribute("http.response.status_code").is_none())
                .map(|code| {
                    (
                        SpanText::from_static("http.response.status_code"),
                        SpanText::from(code.to_string()),
                    )
                });
            for (key, value) in fact.attributes.iter().cloned().chain(status) {
                if failures && restates_failure(&key, &value) {
                    continue;
                }
                let full = counts.len() >= MAX_VALUES;
                let entry = match counts.get_mut(&(key.clone(), value.clone())) {
                    Some(entry) => entry,
                    None if full => continue,
                    None => counts.entry((key, value)).or_default(),
                };
                entry.0 += 1;
                entry.1 += u64::from(is_bad);
            }
        },
    );
    if anomalous < MIN_ANOMALOUS || requests == 0 {
        return Vec::new();
    }
    let what = if failures { "failing" } else { "slow" };
    let mut found: Vec<Insight> = counts
        .into_iter()
        .filter_map(|((key, value), (all, bad))| {
            let anomalous_share = bad as f64 / anomalous as f64;
            let overall_share = all as f64 / requests as f64;
            (anomalous_share >= MIN_SHARE && anomalous_share - overall_share >= MIN_LIFT).then(
                || Insight {
                    description: format!(
                        "{:.0}% of {what} requests carry {key}={value} against {:.0}% of all traffic",
                        anomalous_share * 100.0,
                        overall_share * 100.0
                    ),
                    key: key.to_string(),
                    value: value.to_string(),
                    anomalous_share,
                    overall_share,
                    anomalous_requests: anomalous,
                    requests,
                },
            )
        })
        .collect();
    found.sort_by(|a, b| {
        (b.anomalous_share - b.overall_share)
            .total_cmp(&(a.anomalous_share - a.overall_share))
            .then_with(|| a.key.cmp(&b.key))
            .then_with(|| a.value.cmp(&b.value))
    });
    found.truncate(MAX_INSIGHTS);
    found
}

/// True for an attribute that says a request failed rather than why.
fn restates_failure(key: &str, value: &str) -> bool {
    key.starts_with("exception.")
        || key == "otel.status_code"
        || key == "error"
        || (key.ends_with("status_code") && value.starts_with('5'))
}
