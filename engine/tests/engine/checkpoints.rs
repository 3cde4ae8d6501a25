//! Checkpoints and restore: a job that fails part-way resumes from its latest checkpoint with
//! every record counted exactly once, on the same or another worker count; damaged or
//! incomplete checkpoints are detected; old ones are deleted.
//!
//! These tests fail the first run from inside (a source error). The kill tests in
//! `cli/tests/kill.rs` kill real processes.

// Test helpers panic on purpose: a failed set-up step is a failed test.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use weir_engine::checkpoint::{list_checkpoints, FINAL_EPOCH};
use weir_engine::time::Epoch;
use weir_engine::{
    BoxError, CheckpointConfig, CheckpointError, CollectSink, EngineError, EventTime, Job,
    JobConfig, JobReport, KeyedContext, KeyedProcess, PartitionPosition, Positions, RestartPolicy,
    Restore, Sink, SinkPlacement, Source, SourcePoll, SourceReader, StateBackend, Stream,
    WorkerInfo,
};

const PARTITIONS: u32 = 4;
const PER_PARTITION: u64 = 20_000;
const KEYS: u64 = 37;

/// Partition `p` holds the numbers `p * PER_PARTITION ..` (`PER_PARTITION` of them); worker
/// `w` reads the partitions `p % workers == w`, 200 records of each per poll.
#[derive(Clone, Default)]
struct Numbers {
    /// Fail once this worker has emitted this many records.
    fail_after: Option<u64>,
    /// Fail with an I/O error (retryable) instead of a plain one (fatal).
    io_failure: Option<IoFailures>,
    starts: BTreeMap<u32, u64>,
}

/// In which runs of a restarting job the readers fail with an I/O error.
#[derive(Clone)]
enum IoFailures {
    /// Only in the run whose readers opened before the flag was set (by the first failure).
    FirstRun(Arc<AtomicBool>),
    /// In every run.
    EveryRun,
}

struct NumbersReader {
    next: BTreeMap<u32, u64>,
    emitted: u64,
    fail_after: Option<u64>,
    io_failure: Option<IoFailures>,
}

impl Source for Numbers {
    type Item = u64;
    type Reader = NumbersReader;
    fn name(&self) -> String {
        "numbers".into()
    }
    fn open(self, worker: WorkerInfo) -> Result<NumbersReader, BoxError> {
        let next = (0..PARTITIONS)
            .filter(|p| *p as usize % worker.peers == worker.index)
            .map(|p| (p, self.starts.get(&p).copied().unwrap_or(0)))
            .collect();
        let failed_before = matches!(
            &self.io_failure,
            Some(IoFailures::FirstRun(failed)) if failed.load(Ordering::SeqCst)
        );
        Ok(NumbersReader {
            next,
            emitted: 0,
            fail_after: self.fail_after.filter(|_| !failed_before),
            io_failure: self.io_failure,
        })
    }
    fn resume_from(&mut self, positions: &Positions) -> Result<(), BoxError> {
        self.starts = positions
            .iter()
            .map(|(partition, position)| (*partition, position.next_offset))
            .collect();
        Ok(())
    }
}

impl SourceReader for NumbersReader {
    type Item = u64;
    fn poll(&mut self, out: &mut Vec<u64>, _max: usize) -> Result<SourcePoll, BoxError> {
        if self.fail_after.is_some_and(|limit| self.emitted >= limit) {
            if let Some(IoFailures::FirstRun(failed)) = &self.io_failure {
                failed.store(true, Ordering::SeqCst);
            }
            return Err(match self.io_failure {
                Some(_) => Box::new(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "injected I/O failure",
                )),
                None => "injected failure".into(),
            });
        }
        for (partition, next) in &mut self.next {
            let end = (*next + 200).min(PER_PARTITION);
            out.extend((*next..end).map(|i| u64::from(*partition) * PER_PARTITION + i));
            self.emitted += end - *next;
            *next = end;
        }
        // `Idle` after every batch: the driver polls again a few milliseconds later, so a run
        // lasts long enough for several checkpoints.
        Ok(if self.next.values().all(|next| *next == PER_PARTITION) {
            SourcePoll::Finished
        } else {
            SourcePoll::Waiting {
                watermark: EventTime(0),
            }
        })
    }
    fn positions(&self) -> Option<Positions> {
        Some(
            self.next
                .iter()
                .map(|(partition, next)| (*partition, PartitionPosition::at(*next)))
                .collect(),
        )
    }
}

