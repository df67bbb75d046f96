//! The buckets of one endpoint's series in [`LiveWindows`](super::LiveWindows).

use std::collections::VecDeque;
use std::ops::Range;

use crate::histogram::Summary;

/// One endpoint's buckets in ascending key order, without gaps filled: spans mostly arrive in
/// time order, so a new bucket is pushed at the back and the oldest popped at the front. The
/// keys are kept apart from the summaries, so that finding a range of keys reads a few
/// hundred bytes rather than every bucket it passes.
#[derive(Debug, Default)]
pub(super) struct Buckets {
    pub(super) keys: VecDeque<u64>,
    /// `summaries[i]` is the bucket of `keys[i]`.
    pub(super) summaries: VecDeque<Summary>,
}

impl Buckets {
    pub(super) fn len(&self) -> usize {
        self.keys.len()
    }

    pub(super) fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The position of bucket `key`, or where it would go. Spans mostly arrive in time
    /// order, so the newest bucket is checked first.
    pub(super) fn find(&self, key: u64) -> Result<usize, usize> {
        match self.keys.back() {
            Some(&last) if last == key => Ok(self.len() - 1),
            Some(&last) if last < key => Err(self.len()),
            _ => self.keys.binary_search(&key),
        }
    }

    pub(super) fn insert(&mut self, index: usize, key: u64, summary: Summary) {
        self.keys.insert(index, key);
        self.summaries.insert(index, summary);
    }

    pub(super) fn pop_front(&mut self) -> Option<(u64, Summary)> {
        Some((self.keys.pop_front()?, self.summaries.pop_front()?))
    }

    /// The newest key in `keys` that has a bucket.
    pub(super) fn newest_in(&self, keys: Range<u64>) -> Option<u64> {
        let to = self.keys.partition_point(|&k| k < keys.end);
        to.checked_sub(1)
            .map(|index| self.keys[index])
            .filter(|&key| key >= keys.start)
    }

    /// The summaries of the buckets with keys in `keys` (possibly empty), in key order.
    pub(super) fn range(&self, keys: Range<u64>) -> impl Iterator<Item = &Summary> {
        let from = self.keys.partition_point(|&k| k < keys.start);
        let to = self.keys.partition_point(|&k| k < keys.end);
        self.summaries.range(from..to.max(from))
    }
}
