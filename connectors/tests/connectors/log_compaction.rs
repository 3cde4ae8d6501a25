//! Compacted topics: read from the start, a partition gives the newest value of every key
//! however many compactions ran, and while they run; tombstones delete and, once past their
//! retention, go; records without keys are refused.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use weir_connectors::log::{Cleanup, LogConfig, RecordRef, RecordView, Topic, ValueFormat};
use weir_engine::EventTime;

fn compacted(segment_bytes: u64, tombstone_retention_ms: u64) -> LogConfig {
    LogConfig {
        segment_bytes,
        index_interval_bytes: 64,
        cleanup: Cleanup::Compact,
        tombstone_retention_ms,
        ..LogConfig::default()
    }
}

fn new_topic(config: LogConfig) -> (tempfile::TempDir, Topic) {
    let dir = tempfile::tempdir().unwrap();
    let topic = Topic::create(dir.path().join("t"), 1, ValueFormat::Json, config).unwrap();
    (dir, topic)
}

/// One record as written: its key and its value (`None`: a tombstone).
type Written = (String, Option<String>);

fn append(writer: &mut weir_connectors::log::PartitionWriter, (key, value): &Written) -> u64 {
    writer
        .append(&RecordRef {
            key: key.as_bytes(),
            value: value.as_deref().unwrap_or_default().as_bytes(),
            timestamp: EventTime(0),
            headers: &[],
        })
        .unwrap()
}

/// The table the records make, applied in order: the newest value of each key, deleted keys
/// left out.
fn table<'a>(records: impl IntoIterator<Item = &'a Written>) -> BTreeMap<String, String> {
    let mut table = BTreeMap::new();
    for (key, value) in records {
        match value {
            Some(value) => table.insert(key.clone(), value.clone()),
            None => table.remove(key),
        };
    }
    table
}

/// A record read back: its offset, key and value (`None`: a tombstone).
fn written_at(record: RecordView<'_>) -> (u64, Written) {
    let value = String::from_utf8(record.value.to_vec()).unwrap();
    (
        record.offset,
        (
            String::from_utf8(record.key.to_vec()).unwrap(),
            (!value.is_empty()).then_some(value),
        ),
    )
}

/// Every record of partition 0 from the start, as (offset, key, value), checking that
/// offsets rise.
fn read_all(topic: &Topic) -> Vec<(u64, Written)> {
    let (_, end) = topic.offsets(0).unwrap();
    let mut reader = topic.reader(0, 0).unwrap();
    let mut records: Vec<(u64, Written)> = Vec::new();
    while reader.next_offset() < end {
        let read = reader
            .read(100, |record| records.push(written_at(record)))
            .unwrap();
        assert!(read > 0, "the reader stopped at {}", reader.next_offset());
    }
    assert!(records.windows(2).all(|pair| pair[0].0 < pair[1].0));
    records
}

/// Checks that `read` holds only records as they were written at their offsets and makes the
/// same table as everything written.
fn assert_same_table(read: &[(u64, Written)], written: &[Written]) {
    for (offset, record) in read {
        assert_eq!(&written[*offset as usize], record, "offset {offset}");
    }
    let (got, want) = (table(read.iter().map(|(_, record)| record)), table(written));
    let wrong: Vec<_> = want
        .keys()
        .chain(got.keys())
        .filter(|key| got.get(*key) != want.get(*key))
        .map(|key| (key, got.get(key), want.get(key)))
        .collect();
    assert!(
        wrong.is_empty(),
        "keys read wrong (key, read, written): {wrong:?}"
    );
}

fn record(key: u8, step: usize, delete: bool) -> Written {
    let value = format!(
        r#"{{"key":{key},"step":{step},"pad":"{}"}}"#,
        "p".repeat(step % 40)
    );
    (format!("key-{key}"), (!delete).then_some(value))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Writes, deletes and compactions in any order: the compacted partition read from the
    /// start gives the table of everything written, holds each record as written, and a
    /// compaction of an unchanged partition changes nothing a reader sees.
    #[test]
    fn a_compacted_partition_read_from_the_start_is_the_table_of_everything_written(
        steps in prop::collection::vec((0u8..12, prop::bool::weighted(0.15), prop::bool::weighted(0.1)), 1..400),
        segment_bytes in 200u64..2_000,
    ) {
        let (_dir, topic) = new_topic(compacted(segment_bytes, 24 * 60 * 60 * 1000));
        let mut writer = topic.writer(0).unwrap();
        let mut written = Vec::new();
        for (step, &(key, delete, compact)) in steps.iter().enumerate() {
            let record = record(key, step, delete);
            prop_assert_eq!(append(&mut writer, &record), step as u64);
            written.push(record);
            if compact {
                writer.flush().unwrap();
                topic.compact().unwrap();
                assert_same_table(&read_all(&topic), &written);
            }
        }
        writer.flush().unwrap();
        topic.compact().unwrap();
        let once = read_all(&topic);
        assert_same_table(&once, &written);
        topic.compact().unwrap();
        prop_assert_eq!(read_all(&topic), once);
    }
}

