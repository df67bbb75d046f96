//! [`Rca`]: learns per-endpoint self-time baselines from healthy traces and explains anomalies
//! as incident drafts.

use std::collections::BTreeMap;

use foldhash::HashMap;

use aiops_analyzer::{Anomaly, AnomalyKind, Config};
use aiops_telemetry_core::{EndpointKey, Span, peer_in_operation};
use serde::{Deserialize, Serialize};

use crate::contrast::went_quiet;
use crate::draft::{draft, slow_itself};
use crate::expect::{
    BaselineMap, Detection, Expectations, MAX_PEERS, PeerServices, RcaConfig, lookup, observe_span,
};
use crate::graph::TraceGraph;
use crate::provenance::{Mode, origins, shows_symptom};
use crate::rank::{Evidence, Votes};
use crate::root_cause::{FaultFamily, IncidentDraft};
use crate::selftime::{SelfTimeBaseline, alpha_for_half_life};

/// Root cause analysis over sampled traces.
///
/// Stateful only in its learned per-endpoint self-time baselines; it serializes (configuration
/// and baselines) so a server can persist and reload it.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(from = "RcaState", into = "RcaState")]
pub struct Rca {
    config: RcaConfig,
    detection: Detection,
    baselines: BaselineMap,
    peers: PeerServices,
}

/// The serialized form of [`Rca`]: baselines as a list, since JSON map keys are strings.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default)]
struct RcaState {
    config: RcaConfig,
    detection: Detection,
    baselines: Vec<SelfTimeBaseline>,
    peers: Vec<(String, String)>,
}

impl From<RcaState> for Rca {
    fn from(state: RcaState) -> Self {
        let mut rca = Self {
            config: state.config,
            detection: state.detection,
            baselines: HashMap::default(),
            peers: state.peers.into_iter().take(MAX_PEERS).collect(),
        };
        rca.insert_baselines(state.baselines);
        rca
    }
}

impl From<Rca> for RcaState {
    fn from(rca: Rca) -> Self {
        Self {
            baselines: rca.self_time_baselines(),
            config: rca.config,
            detection: rca.detection,
            peers: rca.peers.into_iter().collect(),
        }
    }
}

impl Rca {
    /// Analysis with `config` and nothing learned yet. `detection` is the analyzer's
    /// configuration: RCA takes what a timeout is (`timeout_ms`) and when a baseline is
    /// trusted (`min_samples_for_baseline`) from it.
    pub fn new(config: RcaConfig, detection: &Config) -> Self {
        Self {
            config,
            detection: Detection::from(detection),
            baselines: HashMap::default(),
            peers: HashMap::default(),
        }
    }

    /// Analysis as [`new`](Self::new) with previously learned `baselines` (a later one for
    /// the same endpoint replaces an earlier one).
    pub fn with_baselines(
        config: RcaConfig,
        detection: &Config,
        baselines: Vec<SelfTimeBaseline>,
    ) -> Self {
        let mut rca = Self::new(config, detection);
        rca.insert_baselines(baselines);
        rca
    }

    fn insert_baselines(&mut self, baselines: Vec<SelfTimeBaseline>) {
        for baseline in baselines {
            self.baselines
                .entry(baseline.endpoint.service.to_string())
                .or_default()
                .insert(baseline.endpoint.operation.to_string(), baseline);
        }
    }

    /// The configuration in use.
    pub fn config(&self) -> &RcaConfig {
        &self.config
    }

    /// Every learned self-time baseline, sorted by endpoint.
    pub fn self_time_baselines(&self) -> Vec<SelfTimeBaseline> {
        let mut all: Vec<SelfTimeBaseline> = self
            .baselines
            .values()
            .flat_map(|by_operation| by_operation.values().cloned())
            .collect();
        all.sort_by(|a, b| a.endpoint.cmp(&b.endpoint));
        all
    }

    /// The learned self-time baseline of `endpoint`, if any span of it was learned.
    pub fn self_time_baseline(&self, endpoint: &EndpointKey) -> Option<&SelfTimeBaseline> {
        lookup(&self.baselines, &endpoint.service, &endpoint.operation)
    }

    /// [`self_time_baseline`](Self::self_time_baseline) by the endpoint's names, for callers
    /// that hold them apart.
    pub fn self_time_baseline_at(
        &self,
        service: &str,
        operation: &str,
    ) -> Option<&SelfTimeBaseline> {
        lookup(&self.baselines, service, operation)
    }

    /// Learns self-time baselines from `traces` (each a trace's spans, in any order): every
    /// span of an endpoint for which `is_healthy` returns true contributes its exclusive time
    /// (successful spans) and its outcome (all spans). Feed each trace once, after it is
    /// complete, and never pass endpoints that are currently anomalous as healthy: a fault
    /// must not be learned as normal.
    pub fn learn(&mut self, traces: &[Vec<Span>], is_healthy: impl Fn(&EndpointKey) -> bool) {
        let graphs: Vec<TraceGraph<'_>> = traces.iter().map(|t| TraceGraph::build(t)).collect();
        self.learn_graphs(&graphs, is_healthy);
    }

