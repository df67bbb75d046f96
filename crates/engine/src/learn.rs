//! Self-time learning: which settled traces of healthy endpoints a cycle teaches root cause
//! analysis, within a fixed budget.

use foldhash::HashSet;

use aiops_analyzer::{Assessment, HealthStatus};
use aiops_rca::Rca;
use aiops_telemetry_core::{EndpointKey, Span, TimeWindow, TraceId};

use crate::config::EngineConfig;
use crate::trace_buffer::TraceBuffer;

/// Where learning stands between cycles: up to when traces were learned, and whose turn it is.
///
/// Each cycle learns from the traces that started between the previous learning point and the
/// settle time ago (so their late spans have arrived), of endpoints that are healthy in that cycle: a fault is
/// never learned as normal. The budget is fixed (`max_learn_traces`), so a cycle learns as much
/// at any traffic; endpoints without a trusted baseline come first.
///
/// Endpoints whose own time is rising past its usual p95 are watched: they get more of their
/// settled traces, up to `learn_traces_per_endpoint` each, on top of that budget (at most as
/// much again), for their own shift test only. On a rarely taken branch the even share reads a
/// dozen requests a minute, too few to judge a shift however large, and a fault would last out
/// its minute unseen. Watching costs nothing while nothing is developing.
#[derive(Clone, Debug, Default)]
pub(crate) struct Learning {
    learned_until: Option<u64>,
    /// Where the next cycle's turn starts among healthy endpoints.
    cursor: usize,
    /// Endpoints whose evidence is developing: read in full next cycle.
    watched: HashSet<EndpointKey>,
}

impl Learning {
    /// Learning that resumes after traces started before `learned_until` were learned.
    pub(crate) fn resume(learned_until: Option<u64>) -> Self {
        Self {
            learned_until,
            ..Self::default()
        }
    }

    /// Reads every settled trace of `endpoints` from the next cycle on (within the watch
    /// budget), until another call replaces them.
    pub(crate) fn watch(&mut self, endpoints: HashSet<EndpointKey>) {
        self.watched = endpoints;
    }

    /// The endpoints whose traces the last [`Learning::sample`] read in full.
    pub(crate) fn watched(&self) -> &HashSet<EndpointKey> {
        &self.watched
    }

    /// Traces that started before this instant were already learned from.
    pub(crate) fn learned_until(&self) -> Option<u64> {
        self.learned_until
    }

    /// The settled traces of healthy endpoints in `buffer` this cycle learns from (within its
    /// budget, endpoints without a trusted self-time baseline in `rca` first), which the caller
    /// teaches to `rca` and hands to the trace detectors; then more traces of the watched
    /// endpoints, for their shift test.
    pub(crate) fn sample(
        &mut self,
        rca: &Rca,
        buffer: &TraceBuffer,
        config: &EngineConfig,
        assessment: &Assessment,
        now: u64,
    ) -> Sample {
        let settled_until = now.saturating_sub(config.settle_nanos());
        let from = self
            .learned_until
            .unwrap_or_else(|| now.saturating_sub(config.window_nanos()));
        if settled_until <= from {
            return Sample::default();
        }
        let window = TimeWindow::new(from, settled_until);
        self.learned_until = Some(settled_until);

        let unhealthy = unhealthy(assessment);
        // Endpoints without a trusted self-time baseline come first and get their full share,
        // so a new endpoint is learned within a few cycles; the others share what is left of
        // the cycle's budget evenly. Both take turns from a cursor that moves on by the
        // endpoints visited. The budget is fixed, so a cycle learns as much at any traffic.
        let min_samples = config.analyzer.min_samples_for_baseline;
        let (mut young, mut grown): (Vec<&EndpointKey>, Vec<&EndpointKey>) = assessment
            .endpoints
            .iter()
            .map(|e| &e.endpoint)
            .filter(|endpoint| !unhealthy.contains(endpoint))
            .partition(|endpoint| {
                !rca.self_time_baseline(endpoint)
                    .is_some_and(|baseline| baseline.is_ready(min_samples))
            });
        if young.is_empty() && grown.is_empty() {
            return Sample::default();
        }
        let budget = config.max_learn_traces;
        let per_endpoint = config.learn_traces_per_endpoint;
        let grown_share = per_endpoint.min(budget.div_ceil(grown.len().max(1)).max(1));
        for endpoints in [&mut young, &mut grown] {
            if !endpoints.is_empty() {
                let offset = self.cursor % endpoints.len();
                endpoints.rotate_left(offset);
            }
        }
        let mut seen = HashSet::default();
        let mut sample = Sample::default();
        let mut visited = 0;
        let turns = young
            .iter()
            .map(|endpoint| (endpoint, per_endpoint))
            .chain(grown.iter().map(|endpoint| (endpoint, grown_share)));
        for (endpoint, share) in turns {
            let room = budget.saturating_sub(sample.traces.len());
            if room == 0 {
                break;
            }
            visited += 1;
            sample.take(buffer, endpoint, window, share.min(room), &mut seen);
        }
        self.cursor = self.cursor.wrapping_add(visited.max(1));
        // Then the watched endpoints' other traces, from a budget of their own.
        sample.learned = sample.traces.len();
        let mut watched: Vec<&EndpointKey> = self
            .watched
            .iter()
            .filter(|endpoint| !unhealthy.contains(endpoint))
            .collect();
        watched.sort();
        for endpoint in watched {
            let room = (sample.learned + budget).saturating_sub(sample.traces.len());
            sample.take(buffer, endpoint, window, per_endpoint.min(room), &mut seen);
        }
        sample
    }
}

/// The traces a cycle reads: first those it learns from, then the watched endpoints' extra
/// ones.
///
/// The extra traces were chosen for reaching a watched endpoint, so they tell nothing unbiased
/// of the rest of their requests: chosen for `payment`, every one shows checkout calling
/// payment, whereas checkout may call it on half of its requests. Only the watched endpoints'
/// own times are taken from them.
#[derive(Debug, Default)]
pub(crate) struct Sample {
    pub traces: Vec<Vec<Span>>,
    /// How many of `traces`, from the first, are learned from.
    pub learned: usize,
}

impl Sample {
    /// Adds up to `limit` of `endpoint`'s traces in `window`, those not taken yet.
    fn take(
        &mut self,
        buffer: &TraceBuffer,
        endpoint: &EndpointKey,
        window: TimeWindow,
        limit: usize,
        seen: &mut HashSet<TraceId>,
    ) {
        for trace in buffer.sample_traces(endpoint, window, limit) {
            // A trace belongs to the learning window its first span started in, so that
            // consecutive windows never learn the same trace twice.
            let first = trace
                .first()
                .map(|span| (span.trace_id, span.start_unix_nanos));
            if first.is_some_and(|(id, start)| window.contains(start) && seen.insert(id)) {
                self.traces.push(trace);
            }
        }
    }
}

/// The endpoints a cycle must not learn from: anomalous, or not healthy. A fault is never
/// learned as normal, by self-time baselines or call patterns alike.
pub(crate) fn unhealthy(assessment: &Assessment) -> HashSet<&EndpointKey> {
    assessment
        .endpoints
        .iter()
        .filter(|e| e.health.status != HealthStatus::Healthy)
        .map(|e| &e.endpoint)
        .chain(assessment.anomalies.iter().map(|a| &a.endpoint))
        .collect()
}
