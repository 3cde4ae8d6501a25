//! What a checkpoint directory holds, and reading and writing it:
//!
//! ```text
//! DIR/chk-000000000042/      the checkpoint of epoch 42 (`chk-final`: the end of a bounded run)
//!     worker-0-run-RUN/      worker 0's state: its RocksDB checkpoint (hard links to immutable
//!                            SST files) or, for in-memory state, hard links to the snapshot
//!                            and delta files of each operator (see `state::checkpoint_files`);
//!                            RUN is the run's id, so a straggler of another run writes beside it
//!     worker-0-run-RUN.json  worker 0's manifest: source positions, state files and checksums
//!     MANIFEST.json          written last, atomically, by worker 0: the checkpoint is complete
//!     COMMIT                 created by worker 0 once MANIFEST.json is durable: sinks commit
//! DIR/savepoints/NAME/       a savepoint: a complete checkpoint kept until deleted
//! ```

use std::collections::{BTreeMap, HashSet};
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::CheckpointError;
use crate::checkpoint::positions::Positions;
use crate::time::Epoch;

/// The epoch number of the checkpoint taken when every source of a bounded run has finished.
pub const FINAL_EPOCH: Epoch = Epoch::MAX;

/// An epoch as messages and file names show it: its number, or `final` for [`FINAL_EPOCH`].
pub fn epoch_name(epoch: Epoch) -> String {
    if epoch == FINAL_EPOCH {
        "final".to_owned()
    } else {
        epoch.to_string()
    }
}

/// The file whose presence makes a checkpoint complete.
pub(crate) const JOB_MANIFEST: &str = "MANIFEST.json";

/// The directory of `epoch`'s checkpoint under `dir`.
pub(crate) fn checkpoint_path(dir: &Path, epoch: Epoch) -> PathBuf {
    if epoch == FINAL_EPOCH {
        dir.join("chk-final")
    } else {
        dir.join(format!("chk-{epoch:012}"))
    }
}

fn epoch_of_dir_name(name: &str) -> Option<Epoch> {
    match name.strip_prefix("chk-")? {
        "final" => Some(FINAL_EPOCH),
        digits => digits.parse().ok(),
    }
}

/// A worker's state in a checkpoint. Named by the run that wrote it, so that a straggler of
/// another run cannot write over this run's files (run 0: written before runs had ids).
pub(crate) fn worker_state_path(checkpoint: &Path, worker: usize, run: u64) -> PathBuf {
    checkpoint.join(worker_file_stem(worker, run))
}

/// A worker's manifest in a checkpoint, named by its run as its state is.
pub(crate) fn worker_manifest_path(checkpoint: &Path, worker: usize, run: u64) -> PathBuf {
    checkpoint.join(format!("{}.json", worker_file_stem(worker, run)))
}

fn worker_file_stem(worker: usize, run: u64) -> String {
    match run {
        0 => format!("worker-{worker}"),
        run => format!("worker-{worker}-run-{run:016x}"),
    }
}

/// Where one source stood on one worker when an epoch ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourcePositions {
    /// The source's number in the pipeline (the order sources were added).
    pub source: usize,
    /// The source's name.
    pub name: String,
    /// Partition → where to resume it; `None` when the source cannot resume.
    pub partitions: Option<Positions>,
}

/// One file of a worker's state checkpoint.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct StateFile {
    pub(crate) name: String,
    pub(crate) size: u64,
    pub(crate) crc32c: u32,
}

/// How a worker's state checkpoint is stored.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum StateFormat {
    /// A RocksDB checkpoint (the RocksDB backend).
    #[default]
    Rocksdb,
    /// Snapshot and delta files (in-memory state).
    Files,
}

/// Whether a state file never changes once written (and so its checksum need not be
/// computed again): SST files, snapshots and deltas.
pub(crate) fn is_immutable(name: &str) -> bool {
    [".sst", ".snap", ".delta"]
        .iter()
        .any(|extension| name.ends_with(extension))
}

/// What one worker wrote for one checkpoint.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct WorkerManifest {
    pub(crate) epoch: Epoch,
    /// The id of the run that wrote it.
    #[serde(default)]
    pub(crate) run: u64,
    pub(crate) worker: usize,
    pub(crate) workers: usize,
    pub(crate) key_groups: u32,
    #[serde(default)]
    pub(crate) state_format: StateFormat,
    pub(crate) sources: Vec<SourcePositions>,
    pub(crate) files: Vec<StateFile>,
    pub(crate) created_ms: u64,
    pub(crate) duration_ms: u64,
}