/// Counts and sums records per key; emits `(key, count, sum)` when the input ends.
struct CountAtEnd;

impl KeyedProcess<u64, u64> for CountAtEnd {
    type State = (u64, u64);
    type Output = (u64, u64, u64);
    fn on_record(
        &mut self,
        cx: &mut KeyedContext<u64, (u64, u64, u64), u64>,
        _key: &u64,
        state: &mut (u64, u64),
        record: u64,
        _event_time: EventTime,
    ) {
        state.0 += 1;
        state.1 += record;
        cx.set_timer(EventTime::MAX);
    }
    fn on_timer(
        &mut self,
        cx: &mut KeyedContext<u64, (u64, u64, u64), u64>,
        key: &u64,
        state: &mut (u64, u64),
        _time: EventTime,
    ) {
        cx.emit((*key, state.0, state.1));
        *state = (0, 0);
    }
    fn is_empty(&self, state: &(u64, u64)) -> bool {
        *state == (0, 0)
    }
}

/// `(key, count, sum)`: what the counting job emits per key.
type Count = (u64, u64, u64);

fn reference() -> Vec<Count> {
    let mut counts = BTreeMap::new();
    for n in 0..u64::from(PARTITIONS) * PER_PARTITION {
        let entry = counts.entry(n % KEYS).or_insert((0, 0));
        entry.0 += 1;
        entry.1 += n;
    }
    counts.into_iter().map(|(k, (c, s))| (k, c, s)).collect()
}

fn run(
    dir: &Path,
    workers: usize,
    source: Numbers,
    checkpoints: CheckpointConfig,
    backend: StateBackend,
) -> Result<Vec<Count>, EngineError> {
    let config = JobConfig::default()
        .workers(workers)
        .state_dir(dir.join(format!("state-{workers}")))
        .state_backend(backend)
        .checkpoints(checkpoints);
    run_job(Job::new(config), source).map(|(results, _)| results)
}

/// The counting job's pipeline, and the changes to it that restores meet.
#[derive(Clone, Copy, Debug)]
enum Shape {
    /// Source, key by, the stateful "count", sink.
    Counting,
    /// The same with stateless operators before the count (operator indices shift).
    StatelessUpstream,
    /// The count under another name.
    Renamed,
    /// No stateful operator at all.
    Stateless,
}

/// Runs the counting job over `source`: its sorted results and its report.
fn run_job(job: Job, source: Numbers) -> Result<(Vec<Count>, JobReport), EngineError> {
    run_shaped(job, source, Shape::Counting)
}

/// Counts and sums the numbers per key in the operator `name`.
fn count<'s>(numbers: Stream<'s, u64>, name: &str) -> Stream<'s, Count> {
    numbers
        .key_by(|n| n % KEYS)
        .process(name, |_| EventTime(0), CountAtEnd)
        .results
}

fn run_shaped(
    job: Job,
    source: Numbers,
    shape: Shape,
) -> Result<(Vec<Count>, JobReport), EngineError> {
    let sink = CollectSink::new();
    let results = sink.results();
    let report = job.run(move |p| {
        let numbers = p.source(source.clone());
        let counts = match shape {
            Shape::Counting => count(numbers, "count"),
            Shape::StatelessUpstream => count(
                numbers.map(|n| n + 1).filter(|n| *n > 0).map(|n| n - 1),
                "count",
            ),
            Shape::Renamed => count(numbers, "tally"),
            Shape::Stateless => numbers.map(|n| (n % KEYS, 1, n)),
        };
        counts.sink(sink.clone());
        Ok(())
    })?;
    let mut results = results.lock().unwrap().clone();
    results.sort();
    Ok((results, report))
}

