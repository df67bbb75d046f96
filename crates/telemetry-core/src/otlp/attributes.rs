//! Which OTLP attributes a decoded span keeps, and how attribute values become text.
//!
//! A span keeps the few semantic-convention attributes that explain a fault (the route and
//! status, the RPC method, the database, the host or pod that served it, the version, the
//! exception), not its payload: [`KeptAttributes`] names them, a key or a `prefix.*` pattern
//! each, and caps both how many a span keeps ([`MAX_KEPT_ATTRIBUTES`]) and how long a value
//! may be ([`MAX_ATTRIBUTE_BYTES`]). The span's own attributes are looked at first, then its
//! resource's, so that a resource attribute (`host.name`, `k8s.pod.name`) names every span of
//! the process that served it.

use std::collections::HashSet;
use std::fmt::Write as _;

use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue};
use thiserror::Error;

use crate::text::SpanText;

/// Longest attribute value kept, in bytes: names and codes, not payloads.
pub const MAX_ATTRIBUTE_BYTES: usize = 256;

/// Most attributes a span keeps beyond the ones that name its peer.
pub const MAX_KEPT_ATTRIBUTES: usize = 32;

/// The attributes an OTLP span keeps unless told otherwise: route, method and status of HTTP,
/// the RPC and database called, the peer, where it ran, the version, the exception, and the
/// status message (`otel.status_description`). `server.address` is not among them: on a
/// server span it is the server's own name; client spans keep it as their peer anyway.
pub const DEFAULT_SPAN_ATTRIBUTES: [&str; 19] = [
    "http.route",
    "http.request.method",
    "http.method",
    "http.response.status_code",
    "http.status_code",
    "url.path",
    "rpc.*",
    "db.system",
    "db.name",
    "db.operation",
    "peer.service",
    "deployment.environment",
    "k8s.pod.name",
    "host.name",
    "service.version",
    "exception.type",
    "exception.message",
    "otel.status_description",
    "cloud.region",
];

/// Why a list of attribute names was refused.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum KeptAttributesError {
    /// A name was empty.
    #[error(
        "otlp: an attribute name is empty; accepted: names such as http.route, or prefixes such as rpc.*"
    )]
    Empty,
    /// A `*` appeared elsewhere than at the end, after a dot.
    #[error(
        "otlp: attribute pattern {0:?} is not a name or a prefix; accepted: names such as http.route, or prefixes ending in .* such as rpc.*"
    )]
    Pattern(String),
    /// More names than a span may keep.
    #[error("otlp: {count} attribute names given; accepted: at most {max}")]
    TooMany {
        /// How many were given.
        count: usize,
        /// The most accepted.
        max: usize,
    },
}

/// The attribute names (or `prefix.*` patterns) decoded spans keep; see the module docs.
///
/// ```
/// use aiops_telemetry_core::otlp::KeptAttributes;
///
/// let kept = KeptAttributes::new(["http.route", "rpc.*"])?;
/// assert!(kept.keeps("rpc.method"));
/// assert!(!kept.keeps("http.url"));
/// assert!(KeptAttributes::default().keeps("k8s.pod.name"));
/// assert!(KeptAttributes::new(["r*c"]).is_err());
/// # Ok::<(), aiops_telemetry_core::otlp::KeptAttributesError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeptAttributes {
    names: Vec<String>,
    /// The names as text that kept attributes share, so that keeping one allocates no key.
    texts: Vec<SpanText>,
}

/// Text met while decoding one request, so that its spans share each distinct value.
#[derive(Debug, Default)]
pub(crate) struct Interner {
    seen: HashSet<SpanText>,
}

impl Interner {
    /// `text` as shared text: a clone of the one met before, or a new one remembered.
    pub(crate) fn text(&mut self, text: &str) -> SpanText {
        if let Some(known) = self.seen.get(text) {
            return known.clone();
        }
        let new = SpanText::copied(text);
        self.seen.insert(new.clone());
        new
    }
}

impl Default for KeptAttributes {
    fn default() -> Self {
        Self::from_names(
            DEFAULT_SPAN_ATTRIBUTES
                .iter()
                .map(|&n| n.to_owned())
                .collect(),
        )
    }
}

