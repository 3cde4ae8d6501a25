//! One worker's side of checkpointing, driven from the worker's loop between dataflow steps.
//!
//! Operators that take part (sources, keyed operators, sinks) report how far they have come:
//! "done through epoch `e`". Once every participant of the worker is done through `e`, the
//! worker takes its checkpoint of `e` (a RocksDB checkpoint, then its manifest) and wakes the
//! operators waiting to start `e + 1`. Worker 0 writes the job manifest of `e` once every
//! worker's manifest is there; every worker commits its sinks once it sees that manifest.
//! Workers talk only through the checkpoint directory, which every process of a job shares.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use timely::scheduling::Activator;

use super::layout::{
    self, JobManifest, SourcePositions, StateFile, StateFormat, WorkerManifest, FINAL_EPOCH,
};
use super::restore::{self, Restored};
use super::{CheckpointConfig, CheckpointError};
use crate::checkpoint::positions::Positions;
use crate::error::EngineError;
use crate::runtime::job::{JobShared, WorkerInfo};
use crate::state::checkpoint_files::{self, RestoredFiles};
use crate::state::{RocksStore, StateBackend, StateError};
use crate::time::Epoch;

/// How often a worker looks for manifests other workers write.
pub(crate) const POLL_INTERVAL: Duration = Duration::from_millis(2);

/// What the coordinator asks of a sink, outside the dataflow.
pub(crate) enum SinkStep {
    /// Make every transaction up to this epoch visible.
    Commit(Epoch),
    /// The job has ended and everything is committed: release the sink.
    Close,
}

type SinkHandle = Box<dyn FnMut(SinkStep) -> Result<(), EngineError>>;

/// Where a source stood at the end of each epoch it finished.
type PositionsByEpoch = BTreeMap<Epoch, Option<Positions>>;

struct Participant {
    done_through: Option<Epoch>,
    /// For a source: its number, name and positions at the end of each epoch.
    source: Option<(usize, String, PositionsByEpoch)>,
}

struct Coordinator {
    job: Arc<JobShared>,
    worker: WorkerInfo,
    config: CheckpointConfig,
    state: WorkerState,
    participants: Vec<Participant>,
    sinks: Vec<SinkHandle>,
    waiting: Vec<Activator>,
    checkpointed: Option<Epoch>,
    /// Worker 0: checkpoints whose job manifest is not written yet.
    unmanifested: VecDeque<Epoch>,
    /// Checkpoints of this worker whose sinks have not committed yet.
    uncommitted: VecDeque<Epoch>,
    last_poll: Instant,
    /// The files of this worker's last checkpoint, to reuse the checksums of shared SSTs.
    previous_files: HashMap<String, StateFile>,
    /// The checkpoint being written, if any.
    in_flight: Option<InFlight>,
    /// This run's id, the same on every worker of every process: manifests of other runs
    /// (stragglers of a killed one) do not count towards this run's checkpoints.
    run: u64,
    /// The pipeline's stateful operators, by stable name, for the job manifest.
    operators: BTreeMap<String, u32>,
}

impl Drop for Coordinator {
    /// Waits for the checkpoint in flight: a failed run's thread would otherwise go on writing
    /// into a checkpoint directory, holding the state store open, while a restart in the same
    /// process restores (deleting that directory, reopening that store).
    fn drop(&mut self) {
        if let Some(InFlight::Running(_, thread)) = self.in_flight.take() {
            // Its result no longer matters: the run is over.
            let _ = thread.join();
        }
    }
}

/// Where a worker's state is checkpointed from.
#[derive(Clone)]
enum WorkerState {
    /// The RocksDB backend's database.
    Rocks(Arc<RocksStore>),
    /// The directory where in-memory state writes its checkpoint files.
    Files(PathBuf),
}

