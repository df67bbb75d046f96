//! How times, figures and endpoints read in every view: ISO 8601 in UTC, two decimals, and the
//! names users give endpoints.

use aiops_telemetry_core::{EndpointKey, TimeWindow};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use utoipa::ToSchema;

/// Unix nanoseconds as ISO 8601 in UTC, to the second (`2026-01-20T10:30:15Z`).
pub fn iso(unix_nanos: u64) -> String {
    iso_with(unix_nanos, SecondsFormat::Secs)
}

/// Unix nanoseconds as ISO 8601 in UTC, to the millisecond.
pub fn iso_millis(unix_nanos: u64) -> String {
    iso_with(unix_nanos, SecondsFormat::Millis)
}

fn iso_with(unix_nanos: u64, format: SecondsFormat) -> String {
    let secs = i64::try_from(unix_nanos / 1_000_000_000).unwrap_or(i64::MAX);
    let nanos = u32::try_from(unix_nanos % 1_000_000_000).unwrap_or(0);
    DateTime::<Utc>::from_timestamp(secs, nanos)
        .unwrap_or_default()
        .to_rfc3339_opts(format, true)
}

/// A figure rounded to two decimals for display; `None` (JSON `null`) when it is not finite.
pub fn rounded(value: f64) -> Option<f64> {
    value.is_finite().then(|| (value * 100.0).round() / 100.0)
}

/// How endpoints are named for people: `service operation` (`checkout-svc POST /orders`),
/// except the endpoints of one service whose operations are its paths (the demo shop's
/// `/payment`), which are named by the operation alone.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EndpointNaming {
    /// The service whose endpoints are named by their operation alone, if any.
    pub path_service: Option<String>,
}

impl EndpointNaming {
    /// Endpoints of `service` are named by their operation alone.
    pub fn by_path(service: impl Into<String>) -> Self {
        Self {
            path_service: Some(service.into()),
        }
    }

    /// An endpoint as users name it.
    pub fn endpoint(&self, endpoint: &EndpointKey) -> String {
        self.label(&endpoint.service, &endpoint.operation)
    }

    /// The operation `operation` of `service` as users name it.
    pub fn label(&self, service: &str, operation: &str) -> String {
        if self.path_service.as_deref() == Some(service) {
            operation.to_owned()
        } else {
            format!("{service} {operation}")
        }
    }
}

/// A time window.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, ToSchema)]
pub struct Window {
    /// ISO 8601 start, to the millisecond.
    pub start: String,
    /// ISO 8601 end, to the millisecond.
    pub end: String,
}

impl From<&TimeWindow> for Window {
    fn from(window: &TimeWindow) -> Self {
        Self {
            start: iso_millis(window.start_unix_nanos),
            end: iso_millis(window.end_unix_nanos),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_iso_8601_utc() {
        assert_eq!(iso(1_737_369_015_000_000_000), "2025-01-20T10:30:15Z");
        assert_eq!(
            iso_millis(1_737_369_015_250_000_000),
            "2025-01-20T10:30:15.250Z"
        );
    }

    #[test]
    fn figures_are_rounded_to_two_decimals_and_undefined_ones_are_null() {
        assert_eq!(rounded(43.0649), Some(43.06));
        assert_eq!(rounded(0.0), Some(0.0));
        assert_eq!(rounded(f64::NAN), None);
        assert_eq!(rounded(f64::INFINITY), None);
    }

    #[test]
    fn shop_endpoints_are_named_by_path_and_others_by_service() {
        let naming = EndpointNaming::by_path("shop");
        assert_eq!(
            naming.endpoint(&EndpointKey::new("shop", "/payment")),
            "/payment"
        );
        assert_eq!(
            naming.endpoint(&EndpointKey::new("cart", "GET /cart")),
            "cart GET /cart"
        );
        assert_eq!(
            EndpointNaming::default().endpoint(&EndpointKey::new("shop", "/payment")),
            "shop /payment"
        );
    }
}
