//! Span chunks: the binary encoding of a group of spans stored as one row of `span_chunks`.
//!
//! A chunk holds the spans one writer transaction appended to one block, in id order: its row
//! id is the id of its first span and span `i` has id `id + i`, so a chunk never straddles a
//! block. The blob is:
//!
//! ```text
//! chunk  := version:u8 (= 2)  base_start:varint  span*
//! span   := flags:u8  endpoint_id:varint  [http_status:varint]  start_delta:zigzag-varint
//!           duration:varint  trace_id:16 bytes  span_id:8 bytes  [parent_span_id:8 bytes]
//!           [attributes_len:varint  (key_len:varint key value_len:varint value)*]
//! flags  := bit 0: has parent, bit 1: has HTTP status, bits 2-4: kind, bits 5-6: status,
//!           bit 7: same attributes as the previous span (version 2; then none follow)
//! ```
//!
//! Varints are LEB128 (7 bits per byte, least significant first). `start_delta` is the span's
//! start minus the previous span's (the first span's previous is `base_start`), zigzag-encoded
//! so that spans out of time order cost a few bytes too. `attributes_len` is the byte length of
//! the pairs that follow, so readers that need no attributes skip them in one step. Spans of one
//! service mostly repeat their attributes (its version, the request method): a span whose
//! attributes equal the previous span's in the chunk sets bit 7 instead of writing them again,
//! which halves the bytes of a typical instrumented request. Version 1 chunks (written before
//! bit 7 existed) are read as they are. Fields a window query needs come first, the ids and
//! attributes last.

use aiops_telemetry_core::{Attributes, Span, SpanId, SpanStatus, SpanText, TraceId};

use crate::codec::{corrupt, kind_code, kind_from_code, status_code, status_from_code};
use crate::error::StoreError;

/// The encoding version, the first byte of every chunk written.
const VERSION: u8 = 2;
/// The version before [`SAME_ATTRIBUTES`]; still read.
const VERSION_1: u8 = 1;
const HAS_PARENT: u8 = 1;
const HAS_HTTP_STATUS: u8 = 1 << 1;
const KIND_SHIFT: u8 = 2;
const STATUS_SHIFT: u8 = 5;
const SAME_ATTRIBUTES: u8 = 1 << 7;

/// Builds one chunk in a buffer that is reused from chunk to chunk.
#[derive(Debug, Default)]
pub(crate) struct ChunkEncoder {
    bytes: Vec<u8>,
    count: usize,
    previous_start: u64,
    min_start: u64,
    max_start: u64,
    /// The attributes of the chunk's last span that wrote its attributes.
    previous_attributes: Attributes,
}

impl ChunkEncoder {
    /// Empties the buffer for a new chunk, keeping its allocation.
    pub(crate) fn clear(&mut self) {
        self.bytes.clear();
        self.count = 0;
    }

