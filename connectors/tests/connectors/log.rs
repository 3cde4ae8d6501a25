//! The embedded log end to end: round trips across segment rolls, crash repair, corruption
//! reports, retention and lookups by time.
#![allow(clippy::unwrap_used)]

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};

use weir_connectors::log::{LogConfig, RecordRef, Topic, ValueFormat};
use weir_connectors::ConnectorError;
use weir_engine::EventTime;

fn small_segments() -> LogConfig {
    LogConfig {
        segment_bytes: 4096,
        index_interval_bytes: 256,
        ..LogConfig::default()
    }
}

/// A JSON topic in a fresh temporary directory (kept alive by the returned guard).
fn new_topic(partitions: u32, config: LogConfig) -> (tempfile::TempDir, Topic) {
    let dir = tempfile::tempdir().unwrap();
    let topic = Topic::create(dir.path().join("t"), partitions, ValueFormat::Json, config).unwrap();
    (dir, topic)
}

fn value_of(partition: u32, number: u64) -> String {
    format!(
        "partition {partition} record {number} {}",
        "x".repeat((number % 50) as usize)
    )
}

/// Writes `count` records to every partition, record `n` with timestamp `n * 10`.
fn fill(topic: &Topic, count: u64) {
    for partition in 0..topic.partitions() {
        let mut writer = topic.writer(partition).unwrap();
        for number in 0..count {
            let value = value_of(partition, number);
            let key = number.to_le_bytes();
            let headers: &[(&str, &[u8])] = if number % 3 == 0 {
                &[("source", b"test")]
            } else {
                &[]
            };
            let offset = writer
                .append(&RecordRef {
                    key: &key,
                    value: value.as_bytes(),
                    timestamp: EventTime(number * 10),
                    headers,
                })
                .unwrap();
            assert_eq!(offset, number);
        }
        writer.sync().unwrap();
    }
}

fn read_all(topic: &Topic, partition: u32, from: u64) -> Vec<(u64, u64, String)> {
    let mut reader = topic.reader(partition, from).unwrap();
    let mut records = Vec::new();
    while reader
        .read(37, |record| {
            records.push((
                record.offset,
                record.timestamp.millis(),
                String::from_utf8(record.value.to_vec()).unwrap(),
            ))
        })
        .unwrap()
        > 0
    {}
    records
}

fn segment_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "log"))
        .collect();
    files.sort();
    files
}

#[test]
fn records_round_trip_across_partitions_and_segment_rolls_from_any_offset() {
    let (_dir, topic) = new_topic(5, small_segments());
    fill(&topic, 700);
    for partition in 0..5 {
        assert!(
            segment_files(&topic.partition_dir(partition)).len() > 5,
            "segments rolled"
        );
        assert_eq!(topic.offsets(partition).unwrap(), (0, 700));
        for from in [0, 1, 63, 64, 350, 699, 700] {
            let records = read_all(&topic, partition, from);
            let expected: Vec<_> = (from..700)
                .map(|number| (number, number * 10, value_of(partition, number)))
                .collect();
            assert_eq!(records, expected, "partition {partition} from {from}");
        }
    }
    // Headers come back as written.
    let mut reader = topic.reader(2, 3).unwrap();
    let mut headers = Vec::new();
    reader
        .read(1, |record| {
            headers = record
                .headers()
                .map(|(n, v)| (n.to_owned(), v.to_vec()))
                .collect()
        })
        .unwrap();
    assert_eq!(headers, vec![("source".to_owned(), b"test".to_vec())]);
    // Reopening the writer continues the offsets.
    let mut writer = topic.writer(0).unwrap();
    assert_eq!(
        writer
            .append(&RecordRef {
                value: b"more",
                ..RecordRef::default()
            })
            .unwrap(),
        700
    );
}

#[test]
fn a_reader_follows_its_writer_across_rolls() {
    let (_dir, topic) = new_topic(1, small_segments());
    let mut writer = topic.writer(0).unwrap();
    let mut reader = topic.reader(0, 0).unwrap();
    let mut seen = Vec::new();
    for round in 0..20u64 {
        for number in round * 30..(round + 1) * 30 {
            writer
                .append(&RecordRef {
                    value: value_of(0, number).as_bytes(),
                    ..RecordRef::default()
                })
                .unwrap();
        }
        writer.flush().unwrap();
        while reader
            .read(1000, |record| seen.push(record.offset))
            .unwrap()
            > 0
        {}
        assert_eq!(seen, (0..(round + 1) * 30).collect::<Vec<_>>());
    }
}

