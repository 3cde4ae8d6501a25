//! Kills a job whose checkpoints take longer than its checkpoint interval. Worker 1 holds
//! up to 160 MB of state (10,000 keys of 16 KiB), so its checkpoints outlast the
//! 10 ms interval while worker 0 (no state) checkpoints at once: the case where a worker
//! finishes epochs while its previous checkpoint is still being written. The job reads a
//! topic at a fixed pace and writes to an exactly-once topic; the test runs it in a child
//! process (this test binary, started again), which kills itself with SIGKILL at a named
//! step of the checkpoint path (`WEIR_CRASH_POINT`, `WEIR_CRASH_AT`: see
//! `weir_engine::crash_point`), restores it from its latest checkpoint until a run ends by
//! itself, and compares the committed output with what the input must give: every key's
//! two results once, nothing missing, nothing twice.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use weir::checkpoint::list_checkpoints;
use weir::log::{LogSink, LogSource, RecordRef, Topic, ValueFormat};
use weir::{
    CheckpointConfig, EventTime, Job, JobConfig, KeyGroups, KeyedContext, KeyedProcess, Restore,
};

const KEYS: usize = 10_000;
/// Bytes of state per key.
const VALUE: usize = 16 << 10;
/// Keys read per second: the input lasts about a second.
const RATE: u64 = 10_000;
/// The checkpoint interval, far shorter than a checkpoint of the state takes.
const INTERVAL: Duration = Duration::from_millis(10);
/// How long one run may take before the test calls it hung (a run takes seconds).
const RUN_DEADLINE: Duration = Duration::from_secs(180);
/// Set in the child process: the directory of the job it runs.
const CHILD_DIR: &str = "WEIR_LARGE_STATE_JOB_DIR";

/// Keeps `VALUE` bytes per key; emits `(key, 0)` for the key's record and `(key, VALUE)`
/// when the input ends, so that output is committed throughout the run and at its end.
struct Fill;

