//! Edges: when the time was lost between a caller's client span and the callee.
//!
//! A call is two spans, the caller's CLIENT span and the callee's SERVER span below it; the gap
//! between them is network, connection pools, proxies and the callee's accept queue. Exclusive
//! time puts that gap on the client span, so a delay in front of a service looks like the
//! caller's own work. A client span with no child at all is a call to a dependency that is not
//! instrumented (a database, a cache, an external API): all of its time is the dependency's.
//!
//! So when the root-cause endpoint is a client span (keyed by its peer, see
//! [`aiops_telemetry_core::peer_of`]), the blame goes to the edge, and the evidence decides the
//! side:
//!
//! - one caller sees the gap towards several callees at once: the caller's side (its pool, its
//!   network, its own CPU) is where the time goes;
//! - otherwise (one or several callers towards one callee): the callee's side, which is named
//!   as the place where the time is lost; with one caller and one callee the description says
//!   that it is the calls between the two that slowed.

use foldhash::HashMap;

use aiops_analyzer::describe::format_percent;
use aiops_telemetry_core::{EndpointKey, peer_in_operation};

use crate::expect::Expectations;
use crate::graph::TraceGraph;
use crate::rank::Votes;

/// Share of the anomalous traces another client edge of the same caller needs to count as the
/// caller seeing the gap towards several callees.
const CO_EDGE_SHARE: f64 = 0.25;

/// Which side of a call the lost time is attributed to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Side {
    /// The callee (or the network in front of it); also every uninstrumented dependency.
    Callee,
    /// The caller: it was slow towards several callees at once.
    Caller,
}

/// What went wrong on the calls of an edge.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum EdgeFault {
    /// They took longer (or hung).
    Slow,
    /// They failed.
    Failed,
}

/// The verdict on a root cause that is a client span.
#[derive(Clone, Debug)]
pub(crate) struct EdgeBlame {
    pub fault: EdgeFault,
    /// Share of the calls in the sampled traces that failed (for failing edges).
    pub failed_share: f64,
    /// The client endpoint's usual error rate, if learned.
    pub baseline_error_rate: Option<f64>,
    /// The calling service.
    pub caller: String,
    /// The called service (its SERVER spans' service) or dependency (from the peer).
    pub callee: String,
    pub side: Side,
    /// Mean duration of the slow client spans, milliseconds.
    pub client_ms: f64,
    /// Mean duration of the callee's server spans under those client spans, if any.
    pub server_ms: Option<f64>,
    /// The client endpoint's normal duration, if learned.
    pub baseline_ms: Option<f64>,
}

impl EdgeBlame {
    /// The service named as the root cause.
    pub fn blamed_service(&self) -> &str {
        match self.side {
            Side::Callee => &self.callee,
            Side::Caller => &self.caller,
        }
    }

    /// What moved, where, by how much, against which baseline.
    /// `label` names the kind (`Latency spike`, `Timeouts`).
    pub fn describe(&self, label: &str, format_ms: impl Fn(f64) -> String) -> String {
        if self.fault == EdgeFault::Failed {
            let usual = self.baseline_error_rate.map_or_else(
                || "no baseline".to_owned(),
                |rate| format!("baseline {}", format_percent(rate)),
            );
            let towards = match self.side {
                Side::Caller => format!(", and {} failed towards other services too", self.caller),
                Side::Callee => String::new(),
            };
            return format!(
                "{label}: {} of the calls from {} to {} failed ({usual}){towards}",
                format_percent(self.failed_share),
                self.caller,
                self.callee
            );
        }
        let baseline = self.baseline_ms.map_or_else(
            || "no baseline".to_owned(),
            |b| format!("baseline {}", format_ms(b)),
        );
        let calls = format!(
            "calls from {} to {} took {} ({baseline})",
            self.caller,
            self.callee,
            format_ms(self.client_ms)
        );
        match (self.side, self.server_ms) {
            (Side::Caller, _) => format!(
                "{label}: {calls}, and {} was slow towards other services too",
                self.caller
            ),
            (Side::Callee, Some(server)) => format!(
                "{label}: {calls}, while {} handled them in {}",
                self.callee,
                format_ms(server)
            ),
            (Side::Callee, None) => format!("{label}: {calls}"),
        }
    }
}

/// The edge verdict when `root` is a client endpoint keyed by its peer, else `None`; `fault`
/// says whether its calls were slow or failed. Failing calls are told by `storm_share`, the
/// share of them failing in the client endpoint's own window that its error storm was judged
/// on, when it had one: `graphs` (a group's sampled traces) hold the other anomalies'
/// requests as well. Else by the share among the calls in `graphs`.
pub(crate) fn edge_blame(
    root: &EndpointKey,
    fault: EdgeFault,
    storm_share: Option<f64>,
    votes: &Votes,
    graphs: &[TraceGraph<'_>],
    expect: &Expectations<'_>,
) -> Option<EdgeBlame> {
    let peer = peer_in_operation(&root.operation)?;
    let (mut calls, mut failed, mut all_total) = (0usize, 0usize, 0.0);
    let (mut client_total, mut slow) = (0.0, 0usize);
    let (mut server_total, mut served) = (0.0, 0usize);
    let mut callees: HashMap<&str, usize> = HashMap::default();
    let (expected_self, _) = expect.self_time_of(root);
    for graph in graphs {
        for (node, span) in graph.nodes() {
            if span.service != root.service || span.operation != root.operation {
                continue;
            }
            calls += 1;
            all_total += span.duration_ms();
            failed += usize::from(span.is_error());
            let excess = graph.self_time_ms(node) - expected_self;
            let witness = match fault {
                EdgeFault::Slow => excess >= expect.min_excess_ms(),
                EdgeFault::Failed => span.is_error(),
            };
            if !witness {
                continue;
            }
            slow += 1;
            client_total += span.duration_ms();
            for &child in graph.children(node) {
                let callee = graph.span(child);
                if callee.service != span.service {
                    *callees.entry(&callee.service).or_default() += 1;
                    server_total += callee.duration_ms();
                    served += 1;
                }
            }
        }
    }
    let instrumented = callees.into_iter().max_by_key(|&(_, count)| count);
    // Without the callee's spans in these traces (a hang: they arrive when it finally answers),
    // the service that answered this peer before is the callee; else the peer names it.
    let callee = match instrumented {
        Some((service, _)) => service,
        None => expect.service_of_peer(peer).unwrap_or(peer),
    }
    .to_owned();

    let root_peer = peer;
    let co_edges = votes
        .candidates
        .iter()
        .filter(|v| v.endpoint.service == root.service && votes.score(v) >= CO_EDGE_SHARE)
        .filter_map(|v| peer_in_operation(&v.endpoint.operation))
        .filter(|other| *other != root_peer)
        .count();
    let side = if co_edges > 0 {
        Side::Caller
    } else {
        Side::Callee
    };
    Some(EdgeBlame {
        fault,
        failed_share: match storm_share {
            Some(share) if fault == EdgeFault::Failed => share,
            _ if calls == 0 => 0.0,
            _ => failed as f64 / calls as f64,
        },
        baseline_error_rate: expect.baseline(root).map(|b| b.error_rate),
        caller: root.service.to_string(),
        callee,
        side,
        client_ms: if slow == 0 {
            all_total / calls.max(1) as f64
        } else {
            client_total / slow as f64
        },
        server_ms: (served > 0).then(|| server_total / served as f64),
        baseline_ms: expect
            .baseline(root)
            .map(|b| b.duration_mean_ms)
            .filter(|&b| b > 0.0),
    })
}
