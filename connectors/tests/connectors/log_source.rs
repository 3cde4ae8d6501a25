//! The log source and sink in jobs: partition assignment, start positions, per-partition
//! watermarks with idleness, dead letters and damaged records.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use weir_connectors::log::{LogConfig, LogSink, LogSource, RecordRef, StartAt, Topic, ValueFormat};
use weir_connectors::CheckRecords;
use weir_engine::watermark::Watermarks;
use weir_engine::EventTime;
use weir_engine::{
    CollectSink, DeadLetter, EngineError, Job, JobConfig, Source, SourcePoll, SourceReader,
    WorkerInfo,
};

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
struct Row {
    id: u64,
    time: u64,
}

fn json_topic(dir: &Path, partitions: u32, log: LogConfig) -> Topic {
    Topic::create(dir.join("rows"), partitions, ValueFormat::Json, log).unwrap()
}

/// Appends rows `ids` to `partition`, each stamped with its `time`.
fn append_rows(topic: &Topic, partition: u32, rows: impl IntoIterator<Item = Row>) {
    let mut writer = topic.writer(partition).unwrap();
    for row in rows {
        let value = serde_json::to_vec(&row).unwrap();
        writer
            .append(&RecordRef {
                value: &value,
                timestamp: EventTime(row.time),
                ..RecordRef::default()
            })
            .unwrap();
    }
    writer.flush().unwrap();
}

fn append_raw(topic: &Topic, partition: u32, values: &[&[u8]]) {
    let mut writer = topic.writer(partition).unwrap();
    for value in values {
        writer
            .append(&RecordRef {
                value,
                timestamp: EventTime(1),
                ..RecordRef::default()
            })
            .unwrap();
    }
    writer.flush().unwrap();
}

fn rows(ids: std::ops::Range<u64>) -> impl Iterator<Item = Row> {
    ids.map(|id| Row { id, time: id * 10 })
}

/// Runs a bounded read of the topic on `workers` workers and returns the sorted rows and
/// dead letters.
fn run(
    dir: PathBuf,
    workers: usize,
    configure: fn(LogSource<Row>) -> LogSource<Row>,
) -> Result<(Vec<Row>, Vec<DeadLetter>), EngineError> {
    let records = CollectSink::new();
    let letters = CollectSink::new();
    let (records_out, letters_out) = (records.results(), letters.results());
    Job::new(JobConfig {
        workers,
        ..JobConfig::default()
    })
    .run(move |p| {
        let source = configure(LogSource::<Row>::new(&dir).until_end());
        p.source(source).sink(records.clone());
        p.dead_letters_to(letters.clone());
        Ok(())
    })?;
    let mut rows = records_out.lock().unwrap().clone();
    rows.sort();
    let mut letters = letters_out.lock().unwrap().clone();
    letters.sort_by_key(|letter| (letter.partition, letter.offset));
    Ok((rows, letters))
}

#[test]
fn every_record_of_every_partition_arrives_once_on_any_number_of_workers() {
    let dir = tempfile::tempdir().unwrap();
    let topic = json_topic(
        dir.path(),
        8,
        LogConfig {
            segment_bytes: 8192,
            ..LogConfig::default()
        },
    );
    for partition in 0..8u64 {
        append_rows(
            &topic,
            partition as u32,
            rows(partition * 1000..partition * 1000 + 700),
        );
    }
    let expected: Vec<Row> = (0..8)
        .flat_map(|p| rows(p * 1000..p * 1000 + 700))
        .collect();
    for workers in [1, 3, 8, 11] {
        let (got, letters) = run(topic.dir().to_owned(), workers, |source| source).unwrap();
        assert_eq!(got, expected, "{workers} workers");
        assert!(letters.is_empty());
    }
}

