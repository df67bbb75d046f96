//! Anomalies in words: the sentences the detectors write into [`Anomaly::description`], and
//! the number formats they use.
//!
//! Root cause analysis describes the figures it computes from traces in the same words, so a
//! description reads the same whichever part of the engine wrote it, and the text users see
//! has one source.
//!
//! ```
//! use aiops_analyzer::describe::{error_storm, format_ms, latency_spike};
//!
//! assert_eq!(format_ms(4.24), "4.2ms");
//! assert_eq!(
//!     latency_spike(1250.0, 180.0, 1250.0 / 180.0),
//!     "Latency spike: 1250ms (baseline: 180ms, 6.9x slower)"
//! );
//! assert_eq!(error_storm(0.8, Some(0.01)), "Error storm: 80% errors (baseline: 1%)");
//! ```
//!
//! [`Anomaly::description`]: crate::Anomaly::description

/// Milliseconds as people write them: `1250ms`, `4.2ms`, `0.35ms`.
pub fn format_ms(ms: f64) -> String {
    if ms >= 10.0 {
        format!("{ms:.0}ms")
    } else if ms >= 1.0 {
        format!("{ms:.1}ms")
    } else {
        format!("{ms:.2}ms")
    }
}

/// A share as a percentage: `80%`, `0.5%`, `0%`.
pub fn format_percent(share: f64) -> String {
    let percent = share * 100.0;
    if percent == 0.0 || percent >= 1.0 {
        format!("{percent:.0}%")
    } else {
        format!("{percent:.1}%")
    }
}

/// `Latency spike: 1250ms (baseline: 180ms, 6.9x slower)`: requests took `observed_ms` on
/// average where the baseline mean is `baseline_ms`, `ratio` times slower (the caller's ratio,
/// so that the sentence says what the anomaly's `ratio` says).
pub fn latency_spike(observed_ms: f64, baseline_ms: f64, ratio: f64) -> String {
    format!(
        "Latency spike: {} (baseline: {}, {ratio:.1}x slower)",
        format_ms(observed_ms),
        format_ms(baseline_ms)
    )
}

/// `Error storm: 80% errors (baseline: 1%)`: a share `rate` of the requests failed, against
/// the baseline error rate, or `(no baseline yet)` when the endpoint has none.
pub fn error_storm(rate: f64, baseline_rate: Option<f64>) -> String {
    let against = match baseline_rate {
        Some(baseline_rate) => format!("baseline: {}", format_percent(baseline_rate)),
        None => "no baseline yet".to_owned(),
    };
    format!("Error storm: {} errors ({against})", format_percent(rate))
}

/// `Timeouts: 6 of 20 requests over 5000ms`: `timeouts` of `count` requests took longer than
/// `timeout_ms`.
pub fn timeouts(timeouts: u64, count: u64, timeout_ms: f64) -> String {
    format!(
        "Timeouts: {timeouts} of {count} requests over {}",
        format_ms(timeout_ms)
    )
}

/// `Latency shift: own time 31ms in 42 of 60 recent requests (baseline: 10ms, usually under
/// 14ms)`: the median of recent requests' own (exclusive) time, how many of them were past
/// the usual 95th percentile, against the baseline mean and 95th percentile.
pub fn latency_shift(
    median_ms: f64,
    slow: u64,
    count: u64,
    baseline_ms: f64,
    baseline_p95_ms: f64,
) -> String {
    format!(
        "Latency shift: own time {} in {slow} of {count} recent requests (baseline: {}, usually \
         under {})",
        format_ms(median_ms),
        format_ms(baseline_ms),
        format_ms(baseline_p95_ms)
    )
}

/// `Dropped calls: 0.31 calls to cart GET /items per request (usually 1.00)`: an endpoint
/// calls `callee` `observed` times per request where it usually calls it `usual` times.
pub fn call_drop(service: &str, operation: &str, observed: f64, usual: f64) -> String {
    format!(
        "Dropped calls: {observed:.2} calls to {service} {operation} per request (usually {usual:.2})"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_formatted_like_people_write_them() {
        assert_eq!(format_ms(1250.4), "1250ms");
        assert_eq!(format_ms(4.24), "4.2ms");
        assert_eq!(format_ms(0.354), "0.35ms");
        assert_eq!(format_percent(0.8), "80%");
        assert_eq!(format_percent(0.005), "0.5%");
        assert_eq!(format_percent(0.0), "0%");
    }

    #[test]
    fn each_kind_of_anomaly_has_its_sentence() {
        assert_eq!(
            latency_spike(1250.4, 179.6, 6.96),
            "Latency spike: 1250ms (baseline: 180ms, 7.0x slower)"
        );
        assert_eq!(
            error_storm(0.28, Some(0.0)),
            "Error storm: 28% errors (baseline: 0%)"
        );
        assert_eq!(
            error_storm(0.95, None),
            "Error storm: 95% errors (no baseline yet)"
        );
        assert_eq!(
            timeouts(6, 20, 5000.0),
            "Timeouts: 6 of 20 requests over 5000ms"
        );
    }
}
