//! Restoring a run from a checkpoint: choosing it, rebuilding each worker's state from it
//! (moving key groups between workers when the worker count changed), and the positions the
//! sources resume from.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use super::layout::{self, SourcePositions, StateFile, StateFormat, WorkerManifest};
use super::{CheckpointConfig, CheckpointError, Restore};
use crate::key_group::KeyGroups;
use crate::runtime::job::WorkerInfo;
use crate::state::checkpoint_files::{self, FileName, RestoredFiles};
use crate::state::{read_key_groups, RocksStore};
use crate::time::Epoch;

/// The checkpoint a run restores.
pub(crate) struct Restored {
    pub(crate) epoch: Epoch,
    pub(crate) path: PathBuf,
    pub(crate) sources: Vec<SourcePositions>,
    key_groups: u32,
    workers: Vec<WorkerManifest>,
    /// The stateful operators whose state the checkpoint holds, by name.
    operators: Option<BTreeMap<String, u32>>,
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
        operators: job.operators,
        workers,
        path,
    }))
}

impl Restored {
    /// Checks that the checkpoint holds state for exactly the stateful operators `job` has
    /// (by name and id); with `allow_removed`, state of operators the job no longer has is
    /// dropped instead.
    pub(crate) fn check_operators(
        &self,
        job: &BTreeMap<String, u32>,
        allow_removed: bool,
    ) -> Result<(), CheckpointError> {
        let checkpointed = match &self.operators {
            Some(operators) => operators,
            // A job without state restores from any checkpoint.
            None if job.is_empty() => return Ok(()),
            None => {
                return Err(CheckpointError::Manifest {
                    path: self.path.join(layout::JOB_MANIFEST),
                    reason: "the checkpoint names no operators (written by an older weir): its \
                             state cannot be matched to this job's operators"
                        .into(),
                })
            }
        };
        let missing_from = |these: &BTreeMap<String, u32>, those: &BTreeMap<String, u32>| {
            these
                .iter()
                .filter(|(name, id)| those.get(*name) != Some(id))
                .map(|(name, _)| name.clone())
                .collect::<Vec<_>>()
        };
        let removed = missing_from(checkpointed, job);
        let added = missing_from(job, checkpointed);
        if added.is_empty() && (removed.is_empty() || allow_removed) {
            if !removed.is_empty() {
                tracing::warn!(?removed, checkpoint = %self.path.display(),
                    "dropping the checkpointed state of operators the job no longer has");
            }
            return Ok(());
        }
        Err(CheckpointError::Operators {
            checkpoint: self.path.clone(),
            removed,
            added,
        })
    }
}

/// Makes the restored checkpoint the newest complete one in `dir` when it lies elsewhere (a
/// savepoint, or another job's checkpoint): it is linked in as `dir/chk-EPOCH`, so that a run
/// that fails before its own first checkpoint restores it again with `Restore::Latest`
/// instead of starting over (and writing its whole output a second time).
pub(crate) fn adopt(dir: &Path, restored: &Restored) -> Result<(), CheckpointError> {
    let target = layout::checkpoint_path(dir, restored.epoch);
    let canonical = |path: &Path| std::fs::canonicalize(path).ok();
    if target.exists() && canonical(&target) == canonical(&restored.path) {
        return Ok(());
    }
    if target.exists() {
        layout::remove_checkpoint(&target, "restore.cleanup")?;
    }
    std::fs::create_dir_all(dir).map_err(CheckpointError::io(dir))?;
    layout::copy_checkpoint(&restored.path, &target)
}

/// Deletes the checkpoints after `restored` (all of them for a fresh start), newest first:
/// this run takes its own checkpoints under those epochs.
pub(crate) fn clear_after(dir: &Path, restored: Option<Epoch>) -> Result<(), CheckpointError> {
    for (epoch, path) in layout::checkpoint_dirs(dir)?.into_iter().rev() {
        if restored.is_none_or(|restored| epoch > restored) {
            layout::remove_checkpoint(&path, "restore.cleanup")?;
        }
    }
    Ok(())
}

impl Restored {
    /// The key groups of the job must be those of the checkpoint.
    fn check_key_groups(&self, key_groups: KeyGroups) -> Result<(), CheckpointError> {
        if self.key_groups == key_groups.count() {
            return Ok(());
        }
        Err(CheckpointError::Manifest {
            path: self.path.join(layout::JOB_MANIFEST),
            reason: format!(
                "the checkpoint has {} key groups and the job {}: key groups are fixed for the life of a job's state",
                self.key_groups,
                key_groups.count()
            ),
        })
    }

    /// How the checkpoint's state is stored (every worker of a run stores it alike).
    fn format(&self) -> StateFormat {
        self.workers
            .first()
            .map_or(StateFormat::Files, |worker| worker.state_format)
    }

    /// The old workers whose state `worker` needs: its own with the checkpoint's worker count;
    /// all of them with another (their key groups moved).
    fn sources_for(&self, worker: WorkerInfo) -> &[WorkerManifest] {
        if self.workers.len() == worker.peers {
            &self.workers[worker.index..=worker.index]
        } else {
            &self.workers
        }
    }

