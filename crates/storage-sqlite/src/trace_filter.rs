//! Per-block Bloom filters of trace ids: how a trace is found without a trace-id index.
//!
//! Every block of [`BLOCK_ROWS`] span ids has a filter of the trace ids among its spans, stored
//! in `span_blocks.traces`. A trace look-up reads the filters, and reads by primary-key range
//! only the blocks whose filter says "maybe"; a filter never says "no" for a trace that is in
//! its block, and says "maybe" for about 0.05% of the others (16 bits and 8 probes per span of
//! a full block; 2 bytes per span stored, against about 20 for an index entry).
//!
//! An index on the trace id had to be updated at a random position for every inserted span,
//! which made inserts about 40% slower (see `docs/adr/0001-span-storage-layout.md`); a filter
//! is a few bit operations per span in memory and one blob write per block per transaction.

use aiops_telemetry_core::TraceId;

use crate::layout::BLOCK_ROWS;

/// Filter size in bytes: 16 bits for each span a block can hold.
pub(crate) const FILTER_BYTES: usize = BLOCK_ROWS as usize * 16 / 8;
const FILTER_BITS: u64 = FILTER_BYTES as u64 * 8;
const _: () = assert!(
    FILTER_BITS.is_power_of_two(),
    "probes are masked, not divided"
);
/// Bit positions set per trace id.
const PROBES: u64 = 8;

/// The trace-id filter of one block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct TraceFilter {
    bits: Vec<u8>,
}

impl Default for TraceFilter {
    fn default() -> Self {
        Self {
            bits: vec![0; FILTER_BYTES],
        }
    }
}

impl TraceFilter {
    /// A filter read back from the database; `None` when the blob is not one of ours (wrong
    /// size), so that the caller falls back to reading the block.
    pub(crate) fn from_bytes(bytes: &[u8]) -> Option<Self> {
        (bytes.len() == FILTER_BYTES).then(|| Self {
            bits: bytes.to_vec(),
        })
    }

    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.bits
    }

    pub(crate) fn insert(&mut self, trace_id: &TraceId) {
        for bit in positions(trace_id) {
            self.bits[(bit / 8) as usize] |= 1 << (bit % 8);
        }
    }

    /// False only when no span of `trace_id` was inserted.
    #[cfg(test)]
    pub(crate) fn may_contain(&self, trace_id: &TraceId) -> bool {
        contains(&self.bits, trace_id)
    }
}

/// [`TraceFilter::may_contain`] on a stored blob, without copying it; a blob of the wrong size
/// says "maybe", so the block is read.
pub(crate) fn blob_may_contain(blob: &[u8], trace_id: &TraceId) -> bool {
    blob.len() != FILTER_BYTES || contains(blob, trace_id)
}

fn contains(bits: &[u8], trace_id: &TraceId) -> bool {
    positions(trace_id).all(|bit| bits[(bit / 8) as usize] & (1 << (bit % 8)) != 0)
}

/// The probe positions of a trace id: double hashing over two mixed halves of the id, so that
/// ids that are not random (a client with a counter for ids) still spread over the filter.
fn positions(trace_id: &TraceId) -> impl Iterator<Item = u64> {
    // Little-endian: the low half is the id's first eight bytes, the high half the last eight.
    let id = u128::from_le_bytes(*trace_id.as_bytes());
    let first = mix(id as u64);
    let second = mix((id >> 64) as u64 ^ first) | 1;
    (0..PROBES).map(move |i| first.wrapping_add(i.wrapping_mul(second)) & (FILTER_BITS - 1))
}

/// SplitMix64's finaliser: every input bit affects every output bit.
fn mix(mut value: u64) -> u64 {
    value = (value ^ (value >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    value = (value ^ (value >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    value ^ (value >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u128) -> TraceId {
        TraceId::from_bytes(n.to_be_bytes())
    }

    #[test]
    fn a_full_block_has_no_false_negatives_and_few_false_positives() {
        let mut filter = TraceFilter::default();
        let members: Vec<TraceId> = (1..=BLOCK_ROWS as u128).map(|n| id(n * 7919)).collect();
        for trace_id in &members {
            filter.insert(trace_id);
        }
        assert!(members.iter().all(|trace_id| filter.may_contain(trace_id)));
        let strangers = 100_000u128;
        let false_positives = (0..strangers)
            .map(|n| id(u128::MAX - n))
            .filter(|trace_id| filter.may_contain(trace_id))
            .count();
        // 12 bits and 8 probes per id: about 0.3% expected.
        assert!(false_positives < 1_000, "{false_positives} of {strangers}");
    }

    #[test]
    fn an_empty_filter_contains_nothing_and_round_trips_through_bytes() {
        let mut filter = TraceFilter::default();
        assert!(!filter.may_contain(&id(42)));
        filter.insert(&id(42));
        let stored = filter.as_bytes().to_vec();
        assert_eq!(TraceFilter::from_bytes(&stored), Some(filter));
        assert!(blob_may_contain(&stored, &id(42)));
        assert!(!blob_may_contain(&stored, &id(43)));
    }

    #[test]
    fn a_blob_of_another_size_means_maybe() {
        assert_eq!(TraceFilter::from_bytes(&[0; 3]), None);
        assert!(blob_may_contain(&[0; 3], &id(1)));
    }
}
