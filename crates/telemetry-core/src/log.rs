//! Log records and changes: the evidence beside spans.
//!
//! A [`LogRecord`] is one line a service logged, as OpenTelemetry carries it: the service (from
//! the resource), the time, a severity, the body, and the trace and span it was logged in when
//! the logging library knew them. A [`Change`] is something that changed in a service (a
//! deployment, a configuration change, a feature flag), reported through the API or observed in
//! the telemetry when a service's `service.version` changes.
//!
//! Both travel like spans: a [`LogCollector`] or [`ChangeCollector`] takes them without
//! blocking, under the same contract as [`Collector`](crate::Collector).

use serde::{Deserialize, Serialize};

use crate::collector::RecordOutcome;
use crate::error::CollectorError;
use crate::ids::{SpanId, TraceId};
use crate::span::Attributes;
use crate::text::SpanText;

/// How severe a log record is, as OpenTelemetry's `SeverityNumber` (1 to 24; 0 is unspecified).
///
/// ```
/// use aiops_telemetry_core::LogSeverity;
///
/// assert!(LogSeverity(17).is_error());
/// assert!(!LogSeverity::WARN.is_error());
/// assert_eq!(LogSeverity(21).name(), "FATAL");
/// ```
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct LogSeverity(pub u8);

impl LogSeverity {
    /// No severity was given.
    pub const UNSPECIFIED: Self = Self(0);
    /// `TRACE` (1-4).
    pub const TRACE: Self = Self(1);
    /// `DEBUG` (5-8).
    pub const DEBUG: Self = Self(5);
    /// `INFO` (9-12).
    pub const INFO: Self = Self(9);
    /// `WARN` (13-16).
    pub const WARN: Self = Self(13);
    /// `ERROR` (17-20): the lowest severity that counts as failure evidence.
    pub const ERROR: Self = Self(17);
    /// `FATAL` (21-24).
    pub const FATAL: Self = Self(21);

    /// Whether the record reports an error: `ERROR` or above (`severityNumber` >= 17).
    pub const fn is_error(self) -> bool {
        self.0 >= Self::ERROR.0
    }

    /// The short name of the severity's range: `TRACE`, `DEBUG`, `INFO`, `WARN`, `ERROR`,
    /// `FATAL`, or `UNSPECIFIED`.
    pub const fn name(self) -> &'static str {
        match self.0 {
            1..=4 => "TRACE",
            5..=8 => "DEBUG",
            9..=12 => "INFO",
            13..=16 => "WARN",
            17..=20 => "ERROR",
            21..=24 => "FATAL",
            _ => "UNSPECIFIED",
        }
    }

    /// The severity a text such as `error`, `WARNING` or `Info` names, for records that carry
    /// only `severityText`.
    pub fn from_text(text: &str) -> Self {
        match text.trim().to_ascii_uppercase().as_str() {
            "TRACE" => Self::TRACE,
            "DEBUG" => Self::DEBUG,
            "INFO" | "INFORMATION" | "NOTICE" => Self::INFO,
            "WARN" | "WARNING" => Self::WARN,
            "ERROR" | "ERR" | "SEVERE" => Self::ERROR,
            "FATAL" | "CRITICAL" | "CRIT" | "EMERG" | "ALERT" | "PANIC" => Self::FATAL,
            _ => Self::UNSPECIFIED,
        }
    }
}

/// One record a service logged.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LogRecord {
    /// The service that logged it (OpenTelemetry `service.name` of the resource).
    pub service: SpanText,
    /// When the event happened (or, without that, when it was observed), in Unix nanoseconds.
    pub time_unix_nanos: u64,
    /// How severe it is.
    pub severity: LogSeverity,
    /// The message, as text (structured bodies are rendered as JSON).
    pub body: String,
    /// The trace it was logged in, when known.
    pub trace_id: Option<TraceId>,
    /// The span it was logged in, when known.
    pub span_id: Option<SpanId>,
    /// A bounded set of attributes that explain the record (`exception.type`, `code.*`,
    /// `service.version`...).
    pub attributes: Attributes,
}

impl LogRecord {
    /// A record of `service` at `time_unix_nanos` with `severity` and `body`, in no trace and
    /// with no attributes; refine with the `with_*` methods.
    pub fn new(
        service: impl Into<SpanText>,
        time_unix_nanos: u64,
        severity: LogSeverity,
        body: impl Into<String>,
    ) -> Self {
        Self {
            service: service.into(),
            time_unix_nanos,
            severity,
            body: body.into(),
            trace_id: None,
            span_id: None,
            attributes: Attributes::Borrowed(&[]),
        }
    }