#[test]
fn each_start_position_starts_where_it_says() {
    let dir = tempfile::tempdir().unwrap();
    let topic = json_topic(dir.path(), 2, LogConfig::default());
    append_rows(&topic, 0, rows(0..100));
    append_rows(&topic, 1, rows(100..200));
    let ids = |configure| {
        run(topic.dir().to_owned(), 2, configure)
            .unwrap()
            .0
            .iter()
            .map(|row| row.id)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        ids(|s| s.start_at(StartAt::Earliest)),
        (0..200).collect::<Vec<_>>()
    );
    assert_eq!(ids(|s| s.start_at(StartAt::Latest)), Vec::<u64>::new());
    assert_eq!(
        ids(|s| s.start_at(StartAt::Offsets(BTreeMap::from([(0, 95), (1, 50)])))),
        (95..100).chain(150..200).collect::<Vec<_>>()
    );
    // Timestamps are id * 10: from 1500 ms, partition 0 has nothing and partition 1 starts at 150.
    assert_eq!(
        ids(|s| s.start_at(StartAt::Timestamp(EventTime(1_500)))),
        (150..200).collect::<Vec<_>>()
    );
}

#[test]
fn bad_records_become_dead_letters_and_the_good_ones_around_them_all_arrive() {
    let dir = tempfile::tempdir().unwrap();
    let topic = json_topic(dir.path(), 2, LogConfig::default());
    append_rows(&topic, 0, rows(0..10));
    append_raw(
        &topic,
        0,
        &[
            b"{\"id\": 10, \"time\"",
            b"{\"id\": 11}",
            b"{\"id\": \"twelve\", \"time\": 1}",
            b"\xff\xfe",
        ],
    );
    append_rows(&topic, 0, rows(14..20));
    append_rows(&topic, 1, rows(20..30));
    append_raw(&topic, 1, &[b"{\"id\": 31, \"time\": 999999}"]);
    let (got, letters) = run(topic.dir().to_owned(), 2, |source| {
        source.validate(|row: &Row| {
            if row.time > 100_000 {
                Err(format!("time {} is in the future", row.time))
            } else {
                Ok(())
            }
        })
    })
    .unwrap();
    let expected: Vec<Row> = rows(0..10).chain(rows(14..30)).collect();
    assert_eq!(got, expected);
    let places: Vec<_> = letters
        .iter()
        .map(|l| (l.partition.unwrap(), l.offset.unwrap()))
        .collect();
    assert_eq!(places, vec![(0, 10), (0, 11), (0, 12), (0, 13), (1, 10)]);
    assert!(letters[0].reason.contains("EOF"), "{}", letters[0].reason);
    assert!(
        letters[1].reason.contains("missing field `time`"),
        "{}",
        letters[1].reason
    );
    assert!(
        letters[2].reason.contains("invalid type"),
        "{}",
        letters[2].reason
    );
    assert_eq!(letters[3].raw, b"\xff\xfe");
    assert_eq!(letters[4].reason, "time 999999 is in the future");
    assert!(letters
        .iter()
        .all(|l| l.source == topic.dir().display().to_string()));
}

/// Read by a job, a compacted topic's tombstone is a dead letter that says what it is.
#[test]
fn a_tombstone_read_by_a_job_is_a_dead_letter_naming_it_and_its_key() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        cleanup: weir_connectors::log::Cleanup::Compact,
        ..LogConfig::default()
    };
    let topic = json_topic(dir.path(), 1, config);
    let mut writer = topic.writer(0).unwrap();
    for (key, value) in [(&b"a"[..], &b"{\"id\": 1, \"time\": 10}"[..]), (b"a", b"")] {
        writer
            .append(&RecordRef {
                key,
                value,
                timestamp: EventTime(10),
                headers: &[],
            })
            .unwrap();
    }
    writer.flush().unwrap();
    let (got, letters) = run(topic.dir().to_owned(), 1, |source| source).unwrap();
    assert_eq!(got, vec![Row { id: 1, time: 10 }]);
    assert_eq!(letters.len(), 1);
    assert!(
        letters[0].reason.contains("tombstone") && letters[0].reason.contains("\"a\""),
        "{}",
        letters[0].reason
    );
}

#[test]
fn without_a_dead_letter_output_a_bad_record_stops_the_job_with_its_reason() {
    let dir = tempfile::tempdir().unwrap();
    let topic = json_topic(dir.path(), 1, LogConfig::default());
    append_rows(&topic, 0, rows(0..5));
    append_raw(&topic, 0, &[b"{\"id\": 5}"]);
    let topic_dir = topic.dir().to_owned();
    let error = Job::new(JobConfig::default())
        .run(move |p| {
            p.source(LogSource::<Row>::new(&topic_dir).until_end())
                .sink(CollectSink::new());
            Ok(())
        })
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("partition 0, offset 5: JSON decode: missing field `time`"),
        "{error}"
    );
}

