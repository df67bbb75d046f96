use std::collections::BTreeMap;
use std::iter::Peekable;
use std::ops::Range;

use aiops_telemetry_core::{EndpointKey, TimeWindow, WindowStats};
use serde::{Deserialize, Serialize};

use crate::anomaly::{Anomaly, AnomalyKind};
use crate::baseline::Baseline;
use crate::config::{Config, ConfigError};
use crate::detect::{Evidence, bulk_moved, detect, few_requests, slow_part, slow_tail};
use crate::health::{Health, assess_health};
use crate::live::LiveWindows;
use crate::watermarks::EndpointWatermarks;

/// The outcome of one analysis cycle.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Assessment {
    /// The detection window (per-endpoint windows may start later, after a watermark).
    pub window: TimeWindow,
    /// Every anomaly found, most severe first.
    pub anomalies: Vec<Anomaly>,
    /// Every endpoint with traffic in the window or a baseline, sorted by endpoint.
    pub endpoints: Vec<EndpointAssessment>,
}

/// One endpoint in one cycle.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EndpointAssessment {
    /// The endpoint.
    pub endpoint: EndpointKey,
    /// Its traffic in the detection window (all zero when it had none).
    pub stats: WindowStats,
    /// Its baseline after this cycle's learning, if it has one.
    pub baseline: Option<Baseline>,
    /// Its health in the window.
    pub health: Health,
}

/// One endpoint's input to a cycle.
struct EndpointInput {
    endpoint: EndpointKey,
    /// Its statistics over its detection window, and that window, if it had traffic there.
    current: Option<(WindowStats, TimeWindow)>,
    /// Its traffic not learned from yet, if any.
    fresh: Option<WindowStats>,
    /// Its window's slowness is missing from its first or its last third.
    transient_tail: bool,
}

impl EndpointInput {
    /// Every anomaly in this endpoint's window against `baseline`.
    fn anomalies(&self, baseline: Option<&Baseline>, config: &Config) -> Vec<Anomaly> {
        let Some((stats, window)) = &self.current else {
            return Vec::new();
        };
        let evidence = Evidence {
            endpoint: &self.endpoint,
            window: *window,
            stats,
            transient_tail: self.transient_tail,
        };
        detect(evidence, baseline, config)
    }
}

/// Moves `sorted` (pairs in ascending endpoint order) on to `endpoint`: hands the value of
/// every pair before it to `skipped`, and returns the value at `endpoint`, if there is one.
fn seek<'k, V>(
    sorted: &mut Peekable<impl Iterator<Item = (&'k EndpointKey, V)>>,
    endpoint: &EndpointKey,
    mut skipped: impl FnMut(V),
) -> Option<V> {
    while let Some((_, value)) = sorted.next_if(|(key, _)| *key < endpoint) {
        skipped(value);
    }
    sorted
        .next_if(|(key, _)| *key == endpoint)
        .map(|(_, value)| value)
}

/// Learns baselines and detects anomalies, one cycle at a time.
///
/// Each cycle ([`observe_live`](Self::observe_live) from [`LiveWindows`], or
/// [`observe`](Self::observe) from statistics computed elsewhere) does three things:
///
/// 1. detects latency spikes, error storms and timeouts on every endpoint's detection window
///    against its baseline as it stood before the cycle;
/// 2. learns from the fresh slice (traffic not learned before) of every endpoint that is not
///    anomalous in its window and whose fresh slice is not halfway to a threshold on its own;
///    the baselines of the others are held, and time held does not age them (a slice of few
///    requests held for its latency alone is learned once its window passed without an
///    anomaly);
/// 3. grades every endpoint that had traffic or has a baseline.
///
/// The analyzer owns its configuration and baselines, and nothing else (resolution watermarks
/// are lent to each cycle by their owner): persist
/// [`baselines`](Self::baselines) and resume with [`with_baselines`](Self::with_baselines).
#[derive(Clone, Debug)]
pub struct Analyzer {
    config: Config,
    baselines: BTreeMap<EndpointKey, Baseline>,
    /// Fresh slices of few requests held for their latency alone, per endpoint, with the
    /// cycle's time: learned once a whole window has passed over them without an anomaly
    /// (see [`Deferred`]).
    deferred: BTreeMap<EndpointKey, Deferred>,
}

