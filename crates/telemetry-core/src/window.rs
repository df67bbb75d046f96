use serde::{Deserialize, Serialize};

/// A half-open interval of time `[start, end)` in Unix nanoseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TimeWindow {
    /// First instant inside the window.
    pub start_unix_nanos: u64,
    /// First instant after the window.
    pub end_unix_nanos: u64,
}

impl TimeWindow {
    /// The window `[start, end)`.
    pub const fn new(start_unix_nanos: u64, end_unix_nanos: u64) -> Self {
        Self {
            start_unix_nanos,
            end_unix_nanos,
        }
    }

    /// The window of length `length_nanos` that ends at `end_unix_nanos`.
    pub const fn ending_at(end_unix_nanos: u64, length_nanos: u64) -> Self {
        Self {
            start_unix_nanos: end_unix_nanos.saturating_sub(length_nanos),
            end_unix_nanos,
        }
    }

    /// True when `instant` lies in `[start, end)`.
    pub const fn contains(&self, instant_unix_nanos: u64) -> bool {
        instant_unix_nanos >= self.start_unix_nanos && instant_unix_nanos < self.end_unix_nanos
    }

    /// Length in nanoseconds (zero when end is not after start).
    pub const fn length_nanos(&self) -> u64 {
        self.end_unix_nanos.saturating_sub(self.start_unix_nanos)
    }

    /// The first and the last third of the window. They lie a third of the window apart, so
    /// something brief (a burst) can show in one of them, never in both: what shows in both
    /// lasted.
    ///
    /// ```
    /// use aiops_telemetry_core::TimeWindow;
    ///
    /// let (first, last) = TimeWindow::new(0, 30).end_thirds();
    /// assert_eq!((first, last), (TimeWindow::new(0, 10), TimeWindow::new(20, 30)));
    /// ```
    pub const fn end_thirds(&self) -> (TimeWindow, TimeWindow) {
        let third = self.length_nanos() / 3;
        (
            TimeWindow::new(self.start_unix_nanos, self.start_unix_nanos + third),
            TimeWindow::new(self.end_unix_nanos - third, self.end_unix_nanos),
        )
    }
}

/// What one endpoint did in one window: the input of detection.
///
/// Latencies are in milliseconds. Percentiles are exact when computed from stored spans and
/// approximate (within a histogram bucket) when computed from live histograms; both sources fill
/// the same fields. An empty window has `count == 0` and zero latencies.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct WindowStats {
    /// Requests that started in the window.
    pub count: u64,
    /// Of those, how many failed ([`Span::is_error`](crate::Span::is_error)).
    pub errors: u64,
    /// Of those, how many took longer than the timeout threshold the caller chose.
    pub timeouts: u64,
    /// Mean latency.
    pub mean_ms: f64,
    /// Median latency.
    pub p50_ms: f64,
    /// 95th percentile latency.
    pub p95_ms: f64,
    /// 99th percentile latency.
    pub p99_ms: f64,
}

impl WindowStats {
    /// Share of requests that failed, 0 when the window is empty.
    pub fn error_rate(&self) -> f64 {
        if self.count == 0 {
            0.0
        } else {
            self.errors as f64 / self.count as f64
        }
    }

    /// Share of requests that timed out, 0 when the window is empty.
    pub fn timeout_rate(&self) -> f64 {
        if self.count == 0 {
            0.0
        } else {
            self.timeouts as f64 / self.count as f64
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_is_half_open() {
        let window = TimeWindow::new(10, 20);
        assert!(window.contains(10));
        assert!(window.contains(19));
        assert!(!window.contains(20));
        assert_eq!(window.length_nanos(), 10);
        assert_eq!(TimeWindow::ending_at(5, 10), TimeWindow::new(0, 5));
    }

    #[test]
    fn rates_of_an_empty_window_are_zero() {
        let empty = WindowStats::default();
        assert_eq!(empty.error_rate(), 0.0);
        assert_eq!(empty.timeout_rate(), 0.0);
        let some = WindowStats {
            count: 4,
            errors: 1,
            timeouts: 2,
            ..WindowStats::default()
        };
        assert_eq!(some.error_rate(), 0.25);
        assert_eq!(some.timeout_rate(), 0.5);
    }
}
