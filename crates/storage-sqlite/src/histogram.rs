use crate::codec::corrupt;
use crate::error::StoreError;

/// Number of buckets in a [`LatencyHistogram`].
const BUCKETS: usize = 128;
/// Latencies below 2^10 ns (about 1 µs) share bucket 0.
const FIRST_OCTAVE: u32 = 10;
/// One stored bucket: index byte and little-endian count.
const ENCODED_PAIR: usize = 9;

/// A fixed log-linear latency histogram: four buckets per doubling from 1,024 ns to about
/// 36 minutes, so every bucket's upper bound is at most 25% above its lower bound.
///
/// Rollups keep one per endpoint and minute. Because the buckets are fixed, histograms of
/// different minutes merge by adding counts, and a percentile estimated from the merged
/// histogram is never below the exact value and at most one bucket (25%) above it.
#[derive(Clone, PartialEq, Eq)]
pub struct LatencyHistogram {
    counts: [u64; BUCKETS],
}

impl Default for LatencyHistogram {
    fn default() -> Self {
        Self {
            counts: [0; BUCKETS],
        }
    }
}

impl std::fmt::Debug for LatencyHistogram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let filled = self
            .counts
            .iter()
            .enumerate()
            .filter(|(_, count)| **count > 0);
        f.debug_map().entries(filled).finish()
    }
}

impl LatencyHistogram {
    /// Counts one latency.
    pub fn record(&mut self, duration_nanos: u64) {
        self.counts[bucket_of(duration_nanos)] += 1;
    }

    /// Adds every count of `other`.
    pub fn merge(&mut self, other: &Self) {
        for (mine, theirs) in self.counts.iter_mut().zip(other.counts.iter()) {
            *mine += theirs;
        }
    }

    /// How many latencies were recorded.
    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// The upper bound (exclusive, in nanoseconds) of the bucket holding the nearest-rank
    /// `quantile` (in `(0, 1]`), or `None` when empty. `u64::MAX` means "beyond the last
    /// bucket"; callers clamp with the observed maximum.
    pub fn quantile_upper_bound_nanos(&self, quantile: f64) -> Option<u64> {
        let total = self.count();
        if total == 0 {
            return None;
        }
        // The tolerance keeps exact products such as 0.95 * 20 at rank 19 despite rounding.
        let rank = ((quantile * total as f64 - 1e-6).ceil() as u64).clamp(1, total);
        let mut seen = 0;
        for (index, count) in self.counts.iter().enumerate() {
            seen += count;
            if seen >= rank {
                return Some(upper_bound(index));
            }
        }
        Some(u64::MAX)
    }

    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut bytes = Vec::new();
        for (index, count) in self.counts.iter().enumerate() {
            if *count > 0 {
                bytes.push(index as u8);
                bytes.extend_from_slice(&count.to_le_bytes());
            }
        }
        bytes
    }

    pub(crate) fn decode(bytes: &[u8]) -> Result<Self, StoreError> {
        if !bytes.len().is_multiple_of(ENCODED_PAIR) {
            return Err(corrupt(
                "latency histogram",
                format!("length {} is not a multiple of {ENCODED_PAIR}", bytes.len()),
            ));
        }
        let mut histogram = Self::default();
        for pair in bytes.chunks_exact(ENCODED_PAIR) {
            let index = usize::from(pair[0]);
            let slot = histogram.counts.get_mut(index).ok_or_else(|| {
                corrupt("latency histogram", format!("bucket {index} out of range"))
            })?;
            let mut count = [0u8; 8];
            count.copy_from_slice(&pair[1..]);
            *slot += u64::from_le_bytes(count);
        }
        Ok(histogram)
    }
}

fn bucket_of(nanos: u64) -> usize {
    if nanos < 1 << FIRST_OCTAVE {
        return 0;
    }
    let octave = 63 - nanos.leading_zeros();
    let quarter = (nanos >> (octave - 2)) & 3;
    let index = 1 + 4 * (octave - FIRST_OCTAVE) as usize + quarter as usize;
    index.min(BUCKETS - 1)
}

/// The smallest latency in bucket `index`.
fn lower_bound(index: usize) -> u64 {
    if index == 0 {
        return 0;
    }
    let octave = FIRST_OCTAVE + ((index - 1) / 4) as u32;
    let quarter = ((index - 1) % 4) as u64;
    (1u64 << (octave - 2)) * (4 + quarter)
}

fn upper_bound(index: usize) -> u64 {
    if index + 1 >= BUCKETS {
        u64::MAX
    } else {
        lower_bound(index + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn buckets_tile_the_line_without_gaps() {
        assert_eq!(bucket_of(0), 0);
        assert_eq!(bucket_of(1023), 0);
        assert_eq!(bucket_of(1024), 1);
        for index in 1..BUCKETS - 1 {
            assert_eq!(bucket_of(lower_bound(index)), index);
            assert_eq!(bucket_of(upper_bound(index) - 1), index);
            assert!(upper_bound(index) * 4 <= lower_bound(index) * 5);
        }
        assert_eq!(bucket_of(u64::MAX), BUCKETS - 1);
    }

    #[test]
    fn encoding_round_trips_and_rejects_garbage() {
        let mut histogram = LatencyHistogram::default();
        for nanos in [5, 2_000, 180_000_000, 180_000_001, 9_000_000_000] {
            histogram.record(nanos);
        }
        let decoded = LatencyHistogram::decode(&histogram.encode()).expect("decodes");
        assert_eq!(decoded, histogram);
        assert_eq!(decoded.count(), 5);
        assert!(LatencyHistogram::decode(&[1, 2, 3]).is_err());
        assert!(LatencyHistogram::decode(&[200, 1, 0, 0, 0, 0, 0, 0, 0]).is_err());
    }

    #[test]
    fn empty_histogram_has_no_quantiles() {
        assert_eq!(
            LatencyHistogram::default().quantile_upper_bound_nanos(0.95),
            None
        );
    }

    proptest! {
        #[test]
        fn quantile_bound_is_above_exact_within_a_bucket(
            mut latencies in prop::collection::vec(1_000u64..10_000_000_000, 1..300),
            percent in 1u64..=100,
        ) {
            let mut histogram = LatencyHistogram::default();
            latencies.iter().for_each(|nanos| histogram.record(*nanos));
            latencies.sort_unstable();
            let rank = (percent * latencies.len() as u64).div_ceil(100).max(1);
            let exact = latencies[rank as usize - 1];
            let bound = histogram
                .quantile_upper_bound_nanos(percent as f64 / 100.0)
                .expect("not empty");
            prop_assert!(bound > exact);
            prop_assert!(bound as f64 <= exact as f64 * 1.25 + 1.0);
        }
    }
}
