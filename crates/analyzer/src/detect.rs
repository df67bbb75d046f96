//! The three detectors. Each takes one endpoint's window and baseline and either finds an
//! anomaly or does not; none keeps state.

use aiops_telemetry_core::{EndpointKey, TimeWindow, WindowStats};

use crate::anomaly::{Anomaly, AnomalyKind, Severity};
use crate::baseline::Baseline;
use crate::chance::improbable;
use crate::config::Config;
use crate::describe;

/// A timeout anomaly needs at least this share of the window's requests over `timeout_ms`:
/// a healthy endpoint's p95 sits well below its timeout, so more than 5% of requests past it
/// means the tail itself has moved there.
pub(crate) const MIN_TIMEOUT_SHARE: f64 = 0.05;

/// The 95th percentile is only trusted as evidence when it is not simply the slowest request,
/// which needs at least 20 requests (nearest rank).
const MIN_REQUESTS_FOR_P95: u64 = 20;

/// Rate ratios are taken against at least this rate, so a perfect baseline does not make them
/// infinite.
const RATE_FLOOR: f64 = 0.01;

/// Where and when the evidence was seen.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Evidence<'a> {
    pub(crate) endpoint: &'a EndpointKey,
    pub(crate) window: TimeWindow,
    pub(crate) stats: &'a WindowStats,
    /// The window's slowness is missing from its first or its last third (a burst, not a
    /// fault): its slow tail cannot make a latency spike, nor can a slow median of a window of
    /// few requests.
    pub(crate) transient_tail: bool,
}