fn checkpoint_config(dir: &Path) -> CheckpointConfig {
    CheckpointConfig::new(dir.join("checkpoints")).interval(Duration::from_millis(15))
}

/// Fails a run on `before` workers with its state in `backend` part-way, then restores it on
/// `after` workers with `after_backend`.
fn fail_then_restore(
    (before, backend): (usize, StateBackend),
    (after, after_backend): (usize, StateBackend),
) {
    let dir = tempfile::tempdir().unwrap();
    let failing = Numbers {
        fail_after: Some(PER_PARTITION * 3 / 2),
        ..Numbers::default()
    };
    let error = run(
        dir.path(),
        before,
        failing,
        checkpoint_config(dir.path()),
        backend,
    )
    .unwrap_err();
    assert!(error.to_string().contains("injected failure"), "{error}");
    assert_nothing_changes_after_the_run(dir.path());
    let taken = list_checkpoints(&dir.path().join("checkpoints")).unwrap();
    assert!(
        !taken.is_empty(),
        "no checkpoint completed before the failure"
    );
    let restored = taken.last().unwrap().sources[0].partitions.clone().unwrap();
    assert!(
        restored.values().any(|position| position.next_offset > 0),
        "the checkpoint recorded no progress: {restored:?}"
    );
    let results = run(
        dir.path(),
        after,
        Numbers::default(),
        checkpoint_config(dir.path()).restore(Restore::Latest),
        after_backend,
    )
    .unwrap();
    assert_eq!(
        results,
        reference(),
        "{before} workers ({backend:?}) -> {after} ({after_backend:?})"
    );
    let last = list_checkpoints(&dir.path().join("checkpoints")).unwrap();
    assert_eq!(last.last().unwrap().epoch, FINAL_EPOCH);
}

/// Nothing of a run that has returned goes on writing under `dir`: a checkpoint thread left
/// behind by a failed run wrote into a checkpoint and held the state store open while the
/// restore after it deleted and reopened them.
fn assert_nothing_changes_after_the_run(dir: &Path) {
    fn files(dir: &Path, into: &mut BTreeMap<std::path::PathBuf, u64>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let entry = entry.unwrap();
            let metadata = entry.metadata().unwrap();
            if metadata.is_dir() {
                files(&entry.path(), into);
            } else {
                into.insert(entry.path(), metadata.len());
            }
        }
    }
    let mut before = BTreeMap::new();
    files(dir, &mut before);
    std::thread::sleep(Duration::from_millis(300));
    let mut after = BTreeMap::new();
    files(dir, &mut after);
    let changed: Vec<_> = before
        .keys()
        .chain(after.keys())
        .filter(|path| before.get(*path) != after.get(*path))
        .collect();
    assert!(
        changed.is_empty(),
        "files changed after the run returned: {changed:?}"
    );
}

const MEMORY: StateBackend = StateBackend::Memory;
const ROCKSDB: StateBackend = StateBackend::RocksDb { memory_budget: 512 };

#[test]
fn a_failed_run_resumes_from_its_checkpoint_exactly_once() {
    fail_then_restore((2, MEMORY), (2, MEMORY));
}

#[test]
fn state_under_a_tiny_rocksdb_budget_restores_too() {
    fail_then_restore((1, ROCKSDB), (1, ROCKSDB));
}

#[test]
fn restoring_on_fewer_workers_moves_key_groups() {
    fail_then_restore((2, MEMORY), (1, MEMORY));
    fail_then_restore((2, ROCKSDB), (1, ROCKSDB));
}

