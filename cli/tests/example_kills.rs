//! The exactly-once kill test of the example jobs: `weir example run NAME` reads its sample
//! input from a topic and writes its results and late records to topics with checkpoints;
//! the test kills it with SIGKILL at random moments, restarts it with `--restore latest`, and
//! when a run ends on its own checks what it committed: nothing missing, nothing twice.
//!
//! Which records are late depends on when the watermark moved, which differs from run to
//! run. So the examples whose results do not depend on it (word-count, latest-state, orders)
//! are compared with a run without kills, and the others are checked against their input
//! and their own committed late records: every word, view or reading is counted in exactly
//! one committed result or is a committed late record, and fraud alerts are the rule applied
//! to the input less its late records.
//!
//! `WEIR_KILL_POINTS` sets the number of kills per example (default 10), `WEIR_KILL_SEED` the
//! seed of the kill moments (printed on failure).
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashMap;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::time::Duration;

use serde::de::DeserializeOwned;
use weir::log::{Cleanup, LogConfig, Topic, ValueFormat};
use weir_examples::fraud::{judge_all, Alert, Transaction};
use weir_examples::latest_state::{read_table, reference_table, well_formed, ChangeEvent};
use weir_examples::sensors::{in_range, Reading, Rollup};
use weir_examples::sessions::{PageView, Session};
use weir_examples::word_count::{words, Message, WindowedCount, Word};
use weir_examples::{example, SampleLine};

use common::{
    applied_in_order, assert_same, checkpoint_args, committed_to_topic, kill_points, kill_seed,
    run_with_kills, run_within, wait_success, weir, Moments,
};

/// The longest one run may take.
const RUN_DEADLINE: Duration = Duration::from_secs(60);

/// Records of sample input, and the pace each of the two workers reads them at: a run lasts
/// about two seconds.
const RECORDS: u64 = 20_000;
const RATE_PER_WORKER: u64 = 5_000;
const SEED: u64 = 11;

fn run_args(name: &str, out: &str, changelog: bool) -> Vec<String> {
    let mut args: Vec<String> = [
        "example",
        "run",
        name,
        "--from",
        "log:input",
        "--workers",
        "2",
        "--out",
        &format!("log:{out}"),
        "--late",
        &format!("log:{out}-late"),
        "--dead-letters",
        &format!("log:{out}-dead"),
    ]
    .map(String::from)
    .to_vec();
    if changelog {
        args.push("--changelog".into());
    }
    args
}

/// Writes the example's sample input to `dir/input`, and returns it.
fn write_input(dir: &Path, name: &str) -> Vec<SampleLine> {
    let args = [
        "example",
        "data",
        name,
        "--out",
        "log:input",
        "--records",
        &RECORDS.to_string(),
        "--seed",
        &SEED.to_string(),
        "--partitions",
        "2",
    ]
    .map(String::from);
    wait_success(weir(dir, &args), "example data");
    (example(name).unwrap().sample)(SEED, RECORDS)
}

/// Runs example `name` with kills until `kill_points()` kills have landed, over as many
/// rounds as it takes; calls `check` with the output directory of each round.
fn kill_test(name: &str, changelog: bool, check: impl Fn(&Path, &str)) {
    let (points, seed) = (kill_points(), kill_seed());
    println!("{name}: kill seed {seed} (rerun with WEIR_KILL_SEED={seed})");
    let dir = tempfile::tempdir().unwrap();
    write_input(dir.path(), name);
    let mut moments = Moments(seed);
    let (mut done, mut round) = (0, 0);
    while done < points {
        let out = format!("out-{round}");
        let mut args = run_args(name, &out, changelog);
        let checkpoints = format!("checkpoints-{round}");
        args.extend(checkpoint_args(&checkpoints, "100ms", RATE_PER_WORKER));
        let window = Duration::from_millis(2_500);
        let kills = run_with_kills(dir.path(), args, points - done, &mut moments, window, name);
        check(dir.path(), &out);
        println!("{name}: round {round}: {kills} kills, output as expected");
        done += kills;
        round += 1;
        assert!(
            round <= points + 5,
            "{name}: runs keep finishing before their kill"
        );
    }
}

