//! The log pipeline's families: records accepted, rejected, dropped, written, the queue, and
//! the OTLP log requests refused whole.

use prometheus_client::encoding::{DescriptorEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;

use super::{Scalar, encode_scalars};
use crate::pipeline::logs::LogStats;
use crate::pipeline::refusals::RefusalReason;

/// Encodes the log pipeline's counts and `refusals` of `POST /v1/logs`.
pub(super) fn encode_logs(
    encoder: &mut DescriptorEncoder<'_>,
    logs: &LogStats,
    refusals: &[(RefusalReason, u64)],
) -> Result<(), std::fmt::Error> {
    let scalars: [Scalar; 7] = [
        (
            "aiops_log_records_accepted",
            "Log records accepted by the storage queue (POST /v1/logs).",
            MetricType::Counter,
            logs.accepted,
        ),
        (
            "aiops_log_records_rejected",
            "OTLP log records refused as unusable (no time, malformed ids), reported as partial success.",
            MetricType::Counter,
            logs.rejected,
        ),
        (
            "aiops_log_records_dropped",
            "Log records not stored because the log queue was full or closed.",
            MetricType::Counter,
            logs.dropped,
        ),
        (
            "aiops_log_records_written",
            "Log records written to storage.",
            MetricType::Counter,
            logs.written,
        ),
        (
            "aiops_log_records_write_failed",
            "Log records accepted but lost because their storage transaction failed.",
            MetricType::Counter,
            logs.write_failed,
        ),
        (
            "aiops_log_queue_depth",
            "Log records waiting for the storage writer.",
            MetricType::Gauge,
            logs.queued,
        ),
        (
            "aiops_log_queue_capacity",
            "Log records that may wait for the storage writer before requests are refused (429).",
            MetricType::Gauge,
            logs.queue_capacity,
        ),
    ];
    encode_scalars(encoder, &scalars)?;
    let mut family = encoder.encode_descriptor(
        "aiops_log_ingest_refused_requests",
        "OTLP log requests refused as a whole, by reason (queue_full: answered 429, the sender retries).",
        None,
        MetricType::Counter,
    )?;
    for (reason, count) in refusals {
        let labels = [("reason", reason.as_str())];
        family
            .encode_family(&labels)?
            .encode_counter::<NoLabelSet, _, u64>(count, None)?;
    }
    Ok(())
}
