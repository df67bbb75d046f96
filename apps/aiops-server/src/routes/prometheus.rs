//! `GET /metrics`: the engine and what it watches, in the Prometheus text format.
//!
//! Every scrape gathers a [`Scrape`] (per-endpoint request series counted from spans, ingest
//! and queue counters, and what the analysis actor knows: cycles, incidents, baselines) and
//! encodes it with `prometheus-client`. Nothing is computed per request beyond the span
//! counters of [`SpanMetrics`](crate::pipeline::span_metrics::SpanMetrics); the rest is read when
//! Prometheus asks. Names follow `aiops_<name>_<unit>[_total]`.

use actix_web::{HttpResponse, ResponseError, web};
use aiops_analyzer::Severity;
use aiops_engine::IncidentStatus;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, NoLabelSet, prometheus_text};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::{Registry, Unit};

use super::resource::Resources;
use crate::actor::AnalysisStopped;
use crate::api_error::ApiError;
use crate::notify::ReceiverStats;
use crate::pipeline::logs::LogStats;
use crate::pipeline::refusals::RefusalReason;
use crate::pipeline::settle::settle_spans;
use crate::pipeline::span_metrics::{EndpointSnapshot, HistogramSnapshot, fits_label};
use crate::pipeline::stats::PipelineStats;
use crate::process_stats::{self, ProcessStats};
use crate::state::AppState;

mod logs;

/// The route.
pub const PATH: &str = "/metrics";

/// Registers `GET /metrics`.
pub fn configure(config: &mut web::ServiceConfig, resources: &mut Resources<'_>) {
    config.service(
        resources
            .get(PATH, metrics)
            .wrap(actix_web::middleware::from_fn(settle_spans)),
    );
}

/// `GET /metrics`: the Prometheus text exposition (format 0.0.4).
#[utoipa::path(
    get,
    path = "/metrics",
    operation_id = "getPrometheusMetrics",
    tag = "operations",
    responses((status = 200, description = "Prometheus text format 0.0.4", content_type = "text/plain"))
)]
pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    let scrape = Scrape::gather(&state).await;
    match scrape.encode() {
        Ok(text) => HttpResponse::Ok()
            .content_type(prometheus_text::CONTENT_TYPE)
            .body(text),
        Err(_) => ApiError::internal("metrics: could not encode the exposition").error_response(),
    }
}

/// What the analysis actor contributes to a scrape.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AnalysisSnapshot {
    /// Cycles run since start.
    pub cycles: u64,
    /// Of those, cycles run ahead of the interval (new anomaly evidence).
    pub early_cycles: u64,
    /// How long cycles took.
    pub cycle_duration: HistogramSnapshot,
    /// Spans left out of live detection because their endpoint was new while the live
    /// windows tracked as many endpoints as they may.
    pub untracked_spans: u64,
    /// Active incidents per severity, every severity present.
    pub active_incidents: Vec<(Severity, u64)>,
    /// One entry per learned baseline.
    pub baselines: Vec<BaselineGauges>,
}

impl AnalysisSnapshot {
    /// Asks the analysis actor; fails when it has stopped.
    async fn gather(state: &AppState) -> Result<Self, AnalysisStopped> {
        let status = state.analysis.status().await?;
        let active = state
            .analysis
            .incidents(Some(IncidentStatus::Active))
            .await?;
        let baselines = state.analysis.baselines().await?;
        let severities = [
            Severity::Low,
            Severity::Medium,
            Severity::High,
            Severity::Critical,
        ];
        Ok(Self {
            cycles: status.cycles,
            early_cycles: status.early_cycles,
            cycle_duration: status.cycle_duration,
            untracked_spans: state.engine.untracked_spans(),
            active_incidents: severities
                .into_iter()
                .map(|severity| {
                    let count = active
                        .iter()
                        .filter(|incident| incident.severity == severity)
                        .count();
                    (severity, count as u64)
                })
                .collect(),
            baselines: baselines
                .into_iter()
                .map(|baseline| BaselineGauges {
                    service: baseline.endpoint.service.into(),
                    endpoint: baseline.endpoint.operation.into(),
                    mean_seconds: baseline.mean_ms / 1e3,
                    p95_seconds: baseline.p95_ms / 1e3,
                    error_ratio: baseline.error_rate,
                    samples: baseline.sample_count,
                })
                .collect(),
        })
    }
}

