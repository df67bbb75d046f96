//! Evidence beside timing: logs, exceptions, versions and attributes (ADR 0011).
//!
//! [`EvidenceDesk`] is the engine's part that takes log records and changes (through
//! [`EvidenceIntake`], the engine's [`LogCollector`](aiops_telemetry_core::LogCollector) and
//! [`ChangeCollector`](aiops_telemetry_core::ChangeCollector)), remembers what spans say beyond
//! timing ([`SpanFacts`]), mines log templates ([`LogPatterns`]), and each cycle writes what it
//! knows onto the active incidents ([`IncidentEvidence`]).

mod config;
mod deploy;
mod facts;
mod insight;
pub(crate) mod intake;
mod routine;
mod types;
mod versions;

use std::collections::VecDeque;
use std::sync::Arc;

use aiops_analyzer::logs::{LogPatternConfig, LogPatternFinding, LogPatterns};
use aiops_analyzer::{Analyzer, Anomaly, LiveWindows};
use aiops_rca::FaultFamily;
use aiops_telemetry_core::{Change, EndpointKey, TimeWindow};

use crate::incident::Incident;
use crate::trace_buffer::TraceBuffer;
use deploy::{DeploymentQuestion, blame};
use facts::Fact;
pub(crate) use facts::SpanFacts;
pub(crate) use intake::{EvidenceIntake, Marking};
use routine::LogFailures;

pub use config::EvidenceConfig;
pub use intake::EvidenceStats;
pub use types::{
    DeploymentCause, IncidentEvidence, Insight, LogPatternEvidence, NewException, ObservedVersion,
    ServiceVersions, VersionShare,
};

/// Changes remembered at most.
const MAX_CHANGES: usize = 2_000;
/// Changes listed per incident at most.
const MAX_INCIDENT_CHANGES: usize = 20;
/// Spans whose ERROR records' templates are remembered, at most.
const MAX_LOG_FAILURES: usize = 100_000;
/// Log patterns listed per incident at most.
const MAX_INCIDENT_PATTERNS: usize = 5;

/// The knobs of the evidence beside timing.
#[derive(Clone, Debug)]
pub(crate) struct DeskConfig {
    pub lookback_nanos: u64,
    pub onset_nanos: u64,
    pub min_requests: u64,
    pub window_nanos: u64,
    pub learning_nanos: u64,
    pub patterns: LogPatternConfig,
}

/// Logs, changes, versions and attributes, and what they say about incidents.
#[derive(Debug)]
pub(crate) struct EvidenceDesk {
    config: DeskConfig,
    intake: Arc<EvidenceIntake>,
    facts: Arc<SpanFacts>,
    patterns: LogPatterns,
    changes: VecDeque<Change>,
    findings: Vec<LogPatternFinding>,
    failures: LogFailures,
    logs_seen: u64,
}

impl EvidenceDesk {
    pub(crate) fn new(
        config: DeskConfig,
        intake: Arc<EvidenceIntake>,
        facts: Arc<SpanFacts>,
    ) -> Self {
        Self {
            patterns: LogPatterns::new(config.patterns.clone()),
            config,
            intake,
            facts,
            changes: VecDeque::new(),
            findings: Vec::new(),
            failures: LogFailures::new(MAX_LOG_FAILURES),
            logs_seen: 0,
        }
    }

    /// Log records taken since the engine started.
    pub(crate) fn logs_seen(&self) -> u64 {
        self.logs_seen
    }

    /// The changes remembered, oldest first.
    pub(crate) fn changes(&self) -> impl Iterator<Item = &Change> {
        self.changes.iter()
    }

    /// What a snapshot keeps: the versions each service was seen running and the changes
    /// remembered, oldest first.
    pub(crate) fn saved(&self) -> (Vec<ServiceVersions>, Vec<Change>) {
        (
            self.facts.saved_versions(),
            self.changes.iter().cloned().collect(),
        )
    }

    /// The versions each service was seen running.
    pub(crate) fn versions(&self) -> Vec<ServiceVersions> {
        self.facts.saved_versions()
    }

    /// Resumes from a snapshot's versions and changes.
    pub(crate) fn restore(&mut self, versions: Vec<ServiceVersions>, mut changes: Vec<Change>) {
        self.facts.restore_versions(versions);
        changes.sort_by(types::by_time);
        let skip = changes.len().saturating_sub(MAX_CHANGES);
        self.changes = changes.into_iter().skip(skip).collect();
    }