/// The job's manifest of one checkpoint: its presence makes the checkpoint complete.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct JobManifest {
    pub(crate) epoch: Epoch,
    /// The id of the run that completed it.
    #[serde(default)]
    pub(crate) run: u64,
    pub(crate) workers: usize,
    pub(crate) key_groups: u32,
    pub(crate) created_ms: u64,
    /// The job's stateful operators, by stable name, with the ids their state is keyed by;
    /// `None` in checkpoints of weir before operators had names.
    #[serde(default)]
    pub(crate) operators: Option<BTreeMap<String, u32>>,
}

/// A complete checkpoint, as `weir checkpoints list|describe` shows it.
#[derive(Clone, Debug)]
pub struct CheckpointInfo {
    /// The epoch ([`FINAL_EPOCH`] for the end of a bounded run).
    pub epoch: Epoch,
    /// Its directory.
    pub path: PathBuf,
    /// When it completed, ms since the Unix epoch.
    pub created_ms: u64,
    /// Workers of the run that took it.
    pub workers: usize,
    /// Key groups of the job.
    pub key_groups: u32,
    /// Bytes of state files over all workers.
    pub size: u64,
    /// Bytes of state files that the previous listed checkpoint does not share.
    pub incremental_size: u64,
    /// The longest time a worker took to write its part, in ms.
    pub duration_ms: u64,
    /// Positions of every source, merged over the workers.
    pub sources: Vec<SourcePositions>,
    /// The stateful operators it holds state for, by name (`None` for checkpoints of weir
    /// from before operators had names).
    pub operators: Option<Vec<String>>,
}

/// Writes `bytes` to `path` so that a crash leaves either the old file or the new one: a
/// temporary file, synced, renamed into place, and the directory synced.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), CheckpointError> {
    crate::durable::write_atomically(path, bytes).map_err(CheckpointError::io(path))
}

pub(crate) fn sync_dir(dir: &Path) -> Result<(), CheckpointError> {
    crate::durable::sync_dir(dir).map_err(CheckpointError::io(dir))
}

pub(crate) fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, CheckpointError> {
    let bytes = std::fs::read(path).map_err(CheckpointError::io(path))?;
    serde_json::from_slice(&bytes).map_err(|error| CheckpointError::Manifest {
        path: path.to_owned(),
        reason: error.to_string(),
    })
}

pub(crate) fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<(), CheckpointError> {
    let bytes = serde_json::to_vec_pretty(value).map_err(|error| CheckpointError::Manifest {
        path: path.to_owned(),
        reason: error.to_string(),
    })?;
    write_atomically(path, &bytes)
}

/// CRC-32C and size of a file's contents.
pub(crate) fn checksum(path: &Path) -> Result<(u32, u64), CheckpointError> {
    let mut file = std::fs::File::open(path).map_err(CheckpointError::io(path))?;
    let mut buffer = vec![0; 1 << 20];
    let (mut crc, mut size) = (0, 0u64);
    loop {
        let read = file.read(&mut buffer).map_err(CheckpointError::io(path))?;
        if read == 0 {
            return Ok((crc, size));
        }
        crc = crc32c::crc32c_append(crc, &buffer[..read]);
        size += read as u64;
    }
}

/// Checks every file of a worker's state checkpoint against its manifest.
pub(crate) fn verify(state: &Path, files: &[StateFile]) -> Result<(), CheckpointError> {
    for file in files {
        let path = state.join(&file.name);
        let (crc, size) = checksum(&path)?;
        if crc != file.crc32c || size != file.size {
            return Err(CheckpointError::Checksum {
                path,
                expected: file.crc32c,
                actual: crc,
                expected_size: file.size,
                actual_size: size,
            });
        }
    }
    Ok(())
}

/// Every checkpoint directory under `dir` with its epoch, complete or not, oldest first.
pub(crate) fn checkpoint_dirs(dir: &Path) -> Result<Vec<(Epoch, PathBuf)>, CheckpointError> {
    let mut found = Vec::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(found),
        Err(error) => return Err(CheckpointError::io(dir)(error)),
    };
    for entry in entries {
        let entry = entry.map_err(CheckpointError::io(dir))?;
        if let Some(epoch) = entry.file_name().to_str().and_then(epoch_of_dir_name) {
            found.push((epoch, entry.path()));
        }
    }
    found.sort();
    Ok(found)
}

pub(crate) fn is_complete(checkpoint: &Path) -> bool {
    checkpoint.join(JOB_MANIFEST).exists()
}

/// The marker worker 0 creates once the job manifest is durable (its directory synced):
/// only then may sinks commit, since a commit made visible before a crash that lost the
/// manifest would be made again by the restored run.
const COMMITTABLE: &str = "COMMIT";

