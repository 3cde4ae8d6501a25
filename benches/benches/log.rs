//! Reading real bytes: Nexmark q0, q1, q5, q11 and q17 over a topic of the embedded log (8 partitions,
//! binary events) and over the same events as a JSON lines file, on 1 and 2 workers. Prints
//! events/s and MB/s of input; checks only that every event was read.
//!
//! `cargo bench -p weir-benches --bench log` (set `WEIR_BENCH_EVENTS`, default 10 M; the
//! input is written once under `WEIR_BENCH_DIR`, default the system's temporary directory,
//! and reused by later runs).

use std::path::{Path, PathBuf};
use std::time::Duration;

use weir::{write_json_lines, Job, JobConfig};
use weir_nexmark::{EventInput, Generator, GeneratorConfig};

/// The benchmark's input: a topic and a JSON lines file of the same events.
struct Input {
    topic: PathBuf,
    file: PathBuf,
}

/// Writes the input unless an earlier run left it complete.
fn prepare(events: u64) -> Input {
    let (base, complete) = weir_benches::input_dir(&format!("weir-bench-log-{events}"));
    let input = Input {
        topic: base.join("events"),
        file: base.join("events.jsonl"),
    };
    if complete {
        return input;
    }
    weir_benches::write_topic(&input.topic, events);
    let generator = Generator::new(GeneratorConfig::default());
    let file = std::fs::File::create(&input.file).expect("the JSON lines file is created");
    let mut writer = std::io::BufWriter::with_capacity(1 << 20, file);
    write_json_lines(
        &input.file,
        &mut writer,
        (0..events).map(|id| generator.event(id)),
    )
    .expect("the JSON lines file is written");
    std::io::Write::flush(&mut writer).expect("the JSON lines file is flushed");
    weir_benches::mark_complete(&base);
    input
}

/// Bytes of regular files under `path`.
fn bytes_under(path: &Path) -> u64 {
    let meta = std::fs::metadata(path).expect("the input exists");
    if meta.is_file() {
        return meta.len();
    }
    std::fs::read_dir(path)
        .expect("the input directory is readable")
        .map(|entry| bytes_under(&entry.expect("a directory entry").path()))
        .sum()
}

/// Runs the query `name` on `workers` workers over the topic or the file; returns the wall
/// time.
fn run(input: &Path, from_log: bool, workers: usize, events: u64, name: &str) -> Duration {
    let input = if from_log {
        EventInput::Log {
            topic: input.to_owned(),
            disorder: Duration::ZERO,
            max_rate: None,
        }
    } else {
        EventInput::JsonLines {
            path: input.to_owned(),
            disorder: Duration::ZERO,
        }
    };
    let job = Job::new(JobConfig::default().workers(workers));
    weir_benches::run_query(job, input, events, name).wall
}

fn main() {
    let events: u64 = std::env::var("WEIR_BENCH_EVENTS")
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or(10_000_000);
    let input = prepare(events);
    let sources = [
        ("log", &input.topic, true),
        ("json lines", &input.file, false),
    ];
    println!("Nexmark over {events} events read from disk (page cache warm after the first run)");
    println!(
        "{:<16} {:>8} {:>12} {:>10}",
        "query / input", "workers", "M events/s", "MB/s"
    );
    let queries = ["q0", "q1", "q5", "q11", "q17"];
    for (source, path, from_log) in sources {
        let bytes = bytes_under(path) as f64;
        for name in queries {
            for workers in [1, 2] {
                let wall = run(path, from_log, workers, events, name).as_secs_f64();
                println!(
                    "{:<16} {workers:>8} {:>12.2} {:>10.0}",
                    format!("{name} / {source}"),
                    events as f64 / wall / 1e6,
                    bytes / wall / 1e6
                );
            }
        }
    }
}