struct Shared {
    coordinator: RefCell<Coordinator>,
    first_epoch: Epoch,
    restored: Option<Restored>,
    /// In-memory state restored, by operator, until each operator takes its own.
    restored_state: RefCell<HashMap<u32, RestoredFiles>>,
    /// Time spent restoring this worker's state so far.
    restore_time: Cell<Duration>,
}

/// A worker's checkpoint handle, held by every operator that takes part. Cheap to clone;
/// without checkpoints every method does nothing.
#[derive(Clone, Default)]
pub(crate) struct Checkpoints {
    shared: Option<Rc<Shared>>,
}

impl Checkpoints {
    /// Sets up checkpointing on one worker as the job's configuration says: chooses the
    /// checkpoint to restore, rebuilds this worker's state from it, and opens the worker's
    /// state store. Runs on every worker before the pipeline is built.
    pub(crate) fn start(job: &Arc<JobShared>, worker: WorkerInfo) -> Result<Self, CheckpointError> {
        let Some(config) = job.config.checkpoints.clone() else {
            return Ok(Checkpoints::default());
        };
        let restored = restore::choose(&config)?;
        let restored_epoch = restored.as_ref().map(|restored| restored.epoch);
        if worker.index == 0 {
            if let Some(restored) = &restored {
                restore::adopt(&config.dir, restored)?;
            }
            restore::clear_after(&config.dir, restored_epoch)?;
        }
        let state_dir = &job.config.state_dir;
        let worker_dir = state_dir.join(format!("worker-{}", worker.index));
        let restoring = restored
            .as_ref()
            .filter(|restored| restored.epoch != FINAL_EPOCH);
        let started = Instant::now();
        let mut restored_state = HashMap::new();
        let state = match (job.config.state_backend, restoring) {
            (StateBackend::Memory, restoring) => {
                if let Some(restored) = restoring {
                    restored_state = restored.load_files(worker, job.key_groups, &worker_dir)?;
                }
                fresh_dir(&worker_dir)?;
                WorkerState::Files(worker_dir)
            }
            (StateBackend::RocksDb { .. }, Some(restored)) => {
                restored.restore_state(worker, job.key_groups, &worker_dir)?;
                WorkerState::Rocks(job.state_stores.open_restored(state_dir, worker.index)?)
            }
            (StateBackend::RocksDb { .. }, None) => {
                WorkerState::Rocks(job.state_stores.store_for(state_dir, worker.index)?)
            }
        };
        let restore_time = if restoring.is_some() {
            job.metrics.add_worker_restore(started.elapsed());
            started.elapsed()
        } else {
            Duration::ZERO
        };
        let coordinator = Coordinator {
            job: Arc::clone(job),
            worker,
            config,
            state,
            participants: Vec::new(),
            sinks: Vec::new(),
            waiting: Vec::new(),
            checkpointed: restored_epoch,
            unmanifested: VecDeque::new(),
            uncommitted: VecDeque::new(),
            last_poll: Instant::now(),
            previous_files: HashMap::new(),
            in_flight: None,
            run: 0,
            operators: BTreeMap::new(),
        };
        Ok(Checkpoints {
            shared: Some(Rc::new(Shared {
                coordinator: RefCell::new(coordinator),
                first_epoch: restored_epoch.map_or(Epoch(0), Epoch::next),
                restored,
                restored_state: RefCell::new(restored_state),
                restore_time: Cell::new(restore_time),
            })),
        })
    }

    /// Sets this run's id, agreed on by every worker before the dataflow runs.
    pub(crate) fn set_run(&self, run: u64) {
        if let Some(shared) = &self.shared {
            shared.coordinator.borrow_mut().run = run;
        }
    }

    /// Whether a source that has finished epoch `next - 1` may start `next`: once its worker
    /// has checkpointed the epoch before (so at most one checkpoint is in flight behind the
    /// running epoch). Always without checkpoints.
    pub(crate) fn may_start_epoch(&self, next: Epoch) -> bool {
        let Some(shared) = &self.shared else {
            return true;
        };
        match next.previous().and_then(Epoch::previous) {
            Some(before_last) => shared.coordinator.borrow().checkpointed >= Some(before_last),
            None => true,
        }
    }

