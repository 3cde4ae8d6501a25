//! Entry points of the coverage-guided fuzzers (`fuzz/`) into the connectors' decoders of
//! outside bytes: the log's record frame, its segments and sparse index as a reader and a
//! recovering writer see them, `topic.json`, the CSV reader, the log sink's transaction and
//! history files, and the file sink's ledger and parts at a restore. Each takes arbitrary
//! bytes and asserts what must hold for any input. Compiled only by `cargo fuzz`, which sets
//! `cfg(fuzzing)`; see `fuzz/README.md`. (The event codecs and the JSON lines reader are
//! fuzzed with Nexmark's events, from `weir-nexmark`.)

use serde::Deserialize;
use weir_engine::fuzzing::{parts, read_source, scratch_dir, write_file, POLL_LIMIT};

use crate::files::CsvSource;
use crate::log::record::{self, Frame};
use crate::log::ValueFormat;
use crate::log::{segment, transaction, LogConfig, PartitionWriter, RecordRef, Topic};

/// Recomputes the checksums of the record frames in `bytes`, frame after frame, so that the
/// fuzzer reaches the parsing behind them.
fn with_valid_checksums(bytes: &[u8]) -> Vec<u8> {
    let mut bytes = bytes.to_vec();
    let mut at = 0;
    while at + record::FRAME_HEADER <= bytes.len() {
        let len = u32::from_le_bytes(bytes[at..at + 4].try_into().expect("four bytes")) as usize;
        let body = at + record::FRAME_HEADER..at + record::FRAME_HEADER + len;
        if let Some(body_bytes) = bytes.get(body.clone()) {
            let crc = crc32c::crc32c(body_bytes);
            bytes[at + 4..at + 8].copy_from_slice(&crc.to_le_bytes());
        }
        let crc = crc32c::crc32c(&bytes[at..at + 8]);
        bytes[at + 8..at + 12].copy_from_slice(&crc.to_le_bytes());
        at = body.end;
    }
    bytes
}

/// Record frames decoded one after the other: a whole record re-encodes to its own bytes, a
/// frame cut short asks for more than is there.
pub fn record_frames(data: &[u8]) {
    let bytes = match data.split_first() {
        Some((flags, rest)) if flags & 1 == 1 => {
            std::borrow::Cow::Owned(with_valid_checksums(rest))
        }
        _ => std::borrow::Cow::Borrowed(data),
    };
    let bytes = &bytes[..];
    let mut at = 0;
    loop {
        match record::decode(bytes, at) {
            Frame::Record(view, end) => {
                assert!(end > at, "a record must advance the position");
                let headers: Vec<(&str, &[u8])> = view.headers().collect();
                let record = RecordRef {
                    key: view.key,
                    value: view.value,
                    timestamp: view.timestamp,
                    headers: &headers,
                };
                record::check_limits(&record).expect("a decoded record is within the limits");
                let mut encoded = Vec::new();
                record::encode(&mut encoded, view.offset, &record);
                assert_eq!(encoded, bytes[at..end], "a record changes when re-encoded");
                at = end;
            }
            Frame::Incomplete { needed } => {
                let left = bytes.len() - at.min(bytes.len());
                assert!(
                    needed.is_none_or(|needed| needed > left),
                    "{needed:?} of {left}"
                );
                return;
            }
            Frame::Damaged(_) => return,
        }
    }
}

