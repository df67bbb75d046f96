//! Evidence from one trace: which spans an anomaly's symptom in that trace leads back to.
//!
//! Two walks, chosen by the anomaly's kind:
//!
//! - **Error provenance** (error storms). Start at the failing span of the anomalous endpoint
//!   and follow failing children down. A failing span whose children all succeeded is an
//!   origin: errors propagate to callers, so the deepest failure with healthy callees is where
//!   it started. A child that outlived its (failing) parent, or ran past the timeout, failed
//!   from its caller's point of view even if it reports success: the caller's client gave up.
//!   The origin of such a hang is the span with the largest self-time excess below it. So is
//!   the origin of a span that answered 504 with no failing span below: older instrumentation
//!   records no outcome on a call that got no answer, so the call it gave up on looks healthy
//!   but for its length.
//! - **Self-time excess** (latency spikes, timeouts). Below the slow span of the anomalous
//!   endpoint, the origin is the span whose exclusive time exceeds its endpoint's learned
//!   self-time baseline the most. Inclusive durations would blame every caller of a slow
//!   callee; exclusive time blames only the callee.

use aiops_analyzer::{Anomaly, AnomalyKind};

use crate::expect::Expectations;
use crate::graph::TraceGraph;
use crate::root_cause::FaultFamily;

/// Clock skew tolerated before a child counts as having outlived its parent.
const SKEW_NANOS: u64 = 1_000_000;

/// Share of a trace's largest self-time excess another span needs to be named as well.
const CO_ORIGIN_SHARE: f64 = 0.5;

/// How an origin span failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Mode {
    /// It failed.
    Error,
    /// It hung: ran past the timeout or outlived the caller waiting for it.
    Timeout,
    /// It spent much longer than usual on its own work.
    Latency,
}

impl Mode {
    pub(crate) fn kind(self) -> AnomalyKind {
        match self {
            Self::Error => AnomalyKind::ErrorStorm,
            Self::Timeout => AnomalyKind::Timeout,
            Self::Latency => AnomalyKind::LatencySpike,
        }
    }

    pub(crate) fn family(self) -> FaultFamily {
        FaultFamily::of(self.kind())
    }

    pub(crate) fn of_kind(kind: AnomalyKind) -> Self {
        match kind {
            AnomalyKind::ErrorStorm | AnomalyKind::CallDrop | AnomalyKind::LogPattern => {
                Self::Error
            }
            AnomalyKind::Timeout => Self::Timeout,
            AnomalyKind::LatencySpike | AnomalyKind::LatencyShift => Self::Latency,
        }
    }
}

/// One span a trace's symptom leads back to.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Origin {
    /// The span's node in its graph.
    pub node: usize,
    pub mode: Mode,
    /// The span failed with 504 (gateway timeout) and shows no failing callee: it waited on a
    /// callee whose span is missing, so it is only a stand-in for the real origin.
    pub blocked: bool,
    /// Self-time excess over the endpoint's baseline, milliseconds (0 for error origins).
    pub excess_ms: f64,
}

/// Whether `node` (a span of the anomalous endpoint) shows the anomaly's symptom.
///
/// A timeout shows as a span past the timeout, but also as a span that answered 504 or
/// outlived its caller: the detector's timeout and the callers' client timeouts need not agree.
pub(crate) fn shows_symptom(
    graph: &TraceGraph<'_>,
    node: usize,
    anomaly: &Anomaly,
    timeout_ms: f64,
) -> bool {
    let span = graph.span(node);
    match anomaly.kind {
        AnomalyKind::ErrorStorm => span.is_error(),
        AnomalyKind::Timeout => span.http_status == Some(504) || hung(graph, node, timeout_ms),
        AnomalyKind::LatencySpike => {
            let threshold = anomaly.baseline + (anomaly.observed - anomaly.baseline) / 2.0;
            span.duration_ms() > threshold.max(anomaly.baseline)
        }
        // A shift is judged on own time, not duration: every span of the endpoint is a
        // witness, and the self-time walk below it finds the ones that moved.
        AnomalyKind::LatencyShift => true,
        // A dropped call leaves no span to walk from: the endpoint that stopped calling is the
        // evidence, and it is its own root cause.
        AnomalyKind::CallDrop => false,
        // A log pattern is a service's own words, not a span's symptom: its service explains it.
        AnomalyKind::LogPattern => false,
    }
}

/// The origins below `node` (a span showing `kind`'s symptom). May be empty when nothing below
/// stands out.
pub(crate) fn origins(
    graph: &TraceGraph<'_>,
    node: usize,
    kind: AnomalyKind,
    expect: &Expectations<'_>,
) -> Vec<Origin> {
    match kind {
        AnomalyKind::ErrorStorm => error_origins(graph, node, expect),
        AnomalyKind::CallDrop | AnomalyKind::LogPattern => Vec::new(),
        AnomalyKind::LatencySpike | AnomalyKind::Timeout | AnomalyKind::LatencyShift => {
            latency_origins(graph, node, expect, None)
        }
    }
}

