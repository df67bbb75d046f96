//! Ranking across traces: every trace that shows an anomaly votes for the endpoints its
//! symptom leads back to, and a candidate's score is the share of those traces that name it.

use std::collections::BTreeMap;

use foldhash::HashMap;

use aiops_telemetry_core::EndpointKey;

use crate::graph::TraceGraph;
use crate::provenance::{Mode, Origin};

/// The origins one trace named for one anomaly (empty: the trace shows the symptom but no
/// span stands out, so it explains nothing).
#[derive(Clone, Debug)]
pub(crate) struct Evidence {
    /// Index of the trace among the sampled traces.
    pub trace: usize,
    pub origins: Vec<Origin>,
}

/// What the traces said about one candidate endpoint.
#[derive(Clone, Debug)]
pub(crate) struct CandidateVotes {
    pub endpoint: EndpointKey,
    /// Traces naming it as a genuine origin.
    pub traces: usize,
    /// Traces naming it only as a stand-in for a callee whose span is missing.
    pub blocked_traces: usize,
    /// Total self-time excess over all its origin spans, milliseconds.
    pub excess_ms: f64,
    /// Origin spans per mode: error, timeout, latency.
    modes: [usize; 3],
    /// The earliest origin span: (trace, node, start).
    pub first: Option<(usize, usize, u64)>,
}

impl CandidateVotes {
    /// How the candidate failed, by majority of its origin spans; a hang outranks an error,
    /// which outranks slowness, on ties.
    pub fn mode(&self) -> Mode {
        let [errors, timeouts, latency] = self.modes;
        if timeouts >= errors && timeouts >= latency && timeouts > 0 {
            Mode::Timeout
        } else if errors >= latency && errors > 0 {
            Mode::Error
        } else {
            Mode::Latency
        }
    }
}

/// Votes of a set of traces, best candidate first.
#[derive(Clone, Debug, Default)]
pub(crate) struct Votes {
    /// Distinct traces that showed a symptom.
    pub traces: usize,
    /// True when no trace named a genuine origin, so stand-ins are ranked instead.
    stand_ins: bool,
    pub candidates: Vec<CandidateVotes>,
}

impl Votes {
    /// Tallies `evidence`; a trace that appears more than once (several anomalies, several
    /// spans of the anomalous endpoint) votes at most once for each candidate.
    pub fn tally(graphs: &[TraceGraph<'_>], evidence: &[Evidence]) -> Self {
        let mut by_trace: BTreeMap<usize, Vec<Origin>> = BTreeMap::new();
        for item in evidence {
            by_trace
                .entry(item.trace)
                .or_default()
                .extend(item.origins.iter().copied());
        }
        // Keyed by the spans' own names, so that only a new candidate allocates its endpoint.
        let mut candidates: HashMap<(&str, &str), CandidateVotes> = HashMap::default();
        let mut named: Vec<((&str, &str), bool)> = Vec::new();
        for (&trace, origins) in &by_trace {
            let graph = &graphs[trace];
            named.clear();
            for origin in origins {
                let span = graph.span(origin.node);
                let key = (&*span.service, &*span.operation);
                let votes = candidates.entry(key).or_insert_with(|| CandidateVotes {
                    endpoint: span.endpoint(),
                    traces: 0,
                    blocked_traces: 0,
                    excess_ms: 0.0,
                    modes: [0; 3],
                    first: None,
                });
                votes.excess_ms += origin.excess_ms.max(0.0);
                votes.modes[origin.mode as usize] += 1;
                if !origin.blocked
                    && votes
                        .first
                        .is_none_or(|(_, _, start)| span.start_unix_nanos < start)
                {
                    votes.first = Some((trace, origin.node, span.start_unix_nanos));
                }
                // A trace names few endpoints: a list beats a map.
                match named.iter_mut().find(|(named, _)| *named == key) {
                    Some((_, genuine)) => *genuine |= !origin.blocked,
                    None => named.push((key, !origin.blocked)),
                }
            }
            for &(key, genuine) in &named {
                if let Some(votes) = candidates.get_mut(&key) {
                    if genuine {
                        votes.traces += 1;
                    } else {
                        votes.blocked_traces += 1;
                    }
                }
            }
        }
        let stand_ins = candidates.values().all(|votes| votes.traces == 0);
        let mut candidates: Vec<CandidateVotes> = candidates.into_values().collect();
        candidates.sort_by(|a, b| {
            let (a_votes, b_votes) = if stand_ins {
                (a.blocked_traces, b.blocked_traces)
            } else {
                (a.traces, b.traces)
            };
            b_votes
                .cmp(&a_votes)
                .then(b.excess_ms.total_cmp(&a.excess_ms))
                .then(b.traces.cmp(&a.traces))
                .then(a.endpoint.cmp(&b.endpoint))
        });
        Self {
            traces: by_trace.len(),
            stand_ins,
            candidates,
        }
    }

    /// The best candidate that `accept` accepts and how it failed, unless no trace named any.
    pub fn leader_where(
        &self,
        accept: impl Fn(&CandidateVotes) -> bool,
    ) -> Option<(EndpointKey, Mode)> {
        self.candidates
            .iter()
            .filter(|candidate| candidate.traces + candidate.blocked_traces > 0)
            .find(|candidate| accept(candidate))
            .map(|best| (best.endpoint.clone(), best.mode()))
    }

    /// The total self-time excess of each service's candidates, milliseconds: a saturated
    /// service adds a little own time to each of its operations, so its evidence adds up.
    pub fn excess_by_service(&self) -> HashMap<&str, f64> {
        let mut by_service: HashMap<&str, f64> = HashMap::default();
        for candidate in &self.candidates {
            *by_service.entry(&candidate.endpoint.service).or_default() += candidate.excess_ms;
        }
        by_service
    }

    /// The votes for `endpoint`, if any trace named it.
    pub fn get(&self, endpoint: &EndpointKey) -> Option<&CandidateVotes> {
        self.candidates.iter().find(|c| &c.endpoint == endpoint)
    }

    /// Share of the traces that name `votes`' endpoint, in `[0, 1]`. Stand-in votes count only
    /// when no trace named a genuine origin.
    pub fn score(&self, votes: &CandidateVotes) -> f64 {
        if self.traces == 0 {
            return 0.0;
        }
        let named = if self.stand_ins {
            votes.blocked_traces
        } else {
            votes.traces
        };
        (named as f64 / self.traces as f64).clamp(0.0, 1.0)
    }
}
