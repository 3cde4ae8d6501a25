//! Keyed state: what stateful operators keep per key, in memory (written to checkpoint files
//! when the job takes checkpoints) or in RocksDB behind a write-back cache with a memory
//! budget. Operators see `&mut State` either way.

mod cache;
pub(crate) mod checkpoint_files;
pub(crate) mod keys;
mod store;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

pub(crate) use cache::{StateCache, TimerChange};
pub(crate) use keys::TimerKind;
pub(crate) use store::{read_key_groups, RocksStore};

/// Where keyed state lives.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum StateBackend {
    /// All state in memory: fastest, bounded by the machine's memory.
    #[default]
    Memory,
    /// State in one RocksDB database per worker under the job's state directory, with at most
    /// `memory_budget` bytes (estimated) per keyed operator cached in memory.
    RocksDb {
        /// Bytes of state each keyed operator keeps in memory.
        memory_budget: usize,
    },
}

/// A failure of the state backend.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// RocksDB failed.
    #[error("state store {path}: {source}")]
    Store {
        /// The database directory.
        path: PathBuf,
        /// RocksDB's error.
        source: rocksdb::Error,
    },
    /// A file system operation on the state directory failed.
    #[error("state directory {path}: {source}")]
    Io {
        /// The directory.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// State could not be encoded for the store.
    #[error("cannot encode state: {0}")]
    Encode(String),
    /// Stored state could not be decoded.
    #[error("cannot decode stored state: {0}")]
    Decode(String),
}

/// The RocksDB databases of this process's workers, opened on first use.
#[derive(Debug, Default)]
pub(crate) struct StateStores {
    stores: Mutex<HashMap<usize, Arc<RocksStore>>>,
}

impl std::fmt::Debug for RocksStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RocksStore")
    }
}

impl StateStores {
    /// The map of open databases. A worker that panicked while holding it left it whole (an
    /// insert either happened or did not), and the launcher reports that panic: the others go
    /// on with the map rather than report a second, misleading error.
    fn stores(&self) -> MutexGuard<'_, HashMap<usize, Arc<RocksStore>>> {
        self.stores.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The database of `worker` under `state_dir`.
    pub(crate) fn store_for(
        &self,
        state_dir: &std::path::Path,
        worker: usize,
    ) -> Result<Arc<RocksStore>, StateError> {
        let mut stores = self.stores();
        if let Some(store) = stores.get(&worker) {
            return Ok(Arc::clone(store));
        }
        let store = Arc::new(RocksStore::create(
            &state_dir.join(format!("worker-{worker}")),
        )?);
        stores.insert(worker, Arc::clone(&store));
        Ok(store)
    }

    /// Opens the database of `worker` under `state_dir` as a restore left it.
    pub(crate) fn open_restored(
        &self,
        state_dir: &std::path::Path,
        worker: usize,
    ) -> Result<Arc<RocksStore>, StateError> {
        let store = Arc::new(RocksStore::open(
            &state_dir.join(format!("worker-{worker}")),
        )?);
        self.stores().insert(worker, Arc::clone(&store));
        Ok(store)
    }
}
