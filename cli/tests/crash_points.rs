//! The crash-point sweep: `weir nexmark run` with checkpoints is killed (SIGKILL, by the
//! process itself) at the N-th named step of the checkpoint and commit path, for every N a
//! run passes, then restored with `--restore latest` until a run ends by itself; the
//! committed output must equal that of a run without failures, nothing missing, nothing
//! twice. The steps are the engine's crash points (`weir_engine::CRASH_POINTS`), armed by
//! `WEIR_CRASH_AT`; every step the output kind can reach is killed at least once.
//!
//! Restores vary what a restore must cope with: another worker count (1, 2 or 3), the RocksDB
//! backend instead of in-memory state, and a crash in the restore's own clean-up. The output
//! topic has four partitions and small segments, so commits cross segment rolls; the part
//! files sweep also writes dead letters (damaged input) under checkpoints.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::ExitStatus;
use std::time::{Duration, Instant};

use common::{assert_same, checkpoint_args, committed_to_files, write_events_at, Output};
use weir::log::{LogConfig, RecordRef, Topic, ValueFormat};
use weir::{EventTime, CRASH_POINTS};

const EVENTS: u64 = 40_000;
/// Events per second per worker: a run lasts about half a second, ten checkpoints.
const RATE_PER_WORKER: u64 = 40_000;
const CHECKPOINT_INTERVAL: &str = "50ms";
/// The longest a single run may take before the test calls it hung.
const RUN_DEADLINE: Duration = Duration::from_secs(60);
/// Records of the input that do not decode: they go to the dead-letter output.
const DAMAGED: usize = 5;

/// Environment variables of a run.
type Env = Vec<(&'static str, String)>;

/// Arms the crash point `point` to kill the process the `n`-th time it passes it.
fn crash_at(point: &'static str, n: usize) -> Env {
    vec![
        ("WEIR_CRASH_POINT", point.into()),
        ("WEIR_CRASH_AT", n.to_string()),
    ]
}

/// One sweep: a query, an output, and the crash points it must reach.
#[derive(Clone, Copy)]
struct Sweep {
    query: &'static str,
    output: Output,
    /// Count and kill only these points (all when empty).
    only: &'static [&'static str],
    /// Which of the engine's crash points the output reaches: every one of them must be
    /// killed at least once.
    reaches: fn(&str) -> bool,
    /// Also write dead letters under checkpoints.
    dead_letters: bool,
    /// Events per second of event time in the input.
    event_rate: u64,
}

/// The arguments of a run writing to `out`, checkpointing into `checkpoints`.
fn run_args(sweep: &Sweep, out: &str, checkpoints: Option<&str>, workers: usize) -> Vec<String> {
    let mut args: Vec<String> = [
        "nexmark",
        "run",
        "--query",
        sweep.query,
        "--from",
        "log:events",
        "--out",
        out,
        "--no-progress",
        "--workers",
    ]
    .map(String::from)
    .to_vec();
    args.push(workers.to_string());
    match (sweep.dead_letters, checkpoints) {
        (false, _) => args.push("--fail-fast".into()),
        (true, Some(dir)) => args.extend(["--dead-letters".into(), format!("{dir}-dead-letters")]),
        (true, None) => args.extend(["--dead-letters".into(), "reference-dead-letters".into()]),
    }
    if let Some(dir) = checkpoints {
        args.extend(checkpoint_args(dir, CHECKPOINT_INTERVAL, RATE_PER_WORKER));
    }
    args
}

