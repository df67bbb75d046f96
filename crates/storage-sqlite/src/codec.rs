//! How span fields map to column values and back.

use aiops_telemetry_core::{Span, SpanId, SpanKind, SpanStatus, TraceId};
use rusqlite::Row;

use crate::error::StoreError;

/// SQLite integers are signed; Unix nanoseconds fit until the year 2262, later values clamp.
pub(crate) fn to_sql_int(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// The inverse of [`to_sql_int`]; negative values (which we never write) read as zero.
pub(crate) fn from_sql_int(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

/// The first eight bytes of a trace id, the key of the trace index.
pub(crate) fn trace_hi(trace_id: &TraceId) -> i64 {
    let bytes = trace_id.as_bytes();
    i64::from_be_bytes([
        bytes[0], bytes[1], bytes[2], bytes[3], bytes[4], bytes[5], bytes[6], bytes[7],
    ])
}

pub(crate) const fn kind_code(kind: SpanKind) -> i64 {
    match kind {
        SpanKind::Server => 0,
        SpanKind::Client => 1,
        SpanKind::Internal => 2,
        SpanKind::Producer => 3,
        SpanKind::Consumer => 4,
    }
}

fn kind_from_code(code: i64) -> Result<SpanKind, StoreError> {
    Ok(match code {
        0 => SpanKind::Server,
        1 => SpanKind::Client,
        2 => SpanKind::Internal,
        3 => SpanKind::Producer,
        4 => SpanKind::Consumer,
        _ => return Err(corrupt("span kind", format!("unknown code {code}"))),
    })
}

pub(crate) const fn status_code(status: SpanStatus) -> i64 {
    match status {
        SpanStatus::Unset => 0,
        SpanStatus::Ok => 1,
        SpanStatus::Error => 2,
    }
}

fn status_from_code(code: i64) -> Result<SpanStatus, StoreError> {
    Ok(match code {
        0 => SpanStatus::Unset,
        1 => SpanStatus::Ok,
        2 => SpanStatus::Error,
        _ => return Err(corrupt("span status", format!("unknown code {code}"))),
    })
}

/// [`Span::is_error`] from the stored columns.
pub(crate) fn is_error(status: i64, http_status: Option<i64>) -> bool {
    status == status_code(SpanStatus::Error) || http_status.is_some_and(|code| code >= 500)
}

/// Attributes as a JSON array of `[key, value]` pairs, written into `buffer` (cleared first,
/// so one buffer serves every span of a batch); `None` when there are none.
pub(crate) fn encode_attributes<'a>(
    span: &Span,
    buffer: &'a mut Vec<u8>,
) -> Result<Option<&'a str>, StoreError> {
    buffer.clear();
    if span.attributes.is_empty() {
        return Ok(None);
    }
    let encode_error = |message: String| StoreError::Encode {
        what: "span attributes",
        message,
    };
    serde_json::to_writer(&mut *buffer, &span.attributes)
        .map_err(|error| encode_error(error.to_string()))?;
    std::str::from_utf8(buffer)
        .map(Some)
        .map_err(|error| encode_error(error.to_string()))
}

pub(crate) fn corrupt(what: &'static str, message: impl Into<String>) -> StoreError {
    StoreError::Corrupt {
        what,
        message: message.into(),
    }
}

/// Columns read by [`span_from_row`], in order; `s` is `spans`, `e` is `endpoints`.
pub(crate) const SPAN_COLUMNS: &str = "s.trace_id, s.span_id, s.parent_span_id, e.service, \
     e.operation, s.kind, s.start_ns, s.duration_ns, s.http_status, s.status, s.attributes";

/// Rebuilds a span from a row selected with [`SPAN_COLUMNS`].
pub(crate) fn span_from_row(row: &Row<'_>) -> Result<Span, StoreError> {
    let read = |error: rusqlite::Error| corrupt("span row", error.to_string());
    let trace_id: Vec<u8> = row.get(0).map_err(read)?;
    let span_id: Vec<u8> = row.get(1).map_err(read)?;
    let parent: Option<Vec<u8>> = row.get(2).map_err(read)?;
    let attributes: Option<String> = row.get(10).map_err(read)?;
    let http_status: Option<i64> = row.get(8).map_err(read)?;
    let id_error = |error: aiops_telemetry_core::IdError| corrupt("span id", error.to_string());
    Ok(Span {
        trace_id: TraceId::from_slice(&trace_id).map_err(id_error)?,
        span_id: SpanId::from_slice(&span_id).map_err(id_error)?,
        parent_span_id: parent
            .map(|bytes| SpanId::from_slice(&bytes))
            .transpose()
            .map_err(id_error)?,
        service: row.get(3).map_err(read)?,
        operation: row.get(4).map_err(read)?,
        kind: kind_from_code(row.get(5).map_err(read)?)?,
        start_unix_nanos: from_sql_int(row.get(6).map_err(read)?),
        duration_nanos: from_sql_int(row.get(7).map_err(read)?),
        http_status: http_status
            .map(|code| u16::try_from(code).map_err(|_| corrupt("http status", code.to_string())))
            .transpose()?,
        status: status_from_code(row.get(9).map_err(read)?)?,
        attributes: attributes
            .map(|text| serde_json::from_str(&text))
            .transpose()
            .map_err(|error| corrupt("span attributes", error.to_string()))?
            .unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_clamp_instead_of_wrapping() {
        assert_eq!(to_sql_int(u64::MAX), i64::MAX);
        assert_eq!(from_sql_int(-1), 0);
        assert_eq!(from_sql_int(to_sql_int(42)), 42);
    }

    #[test]
    fn codes_round_trip() {
        for kind in [
            SpanKind::Server,
            SpanKind::Client,
            SpanKind::Internal,
            SpanKind::Producer,
            SpanKind::Consumer,
        ] {
            assert_eq!(kind_from_code(kind_code(kind)), Ok(kind));
        }
        for status in [SpanStatus::Unset, SpanStatus::Ok, SpanStatus::Error] {
            assert_eq!(status_from_code(status_code(status)), Ok(status));
        }
        assert!(kind_from_code(9).is_err());
    }

    #[test]
    fn error_flag_matches_the_span_model() {
        assert!(is_error(2, Some(200)));
        assert!(is_error(0, Some(503)));
        assert!(!is_error(1, Some(404)));
        assert!(!is_error(0, None));
    }
}