#[test]
fn compaction_keeps_one_record_per_key_in_closed_segments() {
    let (_dir, topic) = new_topic(compacted(512, 24 * 60 * 60 * 1000));
    let mut writer = topic.writer(0).unwrap();
    let written: Vec<Written> = (0..2_000)
        .map(|step| record((step % 7) as u8, step, false))
        .collect();
    for record in &written {
        append(&mut writer, record);
    }
    writer.flush().unwrap();
    topic.compact().unwrap();
    let read = read_all(&topic);
    assert_same_table(&read, &written);
    // Seven keys in the closed segments, plus the few records of a 512-byte active segment.
    assert!(read.len() <= 7 + 8, "{} records kept", read.len());
    let written_bytes: usize = written
        .iter()
        .map(|(key, value)| key.len() + value.as_ref().map_or(0, String::len))
        .sum();
    let description = topic.describe().unwrap().remove(0);
    assert_eq!(description.records, read.len() as u64);
    assert!(
        description.bytes < written_bytes as u64 / 20,
        "{description:?}"
    );
}

#[test]
fn tombstones_delete_and_go_once_past_their_retention() {
    for (retention_ms, tombstone_kept) in [(24 * 60 * 60 * 1000, true), (0, false)] {
        let (_dir, topic) = new_topic(compacted(256, retention_ms));
        let mut writer = topic.writer(0).unwrap();
        let mut written = vec![record(1, 0, false), record(2, 1, false), record(1, 2, true)];
        for record in &written {
            append(&mut writer, record);
        }
        // Enough of key 3 to close the tombstone's segment.
        for step in 3..40 {
            let record = record(3, step, false);
            append(&mut writer, &record);
            written.push(record);
        }
        writer.flush().unwrap();
        std::thread::sleep(Duration::from_millis(20));
        let report = topic.compact().unwrap().remove(0);
        let read = read_all(&topic);
        assert_same_table(&read, &written);
        let tombstones = read
            .iter()
            .filter(|(_, (_, value))| value.is_none())
            .count();
        // (The writer's own background pass may have removed it before this one.)
        assert_eq!(tombstones, usize::from(tombstone_kept), "{report:?}");
        assert!(read
            .iter()
            .all(|(_, (key, _))| key != "key-1" || tombstone_kept));
    }
}

#[test]
fn a_record_without_a_key_is_refused_by_a_compacted_topic() {
    let (_dir, topic) = new_topic(compacted(4096, 0));
    let mut producer = topic.producer().unwrap();
    let error = producer
        .send(&RecordRef {
            value: b"{}",
            ..RecordRef::default()
        })
        .unwrap_err()
        .to_string();
    assert!(error.contains("has no key"), "{error}");
}

#[test]
fn retention_by_size_or_age_is_refused_for_a_compacted_topic() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        retention_bytes: Some(1 << 20),
        ..compacted(4096, 0)
    };
    let error = Topic::create(dir.path().join("t"), 1, ValueFormat::Json, config)
        .unwrap_err()
        .to_string();
    assert!(error.contains("no retention"), "{error}");
}