#[test]
fn restoring_on_more_workers_moves_key_groups() {
    fail_then_restore((1, MEMORY), (2, MEMORY));
    fail_then_restore((1, ROCKSDB), (2, ROCKSDB));
}

#[test]
fn state_moves_between_backends_through_a_checkpoint() {
    fail_then_restore((2, MEMORY), (1, ROCKSDB));
    fail_then_restore((1, ROCKSDB), (2, MEMORY));
}

#[test]
fn a_fresh_run_refuses_a_directory_with_checkpoints_and_gc_keeps_the_last_ones() {
    let dir = tempfile::tempdir().unwrap();
    let config = checkpoint_config(dir.path()).retain(2);
    let results = run(
        dir.path(),
        2,
        Numbers::default(),
        config.clone(),
        StateBackend::Memory,
    )
    .unwrap();
    assert_eq!(results, reference());
    let kept = list_checkpoints(&dir.path().join("checkpoints")).unwrap();
    assert!(
        (1..=2).contains(&kept.len()),
        "{} checkpoints kept",
        kept.len()
    );
    let on_disk = std::fs::read_dir(dir.path().join("checkpoints"))
        .unwrap()
        .count();
    assert_eq!(on_disk, kept.len(), "deleted checkpoints left directories");
    let error = run(
        dir.path(),
        2,
        Numbers::default(),
        config,
        StateBackend::Memory,
    )
    .unwrap_err();
    assert!(
        matches!(
            &error,
            EngineError::Checkpoint(CheckpointError::EarlierRun { .. })
        ),
        "{error}"
    );
}

#[test]
fn an_incomplete_checkpoint_is_skipped_and_a_damaged_one_refused() {
    let dir = tempfile::tempdir().unwrap();
    let failing = Numbers {
        fail_after: Some(PER_PARTITION * 3 / 2),
        ..Numbers::default()
    };
    let config = checkpoint_config(dir.path()).retain(10);
    run(dir.path(), 1, failing, config.clone(), StateBackend::Memory).unwrap_err();
    let taken = list_checkpoints(&dir.path().join("checkpoints")).unwrap();
    assert!(taken.len() >= 2, "{} checkpoints", taken.len());
    // A crash before the job manifest was renamed into place: the checkpoint is incomplete,
    // and restoring uses the one before.
    let newest = &taken[taken.len() - 1].path;
    std::fs::remove_file(newest.join("MANIFEST.json")).unwrap();
    let results = run(
        dir.path(),
        1,
        Numbers::default(),
        config.clone().restore(Restore::Latest),
        StateBackend::Memory,
    )
    .unwrap();
    assert_eq!(results, reference());

    // A flipped bit in a state file of a checkpoint with state is found before restoring.
    let (damaged, file) = list_checkpoints(&dir.path().join("checkpoints"))
        .unwrap()
        .into_iter()
        .filter(|checkpoint| checkpoint.epoch != FINAL_EPOCH)
        .find_map(|checkpoint| {
            let state_file = std::fs::read_dir(worker_file(&checkpoint.path, 0, false))
                .unwrap()
                .map(|entry| entry.unwrap().path())
                .find(|path| path.extension().is_some_and(|e| e == "snap"))?;
            Some((checkpoint.path, state_file))
        })
        .unwrap();
    let mut bytes = std::fs::read(&file).unwrap();
    bytes[0] ^= 1;
    // Replace rather than write in place: the file is a hard link shared with the state.
    std::fs::remove_file(&file).unwrap();
    std::fs::write(&file, bytes).unwrap();
    let error = run(
        dir.path(),
        1,
        Numbers::default(),
        config.restore(Restore::Path(damaged)),
        StateBackend::Memory,
    )
    .unwrap_err();
    assert!(
        matches!(
            &error,
            EngineError::Checkpoint(CheckpointError::Checksum { path, .. }) if *path == file
        ),
        "{error}"
    );
}