    /// Takes what arrived since the last cycle: changes (reported and observed) into the
    /// history, log records into the templates; an ERROR record of a span already buffered
    /// marks it failed there and in the live windows (records that came first were marked on
    /// the span's arrival), and an exception it names is noted on its endpoint.
    pub(crate) fn take(&mut self, traces: &TraceBuffer, live: &LiveWindows, now: u64) {
        let mut arrived = self.intake.take_changes();
        arrived.extend(self.facts.take_observed());
        arrived.sort_by(types::by_time);
        for change in arrived {
            // A deployment both observed here and reported (or observed by a store that
            // watches versions too) is one change: the earliest time is kept.
            if let Some(known) = self.changes.iter_mut().find(|c| same_change(c, &change)) {
                known.time_unix_nanos = known.time_unix_nanos.min(change.time_unix_nanos);
                continue;
            }
            if self.changes.len() >= MAX_CHANGES {
                self.changes.pop_front();
            }
            self.changes.push_back(change);
        }
        let keep_after = now.saturating_sub(self.config.lookback_nanos.saturating_mul(4));
        while self
            .changes
            .front()
            .is_some_and(|c| c.time_unix_nanos < keep_after)
        {
            self.changes.pop_front();
        }

        for key in self.intake.take_failed_by_logs() {
            self.failures.failed_by_logs(key);
        }
        for record in self.intake.take_logs() {
            self.logs_seen += 1;
            let mut operation = None;
            let mut logged_in = None;
            if let (true, Some(trace), Some(span)) =
                (record.severity.is_error(), record.trace_id, record.span_id)
            {
                logged_in = Some((trace, span));
                // The span is buffered (and now counted as failed) or gone: either way the id
                // need not wait for it any more.
                let found = match traces.mark_failed(trace, span) {
                    Some(before) => {
                        live.record_late_failure(&before.endpoint(), before.start_unix_nanos);
                        self.failures.failed_by_logs((trace, span));
                        Some(before.endpoint())
                    }
                    None => traces
                        .trace(trace)
                        .and_then(|spans| spans.into_iter().find(|s| s.span_id == span))
                        .map(|s| s.endpoint()),
                };
                if let (Some(endpoint), Some(kind)) =
                    (&found, record.attribute(intake::EXCEPTION_TYPE))
                {
                    self.facts
                        .note_exception(endpoint, kind, record.time_unix_nanos);
                }
                if found.is_some() {
                    self.intake.failed().forget(trace, span);
                }
                operation = found.map(|e| e.operation);
            }
            let template = self
                .patterns
                .observe(&record, operation.as_ref().map(|o| o.as_str()));
            if let Some(key) = logged_in {
                self.failures.logged(key, template);
            }
        }
        self.findings = self.patterns.assess(now, self.config.window_nanos);
    }

    /// Clears the failure of the spans of `traces` that nothing but ERROR records of routine
    /// templates failed (ADR 0011), so that root causes are explained by the news: the
    /// deepest service whose new or risen error template appears in the traces.
    pub(crate) fn clear_routine_failures(&self, traces: &mut [Vec<aiops_telemetry_core::Span>]) {
        self.failures.clear_routine(&self.patterns, traces);
    }

    /// Error storms and latency spikes of new versions against the old ones serving beside
    /// them, over the two analysis windows ending at `now` (a canary's share of the traffic is
    /// small).
    pub(crate) fn version_anomalies(
        &self,
        now: u64,
        min_error_rate: f64,
        min_increase_ms: f64,
    ) -> Vec<Anomaly> {
        let span = self.config.window_nanos.saturating_mul(2);
        versions::compare(
            &self.facts,
            &versions::Comparison {
                window: TimeWindow::new(now.saturating_sub(span), now),
                min_requests: self.config.min_requests,
                min_error_rate,
                min_increase_ms,
            },
        )
    }

    /// The log-pattern anomalies of the last [`take`](Self::take).
    pub(crate) fn findings(&self) -> &[LogPatternFinding] {
        &self.findings
    }