fn error_origins(graph: &TraceGraph<'_>, start: usize, expect: &Expectations<'_>) -> Vec<Origin> {
    let mut found = Vec::new();
    let mut visited = vec![false; graph.len()];
    let mut stack = vec![start];
    while let Some(node) = stack.pop() {
        if std::mem::replace(&mut visited[node], true) {
            continue;
        }
        let span = graph.span(node);
        let mut failing_child = false;
        for &child in graph.children(node) {
            let callee = graph.span(child);
            if callee.is_error() {
                failing_child = true;
                stack.push(child);
            } else if hung(graph, child, expect.timeout_ms()) {
                failing_child = true;
                found.extend(latency_origins(graph, child, expect, Some(Mode::Timeout)));
            }
        }
        if !failing_child {
            // Instrumentation that records no status hides a failure on its way up: a
            // failing span below children that look healthy is where it started.
            let hidden = hidden_failures(graph, node);
            if !hidden.is_empty() {
                stack.extend(hidden);
                continue;
            }
            // A gateway timeout with no failing span below: the span gave up waiting on a
            // call whose instrumentation records no outcome (older SDKs write no status for a
            // request that got no answer) and whose callee's spans have not arrived. The time
            // went where the self-time walk finds it, as for a callee that outlived its caller.
            if span.http_status == Some(504) {
                let silent = silent_hangs(graph, node, expect);
                if !silent.is_empty() {
                    found.extend(silent);
                    continue;
                }
            }
            let mode = if hung(graph, node, expect.timeout_ms()) {
                Mode::Timeout
            } else {
                Mode::Error
            };
            found.push(Origin {
                node,
                mode,
                blocked: span.http_status == Some(504),
                excess_ms: 0.0,
            });
        }
    }
    found
}

/// The spans below `node` (not `node` itself) where a hang's time went, by self-time excess,
/// as timeout origins; empty when `node`'s own work is where it went, or nothing stands out.
fn silent_hangs(graph: &TraceGraph<'_>, node: usize, expect: &Expectations<'_>) -> Vec<Origin> {
    let found = latency_origins(graph, node, expect, Some(Mode::Timeout));
    if found.iter().any(|origin| origin.node == node) {
        return Vec::new();
    }
    found
}

/// The topmost failing spans below `node`'s children, none of which failed: a failure that
/// came up through spans whose instrumentation recorded no status.
fn hidden_failures(graph: &TraceGraph<'_>, node: usize) -> Vec<usize> {
    let mut found = Vec::new();
    let mut stack: Vec<usize> = graph.children(node).to_vec();
    while let Some(below) = stack.pop() {
        if graph.span(below).is_error() {
            found.push(below);
        } else {
            stack.extend_from_slice(graph.children(below));
        }
    }
    found
}

fn latency_origins(
    graph: &TraceGraph<'_>,
    start: usize,
    expect: &Expectations<'_>,
    forced: Option<Mode>,
) -> Vec<Origin> {
    let scored: Vec<(usize, f64, bool)> = graph
        .subtree(start)
        .into_iter()
        .map(|node| {
            let span = graph.span(node);
            let self_ms = graph.self_time_ms(node);
            let (mean, p95) = expect.self_time(span);
            (node, self_ms - mean, self_ms > p95)
        })
        .collect();
    let best = scored
        .iter()
        .map(|&(_, excess, _)| excess)
        .fold(f64::NEG_INFINITY, f64::max);
    let floor = expect.min_excess_ms().max(best * CO_ORIGIN_SHARE);
    scored
        .into_iter()
        .filter(|&(_, excess, beyond_p95)| beyond_p95 && excess >= floor)
        .map(|(node, excess_ms, _)| {
            let span = graph.span(node);
            let mode = forced.unwrap_or(if hung(graph, node, expect.timeout_ms()) {
                Mode::Timeout
            } else {
                Mode::Latency
            });
            Origin {
                node,
                mode,
                blocked: span.http_status == Some(504),
                excess_ms,
            }
        })
        .collect()
}

/// True when `node` ran past the timeout or outlived its parent (whose client gave up).
pub(crate) fn hung(graph: &TraceGraph<'_>, node: usize, timeout_ms: f64) -> bool {
    let span = graph.span(node);
    let outlived = graph.parent(node).is_some_and(|parent| {
        span.end_unix_nanos()
            > graph
                .span(parent)
                .end_unix_nanos()
                .saturating_add(SKEW_NANOS)
    });
    outlived || span.duration_ms() >= timeout_ms
}
