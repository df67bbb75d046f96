//! `GET /aiops/logs`, and the changes: `POST /aiops/changes`, `GET /aiops/changes`.

use std::collections::BTreeMap;

use aiops_storage_sqlite::ChangeRecord;
use aiops_telemetry_core::{ChangeSource, LogRecord};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::format::iso_millis;

/// One stored log record.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct LogEntry {
    /// ISO 8601 time, to the millisecond.
    pub time: String,
    /// Unix nanoseconds, exact.
    pub time_unix_nano: u64,
    /// The service that logged it.
    pub service: String,
    /// `TRACE`, `DEBUG`, `INFO`, `WARN`, `ERROR`, `FATAL` or `UNSPECIFIED`.
    #[schema(example = "ERROR")]
    pub severity: &'static str,
    /// OpenTelemetry's severity number, 1 to 24 (0: unspecified).
    pub severity_number: u8,
    /// The message.
    pub body: String,
    /// The trace it was logged in, 32 hex digits.
    pub trace_id: Option<String>,
    /// The span it was logged in, 16 hex digits.
    pub span_id: Option<String>,
    /// The attributes kept (`exception.*`, `code.*`, `service.version`...).
    pub attributes: BTreeMap<String, String>,
}

impl LogEntry {
    /// The view of `record`.
    pub fn new(record: &LogRecord) -> Self {
        Self {
            time: iso_millis(record.time_unix_nanos),
            time_unix_nano: record.time_unix_nanos,
            service: record.service.to_string(),
            severity: record.severity.name(),
            severity_number: record.severity.0,
            body: record.body.clone(),
            trace_id: record.trace_id.map(|id| id.to_string()),
            span_id: record.span_id.map(|id| id.to_string()),
            attributes: record
                .attributes
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }
}

/// `GET /aiops/logs`: the records selected, a trace's oldest first, otherwise newest first.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct LogList {
    /// How many records are listed.
    pub count: usize,
    /// The records.
    pub logs: Vec<LogEntry>,
}

/// `POST /aiops/changes` body: a change someone reports.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewChange {
    /// The service that changed.
    #[schema(example = "payments")]
    pub service: String,
    /// `deployment`, `config` or `feature_flag`.
    #[schema(example = "deployment")]
    pub kind: String,
    /// The version after the change; a version or a description is required.
    #[schema(example = "1.4.2")]
    pub version: Option<String>,
    /// The version before it, when known.
    #[schema(example = "1.4.1")]
    pub previous_version: Option<String>,
    /// What changed, in words.
    pub description: Option<String>,
    /// When: RFC 3339 text or Unix nanoseconds (a number); now when absent.
    #[schema(schema_with = change_time, example = "2026-12-06T18:00:00Z")]
    pub time: Option<serde_json::Value>,
}

/// One stored change.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct ChangeView {
    /// The change's id, increasing in the order changes were stored.
    pub id: i64,
    /// The service that changed.
    pub service: String,
    /// `deployment`, `config` or `feature_flag`.
    pub kind: &'static str,
    /// ISO 8601 time, to the millisecond.
    pub time: String,
    /// Unix nanoseconds, exact.
    pub time_unix_nano: u64,
    /// The version after the change.
    pub version: Option<String>,
    /// The version before it.
    pub previous_version: Option<String>,
    /// What changed, in words.
    pub description: Option<String>,
    /// `reported` (through this API) or `observed` (a new `service.version` in the spans).
    #[schema(example = "reported")]
    pub source: &'static str,
}

impl ChangeView {
    /// The view of a stored change.
    pub fn new(record: &ChangeRecord) -> Self {
        let change = &record.change;
        Self {
            id: record.id,
            service: change.service.to_string(),
            kind: change.kind.as_str(),
            time: iso_millis(change.time_unix_nanos),
            time_unix_nano: change.time_unix_nanos,
            version: change.version.as_ref().map(|v| v.to_string()),
            previous_version: change.previous_version.as_ref().map(|v| v.to_string()),
            description: change.description.clone(),
            source: match change.source {
                ChangeSource::Reported => "reported",
                ChangeSource::Observed => "observed",
            },
        }
    }
}

/// `GET /aiops/changes`: changes newest first.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct ChangeList {
    /// How many changes are listed.
    pub count: usize,
    /// The changes.
    pub changes: Vec<ChangeView>,
}

/// The schema of a change's `time`: RFC 3339 text, or Unix nanoseconds as a whole number.
fn change_time() -> utoipa::openapi::schema::Schema {
    serde_json::from_value(serde_json::json!({
        "oneOf": [
            {"type": "string", "format": "date-time"},
            {"type": "integer", "minimum": 0, "maximum": u64::MAX},
            {"type": "null"}
        ]
    }))
    .unwrap_or_default()
}
