//! Keyed state as operators see it: a map from key to state in memory. Without checkpoints
//! that is all. With checkpoints, in-memory state writes each completed epoch's changes to a
//! checkpoint file (see `checkpoint_files`). With the RocksDB backend, the map is a write-back
//! cache of the worker's database: it writes each completed epoch's changes back and evicts
//! entries beyond a memory budget, loading them again on their next use.

use std::collections::HashSet;
use std::hash::Hash;
use std::path::PathBuf;
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::checkpoint_files::{FileBuffer, FileKind, FileName, FileWriter, RestoredFiles};
use super::keys::{self, TimerKind};
use super::store::RocksStore;
use super::StateError;
use crate::key_group::KeyGroups;
use crate::time::Epoch;

/// Bytes a cached entry is assumed to take besides its encoded size (map slot, key, headers).
const ENTRY_OVERHEAD: usize = 64;

type HashMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::FixedState>;

struct Entry<S> {
    state: S,
    /// Changed since it was last written out (to the store or a checkpoint file).
    dirty: bool,
    /// A copy is out there (in the store, or in the checkpoint files since the last snapshot),
    /// so that removing the entry must write a delete.
    stored: bool,
}

/// Where state goes besides memory.
enum Backing {
    /// Nowhere: a job without checkpoints.
    Nothing,
    /// Checkpoint files, one per completed epoch.
    Files(Files),
    /// The worker's RocksDB database.
    Rocks(Spill),
}

/// In-memory state's checkpoint files.
struct Files {
    dir: PathBuf,
    operator: u32,
    key_groups: KeyGroups,
    /// The records of the file being written.
    buffer: FileBuffer,
    /// Size of the last snapshot; `None` before the first one.
    snapshot_size: Option<u64>,
    /// Size of the deltas written since the last snapshot.
    deltas_size: u64,
    /// Whether a timer was set or fired since the last file.
    timers_changed: bool,
}

/// What happened to a timer, for the checkpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TimerChange {
    /// It was set: it is pending.
    Set,
    /// It fired: it is gone.
    Fired,
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
    /// Timers set or fired since the last flush, by store key; only kept when timers are
    /// durable.
    timer_changes: Option<Vec<(Vec<u8>, TimerChange)>>,
}

/// The state of every key one keyed operator holds on one worker.
pub(crate) struct StateCache<K, S> {
    entries: HashMap<K, Entry<S>>,
    backing: Backing,
    /// With a backing: keys changed since the last flush (some written back or removed since).
    dirty: Vec<K>,
    /// Keys with a copy out there removed since the last flush, deleted by the next one (so
    /// that between checkpoints nothing but evictions writes to the store). Unused by a
    /// RocksDB cache without durable timers, which deletes at once.
    deleted: HashSet<K, foldhash::fast::FixedState>,
    /// Whether evictions may write to the store now (not while the store's contents must stay
    /// those of the last flushed epoch until its checkpoint is taken).
    may_write: bool,
    /// Timers of a restored checkpoint file chain, until the operator takes them.
    restored_timers: Vec<(TimerKind, u64, K)>,
    /// Keys that got state (held neither here nor in the store) and keys whose state was
    /// dropped, since the last [`take_key_counts`](Self::take_key_counts).
    created: u64,
    removed: u64,
}

