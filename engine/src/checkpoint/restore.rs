//! Restoring a run from a checkpoint: choosing it, rebuilding each worker's state from it
//! (moving key groups between workers when the worker count changed), and the positions the
//! sources resume from.

use std::path::{Path, PathBuf};

use super::layout::{self, SourcePositions, WorkerManifest};
use super::{CheckpointConfig, CheckpointError, Restore};
use crate::job::WorkerInfo;
use crate::key_group::KeyGroups;
use crate::state::RocksStore;
use crate::time::Epoch;

/// The checkpoint a run restores.
pub(crate) struct Restored {
    pub(crate) epoch: Epoch,
    pub(crate) path: PathBuf,
    pub(crate) sources: Vec<SourcePositions>,
    key_groups: u32,
    workers: Vec<WorkerManifest>,
}

/// The checkpoint the configuration asks to restore; `None` for a fresh start. A fresh start
/// (no `restore`) refuses a directory that holds an earlier run's checkpoints.
pub(crate) fn choose(config: &CheckpointConfig) -> Result<Option<Restored>, CheckpointError> {
    let path = match &config.restore {
        None => {
            return match layout::latest_complete(&config.dir)? {
                Some(newest) => Err(CheckpointError::EarlierRun {
                    dir: config.dir.clone(),
                    newest,
                }),
                None => Ok(None),
            }
        }
        Some(Restore::Latest) => match layout::latest_complete(&config.dir)? {
            Some(path) => path,
            None => return Ok(None),
        },
        Some(Restore::Path(path)) => path.clone(),
    };
    let (job, workers) = layout::read_checkpoint(&path)?;
    Ok(Some(Restored {
        epoch: job.epoch,
        sources: layout::merged_sources(&workers),
        key_groups: job.key_groups,
        workers,
        path,
    }))
}

/// Deletes the checkpoints after `restored` (all of them for a fresh start): this run takes
/// its own checkpoints under those epochs.
pub(crate) fn clear_after(dir: &Path, restored: Option<Epoch>) -> Result<(), CheckpointError> {
    for (epoch, path) in layout::checkpoint_dirs(dir)? {
        if restored.is_none_or(|restored| epoch > restored) {
            std::fs::remove_dir_all(&path).map_err(CheckpointError::io(&path))?;
        }
    }
    Ok(())
}

impl Restored {
    /// Rebuilds `worker`'s database at `target` after checking the checksums of the files it
    /// uses. With the checkpoint's worker count, that is the worker's own checkpoint, linked;
    /// with another count, the key groups the worker now owns are copied out of every old
    /// worker's checkpoint.
    pub(crate) fn restore_state(
        &self,
        worker: WorkerInfo,
        key_groups: KeyGroups,
        target: &Path,
    ) -> Result<(), CheckpointError> {
        if self.key_groups != key_groups.count() {
            return Err(CheckpointError::Manifest {
                path: self.path.join(layout::JOB_MANIFEST),
                reason: format!(
                    "the checkpoint has {} key groups and the job {}: key groups are fixed for the life of a job's state",
                    self.key_groups,
                    key_groups.count()
                ),
            });
        }
        if target.exists() {
            std::fs::remove_dir_all(target).map_err(CheckpointError::io(target))?;
        }
        if self.workers.len() == worker.peers {
            let state = layout::worker_state_path(&self.path, worker.index);
            layout::verify(&state, &self.workers[worker.index].files)?;
            return layout::link_tree(&state, target, true);
        }
        let store = RocksStore::create(target)?;
        let owned = key_groups.owned_by(worker.index);
        for old in &self.workers {
            let state = layout::worker_state_path(&self.path, old.worker);
            layout::verify(&state, &old.files)?;
            // A private copy, so that opening it cannot touch the checkpoint.
            let copy = target.with_extension(format!("from-{}", old.worker));
            layout::link_tree(&state, &copy, true)?;
            store.copy_key_groups(&copy, owned.clone())?;
            std::fs::remove_dir_all(&copy).map_err(CheckpointError::io(&copy))?;
        }
        Ok(())
    }
}