/// The state directory (`json` false) or manifest of `worker` in `checkpoint`, whatever run
/// wrote it.
fn worker_file(checkpoint: &Path, worker: usize, json: bool) -> std::path::PathBuf {
    std::fs::read_dir(checkpoint)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .find(|path| {
            let name = path.file_name().unwrap().to_string_lossy();
            name.starts_with(&format!("worker-{worker}-run-")) && name.ends_with(".json") == json
        })
        .unwrap()
}

/// A straggler of an earlier run (a process not dead yet) writes its worker manifests into
/// the checkpoints of the run that replaced it. Worker 0 counts only this run's manifests:
/// here every stale manifest says its worker's partitions were read to the end, so a
/// checkpoint completed with one would lose the records after its real positions.
#[test]
fn a_straggler_of_an_earlier_run_cannot_complete_a_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let earlier = dir.path().join("earlier");
    run(
        &earlier,
        2,
        Numbers::default(),
        CheckpointConfig::new(earlier.join("checkpoints")),
        MEMORY,
    )
    .unwrap();
    let stale: serde_json::Value = serde_json::from_slice(
        &std::fs::read(worker_file(&earlier.join("checkpoints/chk-final"), 1, true)).unwrap(),
    )
    .unwrap();
    let checkpoints = dir.path().join("checkpoints");
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let straggler = {
        let (checkpoints, stop) = (checkpoints.clone(), std::sync::Arc::clone(&stop));
        std::thread::spawn(move || {
            // Once the new run has cleaned up and taken its first checkpoint...
            while !checkpoints.join("chk-000000000000").exists() {
                if stop.load(std::sync::atomic::Ordering::Relaxed) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(1));
            }
            // It goes on writing its own manifest of each epoch, under the name it uses
            // (with its run id) and under the name manifests had before runs had ids.
            let stale_name = worker_file(&earlier.join("checkpoints/chk-final"), 1, true);
            let stale_name = stale_name.file_name().unwrap().to_owned();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                for epoch in 0..400u64 {
                    // Checkpoints in progress: the ones a straggler is still working on.
                    let checkpoint = checkpoints.join(format!("chk-{epoch:012}"));
                    if !checkpoint.exists() || checkpoint.join("MANIFEST.json").exists() {
                        continue;
                    }
                    let mut manifest = stale.clone();
                    manifest["epoch"] = epoch.into();
                    let bytes = serde_json::to_vec(&manifest).unwrap();
                    for name in [std::ffi::OsStr::new("worker-1.json"), &stale_name] {
                        // The directory may be deleted meanwhile (garbage collection).
                        let _ = std::fs::write(checkpoint.join(name), &bytes);
                    }
                }
                std::thread::sleep(Duration::from_millis(1));
            }
        })
    };
    let failing = Numbers {
        fail_after: Some(PER_PARTITION * 3 / 2),
        ..Numbers::default()
    };
    let config = checkpoint_config(dir.path());
    let failed = run(dir.path(), 2, failing, config.clone(), MEMORY);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    straggler.join().unwrap();
    assert!(failed.is_err());
    let results = run(
        dir.path(),
        2,
        Numbers::default(),
        config.restore(Restore::Latest),
        MEMORY,
    )
    .unwrap();
    assert_eq!(results, reference());
}

/// A job configured to restart itself: two workers, 15 ms checkpoints.
fn restarting_job(dir: &Path, policy: RestartPolicy) -> Job {
    let config = JobConfig::default()
        .workers(2)
        .state_dir(dir.join("state"))
        .checkpoints(checkpoint_config(dir))
        .restarts(policy.backoff(Duration::from_millis(5), Duration::from_millis(20)));
    Job::new(config)
}

