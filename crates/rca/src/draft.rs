//! Turning a root cause and the anomalies it explains into an [`IncidentDraft`].

use aiops_analyzer::chance::rarer_than;
use aiops_analyzer::describe::{error_storm, format_ms, latency_spike};
use aiops_analyzer::{Anomaly, AnomalyKind, Severity};
use aiops_telemetry_core::{EndpointKey, peer_in_operation};

use crate::contrast::describe_quiet;
use crate::edge::{EdgeFault, edge_blame};
use crate::expect::Expectations;
use crate::graph::TraceGraph;
use crate::provenance::{Mode, hung};
use crate::rank::Votes;
use crate::root_cause::{Candidate, FaultFamily, IncidentDraft, RootCause, SpanRef};

/// The draft for root cause `root`, explaining `anomalies`, from the group's `votes`.
pub(crate) fn draft(
    root: &EndpointKey,
    mut anomalies: Vec<Anomaly>,
    votes: &Votes,
    graphs: &[TraceGraph<'_>],
    expect: &Expectations<'_>,
) -> IncidentDraft {
    let root_votes = votes.get(root);
    let kind = root_votes.map_or_else(|| own_kind(root, &anomalies), |v| v.mode().kind());
    let confidence = match root_votes {
        Some(root_votes) => votes.score(root_votes),
        None if votes.traces == 0 => 1.0,
        None => 0.0,
    };
    let first_failing_span = root_votes
        .and_then(|v| v.first)
        .map(|(trace, node, _)| SpanRef::of(graphs[trace].span(node)));

    let mut candidates: Vec<Candidate> = vec![candidate(root, confidence)];
    candidates.extend(
        votes
            .candidates
            .iter()
            .filter(|v| &v.endpoint != root)
            .map(|v| candidate(&v.endpoint, votes.score(v))),
    );
    candidates.truncate(expect.max_candidates().max(1));

    // A client span as root cause is a call that lost time or failed: blame the side of the
    // edge the evidence points at, in words that say so.
    let fault = match Mode::of_kind(kind) {
        Mode::Error => EdgeFault::Failed,
        Mode::Latency | Mode::Timeout => EdgeFault::Slow,
    };
    let storm_share = anomalies
        .iter()
        .find(|a| &a.endpoint == root && a.kind == AnomalyKind::ErrorStorm)
        .map(|storm| storm.observed);
    let edge = edge_blame(root, fault, storm_share, votes, graphs, expect);
    // Kind, title and description say the same thing: when the root's own anomaly of the same
    // family is quoted, its kind is the root cause's kind.
    let (service, kind, description) = match &edge {
        Some(edge) => (
            edge.blamed_service().to_owned(),
            kind,
            edge.describe(title_label(kind), format_ms),
        ),
        None => {
            let (kind, description) = describe(root, kind, &anomalies, graphs, expect);
            (root.service.to_string(), kind, description)
        }
    };
    let severity = anomalies
        .iter()
        .map(|a| a.severity)
        .max()
        .unwrap_or(Severity::Low);
    let mut affected: Vec<EndpointKey> = anomalies
        .iter()
        .map(|a| a.endpoint.clone())
        .filter(|e| e != root)
        .collect();
    affected.sort();
    affected.dedup();
    affected.insert(0, root.clone());
    anomalies.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then_with(|| a.endpoint.cmp(&b.endpoint))
            .then(a.kind.cmp(&b.kind))
    });

    IncidentDraft {
        title: format!(
            "{} detected in {}",
            title_label(kind),
            place(&service, &root.operation)
        ),
        root_cause: RootCause {
            service,
            endpoint: root.operation.to_string(),
            kind,
            description,
            confidence,
            first_failing_span,
            candidates,
        },
        severity,
        affected_endpoints: affected,
        anomalies,
    }
}

fn candidate(endpoint: &EndpointKey, score: f64) -> Candidate {
    Candidate {
        service: endpoint.service.to_string(),
        endpoint: endpoint.operation.to_string(),
        score,
    }
}

/// Without trace evidence, the root's own anomaly (most severe first) says what went wrong.
fn own_kind(root: &EndpointKey, anomalies: &[Anomaly]) -> AnomalyKind {
    anomalies
        .iter()
        .filter(|a| &a.endpoint == root)
        .max_by_key(|a| a.severity)
        .or(anomalies.first())
        .map_or(AnomalyKind::ErrorStorm, |a| a.kind)
}

/// Share by which a root cause's slow spans must outlast its endpoint's usual duration.
const MIN_SLOWDOWN: f64 = 1.5;

