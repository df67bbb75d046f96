use std::borrow::{Borrow, Cow};
use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::Deref;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::ids::{SpanId, TraceId};

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

/// The identity baselines are learned for: one operation of one service.
///
/// For HTTP servers the operation is the method and route (`POST /payment`); the demo shop uses
/// its path (`/payment`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct EndpointKey {
    /// The service that owns the endpoint (OpenTelemetry `service.name`).
    pub service: String,
    /// The operation within the service.
    pub operation: String,
}

impl EndpointKey {
    /// An endpoint of `service` named `operation`.
    pub fn new(service: impl Into<String>, operation: impl Into<String>) -> Self {
        Self {
            service: service.into(),
            operation: operation.into(),
        }
    }
}

impl fmt::Display for EndpointKey {
    /// `service operation`, e.g. `shop /payment`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.service, self.operation)
    }
}

/// Text of a span: a service name, an operation, an attribute key or value.
///
/// Text known at compile time (the usual case for service names, routes and attribute keys of
/// instrumented code) is kept as a `&'static str` and costs nothing; other text (spans decoded
/// from OTLP or storage, names built at run time) is kept once in a reference-counted
/// `Arc<str>` and shared by every copy. Either way a clone never allocates or copies the text:
/// at most it increments a reference count. The text is allocated once, when a `SpanText` is
/// made from a `String` or `Cow`; to share text between many spans, make it once and clone it.
///
/// It behaves like a `str`: it dereferences to one, and equality, ordering and hashing are
/// those of the text, whichever way it is kept, so a `HashMap<SpanText, _>` can be looked up
/// by `&str`. It serializes as a plain string.
///
/// ```
/// use aiops_telemetry_core::SpanText;
///
/// let route = SpanText::from(String::from("/payment"));
/// let copy = route.clone();
/// assert_eq!(copy.as_str().as_ptr(), route.as_str().as_ptr()); // shared, not copied
/// assert_eq!(copy, "/payment");
/// assert_eq!(SpanText::from("/payment"), route);
/// ```
#[derive(Clone)]
pub struct SpanText(Repr);

#[derive(Clone)]
enum Repr {
    /// Text known at compile time.
    Static(&'static str),
    /// Text made at run time, shared by every clone.
    Shared(Arc<str>),
}

impl SpanText {
    /// Text known at compile time; usable in constants.
    pub const fn from_static(text: &'static str) -> Self {
        Self(Repr::Static(text))
    }

    /// `text` copied once into shared storage: its clones share that copy.
    pub fn copied(text: &str) -> Self {
        Self(Repr::Shared(Arc::from(text)))
    }

    /// The text.
    #[inline]
    pub fn as_str(&self) -> &str {
        match &self.0 {
            Repr::Static(text) => text,
            Repr::Shared(text) => text,
        }
    }
}

impl Default for SpanText {
    /// The empty text.
    fn default() -> Self {
        Self::from_static("")
    }
}

impl Deref for SpanText {
    type Target = str;