/// Slices of few requests whose latency alone kept them from being learned, waiting for the
/// verdict of the window that holds them.
///
/// At low traffic a slice holds a request or two, and its median is one of them. An endpoint
/// whose requests take one of two paths (a cache hit or a miss, a fast or a slow branch) has a
/// slow one in many a slice; holding each of them for good taught its baseline the fast path
/// alone, and its usual slow requests then made spikes. A fault's first requests look the same
/// in a slice; the window tells them apart: it fires on a fault before it has moved past the
/// slice, and the slices waiting are then dropped.
type Deferred = Vec<(u64, WindowStats)>;

/// Slices deferred at most per endpoint (a window's worth at the default interval, and more).
const MAX_DEFERRED: usize = 16;

impl Analyzer {
    /// An analyzer with no baselines yet.
    pub fn new(config: Config) -> Result<Self, ConfigError> {
        Self::with_baselines(config, Vec::new())
    }

    /// An analyzer that resumes from persisted baselines.
    pub fn with_baselines(config: Config, baselines: Vec<Baseline>) -> Result<Self, ConfigError> {
        config.validate()?;
        Ok(Self {
            config,
            baselines: baselines
                .into_iter()
                .map(|baseline| (baseline.endpoint.clone(), baseline))
                .collect(),
            deferred: BTreeMap::new(),
        })
    }

    /// One cycle at `now`.
    ///
    /// Detection looks at the window of `analysis_window_secs` ending at `now`, per endpoint
    /// starting no earlier than its resolution watermark in `watermarks`.
    /// Learning looks at the fresh slice: every span recorded since the previous cycle that
    /// started in a bucket ending by `now`, late arrivals included, so each request is learned
    /// exactly once although windows overlap. Buckets older than the live windows' retention
    /// are evicted first.
    pub fn observe_live(
        &mut self,
        live: &LiveWindows,
        now_unix_nanos: u64,
        watermarks: &EndpointWatermarks,
    ) -> Assessment {
        live.evict_before(now_unix_nanos.saturating_sub(live.retention_nanos()));
        let window = TimeWindow::ending_at(now_unix_nanos, self.config.window_nanos());
        let mut inputs: Vec<EndpointInput> = live
            .cycle_stats(window, now_unix_nanos, self.config.timeout_ms)
            .into_iter()
            .map(|(endpoint, stats)| EndpointInput {
                endpoint,
                current: stats.current.map(|current| (current, window)),
                fresh: stats.fresh,
                transient_tail: false,
            })
            .collect();
        self.clip_to_watermarks(live, window, watermarks, &mut inputs);
        self.mark_transient_tails(live, &mut inputs);
        self.cycle(window, inputs)
    }

    /// The anomalies a cycle at `now` would detect, without learning, evicting or taking
    /// anything: a cheap look between cycles (it merges the live buckets of the detection window
    /// and nothing else), so that a caller can run the cycle early when something new shows.
    pub fn preview_live(
        &self,
        live: &LiveWindows,
        now_unix_nanos: u64,
        watermarks: &EndpointWatermarks,
    ) -> Vec<Anomaly> {
        let window = TimeWindow::ending_at(now_unix_nanos, self.config.window_nanos());
        let mut inputs: Vec<EndpointInput> = live
            .window_stats(window, self.config.timeout_ms)
            .into_iter()
            .map(|(endpoint, current)| EndpointInput {
                endpoint,
                current: Some((current, window)),
                fresh: None,
                transient_tail: false,
            })
            .collect();
        self.clip_to_watermarks(live, window, watermarks, &mut inputs);
        self.mark_transient_tails(live, &mut inputs);
        inputs
            .iter()
            .flat_map(|input| input.anomalies(self.baselines.get(&input.endpoint), &self.config))
            .collect()
    }

