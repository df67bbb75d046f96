//! [`Engine`]: one analysis cycle, exactly as the server, the replay command and the accuracy
//! benchmark run it.

mod config;
mod report;

use foldhash::{HashMap, HashSet};
use std::sync::Arc;

use aiops_analyzer::{
    Analyzer, Anomaly, AnomalyKind, Assessment, ConfigError, HealthStatus, LiveWindows,
};
use aiops_telemetry_core::{Collector, EndpointKey, Fanout, Span, TimeWindow, TraceId};

pub use self::config::EngineConfig;
pub use self::report::{CycleReport, EndpointWatermark, EngineSnapshot};
use crate::explain::Rca;
use crate::incident::{Incident, IncidentBook, IncidentChange, IncidentError};
use crate::topology::{DependencyGraph, dependency_graph};
use crate::trace_buffer::TraceBuffer;

/// One analysis cycle as the server, the replay command and the accuracy benchmark all run it.
///
/// The engine owns the live per-endpoint statistics ([`LiveWindows`]), the recent traces
/// ([`TraceBuffer`]), detection ([`Analyzer`]), root cause analysis ([`Rca`]) and the incident
/// lifecycle ([`IncidentBook`]). Spans go in through [`collector`](Self::collector); each
/// [`run_cycle`](Self::run_cycle) then:
///
/// 1. evicts live buckets older than the window plus an interval, then detects on the window
///    ending at `now` (the analyzer learns baselines from the traffic of endpoints that are not
///    anomalous, and ignores evidence before resolution watermarks);
/// 2. learns normal self times from a small sample of settled traces of healthy endpoints
///    (those that started between the previous learning point and one interval ago);
/// 3. samples traces of every anomalous endpoint from its anomaly window (after any
///    watermark), and lets RCA explain the anomalies as incident drafts;
/// 4. folds the drafts into the incident book (dedupe, watermark, auto-resolve), and sets a
///    watermark on every endpoint of every incident resolved.
///
/// Every step reads a bounded amount of data (buckets of the window per endpoint, a capped
/// number of traces), so a cycle costs the same whatever the total span count.
///
/// The engine never reads the clock: `now` is an argument, so the same code runs on the wall
/// clock, a replayed file's clock or a virtual one. One owner drives it (the server keeps it in
/// its analysis task); only [`collector`](Self::collector) is shared, with the request path.
///
/// # Example
///
/// A checkout service calls a payment service. After a minute of healthy cycles, payment's
/// own work slows down by a second; the incident names payment as its root cause and checkout
/// as affected, although checkout's latency rose just as much.
///
/// ```
/// use aiops_rca::{Engine, EngineConfig};
/// use aiops_telemetry_core::{Span, SpanId, TraceId};
///
/// const SEC: u64 = 1_000_000_000;
/// const MS: u64 = 1_000_000;
///
/// /// One checkout trace starting at `start`: checkout works 20 ms, payment `payment_ms`.
/// fn checkout(start: u64, payment_ms: u64) -> Vec<Span> {
///     let trace = TraceId::random();
///     let root = Span::new(trace, SpanId::random(), "checkout", "/checkout")
///         .with_timing(start, (20 + payment_ms) * MS)
///         .with_http_status(200);
///     let payment = Span::new(trace, SpanId::random(), "payment", "/payment")
///         .with_parent(root.span_id)
///         .with_timing(start + 10 * MS, payment_ms * MS)
///         .with_http_status(200);
///     vec![root, payment]
/// }
///
/// let mut engine = Engine::new(EngineConfig::default())?;
/// let collector = engine.collector();
/// let mut now = 1_700_000_000 * SEC;
/// let mut opened = Vec::new();
///
/// // Ten checkouts a second and a cycle every five seconds (the default interval): a minute
/// // of healthy traffic, then fifteen seconds in which payment's own work takes 1 s more.
/// for cycle in 0..15 {
///     let payment_ms = if cycle < 12 { 50 } else { 1_050 };
///     for i in 0..50 {
///         let _ = collector.record_batch(checkout(now + i * 100 * MS, payment_ms + i % 5));
///     }
///     now += 5 * SEC;
///     let report = engine.run_cycle(now);
///     opened.extend(report.opened().into_iter().map(str::to_owned));
/// }
///
/// assert_eq!(opened.len(), 1, "one incident, however many cycles saw the fault");
/// let incident = engine.incidents().get(&opened[0]).expect("kept");
/// assert_eq!(incident.root_cause.service, "payment");
/// assert_eq!(incident.root_cause.endpoint, "/payment");
/// assert!(incident.affected_endpoints.iter().any(|e| e.operation == "/checkout"));
/// # Ok::<(), aiops_analyzer::ConfigError>(())
/// ```
#[derive(Debug)]
pub struct Engine {
    config: EngineConfig,
    live: Arc<LiveWindows>,
    traces: Arc<TraceBuffer>,
    collector: Arc<Fanout>,
    analyzer: Analyzer,
    rca: Rca,
    incidents: IncidentBook,
    watermarks: HashMap<EndpointKey, u64>,
    learned_until_unix_nanos: Option<u64>,
    /// Where the next cycle's turn of self-time learning starts among healthy endpoints.
    learn_cursor: usize,
    /// What the last cycle detected, so that [`has_news`](Self::has_news) reports only what is
    /// new since.
    last_detected: HashSet<(EndpointKey, AnomalyKind)>,
}