/// Marks a checkpoint whose job manifest is durable as one sinks may commit.
pub(crate) fn mark_committable(checkpoint: &Path) -> Result<(), CheckpointError> {
    let marker = checkpoint.join(COMMITTABLE);
    std::fs::File::create(&marker)
        .map(drop)
        .map_err(CheckpointError::io(&marker))
}

/// Whether sinks may commit a checkpoint's transactions.
pub(crate) fn is_committable(checkpoint: &Path) -> bool {
    checkpoint.join(COMMITTABLE).exists()
}

/// The newest complete checkpoint under `dir`.
pub(crate) fn latest_complete(dir: &Path) -> Result<Option<PathBuf>, CheckpointError> {
    Ok(checkpoint_dirs(dir)?
        .into_iter()
        .rev()
        .map(|(_, path)| path)
        .find(|path| is_complete(path)))
}

/// Deletes every checkpoint older than the newest `retain` complete ones. Files that a kept
/// checkpoint shares (hard links) stay until no checkpoint links them.
pub(crate) fn collect_garbage(dir: &Path, retain: usize) -> Result<(), CheckpointError> {
    let all = checkpoint_dirs(dir)?;
    let complete: Vec<Epoch> = all
        .iter()
        .filter(|(_, path)| is_complete(path))
        .map(|(epoch, _)| *epoch)
        .collect();
    let Some(&oldest_kept) = complete.get(complete.len().saturating_sub(retain)) else {
        return Ok(());
    };
    for (epoch, path) in all {
        if epoch < oldest_kept {
            remove_checkpoint(&path, "checkpoint.gc")?;
        }
    }
    Ok(())
}

/// Deletes the checkpoint directory `checkpoint` so that a crash part-way never leaves it
/// looking complete: the job manifest goes first, durably, then the rest. `step` names the
/// crash point between the two.
pub(crate) fn remove_checkpoint(
    checkpoint: &Path,
    step: &'static str,
) -> Result<(), CheckpointError> {
    let mut retracted = false;
    for marker in [COMMITTABLE, JOB_MANIFEST] {
        let path = checkpoint.join(marker);
        match std::fs::remove_file(&path) {
            Ok(()) => retracted = true,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => return Err(CheckpointError::io(&path)(error)),
        }
    }
    if retracted {
        sync_dir(checkpoint)?;
    }
    crate::crash_point(step);
    std::fs::remove_dir_all(checkpoint).map_err(CheckpointError::io(checkpoint))
}

/// Reads a complete checkpoint's job manifest and its workers' manifests.
pub(crate) fn read_checkpoint(
    checkpoint: &Path,
) -> Result<(JobManifest, Vec<WorkerManifest>), CheckpointError> {
    if !is_complete(checkpoint) {
        return Err(CheckpointError::NotACheckpoint(checkpoint.to_owned()));
    }
    let job: JobManifest = read_json(&checkpoint.join(JOB_MANIFEST))?;
    let workers = (0..job.workers)
        .map(|worker| read_json(&worker_manifest_path(checkpoint, worker, job.run)))
        .collect::<Result<Vec<WorkerManifest>, _>>()?;
    Ok((job, workers))
}

/// Merges the positions the workers recorded for each source.
pub(crate) fn merged_sources(workers: &[WorkerManifest]) -> Vec<SourcePositions> {
    let mut merged: BTreeMap<usize, SourcePositions> = BTreeMap::new();
    for positions in workers.iter().flat_map(|worker| &worker.sources) {
        let entry = merged
            .entry(positions.source)
            .or_insert_with(|| SourcePositions {
                source: positions.source,
                name: positions.name.clone(),
                partitions: Some(BTreeMap::new()),
            });
        match (&mut entry.partitions, &positions.partitions) {
            (Some(all), Some(these)) => all.extend(these),
            (all, _) => *all = None,
        }
    }
    merged.into_values().collect()
}

/// Every complete checkpoint under `dir` (savepoints excluded), oldest first.
pub fn list_checkpoints(dir: &Path) -> Result<Vec<CheckpointInfo>, CheckpointError> {
    let mut listed = Vec::new();
    let mut previous: HashSet<String> = HashSet::new();
    for (epoch, path) in checkpoint_dirs(dir)? {
        if !is_complete(&path) {
            continue;
        }
        let (job, workers) = read_checkpoint(&path)?;
        let names: HashSet<String> = workers
            .iter()
            .flat_map(|worker| worker.files.iter().map(|file| file.name.clone()))
            .collect();
        let files = || workers.iter().flat_map(|worker| &worker.files);
        let incremental_size = files()
            .filter(|file| !previous.contains(&file.name) || !is_immutable(&file.name))
            .map(|file| file.size)
            .sum();
        listed.push(CheckpointInfo {
            epoch,
            created_ms: job.created_ms,
            workers: job.workers,
            key_groups: job.key_groups,
            size: files().map(|file| file.size).sum(),
            incremental_size,
            duration_ms: workers.iter().map(|w| w.duration_ms).max().unwrap_or(0),
            sources: merged_sources(&workers),
            operators: job
                .operators
                .map(|operators| operators.into_keys().collect()),
            path,
        });
        previous = names;
    }
    Ok(listed)
}

