//! [`ShiftMonitor`]: sustained shifts in an endpoint's own time, too small for the spike rule.
//!
//! The spike rule (three times the baseline and 20 ms more) judges an endpoint's whole
//! duration, which holds its callees' time: 20 ms more of a service's own work on top of 60 ms
//! of calls is a 1.3x change nobody would call a spike, and CPU contention slows every
//! operation of a service by a fraction. Exclusive time shows such a fault plainly: the
//! service's own 10 ms became 30 ms. So the traces the engine reads every cycle (to learn
//! normal self times) also feed a window of recent self times per endpoint, and each cycle
//! tests it against the endpoint's learned self-time baseline.
//!
//! The test asks for significance and effect size together, robustly (medians and counts, not
//! means, so a burst of outliers does not move it):
//!
//! - at least `shift_min_samples` recent spans;
//! - most of them past the baseline's 95th percentile: the median is, and the count past it is
//!   at least five standard deviations above the 5% a healthy endpoint shows;
//! - sustained: the median of the first and of the last third of the window is past that
//!   percentile too, so a burst of slow requests (which cannot reach both) is not a shift;
//! - the median at least `shift_min_increase_ms` above the baseline mean, and at least 1.3
//!   times it.

use std::collections::VecDeque;

use foldhash::HashMap;

use aiops_analyzer::describe::{latency_shift, latency_spike};
use aiops_analyzer::{Anomaly, AnomalyKind, Severity};
use aiops_rca::{Rca, TraceGraph};
use aiops_telemetry_core::{EndpointKey, Span, TimeWindow};

/// Most recent self times kept per endpoint.
const MAX_SAMPLES: usize = 256;

/// Share of a healthy endpoint's spans past its 95th percentile.
const TAIL_SHARE: f64 = 0.05;

/// Standard deviations above the healthy tail count that make a shift significant.
const MIN_Z: f64 = 5.0;

/// The median must be at least this many times the baseline mean.
const MIN_RATIO: f64 = 1.5;

/// Recent self times of the endpoints seen in the traces the engine reads.
#[derive(Debug, Default)]
pub(crate) struct ShiftMonitor {
    samples: HashMap<EndpointKey, VecDeque<(u64, f64)>>,
}

/// What a shift test needs to know.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ShiftRule {
    pub window_nanos: u64,
    pub min_samples: usize,
    pub min_increase_ms: f64,
    pub min_samples_for_baseline: u64,
    /// The spike rule's thresholds: a shift that clears them is reported as a spike.
    pub latency_multiplier: f64,
    pub min_latency_increase_ms: f64,
}

impl ShiftMonitor {
    /// Records, per trace of `traces` and endpoint in it, the mean self time of the endpoint's
    /// successful spans, at the trace's start: one sample per request, so a trace that calls an
    /// endpoint in a loop does not outvote the others, and a burst of slow requests counts
    /// when the requests came in, however long they then took.
    pub(crate) fn observe(&mut self, traces: &[Vec<Span>]) {
        let mut per_trace: HashMap<(&str, &str), (u64, f64, u32)> = HashMap::default();
        for trace in traces {
            let graph = TraceGraph::build(trace);
            let began = trace
                .iter()
                .map(|span| span.start_unix_nanos)
                .min()
                .unwrap_or(0);
            per_trace.clear();
            for (node, span) in graph.nodes() {
                if span.is_error() {
                    continue;
                }
                let entry = per_trace
                    .entry((&span.service, &span.operation))
                    .or_insert((began, 0.0, 0));
                entry.1 += graph.self_time_ms(node);
                entry.2 += 1;
            }
            for (&(service, operation), &(start, total_ms, count)) in &per_trace {
                let samples = self
                    .samples
                    .entry(EndpointKey::new(service, operation))
                    .or_default();
                if samples.len() == MAX_SAMPLES {
                    samples.pop_front();
                }
                samples.push_back((start, total_ms / f64::from(count)));
            }
        }
    }

    /// The endpoints whose recent own time shifted against `rca`'s baselines, as anomalies;
    /// forgets samples older than the rule's window first.
    pub(crate) fn detect(&mut self, rca: &Rca, rule: ShiftRule, now: u64) -> Vec<Anomaly> {
        let since = now.saturating_sub(rule.window_nanos);
        self.samples.retain(|_, samples| {
            while samples.front().is_some_and(|&(start, _)| start < since) {
                samples.pop_front();
            }
            !samples.is_empty()
        });
        let mut anomalies: Vec<Anomaly> = self
            .samples
            .iter()
            .filter_map(|(endpoint, samples)| {
                test(endpoint, samples, rca, rule, TimeWindow::new(since, now))
            })
            .collect();
        anomalies.sort_by(|a, b| a.endpoint.cmp(&b.endpoint));
        anomalies
    }
}

fn test(
    endpoint: &EndpointKey,
    samples: &VecDeque<(u64, f64)>,
    rca: &Rca,
    rule: ShiftRule,
    window: TimeWindow,
) -> Option<Anomaly> {
    let n = samples.len();
    if n < rule.min_samples.max(1) {
        return None;
    }
    let baseline = rca
        .self_time_baseline(endpoint)
        .filter(|b| b.is_ready(rule.min_samples_for_baseline))?;
    let mut values: Vec<f64> = samples.iter().map(|&(_, ms)| ms).collect();
    values.sort_by(f64::total_cmp);
    let median = values[n / 2];
    let past = values.iter().filter(|&&ms| ms > baseline.p95_ms).count();
    let expected = TAIL_SHARE * n as f64;
    let spread = (n as f64 * TAIL_SHARE * (1.0 - TAIL_SHARE)).sqrt();
    let significant = median > baseline.p95_ms && (past as f64 - expected) / spread >= MIN_Z;
    let third = (window.end_unix_nanos - window.start_unix_nanos) / 3;
    let (first_end, last_start) = (
        window.start_unix_nanos + third,
        window.end_unix_nanos - third,
    );
    let sustained = [true, false].into_iter().all(|first| {
        let mut part: Vec<f64> = samples
            .iter()
            .filter(|&&(start, _)| {
                if first {
                    start < first_end
                } else {
                    start >= last_start
                }
            })
            .map(|&(_, ms)| ms)
            .collect();
        part.sort_by(f64::total_cmp);
        part.len() * 5 >= rule.min_samples && part[part.len() / 2] > baseline.p95_ms
    });
    let large =
        median - baseline.mean_ms >= rule.min_increase_ms && median >= MIN_RATIO * baseline.mean_ms;
    if !(significant && sustained && large) {
        return None;
    }
    let ratio = median / baseline.mean_ms.max(f64::MIN_POSITIVE);
    // Own time that clears the spike rule is a spike, whatever found it; the rest is a shift.
    let spike = ratio >= rule.latency_multiplier
        && median - baseline.mean_ms >= rule.min_latency_increase_ms;
    let (kind, description) = if spike {
        (
            AnomalyKind::LatencySpike,
            latency_spike(median, baseline.mean_ms, ratio),
        )
    } else {
        (
            AnomalyKind::LatencyShift,
            latency_shift(
                median,
                past as u64,
                n as u64,
                baseline.mean_ms,
                baseline.p95_ms,
            ),
        )
    };
    Some(Anomaly {
        kind,
        endpoint: endpoint.clone(),
        observed: median,
        baseline: baseline.mean_ms,
        ratio,
        sample_count: n as u64,
        window,
        severity: if ratio >= 5.0 {
            Severity::High
        } else {
            Severity::Medium
        },
        description,
    })
}
