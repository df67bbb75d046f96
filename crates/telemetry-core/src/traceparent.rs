use std::fmt;
use std::str::FromStr;

use crate::error::TraceContextError;
use crate::ids::{SpanId, TraceId, decode_lower_hex};

/// A W3C Trace Context `traceparent` header: which trace a request belongs to and which span
/// called it.
///
/// Parsing follows the [specification](https://www.w3.org/TR/trace-context/#traceparent-header):
/// lowercase hex only, version `ff` forbidden, all-zero trace and parent ids forbidden, version
/// `00` exactly 55 characters, and later versions accepted when their first four fields have the
/// version-00 shape (anything after a further `-` is ignored). Formatting always writes version
/// `00`.
///
/// ```
/// use aiops_telemetry_core::TraceParent;
///
/// let header = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
/// let parent: TraceParent = header.parse()?;
/// assert!(parent.is_sampled());
/// assert_eq!(parent.to_string(), header);
/// # Ok::<(), aiops_telemetry_core::TraceContextError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TraceParent {
    /// The trace the request belongs to.
    pub trace_id: TraceId,
    /// The span that made the request (the caller).
    pub parent_id: SpanId,
    /// Trace flags; bit 0 is `sampled`.
    pub flags: u8,
}

impl TraceParent {
    /// The header's name, in the lower case HTTP/2 requires.
    pub const HEADER: &'static str = "traceparent";

    /// A sampled context for a span of `trace_id` with id `parent_id`.
    pub const fn new(trace_id: TraceId, parent_id: SpanId) -> Self {
        Self {
            trace_id,
            parent_id,
            flags: 0x01,
        }
    }

    /// True when the caller recorded its span (flag bit 0).
    pub const fn is_sampled(&self) -> bool {
        self.flags & 0x01 == 0x01
    }

    /// Parses a header value; see the type's documentation for the rules.
    pub fn parse(header: &str) -> Result<Self, TraceContextError> {
        let header = header.trim_matches(|c| c == ' ' || c == '\t');
        let bytes = header.as_bytes();
        if bytes.len() < 55 || !header.is_ascii() {
            return Err(TraceContextError::Shape);
        }
        let mut version = [0u8; 1];
        decode_lower_hex(&header[..2], &mut version, "traceparent version")?;
        match version[0] {
            0xff => return Err(TraceContextError::ForbiddenVersion),
            0x00 if bytes.len() != 55 => return Err(TraceContextError::Shape),
            _ if bytes.len() > 55 && bytes[55] != b'-' => return Err(TraceContextError::Shape),
            _ => {}
        }
        if bytes[2] != b'-' || bytes[35] != b'-' || bytes[52] != b'-' {
            return Err(TraceContextError::Shape);
        }
        let trace_id = TraceId::from_hex(&header[3..35])?;
        let parent_id = SpanId::from_hex(&header[36..52])?;
        let mut flags = [0u8; 1];
        decode_lower_hex(&header[53..55], &mut flags, "traceparent flags")?;
        Ok(Self {
            trace_id,
            parent_id,
            flags: flags[0],
        })
    }
}

impl FromStr for TraceParent {
    type Err = TraceContextError;

    fn from_str(header: &str) -> Result<Self, TraceContextError> {
        Self::parse(header)
    }
}

impl fmt::Display for TraceParent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "00-{}-{}-{:02x}",
            self.trace_id, self.parent_id, self.flags
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::IdError;

    const VALID: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn parses_the_specification_example() {
        let parent = TraceParent::parse(VALID).expect("valid header");
        assert_eq!(
            parent.trace_id.to_string(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        assert_eq!(parent.parent_id.to_string(), "00f067aa0ba902b7");
        assert_eq!(parent.flags, 0x01);
        assert!(parent.is_sampled());
    }

    #[test]
    fn formats_back_to_the_same_header() {
        assert_eq!(TraceParent::parse(VALID).expect("valid").to_string(), VALID);
        let unsampled = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00";
        let parent = TraceParent::parse(unsampled).expect("valid");
        assert!(!parent.is_sampled());
        assert_eq!(parent.to_string(), unsampled);
    }

    #[test]
    fn rejects_version_ff() {
        let header = "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        assert_eq!(
            TraceParent::parse(header),
            Err(TraceContextError::ForbiddenVersion)
        );
    }

    #[test]
    fn rejects_all_zero_trace_id() {
        let header = "00-00000000000000000000000000000000-00f067aa0ba902b7-01";
        assert!(matches!(
            TraceParent::parse(header),
            Err(TraceContextError::Id(IdError::Zero { what: "trace id" }))
        ));
    }

    #[test]
    fn rejects_all_zero_parent_id() {
        let header = "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01";
        assert!(matches!(
            TraceParent::parse(header),
            Err(TraceContextError::Id(IdError::Zero { what: "span id" }))
        ));
    }

    #[test]
    fn rejects_upper_case_hex() {
        let header = "00-4BF92F3577B34DA6A3CE929D0E0E4736-00F067AA0BA902B7-01";
        assert!(matches!(
            TraceParent::parse(header),
            Err(TraceContextError::Id(IdError::Digit { .. }))
        ));
    }

    #[test]
    fn rejects_wrong_lengths() {
        for header in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e47366-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1",
            "0-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ] {
            assert!(
                TraceParent::parse(header).is_err(),
                "{header:?} must be rejected"
            );
        }
    }

    #[test]
    fn rejects_version_00_with_trailing_data() {
        let header = format!("{VALID}-extra");
        assert_eq!(TraceParent::parse(&header), Err(TraceContextError::Shape));
    }

    #[test]
    fn accepts_a_future_version_with_extra_fields() {
        let header =
            "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what-the-future-will-be-like";
        let parent = TraceParent::parse(header).expect("future versions are accepted");
        assert_eq!(parent.flags, 0x01);
        let glued = "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x";
        assert_eq!(TraceParent::parse(glued), Err(TraceContextError::Shape));
    }

    #[test]
    fn rejects_wrong_separators() {
        let header = "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        assert_eq!(TraceParent::parse(header), Err(TraceContextError::Shape));
    }

    #[test]
    fn never_panics_on_arbitrary_input() {
        for header in [
            "é".repeat(30),
            "00-".repeat(30),
            "-".repeat(60),
            "0".repeat(55),
        ] {
            let _ = TraceParent::parse(&header);
        }
    }
}