/// A one-partition topic whose segments and sparse index are the input's parts (the segment
/// frames' checksums recomputed when the first byte's low bit is set). Reading it ends in
/// an error naming a file or in records of consecutive offsets; `describe` agrees with what
/// a reader reads; a writer that recovers the partition leaves it whole, and appends to it.
pub fn log_partition(data: &[u8]) {
    let [flags, first, index, second] = parts(data, 4)[..] else {
        unreachable!("parts returns as many parts as asked");
    };
    let fix = flags.first().is_some_and(|flags| flags & 1 == 1);
    let (first, second) = if fix {
        (with_valid_checksums(first), with_valid_checksums(second))
    } else {
        (first.to_vec(), second.to_vec())
    };
    let scratch = scratch_dir();
    let topic = Topic::create(
        scratch.path().join("topic"),
        1,
        ValueFormat::Json,
        LogConfig::default(),
    )
    .expect("a scratch topic");
    let dir = topic.partition_dir(0);
    std::fs::write(segment::segment_path(&dir, 0), &first).expect("scratch segment");
    if !index.is_empty() {
        std::fs::write(segment::index_path(&dir, 0), index).expect("scratch index");
    }
    let second_base = u64::from(flags.get(1).copied().unwrap_or(0));
    let one_segment = second.is_empty() || second_base == 0;
    if !one_segment {
        std::fs::write(segment::segment_path(&dir, second_base), &second).expect("scratch");
    }

    let described = topic.describe();
    let read = read_all(&topic);
    if let (Ok(described), Ok(read)) = (&described, &read) {
        let whole = &described[0];
        assert_eq!(
            whole.end_offset - whole.start_offset,
            *read,
            "describe and a reader disagree on {whole:?}"
        );
    }
    let Ok(mut writer) = PartitionWriter::open(&dir, LogConfig::default()) else {
        return;
    };
    let next = writer.next_offset();
    let appended = RecordRef {
        key: b"key",
        value: b"appended after recovery",
        timestamp: weir_engine::EventTime(1),
        headers: &[],
    };
    assert_eq!(writer.append(&appended).expect("append"), next);
    writer.flush().expect("flush");
    drop(writer);
    if one_segment {
        let described = topic.describe().expect("a recovered partition describes");
        assert_eq!(described[0].end_offset, next + 1);
        assert_eq!(
            read_all(&topic).expect("a recovered partition reads"),
            next + 1 - described[0].start_offset
        );
    }
    let mut reader = topic.reader(0, next).expect("the appended record's offset");
    let mut values = Vec::new();
    reader
        .read(10, |record| values.push(record.value.to_vec()))
        .expect("read");
    assert_eq!(values, [appended.value.to_vec()]);
}

/// Reads partition 0 from its start to its end: the number of records, or the first error.
fn read_all(topic: &Topic) -> Result<u64, crate::ConnectorError> {
    let (start, end) = topic.offsets(0)?;
    let mut reader = topic.reader(0, start)?;
    let mut count = 0;
    for _ in 0..POLL_LIMIT {
        let mut expected = reader.next_offset();
        let read = reader.read(1000, |record| {
            assert_eq!(record.offset, expected, "offsets must be consecutive");
            expected += 1;
        })?;
        count += read as u64;
        if read == 0 {
            assert!(reader.next_offset() <= end, "read past the end {end}");
            return Ok(count);
        }
    }
    panic!("a partition of a few bytes takes more than {POLL_LIMIT} reads");
}

/// `topic.json`: a topic opens only with metadata it can use, and then describes itself or
/// fails naming the file.
pub fn topic_metadata(data: &[u8]) {
    let scratch = scratch_dir();
    let dir = scratch.path().join("topic");
    write_file(scratch.path(), "topic/topic.json", data);
    std::fs::create_dir_all(dir.join("0")).expect("scratch partition");
    let Ok(topic) = Topic::open(&dir) else {
        return;
    };
    assert!(topic.partitions() > 0);
    let _ = crate::log::partition_for_key(b"key", topic.partitions());
    if let Err(error) = topic.producer() {
        assert!(!error.to_string().is_empty());
    }
}

/// A row of the CSV fuzzer's files.
#[derive(Debug, Deserialize)]
#[allow(dead_code, reason = "the fields are decoded, not read")]
struct Row {
    id: u64,
    name: String,
    price: Option<f64>,
}

/// A CSV file: its reader finishes, and every row it rejects is a dead letter naming a line
/// of the file.
pub fn csv(data: &[u8]) {
    let scratch = scratch_dir();
    let path = write_file(scratch.path(), "rows.csv", data);
    let read = read_source(|| CsvSource::<Row>::new(&path), 2);
    let lines = data.split(|byte| *byte == b'\n').count() as u64;
    for line in read.dead_lines {
        assert!(
            (1..=lines).contains(&line),
            "dead letter at line {line} of {lines}"
        );
    }
}

/// A prepared transaction of the log sink, as written (first byte even) or with its checksum
/// recomputed (odd).
pub fn log_transaction(data: &[u8]) {
    let fix = data.first().is_some_and(|flags| flags & 1 == 1);
    crate::staging::fuzz_sealed(data.get(1..).unwrap_or_default(), fix);
}

/// The commit history of a log sink's output.
pub fn commit_history(data: &[u8]) {
    transaction::fuzz_history(data);
}

/// A file sink's output directory at a restore: its ledger, one part and the flags of
/// `part_files::fuzz_recover`, split by [`parts`].
pub fn part_ledger(data: &[u8]) {
    let split = parts(data, 3);
    let flags = split[0].first().copied().unwrap_or_default();
    crate::files::fuzz_recover(split[1], split[2], flags);
}