impl<K, S> StateCache<K, S>
where
    K: Hash + Eq + Clone + Serialize + DeserializeOwned,
    S: Default + Serialize + DeserializeOwned,
{
    fn with_backing(backing: Backing) -> Self {
        StateCache {
            entries: HashMap::default(),
            backing,
            dirty: Vec::new(),
            deleted: HashSet::default(),
            may_write: true,
            restored_timers: Vec::new(),
            created: 0,
            removed: 0,
        }
    }

    /// All state in memory, nothing written anywhere.
    pub(crate) fn in_memory() -> Self {
        Self::with_backing(Backing::Nothing)
    }

    /// All state in memory, each completed epoch's changes written to a checkpoint file in
    /// `dir` by [`flush`](Self::flush), starting from `restored` (the operator's entries in
    /// the checkpoint the job restored, if any).
    pub(crate) fn with_checkpoint_files(
        dir: PathBuf,
        operator: u32,
        key_groups: KeyGroups,
        restored: Option<RestoredFiles>,
    ) -> Result<Self, StateError> {
        let mut cache = Self::with_backing(Backing::Files(Files {
            dir,
            operator,
            key_groups,
            buffer: FileBuffer::default(),
            snapshot_size: None,
            deltas_size: 0,
            timers_changed: false,
        }));
        let Some(restored) = restored else {
            return Ok(cache);
        };
        // Replayed into memory; the first flush writes a snapshot of it all, so nothing is
        // marked as written out yet.
        let mut timers = std::collections::HashSet::new();
        for record in restored.records() {
            let record = record?;
            let (_, timer) = keys::operator_of(record.key).unwrap_or_default();
            match (timer, record.value) {
                (true, Some(_)) => {
                    timers.insert(keys::decode_timer(record.key)?);
                }
                (true, None) => {
                    timers.remove(&keys::decode_timer(record.key)?);
                }
                (false, Some(value)) => {
                    let entry = Entry {
                        state: postcard::from_bytes(value)
                            .map_err(|error| StateError::Decode(error.to_string()))?,
                        dirty: false,
                        stored: false,
                    };
                    cache
                        .entries
                        .insert(keys::decode_state_key(record.key)?, entry);
                }
                (false, None) => {
                    cache.entries.remove(&keys::decode_state_key(record.key)?);
                }
            }
        }
        cache.restored_timers = timers.into_iter().collect();
        Ok(cache)
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
        Self::with_backing(Backing::Rocks(Spill {
            store,
            operator,
            key_groups,
            budget,
            entry_size: 256,
            timer_changes: durable_timers.then(Vec::new),
        }))
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

    /// Drops the state of `key`, here and where it was written. State that was never written
    /// out (most state, which lives and dies in memory) costs no write.
    pub(crate) fn remove(&mut self, key: &K) -> Result<(), StateError> {
        self.removed += 1;
        let removed = self.entries.remove(key);
        match &self.backing {
            Backing::Nothing => {}
            Backing::Files(_) => {
                if removed.is_some_and(|entry| entry.stored) {
                    self.deleted.insert(key.clone());
                }
            }
            Backing::Rocks(spill) if removed.is_none_or(|entry| entry.stored) => {
                if spill.timer_changes.is_some() {
                    self.deleted.insert(key.clone());
                } else {
                    let mut batch = rocksdb::WriteBatch::default();
                    batch.delete(spill.store_key(key)?);
                    spill.store.write(batch)?;
                }
            }
            Backing::Rocks(_) => {}
        }
        Ok(())
    }

    fn touch(&mut self, key: &K) -> &mut S {
        let entry = self
            .entries
            .get_mut(key)
            .unwrap_or_else(|| unreachable!("the entry was inserted above"));
        if !entry.dirty && !matches!(self.backing, Backing::Nothing) {
            self.dirty.push(key.clone());
        }
        entry.dirty = true;
        &mut entry.state
    }

    /// Writes out every change since the last flush: the state of a completed epoch, before
    /// its checkpoint. Checkpoint files get the file of `epoch` (see
    /// [`write_file`](Self::write_file)), the store one batch of the changes and durable
    /// timers.
    pub(crate) fn flush<'k>(
        &mut self,
        epoch: Epoch,
        timers: impl Iterator<Item = (TimerKind, u64, &'k K)>,
    ) -> Result<(), StateError>
    where
        K: 'k,
    {
        match &mut self.backing {
            Backing::Nothing => Ok(()),
            Backing::Files(files) => {
                let changes = self.dirty.len() + self.deleted.len();
                if changes == 0 && !files.timers_changed && files.snapshot_size.is_some() {
                    return Ok(());
                }
                // A snapshot when the deltas since the last one have outgrown it (bounding
                // what a restore reads), or when this epoch changed about as many entries as
                // there are (state that turns over quickly: a delta would be the larger).
                let outgrown = files
                    .snapshot_size
                    .is_none_or(|size| files.deltas_size >= size);
                let kind = if outgrown || changes >= self.entries.len() {
                    FileKind::Snapshot
                } else {
                    FileKind::Delta
                };
                self.write_file(epoch, kind, timers)
            }
            Backing::Rocks(_) => self.write_back(),
        }
    }

    /// Writes the checkpoint file of `epoch`: every pending timer (`timers`: kind, time, key),
    /// then every entry (a snapshot) or the entries changed and removed since the last file (a
    /// delta). Timers are written in full each time: logging each one set and fired costs
    /// more when timers are many and short-lived, as a window's are.
    fn write_file<'k>(
        &mut self,
        epoch: Epoch,
        kind: FileKind,
        timers: impl Iterator<Item = (TimerKind, u64, &'k K)>,
    ) -> Result<(), StateError>
    where
        K: 'k,
    {
        let Backing::Files(files) = &mut self.backing else {
            return Ok(());
        };
        let (operator, key_groups) = (files.operator, files.key_groups);
        let name = FileName {
            operator,
            epoch,
            kind,
        };
        let mut file = FileWriter::create(&files.dir, name, &mut files.buffer)?;
        for (timer_kind, time, key) in timers {
            let group = key_groups.key_group_of(key);
            file.put_empty(&keys::timer_prefix(operator, group, timer_kind, time), key)?;
        }
        let prefix = |key: &K| keys::state_prefix(operator, key_groups.key_group_of(key));
        match kind {
            FileKind::Snapshot => {
                for (key, entry) in &mut self.entries {
                    file.put(&prefix(key), key, &entry.state)?;
                    entry.dirty = false;
                    entry.stored = true;
                }
                self.dirty.clear();
                self.deleted.clear();
            }
            FileKind::Delta => {
                for key in self.deleted.drain() {
                    file.delete(&prefix(&key), &key)?;
                }
                for key in self.dirty.drain(..) {
                    if let Some(entry) = self.entries.get_mut(&key).filter(|entry| entry.dirty) {
                        file.put(&prefix(&key), &key, &entry.state)?;
                        entry.dirty = false;
                        entry.stored = true;
                    }
                }
            }
        }
        let size = file.finish()?;
        match kind {
            FileKind::Snapshot => {
                files.snapshot_size = Some(size);
                files.deltas_size = 0;
            }
            FileKind::Delta => files.deltas_size += size,
        }
        files.timers_changed = false;
        Ok(())
    }

    /// Writes every change since the last flush (state and durable timers) to the store in
    /// one batch.
    fn write_back(&mut self) -> Result<(), StateError> {
        let Backing::Rocks(spill) = &mut self.backing else {
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
        for (key, change) in spill
            .timer_changes
            .iter_mut()
            .flat_map(|changes| changes.drain(..))
        {
            changes.push((key, (change == TimerChange::Set).then(Vec::new)));
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

    /// Notes that `key`'s timer of `kind` at `time` was set or fired, to be written with the
    /// next flush when timers are durable.
    pub(crate) fn note_timer(
        &mut self,
        kind: TimerKind,
        time: u64,
        key: &K,
        change: TimerChange,
    ) -> Result<(), StateError> {
        match &mut self.backing {
            Backing::Nothing => Ok(()),
            Backing::Files(files) => {
                // Each file holds every pending timer: only whether they changed matters.
                files.timers_changed = true;
                Ok(())
            }
            Backing::Rocks(spill) => {
                let Some(changes) = &mut spill.timer_changes else {
                    return Ok(());
                };
                let group = spill.key_groups.key_group_of(key);
                let mut bytes = keys::timer_prefix(spill.operator, group, kind, time).to_vec();
                postcard::to_io(key, &mut bytes)
                    .map_err(|error| StateError::Encode(error.to_string()))?;
                changes.push((bytes, change));
                Ok(())
            }
        }
    }

    /// The durable timers of the restored checkpoint: `(kind, time, key)`.
    pub(crate) fn restored_timers(&mut self) -> Result<Vec<(TimerKind, u64, K)>, StateError> {
        match &self.backing {
            Backing::Nothing => Ok(Vec::new()),
            Backing::Files(_) => Ok(std::mem::take(&mut self.restored_timers)),
            Backing::Rocks(spill) => spill
                .store
                .keys_with_prefix(&keys::timers_of(spill.operator))?
                .iter()
                .map(|stored| keys::decode_timer(stored))
                .collect(),
        }
    }

    fn load(&mut self, key: &K) -> Result<Option<S>, StateError> {
        let Backing::Rocks(spill) = &mut self.backing else {
            // In-memory state: a key not held has no state.
            return Ok(None);
        };
        if self.deleted.contains(key) {
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
        // A new value replaces a pending deletion (the flush writes it); the store or the
        // checkpoint files still hold the old value, so removing the new one must delete it
        // again.
        let stored = stored || self.deleted.remove(key);
        if !matches!(self.backing, Backing::Nothing) {
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
        let Backing::Rocks(spill) = &mut self.backing else {
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
    /// The store key of a state entry (see `keys`).
    fn store_key<K: Hash + Serialize>(&self, key: &K) -> Result<Vec<u8>, StateError> {
        let group = self.key_groups.key_group_of(key);
        let mut bytes = Vec::with_capacity(32);
        bytes.extend_from_slice(&keys::state_prefix(self.operator, group));
        postcard::to_io(key, &mut bytes).map_err(|error| StateError::Encode(error.to_string()))?;
        Ok(bytes)
    }

    fn note_size(&mut self, size: usize) {
        self.entry_size = (self.entry_size * 7 + size) / 8;
    }
}

#[cfg(test)]
mod tests {
    use super::super::checkpoint_files::{add_files, chain_at};
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

    fn with_files(
        dir: &std::path::Path,
        restored: Option<RestoredFiles>,
    ) -> StateCache<u64, Vec<u64>> {
        StateCache::with_checkpoint_files(dir.to_owned(), 7, KeyGroups::new(128, 1), restored)
            .unwrap()
    }

    /// What a checkpoint of `epoch` would restore for operator 7.
    fn restore_at(dir: &std::path::Path, epoch: Epoch) -> Option<RestoredFiles> {
        let (chain, _) = chain_at(dir, epoch).unwrap();
        let read = |path: &std::path::Path| Ok::<_, StateError>(std::fs::read(path).unwrap());
        let mut restored = std::collections::HashMap::new();
        add_files(&mut restored, dir, &chain, &(0..128), read).unwrap();
        restored.remove(&7)
    }

    fn contents(cache: &StateCache<u64, Vec<u64>>) -> std::collections::BTreeMap<u64, Vec<u64>> {
        cache
            .entries
            .iter()
            .map(|(key, entry)| (*key, entry.state.clone()))
            .collect()
    }

    #[test]
    fn checkpoint_files_restore_the_state_and_timers_of_every_epoch() {
        let dir = tempfile::tempdir().unwrap();
        let mut cache = with_files(dir.path(), None);
        let mut timers: std::collections::BTreeSet<(TimerKind, u64, u64)> = Default::default();
        let mut expected = Vec::new();
        for epoch in 0..12u64 {
            // Grow some keys, drop others, set and fire timers, in a pattern that makes some
            // epochs write deltas and others snapshots.
            for key in 0..50u64 {
                if (key + epoch) % 7 == 0 {
                    cache.remove(&key).unwrap();
                } else if (key * epoch) % 3 == 0 {
                    cache.get_or_default(&key).unwrap().push(epoch);
                }
            }
            for key in (epoch..epoch + 5).map(|k| k % 20) {
                let timer = (TimerKind::Event, epoch + key, key);
                if timers.insert(timer) {
                    cache
                        .note_timer(timer.0, timer.1, &key, TimerChange::Set)
                        .unwrap();
                }
            }
            let fired: Vec<_> = timers.iter().filter(|t| t.1 < epoch + 3).copied().collect();
            for timer in fired {
                timers.remove(&timer);
                cache
                    .note_timer(timer.0, timer.1, &timer.2, TimerChange::Fired)
                    .unwrap();
            }
            let pending = timers.iter().map(|(kind, time, key)| (*kind, *time, key));
            cache.flush(Epoch(epoch), pending).unwrap();
            expected.push((contents(&cache), timers.clone()));
        }
        let names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|entry| entry.unwrap().file_name().into_string().unwrap())
            .collect();
        assert!(
            names.iter().any(|name| name.ends_with(".delta")),
            "{names:?}"
        );
        assert!(names.iter().filter(|name| name.ends_with(".snap")).count() > 1);
        for (epoch, (state, timers)) in expected.into_iter().enumerate() {
            let mut restored = with_files(dir.path(), restore_at(dir.path(), Epoch(epoch as u64)));
            assert_eq!(contents(&restored), state, "state at epoch {epoch}");
            let restored_timers: std::collections::BTreeSet<_> =
                restored.restored_timers().unwrap().into_iter().collect();
            assert_eq!(restored_timers, timers, "timers at epoch {epoch}");
        }
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