    /// Writes the evidence onto `incident` (active, updated this cycle when `fresh`): the
    /// changes near its start, and, while fresh, its insights, log patterns, new exceptions and
    /// the deployment to blame (kept once found while the root cause stays in that service).
    pub(crate) fn annotate(
        &self,
        incident: &mut Incident,
        analyzer: &Analyzer,
        now: u64,
        fresh: bool,
    ) {
        let services: Vec<&str> = std::iter::once(incident.root_cause.service.as_str())
            .chain(
                incident
                    .affected_endpoints
                    .iter()
                    .map(|e| e.service.as_str()),
            )
            .collect();
        let start = incident.first_detected_unix_nanos;
        let since = start.saturating_sub(self.config.lookback_nanos);
        let evidence = &mut incident.evidence;
        evidence.changes = self
            .changes
            .iter()
            .filter(|c| c.time_unix_nanos >= since && services.contains(&c.service.as_str()))
            .rev()
            .take(MAX_INCIDENT_CHANGES)
            .cloned()
            .collect();
        evidence.changes.reverse();
        if !fresh {
            return;
        }
        let failures = FaultFamily::of(incident.root_cause.kind) == FaultFamily::Errors;
        let bad = |endpoint: &EndpointKey, fact: &Fact| {
            if failures {
                return fact.error;
            }
            let duration_ms = fact.duration_nanos as f64 / 1e6;
            match analyzer.baseline(endpoint) {
                Some(b) if b.mean_ms > 0.0 => duration_ms > (2.0 * b.mean_ms).max(b.mean_ms + 20.0),
                _ => false,
            }
        };
        let window = TimeWindow::new(now.saturating_sub(self.config.window_nanos), now);
        // The root endpoint's own requests first: its callers' spans carry their own
        // attributes, which would dilute what the failing service's spans share.
        let root = [incident.root_cause.endpoint_key()];
        let endpoints: Vec<EndpointKey> = incident.affected_endpoints.clone();
        let mut found = insight::insights(&self.facts, &root, window, &bad, failures);
        if found.is_empty() {
            found = insight::insights(&self.facts, &endpoints, window, &bad, failures);
        }
        if !found.is_empty() {
            evidence.insights = found;
        }

        let patterns: Vec<LogPatternEvidence> = self
            .findings
            .iter()
            .filter(|f| services.contains(&f.anomaly.endpoint.service.as_str()))
            .take(MAX_INCIDENT_PATTERNS)
            .map(|f| LogPatternEvidence {
                service: f.anomaly.endpoint.service.to_string(),
                operation: f.anomaly.endpoint.operation.to_string(),
                template: f.template.clone(),
                examples: f.examples.clone(),
                count: f.anomaly.sample_count,
                new: f.new,
                error: f.error,
            })
            .collect();
        for pattern in patterns {
            let known = evidence
                .log_patterns
                .iter()
                .position(|p| p.service == pattern.service && p.template == pattern.template);
            match known {
                Some(at) => evidence.log_patterns[at] = pattern,
                None if evidence.log_patterns.len() < MAX_INCIDENT_PATTERNS => {
                    evidence.log_patterns.push(pattern);
                }
                None => {}
            }
        }

        let learning = self.config.learning_nanos;
        for endpoint in &endpoints {
            for seen in self
                .facts
                .exceptions_since(endpoint, |first| first.saturating_add(learning))
            {
                let known = evidence.new_exceptions.iter_mut().find(|e| {
                    e.exception_type == seen.exception_type
                        && e.service == endpoint.service.as_str()
                        && e.operation == endpoint.operation.as_str()
                });
                match known {
                    Some(known) => known.count = seen.count,
                    None => evidence.new_exceptions.push(NewException {
                        description: format!(
                            "new exception {} in {} {}",
                            seen.exception_type, endpoint.service, endpoint.operation
                        ),
                        service: endpoint.service.to_string(),
                        operation: endpoint.operation.to_string(),
                        exception_type: seen.exception_type,
                        first_seen_unix_nanos: seen.first_seen,
                        count: seen.count,
                    }),
                }
            }
        }

        let service = incident.root_cause.service.as_str();
        if evidence
            .deployment
            .as_ref()
            .is_some_and(|d| d.service != service)
        {
            evidence.deployment = None;
        }
        if evidence.deployment.is_none() {
            let changes: Vec<Change> = self.changes.iter().cloned().collect();
            evidence.deployment = blame(
                &DeploymentQuestion {
                    service,
                    detected_unix_nanos: start,
                    now_unix_nanos: now,
                    lookback_nanos: self.config.lookback_nanos,
                    onset_nanos: self.config.onset_nanos,
                    min_requests: self.config.min_requests,
                    bad: &bad,
                    failures,
                },
                &changes,
                &self.facts,
            );
        }
    }

    pub(crate) fn stats(&self) -> EvidenceStats {
        self.intake.stats()
    }
}

/// True when `a` and `b` tell of the same change the same way: the same service, kind, source
/// and version (and description, for changes without a version).
fn same_change(a: &Change, b: &Change) -> bool {
    a.service == b.service
        && a.kind == b.kind
        && a.source == b.source
        && a.version == b.version
        && a.description == b.description
        && (a.version.is_some() || a.time_unix_nanos == b.time_unix_nanos)
}