    /// Records the pipeline's stateful operators (for the job manifest), once it is built, and
    /// checks that the restored checkpoint holds state for exactly them.
    pub(crate) fn set_operators(
        &self,
        operators: BTreeMap<String, u32>,
    ) -> Result<(), CheckpointError> {
        let Some(shared) = &self.shared else {
            return Ok(());
        };
        let mut coordinator = shared.coordinator.borrow_mut();
        if let Some(restored) = &shared.restored {
            restored.check_operators(&operators, coordinator.config.allow_removed_operators)?;
        }
        coordinator.operators = operators;
        Ok(())
    }

    /// Whether the job takes checkpoints.
    pub(crate) fn enabled(&self) -> bool {
        self.shared.is_some()
    }

    /// The epoch this run starts in: one past the restored checkpoint's.
    pub(crate) fn first_epoch(&self) -> Epoch {
        self.shared
            .as_ref()
            .map_or(Epoch(0), |shared| shared.first_epoch)
    }

    /// The epoch of the checkpoint this run restored, if any.
    pub(crate) fn restored_epoch(&self) -> Option<Epoch> {
        self.shared
            .as_ref()
            .and_then(|shared| shared.restored.as_ref())
            .map(|restored| restored.epoch)
    }

    /// Restored from the checkpoint a bounded run took at its end: nothing is left to run,
    /// only transactions to commit.
    pub(crate) fn completed(&self) -> bool {
        self.restored_epoch() == Some(FINAL_EPOCH)
    }

    /// The restored positions of source `number`, and the checkpoint they come from.
    pub(crate) fn restored_positions(&self, number: usize) -> Option<(PathBuf, &SourcePositions)> {
        let restored = self.shared.as_ref()?.restored.as_ref()?;
        let positions = restored.sources.iter().find(|p| p.source == number)?;
        Some((restored.path.clone(), positions))
    }

    /// Registers an operator that reports its progress; returns its id.
    pub(crate) fn register(&self) -> usize {
        self.register_participant(None)
    }

    /// Registers source `number` named `name`; returns its id.
    pub(crate) fn register_source(&self, number: usize, name: String) -> usize {
        self.register_participant(Some((number, name, BTreeMap::new())))
    }

    fn register_participant(&self, source: Option<(usize, String, PositionsByEpoch)>) -> usize {
        let Some(shared) = &self.shared else {
            return 0;
        };
        let mut coordinator = shared.coordinator.borrow_mut();
        let done_through = shared.first_epoch.previous();
        coordinator.participants.push(Participant {
            done_through,
            source,
        });
        coordinator.participants.len() - 1
    }

    /// Participant `id` has finished every epoch up to `epoch` ([`FINAL_EPOCH`]: all of them).
    pub(crate) fn done(&self, id: usize, epoch: Epoch) {
        self.report(id, epoch, |_| {});
    }

    /// Source participant `id` has finished `epoch`, standing at `positions` (`None` when it
    /// cannot resume).
    pub(crate) fn source_done(&self, id: usize, epoch: Epoch, positions: Option<Positions>) {
        self.report(id, epoch, |participant| {
            if let Some((_, _, by_epoch)) = &mut participant.source {
                by_epoch.insert(epoch, positions);
            }
        });
    }

    /// Records that participant `id` finished `epoch`, unless the job has failed: a failing
    /// operator may report an epoch whose part it could not do (a sink that could not stage
    /// it, state that could not be written), and no checkpoint may complete on that.
    fn report(&self, id: usize, epoch: Epoch, and: impl FnOnce(&mut Participant)) {
        let Some(shared) = &self.shared else {
            return;
        };
        let mut coordinator = shared.coordinator.borrow_mut();
        if coordinator.job.aborted() {
            return;
        }
        if let Some(participant) = coordinator.participants.get_mut(id) {
            participant.done_through = Some(epoch);
            and(participant);
        }
    }