/// An I/O error is retryable: the job restarts itself from its latest checkpoint (not from
/// the beginning: it reads fewer records than a fresh second run would) and its results are
/// exactly the reference.
#[test]
fn a_retryable_failure_restarts_the_job_from_its_latest_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let failed = Arc::new(AtomicBool::new(false));
    let failing = Numbers {
        fail_after: Some(PER_PARTITION * 3 / 2),
        io_failure: Some(IoFailures::FirstRun(Arc::clone(&failed))),
        ..Numbers::default()
    };
    let job = restarting_job(dir.path(), RestartPolicy::up_to(3));
    let metrics = job.metrics();
    let (results, report) = run_job(job, failing).unwrap();
    assert!(failed.load(Ordering::SeqCst), "the first run did not fail");
    assert_eq!(results, reference());
    assert_eq!((report.restarts, metrics.restarts()), (1, 1));
    // The first run read at least `fail_after` records on the worker that failed.
    let fresh_rerun = PER_PARTITION * 3 / 2 + u64::from(PARTITIONS) * PER_PARTITION;
    assert!(
        report.records_in < fresh_rerun,
        "{} records read: the restart did not resume from a checkpoint",
        report.records_in
    );
    let last = list_checkpoints(&dir.path().join("checkpoints")).unwrap();
    assert_eq!(last.last().unwrap().epoch, FINAL_EPOCH);
}

/// A failure a restart cannot get past (here a plain error from the source, as for damaged
/// input) ends the job at once, however many restarts are allowed; a retryable one ends it
/// once the restarts allowed are spent.
#[test]
fn fatal_failures_and_spent_restarts_end_the_job() {
    let dir = tempfile::tempdir().unwrap();
    let fatal = Numbers {
        fail_after: Some(PER_PARTITION / 2),
        ..Numbers::default()
    };
    let job = restarting_job(&dir.path().join("fatal"), RestartPolicy::up_to(3));
    let metrics = job.metrics();
    let error = run_job(job, fatal).unwrap_err();
    assert!(!error.is_retryable(), "{error}");
    assert_eq!(metrics.restarts(), 0);

    let always = Numbers {
        fail_after: Some(PER_PARTITION / 2),
        io_failure: Some(IoFailures::EveryRun),
        ..Numbers::default()
    };
    let job = restarting_job(&dir.path().join("spent"), RestartPolicy::up_to(2));
    let metrics = job.metrics();
    let error = run_job(job, always).unwrap_err();
    assert!(error.is_retryable(), "{error}");
    assert!(
        error.to_string().contains("injected I/O failure"),
        "{error}"
    );
    assert_eq!(metrics.restarts(), 2);
}

/// Fails a counting run on two workers part-way; returns the configuration to restore it.
fn failed_counting_run(dir: &Path) -> JobConfig {
    let config = JobConfig::default()
        .workers(2)
        .state_dir(dir.join("state"))
        .checkpoints(checkpoint_config(dir));
    let failing = Numbers {
        fail_after: Some(PER_PARTITION * 3 / 2),
        ..Numbers::default()
    };
    run_job(Job::new(config.clone()), failing).unwrap_err();
    let checkpoints = config.checkpoints.clone().unwrap();
    config.checkpoints(checkpoints.restore(Restore::Latest))
}

/// State is keyed by operator name, not by the operator's place in the dataflow: a restore
/// into a pipeline with more stateless operators upstream finds the count's state.
#[test]
fn adding_stateless_operators_upstream_keeps_state_where_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let restore = failed_counting_run(dir.path());
    let (results, _) = run_shaped(
        Job::new(restore),
        Numbers::default(),
        Shape::StatelessUpstream,
    )
    .unwrap();
    assert_eq!(results, reference());
}