    /// Spans encoded since the last [`ChunkEncoder::clear`].
    pub(crate) fn len(&self) -> usize {
        self.count
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The encoded chunk.
    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The smallest and largest span start of the chunk; meaningless while it is empty.
    pub(crate) fn start_range(&self) -> (u64, u64) {
        (self.min_start, self.max_start)
    }

    /// Appends `span`, whose endpoint was interned as `endpoint_id`.
    pub(crate) fn push(&mut self, span: &Span, endpoint_id: i64) {
        let start = span.start_unix_nanos;
        if self.count == 0 {
            self.bytes.push(VERSION);
            put_varint(&mut self.bytes, start);
            self.previous_start = start;
            self.min_start = start;
            self.max_start = start;
        }
        // The first span of a chunk always writes its attributes.
        // Spans of instrumented code usually share one static list: same address, same list.
        let same_attributes = self.count > 0
            && (std::ptr::eq(&*span.attributes, &*self.previous_attributes)
                || span.attributes == self.previous_attributes);
        if self.count > 0 {
            self.min_start = self.min_start.min(start);
            self.max_start = self.max_start.max(start);
        }
        let mut flags = (kind_code(span.kind) as u8) << KIND_SHIFT
            | (status_code(span.status) as u8) << STATUS_SHIFT;
        if span.parent_span_id.is_some() {
            flags |= HAS_PARENT;
        }
        if span.http_status.is_some() {
            flags |= HAS_HTTP_STATUS;
        }
        if same_attributes {
            flags |= SAME_ATTRIBUTES;
        }
        let out = &mut self.bytes;
        out.push(flags);
        // Endpoint ids are SQLite rowids, never negative.
        put_varint(out, endpoint_id as u64);
        if let Some(code) = span.http_status {
            put_varint(out, u64::from(code));
        }
        put_varint(out, zigzag(start.wrapping_sub(self.previous_start) as i64));
        self.previous_start = start;
        put_varint(out, span.duration_nanos);
        out.extend_from_slice(span.trace_id.as_bytes());
        out.extend_from_slice(span.span_id.as_bytes());
        if let Some(parent) = &span.parent_span_id {
            out.extend_from_slice(parent.as_bytes());
        }
        if !same_attributes {
            self.put_attributes(span);
        }
        self.count += 1;
    }

    fn put_attributes(&mut self, span: &Span) {
        let out = &mut self.bytes;
        let length: usize = span
            .attributes
            .iter()
            .map(|(key, value)| {
                varint_len(key.len()) + key.len() + varint_len(value.len()) + value.len()
            })
            .sum();
        put_varint(out, length as u64);
        for (key, value) in span.attributes.iter() {
            put_varint(out, key.len() as u64);
            out.extend_from_slice(key.as_bytes());
            put_varint(out, value.len() as u64);
            out.extend_from_slice(value.as_bytes());
        }
        self.previous_attributes.clone_from(&span.attributes);
    }
}

/// One span of a chunk as stored: the fields borrowed from the blob, nothing allocated.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RawSpan<'a> {
    flags: u8,
    pub(crate) endpoint_id: i64,
    pub(crate) http_status: Option<u16>,
    pub(crate) start_unix_nanos: u64,
    pub(crate) duration_nanos: u64,
    pub(crate) trace_id: &'a [u8; 16],
    span_id: &'a [u8; 8],
    parent_span_id: Option<&'a [u8; 8]>,
    attributes: &'a [u8],
}

impl RawSpan<'_> {
    /// [`Span::is_error`] of the stored span.
    pub(crate) fn is_error(&self) -> bool {
        (self.flags >> STATUS_SHIFT) & 0b11 == status_code(SpanStatus::Error) as u8
            || self.http_status.is_some_and(|code| code >= 500)
    }

    /// The span, with the endpoint's names (shared, not copied: make them once per endpoint).
    pub(crate) fn to_span(
        self,
        service: SpanText,
        operation: SpanText,
    ) -> Result<Span, StoreError> {
        let mut attributes = Vec::new();
        let mut rest = self.attributes;
        while !rest.is_empty() {
            let key = take_str(&mut rest)?;
            let value = take_str(&mut rest)?;
            attributes.push((SpanText::copied(key), SpanText::copied(value)));
        }
        Ok(Span {
            trace_id: TraceId::from_bytes(*self.trace_id),
            span_id: SpanId::from_bytes(*self.span_id),
            parent_span_id: self.parent_span_id.map(|bytes| SpanId::from_bytes(*bytes)),
            service,
            operation,
            kind: kind_from_code(i64::from((self.flags >> KIND_SHIFT) & 0b111))?,
            start_unix_nanos: self.start_unix_nanos,
            duration_nanos: self.duration_nanos,
            http_status: self.http_status,
            status: status_from_code(i64::from((self.flags >> STATUS_SHIFT) & 0b11))?,
            attributes: attributes.into(),
        })
    }
}

/// The spans of an encoded chunk, in order.
#[derive(Debug)]
pub(crate) struct ChunkDecoder<'a> {
    rest: &'a [u8],
    previous_start: u64,
    version: u8,
    /// The encoded attributes of the last span that wrote them.
    previous_attributes: Option<&'a [u8]>,
}