fn damage_middle_of_first_segment(topic: &Topic) -> PathBuf {
    let segment = topic.partition_dir(0).join(format!("{:020}.log", 0));
    let mut bytes = std::fs::read(&segment).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x10;
    std::fs::write(&segment, bytes).unwrap();
    segment
}

#[test]
fn a_damaged_record_fails_the_job_or_with_skip_becomes_a_dead_letter() {
    let dir = tempfile::tempdir().unwrap();
    let topic = json_topic(
        dir.path(),
        1,
        LogConfig {
            segment_bytes: 4096,
            ..LogConfig::default()
        },
    );
    append_rows(&topic, 0, rows(0..500));
    let segment = damage_middle_of_first_segment(&topic);
    let error = run(topic.dir().to_owned(), 1, |source| source)
        .unwrap_err()
        .to_string();
    assert!(
        error.contains(&segment.display().to_string())
            && error.contains("corrupt record at offset"),
        "{error}"
    );

    let (got, letters) = run(topic.dir().to_owned(), 1, |source| source.skip_corrupt()).unwrap();
    assert_eq!(letters.len(), 1);
    let letter = &letters[0];
    let skipped = letter.offset.unwrap();
    assert!(
        letter.reason.contains("skipped offsets"),
        "{}",
        letter.reason
    );
    assert_eq!(got.len(), 499, "exactly the damaged record is missing");
    assert!(got.iter().all(|row| row.id != skipped));
}

#[test]
fn each_partition_has_its_own_watermark_and_a_silent_one_stops_holding_it_back() {
    let dir = tempfile::tempdir().unwrap();
    let topic = json_topic(dir.path(), 2, LogConfig::default());
    let idle_after = Duration::from_millis(300);
    let source = LogSource::<Row>::new(topic.dir())
        .watermarks(Watermarks::bounded(Duration::from_millis(100)).idle_after(idle_after));
    let mut reader = source.open(WorkerInfo { index: 0, peers: 1 }).unwrap();
    let mut out = Vec::new();
    let mut poll = |out: &mut Vec<Row>| -> SourcePoll {
        let mut last = SourcePoll::Waiting {
            watermark: EventTime::ZERO,
        };
        // Drain what is there; report the last status.
        for _ in 0..10 {
            last = reader.poll(out, 1024).unwrap();
        }
        last
    };
    let watermark = |status: SourcePoll| match status {
        SourcePoll::Ready { watermark } | SourcePoll::Waiting { watermark } => Some(watermark),
        SourcePoll::Idle | SourcePoll::Finished => None,
    };

    append_rows(&topic, 0, rows(0..100)); // times 0..990
    let started = Instant::now();
    // Partition 1 has had nothing yet: it holds the watermark at 0 until it counts as idle.
    assert_eq!(watermark(poll(&mut out)), Some(EventTime(0)));
    assert_eq!(out.len(), 100);
    while started.elapsed() < idle_after {
        std::thread::sleep(Duration::from_millis(20));
    }
    append_rows(&topic, 0, rows(100..110)); // partition 0 stays active
    assert_eq!(watermark(poll(&mut out)), Some(EventTime(990)));
    // Partition 1 wakes with older records: it holds the watermark back again.
    append_rows(&topic, 1, [Row { id: 500, time: 400 }]);
    assert_eq!(watermark(poll(&mut out)), Some(EventTime(300)));
    // Both silent for longer than the timeout: the reader is dormant.
    std::thread::sleep(idle_after + Duration::from_millis(50));
    assert_eq!(poll(&mut out), SourcePoll::Idle);
    // It stands after every record it returned.
    let next_offsets = reader.positions().map(|positions| {
        positions
            .into_iter()
            .map(|(partition, position)| (partition, position.next_offset))
            .collect::<BTreeMap<_, _>>()
    });
    assert_eq!(next_offsets, Some(BTreeMap::from([(0, 110), (1, 1)])));
}