impl KeptAttributes {
    /// Keeps exactly `names`: keys, or prefixes ending in `.*`. An empty list keeps none.
    pub fn new<S: AsRef<str>>(
        names: impl IntoIterator<Item = S>,
    ) -> Result<Self, KeptAttributesError> {
        let mut kept = Vec::new();
        for name in names {
            let name = name.as_ref().trim();
            if name.is_empty() {
                return Err(KeptAttributesError::Empty);
            }
            let stars = name.matches('*').count();
            if stars > 1 || (stars == 1 && (!name.ends_with(".*") || name.len() < 3)) {
                return Err(KeptAttributesError::Pattern(name.to_owned()));
            }
            if !kept.iter().any(|k| k == name) {
                kept.push(name.to_owned());
            }
        }
        if kept.len() > MAX_KEPT_ATTRIBUTES {
            return Err(KeptAttributesError::TooMany {
                count: kept.len(),
                max: MAX_KEPT_ATTRIBUTES,
            });
        }
        Ok(Self::from_names(kept))
    }

    fn from_names(names: Vec<String>) -> Self {
        let texts = names.iter().map(|name| SpanText::copied(name)).collect();
        Self { names, texts }
    }

    /// The names and patterns, as given.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// Whether attribute `key` is kept.
    pub fn keeps(&self, key: &str) -> bool {
        self.kept_as(key).is_some()
    }

    /// Whether `key` is kept: `Some` with the list's text when the list names it exactly,
    /// `Some(None)` when a prefix keeps it, `None` when it is not kept.
    fn kept_as(&self, key: &str) -> Option<Option<&SpanText>> {
        self.names
            .iter()
            .zip(&self.texts)
            .find_map(|(name, text)| match name.strip_suffix('*') {
                Some(prefix) => {
                    (key.starts_with(prefix) && key.len() > prefix.len()).then_some(None)
                }
                None => (name == key).then_some(Some(text)),
            })
    }

    /// The kept attributes of `attributes`, as text, at most `room` of them, appended to `out`
    /// unless `out` already holds the key.
    #[cfg(test)]
    pub(crate) fn collect(
        &self,
        attributes: &[KeyValue],
        room: usize,
        out: &mut Vec<(SpanText, SpanText)>,
    ) {
        self.collect_interned(attributes, room, out, &mut Interner::default());
    }

    /// [`collect`](Self::collect), values shared through `interner`.
    pub(crate) fn collect_interned(
        &self,
        attributes: &[KeyValue],
        room: usize,
        out: &mut Vec<(SpanText, SpanText)>,
        interner: &mut Interner,
    ) {
        let limit = out.len() + room;
        for kv in attributes {
            if out.len() >= limit {
                return;
            }
            let Some(name) = self.kept_as(&kv.key) else {
                continue;
            };
            if out.iter().any(|(key, _)| key.as_str() == kv.key) {
                continue;
            }
            if let Some(text) = kv.value.as_ref().and_then(scalar_text)
                && !text.is_empty()
            {
                let key = name.cloned().unwrap_or_else(|| interner.text(&kv.key));
                out.push((key, interner.text(capped(&text))));
            }
        }
    }
}

/// A scalar value as text (`503`, `true`, `0.25`, the string itself); `None` for arrays, maps,
/// bytes and empty values.
pub(crate) fn scalar_text(value: &AnyValue) -> Option<std::borrow::Cow<'_, str>> {
    use std::borrow::Cow;
    Some(match value.value.as_ref()? {
        Value::StringValue(text) => Cow::Borrowed(text.as_str()),
        Value::IntValue(n) => Cow::Owned(n.to_string()),
        Value::BoolValue(b) => Cow::Borrowed(if *b { "true" } else { "false" }),
        Value::DoubleValue(x) => Cow::Owned(x.to_string()),
        _ => return None,
    })
}

/// Any value as text: strings as they are, everything else as JSON (bytes as a hex string).
pub(crate) fn any_value_text(value: &AnyValue) -> String {
    match value.value.as_ref() {
        Some(Value::StringValue(text)) => text.clone(),
        _ => {
            let mut out = String::new();
            write_json(value, &mut out, 0);
            out
        }
    }
}

/// How deep nested arrays and maps are rendered; deeper values are `null`.
const MAX_DEPTH: usize = 8;

fn write_json(value: &AnyValue, out: &mut String, depth: usize) {
    if depth > MAX_DEPTH {
        out.push_str("null");
        return;
    }
    match value.value.as_ref() {
        None | Some(Value::StringValueStrindex(_)) => out.push_str("null"),
        Some(Value::StringValue(text)) => write_json_string(text, out),
        Some(Value::BoolValue(b)) => out.push_str(if *b { "true" } else { "false" }),
        Some(Value::IntValue(n)) => {
            let _ = write!(out, "{n}");
        }
        Some(Value::DoubleValue(x)) if x.is_finite() => {
            let _ = write!(out, "{x}");
        }
        Some(Value::DoubleValue(_)) => out.push_str("null"),
        Some(Value::BytesValue(bytes)) => {
            out.push('"');
            for byte in bytes {
                let _ = write!(out, "{byte:02x}");
            }
            out.push('"');
        }
        Some(Value::ArrayValue(array)) => {
            out.push('[');
            for (i, item) in array.values.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json(item, out, depth + 1);
            }
            out.push(']');
        }
        Some(Value::KvlistValue(list)) => {
            out.push('{');
            for (i, kv) in list.values.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json_string(&kv.key, out);
                out.push(':');
                match &kv.value {
                    Some(value) => write_json(value, out, depth + 1),
                    None => out.push_str("null"),
                }
            }
            out.push('}');
        }
    }
}