impl<'a> ChunkDecoder<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Result<Self, StoreError> {
        let mut rest = bytes;
        let version = take(&mut rest, 1)?[0];
        if version != VERSION && version != VERSION_1 {
            return Err(corrupt("span chunk", format!("unknown version {version}")));
        }
        let base = take_varint(&mut rest)?;
        Ok(Self {
            rest,
            previous_start: base,
            version,
            previous_attributes: None,
        })
    }

    /// The next span, `None` at the end of the chunk.
    pub(crate) fn next_span(&mut self) -> Result<Option<RawSpan<'a>>, StoreError> {
        if self.rest.is_empty() {
            return Ok(None);
        }
        let rest = &mut self.rest;
        let flags = take(rest, 1)?[0];
        let endpoint_id = i64::try_from(take_varint(rest)?)
            .map_err(|_| corrupt("span chunk", "endpoint id out of range"))?;
        let http_status = if flags & HAS_HTTP_STATUS != 0 {
            let code = take_varint(rest)?;
            Some(u16::try_from(code).map_err(|_| corrupt("http status", code.to_string()))?)
        } else {
            None
        };
        let start = self
            .previous_start
            .wrapping_add(unzigzag(take_varint(rest)?) as u64);
        self.previous_start = start;
        let duration = take_varint(rest)?;
        let trace_id = take_array::<16>(rest)?;
        let span_id = take_array::<8>(rest)?;
        let parent_span_id = if flags & HAS_PARENT != 0 {
            Some(take_array::<8>(rest)?)
        } else {
            None
        };
        let attributes = if flags & SAME_ATTRIBUTES != 0 {
            match self.previous_attributes {
                Some(previous) if self.version != VERSION_1 => previous,
                _ => return Err(corrupt("span chunk", "no earlier attributes to repeat")),
            }
        } else {
            let length = take_varint(rest)?;
            let attributes = take(
                rest,
                usize::try_from(length)
                    .map_err(|_| corrupt("span chunk", "attributes too long"))?,
            )?;
            self.previous_attributes = Some(attributes);
            attributes
        };
        Ok(Some(RawSpan {
            flags,
            endpoint_id,
            http_status,
            start_unix_nanos: start,
            duration_nanos: duration,
            trace_id,
            span_id,
            parent_span_id,
            attributes,
        }))
    }
}

fn zigzag(value: i64) -> u64 {
    ((value << 1) ^ (value >> 63)) as u64
}

fn unzigzag(value: u64) -> i64 {
    ((value >> 1) as i64) ^ -((value & 1) as i64)
}

fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push(value as u8 | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

fn varint_len(value: usize) -> usize {
    let bits = usize::BITS - (value | 1).leading_zeros();
    bits.div_ceil(7) as usize
}

fn truncated() -> StoreError {
    corrupt("span chunk", "truncated")
}

fn take<'a>(rest: &mut &'a [u8], n: usize) -> Result<&'a [u8], StoreError> {
    if rest.len() < n {
        return Err(truncated());
    }
    let (head, tail) = rest.split_at(n);
    *rest = tail;
    Ok(head)
}

fn take_array<'a, const N: usize>(rest: &mut &'a [u8]) -> Result<&'a [u8; N], StoreError> {
    let (head, tail) = rest.split_first_chunk::<N>().ok_or_else(truncated)?;
    *rest = tail;
    Ok(head)
}

fn take_varint(rest: &mut &[u8]) -> Result<u64, StoreError> {
    let mut value = 0u64;
    for (index, byte) in rest.iter().enumerate() {
        let shift = 7 * index as u32;
        if shift > 63 || (shift == 63 && byte & 0x7e != 0) {
            return Err(corrupt("span chunk", "varint overflows 64 bits"));
        }
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            *rest = &rest[index + 1..];
            return Ok(value);
        }
    }
    Err(truncated())
}

