//! Unit tests of the chunk encoding.

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
    assert!(ChunkDecoder::new(&[4, 0]).is_err(), "unknown version");
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
        written, 1,
        "once: after the span without attributes, by its number"
    );
}

#[test]
fn version_1_chunks_are_still_read() {
    // Spans whose attributes all differ encode in version 2 exactly as version 1 did.
    let spans: Vec<Span> = (0..3)
        .map(|n| {
            base(n)
                .with_attribute("n", n.to_string())
                .with_http_status(200)
        })
        .collect();
    let mut encoder = version_2();
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
    let mut encoder = version_2();
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

/// An encoder of version 2 chunks, which had no numbered attribute lists.
fn version_2() -> ChunkEncoder {
    ChunkEncoder {
        version_2: true,
        ..ChunkEncoder::default()
    }
}

#[test]
fn version_2_chunks_are_still_read() {
    let spans: Vec<Span> = (0..6)
        .map(|n| base(n).with_attribute("route", format!("/r{}", n % 2)))
        .collect();
    let mut encoder = version_2();
    for span in &spans {
        encoder.push(span, 7);
    }
    assert_eq!(encoder.as_bytes()[0], VERSION_2);
    assert_eq!(decode_all(encoder.as_bytes()), spans);
}

#[test]
fn lists_met_earlier_in_the_chunk_are_referred_to_by_number() {
    // Spans alternate between a few lists, as spans keeping route and status do.
    let spans: Vec<Span> = (0..300)
        .map(|n| {
            base(n)
                .with_attribute("service.version", "1.4.2")
                .with_attribute("http.route", format!("/api/v1/op-{}", n % 5))
                .with_attribute(
                    "http.response.status_code",
                    if n % 7 == 0 { "500" } else { "200" },
                )
        })
        .collect();
    round_trip(&spans);
    let mut numbered = ChunkEncoder::default();
    let mut full = version_2();
    for span in &spans {
        numbered.push(span, 7);
        full.push(span, 7);
    }
    let written = numbered
        .as_bytes()
        .windows("http.route".len())
        .filter(|window| *window == b"http.route")
        .count();
    assert_eq!(written, 10, "each distinct list once");
    assert!(
        numbered.as_bytes().len() * 2 < full.as_bytes().len(),
        "{} bytes numbered, {} in full",
        numbered.as_bytes().len(),
        full.as_bytes().len()
    );
    // Numbers restart with each chunk.
    numbered.clear();
    numbered.push(&spans[1], 7);
    numbered.push(&spans[0], 7);
    numbered.push(&spans[1], 7);
    assert_eq!(
        decode_all(numbered.as_bytes()),
        [spans[1].clone(), spans[0].clone(), spans[1].clone()]
    );
}

#[test]
fn a_reference_to_a_list_never_written_is_damage() {
    let mut bytes = vec![VERSION, 0, 0, 7, 0, 0];
    bytes.extend_from_slice(&[1; 24]);
    bytes.push(1);
    let mut decoder = ChunkDecoder::new(&bytes).expect("header");
    let error = decoder.next_span().expect_err("no list 1");
    assert!(error.to_string().contains("no attribute list 1"), "{error}");
}
