//! Keys map to key groups by hash, key groups to workers by contiguous range.
//!
//! A key group is the unit in which keyed state moves when a job restarts with another worker
//! count: worker `w` of `n` owns the key groups `[ceil(w * G / n), ceil((w + 1) * G / n))`.

use std::hash::{BuildHasher, Hash};
use std::ops::Range;

/// The index of a key group, `0..key_groups`.
pub type KeyGroup = u32;

/// The fixed seed of the key hash: every process of a job must route a key the same way.
const KEY_HASH_SEED: u64 = 0x5745_4952_4b45_5953;

/// The mapping of keys to key groups and of key groups to workers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyGroups {
    count: u32,
    workers: usize,
}

impl KeyGroups {
    /// `count` key groups spread over `workers` workers.
    ///
    /// # Panics
    /// Unless `count >= workers >= 1`, which [`JobConfig::validate`](crate::JobConfig::validate)
    /// checks for a job.
    pub fn new(count: u32, workers: usize) -> Self {
        assert!(
            workers >= 1 && count as usize >= workers,
            "{count} key groups cannot be spread over {workers} workers"
        );
        KeyGroups { count, workers }
    }

    /// Number of key groups.
    pub fn count(&self) -> u32 {
        self.count
    }

    /// The key group of a key.
    pub fn key_group_of<K: Hash + ?Sized>(&self, key: &K) -> KeyGroup {
        let hash = foldhash::fast::FixedState::with_seed(KEY_HASH_SEED).hash_one(key);
        // Multiply-shift maps the hash onto 0..count without the bias of a modulo.
        ((u128::from(hash) * u128::from(self.count)) >> 64) as KeyGroup
    }

    /// The worker that owns a key group.
    pub fn worker_of(&self, key_group: KeyGroup) -> usize {
        (key_group as usize * self.workers) / self.count as usize
    }

    /// The worker that owns a key.
    pub fn worker_of_key<K: Hash + ?Sized>(&self, key: &K) -> usize {
        self.worker_of(self.key_group_of(key))
    }

    /// The key groups a worker owns.
    pub fn owned_by(&self, worker: usize) -> Range<KeyGroup> {
        let start = (worker * self.count as usize).div_ceil(self.workers);
        let end = ((worker + 1) * self.count as usize).div_ceil(self.workers);
        start as KeyGroup..end as KeyGroup
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn ranges_partition_the_key_groups(count in 1u32..2000, workers in 1usize..64) {
            prop_assume!(count as usize >= workers);
            let groups = KeyGroups::new(count, workers);
            let mut next = 0;
            for worker in 0..workers {
                let range = groups.owned_by(worker);
                prop_assert_eq!(range.start, next);
                prop_assert!(!range.is_empty());
                for key_group in range.clone() {
                    prop_assert_eq!(groups.worker_of(key_group), worker);
                }
                next = range.end;
            }
            prop_assert_eq!(next, count);
        }

        #[test]
        fn keys_land_in_range(key in any::<u64>(), count in 1u32..5000) {
            let groups = KeyGroups::new(count, 1);
            prop_assert!(groups.key_group_of(&key) < count);
        }
    }

    #[test]
    fn keys_spread_evenly() {
        let groups = KeyGroups::new(128, 4);
        let mut per_worker = [0usize; 4];
        for key in 0..100_000u64 {
            per_worker[groups.worker_of_key(&key)] += 1;
        }
        for count in per_worker {
            assert!((23_000..27_000).contains(&count), "{per_worker:?}");
        }
    }

    #[test]
    fn sequential_keys_fill_every_key_group_evenly() {
        let groups = KeyGroups::new(128, 1);
        let mut per_group = [0usize; 128];
        for key in 0..100_000u64 {
            per_group[groups.key_group_of(&key) as usize] += 1;
        }
        let mean = 100_000 / 128;
        for count in per_group {
            assert!(
                count > mean * 8 / 10 && count < mean * 12 / 10,
                "{per_group:?}"
            );
        }
    }
}