/// Keeps the newest complete checkpoint under `dir` as the savepoint `name`
/// (`dir/savepoints/name`), which checkpoint rotation never deletes. Returns its path, to
/// restore from.
pub fn save_savepoint(dir: &Path, name: &str) -> Result<PathBuf, CheckpointError> {
    let latest =
        latest_complete(dir)?.ok_or_else(|| CheckpointError::NotACheckpoint(dir.to_owned()))?;
    let target = dir.join("savepoints").join(name);
    if target.exists() {
        return Err(CheckpointError::io(&target)(std::io::Error::new(
            std::io::ErrorKind::AlreadyExists,
            "a savepoint of that name exists",
        )));
    }
    if let Some(parent) = target.parent() {
        std::fs::create_dir_all(parent).map_err(CheckpointError::io(parent))?;
    }
    copy_checkpoint(&latest, &target)?;
    Ok(target)
}

/// Links the complete checkpoint `from` to the new directory `to` so that neither a crash
/// nor a deletion of `from` part-way (garbage collection racing a savepoint) leaves `to`
/// looking complete: the tree is linked under a temporary name, checked to hold every file
/// its manifests list, synced, and renamed into place.
pub(crate) fn copy_checkpoint(from: &Path, to: &Path) -> Result<(), CheckpointError> {
    let temporary = to.with_extension("copying");
    if temporary.exists() {
        std::fs::remove_dir_all(&temporary).map_err(CheckpointError::io(&temporary))?;
    }
    let copied = link_tree(from, &temporary, false).and_then(|()| check_files(&temporary));
    if let Err(error) = copied {
        let _ = std::fs::remove_dir_all(&temporary);
        return Err(match error {
            CheckpointError::NotACheckpoint(_) | CheckpointError::Io { .. } => {
                CheckpointError::Manifest {
                    path: from.to_owned(),
                    reason: format!(
                        "the checkpoint changed while it was copied (deleted by garbage collection?): {error}"
                    ),
                }
            }
            error => error,
        });
    }
    std::fs::rename(&temporary, to).map_err(CheckpointError::io(to))?;
    sync_dir(to.parent().unwrap_or(Path::new(".")))
}

/// Checks that a complete checkpoint holds every file its worker manifests list, at its size.
fn check_files(checkpoint: &Path) -> Result<(), CheckpointError> {
    let (_, workers) = read_checkpoint(checkpoint)?;
    for worker in &workers {
        let state = worker_state_path(checkpoint, worker.worker, worker.run);
        for file in &worker.files {
            let path = state.join(&file.name);
            let size = std::fs::metadata(&path)
                .map_err(CheckpointError::io(&path))?
                .len();
            if size != file.size {
                return Err(CheckpointError::Manifest {
                    path,
                    reason: format!("{size} bytes, the manifest records {}", file.size),
                });
            }
        }
    }
    Ok(())
}

/// Recreates the tree `from` at `to`, hard-linking files (copying where linking fails, as
/// across file systems). With `only_sst`, only SST files (which RocksDB never changes) are
/// linked and the rest copied, so that a database opened at `to` cannot change `from`.
pub(crate) fn link_tree(from: &Path, to: &Path, only_sst: bool) -> Result<(), CheckpointError> {
    std::fs::create_dir_all(to).map_err(CheckpointError::io(to))?;
    for entry in std::fs::read_dir(from).map_err(CheckpointError::io(from))? {
        let entry = entry.map_err(CheckpointError::io(from))?;
        let (source, target) = (entry.path(), to.join(entry.file_name()));
        if entry
            .file_type()
            .map_err(CheckpointError::io(&source))?
            .is_dir()
        {
            link_tree(&source, &target, only_sst)?;
        } else if (only_sst
            && source
                .extension()
                .is_none_or(|extension| extension != "sst"))
            || std::fs::hard_link(&source, &target).is_err()
        {
            std::fs::copy(&source, &target).map_err(CheckpointError::io(&target))?;
        }
    }
    sync_dir(to)
}