    #[inline]
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for SpanText {
    #[inline]
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl Borrow<str> for SpanText {
    #[inline]
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

impl From<&'static str> for SpanText {
    fn from(text: &'static str) -> Self {
        Self::from_static(text)
    }
}

impl From<String> for SpanText {
    fn from(text: String) -> Self {
        if text.is_empty() {
            Self::default()
        } else {
            Self(Repr::Shared(Arc::from(text)))
        }
    }
}

impl From<Arc<str>> for SpanText {
    fn from(text: Arc<str>) -> Self {
        Self(Repr::Shared(text))
    }
}

impl From<Cow<'static, str>> for SpanText {
    fn from(text: Cow<'static, str>) -> Self {
        match text {
            Cow::Borrowed(text) => Self::from_static(text),
            Cow::Owned(text) => Self::from(text),
        }
    }
}

impl From<SpanText> for String {
    fn from(text: SpanText) -> Self {
        text.as_str().to_owned()
    }
}

impl PartialEq for SpanText {
    #[inline]
    fn eq(&self, other: &Self) -> bool {
        let (text, other) = (self.as_str(), other.as_str());
        // Clones share their text, so the common case is answered without reading it.
        std::ptr::eq(text, other) || text == other
    }
}

impl Eq for SpanText {}

impl PartialOrd for SpanText {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for SpanText {
    #[inline]
    fn cmp(&self, other: &Self) -> Ordering {
        self.as_str().cmp(other.as_str())
    }
}

impl Hash for SpanText {
    /// Hashes as the `str` does, so that look-ups through [`Borrow<str>`] find it.
    #[inline]
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

/// `SpanText == T` and `T == SpanText` for string types `T`, by the text.
macro_rules! eq_with_str {
    ($($other:ty),*) => {$(
        impl PartialEq<$other> for SpanText {
            fn eq(&self, other: &$other) -> bool {
                self.as_str() == AsRef::<str>::as_ref(other)
            }
        }

        impl PartialEq<SpanText> for $other {
            fn eq(&self, other: &SpanText) -> bool {
                AsRef::<str>::as_ref(self) == other.as_str()
            }
        }
    )*};
}

eq_with_str!(str, &str, String);

impl fmt::Display for SpanText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self.as_str(), f)
    }
}

impl fmt::Debug for SpanText {
    /// As the text's `Debug`: quoted and escaped.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl Serialize for SpanText {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for SpanText {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;

