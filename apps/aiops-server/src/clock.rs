//! The wall clock, read in one place: the analysis actor, persistence, retention, the topology
//! view and the shop's instrumentation take the time from here. Everything below the app takes
//! time as an argument.

use std::time::{SystemTime, UNIX_EPOCH};

/// Current wall-clock time in Unix nanoseconds.
pub fn now_unix_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}