/// Runs `weir` to its end (or its death) within the deadline; returns how it ended and what
/// it printed on standard error.
fn run(dir: &Path, args: &[String], env: &[(&str, String)]) -> (ExitStatus, String) {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_weir"));
    command
        .args(args)
        .current_dir(dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    for (name, value) in env {
        command.env(name, value);
    }
    let mut child = command.spawn().unwrap();
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > RUN_DEADLINE {
            child.kill().unwrap();
            child.wait().unwrap();
            panic!("weir {} hung for {RUN_DEADLINE:?}", args.join(" "));
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    (status, stderr)
}

/// The crash point a run was killed at, from its last words.
fn killed_at(stderr: &str) -> Option<String> {
    stderr.lines().find_map(|line| {
        line.strip_prefix("weir: crash point ")
            .and_then(|rest| rest.split(' ').next())
            .map(str::to_owned)
    })
}

/// The input: a 4-partition topic of Nexmark events, with damaged records in partition 1
/// when the sweep writes dead letters.
fn write_input(dir: &Path, damaged: bool, rate: u64) {
    let topic = write_events_at(dir, EVENTS, rate);
    if damaged {
        let mut writer = topic.writer(1).unwrap();
        for _ in 0..DAMAGED {
            writer
                .append(&RecordRef {
                    value: b"\xff not an event",
                    timestamp: EventTime(1),
                    ..RecordRef::default()
                })
                .unwrap();
        }
        writer.flush().unwrap();
    }
}

/// What a run committed: its results, and its dead letters if the sweep writes them.
fn committed(
    sweep: &Sweep,
    dir: &Path,
    out: &str,
    dead_letters: &str,
) -> Vec<BTreeMap<String, usize>> {
    let mut outputs = vec![sweep.output.committed(&dir.join(out))];
    if sweep.dead_letters {
        let path = dir.join(dead_letters);
        outputs.push(if path.is_dir() {
            committed_to_files(&path)
        } else {
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            let mut lines = BTreeMap::new();
            for line in text.lines() {
                *lines.entry(line.to_owned()).or_insert(0) += 1;
            }
            lines
        });
    }
    outputs
}

fn sweep(sweep: &Sweep) {
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    write_input(dir.path(), sweep.dead_letters, sweep.event_rate);
    // Without checkpoints a file output is one file: the reference writes a topic.
    let reference = Sweep {
        output: match sweep.output {
            Output::Files | Output::Partitions => Output::Log,
            output => output,
        },
        ..*sweep
    };
    let mut reference_args = run_args(&reference, &reference.output.location("reference"), None, 2);
    reference_args.extend(reference.output.args());
    let (status, stderr) = run(dir.path(), &reference_args, &[]);
    assert!(status.success(), "the reference run failed: {stderr}");
    let expected = committed(
        &reference,
        dir.path(),
        "reference",
        "reference-dead-letters",
    );
    assert!(
        !expected[0].is_empty(),
        "{} produced no results",
        sweep.query
    );
    if sweep.dead_letters {
        assert_eq!(
            expected[1].len(),
            DAMAGED,
            "dead letters of the reference run"
        );
    }

    // A run without a crash, recording the points it passes.
    let log = dir.path().join("points.log");
    let only = sweep.only.join(",");
    let mut env = vec![("WEIR_CRASH_LOG", log.display().to_string())];
    if !only.is_empty() {
        env.push(("WEIR_CRASH_POINT", only.clone()));
    }
    let (status, stderr) = run(
        dir.path(),
        &run_args(
            sweep,
            &sweep.output.location("recorded"),
            Some("recorded"),
            2,
        ),
        &env,
    );
    assert!(status.success(), "the recording run failed: {stderr}");
    // Each kill names its point and which hit of it, so that a run faster or slower than the
    // recording one still dies at every point (the N-th point of all would drift with timing).
    let recorded = std::fs::read_to_string(&log).unwrap();
    let mut hits: BTreeMap<&str, usize> = BTreeMap::new();
    let kills: Vec<(&str, usize)> = recorded
        .lines()
        .map(|name| {
            let hit = hits.entry(name).or_insert(0);
            *hit += 1;
            (name, *hit)
        })
        .collect();
    let points = kills.len();
    assert!(points > 0, "the run passed no crash point");

    let mut reached = BTreeSet::new();
    for (n, (point, hit)) in (1..).zip(kills) {
        let (out, checkpoints) = (format!("out-{n}"), format!("checkpoints-{n}"));
        if matches!(sweep.output, Output::Log | Output::Changelog) {
            // Four partitions of small segments: commits cross segment rolls.
            let config = LogConfig {
                segment_bytes: 4096,
                ..LogConfig::default()
            };
            Topic::create(dir.path().join(&out), 4, ValueFormat::Json, config).unwrap();
        }
        let location = sweep.output.location(&out);
        let mut args = run_args(sweep, &location, Some(&checkpoints), 2);
        args.extend(sweep.output.args());
        let env = [
            ("WEIR_CRASH_POINT", point.to_owned()),
            ("WEIR_CRASH_AT", hit.to_string()),
        ];
        let (status, stderr) = run(dir.path(), &args, &env);
        if status.signal() == Some(9) {
            reached.extend(killed_at(&stderr));
        } else {
            // This run passed fewer points than the recorded one: it ran to its end.
            assert!(status.success(), "point {n}: the run failed: {stderr}");
        }
        // Restore until a run ends by itself: on 2, 1 or 3 workers, some with RocksDB, some
        // killed in their own clean-up first.
        let mut restores = 0;
        while !status.success() {
            restores += 1;
            assert!(restores <= 5, "point {n}: no restore ran to its end");
            let workers = [2, 1, 3][n % 3];
            let mut restore_args = run_args(sweep, &location, Some(&checkpoints), workers);
            restore_args.extend(sweep.output.args());
            restore_args.extend(["--restore".into(), "latest".into()]);
            if n % 4 == 0 {
                restore_args.extend(["--rocksdb-budget-mib".into(), "1".into()]);
            }
            let env = if restores == 1 && n % 2 == 1 {
                crash_at("restore.cleanup", 1)
            } else {
                Vec::new()
            };
            let (restored, stderr) = run(dir.path(), &restore_args, &env);
            if restored.signal() == Some(9) {
                reached.extend(killed_at(&stderr));
                continue;
            }
            assert!(
                restored.success(),
                "point {n}: the restore failed: {stderr}"
            );
            break;
        }
        let actual = committed(
            sweep,
            dir.path(),
            &out,
            &format!("{checkpoints}-dead-letters"),
        );
        for (expected, actual) in expected.iter().zip(&actual) {
            let what = format!("{}: killed at point {n} of {points}", sweep.query);
            assert_same(expected, actual, &what);
        }
        // Keep the disk use of a long sweep small.
        for leftover in [&out, &checkpoints] {
            let _ = std::fs::remove_dir_all(dir.path().join(leftover));
        }
        let _ = std::fs::remove_dir_all(dir.path().join(format!("{checkpoints}-state")));
    }
    let missed: Vec<_> = CRASH_POINTS
        .iter()
        .filter(|point| (sweep.reaches)(point) && !reached.contains(**point))
        .collect();
    assert!(
        missed.is_empty(),
        "the sweep never killed at {missed:?} (killed at {reached:?})"
    );
    println!(
        "{}: {points} crash points, each killed, restored and compared, in {:.0?}; killed at {reached:?}",
        sweep.query,
        started.elapsed()
    );
}

#[test]
fn every_crash_point_into_a_topic_loses_and_repeats_nothing() {
    sweep(&Sweep {
        query: "q5",
        output: Output::Log,
        only: &[],
        // Every point but the file and Kafka sinks' (cli/tests/kafka.rs kills those) and
        // compaction's (cli/tests/compaction_kills.rs).
        reaches: |point| {
            !point.starts_with("file_sink.")
                && !point.starts_with("kafka_sink.")
                && !point.starts_with("compaction.")
        },
        dead_letters: false,
        event_rate: 2_000,
    });
}

/// The steps of committing part files.
const FILE_COMMIT_POINTS: &[&str] = &["file_sink.prepared", "file_sink.published", "sink.commit"];

#[test]
fn every_commit_step_of_part_files_and_dead_letters_loses_and_repeats_nothing() {
    sweep(&Sweep {
        query: "q5",
        output: Output::Files,
        only: FILE_COMMIT_POINTS,
        reaches: |point| FILE_COMMIT_POINTS.contains(&point) || point == "restore.cleanup",
        dead_letters: true,
        event_rate: 2_000,
    });
}

/// q10 writes its bids into a partition per hour of event time: four events a second spread
/// the input over three hours, so partitions appear while the run goes on, and a commit
/// publishes the parts of several.
#[test]
fn every_commit_step_of_partitioned_files_loses_and_repeats_nothing() {
    sweep(&Sweep {
        query: "q10",
        output: Output::Partitions,
        only: FILE_COMMIT_POINTS,
        reaches: |point| FILE_COMMIT_POINTS.contains(&point) || point == "restore.cleanup",
        dead_letters: false,
        event_rate: 4,
    });
}

/// The input, and the output of q5 into a topic without failures, for the tests that kill
/// runs at chosen points rather than at every one.
fn q5_into_a_topic() -> (tempfile::TempDir, Sweep, Vec<BTreeMap<String, usize>>) {
    let sweep = Sweep {
        query: "q5",
        output: Output::Log,
        only: &[],
        reaches: |_| false,
        dead_letters: false,
        event_rate: 2_000,
    };
    let dir = tempfile::tempdir().unwrap();
    write_input(dir.path(), false, sweep.event_rate);
    let (status, stderr) = run(dir.path(), &run_args(&sweep, "log:reference", None, 2), &[]);
    assert!(status.success(), "the reference run failed: {stderr}");
    let expected = committed(&sweep, dir.path(), "reference", "");
    (dir, sweep, expected)
}

/// Two free ports in a row on loopback, for a job of two processes.
fn free_ports() -> u16 {
    loop {
        let first = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        if first < u16::MAX && std::net::TcpListener::bind(("127.0.0.1", first + 1)).is_ok() {
            return first;
        }
    }
}

/// Starts both processes of a two-process job (two workers each); `crash` arms crash points
/// in one of them.
fn start_pair(
    dir: &Path,
    args: &[String],
    crash: Option<(usize, &[(&str, String)])>,
) -> Vec<std::process::Child> {
    let port = free_ports();
    (0..2)
        .map(|process| {
            let env = crash
                .filter(|(victim, _)| *victim == process)
                .map_or(&[][..], |(_, env)| env);
            start_process(dir, args, port, process, env)
        })
        .collect()
}

/// Starts process `process` of a job of two processes listening from `port`.
fn start_process(
    dir: &Path,
    args: &[String],
    port: u16,
    process: usize,
    env: &[(&str, String)],
) -> std::process::Child {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_weir"));
    command
        .args(args)
        .args(["--processes", "2", "--port", &port.to_string(), "--process"])
        .arg(process.to_string())
        .current_dir(dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .envs(env.iter().map(|(name, value)| (name, value)));
    command.spawn().unwrap()
}

/// Waits for every process of a job within the deadline; returns how each ended and what it
/// printed.
fn wait_all(children: Vec<std::process::Child>) -> Vec<(ExitStatus, String)> {
    let started = Instant::now();
    let mut children: Vec<_> = children.into_iter().map(|child| (child, None)).collect();
    while children.iter().any(|(_, status)| status.is_none()) {
        for (child, status) in &mut children {
            if status.is_none() {
                *status = child.try_wait().unwrap();
            }
        }
        if started.elapsed() > RUN_DEADLINE {
            for (child, _) in &mut children {
                let _ = child.kill();
            }
            panic!("a process of the job hung for {RUN_DEADLINE:?}");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    children
        .into_iter()
        .map(|(mut child, status)| {
            let mut stderr = String::new();
            std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
            (status.unwrap(), stderr)
        })
        .collect()
}

#[test]
fn a_job_of_two_processes_fails_as_one_and_restores_exactly_once() {
    let (dir, sweep, expected) = q5_into_a_topic();
    // Process 1 dies at a checkpoint step, process 0 (which commits the topic) at a commit
    // step, then both at once (killed from outside).
    let cases = [
        (
            "worker manifest",
            Some((1, crash_at("checkpoint.worker_manifest", 3))),
        ),
        // The first commit that appends records: how many epochs have any (q5's windows
        // close in bursts) varies with the machine's pace, and a run that ended before its
        // third such commit failed the test under load.
        ("commit", Some((0, crash_at("log_sink.commit_marked", 1)))),
        ("both", None),
    ];
    for (round, (case, crash)) in cases.into_iter().enumerate() {
        let (out, checkpoints) = (format!("out-{round}"), format!("checkpoints-{round}"));
        // Created here: both processes would otherwise race to create it.
        Topic::create(
            dir.path().join(&out),
            1,
            ValueFormat::Json,
            LogConfig::default(),
        )
        .unwrap();
        let args = run_args(&sweep, &format!("log:{out}"), Some(&checkpoints), 2);
        let started = Instant::now();
        match crash {
            Some((victim, env)) => {
                let ended = wait_all(start_pair(dir.path(), &args, Some((victim, &env[..]))));
                let (killed, survivor) = (&ended[victim], &ended[1 - victim]);
                assert_eq!(killed.0.signal(), Some(9), "{case}: {}", killed.1);
                assert_survivor_ended_clearly(case, survivor);
            }
            None => {
                let mut children = start_pair(dir.path(), &args, None);
                std::thread::sleep(Duration::from_millis(400));
                for child in &mut children {
                    child.kill().unwrap();
                }
                wait_all(children);
            }
        }
        println!(
            "two processes, {case}: the job ended on both in {:.1?}",
            started.elapsed()
        );
        let mut restore_args = args.clone();
        restore_args.extend(["--restore".into(), "latest".into()]);
        for (status, stderr) in wait_all(start_pair(dir.path(), &restore_args, None)) {
            assert!(status.success(), "{case}: the restore failed: {stderr}");
        }
        let actual = committed(&sweep, dir.path(), &out, "");
        assert_eq!(actual, expected, "{case}: the committed output differs");
    }
}

/// The process that outlived its killed peer failed, naming the lost process, without a panic.
fn assert_survivor_ended_clearly(case: &str, survivor: &(std::process::ExitStatus, String)) {
    assert!(
        !survivor.0.success() && survivor.1.contains("lost process"),
        "{case}: the other process should fail, naming the lost one: {}",
        survivor.1
    );
    assert!(
        !survivor.1.contains("panicked") && !survivor.1.contains("RUST_BACKTRACE"),
        "{case}: the other process panicked: {}",
        survivor.1
    );
}

/// A process that restarts itself (`--max-restarts`) outlives the loss of its peer: it
/// restores the latest checkpoint and waits in its launch until the peer is started again
/// (here with `--restore latest`); the job then ends on both with exactly the output of an
/// undisturbed run.
#[test]
fn a_process_that_restarts_itself_waits_for_its_lost_peer() {
    let (dir, sweep, expected) = q5_into_a_topic();
    Topic::create(
        dir.path().join("out"),
        1,
        ValueFormat::Json,
        LogConfig::default(),
    )
    .unwrap();
    let args = run_args(&sweep, "log:out", Some("checkpoints"), 2);
    let mut restarting = args.clone();
    restarting.extend(["--max-restarts".into(), "2".into()]);
    let port = free_ports();
    let survivor = start_process(dir.path(), &restarting, port, 0, &[]);
    let victim = start_process(
        dir.path(),
        &args,
        port,
        1,
        &crash_at("checkpoint.worker_manifest", 3),
    );
    let (status, stderr) = wait_all(vec![victim]).remove(0);
    assert_eq!(status.signal(), Some(9), "{stderr}");
    let mut again = args.clone();
    again.extend(["--restore".into(), "latest".into()]);
    let peer = start_process(dir.path(), &again, port, 1, &[]);
    let ended = wait_all(vec![survivor, peer]);
    for (status, stderr) in &ended {
        assert!(status.success(), "{stderr}");
        assert!(!stderr.contains("panicked"), "a process panicked: {stderr}");
    }
    assert!(
        ended[0].1.contains("lost process 1") && ended[0].1.contains("restarting"),
        "process 0 should say it lost process 1 and restarted: {}",
        ended[0].1
    );
    assert_eq!(committed(&sweep, dir.path(), "out", ""), expected);
}

/// Savepoint, restore, kill, restore latest: the scenario that once started over silently
/// and wrote its output twice. Every run but the last dies at a named step; the savepoint is
/// taken after the first, the third run restores it and dies before its own first
/// checkpoint, and the last restores "latest": that must be the savepoint again, with the
/// topic cut back to what the savepoint had committed.
#[test]
fn a_restored_savepoint_survives_a_failure_before_the_next_checkpoint() {
    let (dir, sweep, expected) = q5_into_a_topic();
    let mut args = run_args(&sweep, "log:out", Some("checkpoints"), 2);
    // Only the newest checkpoint is kept: nothing older than the savepoint survives.
    args.extend(["--retain-checkpoints".into(), "1".into()]);
    let restore = |from: &str| {
        let mut restored = args.clone();
        restored.extend(["--restore".into(), from.into()]);
        restored
    };
    // Results come once the first windows close, about halfway through the input: the first
    // run dies after some are committed, the second commits more before it dies.
    let steps: [(Vec<String>, Env); 3] = [
        (args.clone(), crash_at("log_sink.commit_appended", 2)),
        (restore("latest"), crash_at("log_sink.commit_appended", 2)),
        (
            restore("checkpoints/savepoints/keep"),
            crash_at("checkpoint.state", 1),
        ),
    ];
    let mut rows = 0;
    for (number, (step, env)) in steps.iter().enumerate() {
        let (status, stderr) = run(dir.path(), step, env);
        assert_eq!(
            status.signal(),
            Some(9),
            "run {number} was meant to die: {stderr}"
        );
        let committed: usize = committed(&sweep, dir.path(), "out", "")[0].values().sum();
        assert!(
            number == 2 || committed > rows,
            "run {number} was meant to commit results"
        );
        rows = committed;
        if number == 0 {
            let (status, stderr) = run(
                dir.path(),
                &["checkpoints", "savepoint", "checkpoints", "--name", "keep"].map(String::from),
                &[],
            );
            assert!(status.success(), "savepoint: {stderr}");
        }
    }
    let (status, stderr) = run(dir.path(), &restore("latest"), &[]);
    assert!(status.success(), "the last restore failed: {stderr}");
    assert_eq!(committed(&sweep, dir.path(), "out", ""), expected);
}
