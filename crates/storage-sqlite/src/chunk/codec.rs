//! Span chunks: the binary encoding of a group of spans stored as one row of `span_chunks`.
//!
//! A chunk holds the spans one writer transaction appended to one block, in id order: its row
//! id is the id of its first span and span `i` has id `id + i`, so a chunk never straddles a
//! block. The blob is:
//!
//! ```text
//! chunk  := version:u8 (= 3)  base_start:varint  span*
//! span   := flags:u8  endpoint_id:varint  [http_status:varint]  start_delta:zigzag-varint
//!           duration:varint  trace_id:16 bytes  span_id:8 bytes  [parent_span_id:8 bytes]
//!           [attributes]
//! attributes := set:varint (= 0)  attributes_len:varint  (key_len:varint key value_len:varint value)*
//!             | set:varint (>= 1: the set-th list of attributes written in this chunk)
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
//! which halves the bytes of a typical instrumented request. Spans that keep the attributes that
//! explain faults (route, status code, host) alternate between a few lists, so since version 3
//! a span whose list was written earlier in the chunk refers to it by its number (`set`, one
//! byte for the first 127 lists) instead of writing it again. Version 1 chunks (written before
//! bit 7 existed) and version 2 chunks (before `set`) are read as they are. Fields a window
//! query needs come first, the ids and attributes last.

use std::collections::HashMap;

use aiops_telemetry_core::{Attributes, Span, SpanId, SpanStatus, SpanText, TraceId};

use crate::codec::{corrupt, kind_code, kind_from_code, status_code, status_from_code};
use crate::error::StoreError;

/// The encoding version, the first byte of every chunk written.
const VERSION: u8 = 3;
/// The version before attribute lists were referred to by number; still read.
const VERSION_2: u8 = 2;
/// The version before [`SAME_ATTRIBUTES`]; still read.
const VERSION_1: u8 = 1;
/// The most attribute lists a chunk numbers; spans with further lists write them in full.
const MAX_SETS: usize = 4_096;
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
    /// Each list of attributes written in full in this chunk, and its number (from 1).
    sets: HashMap<Attributes, u64>,
    /// Writes version 2 (no numbered lists), for the tests of older chunks.
    #[cfg(test)]
    pub(super) version_2: bool,
}

impl ChunkEncoder {
    /// Empties the buffer for a new chunk, keeping its allocation.
    pub(crate) fn clear(&mut self) {
        self.bytes.clear();
        self.count = 0;
        self.sets.clear();
    }

    fn version(&self) -> u8 {
        #[cfg(test)]
        if self.version_2 {
            return VERSION_2;
        }
        VERSION
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
            let version = self.version();
            self.bytes.push(version);
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
        if self.version() >= VERSION {
            if let Some(&set) = self.sets.get(&span.attributes) {
                put_varint(&mut self.bytes, set);
                self.previous_attributes.clone_from(&span.attributes);
                return;
            }
            put_varint(&mut self.bytes, 0);
            if self.sets.len() < MAX_SETS {
                let number = self.sets.len() as u64 + 1;
                self.sets.insert(span.attributes.clone(), number);
            }
        }
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
    /// The lists of attributes written in full so far (version 3), by number less one.
    sets: Vec<&'a [u8]>,
}

impl<'a> ChunkDecoder<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Result<Self, StoreError> {
        let mut rest = bytes;
        let version = take(&mut rest, 1)?[0];
        if ![VERSION, VERSION_2, VERSION_1].contains(&version) {
            return Err(corrupt("span chunk", format!("unknown version {version}")));
        }
        let base = take_varint(&mut rest)?;
        Ok(Self {
            rest,
            previous_start: base,
            version,
            previous_attributes: None,
            sets: Vec::new(),
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
            let set = if self.version >= VERSION {
                take_varint(rest)?
            } else {
                0
            };
            let attributes = if set == 0 {
                let length = take_varint(rest)?;
                let attributes = take(
                    rest,
                    usize::try_from(length)
                        .map_err(|_| corrupt("span chunk", "attributes too long"))?,
                )?;
                if self.version >= VERSION && self.sets.len() < MAX_SETS {
                    self.sets.push(attributes);
                }
                attributes
            } else {
                usize::try_from(set - 1)
                    .ok()
                    .and_then(|index| self.sets.get(index).copied())
                    .ok_or_else(|| {
                        corrupt("span chunk", format!("no attribute list {set} to refer to"))
                    })?
            };
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
#[path = "codec_tests.rs"]
mod tests;
