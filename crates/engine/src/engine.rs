//! [`Engine`]: one analysis cycle, exactly as the server, the replay command and the accuracy
//! benchmarks run it.

use foldhash::HashSet;
use std::sync::Arc;

use aiops_analyzer::logs::LogPatternConfig;
use aiops_analyzer::{Analyzer, Anomaly, AnomalyKind, EndpointWatermarks, LiveWindows};
use aiops_rca::{Rca, TraceGraph};
use aiops_telemetry_core::{
    ChangeCollector, Collector, EndpointKey, Fanout, LogCollector, Span, TimeWindow,
};

use crate::calls::CallPatterns;
use crate::config::{EngineConfig, EngineConfigError};
use crate::evidence::{
    DeskConfig, EvidenceDesk, EvidenceIntake, EvidenceStats, Marking, ServiceVersions, SpanFacts,
};
use crate::incident::{Incident, IncidentBook, IncidentChange, IncidentError};
use crate::keying::PeerKeyed;
use crate::learn::{Learning, unhealthy};
use crate::reader::EngineReader;
use crate::report::{CycleReport, EndpointWatermark, EngineSnapshot};
use crate::shift::ShiftMonitor;
use crate::trace_buffer::TraceBuffer;
use crate::watermarks::Watermarks;

/// One analysis cycle as the server, the replay command and the accuracy benchmark all run it.
///
/// The engine owns the live per-endpoint statistics ([`LiveWindows`]), the recent traces
/// ([`TraceBuffer`]), detection ([`Analyzer`]), root cause analysis ([`Rca`]) and the incident
/// lifecycle ([`IncidentBook`]). Spans go in through [`collector`](Self::collector); each
/// [`run_cycle`](Self::run_cycle) then:
///
/// 1. evicts live buckets older than the window plus an interval, then detects on the window
///    ending at `now` (the analyzer learns baselines from the traffic of endpoints that are not
///    anomalous, and ignores evidence before resolution watermarks), and adds what earlier
///    cycles' traces showed: shifts of an endpoint's own time and dropped calls
///    (`trace_detection`);
/// 2. learns normal self times from a small sample of settled traces of healthy endpoints
///    (those that started between the previous learning point and `trace_settle_secs` ago,
///    at least one interval, so that their deepest spans have arrived), and hands the same
///    traces to the shift detector; counts the calls in the settled traces of the call census
///    (about `call_census_traces` a cycle, chosen by a hash of their id) for the call-pattern
///    detector;
/// 3. samples traces of every anomalous endpoint from its anomaly window (after any
///    watermark), and lets RCA explain the anomalies as incident drafts;
/// 4. folds the drafts into the incident book (dedupe, symptoms, revision, service-level
///    merges, watermark, auto-resolve), and sets a watermark on every endpoint of every
///    incident resolved.
///
/// Every step reads a bounded amount of data (buckets of the window per endpoint, a capped
/// number of traces), so a cycle costs about the same whatever the total span count.
///
/// The engine never reads the clock: `now` is an argument, so the same code runs on the wall
/// clock, a replayed file's clock or a virtual one. One owner drives it (the server keeps it in
/// its analysis task); [`collector`](Self::collector) is shared with the request path and
/// [`reader`](Self::reader) with whoever reads traces and topology, neither waiting for a
/// cycle.
///
/// # Example
///
/// A checkout service calls a payment service. After a minute of healthy cycles, payment's
/// own work slows down by a second; the incident names payment as its root cause and checkout
/// as affected, although checkout's latency rose just as much.
///
/// ```
/// use aiops_engine::{Engine, EngineConfig};
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
/// # Ok::<(), aiops_engine::EngineConfigError>(())
/// ```
#[derive(Debug)]
pub struct Engine {
    config: EngineConfig,
    live: Arc<LiveWindows>,
    traces: Arc<TraceBuffer>,
    collector: Arc<Marking<PeerKeyed>>,
    intake: Arc<EvidenceIntake>,
    desk: EvidenceDesk,
    analyzer: Analyzer,
    rca: Rca,
    incidents: IncidentBook,
    watermarks: Watermarks,
    learning: Learning,
    shifts: ShiftMonitor,
    calls: CallPatterns,
    /// What the last cycle detected, so that [`has_news`](Self::has_news) reports only what is
    /// new since.
    last_detected: HashSet<(EndpointKey, AnomalyKind)>,
}

