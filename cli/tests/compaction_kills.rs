//! Log compaction under SIGKILL: `weir log compact` is killed at the N-th pass of each named
//! step of a compaction (`compaction.*` in `weir_engine::CRASH_POINTS`), for every N a pass
//! reaches. Read from the start, the topic it leaves must give the same table as everything
//! written (a reader may come at any moment, before any repair), and so must the topic once a
//! second pass has finished the interrupted one, which leaves no compaction files behind.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::time::Duration;

use common::run_within;
use weir::log::{Cleanup, LogConfig, RecordRef, Topic, ValueFormat};
use weir::{EventTime, CRASH_POINTS};

const RECORDS: u64 = 6_000;
const KEYS: u64 = 90;
const PASS_DEADLINE: Duration = Duration::from_secs(60);

/// Key and value of the record written at step `step` (an empty value: a tombstone).
fn record(step: u64) -> (String, String) {
    let key = format!("sensor-{}", step * 7_919 % KEYS);
    let value = if step.is_multiple_of(17) {
        String::new()
    } else {
        format!(
            r#"{{"step":{step},"pad":"{}"}}"#,
            "x".repeat((step % 50) as usize)
        )
    };
    (key, value)
}

/// The table of everything written: each key's newest value, deleted keys left out.
fn reference() -> BTreeMap<String, String> {
    let mut table = BTreeMap::new();
    for step in 0..RECORDS {
        let (key, value) = record(step);
        if value.is_empty() {
            table.remove(&key);
        } else {
            table.insert(key, value);
        }
    }
    table
}

/// Writes every record to a two-partition topic in `dir`, then marks the topic compacted:
/// the writer compacts nothing in the background, so the pass under test has every segment
/// to compact.
fn write_topic(dir: &Path) {
    let config = LogConfig {
        segment_bytes: 2_048,
        index_interval_bytes: 128,
        ..LogConfig::default()
    };
    let topic = Topic::create(dir, 2, ValueFormat::Json, config).unwrap();
    let mut producer = topic.producer().unwrap();
    for step in 0..RECORDS {
        let (key, value) = record(step);
        producer
            .send(&RecordRef {
                key: key.as_bytes(),
                value: value.as_bytes(),
                timestamp: EventTime(step),
                headers: &[],
            })
            .unwrap();
    }
    producer.sync().unwrap();
    drop(producer);
    let metadata_path = dir.join("topic.json");
    let mut metadata: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&metadata_path).unwrap()).unwrap();
    metadata["log"]["cleanup"] = serde_json::to_value(Cleanup::Compact).unwrap();
    // Tombstones may go at once: reads here start after the pass.
    metadata["log"]["tombstone_retention_ms"] = 0.into();
    std::fs::write(&metadata_path, serde_json::to_vec(&metadata).unwrap()).unwrap();
}

/// The table the topic in `dir` gives when read from the start, checking offsets rise.
fn read_table(dir: &Path) -> BTreeMap<String, String> {
    let topic = Topic::open(dir).unwrap();
    let mut table = BTreeMap::new();
    for partition in 0..topic.partitions() {
        let (start, end) = topic.offsets(partition).unwrap();
        let mut reader = topic.reader(partition, start).unwrap();
        let mut last = None;
        while reader.next_offset() < end {
            let read = reader
                .read(256, |record| {
                    assert!(last < Some(record.offset), "offset {} twice", record.offset);
                    last = Some(record.offset);
                    let key = String::from_utf8(record.key.to_vec()).unwrap();
                    if record.value.is_empty() {
                        table.remove(&key);
                    } else {
                        table.insert(key, String::from_utf8(record.value.to_vec()).unwrap());
                    }
                })
                .unwrap();
            assert!(read > 0, "partition {partition} ends before offset {end}");
        }
    }
    table
}

/// Compaction files a pass leaves only when it is interrupted.
fn leftovers(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    for partition in std::fs::read_dir(dir).unwrap() {
        let partition = partition.unwrap().path();
        if !partition.is_dir() {
            continue;
        }
        for file in std::fs::read_dir(&partition).unwrap() {
            let name = file.unwrap().file_name().to_string_lossy().into_owned();
            if [".swap", ".cleaned", ".compacted"]
                .iter()
                .any(|suffix| name.ends_with(suffix))
            {
                found.push(name);
            }
        }
    }
    found
}

fn segment_count(dir: &Path) -> usize {
    Topic::open(dir)
        .unwrap()
        .describe()
        .unwrap()
        .iter()
        .map(|partition| partition.segments)
        .sum()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

fn compact(work: &Path, topic: &Path, env: &[(&str, &str)], what: &str) -> (bool, String) {
    let args = vec![
        "log".to_string(),
        "compact".to_string(),
        topic.display().to_string(),
    ];
    let (status, stderr) = run_within(work, &args, env, PASS_DEADLINE, what);
    if status.success() {
        return (true, stderr);
    }
    assert_eq!(status.signal(), Some(9), "{what} failed: {stderr}");
    (false, stderr)
}

#[test]
fn a_compaction_killed_at_any_step_loses_nothing_and_duplicates_nothing() {
    let work = tempfile::tempdir().unwrap();
    let original = work.path().join("original");
    write_topic(&original);
    let expected = reference();
    assert_eq!(read_table(&original), expected);
    let segments_before = segment_count(&original);

    let points = CRASH_POINTS
        .iter()
        .copied()
        .filter(|point| point.starts_with("compaction."));
    let mut kills = 0;
    for point in points {
        let mut n = 1;
        loop {
            let topic = work.path().join(format!("{point}-{n}"));
            copy_dir(&original, &topic);
            let what = format!("`weir log compact` killed at {point} #{n}");
            let n_text = n.to_string();
            let env = [
                ("WEIR_CRASH_POINT", point),
                ("WEIR_CRASH_AT", n_text.as_str()),
            ];
            let (finished, _) = compact(work.path(), &topic, &env, &what);
            if finished {
                // The pass passed this point fewer than n times.
                assert!(n > 1, "{point} was never reached");
                break;
            }
            kills += 1;
            assert_eq!(read_table(&topic), expected, "read after {what}");
            let (finished, stderr) = compact(work.path(), &topic, &[], "the pass after it");
            assert!(finished, "{stderr}");
            assert_eq!(read_table(&topic), expected, "read after {what} and a pass");
            assert_eq!(leftovers(&topic), Vec::<String>::new(), "after {what}");
            assert!(segment_count(&topic) < segments_before / 4);
            std::fs::remove_dir_all(&topic).unwrap();
            n += 1;
        }
    }
    assert!(kills >= 8, "only {kills} kills");
}
