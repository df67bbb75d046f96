//! What RCA expects of a span: the knobs of root cause analysis, the analyzer's knobs it shares,
//! and the learned self-time baselines.

use foldhash::HashMap;

use aiops_analyzer::Config;
use aiops_telemetry_core::{EndpointKey, Span};
use serde::{Deserialize, Serialize};

use crate::selftime::SelfTimeBaseline;

/// Knobs of root cause analysis. Every field has a documented default.
///
/// What a timeout is and when a baseline is trusted are not RCA's own knobs: they are the
/// analyzer's (`timeout_ms`, `min_samples_for_baseline`), handed to [`Rca::new`](crate::Rca::new)
/// with its [`Config`](aiops_analyzer::Config), so detection and explanation never disagree.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RcaConfig {
    /// How many sampled traces per anomalous endpoint a caller should hand to
    /// [`Rca::explain`]; more traces give steadier confidence. Default 50.
    pub max_traces_per_anomaly: usize,
    /// How many candidates a root cause lists (the root cause included). Default 5.
    pub max_candidates: usize,
    /// Half-life of the self-time baselines, in spans: a span learned this many spans of its
    /// endpoint ago weighs half as much as the newest. Default 500.
    pub baseline_half_life_samples: f64,
    /// Self-time excess over the endpoint's baseline mean below which a span is not
    /// considered slow, in milliseconds. Default 5.
    pub min_excess_ms: f64,
}

impl Default for RcaConfig {
    fn default() -> Self {
        Self {
            max_traces_per_anomaly: 50,
            max_candidates: 5,
            baseline_half_life_samples: 500.0,
            min_excess_ms: 5.0,
        }
    }
}

/// The analyzer's knobs that RCA judges by too: what a timeout is, and how many samples make a
/// baseline trustworthy.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct Detection {
    pub(crate) timeout_ms: f64,
    pub(crate) min_samples_for_baseline: u64,
}

impl From<&Config> for Detection {
    fn from(config: &Config) -> Self {
        Self {
            timeout_ms: config.timeout_ms,
            min_samples_for_baseline: config.min_samples_for_baseline,
        }
    }
}

impl Default for Detection {
    fn default() -> Self {
        Self::from(&Config::default())
    }
}

pub(crate) type BaselineMap = HashMap<String, HashMap<String, SelfTimeBaseline>>;

/// Teaches the baseline of `span`'s endpoint one observation, creating the baseline if
/// needed; looks up by `&str` first, so only a new endpoint allocates its names.
pub(crate) fn observe_span(
    baselines: &mut BaselineMap,
    span: &Span,
    observe: impl Fn(&mut SelfTimeBaseline),
) {
    let known = baselines
        .get_mut(&*span.service)
        .and_then(|operations| operations.get_mut(&*span.operation));
    if let Some(baseline) = known {
        observe(baseline);
        return;
    }
    let mut baseline = SelfTimeBaseline::new(span.endpoint());
    observe(&mut baseline);
    baselines
        .entry(span.service.to_string())
        .or_default()
        .insert(span.operation.to_string(), baseline);
}

pub(crate) fn lookup<'m>(
    map: &'m BaselineMap,
    service: &str,
    operation: &str,
) -> Option<&'m SelfTimeBaseline> {
    map.get(service)
        .and_then(|by_operation| by_operation.get(operation))
}

/// What RCA expects of a span: its endpoint's learned self time, and the configured limits.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Expectations<'a> {
    pub(crate) baselines: &'a BaselineMap,
    pub(crate) config: &'a RcaConfig,
    pub(crate) detection: Detection,
    pub(crate) peers: &'a PeerServices,
}

/// Peers of client spans (`server.address`, `peer.service`, as keyed) and the service whose
/// server spans answered them, learned from traces where both sides were seen; at most
/// [`MAX_PEERS`] are remembered.
pub(crate) type PeerServices = HashMap<String, String>;

/// Most peers whose serving service is remembered.
pub(crate) const MAX_PEERS: usize = 10_000;

impl Expectations<'_> {
    /// The service that answers calls to `peer`, if a trace ever showed both sides.
    pub(crate) fn service_of_peer(&self, peer: &str) -> Option<&str> {
        self.peers.get(peer).map(String::as_str)
    }

    /// Expected self time of `span`'s endpoint: (mean, p95) in milliseconds. Unknown endpoints
    /// expect nothing, so their whole self time counts as excess.
    pub(crate) fn self_time(&self, span: &Span) -> (f64, f64) {
        self.self_time_at(&span.service, &span.operation)
    }

    /// Expected self time of `endpoint`, as [`self_time`](Self::self_time).
    pub(crate) fn self_time_of(&self, endpoint: &EndpointKey) -> (f64, f64) {
        self.self_time_at(&endpoint.service, &endpoint.operation)
    }

    fn self_time_at(&self, service: &str, operation: &str) -> (f64, f64) {
        match lookup(self.baselines, service, operation) {
            Some(b) if b.is_ready(self.detection.min_samples_for_baseline) => (b.mean_ms, b.p95_ms),
            Some(b) if b.sample_count > 0 => (b.mean_ms, b.p95_ms.max(2.0 * b.mean_ms)),
            _ => (0.0, 0.0),
        }
    }

    /// The learned baseline of `endpoint`, if any.
    pub(crate) fn baseline(&self, endpoint: &EndpointKey) -> Option<&SelfTimeBaseline> {
        lookup(self.baselines, &endpoint.service, &endpoint.operation)
    }

    pub(crate) fn timeout_ms(&self) -> f64 {
        self.detection.timeout_ms
    }

    pub(crate) fn min_excess_ms(&self) -> f64 {
        self.config.min_excess_ms
    }

    pub(crate) fn max_candidates(&self) -> usize {
        self.config.max_candidates
    }
}
