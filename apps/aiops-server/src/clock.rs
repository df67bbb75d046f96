//! The time, read in one place. The analysis actor, persistence, retention, the topology view
//! and the shop's instrumentation take it from here; everything below the app takes time as an
//! argument.

use std::time::{SystemTime, UNIX_EPOCH};

/// Current wall-clock time in Unix nanoseconds.
pub fn now_unix_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// Where a task that also sleeps on tokio timers reads the time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Clock {
    /// The wall clock.
    Wall,
    /// Unix nanoseconds `base_unix_nanos` at tokio instant `since`, advancing with tokio's
    /// time: when that time is paused (tests), with `tokio::time::advance` alone.
    Tokio {
        /// The time at `since`, in Unix nanoseconds.
        base_unix_nanos: u64,
        /// When the clock read `base_unix_nanos`.
        since: tokio::time::Instant,
    },
}

impl Clock {
    /// A clock that reads `base_unix_nanos` now and follows tokio's time from here.
    pub fn tokio_from(base_unix_nanos: u64) -> Self {
        Self::Tokio {
            base_unix_nanos,
            since: tokio::time::Instant::now(),
        }
    }

    /// The current time in Unix nanoseconds.
    pub fn now_unix_nanos(&self) -> u64 {
        match self {
            Self::Wall => now_unix_nanos(),
            Self::Tokio {
                base_unix_nanos,
                since,
            } => {
                let elapsed = tokio::time::Instant::now().duration_since(*since);
                base_unix_nanos
                    .saturating_add(u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX))
            }
        }
    }
}
