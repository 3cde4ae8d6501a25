//! Criterion micro-benchmarks of the paths every record takes: decoding a log record's value,
//! appending to and reading from a log partition, hashing a key to its worker, the exchange
//! between workers, a windowed aggregate's update, and keyed state's get and put (in memory,
//! in front of RocksDB) with the checkpoint file an epoch writes.
//!
//! `cargo bench -p weir-benches --bench hot_paths` runs them all; a group's name as a filter
//! (`-- "log"`) runs one. Throughput is per record, so criterion prints records per second.

use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use serde::{Deserialize, Serialize};
use weir::log::{LogConfig, RecordRef, Topic, ValueFormat};
use weir::operators::aggregate::Count;
use weir::operators::window::{hopping, WindowExt};
use weir::{Codec, DiscardSink, Epoch, EventTime, IterSource, Job, JobConfig, KeyGroups};
use weir::{JobReport, Timestamped};
use weir_benches as _;
use weir_engine::micro_benchmarks::KeyedSums;
use weir_nexmark::{write_events_to_topic, Event, Generator, GeneratorConfig, EVENT_SCHEMA};

/// Events per batch of the per-record benchmarks: 50 consecutive ids are the standard mix of
/// one person, three auctions and 46 bids.
const EVENTS: u64 = 50;
/// Records per iteration of the log and state benchmarks.
const RECORDS: u64 = 1000;
/// Records per run of the benchmarks that run a job.
const JOB_RECORDS: u64 = 1_000_000;

fn generated(count: u64) -> Vec<Event> {
    let generator = Generator::new(GeneratorConfig::default());
    (0..count).map(|id| generator.event(id)).collect()
}

fn encoded(events: &[Event], codec: Codec) -> Vec<Vec<u8>> {
    events
        .iter()
        .map(|event| {
            let mut value = Vec::new();
            codec.encode(event, &mut value).expect("events encode");
            value
        })
        .collect()
}

/// A log record's value decoded into an event, as the log source (binary) and JSON topics and
/// Kafka (JSON) do. Dropping the events is not timed.
fn record_decode(c: &mut Criterion) {
    let events = generated(EVENTS);
    let mut group = c.benchmark_group("record decode");
    group.throughput(Throughput::Elements(EVENTS));
    for (name, codec) in [("binary", Codec::Binary), ("JSON", Codec::Json)] {
        let values = encoded(&events, codec);
        group.bench_function(format!("{name}, {EVENTS} events"), |b| {
            b.iter_with_large_drop(|| {
                values
                    .iter()
                    .map(|value| codec.decode::<Event>(value).expect("events decode"))
                    .collect::<Vec<_>>()
            })
        });
    }
    group.finish();
}

/// Appending binary events to a partition of the embedded log (handed to the OS, not synced;
/// retention keeps the partition under 64 MiB) and reading them back from the page cache,
/// frame checks included.
fn log(c: &mut Criterion) {
    let values = encoded(&generated(RECORDS), Codec::Binary);
    let dir = tempfile::tempdir().expect("a temporary directory");
    let mut group = c.benchmark_group("log");
    group.throughput(Throughput::Elements(RECORDS));
    let format = ValueFormat::Binary {
        schema: EVENT_SCHEMA.into(),
    };
    let config = LogConfig {
        retention_bytes: Some(64 << 20),
        ..LogConfig::default()
    };
    let appended = Topic::create(dir.path().join("appended"), 1, format, config)
        .expect("the topic is created");
    let mut writer = appended.writer(0).expect("a writer");
    group.bench_function(format!("append {RECORDS} events"), |b| {
        b.iter(|| {
            for value in &values {
                let record = RecordRef {
                    value,
                    timestamp: EventTime(1),
                    ..RecordRef::default()
                };
                writer.append(&record).expect("the record is appended");
            }
            writer.flush().expect("the records reach the OS");
        })
    });
    // A partition of 100 batches, read batch by batch; reopening at its end is not timed.
    let end = 100 * RECORDS;
    let read = write_events_to_topic(
        dir.path().join("read"),
        1,
        &GeneratorConfig::default(),
        end,
        &AtomicU64::new(0),
    )
    .expect("the topic is written");
    let mut reader = read.reader(0, 0).expect("a reader");
    group.bench_function(format!("read {RECORDS} events"), |b| {
        b.iter_custom(|iterations| {
            let mut timed = Duration::ZERO;
            for _ in 0..iterations {
                if reader.next_offset() == end {
                    reader = read.reader(0, 0).expect("a reader");
                }
                let started = Instant::now();
                let mut bytes = 0;
                let count = reader
                    .read(RECORDS as usize, |view| bytes += view.value.len())
                    .expect("the records are read");
                timed += started.elapsed();
                assert_eq!((count as u64, bytes > 0), (RECORDS, true));
            }
            timed
        })
    });
    group.finish();
}

