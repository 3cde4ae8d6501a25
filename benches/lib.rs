//! weir's benchmarks live in `benches/`: `cargo bench -p weir-benches --bench nexmark` runs
//! the Nexmark throughput harness, `--bench log` reads the events from a log topic and a JSON
//! lines file, `--bench checkpoints` measures the cost of checkpoints and of state in RocksDB,
//! `--bench restore` the time to restore 1 GiB of state, `--bench joins` the join queries,
//! `--bench kafka` reading from and writing to Apache Kafka (exactly-once against at-least-once),
//! `--bench generator` and `--bench hot_paths` run the criterion micro-benchmarks (the second
//! covers the per-record hot paths: decoding, the log, key hashing, the exchange, windows and
//! keyed state).

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use weir::Destination;
use weir::{Job, JobReport};
use weir_nexmark::{write_events_to_topic, EventInput, GeneratorConfig, Output};

/// The benchmarks allocate with mimalloc, as the `weir` binary does.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Partitions of the benchmarks' input topics.
pub const PARTITIONS: u32 = 8;

/// Where benchmark inputs are written once and reused: `WEIR_BENCH_DIR/name`, by default under
/// the system's temporary directory. Returns the directory and whether an earlier run left it
/// complete; an incomplete one is emptied.
pub fn input_dir(name: &str) -> (PathBuf, bool) {
    let base = std::env::var_os("WEIR_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir)
        .join(name);
    if base.join("complete").exists() {
        return (base, true);
    }
    if base.exists() {
        std::fs::remove_dir_all(&base).expect("the old input is removed");
    }
    std::fs::create_dir_all(&base).expect("the input directory is created");
    (base, false)
}

/// Marks an input directory from [`input_dir`] complete.
pub fn mark_complete(base: &Path) {
    std::fs::write(base.join("complete"), b"").expect("the input is marked complete");
}

/// Writes `events` generated Nexmark events to a topic at `dir` ([`PARTITIONS`] partitions,
/// binary events).
pub fn write_topic(dir: &Path, events: u64) {
    println!("writing {events} events to {} ...", dir.display());
    write_events_to_topic(
        dir,
        PARTITIONS,
        &GeneratorConfig::default(),
        events,
        &AtomicU64::new(0),
    )
    .expect("the topic is written");
}

/// A topic of `events` Nexmark events under [`input_dir`], written by the first benchmark
/// that needs it and shared by the others.
pub fn nexmark_topic(events: u64) -> PathBuf {
    let (base, complete) = input_dir(&format!("weir-bench-topic-{events}"));
    let topic = base.join("events");
    if !complete {
        write_topic(&topic, events);
        mark_complete(&base);
    }
    topic
}

/// Runs the registry's query `name` as `job` over every event of the topic at `topic` (to
/// its end, watermarks following the event times); see [`run_query`].
pub fn run_on_topic(job: Job, topic: &Path, events: u64, name: &str) -> JobReport {
    let input = EventInput::Log {
        topic: topic.to_owned(),
        disorder: Duration::ZERO,
        max_rate: None,
    };
    run_query(job, input, events, name)
}

/// Runs the registry's query `name` as `job` over `input`, discarding its results (an
/// updating query's changes as they come, without building its final view); checks that
/// every one of `events` was read.
pub fn run_query(job: Job, input: EventInput, events: u64, name: &str) -> JobReport {
    run_query_into(job, input, events, name, Destination::Discard)
}

/// Runs the registry's query `name` as `job` over `input` into `sink` (an updating query's
/// changes as they come); checks that every one of `events` was read.
pub fn run_query_into(
    job: Job,
    input: EventInput,
    events: u64,
    name: &str,
    sink: Destination,
) -> JobReport {
    let Some(query) = weir_nexmark::query(name) else {
        panic!("the registry has no query {name}");
    };
    let output = Output {
        sink,
        changelog: true,
        ..Output::discard()
    };
    let report = job
        .run(move |p| {
            let events = input.stream(p);
            (query.build)(p, events, &output);
            Ok(())
        })
        .expect("the benchmark job runs");
    assert_eq!(report.records_in, events, "every event was read");
    report
}