/// The chance below which a candidate's count of slow spans is more than its spread explains.
const MAX_ROOT_CHANCE: f64 = 1e-3;

/// Standard errors by which a candidate's mean own time must exceed its usual one (one in a
/// thousand by chance).
const MIN_OWN_Z: f64 = 3.09;

/// Share by which the own work of a candidate whose service took the most added own time must
/// have slowed, over all its requests.
const MIN_OWN_SLOWDOWN: f64 = 1.25;

/// True when `endpoint`, a slow candidate root cause, is itself anomalous in `graphs`.
///
/// It runs slow: more of its spans are slow (own time the minimum excess past its baseline)
/// than the spread of its learned own time makes slow, rarer than [`MAX_ROOT_CHANCE`] by the
/// binomial tail (a noisy endpoint always has a slow tail, and a walk from a shifted caller
/// finds it in as many traces as the shift), and those spans took, on average, the minimum
/// excess longer than the endpoint usually takes, and half again as long; for a call to
/// another service, half again its usual own time will do (a call whose network gap grew
/// 20 ms is slow even when the callee's time dwarfs the gap), while an operation with 6 ms
/// more own work in 110 ms is not the place where a request got slow. An endpoint without a
/// learned baseline counts as slow (nothing says otherwise).
///
/// Or, when `took_most` (the most added own time went to its service), its own work slowed
/// in its requests as a whole: its mean own time over all its spans is a quarter again what
/// it usually is, at least the minimum excess more, and [`MIN_OWN_Z`] standard errors of its
/// learned spread above it. A saturated CPU slows every request of a service a little (and a
/// young baseline has learned part of it before it is judged); such an operation is where the
/// time went even when its callees' time dwarfs the growth. A call's own time is the gap in
/// front of its callee, judged as a call, never so.
pub(crate) fn slow_itself(
    endpoint: &EndpointKey,
    graphs: &[TraceGraph<'_>],
    expect: &Expectations<'_>,
    took_most: bool,
) -> bool {
    let Some((baseline, usual)) = expect
        .baseline(endpoint)
        .map(|b| (b, b.duration_mean_ms))
        .filter(|&(_, usual)| usual > 0.0)
    else {
        return true;
    };
    // Its learned mean own time (zero until a successful span was learned).
    let expected_self = baseline.mean_ms;
    let (mut count, mut own_ms) = (0u64, 0.0);
    let (mut slow, mut slow_total_ms, mut slow_own_ms) = (0u64, 0.0, 0.0);
    for graph in graphs {
        for (node, span) in graph.nodes() {
            if span.service != endpoint.service || span.operation != endpoint.operation {
                continue;
            }
            let own = graph.self_time_ms(node);
            count += 1;
            own_ms += own;
            if own - expected_self >= expect.min_excess_ms() {
                slow += 1;
                slow_total_ms += span.duration_ms();
                slow_own_ms += own;
            }
        }
    }
    // A call's own time is the gap in front of its callee: the part of it the edge owns.
    let call = peer_in_operation(&endpoint.operation).is_some();
    // More of its spans are slow than its own spread makes slow: the slow tail of a noisy
    // endpoint is always there, and is not where a request got slow.
    let more_than_usual = || {
        let usual_share = baseline.share_past(expected_self + expect.min_excess_ms());
        rarer_than(slow, count, usual_share, MAX_ROOT_CHANCE)
    };
    let runs_slow = slow > 0 && more_than_usual() && {
        let observed = slow_total_ms / slow as f64;
        let observed_self = slow_own_ms / slow as f64;
        observed - usual >= expect.min_excess_ms()
            && (observed >= MIN_SLOWDOWN * usual
                || (call && observed_self >= MIN_SLOWDOWN * expected_self))
    };
    let own_work_slowed = || {
        let mean = own_ms / count as f64;
        !call
            && count > 0
            && expected_self > 0.0
            && mean >= MIN_OWN_SLOWDOWN * expected_self
            && mean - expected_self >= expect.min_excess_ms()
            && (mean - expected_self) * (count as f64).sqrt() >= MIN_OWN_Z * baseline.spread_ms()
    };
    runs_slow || (took_most && own_work_slowed())
}

/// Where a title says the problem is: the service and the operation (`payments POST /charge`),
/// or the operation alone when it is a path of the service (`/payment`), as the demo shop and
/// many single-service setups name their endpoints.
fn place(service: &str, operation: &str) -> String {
    if operation.starts_with('/') {
        operation.to_owned()
    } else {
        format!("{service} {operation}")
    }
}

fn title_label(kind: AnomalyKind) -> &'static str {
    match kind {
        AnomalyKind::LatencySpike => "Latency spike",
        AnomalyKind::LatencyShift => "Latency shift",
        AnomalyKind::CallDrop => "Dropped calls",
        AnomalyKind::LogPattern => "New log pattern",
        AnomalyKind::ErrorStorm => "Error storm",
        AnomalyKind::Timeout => "Timeouts",
    }
}

