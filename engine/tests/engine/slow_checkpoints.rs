//! A checkpoint slower than the checkpoint interval. One worker holds a few hundred MB of
//! state, so each of its checkpoints (syncing its new snapshot and delta files) outlasts the
//! 10 ms interval, while the other worker, holding none, checkpoints at once. The job must
//! keep completing checkpoints and end by itself with every key counted once.
//!
//! Before the fix a slow worker skipped the epochs its operators finished during its
//! checkpoint; worker 0, which completes an epoch once every worker has written it, waited
//! for a skipped epoch for ever and the bounded job never ended.

// Test helpers panic on purpose: a failed set-up step is a failed test.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

use weir_engine::checkpoint::{list_checkpoints, FINAL_EPOCH};
use weir_engine::{
    BoxError, CheckpointConfig, CollectSink, Epoch, EventTime, Job, JobConfig, KeyGroups,
    KeyedContext, KeyedProcess, Source, SourcePoll, SourceReader, WorkerInfo,
};

const KEYS: usize = 60_000;
/// Bytes of state per key: 60,000 keys hold about 240 MB.
const VALUE: usize = 4096;
/// How long the job may take before the test calls it hung (it takes seconds).
const DEADLINE: Duration = Duration::from_secs(180);

/// Worker 0 reads the keys, `BATCH` per poll, and then reports itself idle: the driver polls
/// again a few milliseconds later, so the input lasts a couple of seconds, many epochs.
#[derive(Clone)]
struct Paced(Vec<u64>);

const BATCH: usize = 500;

impl Source for Paced {
    type Item = u64;
    type Reader = Paced;
    fn name(&self) -> String {
        "paced keys".into()
    }
    fn open(self, worker: WorkerInfo) -> Result<Paced, BoxError> {
        Ok(if worker.index == 0 {
            self
        } else {
            Paced(Vec::new())
        })
    }
}

impl SourceReader for Paced {
    type Item = u64;
    fn poll(&mut self, out: &mut Vec<u64>, _max: usize) -> Result<SourcePoll, BoxError> {
        let rest = self.0.split_off(self.0.len().saturating_sub(BATCH));
        out.extend(rest);
        Ok(if self.0.is_empty() {
            SourcePoll::Finished
        } else {
            SourcePoll::Waiting {
                watermark: EventTime(0),
            }
        })
    }
}

/// Keeps `VALUE` bytes per key and emits `(key, bytes)` when the input ends.
struct Fill;

impl KeyedProcess<u64, u64> for Fill {
    type State = String;
    type Output = (u64, usize);
    fn on_record(
        &mut self,
        cx: &mut KeyedContext<u64, (u64, usize), u64>,
        _key: &u64,
        state: &mut String,
        record: u64,
        _event_time: EventTime,
    ) {
        let fill = char::from(b'a' + (record % 26) as u8);
        *state = std::iter::repeat_n(fill, VALUE).collect();
        cx.set_timer(EventTime::MAX);
    }
    fn on_timer(
        &mut self,
        cx: &mut KeyedContext<u64, (u64, usize), u64>,
        key: &u64,
        state: &mut String,
        _time: EventTime,
    ) {
        cx.emit((*key, state.len()));
        state.clear();
    }
    fn is_empty(&self, state: &String) -> bool {
        state.is_empty()
    }
}

/// Keys that all belong to worker 1 of 2, so that worker 0 holds no state.
fn keys_of_worker_one(config: &JobConfig) -> Vec<u64> {
    let key_groups = KeyGroups::new(config.key_groups, 2);
    (0..)
        .filter(|key: &u64| key_groups.worker_of_key(key) == 1)
        .take(KEYS)
        .collect()
}

fn run(dir: &Path) -> Vec<(u64, usize)> {
    let sink = CollectSink::new();
    let results = sink.results();
    let config = JobConfig::default()
        .workers(2)
        .state_dir(dir.join("state"))
        .checkpoints(
            CheckpointConfig::new(dir.join("checkpoints"))
                .interval(Duration::from_millis(10))
                .retain(usize::MAX),
        );
    let keys = keys_of_worker_one(&config);
    Job::new(config)
        .run(move |p| {
            p.source(Paced(keys.clone()))
                .key_by(|key| *key)
                .process("fill", |_| EventTime(0), Fill)
                .results
                .sink(sink.clone());
            Ok(())
        })
        .unwrap();
    let mut results = results.lock().unwrap().clone();
    results.sort();
    results
}

#[test]
fn a_checkpoint_slower_than_the_interval_does_not_stall_the_job() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_owned();
    let (done, finished) = mpsc::channel();
    std::thread::spawn(move || done.send(run(&path)).unwrap());
    let results = finished
        .recv_timeout(DEADLINE)
        .unwrap_or_else(|_| panic!("the job did not end within {DEADLINE:?}: checkpoints stalled"));
    let config = JobConfig::default();
    let expected: Vec<(u64, usize)> = {
        let mut keys = keys_of_worker_one(&config);
        keys.sort();
        keys.into_iter().map(|key| (key, VALUE)).collect()
    };
    assert_eq!(results, expected);
    let checkpoints = list_checkpoints(&dir.path().join("checkpoints")).unwrap();
    // Every epoch's checkpoint completed, in order, then the final one (a worker that
    // skipped epochs left gaps, or stalled the job).
    let epochs: Vec<_> = checkpoints.iter().map(|c| c.epoch).collect();
    let regular = epochs.len().saturating_sub(1);
    assert!(
        regular > 2,
        "the job was meant to run for several epochs: {epochs:?}"
    );
    assert_eq!(
        epochs[..regular],
        (0..regular as u64).map(Epoch).collect::<Vec<_>>()
    );
    assert_eq!(epochs.last(), Some(&FINAL_EPOCH));
    // The state reaches 240 MB in memory; how much of it the largest checkpoint holds depends
    // on when the input ended (one run on a loaded machine: 97 MB), so the bound is loose.
    let largest = checkpoints.iter().map(|c| c.size).max().unwrap_or(0);
    assert!(
        largest > 50 << 20,
        "the state was meant to be large: the largest checkpoint holds {largest} bytes"
    );
}
