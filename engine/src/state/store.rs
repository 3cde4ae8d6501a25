//! The RocksDB store under the state cache: one database per worker, keys prefixed by
//! operator and key group.

use std::path::{Path, PathBuf};

use super::checkpoint_files::Stored;
use super::StateError;

/// One worker's RocksDB database.
pub(crate) struct RocksStore {
    db: rocksdb::DB,
    path: PathBuf,
    write_options: rocksdb::WriteOptions,
}

impl RocksStore {
    /// Opens a fresh database at `path`, removing what an earlier run left there (state is
    /// not restored from a plain directory; restoring is the checkpoints' job).
    pub(crate) fn create(path: &Path) -> Result<RocksStore, StateError> {
        if path.exists() {
            std::fs::remove_dir_all(path).map_err(|source| StateError::Io {
                path: path.to_owned(),
                source,
            })?;
        }
        Self::open(path)
    }

    /// Opens the database at `path` as it is (restored from a checkpoint), or a new one.
    pub(crate) fn open(path: &Path) -> Result<RocksStore, StateError> {
        let mut options = rocksdb::Options::default();
        options.create_if_missing(true);
        options.set_compression_type(rocksdb::DBCompressionType::Lz4);
        // Most lookups are for keys the store does not hold (new keys): a bloom filter answers
        // those without reading every level-0 file that a checkpoint's flush left.
        let mut table = rocksdb::BlockBasedOptions::default();
        table.set_bloom_filter(10.0, false);
        options.set_block_based_table_factory(&table);
        let db = rocksdb::DB::open(&options, path).map_err(|source| StateError::Store {
            path: path.to_owned(),
            source,
        })?;
        // The cache writes back in batches; durability comes from checkpoints, not the WAL.
        let mut write_options = rocksdb::WriteOptions::default();
        write_options.disable_wal(true);
        Ok(RocksStore {
            db,
            path: path.to_owned(),
            write_options,
        })
    }

    fn error(&self, source: rocksdb::Error) -> StateError {
        StateError::Store {
            path: self.path.clone(),
            source,
        }
    }

    /// The value stored under `key`.
    pub(crate) fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StateError> {
        self.db.get(key).map_err(|error| self.error(error))
    }

    /// Applies a batch of puts and deletes atomically.
    pub(crate) fn write(&self, batch: rocksdb::WriteBatch) -> Result<(), StateError> {
        self.db
            .write_opt(batch, &self.write_options)
            .map_err(|error| self.error(error))
    }
}

impl RocksStore {
    /// Writes the database's current contents as a RocksDB checkpoint at `path` (which must
    /// not exist): SST files hard-linked, the memtable flushed first.
    pub(crate) fn checkpoint(&self, path: &Path) -> Result<(), StateError> {
        rocksdb::checkpoint::Checkpoint::new(&self.db)
            .and_then(|checkpoint| checkpoint.create_checkpoint(path))
            .map_err(|error| self.error(error))
    }

    /// Every key that starts with `prefix`, in order.
    pub(crate) fn keys_with_prefix(&self, prefix: &[u8]) -> Result<Vec<Box<[u8]>>, StateError> {
        let mode = rocksdb::IteratorMode::From(prefix, rocksdb::Direction::Forward);
        let mut entries = Vec::new();
        for item in self.db.iterator(mode) {
            let (key, _) = item.map_err(|error| self.error(error))?;
            if !key.starts_with(prefix) {
                break;
            }
            entries.push(key);
        }
        Ok(entries)
    }

    /// Writes restored entries (store keys and values) into this database, and flushes.
    pub(crate) fn write_entries(
        &self,
        entries: super::checkpoint_files::Entries,
    ) -> Result<(), StateError> {
        let mut sorted: Vec<_> = entries.into_iter().collect();
        sorted.sort_unstable();
        self.write_all(sorted.into_iter().map(Ok))
    }

    /// Copies the entries of the key groups in `groups` from the RocksDB checkpoint at `from`
    /// into this database, and flushes.
    pub(crate) fn copy_key_groups(
        &self,
        from: &Path,
        groups: KeyGroupRange,
    ) -> Result<(), StateError> {
        let source = open_read_only(from)?;
        self.write_all(entries_in(&source, from, groups))
    }

    /// Writes `entries` in batches of about 16 MiB, then flushes.
    fn write_all(
        &self,
        entries: impl Iterator<Item = Result<Stored, StateError>>,
    ) -> Result<(), StateError> {
        let mut batch = rocksdb::WriteBatch::default();
        for entry in entries {
            let (key, value) = entry?;
            batch.put(key, value);
            if batch.size_in_bytes() >= 16 << 20 {
                self.write(std::mem::take(&mut batch))?;
            }
        }
        self.write(batch)?;
        self.db.flush().map_err(|error| self.error(error))
    }
}

/// A range of key groups.
type KeyGroupRange = std::ops::Range<crate::key_group::KeyGroup>;

/// The entries of the key groups in `groups` in the RocksDB checkpoint at `from`.
pub(crate) fn read_key_groups(
    from: &Path,
    groups: KeyGroupRange,
) -> Result<super::checkpoint_files::Entries, StateError> {
    let source = open_read_only(from)?;
    entries_in(&source, from, groups).collect()
}

fn open_read_only(path: &Path) -> Result<rocksdb::DB, StateError> {
    rocksdb::DB::open_for_read_only(&rocksdb::Options::default(), path, false).map_err(|source| {
        StateError::Store {
            path: path.to_owned(),
            source,
        }
    })
}

/// The entries of `db` (opened at `path`) whose keys are in the key groups `groups`.
fn entries_in<'d>(
    db: &'d rocksdb::DB,
    path: &'d Path,
    groups: KeyGroupRange,
) -> impl Iterator<Item = Result<Stored, StateError>> + 'd {
    db.iterator(rocksdb::IteratorMode::Start)
        .filter_map(move |item| match item {
            Ok((key, value)) => super::keys::key_group_of(&key)
                .is_some_and(|group| groups.contains(&group))
                .then_some(Ok((key, value))),
            Err(source) => Some(Err(StateError::Store {
                path: path.to_owned(),
                source,
            })),
        })
}