#[test]
fn a_torn_tail_is_cut_off_on_open() {
    let (_dir, topic) = new_topic(1, LogConfig::default());
    fill(&topic, 100);
    let segment = segment_files(&topic.partition_dir(0)).pop().unwrap();
    let len = std::fs::metadata(&segment).unwrap().len();
    // Cut the last record in half, as a crash in the middle of an append would.
    OpenOptions::new()
        .write(true)
        .open(&segment)
        .unwrap()
        .set_len(len - 20)
        .unwrap();
    let mut writer = topic.writer(0).unwrap();
    assert_eq!(writer.next_offset(), 99);
    writer
        .append(&RecordRef {
            value: b"after the crash",
            timestamp: EventTime(5),
            ..RecordRef::default()
        })
        .unwrap();
    writer.flush().unwrap();
    let records = read_all(&topic, 0, 0);
    assert_eq!(records.len(), 100);
    assert_eq!(records[98].2, value_of(0, 98));
    assert_eq!(records[99], (99, 5, "after the crash".to_owned()));
}

#[test]
fn a_zero_filled_tail_is_cut_off_on_open() {
    let (_dir, topic) = new_topic(1, LogConfig::default());
    fill(&topic, 10);
    let segment = segment_files(&topic.partition_dir(0)).pop().unwrap();
    OpenOptions::new()
        .append(true)
        .open(&segment)
        .unwrap()
        .write_all(&[0; 100])
        .unwrap();
    assert_eq!(topic.writer(0).unwrap().next_offset(), 10);
    assert_eq!(read_all(&topic, 0, 0).len(), 10);
}

fn flip_byte(path: &Path, position: u64) {
    let mut bytes = std::fs::read(path).unwrap();
    bytes[position as usize] ^= 0x40;
    std::fs::write(path, bytes).unwrap();
}

fn assert_corrupt(error: ConnectorError, file: &Path) -> u64 {
    let message = error.to_string();
    match error {
        ConnectorError::Corrupt { path, offset, .. } => {
            assert_eq!(path, file, "{message}");
            assert!(message.contains(&file.display().to_string()), "{message}");
            offset
        }
        other => panic!("expected a corruption error, got {other}"),
    }
}

#[test]
fn a_flipped_byte_in_a_closed_segment_is_reported_with_file_and_offset() {
    let (_dir, topic) = new_topic(1, small_segments());
    fill(&topic, 300);
    let segments = segment_files(&topic.partition_dir(0));
    let damaged = &segments[1];
    let len = std::fs::metadata(damaged).unwrap().len();
    flip_byte(damaged, len / 2);
    let mut reader = topic.reader(0, 0).unwrap();
    let mut read = 0;
    let error = loop {
        match reader.read(1000, |_| read += 1) {
            Ok(0) => panic!("the damage was never reported"),
            Ok(_) => continue,
            Err(error) => break error,
        }
    };
    let offset = assert_corrupt(error, damaged);
    // Every record before the damaged one was delivered, none after it.
    assert_eq!(read, offset);
    let base: u64 = damaged
        .file_stem()
        .unwrap()
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(offset > base, "the damage lies inside the second segment");
}

#[test]
fn a_flipped_byte_in_the_middle_of_the_active_segment_fails_the_open() {
    let (_dir, topic) = new_topic(1, LogConfig::default());
    fill(&topic, 100);
    let segment = segment_files(&topic.partition_dir(0)).pop().unwrap();
    let len = std::fs::metadata(&segment).unwrap().len();
    flip_byte(&segment, len / 2);
    let error = topic.writer(0).unwrap_err();
    let offset = assert_corrupt(error, &segment);
    assert!((30..70).contains(&offset), "offset {offset}");
    // Nothing was cut off: the records after the damage are still there.
    assert_eq!(std::fs::metadata(&segment).unwrap().len(), len);
}