impl KeyedProcess<u64, u64> for Fill {
    type State = String;
    type Output = (u64, usize);
    fn on_record(
        &mut self,
        cx: &mut KeyedContext<u64, (u64, usize), u64>,
        key: &u64,
        state: &mut String,
        record: u64,
        _event_time: EventTime,
    ) {
        let fill = char::from(b'a' + (record % 26) as u8);
        *state = std::iter::repeat_n(fill, VALUE).collect();
        cx.emit((*key, 0));
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

fn config(dir: &Path, restore: bool) -> JobConfig {
    let mut checkpoints = CheckpointConfig::new(dir.join("checkpoints"))
        .interval(INTERVAL)
        .retain(2);
    if restore {
        checkpoints = checkpoints.restore(Restore::Latest);
    }
    JobConfig::default()
        .workers(2)
        .state_dir(dir.join("state"))
        .checkpoints(checkpoints)
}

/// Keys that all belong to worker 1 of 2, so that worker 0 holds no state.
fn keys_of_worker_one() -> Vec<u64> {
    let key_groups = KeyGroups::new(JobConfig::default().key_groups, 2);
    (0..)
        .filter(|key: &u64| key_groups.worker_of_key(key) == 1)
        .take(KEYS)
        .collect()
}

/// The job, run by the child process: the keys topic, paced, into the `out` topic.
#[test]
#[ignore = "run by large_state_survives_kills_at_every_slow_checkpoint_step in a child process"]
fn large_state_job() {
    let Some(dir) = std::env::var_os(CHILD_DIR) else {
        return;
    };
    let dir = Path::new(&dir).to_owned();
    let restore = dir.join("checkpoints").exists();
    let (keys, out) = (dir.join("keys"), dir.join("out"));
    Job::new(config(&dir, restore))
        .run(move |p| {
            let source = LogSource::<u64>::new(&keys).until_end().max_rate(RATE);
            p.source(source)
                .key_by(|key| *key)
                .process("fill", |_| EventTime(0), Fill)
                .results
                .sink(LogSink::new(&out));
            Ok(())
        })
        .unwrap();
}

/// The crash points the test kills at: each step of a slow checkpoint (its state, its
/// manifest, the job's manifest, the commit after it).
const POINTS: [&str; 4] = [
    "checkpoint.state",
    "checkpoint.worker_manifest",
    "checkpoint.job_manifest",
    "sink.commit",
];

/// How often a run without failures passes each of [`POINTS`], and how long it takes.
fn passes_per_point() -> (BTreeMap<String, usize>, Duration) {
    let dir = tempfile::tempdir().unwrap();
    write_keys(dir.path());
    let log = dir.path().join("points");
    let mut command = child(dir.path());
    command
        .env("WEIR_CRASH_POINT", POINTS.join(","))
        .env("WEIR_CRASH_LOG", &log);
    let started = Instant::now();
    assert!(!wait(command, None), "the counting run was killed");
    let took = started.elapsed();
    let mut passes = BTreeMap::new();
    for name in std::fs::read_to_string(&log).unwrap().lines() {
        *passes.entry(name.to_owned()).or_insert(0) += 1;
    }
    (passes, took)
}

/// This test binary, to run [`large_state_job`] on the job in `dir`.
fn child(dir: &Path) -> Command {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command
        .args(["--exact", "large_state_job", "--ignored", "--nocapture"])
        .env(CHILD_DIR, dir)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    command
}

/// Runs the job in a child process until it ends, or kills itself at the `nth` pass of the
/// crash point `point`; returns whether it was killed there.
fn run_child(dir: &Path, crash: Option<(&str, usize)>) -> bool {
    wait(child(dir), crash)
}

/// Runs `command` (the job), killed at `crash` if given; returns whether it was killed there.
fn wait(mut command: Command, crash: Option<(&str, usize)>) -> bool {
    if let Some((point, nth)) = crash {
        command
            .env("WEIR_CRASH_POINT", point)
            .env("WEIR_CRASH_AT", nth.to_string());
    }
    let mut child = command.spawn().unwrap();
    let what = format!("a run (crash plan {crash:?})");
    let status = common::wait_within(&mut child, RUN_DEADLINE, &what);
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    if stderr.contains("weir: crash point") {
        return true;
    }
    assert!(status.success(), "the job failed: {stderr}");
    false
}

fn write_keys(dir: &Path) {
    let topic = Topic::create(dir.join("keys"), 1, ValueFormat::Json, Default::default()).unwrap();
    let mut producer = topic.producer().unwrap();
    for key in keys_of_worker_one() {
        producer
            .send(&RecordRef {
                value: key.to_string().as_bytes(),
                timestamp: EventTime(0),
                ..RecordRef::default()
            })
            .unwrap();
    }
    producer.flush().unwrap();
    Topic::create(dir.join("out"), 1, ValueFormat::Json, Default::default()).unwrap();
}

#[test]
fn large_state_survives_kills_at_every_slow_checkpoint_step() {
    let expected: BTreeMap<String, usize> = keys_of_worker_one()
        .into_iter()
        .flat_map(|key| [format!("[{key},0]"), format!("[{key},{VALUE}]")])
        .map(|row| (row, 1))
        .collect();
    let (passes, took) = passes_per_point();
    // Each worker passes `checkpoint.worker_manifest` once an epoch. Were checkpoints as fast
    // as the interval, a run would take an epoch per interval; they set the pace instead (seen:
    // 11 to 53 epochs in 1.0 to 2 s), so an epoch lasts well over an interval on average. The
    // margin is wide because a fast machine writes the state quickly: this checks the test's
    // premise, not the engine's speed.
    let epochs = passes
        .get("checkpoint.worker_manifest")
        .copied()
        .unwrap_or(0)
        / 2;
    assert!(
        (epochs as u32) * INTERVAL * 3 < took * 2,
        "{epochs} epochs in {took:?}: the checkpoints were meant to outlast the {INTERVAL:?} interval"
    );
    println!("a run without failures: {epochs} epochs in {took:.1?} ({INTERVAL:?} interval)");
    let mut largest_restored = 0;
    // Each point at the middle pass of a run and at three quarters: with half the state or
    // more, while worker 0 may have moved epochs ahead of worker 1.
    let kills = POINTS.iter().flat_map(|point| {
        let passed = passes.get(*point).copied().unwrap_or(0);
        assert!(
            passed >= 4,
            "a run passed {point} only {passed} times: {passes:?}"
        );
        [(*point, passed / 2), (*point, passed * 3 / 4)]
    });
    for (point, planned) in kills {
        // Runs pass a point a varying number of times (checkpoints set the pace): a run that
        // ends before its kill is tried again, killed earlier.
        let mut nth = planned;
        let (dir, started) = loop {
            let dir = tempfile::tempdir().unwrap();
            write_keys(dir.path());
            let started = Instant::now();
            if run_child(dir.path(), Some((point, nth))) {
                break (dir, started);
            }
            assert!(
                nth > planned / 4,
                "runs keep ending before their {nth}th {point}"
            );
            nth = nth * 2 / 3;
        };
        // The checkpoint the restore starts from.
        let restored = list_checkpoints(&dir.path().join("checkpoints"))
            .unwrap()
            .iter()
            .map(|checkpoint| checkpoint.size)
            .max()
            .unwrap_or(0);
        largest_restored = largest_restored.max(restored);
        let mut restores = 0;
        while run_child(dir.path(), None) {
            restores += 1;
        }
        let actual = common::committed_to_topic(&dir.path().join("out"));
        common::assert_same(&expected, &actual, &format!("killed at {point} #{nth}"));
        println!(
            "killed at {point} #{nth}, restored from {} MiB ({restores} more kills): {} results \
             as expected in {:.1?}",
            restored >> 20,
            actual.len(),
            started.elapsed()
        );
    }
    println!(
        "largest checkpoint restored: {} MiB",
        largest_restored >> 20
    );
}
