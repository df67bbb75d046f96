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
//!   at least five standard deviations above the 5% a healthy endpoint shows; and the median
//!   at least 1.5 times the baseline mean;
//! - or, for an endpoint whose spread hides a large move from its p95, most of them past the
//!   baseline's upper quartile (the count five deviations above the 25% a healthy endpoint
//!   shows), with the median past that quartile and at least 1.5 times the baseline median:
//!   CPU contention that makes a service's own work 2.3 times as long leaves its median under
//!   a p95 at 2.7 times it;
//! - sustained: the median of the first and of the last third of the window is past the same
//!   threshold too, so a burst of slow requests (which cannot reach both) is not a shift;
//! - the median at least `shift_min_increase_ms` above the baseline mean.

use std::collections::VecDeque;

use foldhash::{HashMap, HashSet};

use aiops_analyzer::describe::{latency_shift, latency_spike};
use aiops_analyzer::{Anomaly, AnomalyKind, Severity};
use aiops_rca::{Rca, SelfTimeBaseline, TraceGraph};
use aiops_telemetry_core::{EndpointKey, Span, SpanText, TimeWindow};

/// Most recent self times kept per endpoint.
const MAX_SAMPLES: usize = 256;

/// Share of a healthy endpoint's spans past its 95th percentile.
const TAIL_SHARE: f64 = 0.05;

/// Share of a healthy endpoint's spans past its upper quartile, and the standard deviations
/// of the learned log-normal shape at which that quartile sits.
const QUARTILE_SHARE: f64 = 0.25;
const Z75: f64 = 0.674_489_75;

/// Standard deviations above the healthy tail count that make a shift significant.
const MIN_Z: f64 = 5.0;

/// The median must be at least this many times the baseline mean.
const MIN_RATIO: f64 = 1.5;

/// Newest samples of an endpoint that decide whether its learning is held, and how many of
/// them past the learned p95 hold it: a healthy endpoint shows three of five past its p95
/// about once in a thousand cycles.
const RISING_SAMPLES: usize = 5;
const RISING_PAST: usize = 3;