    /// Places the record in a span of a trace.
    pub fn in_span(mut self, trace_id: TraceId, span_id: SpanId) -> Self {
        self.trace_id = Some(trace_id);
        self.span_id = Some(span_id);
        self
    }

    /// Adds an attribute.
    pub fn with_attribute(mut self, key: impl Into<SpanText>, value: impl Into<SpanText>) -> Self {
        self.attributes.to_mut().push((key.into(), value.into()));
        self
    }

    /// The value of attribute `key`, if present.
    pub fn attribute(&self, key: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(k, _)| k.as_str() == key)
            .map(|(_, v)| v.as_str())
    }
}

/// What kind of change a [`Change`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    /// A new version of the service's code.
    Deployment,
    /// A configuration change with no new version.
    Config,
    /// A feature flag switched.
    FeatureFlag,
}

impl ChangeKind {
    /// The lower-case name used in JSON and storage.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Deployment => "deployment",
            Self::Config => "config",
            Self::FeatureFlag => "feature_flag",
        }
    }

    /// The inverse of [`Self::as_str`].
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "deployment" => Self::Deployment,
            "config" => Self::Config,
            "feature_flag" => Self::FeatureFlag,
            _ => return None,
        })
    }
}

/// Where the engine learnt of a [`Change`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeSource {
    /// Someone (a deploy pipeline, an operator) reported it through the API.
    Reported,
    /// The telemetry showed it: a service's spans began to carry a new `service.version`.
    Observed,
}

/// Something that changed in a service at a point in time.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Change {
    /// The service that changed.
    pub service: SpanText,
    /// What kind of change it was.
    pub kind: ChangeKind,
    /// When it happened, in Unix nanoseconds.
    pub time_unix_nanos: u64,
    /// The version after the change, for deployments.
    pub version: Option<SpanText>,
    /// The version before the change, when known.
    pub previous_version: Option<SpanText>,
    /// What changed, in words, for changes that carry no version.
    pub description: Option<String>,
    /// How the engine learnt of it.
    pub source: ChangeSource,
}

/// Where log records go; the same contract as [`Collector`](crate::Collector): never blocks,
/// thread-safe, any order, and [`flush`](Self::flush) blocks until what was accepted is visible.
pub trait LogCollector: Send + Sync {
    /// Takes many records at once. Never blocks; may accept a prefix and drop the rest.
    fn record_logs(&self, records: Vec<LogRecord>) -> RecordOutcome;

    /// Takes copies of records someone else keeps; the default clones them.
    fn record_logs_borrowed(&self, records: &[LogRecord]) -> RecordOutcome {
        self.record_logs(records.to_vec())
    }

    /// Blocks until every record accepted before this call is durable or visible.
    fn flush_logs(&self) -> Result<(), CollectorError>;
}

/// Where changes go; never blocks.
pub trait ChangeCollector: Send + Sync {
    /// Takes one change.
    fn record_change(&self, change: Change) -> RecordOutcome;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severity_ranges_follow_opentelemetry() {
        assert_eq!(LogSeverity(16).name(), "WARN");
        assert!(!LogSeverity(16).is_error());
        assert!(LogSeverity(17).is_error());
        assert!(LogSeverity(24).is_error());
        assert_eq!(LogSeverity(0).name(), "UNSPECIFIED");
        assert_eq!(LogSeverity(30).name(), "UNSPECIFIED");
    }

    #[test]
    fn severity_texts_without_numbers_are_understood() {
        assert_eq!(LogSeverity::from_text("Warning"), LogSeverity::WARN);
        assert!(LogSeverity::from_text(" error ").is_error());
        assert!(LogSeverity::from_text("CRITICAL").is_error());
        assert_eq!(LogSeverity::from_text("verbose"), LogSeverity::UNSPECIFIED);
    }

    #[test]
    fn change_kinds_round_trip_their_names() {
        for kind in [
            ChangeKind::Deployment,
            ChangeKind::Config,
            ChangeKind::FeatureFlag,
        ] {
            assert_eq!(ChangeKind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(ChangeKind::parse("Deployment"), None);
    }

    #[test]
    fn a_record_in_a_span_keeps_its_ids_and_attributes() {
        let trace = TraceId::random();
        let span = SpanId::random();
        let record = LogRecord::new("pricing", 1, LogSeverity::ERROR, "boom")
            .in_span(trace, span)
            .with_attribute("exception.type", "java.lang.NullPointerException");
        assert_eq!((record.trace_id, record.span_id), (Some(trace), Some(span)));
        assert_eq!(
            record.attribute("exception.type"),
            Some("java.lang.NullPointerException")
        );
        assert_eq!(record.attribute("missing"), None);
    }
}