    /// Whether an operator may write `epoch`'s state: checkpoint files always (each epoch has
    /// its own), the RocksDB store once its worker has checkpointed the epoch before.
    pub(crate) fn may_write(&self, epoch: Epoch) -> bool {
        let Some(shared) = &self.shared else {
            return true;
        };
        let coordinator = shared.coordinator.borrow();
        matches!(coordinator.state, WorkerState::Files(_))
            || epoch <= shared.first_epoch
            || coordinator.checkpointed >= epoch.previous()
    }

    /// Where in-memory state writes its checkpoint files; `None` without checkpoints or with
    /// the RocksDB backend.
    pub(crate) fn state_files_dir(&self) -> Option<PathBuf> {
        match &self.shared.as_ref()?.coordinator.borrow().state {
            WorkerState::Files(dir) => Some(dir.clone()),
            WorkerState::Rocks(_) => None,
        }
    }

    /// The restored in-memory state of `operator`, once.
    pub(crate) fn take_restored_state(&self, operator: u32) -> Option<RestoredFiles> {
        self.shared
            .as_ref()?
            .restored_state
            .borrow_mut()
            .remove(&operator)
    }

    /// Adds `duration` (an operator rebuilding its restored state) to this worker's restore
    /// time.
    pub(crate) fn add_restore_time(&self, duration: Duration) {
        if let Some(shared) = &self.shared {
            let total = shared.restore_time.get() + duration;
            shared.restore_time.set(total);
            shared
                .coordinator
                .borrow()
                .job
                .metrics
                .add_worker_restore(total);
        }
    }

    /// Activates `activator` after each checkpoint this worker takes.
    pub(crate) fn wake_on_checkpoint(&self, activator: Activator) {
        if let Some(shared) = &self.shared {
            shared.coordinator.borrow_mut().waiting.push(activator);
        }
    }

    /// Registers a handle for the commits of complete checkpoints and the final close: a sink's,
    /// or a source's that tells its input where the job stands.
    pub(crate) fn on_commit(&self, handle: SinkHandle) {
        if let Some(shared) = &self.shared {
            shared.coordinator.borrow_mut().sinks.push(handle);
        }
    }

    /// Takes the checkpoint every participant has finished, if any, writes the job manifest
    /// (worker 0) and commits sinks. Runs between dataflow steps.
    pub(crate) fn after_step(&self) -> Result<(), EngineError> {
        match &self.shared {
            Some(shared) if !self.completed() => shared.coordinator.borrow_mut().advance(),
            _ => Ok(()),
        }
    }

    /// After the dataflow has ended, one round of finishing: goes on with the final
    /// checkpoint and its commit, and once both are done closes the sinks and returns true.
    /// The worker calls it until then (or until the job fails).
    pub(crate) fn finish_round(&self) -> Result<bool, EngineError> {
        let Some(shared) = &self.shared else {
            return Ok(true);
        };
        if !self.completed() {
            let mut coordinator = shared.coordinator.borrow_mut();
            coordinator.advance()?;
            let done = coordinator.checkpointed == Some(FINAL_EPOCH)
                && coordinator.uncommitted.is_empty()
                && coordinator.unmanifested.is_empty();
            if !done {
                return Ok(false);
            }
        }
        let mut coordinator = shared.coordinator.borrow_mut();
        for sink in &mut coordinator.sinks {
            sink(SinkStep::Close)?;
        }
        Ok(true)
    }
}

