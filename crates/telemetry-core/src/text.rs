//! The text of a span, shared rather than copied.

use std::borrow::{Borrow, Cow};
use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::Deref;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

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

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::ids::{SpanId, TraceId};
    use crate::span::Span;

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
        let span = Span::new(TraceId::random(), SpanId::random(), "shop", "/payment")
            .with_attribute("service.version", text.clone());
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
