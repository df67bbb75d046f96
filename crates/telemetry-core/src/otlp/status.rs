//! The body of an OTLP/HTTP failure: a `google.rpc.Status`, as the OTLP specification asks of
//! every 4xx and 5xx answer, encoded like the request (protobuf or OTLP JSON). A throttled
//! request (429, 503) carries a `google.rpc.RetryInfo` detail with the delay the `Retry-After`
//! header also states.
//!
//! The messages are written here with prost's derive rather than taken from a crate of
//! Google's API types: three small messages whose field numbers are fixed by
//! `google/rpc/status.proto`, `google/protobuf/any.proto`, `google/rpc/error_details.proto`
//! and `google/protobuf/duration.proto`.

use std::time::Duration;

use prost::Message;
use serde_json::{Value, json};

/// The `type_url` of a `google.rpc.RetryInfo` packed in an `Any`.
pub const RETRY_INFO_TYPE_URL: &str = "type.googleapis.com/google.rpc.RetryInfo";

/// gRPC's code for a request refused for lack of room (`RESOURCE_EXHAUSTED`): OTLP's 429.
pub const RESOURCE_EXHAUSTED: i32 = 8;

/// gRPC's code for a server that cannot take requests now (`UNAVAILABLE`): OTLP's 503.
pub const UNAVAILABLE: i32 = 14;

/// `google.rpc.Status`.
#[derive(Clone, PartialEq, Message)]
pub struct Status {
    /// A gRPC status code; OTLP clients may record it, not act on it.
    #[prost(int32, tag = "1")]
    pub code: i32,
    /// A developer-facing message.
    #[prost(string, tag = "2")]
    pub message: String,
    /// Details, such as a [`RetryInfo`].
    #[prost(message, repeated, tag = "3")]
    pub details: Vec<Any>,
}

/// `google.protobuf.Any`.
#[derive(Clone, PartialEq, Message)]
pub struct Any {
    /// The packed message's type, e.g. [`RETRY_INFO_TYPE_URL`].
    #[prost(string, tag = "1")]
    pub type_url: String,
    /// The packed message, encoded.
    #[prost(bytes = "vec", tag = "2")]
    pub value: Vec<u8>,
}

/// `google.rpc.RetryInfo`: when to send the same request again.
#[derive(Clone, PartialEq, Message)]
pub struct RetryInfo {
    /// The delay.
    #[prost(message, optional, tag = "1")]
    pub retry_delay: Option<ProtoDuration>,
}

/// `google.protobuf.Duration`.
#[derive(Clone, PartialEq, Message)]
pub struct ProtoDuration {
    /// Whole seconds.
    #[prost(int64, tag = "1")]
    pub seconds: i64,
    /// The rest, in nanoseconds.
    #[prost(int32, tag = "2")]
    pub nanos: i32,
}

impl Status {
    /// A status with `code` and `message`, and a `RetryInfo` detail when `retry_after` is given.
    pub fn new(code: i32, message: impl Into<String>, retry_after: Option<Duration>) -> Self {
        let details = retry_after
            .map(|delay| Any {
                type_url: RETRY_INFO_TYPE_URL.to_owned(),
                value: RetryInfo {
                    retry_delay: Some(ProtoDuration {
                        seconds: i64::try_from(delay.as_secs()).unwrap_or(i64::MAX),
                        nanos: i32::try_from(delay.subsec_nanos()).unwrap_or(0),
                    }),
                }
                .encode_to_vec(),
            })
            .into_iter()
            .collect();
        Self {
            code,
            message: message.into(),
            details,
        }
    }

    /// The retry delay of its `RetryInfo` detail, if it has one.
    pub fn retry_delay(&self) -> Option<Duration> {
        self.details
            .iter()
            .filter(|any| any.type_url == RETRY_INFO_TYPE_URL)
            .find_map(|any| RetryInfo::decode(&any.value[..]).ok()?.retry_delay)
            .map(|delay| {
                Duration::new(
                    u64::try_from(delay.seconds).unwrap_or(0),
                    u32::try_from(delay.nanos).unwrap_or(0),
                )
            })
    }

    /// The status in protobuf, for a request that came as protobuf.
    pub fn to_protobuf(&self) -> Vec<u8> {
        self.encode_to_vec()
    }

    /// The members of the status in OTLP JSON (protobuf's JSON mapping): `code`, `message`,
    /// and `details` with the `RetryInfo` as `{"@type": ..., "retryDelay": "5s"}`.
    pub fn json_members(&self) -> Vec<(&'static str, Value)> {
        let details: Vec<Value> = self
            .retry_delay()
            .map(|delay| {
                json!({
                    "@type": RETRY_INFO_TYPE_URL,
                    "retryDelay": format!("{}s", delay.as_secs_f64()),
                })
            })
            .into_iter()
            .collect();
        vec![
            ("code", json!(self.code)),
            ("message", json!(self.message)),
            ("details", Value::Array(details)),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_status_with_a_retry_delay_survives_the_protobuf_round_trip() {
        let status = Status::new(
            RESOURCE_EXHAUSTED,
            "queue full",
            Some(Duration::from_secs(5)),
        );
        let decoded = Status::decode(&status.to_protobuf()[..]).expect("decodes");
        assert_eq!(decoded, status);
        assert_eq!(decoded.code, 8);
        assert_eq!(decoded.message, "queue full");
        assert_eq!(decoded.retry_delay(), Some(Duration::from_secs(5)));
    }

    #[test]
    fn the_wire_format_is_google_rpc_status() {
        // code 14, message "x", no details: field 1 varint, field 2 length-delimited.
        let bytes = Status::new(UNAVAILABLE, "x", None).to_protobuf();
        assert_eq!(bytes, vec![0x08, 14, 0x12, 1, b'x']);
    }

    #[test]
    fn the_json_members_follow_protobufs_json_mapping() {
        let status = Status::new(UNAVAILABLE, "down", Some(Duration::from_millis(1500)));
        let members: serde_json::Map<String, Value> = status
            .json_members()
            .into_iter()
            .map(|(key, value)| (key.to_owned(), value))
            .collect();
        assert_eq!(
            Value::Object(members),
            json!({"code": 14, "message": "down", "details": [
                {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "1.5s"}
            ]})
        );
    }
}