impl Engine {
    /// An engine with nothing learned yet. Fails when `config` does not validate.
    pub fn new(mut config: EngineConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        // One knob, one meaning: RCA judges timeouts and baseline readiness exactly as
        // detection does.
        config.rca.timeout_ms = config.analyzer.timeout_ms;
        config.rca.min_samples_for_baseline = config.analyzer.min_samples_for_baseline;
        let analyzer = Analyzer::new(config.analyzer.clone())?;
        let rca = Rca::new(config.rca.clone());
        let incidents = IncidentBook::new(config.auto_resolve_cycles)
            .with_max_resolved(config.max_resolved_incidents);
        let live = Arc::new(LiveWindows::new(
            config.bucket_nanos(),
            config.retention_nanos(),
        ));
        let traces = Arc::new(TraceBuffer::with_traces_per_endpoint(
            config.trace_buffer_max_spans,
            config.traces_per_endpoint,
        ));
        let collector = Arc::new(Fanout::new(vec![
            live.clone() as Arc<dyn Collector>,
            traces.clone() as Arc<dyn Collector>,
        ]));
        Ok(Self {
            config,
            live,
            traces,
            collector,
            analyzer,
            rca,
            incidents,
            watermarks: HashMap::default(),
            learned_until_unix_nanos: None,
            learn_cursor: 0,
            last_detected: HashSet::default(),
        })
    }

    /// An engine that resumes from `snapshot` under `config` (the configuration wins over the
    /// knobs saved in the snapshot).
    pub fn restore(config: EngineConfig, snapshot: EngineSnapshot) -> Result<Self, ConfigError> {
        let mut engine = Self::new(config)?;
        engine.analyzer =
            Analyzer::with_baselines(engine.config.analyzer.clone(), snapshot.baselines)?;
        engine.rca = Rca::with_baselines(engine.config.rca.clone(), snapshot.self_time_baselines);
        engine.incidents = snapshot
            .incidents
            .with_max_resolved(engine.config.max_resolved_incidents);
        engine
            .incidents
            .set_auto_resolve_cycles(engine.config.auto_resolve_cycles);
        for watermark in snapshot.watermarks {
            engine.set_watermark(&watermark.endpoint, watermark.not_before_unix_nanos);
        }
        engine.learned_until_unix_nanos = snapshot.learned_until_unix_nanos;
        Ok(engine)
    }

    /// The collector that feeds this engine: live statistics and the trace buffer. Cheap to
    /// clone and share with the request path; it never blocks.
    pub fn collector(&self) -> Arc<dyn Collector> {
        self.collector.clone()
    }

    /// Whether a cycle at `now_unix_nanos` would detect an anomaly (an endpoint and kind) that
    /// the last cycle did not: a cheap look at the live windows' detection window with the
    /// current baselines, changing nothing. A caller that checks this often (every second, say)
    /// and runs [`run_cycle`](Self::run_cycle) when it is true detects a fault within about a
    /// second of the evidence crossing a threshold, while learning, root cause analysis and
    /// incident upkeep still run once per interval.
    pub fn has_news(&self, now_unix_nanos: u64) -> bool {
        self.analyzer
            .preview_live(&self.live, now_unix_nanos)
            .into_iter()
            .any(|anomaly| {
                !self
                    .last_detected
                    .contains(&(anomaly.endpoint, anomaly.kind))
            })
    }

