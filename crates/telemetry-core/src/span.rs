use std::borrow::Cow;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::ids::{SpanId, TraceId};
use crate::text::SpanText;

/// What role a span plays in a call, as in OpenTelemetry.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SpanKind {
    /// Handles an incoming request (an endpoint).
    #[default]
    Server,
    /// Makes an outgoing request.
    Client,
    /// Work inside a process.
    Internal,
    /// Sends a message.
    Producer,
    /// Receives a message.
    Consumer,
}

impl SpanKind {
    /// Every kind, in declaration order.
    pub const ALL: [SpanKind; 5] = [
        Self::Server,
        Self::Client,
        Self::Internal,
        Self::Producer,
        Self::Consumer,
    ];

    /// The lower-case name used in JSON and storage.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Server => "server",
            Self::Client => "client",
            Self::Internal => "internal",
            Self::Producer => "producer",
            Self::Consumer => "consumer",
        }
    }

    /// The inverse of [`Self::as_str`].
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "server" => Self::Server,
            "client" => Self::Client,
            "internal" => Self::Internal,
            "producer" => Self::Producer,
            "consumer" => Self::Consumer,
            _ => return None,
        })
    }
}

/// The outcome a span reported, as in OpenTelemetry.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SpanStatus {
    /// Nothing was said; the HTTP status (if any) decides.
    #[default]
    Unset,
    /// Explicitly successful.
    Ok,
    /// Explicitly failed.
    Error,
}

impl SpanStatus {
    /// True when a span with this status and `http_status` failed: status `Error`, or an HTTP
    /// status of 500 or more (the status `Unset` leaves it to the HTTP status).
    #[inline]
    pub fn failed(self, http_status: Option<u16>) -> bool {
        self == Self::Error || http_status.is_some_and(|code| code >= 500)
    }
}

/// The identity baselines are learned for: one operation of one service.
///
/// For HTTP servers the operation is the method and route (`POST /payment`); the demo shop uses
/// its path (`/payment`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct EndpointKey {
    /// The service that owns the endpoint (OpenTelemetry `service.name`).
    pub service: SpanText,
    /// The operation within the service.
    pub operation: SpanText,
}

impl EndpointKey {
    /// An endpoint of `service` named `operation`; the names are copied once, into text that
    /// clones of the key share. To make a key from text already held as [`SpanText`] (a span's
    /// names) without copying it, use [`Self::of`].
    pub fn new(service: impl AsRef<str>, operation: impl AsRef<str>) -> Self {
        Self::of(
            SpanText::copied(service.as_ref()),
            SpanText::copied(operation.as_ref()),
        )
    }

    /// An endpoint of `service` named `operation`, sharing their text rather than copying it.
    pub const fn of(service: SpanText, operation: SpanText) -> Self {
        Self { service, operation }
    }
}

impl fmt::Display for EndpointKey {
    /// `service operation`, e.g. `shop /payment`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.service, self.operation)
    }
}

/// The attributes of a span: key-value pairs of text, borrowed from a static list or owned.
///
/// ```
/// use aiops_telemetry_core::{Attributes, SpanText};
///
/// static SHOP: [(SpanText, SpanText); 1] =
///     [(SpanText::from_static("service.version"), SpanText::from_static("1.4.2"))];
/// let shared = Attributes::Borrowed(&SHOP); // no allocation
/// let mut owned = shared.clone();
/// owned.to_mut().push(("region".into(), "eu".into())); // copied on the first change
/// assert_eq!((shared.len(), owned.len()), (1, 2));
/// ```
pub type Attributes = Cow<'static, [(SpanText, SpanText)]>;

/// One unit of work: a request handled, a call made.
///
/// Times are Unix nanoseconds (start) and nanoseconds (duration), as in OTLP. Build one with
/// [`Span::new`] and the `with_*` methods:
///
/// ```
/// use aiops_telemetry_core::{Span, SpanId, SpanKind, TraceId};
///
/// let span = Span::new(TraceId::random(), SpanId::random(), "shop", "/payment")
///     .with_kind(SpanKind::Server)
///     .with_timing(1_700_000_000_000_000_000, 180_000_000)
///     .with_http_status(503);
/// assert!(span.is_error());
/// assert_eq!(span.duration_ms(), 180.0);
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Span {
    /// The trace this span belongs to.
    pub trace_id: TraceId,
    /// This span's id, unique within its trace.
    pub span_id: SpanId,
    /// The span that caused this one, if any.
    pub parent_span_id: Option<SpanId>,
    /// The service that did the work.
    pub service: SpanText,
    /// What was done: for HTTP servers the method and route, for the demo shop its path.
    pub operation: SpanText,
    /// The span's role.
    pub kind: SpanKind,
    /// When the work started, in Unix nanoseconds.
    pub start_unix_nanos: u64,
    /// How long the work took, in nanoseconds.
    pub duration_nanos: u64,
    /// The HTTP response status, when the span is an HTTP request.
    pub http_status: Option<u16>,
    /// The outcome the span reported.
    pub status: SpanStatus,
    /// A small set of extra attributes; at least `service.version` when known. Instrumented
    /// code whose attributes are known at compile time borrows a static list (no allocation
    /// per span, and every span shares it); [`Span::with_attribute`] and decoders own theirs.
    pub attributes: Attributes,
}

