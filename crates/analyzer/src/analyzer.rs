use std::collections::{BTreeMap, HashMap};

use aiops_telemetry_core::{EndpointKey, TimeWindow, WindowStats};
use serde::{Deserialize, Serialize};

use crate::anomaly::Anomaly;
use crate::baseline::Baseline;
use crate::config::{Config, ConfigError};
use crate::detect::{Evidence, detect};
use crate::health::{Health, assess_health};
use crate::live::LiveWindows;

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

/// Learns baselines and detects anomalies, one cycle at a time.
///
/// Each cycle ([`observe_live`](Self::observe_live) from [`LiveWindows`], or
/// [`observe`](Self::observe) from statistics computed elsewhere) does three things:
///
/// 1. detects latency spikes, error storms and timeouts on every endpoint's detection window
///    against its baseline as it stood before the cycle;
/// 2. learns from the fresh slice (traffic not learned before) of every endpoint that is not
///    anomalous in its window and whose fresh slice is not halfway to a threshold on its own;
///    the baselines of the others are held, and time held does not age them;
/// 3. grades every endpoint that had traffic or has a baseline.
///
/// The analyzer owns its configuration, baselines and watermarks, and nothing else: persist
/// [`baselines`](Self::baselines) and resume with [`with_baselines`](Self::with_baselines).
#[derive(Clone, Debug)]
pub struct Analyzer {
    config: Config,
    baselines: BTreeMap<EndpointKey, Baseline>,
    watermarks: HashMap<EndpointKey, u64>,
}

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
            watermarks: HashMap::new(),
        })
    }

    /// One cycle at `now`.
    ///
    /// Detection looks at the window of `analysis_window_secs` ending at `now`, per endpoint
    /// starting no earlier than its watermark ([`set_watermark`](Self::set_watermark)).
    /// Learning looks at the fresh slice: every span recorded since the previous cycle that
    /// started in a bucket ending by `now`, late arrivals included, so each request is learned
    /// exactly once although windows overlap. Buckets older than the live windows' retention
    /// are evicted first.
    pub fn observe_live(&mut self, live: &LiveWindows, now_unix_nanos: u64) -> Assessment {
        live.evict_before(now_unix_nanos.saturating_sub(live.retention_nanos()));
        let window = TimeWindow::ending_at(now_unix_nanos, self.config.window_nanos());
        self.watermarks
            .retain(|_, not_before| *not_before > window.start_unix_nanos);
        let current = self.current_stats(live, window);
        let fresh = live.take_unlearned(now_unix_nanos, self.config.timeout_ms);
        self.cycle(window, current, &fresh)
    }

    /// The anomalies a cycle at `now` would detect, without learning, evicting or taking
    /// anything: a cheap look between cycles (it merges the live buckets of the detection window
    /// and nothing else), so that a caller can run the cycle early when something new shows.
    pub fn preview_live(&self, live: &LiveWindows, now_unix_nanos: u64) -> Vec<Anomaly> {
        let window = TimeWindow::ending_at(now_unix_nanos, self.config.window_nanos());
        self.detect_all(&self.current_stats(live, window))
    }

    /// Every anomaly in `current` against the baselines as they stand.
    fn detect_all(&self, current: &[(EndpointKey, WindowStats, TimeWindow)]) -> Vec<Anomaly> {
        current
            .iter()
            .flat_map(|(endpoint, stats, endpoint_window)| {
                let evidence = Evidence {
                    endpoint,
                    window: *endpoint_window,
                    stats,
                };
                detect(evidence, self.baselines.get(endpoint), &self.config)
            })
            .collect()
    }

    /// Every endpoint's statistics over the detection `window`, or from its watermark on when
    /// the watermark falls inside the window (older ones clip nothing; `observe_live` forgets
    /// them).
    fn current_stats(
        &self,
        live: &LiveWindows,
        window: TimeWindow,
    ) -> Vec<(EndpointKey, WindowStats, TimeWindow)> {
        let now_unix_nanos = window.end_unix_nanos;
        let timeout_ms = self.config.timeout_ms;
        let clips = |not_before: &u64| *not_before > window.start_unix_nanos;
        let mut current: Vec<_> = live
            .window_stats(window, timeout_ms)
            .into_iter()
            .filter(|(endpoint, _)| !self.watermarks.get(endpoint).is_some_and(clips))
            .map(|(endpoint, stats)| (endpoint, stats, window))
            .collect();
        for (endpoint, &not_before) in self.watermarks.iter().filter(|(_, mark)| clips(mark)) {
            let clipped = TimeWindow::new(not_before.min(now_unix_nanos), now_unix_nanos);
            if let Some(stats) = live.endpoint_stats(endpoint, clipped, timeout_ms) {
                current.push((endpoint.clone(), stats, clipped));
            }
        }
        current
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
        let current = current
            .iter()
            .map(|(endpoint, stats)| (endpoint.clone(), *stats, window))
            .collect();
        self.cycle(window, current, fresh)
    }

    /// Detects on `current`, then learns from `fresh` for endpoints that are not anomalous in
    /// their window and whose fresh slice is not even halfway to a threshold on its own (the
    /// slice that holds the first seconds of a fault is anomalous before the window is).
    fn cycle(
        &mut self,
        window: TimeWindow,
        current: Vec<(EndpointKey, WindowStats, TimeWindow)>,
        fresh: &[(EndpointKey, WindowStats)],
    ) -> Assessment {
        let now = window.end_unix_nanos;
        let guard = self.config.learning_guard();
        let mut anomalies = self.detect_all(&current);
        for (endpoint, stats) in fresh {
            let evidence = Evidence {
                endpoint,
                window,
                stats,
            };
            let anomalous = anomalies
                .iter()
                .any(|anomaly| &anomaly.endpoint == endpoint);
            // One look-up per endpoint: the baseline is judged and then taught through it.
            match self.baselines.get_mut(endpoint) {
                Some(baseline) => {
                    if anomalous || !detect(evidence, Some(&*baseline), &guard).is_empty() {
                        baseline.hold(now);
                    } else {
                        baseline.learn(stats, now, &self.config);
                    }
                }
                None => {
                    if !anomalous && detect(evidence, None, &guard).is_empty() {
                        let mut baseline = Baseline::new(endpoint.clone());
                        baseline.learn(stats, now, &self.config);
                        self.baselines.insert(endpoint.clone(), baseline);
                    }
                }
            }
        }
        anomalies.sort_by(|a, b| {
            (b.severity, &a.endpoint, a.kind).cmp(&(a.severity, &b.endpoint, b.kind))
        });
        let endpoints = self.endpoint_assessments(current, &anomalies);
        Assessment {
            window,
            anomalies,
            endpoints,
        }
    }

    /// Every endpoint with traffic or a baseline, with its health.
    fn endpoint_assessments(
        &self,
        current: Vec<(EndpointKey, WindowStats, TimeWindow)>,
        anomalies: &[Anomaly],
    ) -> Vec<EndpointAssessment> {
        let mut stats: BTreeMap<EndpointKey, WindowStats> = self
            .baselines
            .keys()
            .map(|endpoint| (endpoint.clone(), WindowStats::default()))
            .collect();
        stats.extend(
            current
                .into_iter()
                .map(|(endpoint, stats, _)| (endpoint, stats)),
        );
        stats
            .into_iter()
            .map(|(endpoint, stats)| {
                let baseline = self.baselines.get(&endpoint);
                let found: Vec<&Anomaly> = anomalies
                    .iter()
                    .filter(|anomaly| anomaly.endpoint == endpoint)
                    .collect();
                let health = assess_health(&stats, baseline, &found, &self.config);
                EndpointAssessment {
                    baseline: baseline.cloned(),
                    endpoint,
                    stats,
                    health,
                }
            })
            .collect()
    }

    /// Evidence before `not_before_unix_nanos` no longer counts for `endpoint` (resolution
    /// watermark).
    pub fn set_watermark(&mut self, endpoint: &EndpointKey, not_before_unix_nanos: u64) {
        let mark = self.watermarks.entry(endpoint.clone()).or_default();
        *mark = (*mark).max(not_before_unix_nanos);
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
