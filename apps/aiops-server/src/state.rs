//! The state every request handler shares: one struct, registered once as `web::Data`.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use aiops_analyzer::Config as AnalyzerConfig;
use aiops_chaos::Chaos;
use aiops_engine::EngineReader;
use aiops_storage_sqlite::{SpanWriter, Store};
use aiops_telemetry_core::otlp::KeptAttributes;
use aiops_telemetry_core::{Collector, RecordOutcome, Span};

use crate::actor::AnalysisHandle;
use crate::config::IngestLimits;
use crate::notify::Notifier;
use crate::pipeline::changes::ChangeListeners;
use crate::pipeline::counters::SpanCounters;
use crate::pipeline::logs::LogPipeline;
use crate::pipeline::refusals::IngestRefusals;
use crate::pipeline::span_batch::SpanBatcher;
use crate::pipeline::span_metrics::SpanMetrics;
use crate::pipeline::stats::PipelineStats;
use crate::views::format::EndpointNaming;

/// Settings the HTTP layer reads on every request.
#[derive(Clone)]
pub struct Settings {
    /// When set, mutating API routes need `Authorization: Bearer <token>`.
    pub api_token: Option<String>,
    /// Largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    /// Size limits of OTLP ingest (`POST /v1/traces`, `POST /v1/logs`).
    pub ingest: IngestLimits,
    /// The attributes OTLP spans keep.
    pub span_attributes: Arc<KeptAttributes>,
    /// Whether demo-shop requests are recorded as spans.
    pub telemetry_enabled: bool,
    /// How long `/checkout` waits for its dependencies.
    pub checkout_timeout: Duration,
    /// How long a request hangs under `/simulate/timeout` when no duration is given.
    pub default_hang: Duration,
    /// The detection window, used by the topology view.
    pub analysis_window: Duration,
    /// How often analysis cycles run, for readiness.
    pub analysis_interval: Duration,
    /// The detection knobs, for the views that judge baselines.
    pub analyzer: AnalyzerConfig,
    /// How views name endpoints.
    pub endpoint_naming: EndpointNaming,
    /// When chaos injection is off, what switched it off, for the 403 of `/simulate/*`.
    pub chaos_off: String,
}

impl fmt::Debug for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Settings")
            .field("api_token", &self.api_token.as_ref().map(|_| "<redacted>"))
            .field("max_body_bytes", &self.max_body_bytes)
            .field("ingest", &self.ingest)
            .field("span_attributes", &self.span_attributes)
            .field("telemetry_enabled", &self.telemetry_enabled)
            .field("checkout_timeout", &self.checkout_timeout)
            .field("default_hang", &self.default_hang)
            .field("analysis_window", &self.analysis_window)
            .field("analysis_interval", &self.analysis_interval)
            .field("analyzer", &self.analyzer)
            .field("endpoint_naming", &self.endpoint_naming)
            .field("chaos_off", &self.chaos_off)
            .finish()
    }
}

/// Everything handlers need; cheap to share (`web::Data` wraps it in an `Arc`).
pub struct AppState {
    /// Per-request settings.
    pub settings: Settings,
    /// Fault injection rules for the demo shop.
    pub chaos: Arc<Chaos>,
    /// Where spans go: the store's writer first, then [`live`](Self::live).
    pub collector: Arc<dyn Collector>,
    /// The request metrics, then the engine's live windows and trace buffer: everything but
    /// storage, which [`admit_spans`](Self::admit_spans) asks for room first.
    pub live: Arc<dyn Collector>,
    /// OTLP trace requests refused, by reason.
    pub refusals: Arc<IngestRefusals>,
    /// OTLP log requests refused, by reason.
    pub log_refusals: Arc<IngestRefusals>,
    /// Where log records go: the store's log writer, then the listeners.
    pub logs: Arc<LogPipeline>,
    /// Where changes go besides the store.
    pub change_listeners: ChangeListeners,
    /// Spans accepted (the writer counts those it dropped).
    pub counters: Arc<SpanCounters>,
    /// The shop's request spans on their way to `collector`, batched per worker thread.
    pub request_spans: Arc<SpanBatcher>,
    /// Per-endpoint request metrics for `GET /metrics`, counted as spans pass the collector.
    pub span_metrics: Arc<SpanMetrics>,
    /// The analysis actor: the incidents, the latest cycle, running a cycle now.
    pub analysis: AnalysisHandle,
    /// The incident desk: notes, silences, timelines and notifications.
    pub notifier: Notifier,
    /// What the engine buffers (recent traces, the topology), read without the actor.
    pub engine: EngineReader,
    /// The database, for trace look-ups that the in-memory buffer no longer holds.
    pub store: Store,
    /// The store's span writer, for its queue statistics.
    pub writer: Arc<SpanWriter>,
    /// When the server started, in Unix nanoseconds.
    pub started_unix_nanos: u64,
}

impl AppState {
    /// Records finished spans without waiting for storage, counting what was dropped.
    pub fn record_spans(&self, spans: Vec<Span>) -> RecordOutcome {
        let outcome = self.collector.record_batch(spans);
        self.counters.add(outcome);
        outcome
    }

    /// Records a batch someone will be told was accepted (OTLP ingest): all of it, or none
    /// when the storage queue has no room for all of it now, so that the sender's retry
    /// delivers it and nothing acknowledged is lost. A batch larger than the whole queue is
    /// taken once the queue is at most half full.
    pub fn admit_spans(&self, spans: Vec<Span>) -> Result<RecordOutcome, QueueFull> {
        let Some(admission) = self.writer.admit(spans.len()) else {
            let stats = self.writer.stats();
            return Err(QueueFull {
                queued: stats.queued,
                capacity: self.writer.capacity(),
                writer_blocked: stats.blocked,
            });
        };
        let _ = self.live.record_borrowed(&spans);
        let outcome = admission.record(spans);
        self.counters.add(outcome);
        Ok(outcome)
    }

    /// The span pipeline's counts, read now.
    pub fn pipeline_stats(&self) -> PipelineStats {
        PipelineStats::read(&self.counters, &self.writer)
    }

    /// Whether the shop's requests become spans.
    pub fn telemetry_enabled(&self) -> bool {
        self.settings.telemetry_enabled
    }
}

/// The storage queue could not take a whole batch: nothing of it was recorded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueueFull {
    /// Spans waiting for the writer.
    pub queued: usize,
    /// The most that may wait.
    pub capacity: usize,
    /// Whether the writer waits for another process to release the database.
    pub writer_blocked: bool,
}

impl QueueFull {
    /// How long a sender should wait before retrying: the writer commits a full queue in
    /// well under a second, unless the database is held by another process.
    pub fn retry_after_seconds(&self) -> u64 {
        if self.writer_blocked { 5 } else { 1 }
    }
}

impl fmt::Debug for AppState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AppState")
            .field("settings", &self.settings)
            .field("chaos", &self.chaos)
            .field("counters", &self.counters)
            .finish_non_exhaustive()
    }
}