/// A restore whose checkpoint holds state the job has no operator for, or lacks state for an
/// operator the job has, fails and names them; allowing removed operators drops their state.
#[test]
fn a_restore_names_the_operators_whose_state_does_not_fit() {
    let dir = tempfile::tempdir().unwrap();
    let restore = failed_counting_run(dir.path());
    let error = run_shaped(
        Job::new(restore.clone()),
        Numbers::default(),
        Shape::Renamed,
    )
    .unwrap_err();
    match &error {
        EngineError::Checkpoint(CheckpointError::Operators { removed, added, .. }) => {
            assert_eq!(
                (&removed[..], &added[..]),
                (&["count".to_owned()][..], &["tally".to_owned()][..])
            );
        }
        other => panic!("expected an operator mismatch, got {other}"),
    }
    assert!(!error.is_retryable());
    let error = run_shaped(
        Job::new(restore.clone()),
        Numbers::default(),
        Shape::Stateless,
    )
    .unwrap_err();
    assert!(
        matches!(&error, EngineError::Checkpoint(CheckpointError::Operators { removed, added, .. })
            if removed == &["count"] && added.is_empty()),
        "{error}"
    );
    let allowing = |config: &JobConfig| {
        let mut config = config.clone();
        config.checkpoints = config
            .checkpoints
            .map(|checkpoints| checkpoints.allow_removed_operators(true));
        config
    };
    // Renaming is not removing: the new name has no state to start from.
    let error = run_shaped(
        Job::new(allowing(&restore)),
        Numbers::default(),
        Shape::Renamed,
    )
    .unwrap_err();
    assert!(
        matches!(&error, EngineError::Checkpoint(CheckpointError::Operators { added, .. })
            if added == &["tally"]),
        "{error}"
    );
    run_shaped(
        Job::new(allowing(&restore)),
        Numbers::default(),
        Shape::Stateless,
    )
    .unwrap();
}

/// A sink (on the first worker) whose pre-commit of its second epoch fails, as on a full
/// disk; it records the epoch that failed.
#[derive(Clone, Default)]
struct FailsSecondPreCommit {
    pre_commits: usize,
    failed: Arc<Mutex<Option<Epoch>>>,
}

impl Sink<Count> for FailsSecondPreCommit {
    fn name(&self) -> String {
        "staging".into()
    }
    fn placement(&self) -> SinkPlacement {
        SinkPlacement::FirstWorker
    }
    fn open(&mut self, _worker: WorkerInfo) -> Result<(), BoxError> {
        Ok(())
    }
    fn write(&mut self, _records: &[Count]) -> Result<(), BoxError> {
        Ok(())
    }
    fn pre_commit(&mut self, epoch: Epoch) -> Result<(), BoxError> {
        self.pre_commits += 1;
        if self.pre_commits == 2 {
            *self.failed.lock().unwrap() = Some(epoch);
            return Err("No space left on device".into());
        }
        Ok(())
    }
    fn close(&mut self) -> Result<(), BoxError> {
        Ok(())
    }
}

/// A sink that failed to stage an epoch never lets that epoch's checkpoint complete: the
/// restore would take the epoch as staged and the sink would never publish its records.
#[test]
fn an_epoch_whose_sink_failed_to_stage_it_never_completes_a_checkpoint() {
    for workers in [1, 2] {
        let dir = tempfile::tempdir().unwrap();
        let sink = FailsSecondPreCommit::default();
        let failed = Arc::clone(&sink.failed);
        let config = JobConfig::default()
            .workers(workers)
            .state_dir(dir.path().join("state"))
            .checkpoints(checkpoint_config(dir.path()));
        let error = Job::new(config)
            .run(move |p| {
                count(p.source(Numbers::default()), "count").sink(sink.clone());
                Ok(())
            })
            .unwrap_err();
        assert!(error.to_string().contains("No space left"), "{error}");
        let failed = failed.lock().unwrap().expect("no pre-commit failed");
        let taken = list_checkpoints(&dir.path().join("checkpoints")).unwrap();
        assert!(
            taken.iter().all(|checkpoint| checkpoint.epoch < failed),
            "{workers} workers: epoch {failed} failed to stage, yet checkpoints {:?} completed",
            taken
                .iter()
                .map(|checkpoint| checkpoint.epoch)
                .collect::<Vec<_>>()
        );
    }
}
