//! Shared fixtures: endpoints, baselines, window statistics from samples, and a simulated
//! service whose latencies are lognormal.

#![allow(dead_code)]

use aiops_analyzer::{Analyzer, Assessment, Baseline, Config};
use aiops_telemetry_core::{EndpointKey, TimeWindow, WindowStats};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

pub const SECOND: u64 = 1_000_000_000;
pub const MS: u64 = 1_000_000;
/// An arbitrary, realistic starting instant.
pub const T0: u64 = 1_700_000_000 * SECOND;

pub fn payment() -> EndpointKey {
    EndpointKey::new("shop", "/payment")
}

/// A mature baseline: many requests, learned just before `T0`.
pub fn mature_baseline(mean_ms: f64, p95_ms: f64, error_rate: f64) -> Baseline {
    Baseline {
        mean_ms,
        p95_ms,
        error_rate,
        sample_count: 10_000,
        updated_at_unix_nanos: T0,
        weight: 10_000.0,
        ..Baseline::new(payment())
    }
}

/// Statistics of a window whose requests all share one latency.
pub fn uniform(count: u64, errors: u64, latency_ms: f64) -> WindowStats {
    WindowStats {
        count,
        errors,
        timeouts: 0,
        mean_ms: latency_ms,
        p50_ms: latency_ms,
        p95_ms: latency_ms,
        p99_ms: latency_ms,
    }
}

/// Exact statistics of a set of requests `(latency_ms, failed)`; percentiles by nearest rank.
pub fn stats_of(requests: &[(f64, bool)], timeout_ms: f64) -> WindowStats {
    if requests.is_empty() {
        return WindowStats::default();
    }
    let mut latencies: Vec<f64> = requests.iter().map(|(ms, _)| *ms).collect();
    let count = latencies.len();
    let mut rank = |q: f64| {
        let index = ((q * count as f64).ceil() as usize).clamp(1, count) - 1;
        *latencies.select_nth_unstable_by(index, f64::total_cmp).1
    };
    let (p50_ms, p95_ms, p99_ms) = (rank(0.50), rank(0.95), rank(0.99));
    WindowStats {
        count: count as u64,
        errors: requests.iter().filter(|(_, failed)| *failed).count() as u64,
        timeouts: requests.iter().filter(|(ms, _)| *ms > timeout_ms).count() as u64,
        mean_ms: requests.iter().map(|(ms, _)| ms).sum::<f64>() / count as f64,
        p50_ms,
        p95_ms,
        p99_ms,
    }
}

/// An analyzer that already knows `baseline`.
pub fn analyzer_with(config: Config, baseline: Baseline) -> Analyzer {
    Analyzer::with_baselines(config, vec![baseline]).expect("valid config")
}

/// One cycle at `T0 + 5 s` with `current` as the window and nothing new to learn.
pub fn detect_once(analyzer: &mut Analyzer, current: WindowStats) -> Assessment {
    let window = TimeWindow::ending_at(T0 + 5 * SECOND, 30 * SECOND);
    analyzer.observe(window, &[(payment(), current)], &[])
}

/// A simulated endpoint: `rate` requests a second with lognormal latencies of a given mean
/// and shape, failing with probability `error_rate`. It runs analysis cycles the way a server
/// does, keeping the last window's requests to compute exact statistics.
pub struct Simulation {
    pub analyzer: Analyzer,
    rng: StdRng,
    now: u64,
    rate_per_sec: f64,
    slices: std::collections::VecDeque<Vec<(f64, bool)>>,
}

impl Simulation {
    pub fn new(config: Config, seed: u64, rate_per_sec: f64) -> Self {
        Self {
            analyzer: Analyzer::new(config).expect("valid config"),
            rng: StdRng::seed_from_u64(seed),
            now: T0,
            rate_per_sec,
            slices: std::collections::VecDeque::new(),
        }
    }

    /// A standard normal draw (Box-Muller).
    fn normal(&mut self) -> f64 {
        let u1: f64 = 1.0 - self.rng.random::<f64>();
        let u2: f64 = self.rng.random::<f64>();
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }

    /// A lognormal latency whose mean is `mean_ms`.
    pub fn lognormal(&mut self, mean_ms: f64, sigma: f64) -> f64 {
        let mu = mean_ms.ln() - sigma * sigma / 2.0;
        (mu + sigma * self.normal()).exp()
    }

    /// Requests arriving in one interval: the expected count, with the fraction rounded at
    /// random so that low rates still average out.
    fn arrivals(&mut self, interval_secs: f64) -> usize {
        let expected = self.rate_per_sec * interval_secs;
        let whole = expected.floor();
        whole as usize + usize::from(self.rng.random::<f64>() < expected - whole)
    }

    /// Runs one cycle: an interval of traffic whose mean latency is given by `mean_ms` at the
    /// cycle's end, then analysis at the end of the interval.
    pub fn cycle(&mut self, mean_ms: f64, sigma: f64, error_rate: f64) -> Assessment {
        let config = self.analyzer.config().clone();
        let interval = config.analysis_interval_secs;
        let slice: Vec<(f64, bool)> = (0..self.arrivals(interval))
            .map(|_| {
                let latency = self.lognormal(mean_ms, sigma);
                (latency, self.rng.random::<f64>() < error_rate)
            })
            .collect();
        self.slices.push_back(slice);
        let per_window = (config.analysis_window_secs / interval).round() as usize;
        while self.slices.len() > per_window.max(1) {
            self.slices.pop_front();
        }
        self.now += (interval * 1e9) as u64;
        let window_requests: Vec<(f64, bool)> = self.slices.iter().flatten().copied().collect();
        let current = stats_of(&window_requests, config.timeout_ms);
        let fresh = stats_of(self.slices.back().expect("just pushed"), config.timeout_ms);
        let window = TimeWindow::ending_at(self.now, (config.analysis_window_secs * 1e9) as u64);
        let current = if current.count > 0 {
            vec![(payment(), current)]
        } else {
            vec![]
        };
        let fresh = if fresh.count > 0 {
            vec![(payment(), fresh)]
        } else {
            vec![]
        };
        self.analyzer.observe(window, &current, &fresh)
    }

    /// Runs cycles for `secs` seconds at a constant mean, returning every assessment.
    pub fn run(&mut self, secs: f64, mean_ms: f64, sigma: f64, error_rate: f64) -> Vec<Assessment> {
        let cycles = (secs / self.analyzer.config().analysis_interval_secs).round() as usize;
        (0..cycles)
            .map(|_| self.cycle(mean_ms, sigma, error_rate))
            .collect()
    }

    pub fn baseline(&self) -> Option<Baseline> {
        self.analyzer.baseline(&payment()).cloned()
    }
}
