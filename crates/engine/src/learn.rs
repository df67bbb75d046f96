//! Self-time learning: which settled traces of healthy endpoints a cycle teaches root cause
//! analysis, within a fixed budget.

use foldhash::HashSet;

use aiops_analyzer::{Assessment, HealthStatus};
use aiops_rca::Rca;
use aiops_telemetry_core::{EndpointKey, Span, TimeWindow};

use crate::config::EngineConfig;
use crate::trace_buffer::TraceBuffer;

/// Where learning stands between cycles: up to when traces were learned, and whose turn it is.
///
/// Each cycle learns from the traces that started between the previous learning point and the
/// settle time ago (so their late spans have arrived), of endpoints that are healthy in that cycle: a fault is
/// never learned as normal. The budget is fixed (`max_learn_traces`), so a cycle learns as much
/// at any traffic; endpoints without a trusted baseline come first.
#[derive(Clone, Debug, Default)]
pub(crate) struct Learning {
    learned_until: Option<u64>,
    /// Where the next cycle's turn starts among healthy endpoints.
    cursor: usize,
}

impl Learning {
    /// Learning that resumes after traces started before `learned_until` were learned.
    pub(crate) fn resume(learned_until: Option<u64>) -> Self {
        Self {
            learned_until,
            cursor: 0,
        }
    }

    /// Traces that started before this instant were already learned from.
    pub(crate) fn learned_until(&self) -> Option<u64> {
        self.learned_until
    }

    /// The settled traces of healthy endpoints in `buffer` this cycle learns from (within its
    /// budget, endpoints without a trusted self-time baseline in `rca` first); the caller
    /// teaches them to `rca` and hands them to the trace detectors.
    pub(crate) fn sample(
        &mut self,
        rca: &Rca,
        buffer: &TraceBuffer,
        config: &EngineConfig,
        assessment: &Assessment,
        now: u64,
    ) -> Vec<Vec<Span>> {
        let settled_until = now.saturating_sub(config.settle_nanos());
        let from = self
            .learned_until
            .unwrap_or_else(|| now.saturating_sub(config.window_nanos()));
        if settled_until <= from {
            return Vec::new();
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
            return Vec::new();
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
        let mut traces = Vec::new();
        let mut visited = 0;
        let turns = young
            .iter()
            .map(|endpoint| (endpoint, per_endpoint))
            .chain(grown.iter().map(|endpoint| (endpoint, grown_share)));
        for (endpoint, share) in turns {
            let room = budget.saturating_sub(traces.len());
            if room == 0 {
                break;
            }
            visited += 1;
            for trace in buffer.sample_traces(endpoint, window, share.min(room)) {
                // A trace belongs to the learning window its first span started in, so that
                // consecutive windows never learn the same trace twice.
                let first = trace
                    .first()
                    .map(|span| (span.trace_id, span.start_unix_nanos));
                if first.is_some_and(|(id, start)| window.contains(start) && seen.insert(id)) {
                    traces.push(trace);
                }
            }
        }
        self.cursor = self.cursor.wrapping_add(visited.max(1));
        traces
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