/// One endpoint's baseline, as gauges.
#[derive(Clone, Debug, PartialEq)]
pub struct BaselineGauges {
    /// The `service` label.
    pub service: String,
    /// The `endpoint` label.
    pub endpoint: String,
    /// Mean latency, seconds.
    pub mean_seconds: f64,
    /// 95th percentile latency, seconds.
    pub p95_seconds: f64,
    /// Share of requests that fail.
    pub error_ratio: f64,
    /// Requests learned from.
    pub samples: u64,
}

/// Everything one scrape shows, read once and then encoded.
#[derive(Clone, Debug, Default)]
pub struct Scrape {
    /// Per-endpoint request series.
    pub endpoints: Vec<EndpointSnapshot>,
    /// The span pipeline's counts: ingested, dropped, queued, written, failed, the queue's
    /// bound.
    pub pipeline: PipelineStats,
    /// OTLP spans refused as unusable (partial success).
    pub spans_rejected: u64,
    /// OTLP requests refused as a whole, per reason.
    pub refusals: Vec<(RefusalReason, u64)>,
    /// Spans counted under the `_other` request series.
    pub folded_spans: u64,
    /// The analysis actor's part; `None` when it did not answer (shutting down).
    pub analysis: Option<AnalysisSnapshot>,
    /// The process's memory, CPU time and descriptors.
    pub process: ProcessStats,
    /// When the server started, Unix nanoseconds.
    pub started_unix_nanos: u64,
    /// Each notification receiver's counters.
    pub receivers: Vec<ReceiverStats>,
    /// Incident changes the desk could not take in time.
    pub incident_updates_dropped: u64,
    /// The log pipeline's counts.
    pub logs: LogStats,
    /// OTLP log requests refused as a whole, per reason.
    pub log_refusals: Vec<(RefusalReason, u64)>,
}

impl Scrape {
    /// Reads every source once.
    pub async fn gather(state: &AppState) -> Self {
        Self {
            endpoints: state.span_metrics.snapshot(),
            pipeline: state.pipeline_stats(),
            spans_rejected: state.span_metrics.rejected(),
            refusals: state.refusals.snapshot(),
            folded_spans: state.span_metrics.folded(),
            analysis: AnalysisSnapshot::gather(state).await.ok(),
            process: ProcessStats::read(),
            started_unix_nanos: state.started_unix_nanos,
            receivers: state.notifier.receiver_stats(),
            incident_updates_dropped: state.notifier.updates_dropped(),
            logs: state.logs.stats(),
            log_refusals: state.log_refusals.snapshot(),
        }
    }

    /// The Prometheus text exposition.
    pub fn encode(self) -> Result<String, std::fmt::Error> {
        let mut registry = Registry::default();
        registry.register_collector(Box::new(self));
        let mut text = String::new();
        prometheus_text::encode(&mut text, &registry)?;
        Ok(text)
    }
}

type Labels<'a> = [(&'static str, &'a str); 2];

fn endpoint_labels<'a>(service: &'a str, endpoint: &'a str) -> Labels<'a> {
    [("service", service), ("endpoint", endpoint)]
}

/// A metric family with one value and no labels: (name, help, type, value).
type Scalar = (&'static str, &'static str, MetricType, u64);

/// A counter family with one series per endpoint: (name, help, the series' value).
type EndpointCounter = (&'static str, &'static str, fn(&EndpointSnapshot) -> u64);

/// A gauge family with one series per baseline: (name, help, unit, the series' value).
type BaselineGauge<'a> = (
    &'static str,
    &'static str,
    Option<&'a Unit>,
    fn(&BaselineGauges) -> f64,
);