/// The root endpoint's own figures: the detector's sentence when it flagged the root itself
/// (same kind preferred, then same family), else one computed from the sampled traces against
/// the learned baseline.
fn describe(
    root: &EndpointKey,
    kind: AnomalyKind,
    anomalies: &[Anomaly],
    graphs: &[TraceGraph<'_>],
    expect: &Expectations<'_>,
) -> (AnomalyKind, String) {
    let own = |accept: &dyn Fn(AnomalyKind) -> bool| {
        anomalies
            .iter()
            .filter(|a| &a.endpoint == root && accept(a.kind))
            .max_by_key(|a| a.severity)
            .map(|a| (a.kind, a.description.clone()))
    };
    if let Some(quoted) =
        own(&|k| k == kind).or_else(|| own(&|k| FaultFamily::of(k) == FaultFamily::of(kind)))
    {
        return quoted;
    }

    // The sampled traces span the whole anomaly window, healthy requests included: quote the
    // slow ones (self time past the baseline by the minimum excess) when there are any, so the
    // figure is what the anomalous requests took, not a mean diluted by healthy traffic.
    let (mut count, mut errors, mut hangs) = (0u64, 0u64, 0u64);
    let (mut total_ms, mut slowest_ms) = (0.0f64, 0.0f64);
    let (mut slow, mut slow_ms, mut slow_own_ms) = (0u64, 0.0f64, 0.0f64);
    let (expected_self, _) = expect.self_time_of(root);
    for graph in graphs {
        for (node, span) in graph.nodes() {
            if span.service != root.service || span.operation != root.operation {
                continue;
            }
            count += 1;
            errors += u64::from(span.is_error());
            hangs += u64::from(hung(graph, node, expect.timeout_ms()));
            total_ms += span.duration_ms();
            slowest_ms = slowest_ms.max(span.duration_ms());
            let own = graph.self_time_ms(node);
            if own - expected_self >= expect.min_excess_ms() {
                slow += 1;
                slow_ms += span.duration_ms();
                slow_own_ms += own;
            }
        }
    }
    let baseline = expect.baseline(root);
    let sentence = match Mode::of_kind(kind) {
        Mode::Latency => {
            let observed = match (slow, count) {
                (0, 0) => 0.0,
                (0, count) => total_ms / count as f64,
                (slow, _) => slow_ms / slow as f64,
            };
            let own = slow_own_ms / slow.max(1) as f64;
            match baseline.map(|b| b.duration_mean_ms).filter(|&b| b > 0.0) {
                // Its own work slowed, which the whole request hardly shows: say so.
                Some(normal)
                    if slow > 0
                        && observed < MIN_SLOWDOWN * normal
                        && own >= MIN_SLOWDOWN * expected_self =>
                {
                    format!(
                        "Latency spike: own work took {} (baseline: {}, {:.1}x slower), {} in all",
                        format_ms(own),
                        format_ms(expected_self),
                        own / expected_self,
                        format_ms(observed)
                    )
                }
                Some(normal) => latency_spike(observed, normal, observed / normal),
                None => format!("Latency spike: {} (no baseline)", format_ms(observed)),
            }
        }
        // An endpoint blamed for failures it never reported went quiet (see `contrast`): say
        // what it skipped.
        Mode::Error if errors == 0 && count > 0 => {
            if let Some(sentence) = describe_quiet(root, graphs) {
                return (AnomalyKind::CallDrop, sentence);
            }
            error_storm(0.0, Some(baseline.map_or(0.0, |b| b.error_rate)))
        }
        // Without a baseline, RCA compares with a perfect endpoint (0%).
        Mode::Error => error_storm(
            if count == 0 {
                0.0
            } else {
                errors as f64 / count as f64
            },
            Some(baseline.map_or(0.0, |b| b.error_rate)),
        ),
        Mode::Timeout => format!(
            "Timeouts: {hangs} of {count} requests outlived their callers or {} (slowest {})",
            format_ms(expect.timeout_ms()),
            format_ms(slowest_ms)
        ),
    };
    (kind, sentence)
}
