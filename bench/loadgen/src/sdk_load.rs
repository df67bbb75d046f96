//! Spans sent the way an instrumented service sends them: the OpenTelemetry SDK's tracer
//! provider with its batch span processor and the OTLP/HTTP protobuf exporter, which retries
//! 429 and 503 answers after their `Retry-After` and gives a batch up when its retries or its
//! timeout run out.
//!
//! The exporter is wrapped in [`CountingExporter`], which passes every batch through unchanged
//! and counts the spans of each export by its result: an `Ok` export is a batch the server
//! acknowledged (answered 200, after any retries); an `Err` export is a batch the SDK dropped
//! after its retries. Spans that never reached an export were dropped by the batch processor
//! itself, its queue being full ([`SdkCounts::dropped_by_queue`]). Shutting the provider down
//! exports everything still queued, and waits for it long enough for every export to end.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use opentelemetry::KeyValue;
use opentelemetry::trace::{Span as _, SpanKind, Tracer as _, TracerProvider as _};
use opentelemetry_otlp::{Protocol, WithExportConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{
    BatchConfigBuilder, BatchSpanProcessor, SdkTracerProvider, SpanData, SpanExporter,
};

/// What a run of the SDK sent, by what became of each span.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SdkCounts {
    /// Spans the application created and ended.
    pub created: u64,
    /// Spans handed to an export.
    pub exported: u64,
    /// Spans in exports that succeeded: the server answered 200 (the last of any retries).
    pub acknowledged: u64,
    /// Spans in exports that failed after the exporter's retries or timeout: not acknowledged,
    /// dropped by the SDK.
    pub failed: u64,
    /// Exports that succeeded and that failed.
    pub exports_ok: u64,
    pub exports_failed: u64,
}

impl SdkCounts {
    /// Spans the batch processor dropped before any export, its queue being full.
    pub fn dropped_by_queue(&self) -> u64 {
        self.created.saturating_sub(self.exported)
    }

    /// Spans of exports still under way when the provider's shutdown gave up waiting
    /// (0 unless the server answered nothing for longer than the shutdown waits).
    pub fn unsettled(&self) -> u64 {
        self.exported
            .saturating_sub(self.acknowledged)
            .saturating_sub(self.failed)
    }

    /// The sum of two runs' counts.
    pub fn add(&self, other: &SdkCounts) -> SdkCounts {
        SdkCounts {
            created: self.created + other.created,
            exported: self.exported + other.exported,
            acknowledged: self.acknowledged + other.acknowledged,
            failed: self.failed + other.failed,
            exports_ok: self.exports_ok + other.exports_ok,
            exports_failed: self.exports_failed + other.exports_failed,
        }
    }
}

#[derive(Debug, Default)]
struct Tally {
    exported: AtomicU64,
    acknowledged: AtomicU64,
    failed: AtomicU64,
    exports_ok: AtomicU64,
    exports_failed: AtomicU64,
}

/// An exporter that hands every batch to `inner` and counts its spans by the export's result.
#[derive(Debug)]
pub struct CountingExporter<E> {
    inner: E,
    tally: Arc<Tally>,
}

impl<E: SpanExporter> SpanExporter for CountingExporter<E> {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let spans = batch.len() as u64;
        self.tally.exported.fetch_add(spans, Ordering::Relaxed);
        let result = self.inner.export(batch).await;
        let (spans_counter, exports_counter) = match result {
            Ok(()) => (&self.tally.acknowledged, &self.tally.exports_ok),
            Err(_) => (&self.tally.failed, &self.tally.exports_failed),
        };
        spans_counter.fetch_add(spans, Ordering::Relaxed);
        exports_counter.fetch_add(1, Ordering::Relaxed);
        result
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}

/// One instrumented service's SDK pipeline.
#[derive(Clone, Debug)]
pub struct SdkLoad {
    /// The server's base URL (`http://127.0.0.1:PORT`); spans go to `/v1/traces`.
    pub url: String,
    /// `service.name` of the spans.
    pub service: String,
    /// Spans to create at most (0: no limit).
    pub spans: u64,
    /// How long to create spans at most.
    pub duration: Duration,
    /// Spans created per second (0: as fast as the application thread can).
    pub rate: u64,
    /// The batch processor's queue (`OTEL_BSP_MAX_QUEUE_SIZE`).
    pub queue_size: usize,
    /// Spans per export (`OTEL_BSP_MAX_EXPORT_BATCH_SIZE`).
    pub batch_size: usize,
    /// How long one export may take with its retries (`OTEL_EXPORTER_OTLP_TIMEOUT`, 10 s by
    /// default).
    pub export_timeout: Duration,
}

/// Distinct operations of the generated service.
const ROUTES: [&str; 8] = [
    "/cart",
    "/cart/items",
    "/checkout",
    "/catalog",
    "/catalog/{id}",
    "/orders",
    "/orders/{id}",
    "/payments",
];

impl SdkLoad {
    /// Creates the spans, shuts the provider down (which exports what is still queued), and
    /// counts what became of them. Blocking: the SDK's exporter is the blocking HTTP client
    /// and its batch processor a thread of its own.
    pub fn run(&self) -> anyhow::Result<SdkCounts> {
        let tally = Arc::new(Tally::default());
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_protocol(Protocol::HttpBinary)
            .with_endpoint(format!("{}/v1/traces", self.url.trim_end_matches('/')))
            .with_timeout(self.export_timeout)
            .build()?;
        let exporter = CountingExporter {
            inner: exporter,
            tally: Arc::clone(&tally),
        };
        let processor = BatchSpanProcessor::builder(exporter)
            .with_batch_config(
                BatchConfigBuilder::default()
                    .with_max_queue_size(self.queue_size)
                    .with_max_export_batch_size(self.batch_size)
                    .with_scheduled_delay(Duration::from_millis(200))
                    .build(),
            )
            .build();
        let provider = SdkTracerProvider::builder()
            .with_resource(
                Resource::builder_empty()
                    .with_service_name(self.service.clone())
                    .build(),
            )
            .with_span_processor(processor)
            .build();
        let tracer = provider.tracer("aiops-loadgen");

        let started = Instant::now();
        let limit = if self.spans == 0 {
            u64::MAX
        } else {
            self.spans
        };
        let mut created = 0u64;
        while created < limit && started.elapsed() < self.duration {
            if self.rate > 0 {
                let due = Duration::from_secs_f64(created as f64 / self.rate as f64);
                if let Some(wait) = due.checked_sub(started.elapsed()) {
                    std::thread::sleep(wait);
                }
            }
            let route = ROUTES[(created % ROUTES.len() as u64) as usize];
            let mut span = tracer
                .span_builder(format!("GET {route}"))
                .with_kind(SpanKind::Server)
                .with_attributes([
                    KeyValue::new("http.request.method", "GET"),
                    KeyValue::new("http.route", route),
                    KeyValue::new("http.response.status_code", 200),
                ])
                .start(&tracer);
            span.end();
            created += 1;
        }
        // Shutting down exports what is queued, one batch after the other, each within the
        // export timeout; a failed export shows in the counts.
        let batches = (self.queue_size / self.batch_size.max(1)) as u32 + 2;
        let _ = provider.shutdown_with_timeout(self.export_timeout * batches);
        Ok(SdkCounts {
            created,
            exported: tally.exported.load(Ordering::Relaxed),
            acknowledged: tally.acknowledged.load(Ordering::Relaxed),
            failed: tally.failed.load(Ordering::Relaxed),
            exports_ok: tally.exports_ok.load(Ordering::Relaxed),
            exports_failed: tally.exports_failed.load(Ordering::Relaxed),
        })
    }
}