/// Kill test of an example whose committed results equal a run's without kills.
fn same_as_without_kills(name: &str, changelog: bool) {
    let committed = |dir: &Path| match changelog {
        true => applied_in_order(dir),
        false => committed_to_topic(dir),
    };
    let reference = tempfile::tempdir().unwrap();
    write_input(reference.path(), name);
    let mut args = run_args(name, "reference", changelog);
    args.extend(["--max-rate".into(), RATE_PER_WORKER.to_string()]);
    wait_success(weir(reference.path(), &args), "the reference run");
    let expected = committed(&reference.path().join("reference"));
    assert!(!expected.is_empty(), "{name} produced no results");
    kill_test(name, changelog, |dir, out| {
        assert_same(&expected, &committed(&dir.join(out)), name);
    });
}

/// Every record committed to the topic `dir`, decoded, as often as committed.
fn committed<T: DeserializeOwned>(dir: &Path) -> Vec<T> {
    committed_to_topic(dir)
        .into_iter()
        .flat_map(|(value, count)| {
            let record: serde_json::Value = serde_json::from_str(&value).unwrap();
            std::iter::repeat_n(record, count)
        })
        .map(|value| serde_json::from_value(value).unwrap())
        .collect()
}

/// The sample's records that decode as `T` and pass `valid`.
fn valid<T: DeserializeOwned>(
    sample: &[SampleLine],
    valid: fn(&T) -> Result<(), String>,
) -> Vec<T> {
    sample
        .iter()
        .filter_map(|line| serde_json::from_str::<T>(&line.text).ok())
        .filter(|record| valid(record).is_ok())
        .collect()
}

fn accept<T>(_: &T) -> Result<(), String> {
    Ok(())
}

#[test]
fn word_count_survives_kills_exactly_once() {
    same_as_without_kills("word-count", true);
}

#[test]
fn latest_state_survives_kills_exactly_once() {
    same_as_without_kills("latest-state", true);
}

/// The latest-state job upserting into a compacted topic whose small segments make its
/// writer compact while the job commits, killed at the N-th pass of each step where a commit
/// is cut short (the restore rewinds the topic to the last commit and commits again), then
/// restored: read from the start, the topic is the current table.
#[test]
fn latest_state_upserts_into_a_compacted_topic_survive_kills_at_commit_steps() {
    let dir = tempfile::tempdir().unwrap();
    let sample = write_input(dir.path(), "latest-state");
    let expected = reference_table(&valid::<ChangeEvent>(&sample, well_formed));
    let mut kills = 0;
    for point in [
        "log_sink.commit_marked",
        "log_sink.commit_appended",
        "sink.commit",
        "checkpoint.job_manifest",
    ] {
        for n in [3, 8] {
            let out = format!("table-{}-{n}", point.replace('.', "-"));
            let config = LogConfig {
                segment_bytes: 2_048,
                cleanup: Cleanup::Compact,
                ..LogConfig::default()
            };
            Topic::create(dir.path().join(&out), 2, ValueFormat::Json, config).unwrap();
            let mut args = run_args("latest-state", &out, false);
            args.extend(checkpoint_args(
                &format!("{out}-checkpoints"),
                "100ms",
                RATE_PER_WORKER,
            ));
            let what = format!("latest-state killed at {point} #{n}");
            let n = n.to_string();
            let env = [("WEIR_CRASH_POINT", point), ("WEIR_CRASH_AT", n.as_str())];
            let (status, stderr) = run_within(dir.path(), &args, &env, RUN_DEADLINE, &what);
            if !status.success() {
                assert_eq!(status.signal(), Some(9), "{what}: {stderr}");
                kills += 1;
                args.extend(["--restore".into(), "latest".into()]);
                let (status, stderr) = run_within(dir.path(), &args, &[], RUN_DEADLINE, &what);
                assert!(status.success(), "the restore after {what}: {stderr}");
            }
            let table = read_table(&Topic::open(dir.path().join(&out)).unwrap()).unwrap();
            assert_eq!(table.len(), expected.len(), "{what}");
            assert!(
                table == expected,
                "{what}: the table differs from the reference"
            );
        }
    }
    assert!(kills >= 6, "only {kills} runs were killed");
}