/// Routing a key to its worker through its key group: what `key_by` does per record.
fn key_hashing(c: &mut Criterion) {
    let groups = KeyGroups::new(JobConfig::default().key_groups, 2);
    let numbers: Vec<u64> = (0..RECORDS).map(|n| n * 7919).collect();
    let names: Vec<String> = (0..RECORDS).map(|n| format!("channel-{n}")).collect();
    let mut group = c.benchmark_group("key hashing");
    group.throughput(Throughput::Elements(RECORDS));
    group.bench_function("u64 keys to workers", |b| {
        b.iter(|| {
            numbers
                .iter()
                .map(|n| groups.worker_of_key(n))
                .sum::<usize>()
        })
    });
    group.bench_function("string keys to workers", |b| {
        b.iter(|| names.iter().map(|n| groups.worker_of_key(n)).sum::<usize>())
    });
    group.finish();
}

/// A record of the job benchmarks: a key and an event time.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Keyed {
    key: u64,
    at: u64,
}

impl Timestamped for Keyed {
    fn event_time(&self) -> EventTime {
        EventTime(self.at)
    }
}

/// `JOB_RECORDS` records over 1000 keys and 100 s of event time.
fn keyed_records() -> IterSource<impl Iterator<Item = Keyed>> {
    IterSource::new(
        "keyed",
        (0..JOB_RECORDS).map(|n| Keyed {
            key: n.wrapping_mul(0x9e37_79b9_7f4a_7c15) % 1000,
            at: n * 100_000 / JOB_RECORDS,
        }),
    )
}

/// The exchange of records between two workers by key, against the same pipeline without
/// it; and a windowed count (10 s windows sliding by 2 s: five accumulator updates per record)
/// after `key_by`, against `key_by` alone. Each iteration runs a whole job of `JOB_RECORDS`
/// records, start and end included. The source's watermark stays at the start until its end,
/// so every window stays open until then and fires at the end.
fn jobs(c: &mut Criterion) {
    let run = |workers: usize, build: fn(weir::Stream<'_, Keyed>)| -> JobReport {
        Job::new(JobConfig::default().workers(workers))
            .run(move |p| {
                build(p.source(keyed_records()));
                Ok(())
            })
            .expect("the job runs")
    };
    let mut group = c.benchmark_group("jobs");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(10));
    group.throughput(Throughput::Elements(JOB_RECORDS));
    group.bench_function("2 workers, no exchange", |b| {
        b.iter(|| run(2, |records| records.sink(DiscardSink)))
    });
    let keyed: fn(weir::Stream<'_, Keyed>) = |records| {
        records.key_by(|r| r.key).values().sink(DiscardSink);
    };
    group.bench_function("2 workers, exchange by key", |b| b.iter(|| run(2, keyed)));
    group.bench_function("1 worker, key_by", |b| b.iter(|| run(1, keyed)));
    group.bench_function("1 worker, key_by then a windowed count", |b| {
        b.iter(|| {
            run(1, |records| {
                records
                    .key_by(|r| r.key)
                    .window(hopping(Duration::from_secs(10), Duration::from_secs(2)))
                    .aggregate(Count)
                    .results
                    .sink(DiscardSink)
            })
        })
    });
    group.finish();
}

/// Keyed state's get and put (a running sum per key) over 100 000 keys: in memory; in memory
/// with the epoch's checkpoint file written (not synced) after every 1000 updates, a delta of
/// them, or a snapshot of every key once the deltas since the last one outgrow it; and in
/// front of RocksDB with a budget of about a tenth of the keys, so most gets load from the
/// database and most puts evict. Nothing flushes RocksDB's memtable, which grows over the run.
fn keyed_state(c: &mut Criterion) {
    const KEYS: u64 = 100_000;
    // The cache counts an entry as its encoded size (a few bytes here) plus 64.
    const ENTRY_BYTES: usize = 64 + 3;
    let mut first = 0;
    // The next `RECORDS` updates, spread over every key.
    let mut update = move |state: &mut KeyedSums| {
        for n in first..first + RECORDS {
            state
                .add(n.wrapping_mul(7919) % KEYS, 1)
                .expect("state is updated");
        }
        first += RECORDS;
    };
    let filled = |state: std::result::Result<KeyedSums, weir::StateError>| {
        let mut state = state.expect("the state opens");
        for key in 0..KEYS {
            state.add(key, 1).expect("state is updated");
        }
        state
    };
    let mut group = c.benchmark_group("keyed state");
    group.throughput(Throughput::Elements(RECORDS));
    let mut memory = filled(Ok(KeyedSums::in_memory()));
    group.bench_function("get and put, in memory", |b| b.iter(|| update(&mut memory)));
    let dir = tempfile::tempdir().expect("a temporary directory");
    let mut files = filled(KeyedSums::with_checkpoint_files(dir.path()));
    let mut epoch = Epoch(1);
    files
        .checkpoint(epoch)
        .expect("the first snapshot is written");
    group.bench_function("get and put, then the epoch's checkpoint file", |b| {
        b.iter(|| {
            update(&mut files);
            epoch = epoch.next();
            files
                .checkpoint(epoch)
                .expect("the checkpoint file is written");
        })
    });
    let rocks_dir = tempfile::tempdir().expect("a temporary directory");
    let budget = KEYS as usize / 10 * ENTRY_BYTES;
    let mut rocks = filled(KeyedSums::in_rocksdb(&rocks_dir.path().join("db"), budget));
    group.bench_function("get and put, RocksDB behind a small cache", |b| {
        b.iter(|| update(&mut rocks))
    });
    group.finish();
}

criterion_group!(benches, record_decode, log, key_hashing, jobs, keyed_state);
criterion_main!(benches);