    /// Reads the statistics of endpoints whose watermark falls inside the detection `window`
    /// from the watermark on (older watermarks clip nothing).
    /// Such an endpoint's clipped window lies in `window`, so it is among `inputs` if it had
    /// traffic there.
    fn clip_to_watermarks(
        &self,
        live: &LiveWindows,
        window: TimeWindow,
        watermarks: &EndpointWatermarks,
        inputs: &mut [EndpointInput],
    ) {
        let now_unix_nanos = window.end_unix_nanos;
        let clipping = watermarks
            .iter()
            .filter(|&(_, not_before)| not_before > window.start_unix_nanos);
        for (endpoint, not_before) in clipping {
            let Ok(index) = inputs.binary_search_by(|input| input.endpoint.cmp(endpoint)) else {
                continue;
            };
            let clipped = TimeWindow::new(not_before.min(now_unix_nanos), now_unix_nanos);
            inputs[index].current = live
                .endpoint_stats(endpoint, clipped, self.config.timeout_ms)
                .map(|stats| (stats, clipped));
        }
    }

    /// Marks the inputs whose window would make a latency spike by its slow tail alone, or by
    /// the median of few requests, but which are neither slow that way in both its first and
    /// its last third of the window nor [`taken_over`] in their newest seconds: a burst of
    /// outliers (a garbage collection, a cold cache, one slow client), not a sustained
    /// slowdown. Only such candidates are read again, so the cost is nil on a healthy system.
    fn mark_transient_tails(&self, live: &LiveWindows, inputs: &mut [EndpointInput]) {
        let config = &self.config;
        // Inputs and baselines are both sorted by endpoint (see `cycle`).
        debug_assert!(inputs.is_sorted_by(|a, b| a.endpoint < b.endpoint));
        let mut baselines = self.baselines.iter().peekable();
        for input in inputs.iter_mut() {
            let baseline = seek(&mut baselines, &input.endpoint, |_| {});
            let Some((stats, window)) = input.current else {
                continue;
            };
            let Some(baseline) = baseline.filter(|baseline| baseline.is_ready(config)) else {
                continue;
            };
            let few = few_requests(&stats);
            let by_tail =
                !few && !bulk_moved(&stats, baseline) && slow_tail(&stats, baseline, config);
            let by_few = few && stats.p50_ms > baseline.mean_ms;
            if !(by_tail || by_few) {
                continue;
            }
            // The first and the last third of the window: a burst, however it straddles a
            // boundary, cannot reach both, as they lie a third of the window apart.
            let (first, last) = window.end_thirds();
            let ends = [first, last];
            let sustained = ends.iter().all(|part| {
                live.endpoint_stats(&input.endpoint, *part, config.timeout_ms)
                    .is_some_and(|stats| slow_part(&stats, baseline, config, few))
            });
            input.transient_tail =
                !(sustained || taken_over(live, input, window, baseline, config));
        }
    }

    /// Same, from precomputed stats: `current` over the detection `window`, `fresh` over the
    /// traffic not learned from yet (each request should appear in `fresh` exactly once over
    /// successive cycles). Watermarks do not apply here: `current` is taken as given.
    pub fn observe(
        &mut self,
        window: TimeWindow,
        current: &[(EndpointKey, WindowStats)],
        fresh: &[(EndpointKey, WindowStats)],
    ) -> Assessment {
        let mut inputs: BTreeMap<&EndpointKey, EndpointInput> = BTreeMap::new();
        let input = |endpoint: &EndpointKey| EndpointInput {
            endpoint: endpoint.clone(),
            current: None,
            fresh: None,
            transient_tail: false,
        };
        for (endpoint, stats) in current {
            inputs
                .entry(endpoint)
                .or_insert_with(|| input(endpoint))
                .current = Some((*stats, window));
        }
        for (endpoint, stats) in fresh {
            inputs
                .entry(endpoint)
                .or_insert_with(|| input(endpoint))
                .fresh = Some(*stats);
        }
        self.cycle(window, inputs.into_values().collect())
    }