fn take_str<'a>(rest: &mut &'a [u8]) -> Result<&'a str, StoreError> {
    let length = usize::try_from(take_varint(rest)?).map_err(|_| truncated())?;
    std::str::from_utf8(take(rest, length)?)
        .map_err(|error| corrupt("span attributes", error.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use aiops_telemetry_core::SpanKind;
    use proptest::prelude::*;

    fn decode_all(bytes: &[u8]) -> Vec<Span> {
        let mut decoder = ChunkDecoder::new(bytes).expect("header");
        let mut spans = Vec::new();
        while let Some(raw) = decoder.next_span().expect("decodes") {
            assert_eq!(raw.endpoint_id, 7);
            spans.push(raw.to_span("svc".into(), "op".into()).expect("rebuilds"));
        }
        spans
    }

    fn round_trip(spans: &[Span]) {
        let mut encoder = ChunkEncoder::default();
        for span in spans {
            encoder.push(span, 7);
        }
        assert_eq!(encoder.len(), spans.len());
        let decoded = decode_all(encoder.as_bytes());
        assert_eq!(decoded, spans);
        if !spans.is_empty() {
            let starts = spans.iter().map(|span| span.start_unix_nanos);
            assert_eq!(
                encoder.start_range(),
                (starts.clone().min().unwrap(), starts.max().unwrap())
            );
        }
    }

    fn base(start: u64) -> Span {
        Span::new(TraceId::random(), SpanId::random(), "svc", "op").with_timing(start, 1_000)
    }

    #[test]
    fn spans_round_trip_with_and_without_optional_fields() {
        let parent = SpanId::random();
        round_trip(&[
            base(1_700_000_000_000_000_000),
            base(1_700_000_000_000_000_000 - 5)
                .with_parent(parent)
                .with_http_status(503)
                .with_kind(SpanKind::Consumer)
                .with_status(SpanStatus::Error),
            base(0).with_http_status(0).with_kind(SpanKind::Producer),
            base(u64::MAX)
                .with_timing(u64::MAX, u64::MAX)
                .with_http_status(u16::MAX)
                .with_status(SpanStatus::Ok),
            base(1)
                .with_attribute("", "")
                .with_attribute("service.version", "0.1.0")
                .with_attribute("ключ \u{0} \"quoted\" \\", "🦀\n\t\u{7f}")
                .with_attribute("x".repeat(300), "y".repeat(20_000)),
        ]);
    }

    #[test]
    fn an_encoder_is_reusable_after_clearing() {
        let mut encoder = ChunkEncoder::default();
        encoder.push(&base(10), 7);
        encoder.clear();
        assert!(encoder.is_empty());
        let second = base(99).with_http_status(200);
        encoder.push(&second, 7);
        assert_eq!(decode_all(encoder.as_bytes()), vec![second]);
    }

    #[test]
    fn damaged_chunks_are_errors_not_panics() {
        let mut encoder = ChunkEncoder::default();
        encoder.push(&base(10).with_attribute("k", "v"), 7);
        let bytes = encoder.as_bytes();
        // Version and a one-byte base start alone are an empty chunk; any other cut is damage.
        for cut in (0..bytes.len()).filter(|cut| *cut != 2) {
            let result = ChunkDecoder::new(&bytes[..cut]).and_then(|mut decoder| {
                while decoder.next_span()?.is_some() {}
                Ok(())
            });
            assert!(result.is_err(), "cut at {cut}");
        }
        assert!(ChunkDecoder::new(&[3, 0]).is_err(), "unknown version");
        assert!(
            take_varint(&mut &[0xff; 11][..]).is_err(),
            "overlong varint"
        );
    }

    #[test]
    fn repeated_attributes_are_written_once_per_run() {
        let attributed = |start| {
            base(start)
                .with_attribute("service.version", "0.1.0")
                .with_attribute("http.request.method", "GET")
        };
        let same: Vec<Span> = (0..100).map(attributed).collect();
        round_trip(&same);
        let mut encoder = ChunkEncoder::default();
        for span in &same {
            encoder.push(span, 7);
        }
        let mut alone = ChunkEncoder::default();
        alone.push(&same[0], 7);
        let attributes_len = "service.version0.1.0http.request.methodGET".len();
        assert!(
            encoder.as_bytes().len() < 100 * (alone.as_bytes().len() - attributes_len),
            "the attributes are written once: {} bytes",
            encoder.as_bytes().len()
        );

        // Runs broken by other attributes, by none, and by the same pairs in another order.
        let mut mixed = vec![
            attributed(1),
            attributed(2),
            base(3),
            base(4),
            attributed(5),
        ];
        mixed.push(
            base(6)
                .with_attribute("http.request.method", "GET")
                .with_attribute("service.version", "0.1.0"),
        );
        mixed.push(attributed(7));
        round_trip(&mixed);
    }

    #[test]
    fn a_shared_static_list_is_written_once_per_run() {
        static SHARED: [(SpanText, SpanText); 1] = [(
            SpanText::from_static("service.version"),
            SpanText::from_static("2.0"),
        )];
        let shared = |start| {
            let mut span = base(start);
            span.attributes = Attributes::Borrowed(&SHARED);
            span
        };
        // The same pairs owned by a span compare equal to the shared list.
        let owned = base(3).with_attribute("service.version", "2.0");
        let spans = [shared(1), shared(2), owned, shared(4), base(5), shared(6)];
        round_trip(&spans);
        let mut encoder = ChunkEncoder::default();
        for span in &spans {
            encoder.push(span, 7);
        }
        let written = encoder
            .as_bytes()
            .windows("service.version".len())
            .filter(|window| *window == b"service.version")
            .count();
        assert_eq!(
            written, 2,
            "once, and again after the span without attributes"
        );
    }

    #[test]
    fn version_1_chunks_are_still_read() {
        // Spans whose attributes all differ encode exactly as version 1 did.
        let spans: Vec<Span> = (0..3)
            .map(|n| {
                base(n)
                    .with_attribute("n", n.to_string())
                    .with_http_status(200)
            })
            .collect();
        let mut encoder = ChunkEncoder::default();
        for span in &spans {
            encoder.push(span, 7);
        }
        let mut bytes = encoder.as_bytes().to_vec();
        bytes[0] = VERSION_1;
        assert_eq!(decode_all(&bytes), spans);
    }

    #[test]
    fn a_repeat_with_nothing_to_repeat_is_damage() {
        let repeat_first = |version: u8| {
            let mut bytes = vec![version, 0, SAME_ATTRIBUTES, 7, 0, 0];
            bytes.extend_from_slice(&[1; 24]);
            let mut decoder = ChunkDecoder::new(&bytes).expect("header");
            decoder.next_span().map(|_| ())
        };
        assert!(repeat_first(VERSION).is_err());
        assert!(repeat_first(VERSION_1).is_err());

        // Version 1 had no repeats, even after a span that wrote its attributes.
        let mut encoder = ChunkEncoder::default();
        encoder.push(&base(1).with_attribute("k", "v"), 7);
        encoder.push(&base(2).with_attribute("k", "v"), 7);
        let mut bytes = encoder.as_bytes().to_vec();
        bytes[0] = VERSION_1;
        let mut decoder = ChunkDecoder::new(&bytes).expect("header");
        assert!(decoder.next_span().is_ok());
        assert!(decoder.next_span().is_err());
    }

    #[test]
    fn codes_round_trip() {
        for kind in SpanKind::ALL {
            assert_eq!(kind_from_code(kind_code(kind)), Ok(kind));
        }
        for status in [SpanStatus::Unset, SpanStatus::Ok, SpanStatus::Error] {
            assert_eq!(status_from_code(status_code(status)), Ok(status));
        }
        assert!(kind_from_code(7).is_err());
        assert!(status_from_code(3).is_err());
    }

    #[test]
    fn error_flag_matches_the_span_model() {
        let cases = [
            (SpanStatus::Error, Some(200), true),
            (SpanStatus::Unset, Some(503), true),
            (SpanStatus::Ok, Some(404), false),
            (SpanStatus::Unset, None, false),
        ];
        for (status, http, expected) in cases {
            let mut span = base(5).with_status(status);
            span.http_status = http;
            assert_eq!(span.is_error(), expected);
            let mut encoder = ChunkEncoder::default();
            encoder.push(&span, 7);
            let mut decoder = ChunkDecoder::new(encoder.as_bytes()).expect("header");
            let raw = decoder.next_span().expect("decodes").expect("one span");
            assert_eq!(raw.is_error(), expected);
        }
    }

    #[test]
    fn varints_round_trip_at_their_boundaries() {
        for value in [0, 1, 127, 128, 16_383, 16_384, u64::MAX >> 1, u64::MAX] {
            let mut bytes = Vec::new();
            put_varint(&mut bytes, value);
            if let Ok(small) = usize::try_from(value) {
                assert_eq!(varint_len(small), bytes.len());
            }
            let mut rest = &bytes[..];
            assert_eq!(take_varint(&mut rest), Ok(value));
            assert!(rest.is_empty());
        }
        for value in [0, 1, -1, i64::MIN, i64::MAX] {
            assert_eq!(unzigzag(zigzag(value)), value);
        }
    }

    fn any_span() -> impl Strategy<Value = Span> {
        (
            any::<u128>(),
            any::<u64>(),
            proptest::option::of(any::<u64>()),
            0u8..5,
            0u8..3,
            any::<u64>(),
            any::<u64>(),
            proptest::option::of(any::<u16>()),
            prop_oneof![
                // Attributes shared by many spans, as instrumentation writes them, so that
                // runs of repeats are common.
                2 => Just(Vec::new()),
                2 => Just(vec![("service.version".to_owned(), "1.0".to_owned())]),
                3 => proptest::collection::vec((".{0,12}", ".{0,12}"), 0..4),
            ],
        )
            .prop_map(
                |(trace, span, parent, kind, status, start, duration, http, attributes)| {
                    let mut built = Span::new(
                        TraceId::from_bytes(trace.to_be_bytes()),
                        SpanId::from_bytes(span.to_be_bytes()),
                        "svc",
                        "op",
                    )
                    .with_kind(kind_from_code(i64::from(kind)).expect("valid"))
                    .with_status(status_from_code(i64::from(status)).expect("valid"))
                    .with_timing(start, duration);
                    built.parent_span_id = parent.map(|id| SpanId::from_bytes(id.to_be_bytes()));
                    built.http_status = http;
                    for (key, value) in attributes {
                        built = built.with_attribute(key, value);
                    }
                    built
                },
            )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn any_spans_round_trip(spans in proptest::collection::vec(any_span(), 1..20)) {
            round_trip(&spans);
        }
    }
}