impl Engine {
    /// An engine with nothing learned yet. Fails when `config` does not validate.
    pub fn new(config: EngineConfig) -> Result<Self, EngineConfigError> {
        config.validate()?;
        let analyzer = Analyzer::new(config.analyzer.clone())?;
        let rca = Rca::new(config.rca.clone(), &config.analyzer);
        let mut incidents = IncidentBook::new(config.auto_resolve_cycles)
            .with_max_resolved(config.max_resolved_incidents);
        incidents.set_damping(config.damping());
        let live = Arc::new(LiveWindows::new(
            config.bucket_nanos(),
            config.retention_nanos(),
        ));
        let traces = Arc::new(TraceBuffer::with_traces_per_endpoint(
            config.trace_buffer_max_spans,
            config.traces_per_endpoint,
        ));
        let evidence = &config.evidence;
        let intake = Arc::new(EvidenceIntake::new(
            evidence.max_queued_logs,
            MAX_QUEUED_CHANGES,
            MAX_FAILED_SPANS,
        ));
        let facts = Arc::new(SpanFacts::new(
            evidence.recent_spans_per_endpoint,
            MAX_FACT_ENDPOINTS,
        ));
        let collector = Arc::new(Marking::new(
            PeerKeyed::new(Fanout::new(vec![
                live.clone() as Arc<dyn Collector>,
                traces.clone() as Arc<dyn Collector>,
                facts.clone() as Arc<dyn Collector>,
            ])),
            intake.clone(),
        ));
        let desk = EvidenceDesk::new(
            DeskConfig {
                lookback_nanos: secs(evidence.deployment_lookback_secs),
                onset_nanos: secs(evidence.deployment_onset_secs),
                min_requests: evidence.deployment_min_requests,
                window_nanos: config.window_nanos(),
                learning_nanos: secs(evidence.log_learning_secs),
                patterns: LogPatternConfig {
                    max_templates_per_service: evidence.log_templates_per_service,
                    learning_secs: evidence.log_learning_secs as u64,
                    ..LogPatternConfig::default()
                },
            },
            intake.clone(),
            facts,
        );
        Ok(Self {
            config,
            live,
            traces,
            collector,
            intake,
            desk,
            analyzer,
            rca,
            incidents,
            watermarks: Watermarks::default(),
            learning: Learning::default(),
            shifts: ShiftMonitor::default(),
            calls: CallPatterns::default(),
            last_detected: HashSet::default(),
        })
    }

    /// An engine that resumes from `snapshot` under `config` (the configuration wins over the
    /// knobs saved in the snapshot).
    pub fn restore(
        config: EngineConfig,
        snapshot: EngineSnapshot,
    ) -> Result<Self, EngineConfigError> {
        let mut engine = Self::new(config)?;
        let config = &engine.config;
        engine.analyzer = Analyzer::with_baselines(config.analyzer.clone(), snapshot.baselines)?;
        engine.rca = Rca::with_baselines(
            config.rca.clone(),
            &config.analyzer,
            snapshot.self_time_baselines,
        );
        engine.incidents = snapshot
            .incidents
            .with_max_resolved(config.max_resolved_incidents);
        engine
            .incidents
            .set_auto_resolve_cycles(config.auto_resolve_cycles);
        engine.incidents.set_damping(config.damping());
        let legacy = engine.incidents.take_legacy_watermarks();
        engine
            .watermarks
            .restore_causes(legacy.into_iter().chain(snapshot.cause_watermarks));
        for watermark in snapshot.watermarks {
            engine
                .watermarks
                .raise_endpoint(&watermark.endpoint, watermark.not_before_unix_nanos);
        }
        engine.learning = Learning::resume(snapshot.learned_until_unix_nanos);
        engine.desk.restore(snapshot.versions, snapshot.changes);
        Ok(engine)
    }