    /// Detects on every endpoint's window, then learns from its fresh slice when it is not
    /// anomalous in its window and its fresh slice is not even halfway to a threshold on its
    /// own (the slice that holds the first seconds of a fault is anomalous before the window
    /// is). `inputs` are sorted by endpoint, each endpoint once.
    fn cycle(&mut self, window: TimeWindow, inputs: Vec<EndpointInput>) -> Assessment {
        let now = window.end_unix_nanos;
        let config = &self.config;
        let guard = config.learning_guard();
        let mut anomalies = Vec::new();
        let mut traffic = Vec::with_capacity(inputs.len());
        let mut born = Vec::new();
        // Inputs and baselines are both sorted by endpoint: walking them side by side finds
        // each endpoint's baseline without a look-up.
        let mut baselines = self.baselines.iter_mut().peekable();
        for input in inputs {
            let mut baseline = seek(&mut baselines, &input.endpoint, |_| {});
            let first = anomalies.len();
            anomalies.extend(input.anomalies(baseline.as_deref(), config));
            let anomalous = anomalies.len() > first;
            if let Some(fresh) = &input.fresh {
                let evidence = Evidence {
                    endpoint: &input.endpoint,
                    window,
                    stats: fresh,
                    transient_tail: false,
                };
                match &mut baseline {
                    Some(baseline) if anomalous => baseline.hold(now),
                    Some(baseline) => {
                        let verdict = detect(evidence, Some(&**baseline), &guard);
                        if verdict.is_empty() {
                            baseline.learn(fresh, now, config);
                        } else {
                            baseline.hold(now);
                            let latency_alone = verdict
                                .iter()
                                .all(|anomaly| anomaly.kind == AnomalyKind::LatencySpike);
                            if latency_alone && few_requests(fresh) {
                                let waiting =
                                    self.deferred.entry(input.endpoint.clone()).or_default();
                                if waiting.len() < MAX_DEFERRED {
                                    waiting.push((now, *fresh));
                                }
                            }
                        }
                    }
                    None => {
                        if !anomalous && detect(evidence, None, &guard).is_empty() {
                            let mut baseline = Baseline::new(input.endpoint.clone());
                            baseline.learn(fresh, now, config);
                            born.push(baseline);
                        }
                    }
                }
            }
            if anomalous {
                self.deferred.remove(&input.endpoint);
            } else if let Some(baseline) = baseline.as_deref_mut() {
                learn_deferred(&mut self.deferred, baseline, now, config);
            }
            if let Some((stats, _)) = input.current {
                if let Some(baseline) = baseline.filter(|b| !anomalous && b.is_ready(config)) {
                    baseline.learn_spread(&stats);
                }
                traffic.push((input.endpoint, stats, first..anomalies.len()));
            }
        }
        for baseline in born {
            self.baselines.insert(baseline.endpoint.clone(), baseline);
        }
        let endpoints = self.endpoint_assessments(traffic, &anomalies);
        anomalies.sort_by(|a, b| {
            (b.severity, &a.endpoint, a.kind).cmp(&(a.severity, &b.endpoint, b.kind))
        });
        Assessment {
            window,
            anomalies,
            endpoints,
        }
    }