impl Coordinator {
    fn advance(&mut self) -> Result<(), EngineError> {
        let through = self
            .participants
            .iter()
            .map(|participant| participant.done_through)
            .min()
            .flatten();
        self.poll_in_flight()?;
        // Every worker checkpoints every epoch, in order: worker 0 completes an epoch only
        // once all workers have written it, so a worker that skipped one would stall every
        // later checkpoint. (Sources start a new epoch only once the one before the current
        // is checkpointed, so a slow checkpoint makes epochs longer, not more numerous.) The
        // final checkpoint may follow any epoch: it stands for every epoch left.
        let next = self.checkpointed.map_or(Epoch(0), Epoch::next);
        if let Some(through) = through.filter(|through| *through >= next) {
            if self.in_flight.is_none() && self.checkpointed != Some(FINAL_EPOCH) {
                self.take(if through == FINAL_EPOCH {
                    FINAL_EPOCH
                } else {
                    next
                });
            }
        }
        let due = self.last_poll.elapsed() >= POLL_INTERVAL;
        if due {
            self.last_poll = Instant::now();
        }
        if self.worker.index == 0 && (due || self.unmanifested.len() == 1) {
            self.complete_written()?;
        }
        if due || self.worker.index == 0 {
            let newest_complete = self
                .uncommitted
                .iter()
                .rev()
                .copied()
                .find(|epoch| layout::is_committable(&self.checkpoint_path(*epoch)));
            if let Some(epoch) = newest_complete {
                for sink in &mut self.sinks {
                    sink(SinkStep::Commit(epoch))?;
                }
                self.uncommitted.retain(|pending| *pending > epoch);
            }
        }
        Ok(())
    }

    fn checkpoint_path(&self, epoch: Epoch) -> PathBuf {
        layout::checkpoint_path(&self.config.dir, epoch)
    }

    /// Starts this worker's checkpoint of `epoch` on a background thread: the operators go on
    /// with the next epoch meanwhile, in memory (nothing writes to the store until the
    /// checkpoint is taken, see `Checkpoints::may_write`).
    fn take(&mut self, epoch: Epoch) {
        let sources = self
            .participants
            .iter_mut()
            .filter_map(|participant| participant.source.as_mut())
            .map(|(number, name, by_epoch)| {
                // A finished source stands at its final positions for every later epoch.
                let partitions = by_epoch
                    .range(epoch..)
                    .next()
                    .and_then(|(_, positions)| positions.clone());
                by_epoch.retain(|finished, _| *finished >= epoch);
                SourcePositions {
                    source: *number,
                    name: name.clone(),
                    partitions,
                }
            })
            .collect();
        let manifest = WorkerManifest {
            epoch,
            run: self.run,
            worker: self.worker.index,
            workers: self.worker.peers,
            key_groups: self.job.key_groups.count(),
            state_format: match self.state {
                WorkerState::Rocks(_) => StateFormat::Rocksdb,
                WorkerState::Files(_) => StateFormat::Files,
            },
            sources,
            files: Vec::new(),
            created_ms: 0,
            duration_ms: 0,
        };
        let checkpoint = self.checkpoint_path(epoch);
        let state = self.state.clone();
        let previous = self.previous_files.clone();
        let started = Instant::now();
        let thread = std::thread::Builder::new()
            .name(format!("checkpoint-{}", self.worker.index))
            .spawn(move || {
                write_worker_checkpoint(&state, &checkpoint, manifest, &previous, started)
            });
        self.in_flight = Some(match thread {
            Ok(thread) => InFlight::Running(epoch, thread),
            Err(error) => InFlight::Failed(CheckpointError::io("checkpoint thread")(error)),
        });
    }