fn write_json_string(text: &str, out: &mut String) {
    // serde_json escapes exactly as JSON requires; a string always serializes.
    out.push_str(&serde_json::to_string(text).unwrap_or_else(|_| "\"\"".into()));
}

/// `value` cut to at most [`MAX_ATTRIBUTE_BYTES`], on a character boundary.
pub(crate) fn capped(value: &str) -> &str {
    capped_to(value, MAX_ATTRIBUTE_BYTES)
}

/// `value` cut to at most `max` bytes, on a character boundary.
pub(crate) fn capped_to(value: &str, max: usize) -> &str {
    if value.len() <= max {
        return value;
    }
    let mut end = max;
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    &value[..end]
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::common::v1::{ArrayValue, KeyValueList};

    fn any(value: Value) -> AnyValue {
        AnyValue { value: Some(value) }
    }

    fn kv(key: &str, value: Value) -> KeyValue {
        KeyValue {
            key: key.into(),
            value: Some(any(value)),
            ..KeyValue::default()
        }
    }

    #[test]
    fn patterns_keep_names_under_their_prefix_only() {
        let kept = KeptAttributes::new(["rpc.*", "db.system"]).expect("valid");
        assert!(kept.keeps("rpc.method"));
        assert!(!kept.keeps("rpc."));
        assert!(!kept.keeps("rpcx.method"));
        assert!(kept.keeps("db.system"));
        assert!(!kept.keeps("db.system.name"));
    }

    #[test]
    fn bad_lists_are_refused_with_what_is_accepted() {
        assert_eq!(KeptAttributes::new([" "]), Err(KeptAttributesError::Empty));
        assert_eq!(
            KeptAttributes::new(["*"]).unwrap_err().to_string(),
            "otlp: attribute pattern \"*\" is not a name or a prefix; accepted: names such as \
             http.route, or prefixes ending in .* such as rpc.*"
        );
        let many: Vec<String> = (0..40).map(|i| format!("a{i}")).collect();
        assert_eq!(
            KeptAttributes::new(&many).unwrap_err().to_string(),
            "otlp: 40 attribute names given; accepted: at most 32"
        );
        assert_eq!(
            KeptAttributes::new(["a", "a"]).expect("dup").names().len(),
            1
        );
    }

    #[test]
    fn collected_values_are_text_capped_and_first_wins() {
        let kept = KeptAttributes::new(["code", "ok", "long", "skip"]).expect("valid");
        let attributes = [
            kv("code", Value::IntValue(503)),
            kv("ok", Value::BoolValue(true)),
            kv("long", Value::StringValue("x".repeat(1000))),
            kv("skip", Value::ArrayValue(ArrayValue::default())),
            kv("other", Value::StringValue("no".into())),
        ];
        let mut out = vec![(SpanText::from("code"), SpanText::from("first"))];
        kept.collect(&attributes, 10, &mut out);
        let pairs: Vec<(&str, usize)> = out.iter().map(|(k, v)| (k.as_str(), v.len())).collect();
        assert_eq!(
            pairs,
            [("code", 5), ("ok", 4), ("long", MAX_ATTRIBUTE_BYTES)]
        );
        let mut few = Vec::new();
        kept.collect(&attributes, 1, &mut few);
        assert_eq!(few.len(), 1);
    }

    #[test]
    fn structured_values_render_as_json() {
        let value = any(Value::KvlistValue(KeyValueList {
            values: vec![
                kv("user", Value::StringValue("a\"b".into())),
                kv(
                    "ids",
                    Value::ArrayValue(ArrayValue {
                        values: vec![any(Value::IntValue(1)), any(Value::DoubleValue(0.5))],
                    }),
                ),
                kv("raw", Value::BytesValue(vec![0xab, 0x01])),
            ],
        }));
        assert_eq!(
            any_value_text(&value),
            r#"{"user":"a\"b","ids":[1,0.5],"raw":"ab01"}"#
        );
        assert_eq!(
            any_value_text(&any(Value::StringValue("plain".into()))),
            "plain"
        );
        assert_eq!(capped_to("héllo", 2), "h");
    }
}