    /// Every endpoint with traffic or a baseline, with its health: `traffic` (sorted by
    /// endpoint, with each endpoint's range in `anomalies`) merged with the baselines.
    fn endpoint_assessments(
        &self,
        traffic: Vec<(EndpointKey, WindowStats, Range<usize>)>,
        anomalies: &[Anomaly],
    ) -> Vec<EndpointAssessment> {
        let assess = |endpoint, stats, baseline: Option<&Baseline>, found: Range<usize>| {
            let found: Vec<&Anomaly> = anomalies[found].iter().collect();
            EndpointAssessment {
                health: assess_health(&stats, baseline, &found, &self.config),
                baseline: baseline.cloned(),
                endpoint,
                stats,
            }
        };
        let mut out = Vec::with_capacity(traffic.len().max(self.baselines.len()));
        let quiet = |baseline: &Baseline| {
            assess(
                baseline.endpoint.clone(),
                WindowStats::default(),
                Some(baseline),
                0..0,
            )
        };
        let mut baselines = self.baselines.iter().peekable();
        for (endpoint, stats, found) in traffic {
            let baseline = seek(&mut baselines, &endpoint, |skipped| {
                out.push(quiet(skipped))
            });
            out.push(assess(endpoint, stats, baseline, found));
        }
        out.extend(baselines.map(|(_, baseline)| quiet(baseline)));
        out
    }

    /// Every baseline, sorted by endpoint.
    pub fn baselines(&self) -> Vec<Baseline> {
        self.baselines.values().cloned().collect()
    }

    /// The baseline of `endpoint`, if it has one.
    pub fn baseline(&self, endpoint: &EndpointKey) -> Option<&Baseline> {
        self.baselines.get(endpoint)
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }
}

/// Learns the deferred slices of `baseline`'s endpoint that a whole detection window has
/// passed over without an anomaly, oldest first.
fn learn_deferred(
    deferred: &mut BTreeMap<EndpointKey, Deferred>,
    baseline: &mut Baseline,
    now: u64,
    config: &Config,
) {
    let Some(waiting) = deferred.get_mut(&baseline.endpoint) else {
        return;
    };
    let window = config.window_nanos();
    waiting.retain(|(held_at, slice)| {
        let judged = now.saturating_sub(*held_at) >= window;
        if judged {
            baseline.learn(slice, now, config);
        }
        !judged
    });
    if waiting.is_empty() {
        deferred.remove(&baseline.endpoint);
    }
}

/// How many seconds of an endpoint's newest requests a slowdown must have taken over to count
/// as sustained before it reaches the window's first third: three, each of them slow, which a
/// burst of outliers of a second or two (a garbage collection, a cold cache, a surge of
/// requests at once) cannot be.
const NEWEST_SECS: u64 = 3;

/// The fewest requests those seconds must hold together.
const NEWEST_MIN_REQUESTS: u64 = 10;

/// True when each of the endpoint's newest [`NEWEST_SECS`] seconds of requests (at least
/// [`NEWEST_MIN_REQUESTS`] in all) is slow in its median request: a step change in latency
/// caught as it begins. The seconds end with the newest request that has a span rather than at
/// the cycle's time, because requests still in flight have none: right after a step change, the
/// last seconds hold only the fast requests that were already done.
fn taken_over(
    live: &LiveWindows,
    input: &EndpointInput,
    window: TimeWindow,
    baseline: &Baseline,
    config: &Config,
) -> bool {
    const SECOND: u64 = 1_000_000_000;
    let Some(end) = live.newest_traffic_end(&input.endpoint, window) else {
        return false;
    };
    let mut requests = 0;
    for second in 0..NEWEST_SECS {
        let part = TimeWindow::new(
            end.saturating_sub((second + 1) * SECOND)
                .max(window.start_unix_nanos),
            end.saturating_sub(second * SECOND),
        );
        let slow = live
            .endpoint_stats(&input.endpoint, part, config.timeout_ms)
            .filter(|stats| slow_part(stats, baseline, config, true));
        match slow {
            Some(stats) => requests += stats.count,
            None => return false,
        }
    }
    requests >= NEWEST_MIN_REQUESTS.max(config.min_latency_samples)
}