    /// The collector that feeds this engine: live statistics and the trace buffer. Cheap to
    /// clone and share with the request path; it never blocks.
    pub fn collector(&self) -> Arc<dyn Collector> {
        self.collector.clone()
    }

    /// The log collector that feeds this engine: ERROR records of a span make it count as
    /// failed (whether they come before or after it), and every record is mined into its
    /// service's log templates at the next cycle. Never blocks: records beyond
    /// `evidence.max_queued_logs` waiting for a cycle are dropped and counted
    /// ([`evidence_stats`](Self::evidence_stats)).
    pub fn log_collector(&self) -> Arc<dyn LogCollector> {
        self.intake.clone()
    }

    /// The change collector that feeds this engine: deployments, configuration changes and
    /// feature flags reported from outside, listed on incidents near them and weighed as root
    /// causes. Deployments are also observed in the spans themselves (a new `service.version`).
    /// Never blocks.
    pub fn change_collector(&self) -> Arc<dyn ChangeCollector> {
        self.intake.clone()
    }

    /// What the log and change intake dropped and holds.
    pub fn evidence_stats(&self) -> EvidenceStats {
        self.desk.stats()
    }

    /// Log records the cycles have taken since the engine started.
    pub fn logs_seen(&self) -> u64 {
        self.desk.logs_seen()
    }

    /// The changes the engine remembers (reported and observed), oldest first.
    pub fn changes(&self) -> Vec<aiops_telemetry_core::Change> {
        self.desk.changes().cloned().collect()
    }

    /// A handle that reads buffered traces, the topology and the live windows' counters
    /// concurrently with the cycle (each read takes the buffer's short lock, never the
    /// engine's). Cheap to clone and share.
    pub fn reader(&self) -> EngineReader {
        EngineReader::new(
            self.traces.clone(),
            self.live.clone(),
            self.config.topology_max_traces,
        )
    }