    /// Runs one analysis cycle at `now_unix_nanos`; see the type's docs for the steps.
    pub fn run_cycle(&mut self, now_unix_nanos: u64) -> CycleReport {
        let now = now_unix_nanos;
        let assessment = self.analyzer.observe_live(&self.live, now);
        let learned_traces = self.learn(&assessment, now);
        let sampled = self.sample_anomalous(&assessment.anomalies);
        let drafts = self.rca.explain(&assessment.anomalies, &sampled);
        let changes = self.incidents.apply(drafts, &assessment, now);
        for change in &changes {
            if let IncidentChange::Resolved { id } = change {
                self.watermark_incident(id, now);
            }
        }
        self.forget_moot_watermarks(now);
        self.last_detected = assessment
            .anomalies
            .iter()
            .map(|anomaly| (anomaly.endpoint.clone(), anomaly.kind))
            .collect();
        CycleReport {
            at_unix_nanos: now,
            window: assessment.window,
            anomalies: assessment.anomalies,
            changes,
            endpoints: assessment.endpoints,
            sampled_traces: sampled.len(),
            learned_traces,
        }
    }

    /// Resolves incident `id` at `now_unix_nanos`: evidence on its endpoints that started
    /// earlier no longer counts, so it cannot re-open or re-create the incident.
    pub fn resolve(&mut self, id: &str, now_unix_nanos: u64) -> Result<Incident, IncidentError> {
        let incident = self.incidents.resolve(id, now_unix_nanos)?.clone();
        self.watermark_incident(id, now_unix_nanos);
        Ok(incident)
    }

    /// The incident book.
    pub fn incidents(&self) -> &IncidentBook {
        &self.incidents
    }

    /// Detection, with its baselines.
    pub fn analyzer(&self) -> &Analyzer {
        &self.analyzer
    }

    /// Root cause analysis, with its self-time baselines.
    pub fn rca(&self) -> &Rca {
        &self.rca
    }

    /// The configuration.
    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// The recent-trace buffer (for its statistics).
    pub fn trace_buffer(&self) -> &TraceBuffer {
        &self.traces
    }

    /// The live per-endpoint statistics.
    pub fn live_windows(&self) -> &LiveWindows {
        &self.live
    }

    /// The learned state, for persistence.
    pub fn snapshot(&self) -> EngineSnapshot {
        let mut watermarks: Vec<EndpointWatermark> = self
            .watermarks
            .iter()
            .map(|(endpoint, &not_before)| EndpointWatermark {
                endpoint: endpoint.clone(),
                not_before_unix_nanos: not_before,
            })
            .collect();
        watermarks.sort_by(|a, b| a.endpoint.cmp(&b.endpoint));
        EngineSnapshot {
            baselines: self.analyzer.baselines(),
            self_time_baselines: self.rca.self_time_baselines(),
            incidents: self.incidents.clone(),
            watermarks,
            learned_until_unix_nanos: self.learned_until_unix_nanos,
        }
    }

    /// The service dependency graph of the buffered traces with a span in `window` (at most
    /// `topology_max_traces` of the most recent).
    pub fn topology(&self, window: TimeWindow) -> DependencyGraph {
        dependency_graph(
            &self
                .traces
                .recent_traces(window, self.config.topology_max_traces),
        )
    }

    /// The spans of trace `trace_id`, if it is still buffered.
    pub fn trace(&self, trace_id: TraceId) -> Option<Vec<Span>> {
        self.traces.trace(trace_id)
    }

