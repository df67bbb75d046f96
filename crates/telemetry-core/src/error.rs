use thiserror::Error;

/// Why a trace or span id was rejected.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum IdError {
    /// The id had the wrong number of hex digits.
    #[error("invalid {what}: expected {expected} lowercase hex digits, got {actual}")]
    Length {
        /// Which id.
        what: &'static str,
        /// Hex digits expected.
        expected: usize,
        /// Hex digits found.
        actual: usize,
    },
    /// The id held a character that is not a lowercase hex digit.
    #[error("invalid {what}: {digit:?} is not a lowercase hex digit (0-9, a-f)")]
    Digit {
        /// Which id.
        what: &'static str,
        /// The offending character.
        digit: char,
    },
    /// The id was all zeros, which the W3C and OTLP specifications forbid.
    #[error("invalid {what}: all zeros is not a valid id")]
    Zero {
        /// Which id.
        what: &'static str,
    },
}

/// Why a W3C `traceparent` header was rejected.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum TraceContextError {
    /// The header did not have the `version-traceid-parentid-flags` shape.
    #[error(
        "invalid traceparent: expected 'version-traceid-parentid-flags' (55 characters for version 00)"
    )]
    Shape,
    /// The version was `ff`, which the specification forbids.
    #[error("invalid traceparent: version ff is forbidden")]
    ForbiddenVersion,
    /// A field was not lowercase hex of the right length.
    #[error("invalid traceparent: {0}")]
    Id(#[from] IdError),
}

/// Why a [`Collector`](crate::Collector) could not flush.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum CollectorError {
    /// The collector was shut down; nothing more is accepted.
    #[error("collector: closed")]
    Closed,
    /// The backing store failed; the message says how.
    #[error("collector: storage failed: {0}")]
    Storage(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_what_is_accepted() {
        let length = IdError::Length {
            what: "trace id",
            expected: 32,
            actual: 3,
        };
        assert_eq!(
            length.to_string(),
            "invalid trace id: expected 32 lowercase hex digits, got 3"
        );
        let digit = IdError::Digit {
            what: "span id",
            digit: 'G',
        };
        assert_eq!(
            digit.to_string(),
            "invalid span id: 'G' is not a lowercase hex digit (0-9, a-f)"
        );
        assert_eq!(
            IdError::Zero { what: "span id" }.to_string(),
            "invalid span id: all zeros is not a valid id"
        );
        assert_eq!(
            TraceContextError::ForbiddenVersion.to_string(),
            "invalid traceparent: version ff is forbidden"
        );
        assert_eq!(
            TraceContextError::Shape.to_string(),
            "invalid traceparent: expected 'version-traceid-parentid-flags' (55 characters for version 00)"
        );
        assert_eq!(CollectorError::Closed.to_string(), "collector: closed");
        assert_eq!(
            CollectorError::Storage("disk full".into()).to_string(),
            "collector: storage failed: disk full"
        );
    }
}