#[test]
fn orders_survive_kills_charged_exactly_once() {
    same_as_without_kills("orders", false);
}

#[test]
fn windowed_word_count_survives_kills_counting_every_word_once() {
    let sample = (example("word-count-windowed").unwrap().sample)(SEED, RECORDS);
    let words_in: usize = valid::<Message>(&sample, accept)
        .iter()
        .map(|message| words(&message.text).count())
        .sum();
    kill_test("word-count-windowed", false, |dir, out| {
        let counts: Vec<WindowedCount> = committed(&dir.join(out));
        let late: Vec<Word> = committed(&dir.join(format!("{out}-late")));
        let counted: u64 = counts.iter().map(|row| row.count).sum();
        assert_eq!(counted as usize + late.len(), words_in, "{out}");
    });
}

#[test]
fn sessions_survive_kills_counting_every_view_once() {
    let sample = (example("sessions").unwrap().sample)(SEED, RECORDS);
    let views = valid::<PageView>(&sample, accept).len();
    kill_test("sessions", false, |dir, out| {
        let sessions: Vec<Session> = committed(&dir.join(out));
        let late: Vec<PageView> = committed(&dir.join(format!("{out}-late")));
        let counted: u64 = sessions.iter().map(|session| session.pages).sum();
        assert_eq!(counted as usize + late.len(), views, "{out}");
    });
}

#[test]
fn sensor_rollups_survive_kills_counting_every_reading_once() {
    let sample = (example("sensors").unwrap().sample)(SEED, RECORDS);
    let readings = valid::<Reading>(&sample, in_range).len();
    kill_test("sensors", false, |dir, out| {
        let rollups: Vec<Rollup> = committed(&dir.join(out));
        let late: Vec<Reading> = committed(&dir.join(format!("{out}-late")));
        // Each minute's newest rollup (updates only add readings) counts its readings; a
        // rollup committed twice shows as two equal ones.
        let mut newest: HashMap<(String, u64), u64> = HashMap::new();
        let mut seen = HashMap::new();
        for rollup in &rollups {
            let key = (rollup.device.clone(), rollup.start.millis());
            let twice = seen.insert((key.clone(), rollup.readings), ()).is_some();
            assert!(!twice, "{out}: a rollup committed twice: {rollup:?}");
            let kept = newest.entry(key).or_default();
            *kept = (*kept).max(rollup.readings);
        }
        let counted: u64 = newest.values().sum();
        assert_eq!(counted as usize + late.len(), readings, "{out}");
    });
}

#[test]
fn fraud_alerts_survive_kills_exactly_once() {
    let sample = (example("fraud").unwrap().sample)(SEED, RECORDS);
    let transactions = valid::<Transaction>(&sample, accept);
    kill_test("fraud", false, |dir, out| {
        let mut alerts: Vec<Alert> = committed(&dir.join(out));
        let late: Vec<Transaction> = committed(&dir.join(format!("{out}-late")));
        let mut on_time = transactions.clone();
        for transaction in &late {
            let at = on_time.iter().position(|t| t == transaction).unwrap();
            on_time.swap_remove(at);
        }
        let mut expected = judge_all(on_time);
        let order = |alert: &Alert| (alert.card.clone(), alert.large_at);
        alerts.sort_by_key(order);
        expected.sort_by_key(order);
        assert!(!expected.is_empty());
        assert_eq!(alerts, expected, "{out}");
    });
}