    /// Whether a cycle at `now_unix_nanos` would detect an anomaly (an endpoint and kind) that
    /// the last cycle did not: a cheap look at the live windows' detection window with the
    /// current baselines, changing nothing. A caller that checks this often (every second, say)
    /// and runs [`run_cycle`](Self::run_cycle) when it is true detects a fault within about a
    /// second of the evidence crossing a threshold, while learning, root cause analysis and
    /// incident upkeep still run once per interval.
    pub fn has_news(&self, now_unix_nanos: u64) -> bool {
        self.analyzer
            .preview_live(&self.live, now_unix_nanos, self.watermarks.endpoints())
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
        // Logs first: an ERROR record of a span already counted makes it count as failed.
        self.desk.take(&self.traces, &self.live, now);
        let mut assessment =
            self.analyzer
                .observe_live(&self.live, now, self.watermarks.endpoints());
        let by_version = self.desk.version_anomalies(
            now,
            self.config.analyzer.error_rate_threshold,
            self.config.analyzer.min_latency_increase_ms,
        );
        add_trace_findings(
            &mut assessment.anomalies,
            by_version,
            self.watermarks.endpoints(),
        );
        if self.config.trace_detection {
            let mut found = self.shifts.detect(&self.rca, self.config.shift_rule(), now);
            found.extend(self.calls.detect(self.config.call_rule(), now));
            add_trace_findings(
                &mut assessment.anomalies,
                found,
                self.watermarks.endpoints(),
            );
        }
        let sample = self
            .learning
            .sample(&self.rca, &self.traces, &self.config, &assessment, now);
        // One graph per learned trace serves learning and the shift test; the watched
        // endpoints' extra traces serve only those endpoints' shift tests.
        let graphs: Vec<TraceGraph<'_>> = sample
            .traces
            .iter()
            .map(|trace| TraceGraph::build(trace))
            .collect();
        let (learned, watched) = graphs.split_at(sample.learned);
        let is_watched = |span: &Span| self.learning.watched().contains(&span.endpoint());
        let unhealthy = unhealthy(&assessment);
        let healthy = |endpoint: &EndpointKey| !unhealthy.contains(endpoint);
        // Own times rising past their usual p95 are not learned until they are judged.
        let rising = if self.config.trace_detection {
            self.shifts.observe(learned, |_| true);
            self.shifts.observe(watched, is_watched);
            self.shifts
                .rising(&self.rca, self.config.analyzer.min_samples_for_baseline)
        } else {
            Default::default()
        };
        self.rca.learn_graphs(learned, |endpoint| {
            healthy(endpoint) && !rising.contains(endpoint)
        });
        if self.config.trace_detection {
            // The call census, not the learned traces, teaches and tests call patterns: the
            // learned ones are chosen per endpoint, so they overstate the calls towards it.
            if self.config.call_census_traces > 0 {
                let census = self.traces.census(
                    now.saturating_sub(self.config.settle_nanos()),
                    self.config.call_census_traces,
                    &self.calls.watched(),
                );
                self.calls.record(census, healthy);
            }
            // A rising own time is read in full from the next cycle on.
            self.learning.watch(rising);
        }
        let learned_traces = sample.learned;
        let (mut sampled, settled) = self.sample_anomalous(&assessment.anomalies, now);
        self.desk.clear_routine_failures(&mut sampled);
        let drafts = self
            .rca
            .explain_settled(&assessment.anomalies, &sampled, settled);
        let changes = self
            .incidents
            .apply(drafts, &assessment, now, &mut self.watermarks);
        let fresh: HashSet<&str> = changes
            .iter()
            .filter(|c| !matches!(c, IncidentChange::Resolved { .. }))
            .map(IncidentChange::id)
            .collect();
        for incident in self.incidents.active_mut() {
            let is_fresh = fresh.contains(incident.id.as_str());
            self.desk.annotate(incident, &self.analyzer, now, is_fresh);
        }
        let mut anomalies = assessment.anomalies.clone();
        anomalies.extend(self.desk.findings().iter().map(|f| f.anomaly.clone()));
        // Endpoint marks older than any window still read clip nothing any more.
        self.watermarks
            .forget_endpoints_until(now.saturating_sub(self.config.retention_nanos()));
        self.last_detected = assessment
            .anomalies
            .iter()
            .map(|anomaly| (anomaly.endpoint.clone(), anomaly.kind))
            .collect();
        CycleReport {
            at_unix_nanos: now,
            window: assessment.window,
            anomalies,
            changes,
            endpoints: assessment.endpoints,
            sampled_traces: sampled.len(),
            learned_traces,
        }
    }

    /// Resolves incident `id` at `now_unix_nanos`: evidence on its endpoints that started
    /// earlier no longer counts, so it cannot re-open or re-create the incident.
    pub fn resolve(&mut self, id: &str, now_unix_nanos: u64) -> Result<Incident, IncidentError> {
        Ok(self
            .incidents
            .resolve(id, now_unix_nanos, &mut self.watermarks)?
            .clone())
    }

    /// The incident book.
    pub fn incidents(&self) -> &IncidentBook {
        &self.incidents
    }

    /// The configuration.
    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// The learned state, for persistence.
    pub fn snapshot(&self) -> EngineSnapshot {
        let mut watermarks: Vec<EndpointWatermark> = self
            .watermarks
            .endpoints()
            .iter()
            .map(|(endpoint, not_before)| EndpointWatermark {
                endpoint: endpoint.clone(),
                not_before_unix_nanos: not_before,
            })
            .collect();
        watermarks.sort_by(|a, b| a.endpoint.cmp(&b.endpoint));
        let (versions, changes) = self.desk.saved();
        EngineSnapshot {
            baselines: self.analyzer.baselines(),
            self_time_baselines: self.rca.self_time_baselines(),
            incidents: self.incidents.clone(),
            watermarks,
            cause_watermarks: self.watermarks.causes().to_vec(),
            learned_until_unix_nanos: self.learning.learned_until(),
            versions,
            changes,
        }
    }