#[test]
fn the_log_sink_partitions_by_key_and_reads_back_in_binary() {
    let dir = tempfile::tempdir().unwrap();
    let topic_dir = dir.path().join("out");
    let topic = Topic::create(
        &topic_dir,
        4,
        ValueFormat::Binary {
            schema: "test.Row".into(),
        },
        LogConfig::default(),
    )
    .unwrap();
    let input_dir = dir.path().join("in");
    let input = json_topic(&input_dir, 3, LogConfig::default());
    for partition in 0..3 {
        append_rows(
            &input,
            partition,
            rows(u64::from(partition) * 100..u64::from(partition) * 100 + 100),
        );
    }
    let (in_dir, out_dir) = (input.dir().to_owned(), topic_dir.clone());
    Job::new(JobConfig {
        workers: 2,
        ..JobConfig::default()
    })
    .run(move |p| {
        let sink = LogSink::new(&out_dir)
            .key_by(|row: &Row| (row.id % 10).to_le_bytes().to_vec())
            .event_time(|row| EventTime(row.time));
        p.source(LogSource::<Row>::new(&in_dir).until_end())
            .sink(sink);
        Ok(())
    })
    .unwrap();
    let (got, letters) = run(topic_dir, 2, |source| source).unwrap();
    assert!(letters.is_empty());
    assert_eq!(got, rows(0..300).collect::<Vec<_>>());
    // All rows of a key share a partition.
    for partition in 0..4 {
        let mut reader = topic.reader(partition, 0).unwrap();
        let mut keys = std::collections::BTreeSet::new();
        reader
            .read(1000, |record| {
                keys.insert(record.key.to_vec());
            })
            .unwrap();
        for key in keys {
            assert_eq!(weir_connectors::log::partition_for_key(&key, 4), partition);
        }
    }
}

/// Reads `source` on one worker until `count` rows have come, then returns the rows and the
/// positions a checkpoint would record.
fn read_then_checkpoint(
    source: LogSource<Row>,
    count: usize,
) -> (Vec<Row>, weir_engine::Positions, u64) {
    let mut reader = source.open(WorkerInfo { index: 0, peers: 1 }).unwrap();
    let mut rows = Vec::new();
    let mut watermark = 0;
    while rows.len() < count {
        let wanted = count - rows.len();
        match reader.poll(&mut rows, wanted).unwrap() {
            SourcePoll::Ready { watermark: now } | SourcePoll::Waiting { watermark: now } => {
                watermark = now.millis()
            }
            other => panic!("unexpected {other:?} after {} rows", rows.len()),
        }
    }
    (rows, reader.positions().unwrap(), watermark)
}

#[test]
fn a_restored_bounded_read_ends_where_the_first_run_ended() {
    let dir = tempfile::tempdir().unwrap();
    let topic = json_topic(dir.path(), 1, LogConfig::default());
    append_rows(&topic, 0, rows(0..100));
    let (first, positions, _) = read_then_checkpoint(
        LogSource::<Row>::new(dir.path().join("rows")).until_end(),
        40,
    );
    assert_eq!(first.len(), 40);
    // Appended after the job started: not part of its bounded input.
    append_rows(&topic, 0, rows(100..150));
    let mut resumed = LogSource::<Row>::new(dir.path().join("rows")).until_end();
    resumed.resume_from(&positions).unwrap();
    let mut reader = resumed.open(WorkerInfo { index: 0, peers: 1 }).unwrap();
    let mut rest = Vec::new();
    while reader.poll(&mut rest, 1000).unwrap() != SourcePoll::Finished {}
    assert_eq!(rest, rows(40..100).collect::<Vec<_>>());
}

#[test]
fn a_restored_reader_starts_at_the_watermark_it_had_reached() {
    let dir = tempfile::tempdir().unwrap();
    let topic = json_topic(dir.path(), 2, LogConfig::default());
    append_rows(&topic, 0, rows(0..100));
    append_rows(&topic, 1, rows(0..100));
    let watermarks = Watermarks::bounded(Duration::from_millis(50));
    let source = || {
        LogSource::<Row>::new(dir.path().join("rows"))
            .watermarks(watermarks.clone())
            .event_time(|row: &Row| EventTime(row.time))
    };
    // Partition 0 is read to its end (time 990), partition 1 to time 190.
    let (_, positions, watermark) = read_then_checkpoint(source(), 120);
    assert!((100..=190).contains(&watermark), "watermark {watermark}");
    let mut resumed = source();
    resumed.resume_from(&positions).unwrap();
    let reader = resumed.open(WorkerInfo { index: 0, peers: 1 }).unwrap();
    // A record of time 100 read now is late, as it would have been without the restore.
    assert_eq!(reader.start_watermark(), EventTime(watermark));
}