    /// Finishes the checkpoint in flight if its thread is done.
    fn poll_in_flight(&mut self) -> Result<(), CheckpointError> {
        let finished = match &self.in_flight {
            Some(InFlight::Running(_, thread)) => thread.is_finished(),
            Some(InFlight::Failed(_)) => true,
            None => false,
        };
        if !finished {
            return Ok(());
        }
        let (epoch, files, duration) = match self.in_flight.take() {
            Some(InFlight::Running(epoch, thread)) => {
                let (files, duration) =
                    thread.join().map_err(|_| CheckpointError::Manifest {
                        path: self.checkpoint_path(epoch),
                        reason: "the checkpoint thread panicked".into(),
                    })??;
                (epoch, files, duration)
            }
            Some(InFlight::Failed(error)) => return Err(error),
            None => return Ok(()),
        };
        let size = files.iter().map(|file| file.size).sum();
        let previous_size = self.previous_files.values().map(|file| file.size).sum();
        self.previous_files = files.into_iter().map(|f| (f.name.clone(), f)).collect();
        self.job
            .metrics
            .add_worker_checkpoint(duration, size, previous_size);
        self.checkpointed = Some(epoch);
        self.uncommitted.push_back(epoch);
        if self.worker.index == 0 {
            self.unmanifested.push_back(epoch);
        }
        for activator in &self.waiting {
            activator.activate();
        }
        tracing::debug!(
            %epoch,
            worker = self.worker.index,
            ?duration,
            "worker checkpoint"
        );
        Ok(())
    }

    /// Worker 0: completes the checkpoints every worker has written, oldest first. A worker
    /// whose input ended goes straight to the final checkpoint, so once that one is written
    /// the epochs before it that some worker skipped are abandoned.
    fn complete_written(&mut self) -> Result<(), CheckpointError> {
        while let Some(&oldest) = self.unmanifested.front() {
            if self.all_written(oldest)? {
                self.complete(oldest)?;
                self.unmanifested.pop_front();
            } else if self.unmanifested.back() == Some(&FINAL_EPOCH)
                && self.all_written(FINAL_EPOCH)?
            {
                self.unmanifested.clear();
                self.complete(FINAL_EPOCH)?;
            } else {
                break;
            }
        }
        Ok(())
    }