/// A reader following the writer while the writer's background compactions and another
/// thread's compactions rewrite the segments under it: every record it reads is the one
/// written at its offset, offsets rise, and the table it builds is the table written.
#[test]
fn a_reader_following_the_writer_through_compactions_builds_the_table_written() {
    const RECORDS: usize = 30_000;
    let (_dir, topic) = new_topic(compacted(4_096, 24 * 60 * 60 * 1000));
    let written: Vec<Written> = (0..RECORDS)
        .map(|step| record((step * 7919 % 61) as u8, step, step % 13 == 0))
        .collect();
    let mut writer = topic.writer(0).unwrap();
    let to_write = written.clone();
    let writing = std::thread::spawn(move || {
        for (step, record) in to_write.iter().enumerate() {
            append(&mut writer, record);
            if step % 50 == 49 {
                writer.flush().unwrap();
            }
        }
        writer.flush().unwrap();
    });
    let done = Arc::new(AtomicBool::new(false));
    let compacting = {
        let (topic, done) = (Topic::open(topic.dir()).unwrap(), done.clone());
        std::thread::spawn(move || {
            let mut passes = 0;
            while !done.load(Ordering::Relaxed) {
                topic.compact().unwrap();
                passes += 1;
            }
            passes
        })
    };
    let mut reader = topic.reader(0, 0).unwrap();
    let mut read: Vec<(u64, Written)> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    while reader.next_offset() < RECORDS as u64 {
        assert!(
            Instant::now() < deadline,
            "stuck at {}",
            reader.next_offset()
        );
        reader
            .read(97, |record| read.push(written_at(record)))
            .unwrap_or_else(|error| panic!("at offset {}: {error}", reader.next_offset()));
    }
    writing.join().unwrap();
    done.store(true, Ordering::Relaxed);
    let passes = compacting.join().unwrap();
    assert!(passes > 0);
    assert!(read.windows(2).all(|pair| pair[0].0 < pair[1].0));
    assert_same_table(&read, &written);
    assert_same_table(&read_all(&topic), &written);
}

/// A reader part-way through the old segments when a compaction swaps them out (its open
/// file replaced, the files after it deleted) goes on in the compacted file: nothing it had
/// not read yet is lost, and nothing is read twice.
#[test]
fn a_reader_part_way_through_segments_that_a_compaction_replaces_misses_nothing() {
    let written: Vec<Written> = (0..3_000)
        .map(|step| record((step * 31 % 97) as u8, step, step % 11 == 0))
        .collect();
    for stop_after in [1, 40, 333, 900, 1_700, 2_500] {
        let (_dir, topic) = new_topic(compacted(1_024, 24 * 60 * 60 * 1000));
        {
            let mut writer = topic.writer(0).unwrap();
            for record in &written {
                append(&mut writer, record);
            }
            // Dropping the writer waits for its background compactions.
        }
        let mut reader = topic.reader(0, 0).unwrap();
        let mut read: Vec<(u64, Written)> = Vec::new();
        let mut take = |record: RecordView<'_>| read.push(written_at(record));
        reader.read(stop_after, &mut take).unwrap();
        // Rewrite every closed segment: a new key's value in each, then a pass.
        let mut more = written.clone();
        {
            let mut writer = topic.writer(0).unwrap();
            for step in 0..200 {
                let record = record(200 + (step % 3) as u8, 3_000 + step, false);
                append(&mut writer, &record);
                more.push(record);
            }
        }
        topic.compact().unwrap();
        let (_, end) = topic.offsets(0).unwrap();
        while reader.next_offset() < end {
            assert!(reader.read(53, &mut take).unwrap() > 0);
        }
        assert!(read.windows(2).all(|pair| pair[0].0 < pair[1].0));
        assert_same_table(&read, &more);
    }
}

/// A tombstone goes once past its retention although newer segments keep arriving and being
/// compacted after it (the file holding it is not merged with newer ones, whose time would
/// restart its retention).
#[test]
fn a_tombstone_goes_after_its_retention_while_writes_go_on() {
    let (_dir, topic) = new_topic(compacted(512, 150));
    let mut writer = topic.writer(0).unwrap();
    let mut written = vec![record(1, 0, false), record(1, 1, true)];
    for record in &written {
        append(&mut writer, record);
    }
    let started = Instant::now();
    let mut step = 2;
    while started.elapsed() < Duration::from_millis(600) {
        for _ in 0..20 {
            let record = record(2 + (step % 5) as u8, step, false);
            append(&mut writer, &record);
            written.push(record);
            step += 1;
        }
        writer.flush().unwrap();
        topic.compact().unwrap();
        std::thread::sleep(Duration::from_millis(20));
    }
    let read = read_all(&topic);
    assert_same_table(&read, &written);
    assert!(
        read.iter().all(|(_, (key, _))| key != "key-1"),
        "the tombstone of key-1 outlived its retention"
    );
}
