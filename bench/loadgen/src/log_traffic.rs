//! Synthetic OTLP log exports: the lines ten services log while they serve, mostly INFO with
//! a few WARN and ERROR (one in fifty, with an exception type), each in a trace and span, fresh
//! ids and current timestamps in every request.
//!
//! As for traces, the request is built once; [`LogExportGenerator::next_body`] rewrites ids and
//! timestamps in place and encodes.

use std::time::{SystemTime, UNIX_EPOCH};

use aiops_telemetry_core::otlp::ExportLogsServiceRequest;
use aiops_telemetry_core::otlp::testing::string_attribute;
use opentelemetry_proto::tonic::common::v1::{AnyValue, any_value::Value};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::Message;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const SERVICES: usize = 10;

/// Builds request bodies of a fixed number of log records.
#[derive(Debug)]
pub struct LogExportGenerator {
    request: ExportLogsServiceRequest,
    rng: StdRng,
}

impl LogExportGenerator {
    /// A generator of requests holding `records` log records.
    pub fn new(records: usize, seed: u64) -> Self {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut resources: Vec<Vec<LogRecord>> = vec![Vec::new(); SERVICES];
        for index in 0..records {
            let service = rng.random_range(0..SERVICES);
            let roll = rng.random_range(0..100);
            let (severity, text, body) = match roll {
                0 | 1 => (
                    17,
                    "ERROR",
                    format!("order {index} failed: inventory lookup returned no stock record"),
                ),
                2..=6 => (
                    13,
                    "WARN",
                    format!("slow upstream answer for order {index}: 812 ms"),
                ),
                _ => (
                    9,
                    "INFO",
                    format!("GET /items/{index} answered 200 in {} ms", roll + 3),
                ),
            };
            let mut attributes = vec![string_attribute("code.function", "handle_request")];
            if severity == 17 {
                attributes.push(string_attribute(
                    "exception.type",
                    "java.lang.IllegalStateException",
                ));
            }
            resources[service].push(LogRecord {
                severity_number: severity,
                severity_text: text.to_owned(),
                body: Some(AnyValue {
                    value: Some(Value::StringValue(body)),
                }),
                attributes,
                trace_id: vec![1; 16],
                span_id: vec![1; 8],
                ..LogRecord::default()
            });
        }
        let request = ExportLogsServiceRequest {
            resource_logs: resources
                .into_iter()
                .enumerate()
                .filter(|(_, records)| !records.is_empty())
                .map(|(service, log_records)| ResourceLogs {
                    resource: Some(Resource {
                        attributes: vec![
                            string_attribute("service.name", &format!("svc-{service:02}")),
                            string_attribute("service.version", "1.0.0"),
                        ],
                        ..Resource::default()
                    }),
                    scope_logs: vec![ScopeLogs {
                        log_records,
                        ..ScopeLogs::default()
                    }],
                    ..ResourceLogs::default()
                })
                .collect(),
        };
        Self { request, rng }
    }

    /// Records in each request.
    pub fn records_per_request(&self) -> usize {
        self.request
            .resource_logs
            .iter()
            .flat_map(|r| &r.scope_logs)
            .map(|s| s.log_records.len())
            .sum()
    }

    /// The next request, protobuf-encoded: fresh ids, times of the last second.
    pub fn next_body(&mut self) -> Vec<u8> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_nanos() as u64);
        for record in self
            .request
            .resource_logs
            .iter_mut()
            .flat_map(|r| &mut r.scope_logs)
            .flat_map(|s| &mut s.log_records)
        {
            let time = now - self.rng.random_range(0..1_000_000_000);
            record.time_unix_nano = time;
            record.observed_time_unix_nano = time;
            self.rng.fill(&mut record.trace_id[..]);
            self.rng.fill(&mut record.span_id[..]);
            record.trace_id[0] |= 1;
            record.span_id[0] |= 1;
        }
        self.request.encode_to_vec()
    }
}

#[cfg(test)]
mod tests {
    use aiops_telemetry_core::otlp::{decode_logs_protobuf, logs_from_request};

    use super::*;

    #[test]
    fn every_record_of_a_body_is_usable_and_a_few_are_errors() {
        let mut generator = LogExportGenerator::new(1_000, 3);
        let mapped =
            logs_from_request(&decode_logs_protobuf(&generator.next_body()).expect("decodes"));
        assert_eq!((mapped.records.len(), mapped.rejected), (1_000, 0));
        let errors = mapped
            .records
            .iter()
            .filter(|r| r.severity.is_error())
            .count();
        assert!((5..=50).contains(&errors), "{errors}");
        assert!(mapped.records.iter().all(|r| r.span_id.is_some()));
        assert_eq!(generator.records_per_request(), 1_000);
    }
}
