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
            _ => {
                let index = self.lower_bound(key);
                if self.keys.get(index) == Some(&key) {
                    Ok(index)
                } else {
                    Err(index)
                }
            }
        }
    }

    /// How many buckets have keys below `key`. A busy endpoint has a bucket for every key,
    /// so the position is read off the first key rather than searched for: a search would
    /// read keys all over the deque, which a cycle finds in no cache.
    fn lower_bound(&self, key: u64) -> usize {
        let (Some(&first), Some(&last)) = (self.keys.front(), self.keys.back()) else {
            return 0;
        };
        let dense = last - first == (self.len() - 1) as u64;
        if dense {
            usize::try_from(key.saturating_sub(first)).map_or(self.len(), |i| i.min(self.len()))
        } else {
            self.keys.partition_point(|&k| k < key)
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
        let to = self.lower_bound(keys.end);
        to.checked_sub(1)
            .map(|index| self.keys[index])
            .filter(|&key| key >= keys.start)
    }

    /// The summaries of the buckets with keys in `keys` (possibly empty), in key order.
    pub(super) fn range(&self, keys: Range<u64>) -> impl Iterator<Item = &Summary> {
        let from = self.lower_bound(keys.start);
        let to = self.lower_bound(keys.end);
        self.summaries.range(from..to.max(from))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn buckets(keys: &[u64]) -> Buckets {
        let mut buckets = Buckets::default();
        for &key in keys {
            let index = buckets.find(key).unwrap_err();
            buckets.insert(index, key, Summary::default());
        }
        buckets
    }

    proptest! {
        /// Dense or with gaps, and whatever the order the buckets came in, a key is found
        /// where a search of the keys would find it.
        #[test]
        fn buckets_are_found_where_a_search_finds_them(
            first in 0u64..1_000,
            steps in proptest::collection::vec(1u64..3, 0..40),
            probe in 0u64..1_200,
            reversed in any::<bool>(),
        ) {
            let mut keys: Vec<u64> = steps
                .iter()
                .scan(first, |key, step| {
                    *key += step;
                    Some(*key)
                })
                .collect();
            keys.insert(0, first);
            if reversed {
                keys.reverse();
            }
            let buckets = buckets(&keys);
            keys.sort_unstable();
            prop_assert!(buckets.keys.iter().eq(keys.iter()));
            let searched = keys.binary_search(&probe);
            prop_assert_eq!(buckets.find(probe), searched);
            let below = keys.partition_point(|&k| k < probe);
            prop_assert_eq!(buckets.range(probe..probe + 3).count(),
                keys.partition_point(|&k| k < probe + 3) - below);
        }
    }
}
