//! Entry points of the criterion micro-benchmarks (`benches/benches/hot_paths.rs`) into the
//! keyed state that stateful operators use: the state cache's get and put, in memory, in
//! front of RocksDB with a memory budget, and the checkpoint file each completed epoch
//! writes. Compiled only with the `micro-benchmarks` feature; not a stable API.

use std::path::Path;
use std::sync::Arc;

use crate::key_group::KeyGroups;
use crate::state::{RocksStore, StateCache};
use crate::time::Epoch;
use crate::{JobConfig, StateError};

/// The key groups of one worker with the default count.
fn key_groups() -> KeyGroups {
    KeyGroups::new(JobConfig::default().key_groups, 1)
}

/// A running sum per `u64` key, kept as a keyed operator keeps its state.
pub struct KeyedSums {
    cache: StateCache<u64, u64>,
}

impl KeyedSums {
    /// All state in memory, written nowhere (a job without checkpoints).
    pub fn in_memory() -> Self {
        KeyedSums {
            cache: StateCache::in_memory(),
        }
    }

    /// All state in memory; [`checkpoint`](Self::checkpoint) writes each epoch's changes to
    /// a checkpoint file in `dir`.
    pub fn with_checkpoint_files(dir: &Path) -> Result<Self, StateError> {
        Ok(KeyedSums {
            cache: StateCache::with_checkpoint_files(dir.to_owned(), 0, key_groups(), None)?,
        })
    }

    /// About `budget` bytes in memory (as the cache estimates them: each entry's encoded size
    /// plus 64), the rest in a new RocksDB database at `dir`, which is emptied first.
    pub fn in_rocksdb(dir: &Path, budget: usize) -> Result<Self, StateError> {
        let store = Arc::new(RocksStore::create(dir)?);
        Ok(KeyedSums {
            cache: StateCache::spilling(store, 0, key_groups(), budget, false),
        })
    }

    /// Adds `value` to the sum of `key`: a get (loading or creating the entry) and a put.
    pub fn add(&mut self, key: u64, value: u64) -> Result<(), StateError> {
        *self.cache.get_or_default(&key)? += value;
        Ok(())
    }

    /// Writes out every change since the last checkpoint, as the end of `epoch` does: a
    /// checkpoint file (not synced; a delta, or a snapshot of every key once the deltas since
    /// the last one outgrow it), or a batch written back to RocksDB.
    pub fn checkpoint(&mut self, epoch: Epoch) -> Result<(), StateError> {
        self.cache.flush(epoch, std::iter::empty())
    }
}