impl Span {
    /// A server span with zero timing, unset status and no parent; refine with `with_*`.
    pub fn new(
        trace_id: TraceId,
        span_id: SpanId,
        service: impl Into<SpanText>,
        operation: impl Into<SpanText>,
    ) -> Self {
        Self {
            trace_id,
            span_id,
            parent_span_id: None,
            service: service.into(),
            operation: operation.into(),
            kind: SpanKind::Server,
            start_unix_nanos: 0,
            duration_nanos: 0,
            http_status: None,
            status: SpanStatus::Unset,
            attributes: Attributes::Borrowed(&[]),
        }
    }

    /// Sets the parent span.
    #[inline]
    pub fn with_parent(mut self, parent: SpanId) -> Self {
        self.parent_span_id = Some(parent);
        self
    }

    /// Sets the kind.
    #[inline]
    pub fn with_kind(mut self, kind: SpanKind) -> Self {
        self.kind = kind;
        self
    }

    /// Sets start (Unix nanoseconds) and duration (nanoseconds).
    #[inline]
    pub fn with_timing(mut self, start_unix_nanos: u64, duration_nanos: u64) -> Self {
        self.start_unix_nanos = start_unix_nanos;
        self.duration_nanos = duration_nanos;
        self
    }

    /// Sets the HTTP status code.
    #[inline]
    pub fn with_http_status(mut self, code: u16) -> Self {
        self.http_status = Some(code);
        self
    }

    /// Sets the reported status.
    #[inline]
    pub fn with_status(mut self, status: SpanStatus) -> Self {
        self.status = status;
        self
    }

    /// Adds an attribute.
    pub fn with_attribute(mut self, key: impl Into<SpanText>, value: impl Into<SpanText>) -> Self {
        self.attributes.to_mut().push((key.into(), value.into()));
        self
    }

    /// True when the span failed: status `Error`, or an HTTP status of 500 or more.
    #[inline]
    pub fn is_error(&self) -> bool {
        self.status.failed(self.http_status)
    }

    /// True when `other` belongs to the same endpoint (service and operation). Spans of a
    /// batch usually come in runs of one endpoint; recorders compare with the previous span
    /// before looking an endpoint up.
    #[inline]
    pub fn same_endpoint(&self, other: &Span) -> bool {
        self.operation == other.operation && self.service == other.service
    }

    /// The endpoint this span's baseline belongs to; it shares the span's text, so making it
    /// allocates nothing.
    pub fn endpoint(&self) -> EndpointKey {
        EndpointKey::of(self.service.clone(), self.operation.clone())
    }

    /// Duration in milliseconds.
    pub fn duration_ms(&self) -> f64 {
        self.duration_nanos as f64 / 1e6
    }

    /// When the work ended, in Unix nanoseconds.
    pub fn end_unix_nanos(&self) -> u64 {
        self.start_unix_nanos.saturating_add(self.duration_nanos)
    }

    /// The value of attribute `key`, if present.
    pub fn attribute(&self, key: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span() -> Span {
        Span::new(TraceId::random(), SpanId::random(), "shop", "/payment")
    }

    #[test]
    fn error_comes_from_status_or_a_5xx_code() {
        assert!(!span().is_error());
        assert!(!span().with_http_status(404).is_error());
        assert!(span().with_http_status(500).is_error());
        assert!(
            span()
                .with_status(SpanStatus::Error)
                .with_http_status(200)
                .is_error()
        );
    }

    #[test]
    fn attributes_are_found_by_key() {
        let span = span().with_attribute("service.version", "1.2.3");
        assert_eq!(span.attribute("service.version"), Some("1.2.3"));
        assert_eq!(span.attribute("missing"), None);
    }

    #[test]
    fn span_kind_names_round_trip() {
        for kind in SpanKind::ALL {
            assert_eq!(SpanKind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(SpanKind::parse("SERVER"), None);
    }

    #[test]
    fn span_round_trips_through_json() {
        let original = span()
            .with_parent(SpanId::random())
            .with_timing(5, 7)
            .with_http_status(200);
        let json = serde_json::to_string(&original).expect("serializes");
        assert_eq!(
            serde_json::from_str::<Span>(&json).expect("deserializes"),
            original
        );
    }

    #[test]
    fn the_endpoint_of_a_span_shares_its_text() {
        let span = Span::new(
            TraceId::random(),
            SpanId::random(),
            SpanText::from("shop".to_owned()),
            SpanText::from("/payment".to_owned()),
        );
        let endpoint = span.endpoint();
        assert_eq!(endpoint.service.as_ptr(), span.service.as_ptr());
        assert_eq!(endpoint.operation.as_ptr(), span.operation.as_ptr());
        assert_eq!(endpoint, EndpointKey::new("shop", "/payment"));
        assert_eq!(endpoint, EndpointKey::new(String::from("shop"), "/payment"));
        assert_eq!(endpoint.to_string(), "shop /payment");
    }

    #[test]
    fn endpoint_key_is_a_json_object_of_two_strings() {
        let key = EndpointKey::new("shop", "/pay \"ment\"");
        let json = serde_json::to_string(&key).expect("serializes");
        assert_eq!(json, r#"{"service":"shop","operation":"/pay \"ment\""}"#);
        let back: EndpointKey = serde_json::from_str(&json).expect("deserializes");
        assert_eq!(back, key);
        let value = serde_json::json!({"service": "x", "operation": "y"});
        let from_value: EndpointKey = serde_json::from_value(value).expect("deserializes");
        assert_eq!(from_value, EndpointKey::new("x", "y"));
    }

    #[test]
    fn end_time_saturates() {
        assert_eq!(span().with_timing(u64::MAX, 10).end_unix_nanos(), u64::MAX);
    }
}
