//! The process's own figures for `/metrics`, read from `/proc/self` at each scrape, under the
//! names every Prometheus client library uses (`process_resident_memory_bytes`,
//! `process_cpu_seconds_total`, `process_open_fds`, `process_max_fds`,
//! `process_start_time_seconds`). Where `/proc` is missing (not Linux) a figure is left out.

use std::fs;

use prometheus_client::encoding::{DescriptorEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Unit;

/// Clock ticks per second of `/proc/<pid>/stat`'s CPU times: `USER_HZ`, fixed at 100 by the
/// Linux ABI on every architecture.
const USER_HZ: f64 = 100.0;

/// One reading of the process's figures; `None` where `/proc` did not say.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ProcessStats {
    /// Resident set size, bytes.
    pub resident_memory_bytes: Option<u64>,
    /// User and system CPU time, seconds.
    pub cpu_seconds: Option<f64>,
    /// Open file descriptors.
    pub open_fds: Option<u64>,
    /// The soft limit of open file descriptors.
    pub max_fds: Option<u64>,
}

impl ProcessStats {
    /// Reads `/proc/self` now.
    pub fn read() -> Self {
        Self {
            resident_memory_bytes: fs::read_to_string("/proc/self/status")
                .ok()
                .and_then(|text| resident_bytes(&text)),
            cpu_seconds: fs::read_to_string("/proc/self/stat")
                .ok()
                .and_then(|text| cpu_seconds(&text)),
            open_fds: fs::read_dir("/proc/self/fd")
                .ok()
                .map(|entries| entries.count() as u64),
            max_fds: fs::read_to_string("/proc/self/limits")
                .ok()
                .and_then(|text| max_open_files(&text)),
        }
    }
}

/// `VmRSS:    12345 kB` of `/proc/self/status`, in bytes.
fn resident_bytes(status: &str) -> Option<u64> {
    let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// `utime + stime` (fields 14 and 15) of `/proc/self/stat`, in seconds. The command name
/// (field 2) is in parentheses and may hold spaces, so fields are counted after its `)`.
fn cpu_seconds(stat: &str) -> Option<f64> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    let mut fields = after_name.split_whitespace();
    // After the name come field 3 (state) on; utime is field 14, the 12th of these.
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some((utime + stime) as f64 / USER_HZ)
}

/// The soft limit on the `Max open files` line of `/proc/self/limits`.
fn max_open_files(limits: &str) -> Option<u64> {
    let line = limits
        .lines()
        .find(|line| line.starts_with("Max open files"))?;
    line["Max open files".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Encodes `aiops_build_info` and the `process_*` families of `stats` (those `/proc` gave).
pub fn encode(
    encoder: &mut DescriptorEncoder<'_>,
    stats: &ProcessStats,
    started_unix_nanos: u64,
) -> Result<(), std::fmt::Error> {
    let labels = [
        ("version", crate::build_info::VERSION),
        ("commit", crate::build_info::COMMIT),
    ];
    encoder
        .encode_descriptor(
            "aiops_build_info",
            "The running build: 1, with its version and commit as labels.",
            None,
            MetricType::Gauge,
        )?
        .encode_family(&labels)?
        .encode_gauge(&1i64)?;
    encoder
        .encode_descriptor(
            "process_start_time",
            "When the process started, seconds since the Unix epoch.",
            Some(&Unit::Seconds),
            MetricType::Gauge,
        )?
        .encode_gauge(&(started_unix_nanos as f64 / 1e9))?;
    if let Some(seconds) = stats.cpu_seconds {
        encoder
            .encode_descriptor(
                "process_cpu",
                "User and system CPU time spent.",
                Some(&Unit::Seconds),
                MetricType::Counter,
            )?
            .encode_counter::<NoLabelSet, f64, u64>(&seconds, None)?;
    }
    let gauges = [
        (
            "process_resident_memory",
            "Resident memory size.",
            Some(Unit::Bytes),
            stats.resident_memory_bytes,
        ),
        (
            "process_open_fds",
            "Open file descriptors.",
            None,
            stats.open_fds,
        ),
        (
            "process_max_fds",
            "The limit of open file descriptors.",
            None,
            stats.max_fds,
        ),
    ];
    for (name, help, unit, value) in gauges {
        if let Some(value) = value {
            encoder
                .encode_descriptor(name, help, unit.as_ref(), MetricType::Gauge)?
                .encode_gauge(&(value as i64))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_texts_are_read_field_by_field() {
        assert_eq!(
            resident_bytes("Name:\taiops\nVmRSS:\t   2048 kB\nVmData: 1 kB\n"),
            Some(2048 * 1024)
        );
        let stat = "4242 (aiops (a) b) S 1 4242 4242 0 -1 4194560 500 0 0 0 250 50 0 0 20 0 9 0";
        assert_eq!(cpu_seconds(stat), Some(3.0));
        let limits = "Limit                     Soft Limit           Hard Limit           Units\n\
                      Max open files            1024                 524288               files\n";
        assert_eq!(max_open_files(limits), Some(1024));
        assert_eq!(resident_bytes("nothing"), None);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn this_process_has_memory_cpu_time_and_descriptors() {
        let stats = ProcessStats::read();
        assert!(stats.resident_memory_bytes.is_some_and(|bytes| bytes > 0));
        assert!(stats.cpu_seconds.is_some());
        assert!(stats.open_fds.is_some_and(|fds| fds >= 3));
        assert!(
            stats
                .max_fds
                .is_some_and(|max| max >= stats.open_fds.unwrap_or(0))
        );
    }
}