/// Cuts the first segment of `partition` of the topic in `dir` to `keep` of its bytes.
fn cut_segment(dir: &Path, partition: u32, keep: impl FnOnce(u64) -> u64) -> PathBuf {
    let segment = dir
        .join("rows")
        .join(format!("partition-{partition}"))
        .join(format!("{:020}.log", 0));
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(&segment)
        .unwrap();
    let len = file.metadata().unwrap().len();
    file.set_len(keep(len)).unwrap();
    segment
}

/// Regression test: with a partition's only segment cut in half (its offset index still
/// listing records past the cut), a bounded read waited for ever for the records the index
/// promised. Now every read of the partition fails at once, naming the segment and the
/// first offset lost; a cut inside the last record only (a torn append) is read up to the
/// whole records before it, and `describe` reports the bytes after them.
#[test]
fn a_segment_cut_in_half_fails_every_read_and_a_torn_last_record_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let log = LogConfig {
        index_interval_bytes: 256,
        ..LogConfig::default()
    };
    let topic = json_topic(dir.path(), 2, log);
    append_rows(&topic, 0, rows(0..1000));
    append_rows(&topic, 1, rows(0..1000));
    // Partition 1 loses the last 3 bytes: its last record is torn.
    let torn = cut_segment(dir.path(), 1, |len| len - 3);
    assert_eq!(topic.offsets(1).unwrap().1, 999);
    let tail = topic.describe().unwrap()[1]
        .torn_tail
        .clone()
        .expect("the tear is reported");
    assert_eq!(tail.segment, torn);
    assert!(tail.bytes > 0);

    let segment = cut_segment(dir.path(), 0, |len| len / 2 + 3);
    let cut_off = |error: String| {
        assert!(
            error.contains(&segment.display().to_string()) && error.contains("were cut off"),
            "{error}"
        );
    };
    cut_off(topic.offsets(0).unwrap_err().to_string());
    cut_off(topic.describe().unwrap_err().to_string());
    let (sender, receiver) = std::sync::mpsc::channel();
    let topic_dir = dir.path().join("rows");
    std::thread::spawn(move || sender.send(run(topic_dir, 2, |source| source)));
    let result = receiver
        .recv_timeout(Duration::from_secs(60))
        .expect("the bounded read of a cut segment hung");
    cut_off(result.unwrap_err().to_string());
}

/// A restored bounded read whose end lies beyond records cut off since fails, naming the
/// segment and the offset, instead of waiting for records that will never come.
#[test]
fn a_restored_bounded_read_whose_records_were_cut_off_fails_naming_the_segment() {
    let dir = tempfile::tempdir().unwrap();
    let topic = json_topic(dir.path(), 1, LogConfig::default());
    append_rows(&topic, 0, rows(0..1000));
    let (_, positions, _) = read_then_checkpoint(
        LogSource::<Row>::new(dir.path().join("rows")).until_end(),
        100,
    );
    let segment = cut_segment(dir.path(), 0, |len| len / 2 + 3);
    let mut resumed = LogSource::<Row>::new(dir.path().join("rows")).until_end();
    resumed.resume_from(&positions).unwrap();
    let started = Instant::now();
    let mut rows = Vec::new();
    let error = match resumed.open(WorkerInfo { index: 0, peers: 1 }) {
        Err(error) => error.to_string(),
        Ok(mut reader) => loop {
            match reader.poll(&mut rows, 1000) {
                Ok(SourcePoll::Finished) => panic!("finished after {} rows of 900", rows.len()),
                Ok(_) => assert!(
                    started.elapsed() < Duration::from_secs(60),
                    "the read waits for records that are gone"
                ),
                Err(error) => break error.to_string(),
            }
        },
    };
    assert!(
        error.contains(&segment.display().to_string()) && error.contains("were cut off"),
        "{error}"
    );
    assert!(rows.len() < 900);
}