impl Collector for Scrape {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let per_endpoint: [EndpointCounter; 2] = [
            (
                "aiops_requests",
                "Requests served per monitored endpoint (server and consumer spans).",
                |series| series.duration.count,
            ),
            (
                "aiops_request_errors",
                "Requests that failed (status ERROR or HTTP 5xx) per monitored endpoint.",
                |series| series.errors,
            ),
        ];
        for (name, help, value) in per_endpoint {
            let mut family = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
            for series in &self.endpoints {
                let labels = endpoint_labels(&series.service, &series.endpoint);
                family
                    .encode_family(&labels)?
                    .encode_counter::<NoLabelSet, _, u64>(&value(series), None)?;
            }
        }
        let mut family = encoder.encode_descriptor(
            "aiops_request_duration",
            "Latency of requests per monitored endpoint.",
            Some(&Unit::Seconds),
            MetricType::Histogram,
        )?;
        for series in &self.endpoints {
            let labels = endpoint_labels(&series.service, &series.endpoint);
            histogram(family.encode_family(&labels)?, &series.duration)?;
        }

        let scalars: [Scalar; 8] = [
            (
                "aiops_request_series_folded_spans",
                "Spans counted under the _other request series: their endpoint came past the series cap, or its service or operation name is longer than 256 bytes.",
                MetricType::Counter,
                self.folded_spans,
            ),
            (
                "aiops_spans_ingested",
                "Spans accepted by the engine.",
                MetricType::Counter,
                self.pipeline.ingested,
            ),
            (
                "aiops_spans_dropped",
                "Spans not stored because the storage queue was full (still analysed live).",
                MetricType::Counter,
                self.pipeline.dropped,
            ),
            (
                "aiops_spans_rejected",
                "OTLP spans refused as unusable (invalid ids or timing), reported as partial success.",
                MetricType::Counter,
                self.spans_rejected,
            ),
            (
                "aiops_spans_written",
                "Spans written to storage.",
                MetricType::Counter,
                self.pipeline.written,
            ),
            (
                "aiops_spans_write_failed",
                "Spans accepted but lost because their storage transaction failed.",
                MetricType::Counter,
                self.pipeline.write_failed,
            ),
            (
                "aiops_span_queue_depth",
                "Spans waiting for the storage writer.",
                MetricType::Gauge,
                self.pipeline.queued,
            ),
            (
                "aiops_span_queue_capacity",
                "Spans that may wait for the storage writer before new ones are dropped.",
                MetricType::Gauge,
                self.pipeline.queue_capacity,
            ),
        ];
        encode_scalars(&mut encoder, &scalars)?;
        let mut family = encoder.encode_descriptor(
            "aiops_ingest_refused_requests",
            "OTLP requests refused as a whole, by reason (queue_full: answered 429, the sender retries).",
            None,
            MetricType::Counter,
        )?;
        for (reason, count) in &self.refusals {
            let labels = [("reason", reason.as_str())];
            family
                .encode_family(&labels)?
                .encode_counter::<NoLabelSet, _, u64>(count, None)?;
        }

        logs::encode_logs(&mut encoder, &self.logs, &self.log_refusals)?;
        if let Some(analysis) = &self.analysis {
            encode_analysis(&mut encoder, analysis)?;
        }
        encode_notifications(&mut encoder, &self.receivers, self.incident_updates_dropped)?;
        process_stats::encode(&mut encoder, &self.process, self.started_unix_nanos)
    }
}

/// A counter family with one series per notification receiver: (name, help, the value).
type ReceiverCounter = (&'static str, &'static str, fn(&ReceiverStats) -> u64);

fn encode_notifications(
    encoder: &mut DescriptorEncoder<'_>,
    receivers: &[ReceiverStats],
    updates_dropped: u64,
) -> Result<(), std::fmt::Error> {
    let per_receiver: [ReceiverCounter; 4] = [
        (
            "aiops_notifications_sent",
            "Notifications a receiver accepted (Alertmanager pushes and webhook calls).",
            |r| r.sent,
        ),
        (
            "aiops_notifications_failed",
            "Notifications given up after every retry, or refused by the receiver (4xx).",
            |r| r.failed,
        ),
        (
            "aiops_notification_retries",
            "Notification attempts repeated after a failure.",
            |r| r.retries,
        ),
        (
            "aiops_notifications_dropped",
            "Notifications dropped because the receiver's queue was full.",
            |r| r.dropped,
        ),
    ];
    for (name, help, value) in per_receiver {
        let mut family = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
        for receiver in receivers {
            let labels = [
                ("receiver", receiver.name.as_str()),
                ("kind", receiver.kind),
            ];
            family
                .encode_family(&labels)?
                .encode_counter::<NoLabelSet, _, u64>(&value(receiver), None)?;
        }
    }
    encode_scalars(
        encoder,
        &[(
            "aiops_incident_updates_dropped",
            "Incident changes not recorded or notified because the incident desk was behind.",
            MetricType::Counter,
            updates_dropped,
        )],
    )
}