/// Every anomaly the window shows against the baseline.
pub(crate) fn detect(
    evidence: Evidence<'_>,
    baseline: Option<&Baseline>,
    config: &Config,
) -> Vec<Anomaly> {
    let ready = baseline.filter(|baseline| baseline.is_ready(config));
    [
        latency_spike(evidence, ready, config),
        error_storm(evidence, ready, config),
        timeouts(evidence, ready, config),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// True when `observed` is both `latency_multiplier` times and `min_latency_increase_ms` above
/// `baseline`.
fn clears_latency_thresholds(observed: f64, baseline: f64, config: &Config) -> bool {
    observed >= baseline * config.latency_multiplier
        && observed - baseline >= config.min_latency_increase_ms
}

/// A latency spike: enough requests, a ready baseline, a window mean past both the relative
/// and the absolute threshold, and a slowdown that is broad rather than one slow outlier or one
/// burst: either the median request is past the midpoint between the baseline's mean and p95
/// (the bulk of the traffic moved, which a burst of a second or two in a window of half a
/// minute cannot do), or (with at
/// least 20 requests, so that p95 is not the single slowest one) the p95 clears the same
/// thresholds against the baseline p95 in the whole window and in its first and last third
/// alike (a burst of outliers cannot reach both). With fewer than 20 requests the median
/// itself must clear the thresholds against the baseline mean, in both thirds.
///
/// A median merely above the baseline mean is no evidence: on an endpoint whose latency is
/// about as often above its mean as below, it is a coin toss.
fn latency_spike(
    evidence: Evidence<'_>,
    baseline: Option<&Baseline>,
    config: &Config,
) -> Option<Anomaly> {
    let baseline = baseline?;
    let stats = evidence.stats;
    if stats.count < config.min_latency_samples
        || !clears_latency_thresholds(stats.mean_ms, baseline.mean_ms, config)
    {
        return None;
    }
    // With few requests one outlier makes the mean: their median must spike itself.
    let broad = if few_requests(stats) {
        !evidence.transient_tail
            && clears_latency_thresholds(stats.p50_ms, baseline.mean_ms, config)
    } else {
        bulk_moved(stats, baseline)
            || (!evidence.transient_tail && slow_tail(stats, baseline, config))
    };
    if !broad {
        return None;
    }
    let ratio = stats.mean_ms / baseline.mean_ms.max(f64::MIN_POSITIVE);
    let severity = match ratio {
        r if r >= 10.0 => Severity::Critical,
        r if r >= 5.0 => Severity::High,
        _ => Severity::Medium,
    };
    Some(anomaly(
        evidence,
        AnomalyKind::LatencySpike,
        (stats.mean_ms, baseline.mean_ms, ratio),
        severity,
        describe::latency_spike(stats.mean_ms, baseline.mean_ms, ratio),
    ))
}

/// True when the window's p95 (with enough requests that it is not the slowest one) clears
/// the latency thresholds against the baseline p95.
pub(crate) fn slow_tail(stats: &WindowStats, baseline: &Baseline, config: &Config) -> bool {
    stats.count >= MIN_REQUESTS_FOR_P95
        && clears_latency_thresholds(stats.p95_ms, baseline.p95_ms, config)
}

/// True when the window's median request is past the midpoint between the baseline's mean and
/// its p95: the bulk of the traffic moved, not its tail.
pub(crate) fn bulk_moved(stats: &WindowStats, baseline: &Baseline) -> bool {
    stats.p50_ms > (baseline.mean_ms + baseline.p95_ms) / 2.0
}

/// True when a part of a window (a third of it) shows the slowness that the whole window is
/// judged by: for a window of few requests its median past the latency thresholds against the
/// baseline mean, otherwise its p95 past them against the baseline p95 and its mean past them
/// against the baseline mean. A part holds too few requests to ask for more than that. The
/// mean is asked for because it is what makes the window a spike: a burst in one third can
/// carry the whole window's mean, while a heavy-tailed endpoint's single outlier, which is all
/// a p95 of fewer than 20 requests is, cannot carry the other third's. Slow requests in every
/// third (a hang, a slow dependency on a share of the requests) carry both.
pub(crate) fn slow_part(
    stats: &WindowStats,
    baseline: &Baseline,
    config: &Config,
    few: bool,
) -> bool {
    if few {
        clears_latency_thresholds(stats.p50_ms, baseline.mean_ms, config)
    } else {
        clears_latency_thresholds(stats.p95_ms, baseline.p95_ms, config)
            && clears_latency_thresholds(stats.mean_ms, baseline.mean_ms, config)
    }
}

/// True when a window of this many requests needs its first and last thirds to be slow before
/// its slowness counts: with fewer than 20 requests a median is a handful of them, and one burst
/// can move it.
pub(crate) fn few_requests(stats: &WindowStats) -> bool {
    stats.count < MIN_REQUESTS_FOR_P95
}

/// An error storm: at least `min_error_count` failures making up at least
/// `error_rate_threshold` of the window. Against a ready baseline the rate must also be at
/// least twice the baseline rate and three standard deviations above what the baseline rate
/// predicts for this many requests (the deviation of independent failures, or the spread its
/// healthy windows showed when failures come in clusters), and the count improbable by chance
/// (see [`rises_beyond`]), so an endpoint that always fails a little does not storm on a bad
/// draw. Without a ready baseline most requests must fail, beyond doubt ([`fails_most`]): an
/// endpoint that fails most of its first requests is broken, baseline or not, while one that
/// fails a share of them (a caller giving up on a heavy-tailed API now and then) may always
/// have done so, and nothing yet says otherwise.
fn error_storm(
    evidence: Evidence<'_>,
    baseline: Option<&Baseline>,
    config: &Config,
) -> Option<Anomaly> {
    let stats = evidence.stats;
    let rate = stats.error_rate();
    if stats.errors < config.min_error_count || rate < config.error_rate_threshold {
        return None;
    }
    if baseline.is_none() && !fails_most(stats.errors, stats.count) {
        return None;
    }
    let baseline_rate = baseline.map_or(0.0, |baseline| baseline.error_rate.clamp(0.0, 1.0));
    if let Some(baseline) = baseline
        && !rises_beyond(
            stats.errors,
            stats.count,
            baseline_rate,
            baseline.error_rate_spread,
        )
    {
        return None;
    }
    let severity = match rate {
        r if r >= 0.9 => Severity::Critical,
        r if r >= 0.5 => Severity::High,
        _ => Severity::Medium,
    };
    Some(anomaly(
        evidence,
        AnomalyKind::ErrorStorm,
        (rate, baseline_rate, rate / baseline_rate.max(RATE_FLOOR)),
        severity,
        describe::error_storm(rate, baseline.map(|_| baseline_rate)),
    ))
}

/// True when `errors` of `count` requests are most of them beyond doubt: the share two
/// binomial deviations below the observed one is still above one half. Twelve failures in 24
/// requests are not (a flaky endpoint's bad draw), seven in eight or five in five are.
fn fails_most(errors: u64, count: u64) -> bool {
    if count == 0 {
        return false;
    }
    let n = count as f64;
    let share = errors as f64 / n;
    share - 2.0 * (share * (1.0 - share) / n).sqrt() > 0.5
}

/// Timeouts: at least `min_error_count` requests slower than `timeout_ms`, making up at least
/// 5% of the window, on an endpoint whose normal latency is far from the timeout (ready
/// baseline, `baseline p95 * latency_multiplier <= timeout_ms`). Where the timeout is within
/// that reach of the normal p95, crossing it is ordinary variation for the endpoint, and the
/// latency detector judges its slowdowns instead. Like latency, this needs a ready baseline:
/// without one there is no telling a stuck endpoint from a slow one. A dependency whose heavy
/// tail crosses the timeout now and then has learned that share
/// ([`Baseline::timeout_rate`], taken at the highest share its learning leaves plausible):
/// the window's share must be at least twice it and three binomial deviations above what it
/// predicts for this many requests, and the count improbable by chance (see [`rises_beyond`]).
fn timeouts(
    evidence: Evidence<'_>,
    baseline: Option<&Baseline>,
    config: &Config,
) -> Option<Anomaly> {
    let baseline = baseline?;
    let stats = evidence.stats;
    let share = stats.timeout_rate();
    if stats.timeouts < config.min_error_count
        || share < MIN_TIMEOUT_SHARE
        || baseline.p95_ms * config.latency_multiplier > config.timeout_ms
        || !rises_beyond(
            stats.timeouts,
            stats.count,
            baseline.plausible_timeout_rate(),
            0.0,
        )
    {
        return None;
    }
    let severity = match share {
        s if s >= 0.5 => Severity::Critical,
        s if s >= 0.2 => Severity::High,
        _ => Severity::Medium,
    };
    Some(anomaly(
        evidence,
        AnomalyKind::Timeout,
        (share, 0.0, share / RATE_FLOOR),
        severity,
        describe::timeouts(stats.timeouts, stats.count, config.timeout_ms),
    ))
}

/// True when `hits` of `count` requests are at least twice the share `baseline_rate`, three
/// deviations above what it predicts for `count` requests, and [`improbable`] by chance. The
/// deviation is that of independent events (binomial), or `spread_squared` (the variance of the
/// rate that healthy windows showed) when that is wider.
fn rises_beyond(hits: u64, count: u64, baseline_rate: f64, spread_squared: f64) -> bool {
    let n = count as f64;
    let rate = baseline_rate.clamp(0.0, 1.0);
    let binomial = rate * (1.0 - rate) / n;
    let spread = binomial.max(spread_squared).sqrt();
    let h = hits as f64;
    h >= 2.0 * rate * n && h >= rate * n + 3.0 * spread * n && improbable(hits, count, rate)
}

fn anomaly(
    evidence: Evidence<'_>,
    kind: AnomalyKind,
    (observed, baseline, ratio): (f64, f64, f64),
    severity: Severity,
    description: String,
) -> Anomaly {
    Anomaly {
        kind,
        endpoint: evidence.endpoint.clone(),
        observed,
        baseline,
        ratio,
        sample_count: evidence.stats.count,
        window: evidence.window,
        severity,
        description,
    }
}