    /// [`learn`](Self::learn) from traces already built into graphs, for a caller that reads
    /// them for more than learning.
    pub fn learn_graphs(
        &mut self,
        graphs: &[TraceGraph<'_>],
        is_healthy: impl Fn(&EndpointKey) -> bool,
    ) {
        let alpha = alpha_for_half_life(self.config.baseline_half_life_samples);
        let mut verdicts: HashMap<(&str, &str), bool> = HashMap::default();
        for graph in graphs {
            for (node, span) in graph.nodes() {
                if let Some(peer) = peer_in_operation(&span.operation) {
                    self.learn_peer(peer, graph, node);
                }
                let key = (&*span.service, &*span.operation);
                let healthy = *verdicts
                    .entry(key)
                    .or_insert_with(|| is_healthy(&span.endpoint()));
                if !healthy {
                    continue;
                }
                let self_ms = graph.self_time_ms(node);
                observe_span(&mut self.baselines, span, |baseline| {
                    baseline.observe(self_ms, span.duration_ms(), span.is_error(), alpha);
                });
            }
        }
    }

    /// Remembers which service answered the client span `node`, whose peer is `peer`.
    fn learn_peer(&mut self, peer: &str, graph: &TraceGraph<'_>, node: usize) {
        let caller = &graph.span(node).service;
        let Some(callee) = graph
            .children(node)
            .iter()
            .map(|&child| &graph.span(child).service)
            .find(|service| *service != caller)
        else {
            return;
        };
        if self
            .peers
            .get(peer)
            .is_some_and(|known| known == callee.as_str())
        {
            return;
        }
        if self.peers.len() < MAX_PEERS || self.peers.contains_key(peer) {
            self.peers.insert(peer.to_owned(), callee.to_string());
        }
    }

    /// Explains `anomalies` with `traces`, sampled traces (each a trace's spans) of any of the
    /// anomalous endpoints: one draft per distinct root cause, the draft explaining the most
    /// anomalies first.
    ///
    /// Each anomaly is traced back, in every trace where its endpoint shows the symptom, to
    /// the spans where the problem started; the endpoint named by the most traces is its root
    /// cause. Anomalies with the same root-cause endpoint and fault family form one draft. An
    /// anomaly that no trace shows is explained by its own endpoint.
    pub fn explain(&self, anomalies: &[Anomaly], traces: &[Vec<Span>]) -> Vec<IncidentDraft> {
        self.explain_settled(anomalies, traces, traces.len())
    }

    /// As [`explain`](Self::explain), where only the first `settled` traces are old enough to
    /// be complete and the rest are fresh: a fresh trace may still lack its deepest spans
    /// (SDKs export in batches, each service on its own schedule) and the ERROR logs that fail
    /// spans (log pipelines lag too), so it would name a caller for a failure that started
    /// below it. An anomaly that [`MIN_SETTLED_WITNESSES`] settled traces show is explained by
    /// them alone; one that fewer show (it began moments ago) by all its traces.
    pub fn explain_settled(
        &self,
        anomalies: &[Anomaly],
        traces: &[Vec<Span>],
        settled: usize,
    ) -> Vec<IncidentDraft> {
        let graphs: Vec<TraceGraph<'_>> = traces.iter().map(|t| TraceGraph::build(t)).collect();
        let index = EndpointIndex::new(&graphs);
        let expect = Expectations {
            baselines: &self.baselines,
            config: &self.config,
            detection: self.detection,
            peers: &self.peers,
        };

        let mut groups: BTreeMap<(EndpointKey, FaultFamily), Group> = BTreeMap::new();
        let dropping: Vec<&EndpointKey> = anomalies
            .iter()
            .filter(|a| a.kind == AnomalyKind::CallDrop)
            .map(|a| &a.endpoint)
            .collect();
        for anomaly in anomalies {
            let mut evidence = gather(anomaly, &graphs, &index, &expect, &dropping);
            keep_settled(&mut evidence, settled);
            let votes = Votes::tally(&graphs, &evidence);
            // A root cause is itself anomalous: a slow candidate whose slow spans took no longer
            // than its endpoint usually does is passed over for the next, unless the most added
            // own time went to its service and its own work slowed as a whole (a saturated
            // service slows each of its operations a little).
            let by_service = votes.excess_by_service();
            let most_excess = by_service.values().copied().fold(0.0, f64::max);
            let (root, mode) = votes
                .leader_where(|candidate| {
                    candidate.mode() != Mode::Latency
                        || slow_itself(
                            &candidate.endpoint,
                            &graphs,
                            &expect,
                            by_service
                                .get(candidate.endpoint.service.as_str())
                                .is_some_and(|&excess| excess >= most_excess),
                        )
                })
                .unwrap_or_else(|| (anomaly.endpoint.clone(), Mode::of_kind(anomaly.kind)));
            let group = groups.entry((root, mode.family())).or_default();
            // A group of one anomaly has that anomaly's votes; only a merged one needs a recount.
            group.votes = group.anomalies.is_empty().then_some(votes);
            group.anomalies.push(anomaly.clone());
            group.evidence.extend(evidence);
        }

        let mut drafts: Vec<IncidentDraft> = groups
            .into_iter()
            .map(|((root, _), group)| {
                let votes = group
                    .votes
                    .unwrap_or_else(|| Votes::tally(&graphs, &group.evidence));
                draft(&root, group.anomalies, &votes, &graphs, &expect)
            })
            .collect();
        drafts.sort_by(|a, b| {
            b.anomalies
                .len()
                .cmp(&a.anomalies.len())
                .then(b.severity.cmp(&a.severity))
                .then(b.root_cause.confidence.total_cmp(&a.root_cause.confidence))
        });
        drafts
    }
}

#[derive(Default)]
struct Group {
    anomalies: Vec<Anomaly>,
    evidence: Vec<Evidence>,
    /// The votes of `evidence`, while it is that of a single anomaly.
    votes: Option<Votes>,
}

/// For each trace where `anomaly`'s endpoint shows the symptom, the origins it leads to.
///
/// A failure whose origin (or the span below it) holds a span of an endpoint reported as
/// dropping calls (`dropping`), or of an endpoint that made no call in the sampled failing
/// requests while making its calls in the successful ones (`contrast::went_quiet`), is traced
/// to that span instead: a handler that returned early left its callers with a bad answer and
/// no failing span below, so the error surfaces where the answer was checked, not where it
/// went wrong.
fn gather(
    anomaly: &Anomaly,
    graphs: &[TraceGraph<'_>],
    index: &EndpointIndex<'_>,
    expect: &Expectations<'_>,
    dropping: &[&EndpointKey],
) -> Vec<Evidence> {
    let mut evidence: Vec<Evidence> = Vec::new();
    let at = index.spans_of(&anomaly.endpoint);
    let quiet = if anomaly.kind == AnomalyKind::ErrorStorm {
        went_quiet(graphs, at)
    } else {
        Vec::new()
    };
    for &(trace, node) in at {
        let graph = &graphs[trace];
        if !shows_symptom(graph, node, anomaly, expect.timeout_ms()) {
            continue;
        }
        let mut found = origins(graph, node, anomaly.kind, expect);
        if anomaly.kind == AnomalyKind::ErrorStorm && !(dropping.is_empty() && quiet.is_empty()) {
            for origin in &mut found {
                let dropped = graph.subtree(origin.node).into_iter().find(|&below| {
                    let span = graph.span(below);
                    dropping
                        .iter()
                        .any(|e| e.service == *span.service && e.operation == *span.operation)
                        || (below != origin.node
                            && quiet.contains(&(&*span.service, &*span.operation)))
                });
                if let Some(below) = dropped {
                    origin.node = below;
                    origin.blocked = false;
                }
            }
        }
        match evidence.last_mut() {
            Some(last) if last.trace == trace => last.origins.extend(found),
            _ => evidence.push(Evidence {
                trace,
                origins: found,
            }),
        }
    }
    evidence
}

/// How many settled traces must show an anomaly for the fresh ones to be left out of its
/// explanation.
pub const MIN_SETTLED_WITNESSES: usize = 5;

/// Leaves out the evidence of fresh traces (those from index `settled` on) when at least
/// [`MIN_SETTLED_WITNESSES`] settled traces show the anomaly.
fn keep_settled(evidence: &mut Vec<Evidence>, settled: usize) {
    let witnesses = evidence.iter().filter(|item| item.trace < settled).count();
    if witnesses >= MIN_SETTLED_WITNESSES {
        evidence.retain(|item| item.trace < settled);
    }
}

/// Where each endpoint's spans are among the sampled traces, in trace order.
struct EndpointIndex<'a> {
    /// (service, operation) -> (trace, node), keyed by the spans' own names.
    spans: HashMap<(&'a str, &'a str), Vec<(usize, usize)>>,
}

impl<'a> EndpointIndex<'a> {
    fn new(graphs: &[TraceGraph<'a>]) -> Self {
        let mut spans: HashMap<(&'a str, &'a str), Vec<(usize, usize)>> = HashMap::default();
        for (trace, graph) in graphs.iter().enumerate() {
            for (node, span) in graph.nodes() {
                spans
                    .entry((&*span.service, &*span.operation))
                    .or_default()
                    .push((trace, node));
            }
        }
        Self { spans }
    }

    fn spans_of<'s>(&'s self, endpoint: &'s EndpointKey) -> &'s [(usize, usize)] {
        self.spans
            .get(&(endpoint.service.as_str(), endpoint.operation.as_str()))
            .map_or(&[], Vec::as_slice)
    }
}