        impl serde::de::Visitor<'_> for Visitor {
            type Value = SpanText;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }

            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<SpanText, E> {
                Ok(SpanText::copied(text))
            }
        }

        deserializer.deserialize_str(Visitor)
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
        self.status == SpanStatus::Error || self.http_status.is_some_and(|code| code >= 500)
    }

    /// True when `other` belongs to the same endpoint (service and operation). Spans of a
    /// batch usually come in runs of one endpoint; recorders compare with the previous span
    /// before looking an endpoint up.
    #[inline]
    pub fn same_endpoint(&self, other: &Span) -> bool {
        self.operation == other.operation && self.service == other.service
    }

    /// The endpoint this span's baseline belongs to.
    pub fn endpoint(&self) -> EndpointKey {
        EndpointKey::new(self.service.as_str(), self.operation.as_str())
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
    use std::collections::HashMap;

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
    fn end_time_saturates() {
        assert_eq!(span().with_timing(u64::MAX, 10).end_unix_nanos(), u64::MAX);
    }

    fn shared(text: &str) -> SpanText {
        SpanText::from(Arc::<str>::from(text))
    }

    /// The hash with fixed keys, so that hashes of different values compare.
    fn hash_of<T: Hash + ?Sized>(value: &T) -> u64 {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        value.hash(&mut hasher);
        hasher.finish()
    }

    #[test]
    fn span_text_compares_and_hashes_as_its_text_however_it_is_kept() {
        let texts = ["", "/checkout", "/payment", "shop", "ключ"];
        for a in texts {
            for b in texts {
                let b_string = b.to_owned();
                for x in [SpanText::from(a), shared(a)] {
                    for y in [SpanText::from(b), shared(b)] {
                        assert_eq!(x == y, a == b, "{x:?} == {y:?}");
                        assert_eq!(x.cmp(&y), a.cmp(b), "{x:?} cmp {y:?}");
                        assert_eq!(x.partial_cmp(&y), a.partial_cmp(b));
                    }
                    assert_eq!(x == *b, a == b);
                    assert_eq!(x == b, a == b);
                    assert_eq!(x == b_string, a == b);
                    assert_eq!(*b == x, a == b);
                    assert_eq!(b == x, a == b);
                    assert_eq!(b_string == x, a == b);
                }
            }
            assert_eq!(hash_of(&SpanText::from(a)), hash_of(a));
            assert_eq!(hash_of(&shared(a)), hash_of(a));
        }
        let mut sorted = vec![
            shared("b"),
            SpanText::from("c"),
            SpanText::from("a"),
            shared(""),
        ];
        sorted.sort();
        assert_eq!(sorted, ["", "a", "b", "c"]);
    }

    #[test]
    fn a_map_keyed_by_span_text_is_found_by_str_and_by_either_kind() {
        let mut map = HashMap::new();
        map.insert(shared("/payment"), 1);
        map.insert(SpanText::from("/checkout"), 2);
        assert_eq!(map.get("/payment"), Some(&1));
        assert_eq!(map.get(&SpanText::from("/payment")), Some(&1));
        assert_eq!(map.get(&shared("/payment")), Some(&1));
        assert_eq!(map.get("/checkout"), Some(&2));
        assert_eq!(map.get(&shared("/checkout")), Some(&2));
        assert_eq!(map.get("/inventory"), None);
        assert_eq!(hash_of(&shared("x")), hash_of(&SpanText::from("x")));
    }

    #[test]
    fn span_text_converts_from_and_to_the_usual_string_types() {
        let owned: Cow<'static, str> = Cow::Owned("owned".to_owned());
        let borrowed: Cow<'static, str> = Cow::Borrowed("borrowed");
        assert_eq!(SpanText::from(owned), "owned");
        assert_eq!(SpanText::from(borrowed), "borrowed");
        assert_eq!(SpanText::from("static".to_owned()), "static");
        assert_eq!(String::from(shared("back")), "back");
        assert_eq!(SpanText::default(), "");
        assert_eq!(SpanText::from(String::new()), SpanText::default());
        let text = shared("/payment");
        assert_eq!(
            (&*text, text.as_ref(), text.as_str()),
            ("/payment", "/payment", "/payment")
        );
        assert!(text.starts_with("/pay"), "str methods through Deref");
    }

    #[test]
    fn span_text_formats_as_its_text() {
        let text = shared("a \"b\"");
        assert_eq!(format!("{text}"), "a \"b\"");
        assert_eq!(format!("{text:?}"), format!("{:?}", "a \"b\""));
        assert_eq!(format!("[{:>4}]", SpanText::from("ab")), "[  ab]");
    }

    #[test]
    fn span_text_is_a_plain_json_string() {
        for text in [
            SpanText::from("shop"),
            shared("/pay \"ment\"\n"),
            SpanText::default(),
        ] {
            let json = serde_json::to_string(&text).expect("serializes");
            assert_eq!(
                json,
                serde_json::to_string(text.as_str()).expect("serializes")
            );
            let back: SpanText = serde_json::from_str(&json).expect("deserializes");
            assert_eq!(back, text);
        }
        assert_eq!(
            serde_json::to_string(&vec![(SpanText::from("k"), shared("v"))]).expect("serializes"),
            r#"[["k","v"]]"#
        );
        // Borrowed and owned (escaped) JSON strings both deserialize.
        let texts: Vec<SpanText> =
            serde_json::from_str(r#"["plain", "esc\"aped"]"#).expect("deserializes");
        assert_eq!(texts, ["plain", "esc\"aped"]);
        assert!(serde_json::from_str::<SpanText>("42").is_err());
    }

    #[test]
    fn cloning_span_text_shares_it() {
        let text = SpanText::from("/payment".to_owned());
        let copy = text.clone();
        assert_eq!(copy.as_str().as_ptr(), text.as_str().as_ptr());
        let Repr::Shared(arc) = &text.0 else {
            panic!("text made at run time is shared");
        };
        assert_eq!(Arc::strong_count(arc), 2);
        let span = span().with_attribute("service.version", text.clone());
        let copy = span.clone();
        assert_eq!(copy.service.as_ptr(), span.service.as_ptr());
        assert_eq!(
            copy.attribute("service.version").map(str::as_ptr),
            Some(text.as_ptr())
        );
        let constant = SpanText::from("shop");
        assert_eq!(constant.clone().as_ptr(), "shop".as_ptr());
    }
}