    /// The checkpoint files each operator of `worker` restores its in-memory state from,
    /// whichever way the checkpoint is stored (a RocksDB checkpoint is read, from a private
    /// copy beside `scratch`, into one snapshot per operator), every file checked against its
    /// manifest's checksum. Each operator keeps the key groups `worker` owns.
    pub(crate) fn load_files(
        &self,
        worker: WorkerInfo,
        key_groups: KeyGroups,
        scratch: &Path,
    ) -> Result<HashMap<u32, RestoredFiles>, CheckpointError> {
        self.check_key_groups(key_groups)?;
        let owned = key_groups.owned_by(worker.index);
        let mut restored = HashMap::new();
        for old in self.sources_for(worker) {
            let state = layout::worker_state_path(&self.path, old.worker, old.run);
            match old.state_format {
                StateFormat::Files => {
                    let names = old
                        .files
                        .iter()
                        .map(|file| {
                            FileName::parse(&file.name).ok_or_else(|| CheckpointError::Manifest {
                                path: layout::worker_manifest_path(&self.path, old.worker, old.run),
                                reason: format!("{:?} is not a state checkpoint file", file.name),
                            })
                        })
                        .collect::<Result<Vec<_>, _>>()?;
                    let read = |path: &Path| read_checked(path, &old.files);
                    checkpoint_files::add_files(&mut restored, &state, &names, &owned, read)?;
                }
                StateFormat::Rocksdb => {
                    let copy = private_copy(&state, old, scratch)?;
                    let entries = read_key_groups(&copy, owned.clone())?;
                    std::fs::remove_dir_all(&copy).map_err(CheckpointError::io(&copy))?;
                    let snapshots = checkpoint_files::as_snapshots(&state, entries, owned.clone())?;
                    for (operator, files) in snapshots {
                        restored
                            .entry(operator)
                            .or_insert_with(|| RestoredFiles::new(owned.clone()))
                            .chains
                            .extend(files.chains);
                    }
                }
            }
        }
        Ok(restored)
    }

    /// Rebuilds `worker`'s database at `target` after checking the checksums of the files it
    /// uses. From a RocksDB checkpoint with the same worker count, that is the worker's own
    /// checkpoint, linked; with another count, the key groups the worker now owns are copied
    /// out of every old worker's checkpoint. A checkpoint of in-memory state is loaded and
    /// written into a new database.
    pub(crate) fn restore_state(
        &self,
        worker: WorkerInfo,
        key_groups: KeyGroups,
        target: &Path,
    ) -> Result<(), CheckpointError> {
        self.check_key_groups(key_groups)?;
        if target.exists() {
            std::fs::remove_dir_all(target).map_err(CheckpointError::io(target))?;
        }
        if self.format() == StateFormat::Files {
            let restored = self.load_files(worker, key_groups, target)?;
            let entries = checkpoint_files::replay_all(restored.values())?;
            return Ok(RocksStore::create(target)?.write_entries(entries)?);
        }
        if self.workers.len() == worker.peers {
            let own = &self.workers[worker.index];
            let state = layout::worker_state_path(&self.path, worker.index, own.run);
            layout::verify(&state, &self.workers[worker.index].files)?;
            return layout::link_tree(&state, target, true);
        }
        let store = RocksStore::create(target)?;
        let owned = key_groups.owned_by(worker.index);
        for old in &self.workers {
            let state = layout::worker_state_path(&self.path, old.worker, old.run);
            let copy = private_copy(&state, old, target)?;
            store.copy_key_groups(&copy, owned.clone())?;
            std::fs::remove_dir_all(&copy).map_err(CheckpointError::io(&copy))?;
        }
        Ok(())
    }
}

/// Checks an old worker's RocksDB checkpoint `state` and links it beside `near`, so that
/// opening it cannot touch the checkpoint. Returns the copy's path.
fn private_copy(
    state: &Path,
    old: &WorkerManifest,
    near: &Path,
) -> Result<PathBuf, CheckpointError> {
    layout::verify(state, &old.files)?;
    let copy = near.with_extension(format!("from-{}", old.worker));
    if copy.exists() {
        std::fs::remove_dir_all(&copy).map_err(CheckpointError::io(&copy))?;
    }
    layout::link_tree(state, &copy, true)?;
    Ok(copy)
}

/// The contents of a state file, checked against the size and checksum in `files`.
fn read_checked(path: &Path, files: &[StateFile]) -> Result<Vec<u8>, CheckpointError> {
    let bytes = std::fs::read(path).map_err(CheckpointError::io(path))?;
    let name = path.file_name().and_then(|name| name.to_str());
    let recorded = files
        .iter()
        .find(|file| Some(file.name.as_str()) == name)
        .ok_or_else(|| CheckpointError::Manifest {
            path: path.to_owned(),
            reason: "the worker manifest does not list this file".into(),
        })?;
    let crc = crc32c::crc32c(&bytes);
    if crc != recorded.crc32c || bytes.len() as u64 != recorded.size {
        return Err(CheckpointError::Checksum {
            path: path.to_owned(),
            expected: recorded.crc32c,
            actual: crc,
            expected_size: recorded.size,
            actual_size: bytes.len() as u64,
        });
    }
    Ok(bytes)
}