#[test]
fn size_retention_deletes_whole_old_segments() {
    let config = LogConfig {
        retention_bytes: Some(3 * 4096),
        ..small_segments()
    };
    let (_dir, topic) = new_topic(1, config);
    fill(&topic, 1000);
    let partition_dir = topic.partition_dir(0);
    let total: u64 = segment_files(&partition_dir)
        .iter()
        .map(|path| std::fs::metadata(path).unwrap().len())
        .sum();
    assert!(total <= 3 * 4096 + 4096, "{total} bytes kept");
    let (start, end) = topic.offsets(0).unwrap();
    assert!(start > 0 && end == 1000, "{start}..{end}");
    let records = read_all(&topic, 0, start);
    assert_eq!(records.first().unwrap().0, start);
    assert_eq!(records.len() as u64, 1000 - start);
    match topic.reader(0, 0) {
        Err(ConnectorError::OffsetOutOfRange {
            offset: 0,
            start: kept,
            ..
        }) => assert_eq!(kept, start),
        other => panic!("expected an out-of-range error, got {other:?}"),
    }
}

#[test]
fn age_retention_deletes_segments_not_written_for_a_while() {
    let config = LogConfig {
        retention_ms: Some(200),
        ..small_segments()
    };
    let (_dir, topic) = new_topic(1, config);
    fill(&topic, 300);
    let segments_before = segment_files(&topic.partition_dir(0)).len();
    std::thread::sleep(std::time::Duration::from_millis(300));
    // Retention runs when a writer opens and when it rolls a segment.
    let writer = topic.writer(0).unwrap();
    drop(writer);
    let kept = segment_files(&topic.partition_dir(0));
    assert!(segments_before > 2);
    assert_eq!(kept.len(), 1, "only the active segment stays");
    assert_eq!(topic.offsets(0).unwrap().1, 300);
}

#[test]
fn a_second_writer_of_a_partition_is_refused() {
    let (_dir, topic) = new_topic(1, LogConfig::default());
    let _first = topic.writer(0).unwrap();
    let error = topic.writer(0).unwrap_err().to_string();
    assert!(error.contains("another writer"), "{error}");
}

#[test]
fn offsets_are_found_by_time_and_topics_are_described() {
    let (dir, topic) = new_topic(3, small_segments());
    fill(&topic, 500);
    assert_eq!(topic.offset_for_time(1, EventTime(0)).unwrap(), 0);
    assert_eq!(topic.offset_for_time(1, EventTime(2345)).unwrap(), 235);
    assert_eq!(topic.offset_for_time(1, EventTime(1_000_000)).unwrap(), 500);
    let description = topic.describe().unwrap();
    assert_eq!(description.len(), 3);
    for partition in &description {
        assert_eq!((partition.start_offset, partition.end_offset), (0, 500));
        assert_eq!(partition.time_range, Some((EventTime(0), EventTime(4990))));
        assert!(partition.segments > 1 && partition.bytes > 0);
    }
    let reopened = Topic::open(topic.dir()).unwrap();
    assert_eq!(reopened.partitions(), 3);
    assert!(Topic::create(topic.dir(), 3, ValueFormat::Json, LogConfig::default()).is_err());
    let missing = Topic::open(dir.path().join("nope"))
        .unwrap_err()
        .to_string();
    assert!(missing.contains("weir log create"), "{missing}");
}

/// A reader following a writer whose segments roll every few records never takes the
/// writer's last record of a segment, seen half-written just before the roll, for damage:
/// it reads the segment's end again once the next segment exists.
#[test]
fn a_reader_racing_segment_rolls_reads_every_record_intact() {
    const RECORDS: u64 = 3_000;
    let value = |number: u64| {
        format!(
            "{number:08} {}",
            "y".repeat(20_000 + (number % 7) as usize * 3_000)
        )
    };
    let (_dir, topic) = new_topic(
        1,
        LogConfig {
            segment_bytes: 100_000,
            ..LogConfig::default()
        },
    );
    let mut writer = topic.writer(0).unwrap();
    let writing = std::thread::spawn(move || {
        for number in 0..RECORDS {
            writer
                .append(&RecordRef {
                    value: value(number).as_bytes(),
                    timestamp: EventTime(number),
                    ..RecordRef::default()
                })
                .unwrap();
            if number % 3 == 2 {
                writer.flush().unwrap();
            }
        }
        writer.flush().unwrap();
    });
    let mut reader = topic.reader(0, 0).unwrap();
    let mut next = 0;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while next < RECORDS {
        assert!(
            std::time::Instant::now() < deadline,
            "stuck at offset {next}"
        );
        reader
            .read(1000, |record| {
                assert_eq!(record.offset, next);
                assert_eq!(record.value, value(next).as_bytes());
                next += 1;
            })
            .unwrap_or_else(|error| panic!("at offset {next}: {error}"));
    }
    writing.join().unwrap();
}
