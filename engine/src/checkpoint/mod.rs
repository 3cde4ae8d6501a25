//! Checkpoints: consistent snapshots of a job's state, source positions and sink transactions,
//! taken once per epoch, from which a killed job resumes with exactly-once output.
//!
//! Every source worker starts a new epoch each checkpoint interval. An operator finishes
//! epoch `e` once its input frontier has passed `e`; it then writes its state changes to its
//! worker's RocksDB database and waits, holding later input back, until its worker has taken
//! the checkpoint of `e`. When every operator of a worker has finished `e`, the worker takes
//! a RocksDB checkpoint (hard links to immutable SST files: incremental) and writes its
//! manifest; when every worker has, worker 0 writes the job's manifest, atomically, and only
//! then do sinks commit `e`. See `docs/operations.md`.

mod coordinator;
mod epoch;
pub(crate) mod layout;
pub mod positions;
mod restore;

use std::path::PathBuf;
use std::time::Duration;

pub(crate) use coordinator::{Checkpoints, SinkStep, POLL_INTERVAL};
pub(crate) use epoch::{EpochCursor, EpochStatus, HeldInput};
pub use layout::{
    epoch_name, list_checkpoints, save_savepoint, CheckpointInfo, SourcePositions, FINAL_EPOCH,
};

use crate::state::StateError;

/// Which checkpoint a run restores from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Restore {
    /// The newest complete checkpoint in the checkpoint directory; a fresh start if there is
    /// none (the first run of a job that restarts itself after failures).
    Latest,
    /// A given checkpoint or savepoint directory.
    Path(PathBuf),
}

/// How a job takes checkpoints.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckpointConfig {
    /// Where checkpoints are written; shared by every process of the job.
    pub dir: PathBuf,
    /// How often a new epoch starts, and so how often a checkpoint is taken.
    pub interval: Duration,
    /// How many complete checkpoints to keep; older ones are deleted.
    pub retain: usize,
    /// Restore from a checkpoint instead of starting from the beginning.
    pub restore: Option<Restore>,
    /// Restore even when the checkpoint holds state of stateful operators the job no longer
    /// has, dropping that state (Flink's `allowNonRestoredState`). Without it such a restore
    /// fails, naming the operators.
    pub allow_removed_operators: bool,
}

impl CheckpointConfig {
    /// Checkpoints into `dir` every 5 seconds, keeping the last 3.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        CheckpointConfig {
            dir: dir.into(),
            interval: Duration::from_secs(5),
            retain: 3,
            restore: None,
            allow_removed_operators: false,
        }
    }

    /// Sets how often a checkpoint is taken.
    pub fn interval(self, interval: Duration) -> Self {
        CheckpointConfig { interval, ..self }
    }

    /// Sets how many complete checkpoints are kept.
    pub fn retain(self, retain: usize) -> Self {
        CheckpointConfig { retain, ..self }
    }

    /// Allows restoring a checkpoint with state of operators the job no longer has, and drops
    /// that state.
    pub fn allow_removed_operators(self, allow: bool) -> Self {
        CheckpointConfig {
            allow_removed_operators: allow,
            ..self
        }
    }

    /// Restores from a checkpoint when the job starts.
    pub fn restore(self, restore: Restore) -> Self {
        CheckpointConfig {
            restore: Some(restore),
            ..self
        }
    }
}

/// A failure to take, complete, read or restore a checkpoint.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// A file system operation failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A manifest cannot be read or is inconsistent.
    #[error("{path}: {reason}")]
    Manifest {
        /// The manifest.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A checkpoint file does not match the checksum its manifest recorded.
    #[error("{path}: damaged: the manifest records CRC-32C {expected:08x} and {expected_size} bytes, the file has {actual:08x} and {actual_size} bytes")]
    Checksum {
        /// The file.
        path: PathBuf,
        /// Recorded checksum.
        expected: u32,
        /// Computed checksum.
        actual: u32,
        /// Recorded size.
        expected_size: u64,
        /// Actual size.
        actual_size: u64,
    },
    /// The state store failed.
    #[error(transparent)]
    State(#[from] StateError),
    /// `--restore` named a directory without a complete checkpoint.
    #[error("{0} holds no complete checkpoint (no MANIFEST.json)")]
    NotACheckpoint(PathBuf),
    /// A fresh run found checkpoints of an earlier run.
    #[error("{dir} holds checkpoints of an earlier run (newest: {newest}): restore from them, or remove the directory to start over")]
    EarlierRun {
        /// The checkpoint directory.
        dir: PathBuf,
        /// The newest complete checkpoint.
        newest: PathBuf,
    },
    /// A restored checkpoint's state does not fit the job's stateful operators.
    #[error(
        "checkpoint {checkpoint} does not fit this job's stateful operators: {}",
        operator_mismatch(removed, added)
    )]
    Operators {
        /// The checkpoint.
        checkpoint: PathBuf,
        /// Operators with state in the checkpoint that the job does not have.
        removed: Vec<String>,
        /// Operators of the job without state in the checkpoint.
        added: Vec<String>,
    },
    /// A source cannot resume from recorded positions.
    #[error("source {name:?} cannot resume from checkpoint {checkpoint}: {reason}")]
    Resume {
        /// The source.
        name: String,
        /// The checkpoint.
        checkpoint: PathBuf,
        /// Why not.
        reason: String,
    },
}

impl CheckpointError {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| CheckpointError::Io { path, source }
    }
}

/// What a restore found wrong with a checkpoint's operators, naming only the lists that are
/// not empty.
fn operator_mismatch(removed: &[String], added: &[String]) -> String {
    let removed = (!removed.is_empty()).then(|| {
        format!("it holds state of operators the job lacks: {removed:?} (allow removed operators to drop their state)")
    });
    let added = (!added.is_empty()).then(|| {
        format!("the job has operators it holds no state for: {added:?} (restore with the pipeline that wrote it)")
    });
    removed
        .into_iter()
        .chain(added)
        .collect::<Vec<_>>()
        .join("; ")
}