/// Recent self times of the endpoints seen in the traces the engine reads.
#[derive(Debug, Default)]
pub(crate) struct ShiftMonitor {
    samples: HashMap<(SpanText, SpanText), VecDeque<(u64, f64)>>,
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
    /// when the requests came in, however long they then took. Only spans `keep` accepts are
    /// recorded.
    pub(crate) fn observe(&mut self, graphs: &[TraceGraph<'_>], keep: impl Fn(&Span) -> bool) {
        let mut per_trace: HashMap<(&SpanText, &SpanText), (f64, u32)> = HashMap::default();
        for graph in graphs {
            let began = graph
                .nodes()
                .map(|(_, span)| span.start_unix_nanos)
                .min()
                .unwrap_or(0);
            per_trace.clear();
            for (node, span) in graph.nodes() {
                if span.is_error() || !keep(span) {
                    continue;
                }
                let entry = per_trace
                    .entry((&span.service, &span.operation))
                    .or_insert((0.0, 0));
                entry.0 += graph.self_time_ms(node);
                entry.1 += 1;
            }
            for (&(service, operation), &(total_ms, count)) in &per_trace {
                let samples = self
                    .samples
                    .entry((service.clone(), operation.clone()))
                    .or_default();
                if samples.len() == MAX_SAMPLES {
                    samples.pop_front();
                }
                samples.push_back((began, total_ms / f64::from(count)));
            }
        }
    }

    /// The endpoints whose newest own times are mostly past their learned p95 (`RISING_PAST`
    /// of the newest `RISING_SAMPLES`): a shift may be starting that is not significant or
    /// sustained yet. Learning them now would teach the fault as normal before it is judged
    /// (a young baseline takes every sample at full weight: a minute of +50 ms doubles its
    /// p95), so the caller holds their self-time learning until the newest samples settle
    /// back. Endpoints without a ready baseline are never held: they must learn to be judged.
    pub(crate) fn rising(&self, rca: &Rca, min_samples_for_baseline: u64) -> HashSet<EndpointKey> {
        self.samples
            .iter()
            .filter(|((service, operation), samples)| {
                samples.len() >= RISING_SAMPLES
                    && rca
                        .self_time_baseline_at(service, operation)
                        .filter(|baseline| baseline.is_ready(min_samples_for_baseline))
                        .is_some_and(|baseline| {
                            samples
                                .iter()
                                .rev()
                                .take(RISING_SAMPLES)
                                .filter(|&&(_, ms)| ms > baseline.p95_ms)
                                .count()
                                >= RISING_PAST
                        })
            })
            .map(|((service, operation), _)| EndpointKey::of(service.clone(), operation.clone()))
            .collect()
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
        // The newer half of the window first: a busy endpoint has enough samples in it to
        // show a shift half a minute sooner, before its callers' slowness (which follows from
        // it) is blamed on them.
        let windows = [
            TimeWindow::new(since + rule.window_nanos / 2, now),
            TimeWindow::new(since, now),
        ];
        let mut anomalies: Vec<Anomaly> = self
            .samples
            .iter()
            .filter_map(|((service, operation), samples)| {
                if samples.len() < rule.min_samples.max(1) {
                    return None;
                }
                let baseline = rca
                    .self_time_baseline_at(service, operation)
                    .filter(|b| b.is_ready(rule.min_samples_for_baseline))?;
                // One pass counts each window's samples and those past the usual p95 and upper
                // quartile. Most endpoints are healthy: when half of a window's samples are
                // not past the usual quartile, its median is not either, and nothing needs
                // sorting.
                let quartile = baseline.quantile_ms(Z75);
                let mut counts = [Counts::default(); 2];
                for &(start, ms) in samples {
                    for (window, counts) in windows.iter().zip(&mut counts) {
                        if window.contains(start) {
                            counts.n += 1;
                            counts.past_p95 += usize::from(ms > baseline.p95_ms);
                            counts.past_quartile += usize::from(ms > quartile);
                        }
                    }
                }
                windows
                    .into_iter()
                    .zip(counts)
                    .find_map(|(window, counts)| {
                        let n = counts.n;
                        (n >= rule.min_samples.max(1) && counts.past_quartile * 2 > n).then(
                            || {
                                test(
                                    (service, operation),
                                    samples,
                                    (baseline, quartile),
                                    rule,
                                    window,
                                    counts,
                                )
                            },
                        )?
                    })
            })
            .collect();
        anomalies.sort_by(|a, b| a.endpoint.cmp(&b.endpoint));
        anomalies
    }
}

/// A window's samples, and how many of them are past the usual p95 and upper quartile.
#[derive(Clone, Copy, Debug, Default)]
struct Counts {
    n: usize,
    past_p95: usize,
    past_quartile: usize,
}

/// How many standard deviations `past` of `n` samples stand above the share `usual` of them.
fn deviations(past: usize, n: usize, usual: f64) -> f64 {
    (past as f64 - usual * n as f64) / (n as f64 * usual * (1.0 - usual)).sqrt()
}

/// The shift of one endpoint in `window`, whose samples (`counts`) are more than half past
/// the usual upper quartile (`quartile`, of `baseline`).
fn test(
    (service, operation): (&SpanText, &SpanText),
    samples: &VecDeque<(u64, f64)>,
    (baseline, quartile): (&SelfTimeBaseline, f64),
    rule: ShiftRule,
    window: TimeWindow,
    counts: Counts,
) -> Option<Anomaly> {
    let Counts {
        n,
        past_p95: past,
        past_quartile,
    } = counts;
    let within = || {
        samples
            .iter()
            .filter(move |&&(start, _)| window.contains(start))
    };
    let mut values: Vec<f64> = within().map(|&(_, ms)| ms).collect();
    values.sort_by(f64::total_cmp);
    let median = values[n / 2];
    let (first, last) = window.end_thirds();
    // The end thirds' medians, where a third holds enough samples to have one.
    let thirds = [first, last].map(|part_window| {
        let mut part: Vec<f64> = samples
            .iter()
            .filter(|&&(start, _)| part_window.contains(start))
            .map(|&(_, ms)| ms)
            .collect();
        part.sort_by(f64::total_cmp);
        (!part.is_empty() && part.len() * 5 >= rule.min_samples).then(|| part[part.len() / 2])
    });
    let sustained_past = |floor: f64| thirds.iter().all(|third| third.is_some_and(|m| m > floor));
    // Past the usual p95: the slow tail became the bulk.
    let tail = median > baseline.p95_ms
        && deviations(past, n, TAIL_SHARE) >= MIN_Z
        && sustained_past(baseline.p95_ms)
        && median >= MIN_RATIO * baseline.mean_ms;
    // Past the usual upper quartile, and half again the usual median: the bulk moved by a
    // factor the spread of a wide endpoint hides from its p95 (CPU contention that makes a
    // service's own work 2.3 times as long leaves its median under a p95 at 2.7 times it).
    // Both end thirds' medians too: a third of a young baseline's healthy requests may sit
    // just past its quartile as a fault clears.
    let floor = quartile.max(MIN_RATIO * baseline.quantile_ms(0.0));
    let bulk = deviations(past_quartile, n, QUARTILE_SHARE) >= MIN_Z
        && median > floor
        && sustained_past(floor);
    if !((tail || bulk) && median - baseline.mean_ms >= rule.min_increase_ms) {
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
        endpoint: EndpointKey::of(service.clone(), operation.clone()),
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

#[cfg(test)]
mod tests {
    use aiops_analyzer::Config;
    use aiops_rca::RcaConfig;
    use aiops_telemetry_core::{Span, SpanId, TraceId};

    use super::*;

    use crate::test_support::{MS, SEC, T0, graphs};

    /// A checkout of 5 ms of its own around a payment doing `payment_ms` of its own work.
    fn checkout(start: u64, payment_ms: u64) -> Vec<Span> {
        let trace = TraceId::random();
        let root = Span::new(trace, SpanId::random(), "shop", "/checkout")
            .with_timing(start, (payment_ms + 5) * MS);
        let payment = Span::new(trace, SpanId::random(), "payments", "/payment")
            .with_parent(root.span_id)
            .with_timing(start + 2 * MS, payment_ms * MS);
        vec![root, payment]
    }

    fn rule() -> ShiftRule {
        ShiftRule {
            window_nanos: 60 * SEC,
            min_samples: 20,
            min_increase_ms: 5.0,
            min_samples_for_baseline: 10,
            latency_multiplier: 3.0,
            min_latency_increase_ms: 20.0,
        }
    }

    fn trained() -> Rca {
        let mut rca = Rca::new(RcaConfig::default(), &Config::default());
        let healthy: Vec<_> = (0..200)
            .map(|i| checkout(T0 + i * SEC, 9 + i % 3))
            .collect();
        rca.learn(&healthy, |_| true);
        rca
    }

    /// A minute of checkouts, one a second, whose payment takes `payment_ms(second)`.
    fn minute(payment_ms: impl Fn(u64) -> u64) -> Vec<Vec<Span>> {
        (0..60)
            .map(|second| checkout(T0 + 1000 * SEC + second * SEC, payment_ms(second)))
            .collect()
    }

    #[test]
    fn a_sustained_rise_of_own_time_is_a_shift_of_that_endpoint_only() {
        let mut monitor = ShiftMonitor::default();
        monitor.observe(&graphs(&minute(|_| 22)), |_| true);

        let found = monitor.detect(&trained(), rule(), T0 + 1060 * SEC);

        assert_eq!(found.len(), 1, "{found:?}");
        let shift = &found[0];
        assert_eq!(shift.kind, AnomalyKind::LatencyShift);
        assert_eq!(shift.endpoint, EndpointKey::new("payments", "/payment"));
        assert!(
            shift
                .description
                .starts_with("Latency shift: own time 22ms in 30 of 30")
        );
    }

    #[test]
    fn own_time_past_the_spike_rule_is_reported_as_a_spike() {
        let mut monitor = ShiftMonitor::default();
        monitor.observe(&graphs(&minute(|_| 60)), |_| true);

        let found = monitor.detect(&trained(), rule(), T0 + 1060 * SEC);

        assert_eq!(found[0].kind, AnomalyKind::LatencySpike);
    }

    #[test]
    fn a_burst_in_one_part_of_the_window_or_a_steady_endpoint_is_no_shift() {
        let mut monitor = ShiftMonitor::default();
        monitor.observe(
            &graphs(&minute(|second| if second < 15 { 60 } else { 10 })),
            |_| true,
        );
        assert!(
            monitor
                .detect(&trained(), rule(), T0 + 1060 * SEC)
                .is_empty()
        );

        let mut steady = ShiftMonitor::default();
        steady.observe(&graphs(&minute(|second| 9 + second % 3)), |_| true);
        assert!(
            steady
                .detect(&trained(), rule(), T0 + 1060 * SEC)
                .is_empty()
        );
    }

    #[test]
    fn samples_older_than_the_window_are_forgotten() {
        let mut monitor = ShiftMonitor::default();
        monitor.observe(&graphs(&minute(|_| 22)), |_| true);

        assert!(
            monitor
                .detect(&trained(), rule(), T0 + 1200 * SEC)
                .is_empty()
        );
        assert!(monitor.samples.is_empty());
    }

    #[test]
    fn an_endpoint_whose_newest_own_times_pass_its_p95_is_held_from_learning() {
        let rca = trained();
        let payment = EndpointKey::new("payments", "/payment");
        let mut monitor = ShiftMonitor::default();
        // Healthy for most of the minute; four of the five newest requests slow.
        monitor.observe(
            &graphs(&minute(
                |second| {
                    if second >= 57 || second == 55 { 22 } else { 10 }
                },
            )),
            |_| true,
        );
        assert!(monitor.rising(&rca, 10).contains(&payment));

        let mut healthy = ShiftMonitor::default();
        healthy.observe(
            &graphs(&minute(
                |second| {
                    if second == 58 || second == 50 { 22 } else { 10 }
                },
            )),
            |_| true,
        );
        assert!(healthy.rising(&rca, 10).is_empty());

        // A baseline not yet ready is never held: it must learn to be judged.
        assert!(monitor.rising(&rca, 1_000).is_empty());
    }

    #[test]
    fn a_busy_endpoint_shows_a_shift_in_the_newer_half_of_the_window() {
        // Two requests a second; payment slowed thirty seconds ago. The whole window's first
        // third is healthy, the newer half is all slow and holds enough samples to judge.
        let traces: Vec<Vec<Span>> = (0..120)
            .map(|i| {
                let payment_ms = if i >= 60 { 22 } else { 10 };
                checkout(T0 + 1000 * SEC + i * SEC / 2, payment_ms)
            })
            .collect();
        let mut monitor = ShiftMonitor::default();
        monitor.observe(&graphs(&traces), |_| true);

        let found = monitor.detect(&trained(), rule(), T0 + 1060 * SEC);

        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(
            found[0].window,
            TimeWindow::new(T0 + 1030 * SEC, T0 + 1060 * SEC)
        );
    }

    /// Payment's own time over five requests, wide as a busy service's is: a median of about
    /// 11 ms and a p95 of about 26 ms.
    const WIDE_MS: [u64; 5] = [5, 8, 10, 14, 25];

    #[test]
    fn a_wide_endpoint_whose_bulk_more_than_doubled_is_a_shift_below_its_p95() {
        let mut rca = Rca::new(RcaConfig::default(), &Config::default());
        let healthy: Vec<_> = (0..200)
            .map(|i| checkout(T0 + i * SEC, WIDE_MS[i as usize % 5]))
            .collect();
        rca.learn(&healthy, |_| true);
        let saturated = |factor: f64| {
            let mut monitor = ShiftMonitor::default();
            let slow = |second: u64| (WIDE_MS[second as usize % 5] as f64 * factor).round() as u64;
            monitor.observe(&graphs(&minute(slow)), |_| true);
            monitor.detect(&rca, rule(), T0 + 1060 * SEC)
        };

        // CPU contention makes the service's own work 2.2 times as long: its median (22 ms)
        // stays under its usual p95, but most requests are past its usual upper quartile.
        let found = saturated(2.2);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].endpoint, EndpointKey::new("payments", "/payment"));
        assert!(
            found[0].observed
                < rca
                    .self_time_baseline_at("payments", "/payment")
                    .unwrap()
                    .p95_ms
        );

        // A third longer is within what the endpoint's spread shows now and then.
        assert!(saturated(1.3).is_empty());
    }
}