    /// Learns self times from settled traces of healthy endpoints; returns how many traces.
    fn learn(&mut self, assessment: &Assessment, now: u64) -> usize {
        let settled_until = now.saturating_sub(self.config.interval_nanos());
        let from = self
            .learned_until_unix_nanos
            .unwrap_or_else(|| now.saturating_sub(self.config.window_nanos()));
        if settled_until <= from {
            return 0;
        }
        let window = TimeWindow::new(from, settled_until);
        self.learned_until_unix_nanos = Some(settled_until);

        let anomalous: HashSet<&EndpointKey> =
            assessment.anomalies.iter().map(|a| &a.endpoint).collect();
        let unhealthy: HashSet<&EndpointKey> = assessment
            .endpoints
            .iter()
            .filter(|e| e.health.status != HealthStatus::Healthy)
            .map(|e| &e.endpoint)
            .chain(anomalous.iter().copied())
            .collect();
        // Endpoints without a trusted self-time baseline come first and get their full share,
        // so a new endpoint is learned within a few cycles; the others share what is left of
        // the cycle's budget evenly. Both take turns from a cursor that moves on by the
        // endpoints visited. The budget is fixed, so a cycle learns as much at any traffic.
        let min_samples = self.config.rca.min_samples_for_baseline;
        let (mut young, mut grown): (Vec<&EndpointKey>, Vec<&EndpointKey>) = assessment
            .endpoints
            .iter()
            .map(|e| &e.endpoint)
            .filter(|endpoint| !unhealthy.contains(endpoint))
            .partition(|endpoint| {
                !self
                    .rca
                    .self_time_baseline(endpoint)
                    .is_some_and(|baseline| baseline.is_ready(min_samples))
            });
        if young.is_empty() && grown.is_empty() {
            return 0;
        }
        let budget = self.config.max_learn_traces;
        let per_endpoint = self.config.learn_traces_per_endpoint;
        let grown_share = per_endpoint.min(budget.div_ceil(grown.len().max(1)).max(1));
        for endpoints in [&mut young, &mut grown] {
            if !endpoints.is_empty() {
                let offset = self.learn_cursor % endpoints.len();
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
            for trace in self.traces.sample_traces(endpoint, window, share.min(room)) {
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
        self.learn_cursor = self.learn_cursor.wrapping_add(visited.max(1));
        self.rca
            .learn(&traces, |endpoint| !unhealthy.contains(endpoint));
        traces.len()
    }

    /// Whole traces of every anomalous endpoint from its anomaly window, after any watermark.
    fn sample_anomalous(&self, anomalies: &[Anomaly]) -> Vec<Vec<Span>> {
        let limit = self.config.rca.max_traces_per_anomaly;
        let mut windows: Vec<(&EndpointKey, TimeWindow)> = Vec::new();
        for anomaly in anomalies {
            let mut window = anomaly.window;
            if let Some(&not_before) = self.watermarks.get(&anomaly.endpoint) {
                window.start_unix_nanos = window.start_unix_nanos.max(not_before);
            }
            match windows.iter_mut().find(|(e, _)| **e == anomaly.endpoint) {
                Some((_, merged)) => {
                    merged.start_unix_nanos = merged.start_unix_nanos.min(window.start_unix_nanos);
                    merged.end_unix_nanos = merged.end_unix_nanos.max(window.end_unix_nanos);
                }
                None => windows.push((&anomaly.endpoint, window)),
            }
        }
        let mut seen = HashSet::default();
        let mut traces = Vec::new();
        for (endpoint, window) in windows {
            for trace in self.traces.sample_traces(endpoint, window, limit) {
                if trace.first().is_some_and(|span| seen.insert(span.trace_id)) {
                    traces.push(trace);
                }
            }
        }
        traces
    }

    fn watermark_incident(&mut self, id: &str, now: u64) {
        let Some(incident) = self.incidents.get(id) else {
            return;
        };
        let mut endpoints = incident.affected_endpoints.clone();
        endpoints.push(incident.root_cause.endpoint_key());
        for endpoint in endpoints {
            self.set_watermark(&endpoint, now);
        }
    }

    fn set_watermark(&mut self, endpoint: &EndpointKey, not_before: u64) {
        self.analyzer.set_watermark(endpoint, not_before);
        let mark = self.watermarks.entry(endpoint.clone()).or_default();
        *mark = (*mark).max(not_before);
    }

    /// Drops engine-side watermarks older than any window still read, keeping the map small.
    /// The analyzer keeps its own copy.
    fn forget_moot_watermarks(&mut self, now: u64) {
        let oldest_read = now.saturating_sub(self.config.retention_nanos());
        self.watermarks
            .retain(|_, &mut not_before| not_before > oldest_read);
    }
}
