//! The RocksDB store under the state cache: one database per worker, keys prefixed by
//! operator and key group.

use std::path::{Path, PathBuf};

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
        let mut options = rocksdb::Options::default();
        options.create_if_missing(true);
        options.set_compression_type(rocksdb::DBCompressionType::Lz4);
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
