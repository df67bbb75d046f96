//! How span fields map to SQL values and codes.

use aiops_telemetry_core::{SpanKind, SpanStatus};

use crate::error::StoreError;

/// SQLite integers are signed; Unix nanoseconds fit until the year 2262, later values clamp.
pub(crate) fn to_sql_int(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// The inverse of [`to_sql_int`]; negative values (which we never write) read as zero.
pub(crate) fn from_sql_int(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
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

pub(crate) const fn status_code(status: SpanStatus) -> i64 {
    match status {
        SpanStatus::Unset => 0,
        SpanStatus::Ok => 1,
        SpanStatus::Error => 2,
    }
}

/// The inverse of [`kind_code`].
pub(crate) fn kind_from_code(code: i64) -> Result<SpanKind, StoreError> {
    SpanKind::ALL
        .into_iter()
        .find(|&kind| kind_code(kind) == code)
        .ok_or_else(|| corrupt("span kind", format!("unknown code {code}")))
}

/// The inverse of [`status_code`].
pub(crate) fn status_from_code(code: i64) -> Result<SpanStatus, StoreError> {
    [SpanStatus::Unset, SpanStatus::Ok, SpanStatus::Error]
        .into_iter()
        .find(|&status| status_code(status) == code)
        .ok_or_else(|| corrupt("span status", format!("unknown code {code}")))
}

pub(crate) fn corrupt(what: &'static str, message: impl Into<String>) -> StoreError {
    StoreError::Corrupt {
        what,
        message: message.into(),
    }
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
}
