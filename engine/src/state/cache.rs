//! Keyed state as operators see it: a map from key to state in memory, which, with the
//! RocksDB backend, writes back to the worker's database and evicts entries beyond a memory
//! budget, loading them again on their next use.

use std::collections::{HashMap, HashSet};
use std::hash::Hash;
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::store::RocksStore;
use super::StateError;
use crate::key_group::KeyGroups;

/// Bytes a cached entry is assumed to take besides its encoded size (map slot, key, headers).
const ENTRY_OVERHEAD: usize = 64;

/// Set in the operator part of a key that holds a timer instead of state.
const TIMER_FLAG: u32 = 1 << 31;

struct Entry<S> {
    state: S,
    /// Changed since it was last written to the store.
    dirty: bool,
    /// A copy is in the store (it was loaded from or written to it).
    stored: bool,
}

/// Where evicted state goes.
struct Spill {
    store: Arc<RocksStore>,
    /// The operator's id, first in every key it writes.
    operator: u32,
    key_groups: KeyGroups,
    budget: usize,
    /// Running mean of the encoded size of entries written or read, in bytes.
    entry_size: usize,
    /// Timers set (`Some`) or fired (`None`) since the last flush, by store key; only kept
    /// when timers are durable.
    timer_changes: Option<Vec<(Vec<u8>, bool)>>,
    /// Whether the store may hold entries the cache does not: false when the cache has held
    /// every entry from the start (in-memory state written to the store only for checkpoints),
    /// so that a miss is a new key and costs no read.
    may_hold_more: bool,
}

/// The state of every key one keyed operator holds on one worker.
pub(crate) struct StateCache<K, S> {
    entries: HashMap<K, Entry<S>, foldhash::fast::FixedState>,
    spill: Option<Spill>,
    /// With a store: keys changed since the last flush (some written back or removed since).
    dirty: Vec<K>,
    /// With durable timers: stored keys removed since the last flush, deleted by the next one
    /// (so that between checkpoints nothing but evictions writes to the store).
    deleted: HashSet<K, foldhash::fast::FixedState>,
    /// Whether evictions may write to the store now (not while the store's contents must stay
    /// those of the last flushed epoch until its checkpoint is taken).
    may_write: bool,
    /// Keys that got state (held neither here nor in the store) and keys whose state was
    /// dropped, since the last [`take_key_counts`](Self::take_key_counts).
    created: u64,
    removed: u64,
}