    /// The versions each service was seen running, by service, oldest first.
    pub fn versions(&self) -> Vec<ServiceVersions> {
        self.desk.versions()
    }

    /// What detection has learned: the baseline of `endpoint`, if it has one.
    pub fn baseline(&self, endpoint: &EndpointKey) -> Option<&aiops_analyzer::Baseline> {
        self.analyzer.baseline(endpoint)
    }

    /// Whole traces of every anomalous endpoint from its anomaly window, after any watermark,
    /// and how many of them come first as settled. Of each endpoint's budget, up to half goes
    /// to the newest traces that began at least the settle time before `now` (complete: their
    /// deepest spans and the logs that fail spans have arrived), the rest to the newest ones:
    /// RCA explains by the settled traces when enough of them show the anomaly, and by all
    /// when it began too recently for that.
    fn sample_anomalous(&self, anomalies: &[Anomaly], now: u64) -> (Vec<Vec<Span>>, usize) {
        let limit = self.config.rca.max_traces_per_anomaly;
        let mut windows: Vec<(&EndpointKey, TimeWindow)> = Vec::new();
        for anomaly in anomalies {
            let mut window = anomaly.window;
            if let Some(not_before) = self.watermarks.endpoints().get(&anomaly.endpoint) {
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
        let settled_until = now.saturating_sub(self.config.settle_nanos());
        let mut seen = HashSet::default();
        let mut traces = Vec::new();
        let mut taken = vec![0; windows.len()];
        for (taken, (endpoint, window)) in taken.iter_mut().zip(&windows) {
            if window.start_unix_nanos >= settled_until {
                continue;
            }
            let old = TimeWindow::new(
                window.start_unix_nanos,
                window.end_unix_nanos.min(settled_until),
            );
            for trace in self.traces.sample_traces(endpoint, old, limit / 2) {
                if trace.first().is_some_and(|span| seen.insert(span.trace_id)) {
                    traces.push(trace);
                    *taken += 1;
                }
            }
        }
        let settled = traces.len();
        for (taken, (endpoint, window)) in taken.iter().zip(windows) {
            let room = limit.saturating_sub(*taken);
            for trace in self.traces.sample_traces(endpoint, window, room) {
                if trace.first().is_some_and(|span| seen.insert(span.trace_id)) {
                    traces.push(trace);
                }
            }
        }
        (traces, settled)
    }
}

/// Changes waiting for a cycle at most.
const MAX_QUEUED_CHANGES: usize = 10_000;
/// Spans named by ERROR logs remembered until they arrive, at most.
const MAX_FAILED_SPANS: usize = 100_000;
/// Endpoints whose recent requests and attributes are remembered, at most.
const MAX_FACT_ENDPOINTS: usize = 2_000;

fn secs(seconds: f64) -> u64 {
    (seconds.max(0.0) * 1e9) as u64
}

/// Adds what the traces showed (self-time shifts, dropped calls) to a cycle's anomalies:
/// those of endpoints without an anomaly of the same family from the live windows (which says
/// more), and none whose evidence predates a resolution watermark (the window would hold the
/// resolved fault).
fn add_trace_findings(
    anomalies: &mut Vec<Anomaly>,
    found: Vec<Anomaly>,
    marks: &EndpointWatermarks,
) {
    for finding in found {
        let known = anomalies.iter().any(|a| {
            a.endpoint == finding.endpoint && a.kind.is_slowness() == finding.kind.is_slowness()
        });
        let resolved_within = marks
            .get(&finding.endpoint)
            .is_some_and(|mark| mark > finding.window.start_unix_nanos);
        if !known && !resolved_within {
            anomalies.push(finding);
        }
    }
}