fn encode_analysis(
    encoder: &mut DescriptorEncoder<'_>,
    analysis: &AnalysisSnapshot,
) -> Result<(), std::fmt::Error> {
    let seconds = Unit::Seconds;
    let scalars: [Scalar; 3] = [
        (
            "aiops_analysis_cycles",
            "Analysis cycles run since start.",
            MetricType::Counter,
            analysis.cycles,
        ),
        (
            "aiops_analysis_early_cycles",
            "Analysis cycles run ahead of the interval because new anomaly evidence showed.",
            MetricType::Counter,
            analysis.early_cycles,
        ),
        (
            "aiops_spans_untracked",
            "Spans left out of live detection because the endpoint limit was reached (still stored).",
            MetricType::Counter,
            analysis.untracked_spans,
        ),
    ];
    encode_scalars(encoder, &scalars)?;
    histogram(
        encoder.encode_descriptor(
            "aiops_analysis_cycle_duration",
            "Time one analysis cycle took (window stats, detection, RCA, incidents).",
            Some(&seconds),
            MetricType::Histogram,
        )?,
        &analysis.cycle_duration,
    )?;

    let mut family = encoder.encode_descriptor(
        "aiops_incidents_active",
        "Active incidents per severity.",
        None,
        MetricType::Gauge,
    )?;
    for (severity, count) in &analysis.active_incidents {
        let labels = [("severity", severity.as_str())];
        family
            .encode_family(&labels)?
            .encode_gauge(&(*count as i64))?;
    }

    let gauges: [BaselineGauge<'_>; 4] = [
        (
            "aiops_baseline_latency_mean",
            "Learned mean latency per endpoint.",
            Some(&seconds),
            |b| b.mean_seconds,
        ),
        (
            "aiops_baseline_latency_p95",
            "Learned 95th percentile latency per endpoint.",
            Some(&seconds),
            |b| b.p95_seconds,
        ),
        (
            "aiops_baseline_error_ratio",
            "Learned share of failing requests per endpoint.",
            None,
            |b| b.error_ratio,
        ),
        (
            "aiops_baseline_samples",
            "Requests the baseline was learned from, per endpoint.",
            None,
            |b| b.samples as f64,
        ),
    ];
    for (name, help, unit, value) in gauges {
        baseline_gauge(encoder, name, help, unit, &analysis.baselines, value)?;
    }
    Ok(())
}

/// Encodes one histogram value.
fn histogram(
    mut encoder: prometheus_client::encoding::MetricEncoder<'_>,
    histogram: &HistogramSnapshot,
) -> Result<(), std::fmt::Error> {
    encoder.encode_histogram::<NoLabelSet>(
        histogram.sum_seconds,
        histogram.count,
        &histogram.bounded_buckets(),
        None,
    )
}

/// Encodes families of one value each, counters and gauges.
fn encode_scalars(
    encoder: &mut DescriptorEncoder<'_>,
    scalars: &[Scalar],
) -> Result<(), std::fmt::Error> {
    for (name, help, kind, value) in scalars {
        let mut metric = encoder.encode_descriptor(name, help, None, *kind)?;
        match kind {
            MetricType::Gauge => metric.encode_gauge(value)?,
            _ => metric.encode_counter::<NoLabelSet, _, u64>(value, None)?,
        }
    }
    Ok(())
}

fn baseline_gauge(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    unit: Option<&Unit>,
    baselines: &[BaselineGauges],
    value: impl Fn(&BaselineGauges) -> f64,
) -> Result<(), std::fmt::Error> {
    let mut family = encoder.encode_descriptor(name, help, unit, MetricType::Gauge)?;
    // Names too long for a label have no request series either; their baselines stay in
    // /aiops/metrics.
    for baseline in baselines
        .iter()
        .filter(|baseline| fits_label(&baseline.service, &baseline.endpoint))
    {
        let labels = endpoint_labels(&baseline.service, &baseline.endpoint);
        family
            .encode_family(&labels)?
            .encode_gauge(&value(baseline))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests;