impl<K, S> StateCache<K, S>
where
    K: Hash + Eq + Clone + Serialize,
    S: Default + Serialize + DeserializeOwned,
{
    /// All state in memory.
    pub(crate) fn in_memory() -> Self {
        StateCache {
            entries: HashMap::default(),
            spill: None,
            dirty: Vec::new(),
            deleted: HashSet::default(),
            may_write: true,
            created: 0,
            removed: 0,
        }
    }

    /// State in memory up to `budget` bytes (estimated), the rest in `store`. With
    /// `durable_timers`, timers noted with [`note_timer`](Self::note_timer) are written with
    /// every [`flush`](Self::flush), for checkpoints.
    pub(crate) fn spilling(
        store: Arc<RocksStore>,
        operator: u32,
        key_groups: KeyGroups,
        budget: usize,
        durable_timers: bool,
    ) -> Self {
        StateCache {
            entries: HashMap::default(),
            spill: Some(Spill {
                store,
                operator,
                key_groups,
                budget,
                entry_size: 256,
                timer_changes: durable_timers.then(Vec::new),
                may_hold_more: true,
            }),
            dirty: Vec::new(),
            deleted: HashSet::default(),
            may_write: true,
            created: 0,
            removed: 0,
        }
    }

    /// Declares that the store holds nothing the cache does not (a fresh start of state kept
    /// in memory and written to the store for checkpoints): misses no longer read the store.
    /// Evictions are turned off, as the cache must keep every entry from now on.
    pub(crate) fn holding_everything(mut self) -> Self {
        if let Some(spill) = &mut self.spill {
            spill.may_hold_more = false;
            spill.budget = usize::MAX;
        }
        self
    }

    /// Keys that got state and keys whose state was dropped since the last call.
    pub(crate) fn take_key_counts(&mut self) -> (u64, u64) {
        (
            std::mem::take(&mut self.created),
            std::mem::take(&mut self.removed),
        )
    }

    /// Allows or forbids evictions, which write to the store before the next flush. While
    /// forbidden the cache may grow past its budget.
    pub(crate) fn allow_evictions(&mut self, allowed: bool) {
        self.may_write = allowed;
    }

    /// Number of keys held in memory.
    #[cfg(test)]
    fn cached(&self) -> usize {
        self.entries.len()
    }

    /// The state of `key`, loaded or created, to change.
    pub(crate) fn get_or_default(&mut self, key: &K) -> Result<&mut S, StateError> {
        if !self.entries.contains_key(key) {
            let loaded = self.load(key)?;
            let stored = loaded.is_some();
            if !stored {
                self.created += 1;
            }
            self.insert(key, loaded.unwrap_or_default(), stored)?;
        }
        Ok(self.touch(key))
    }

    /// The state of `key` if it has any, to change.
    pub(crate) fn get_existing(&mut self, key: &K) -> Result<Option<&mut S>, StateError> {
        if !self.entries.contains_key(key) {
            match self.load(key)? {
                Some(state) => self.insert(key, state, true)?,
                None => return Ok(None),
            }
        }
        Ok(Some(self.touch(key)))
    }

    /// Drops the state of `key`, here and in the store. State that never reached the store
    /// (most state, which lives and dies in the cache) costs no write.
    pub(crate) fn remove(&mut self, key: &K) -> Result<(), StateError> {
        self.removed += 1;
        let stored = self.entries.remove(key).is_none_or(|entry| entry.stored);
        match &self.spill {
            Some(spill) if stored && spill.timer_changes.is_some() => {
                self.deleted.insert(key.clone());
            }
            Some(spill) if stored => {
                let mut batch = rocksdb::WriteBatch::default();
                batch.delete(spill.store_key(key)?);
                spill.store.write(batch)?;
            }
            _ => {}
        }
        Ok(())
    }

    fn touch(&mut self, key: &K) -> &mut S {
        let entry = self
            .entries
            .get_mut(key)
            .unwrap_or_else(|| unreachable!("the entry was inserted above"));
        if !entry.dirty && self.spill.is_some() {
            self.dirty.push(key.clone());
        }
        entry.dirty = true;
        &mut entry.state
    }

    /// Writes every change since the last flush (state and durable timers) to the store in
    /// one batch: the state of a completed epoch, before its checkpoint.
    pub(crate) fn flush(&mut self) -> Result<(), StateError> {
        let Some(spill) = &mut self.spill else {
            return Ok(());
        };
        // Puts (`Some`) and deletes (`None`) by store key. RocksDB inserts sorted keys into
        // its memtable much faster than hash-ordered ones, so the batch is sorted (stably:
        // a timer set and fired within one epoch keeps its order).
        let mut changes: Vec<(Vec<u8>, Option<Vec<u8>>)> = Vec::new();
        for key in self.deleted.drain() {
            changes.push((spill.store_key(&key)?, None));
        }
        for key in self.dirty.drain(..) {
            if let Some(entry) = self.entries.get_mut(&key).filter(|entry| entry.dirty) {
                let bytes = postcard::to_stdvec(&entry.state)
                    .map_err(|error| StateError::Encode(error.to_string()))?;
                changes.push((spill.store_key(&key)?, Some(bytes)));
                entry.dirty = false;
                entry.stored = true;
            }
        }
        for (key, set) in spill
            .timer_changes
            .iter_mut()
            .flat_map(|changes| changes.drain(..))
        {
            changes.push((key, set.then(Vec::new)));
        }
        changes.sort_by(|a, b| a.0.cmp(&b.0));
        let mut batch = rocksdb::WriteBatch::default();
        for (key, value) in changes {
            match value {
                Some(value) => batch.put(key, value),
                None => batch.delete(key),
            }
        }
        spill.store.write(batch)
    }

    /// Notes that `key`'s timer of `kind` at `time` was set (`set`) or fired, to be written
    /// with the next flush when timers are durable.
    pub(crate) fn note_timer(
        &mut self,
        kind: u8,
        time: u64,
        key: &K,
        set: bool,
    ) -> Result<(), StateError> {
        let Some(spill) = &mut self.spill else {
            return Ok(());
        };
        let Some(changes) = &mut spill.timer_changes else {
            return Ok(());
        };
        let mut bytes = Vec::with_capacity(48);
        bytes.extend_from_slice(&(spill.operator | TIMER_FLAG).to_be_bytes());
        bytes.extend_from_slice(&spill.key_groups.key_group_of(key).to_be_bytes());
        bytes.push(kind);
        bytes.extend_from_slice(&time.to_be_bytes());
        postcard::to_io(key, &mut bytes).map_err(|error| StateError::Encode(error.to_string()))?;
        changes.push((bytes, set));
        Ok(())
    }

    /// The durable timers in the store: `(kind, time, key)`.
    pub(crate) fn stored_timers(&self) -> Result<Vec<(u8, u64, K)>, StateError>
    where
        K: DeserializeOwned,
    {
        let Some(spill) = &self.spill else {
            return Ok(Vec::new());
        };
        let prefix = (spill.operator | TIMER_FLAG).to_be_bytes();
        let mut timers = Vec::new();
        for stored in spill.store.keys_with_prefix(&prefix)? {
            let bad = || StateError::Decode(format!("malformed timer key {stored:02x?}"));
            let kind = *stored.get(8).ok_or_else(bad)?;
            let time = stored
                .get(9..17)
                .and_then(|bytes| <[u8; 8]>::try_from(bytes).ok())
                .map(u64::from_be_bytes)
                .ok_or_else(bad)?;
            let key = postcard::from_bytes(&stored[17..])
                .map_err(|error| StateError::Decode(error.to_string()))?;
            timers.push((kind, time, key));
        }
        Ok(timers)
    }

    fn load(&mut self, key: &K) -> Result<Option<S>, StateError> {
        let Some(spill) = &mut self.spill else {
            return Ok(None);
        };
        if !spill.may_hold_more || self.deleted.contains(key) {
            return Ok(None);
        }
        let Some(bytes) = spill.store.get(&spill.store_key(key)?)? else {
            return Ok(None);
        };
        spill.note_size(bytes.len());
        postcard::from_bytes(&bytes)
            .map(Some)
            .map_err(|error| StateError::Decode(error.to_string()))
    }

    /// Inserts a loaded or new entry, first making room under the budget.
    fn insert(&mut self, key: &K, state: S, stored: bool) -> Result<(), StateError> {
        self.make_room()?;
        // A new value replaces a pending deletion (the flush writes it); the store still holds
        // the old value, so removing the new one must delete it again.
        let stored = stored || self.deleted.remove(key);
        if self.spill.is_some() {
            self.dirty.push(key.clone());
        }
        let entry = Entry {
            state,
            dirty: true,
            stored,
        };
        self.entries.insert(key.clone(), entry);
        Ok(())
    }

    /// Over budget: writes every changed entry back in one batch and evicts entries until a
    /// fifth of the budget is free.
    fn make_room(&mut self) -> Result<(), StateError> {
        let Some(spill) = &mut self.spill else {
            return Ok(());
        };
        let per_entry = spill.entry_size + ENTRY_OVERHEAD;
        if self.entries.len() * per_entry < spill.budget || !self.may_write {
            return Ok(());
        }
        let mut batch = rocksdb::WriteBatch::default();
        let mut written = 0;
        for (key, entry) in self.entries.iter_mut().filter(|(_, entry)| entry.dirty) {
            let bytes = postcard::to_stdvec(&entry.state)
                .map_err(|error| StateError::Encode(error.to_string()))?;
            written += bytes.len();
            batch.put(spill.store_key(key)?, bytes);
            entry.dirty = false;
            entry.stored = true;
        }
        let count = batch.len();
        spill.store.write(batch)?;
        self.dirty.clear();
        if let Some(mean) = written.checked_div(count) {
            spill.entry_size = (spill.entry_size + mean) / 2;
        }
        let keep = (spill.budget * 4 / 5) / (spill.entry_size + ENTRY_OVERHEAD);
        let surplus = self.entries.len().saturating_sub(keep.max(1));
        let evicted: Vec<K> = self.entries.keys().take(surplus).cloned().collect();
        for key in &evicted {
            self.entries.remove(key);
        }
        Ok(())
    }
}