    /// Whether every worker has written its manifest of `epoch` in this run.
    fn all_written(&self, epoch: Epoch) -> Result<bool, CheckpointError> {
        // Written atomically by this run: a manifest that does not parse is someone else's.
        let checkpoint = self.checkpoint_path(epoch);
        for worker in 0..self.worker.peers {
            let path = layout::worker_manifest_path(&checkpoint, worker, self.run);
            if !path.exists() {
                return Ok(false);
            }
            let Ok(manifest) = layout::read_json::<WorkerManifest>(&path) else {
                return Ok(false);
            };
            if manifest.run != self.run || manifest.epoch != epoch || manifest.worker != worker {
                // A straggler of an earlier run of this job: this run's worker replaces it.
                tracing::debug!(path = %path.display(), run = manifest.run, "stale worker manifest");
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Worker 0: writes the job manifest of `epoch`, whose worker manifests are all there,
    /// then deletes checkpoints beyond the retained ones.
    fn complete(&mut self, epoch: Epoch) -> Result<(), CheckpointError> {
        let checkpoint = self.checkpoint_path(epoch);
        let manifest = JobManifest {
            epoch,
            run: self.run,
            workers: self.worker.peers,
            key_groups: self.job.key_groups.count(),
            created_ms: crate::time::wall_clock_millis(),
            operators: Some(self.operators.clone()),
        };
        crate::crash_point("checkpoint.job_manifest");
        layout::write_json(&checkpoint.join(layout::JOB_MANIFEST), &manifest)?;
        layout::mark_committable(&checkpoint)?;
        self.job.metrics.add_checkpoint_completed();
        layout::collect_garbage(&self.config.dir, self.config.retain)?;
        Ok(())
    }
}

/// A worker checkpoint being written on its own thread.
enum InFlight {
    Running(Epoch, std::thread::JoinHandle<CheckpointResult>),
    Failed(CheckpointError),
}

/// The files of a written worker checkpoint and how long writing it took.
type CheckpointResult = Result<(Vec<StateFile>, Duration), CheckpointError>;

/// Writes one worker's checkpoint: the RocksDB checkpoint or the links to the checkpoint
/// files, then the worker manifest with the files' sizes and checksums. Returns the files and
/// how long it took since `started`.
fn write_worker_checkpoint(
    worker_state: &WorkerState,
    checkpoint: &Path,
    mut manifest: WorkerManifest,
    previous: &HashMap<String, StateFile>,
    started: Instant,
) -> CheckpointResult {
    crate::crash_point("checkpoint.state");
    // The new directories' entries (the checkpoint directory's too, on the first
    // checkpoint), so that the manifests written into them survive a power loss.
    crate::durable::create_dir_all(checkpoint).map_err(CheckpointError::io(checkpoint))?;
    let state = layout::worker_state_path(checkpoint, manifest.worker, manifest.run);
    if state.exists() {
        // Left by a run that was killed while taking this checkpoint.
        std::fs::remove_dir_all(&state).map_err(CheckpointError::io(&state))?;
    }
    match worker_state {
        WorkerState::Rocks(store) => store.checkpoint(&state)?,
        WorkerState::Files(dir) => link_checkpoint_files(dir, &state, manifest.epoch, previous)?,
    }
    manifest.files = describe_files(&state, previous)?;
    manifest.created_ms = crate::time::wall_clock_millis();
    manifest.duration_ms = crate::time::millis(started.elapsed());
    crate::crash_point("checkpoint.worker_manifest");
    layout::write_json(
        &layout::worker_manifest_path(checkpoint, manifest.worker, manifest.run),
        &manifest,
    )?;
    Ok((manifest.files, started.elapsed()))
}

/// Names, sizes and checksums of a state checkpoint's files. An SST file is immutable, so the
/// checksum of one the last checkpoint already had is reused.
fn describe_files(
    state: &Path,
    previous: &HashMap<String, StateFile>,
) -> Result<Vec<StateFile>, CheckpointError> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(state).map_err(CheckpointError::io(state))? {
        let entry = entry.map_err(CheckpointError::io(state))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let size = entry
            .metadata()
            .map_err(CheckpointError::io(entry.path()))?
            .len();
        let known = previous
            .get(&name)
            .filter(|file| layout::is_immutable(&name) && file.size == size);
        let crc32c = match known {
            Some(file) => file.crc32c,
            None => layout::checksum(&entry.path())?.0,
        };
        files.push(StateFile { name, size, crc32c });
    }
    files.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(files)
}

/// Links into `state` the checkpoint files of `dir` that a checkpoint of `epoch` needs,
/// syncing those no earlier checkpoint included (in `previous`), then deletes from `dir` the
/// files that no later checkpoint needs (kept checkpoints still link them).
fn link_checkpoint_files(
    dir: &Path,
    state: &Path,
    epoch: Epoch,
    previous: &HashMap<String, StateFile>,
) -> Result<(), CheckpointError> {
    let (needed, superseded) = checkpoint_files::chain_at(dir, epoch)?;
    std::fs::create_dir_all(state).map_err(CheckpointError::io(state))?;
    for name in needed.iter().map(|name| name.render()) {
        let (source, target) = (dir.join(&name), state.join(&name));
        if !previous.contains_key(&name) {
            std::fs::File::open(&source)
                .and_then(|file| file.sync_all())
                .map_err(CheckpointError::io(&source))?;
        }
        if std::fs::hard_link(&source, &target).is_err() {
            std::fs::copy(&source, &target).map_err(CheckpointError::io(&target))?;
        }
    }
    layout::sync_dir(state)?;
    for name in superseded {
        let path = dir.join(name.render());
        std::fs::remove_file(&path).map_err(CheckpointError::io(&path))?;
    }
    Ok(())
}

/// Empties `dir` (what a killed run left there), or creates it.
fn fresh_dir(dir: &Path) -> Result<(), StateError> {
    let io = |source| StateError::Io {
        path: dir.to_owned(),
        source,
    };
    if dir.exists() {
        std::fs::remove_dir_all(dir).map_err(io)?;
    }
    std::fs::create_dir_all(dir).map_err(io)
}