impl Spill {
    /// `operator (4 bytes) | key group (4 bytes) | key`, big-endian, so a key group's keys are
    /// contiguous (for moving key groups between workers).
    fn store_key<K: Hash + Serialize>(&self, key: &K) -> Result<Vec<u8>, StateError> {
        let mut bytes = Vec::with_capacity(32);
        bytes.extend_from_slice(&self.operator.to_be_bytes());
        bytes.extend_from_slice(&self.key_groups.key_group_of(key).to_be_bytes());
        postcard::to_io(key, &mut bytes).map_err(|error| StateError::Encode(error.to_string()))?;
        Ok(bytes)
    }

    fn note_size(&mut self, size: usize) {
        self.entry_size = (self.entry_size * 7 + size) / 8;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spilling(dir: &std::path::Path, budget: usize) -> StateCache<u64, Vec<u64>> {
        let store = Arc::new(RocksStore::create(&dir.join("db")).unwrap());
        StateCache::spilling(store, 7, KeyGroups::new(128, 1), budget, true)
    }

    #[test]
    fn reads_see_writes_through_eviction_under_a_tiny_budget() {
        let dir = tempfile::tempdir().unwrap();
        let mut cache = spilling(dir.path(), 4 * 1024);
        for round in 0..3u64 {
            for key in 0..2_000u64 {
                cache.get_or_default(&key).unwrap().push(key * 10 + round);
            }
            assert!(
                cache.cached() < 200,
                "{} entries held in memory",
                cache.cached()
            );
        }
        for key in 0..2_000u64 {
            assert_eq!(
                cache.get_existing(&key).unwrap().cloned(),
                Some(vec![key * 10, key * 10 + 1, key * 10 + 2])
            );
        }
        cache.remove(&5).unwrap();
        assert_eq!(cache.get_existing(&5).unwrap(), None);
        // Removed keys stay removed after eviction too.
        for key in 2_000..4_000u64 {
            cache.get_or_default(&key).unwrap().push(1);
        }
        assert_eq!(cache.get_existing(&5).unwrap(), None);
        assert_eq!(
            cache.get_existing(&6).unwrap().cloned(),
            Some(vec![60, 61, 62])
        );
    }

    #[test]
    fn a_cache_holding_everything_does_not_read_the_store() {
        let dir = tempfile::tempdir().unwrap();
        let mut earlier = spilling(dir.path(), usize::MAX);
        earlier.get_or_default(&1).unwrap().push(10);
        earlier.flush().unwrap();
        let store = Arc::clone(&earlier.spill.as_ref().unwrap().store);
        // A cache that may find more in the store reads key 1 back; one holding everything
        // treats it as new (its store only ever receives what the cache wrote).
        let mut lazy: StateCache<u64, Vec<u64>> = StateCache::spilling(
            Arc::clone(&store),
            7,
            KeyGroups::new(128, 1),
            usize::MAX,
            true,
        );
        assert_eq!(lazy.get_existing(&1).unwrap().cloned(), Some(vec![10]));
        let mut holding =
            StateCache::<u64, Vec<u64>>::spilling(store, 7, KeyGroups::new(128, 1), 1024, true)
                .holding_everything();
        assert_eq!(holding.get_existing(&1).unwrap(), None);
        // And it never evicts, whatever its budget was.
        for key in 0..5_000u64 {
            holding.get_or_default(&key).unwrap().push(key);
        }
        assert_eq!(holding.cached(), 5_000);
    }

    #[test]
    fn in_memory_state_never_spills() {
        let mut cache: StateCache<u64, u64> = StateCache::in_memory();
        for key in 0..10_000u64 {
            *cache.get_or_default(&key).unwrap() += key;
        }
        assert_eq!(cache.cached(), 10_000);
        assert_eq!(cache.get_existing(&77).unwrap().copied(), Some(77));
        assert_eq!(cache.get_existing(&10_001).unwrap(), None);
    }
}
