//! What checkpoints and RocksDB cost: Nexmark q5 on 2 workers over a topic of 10 M events
//! (`WEIR_BENCH_EVENTS`), run in one process, one run after the other:
//!
//! 1. state in memory, no checkpoints, and 2. state in memory, a checkpoint every second,
//!    alternating for `WEIR_BENCH_ROUNDS` rounds (default 3; the machine's speed drifts, so
//!    the ratio is that of the medians of runs taken side by side);
//! 3. state in RocksDB with a cache budget of a tenth of the state (the largest snapshot of
//!    the in-memory state seen in run 2, encoded), a checkpoint every second.
//!
//! Prints events/s of each and the ratios the targets are stated in, and the checkpoints'
//! count, mean duration and size. `cargo bench -p weir-benches --bench checkpoints`.

use std::path::Path;
use std::time::Duration;

use weir::checkpoint::{list_checkpoints, FINAL_EPOCH};
use weir::{CheckpointConfig, Job, JobConfig, JobMetrics, StateBackend};

const WORKERS: usize = 2;

struct Outcome {
    events_per_second: f64,
    checkpoints: u64,
    mean_checkpoint: Duration,
    largest_checkpoint: u64,
    largest_snapshot: u64,
}

fn run_q5(topic: &Path, work: &Path, events: u64, config: JobConfig) -> Outcome {
    let _ = std::fs::remove_dir_all(work);
    let job = Job::new(config.workers(WORKERS).state_dir(work.join("state")));
    let metrics: std::sync::Arc<JobMetrics> = job.metrics();
    let report = weir_benches::run_on_topic(job, topic, events, "q5");
    let checkpoints: Vec<_> = list_checkpoints(&work.join("checkpoints"))
        .expect("the checkpoints are listed")
        .into_iter()
        .filter(|checkpoint| checkpoint.epoch != FINAL_EPOCH)
        .collect();
    Outcome {
        events_per_second: events as f64 / report.wall.as_secs_f64(),
        checkpoints: metrics.checkpoints_completed(),
        mean_checkpoint: metrics.mean_checkpoint_duration(),
        largest_checkpoint: checkpoints.iter().map(|c| c.size).max().unwrap_or(0),
        largest_snapshot: checkpoints
            .iter()
            .map(|c| snapshot_bytes(&c.path))
            .max()
            .unwrap_or(0),
    }
}

/// Bytes of the snapshot files in a checkpoint of in-memory state: the encoded state as of
/// each operator's last snapshot (a checkpoint also holds the deltas after it).
fn snapshot_bytes(checkpoint: &Path) -> u64 {
    let files = std::fs::read_dir(checkpoint)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|entry| entry.path().is_dir())
        .flat_map(|worker| {
            std::fs::read_dir(worker.path())
                .into_iter()
                .flatten()
                .flatten()
        });
    files
        .filter(|file| file.path().extension().is_some_and(|e| e == "snap"))
        .filter_map(|file| file.metadata().ok())
        .map(|metadata| metadata.len())
        .sum()
}

fn print(name: &str, outcome: &Outcome, baseline: f64) {
    println!(
        "{name:<44} {:>8.2} {:>9.0} % {:>6} {:>9.1} {:>10.1}",
        outcome.events_per_second / 1e6,
        outcome.events_per_second / baseline * 100.0,
        outcome.checkpoints,
        outcome.mean_checkpoint.as_secs_f64() * 1e3,
        outcome.largest_checkpoint as f64 / f64::from(1 << 20),
    );
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() {
    let events: u64 = std::env::var("WEIR_BENCH_EVENTS")
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or(10_000_000);
    let topic = weir_benches::nexmark_topic(events);
    let work = std::env::temp_dir().join(format!(
        "weir-bench-checkpoints-work-{}",
        std::process::id()
    ));
    let every_second =
        || CheckpointConfig::new(work.join("checkpoints")).interval(Duration::from_secs(1));
    println!("Nexmark q5 on {WORKERS} workers over {events} events from a topic");
    println!(
        "{:<44} {:>8} {:>11} {:>6} {:>9} {:>10}",
        "run", "M ev/s", "vs memory", "ckpts", "mean ms", "state MiB"
    );
    let rounds: usize = std::env::var("WEIR_BENCH_ROUNDS")
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or(3)
        .max(1);
    let (mut memory, mut checkpointed) = (Vec::new(), Vec::new());
    for round in 1..=rounds {
        let plain = run_q5(&topic, &work, events, JobConfig::default());
        let baseline = plain.events_per_second;
        print(
            &format!("round {round}: memory, no checkpoints"),
            &plain,
            baseline,
        );
        let with = run_q5(
            &topic,
            &work,
            events,
            JobConfig::default().checkpoints(every_second()),
        );
        print(
            &format!("round {round}: memory, checkpoint every 1 s"),
            &with,
            baseline,
        );
        memory.push(plain);
        checkpointed.push(with);
    }
    let baseline = median(memory.iter().map(|o| o.events_per_second).collect());
    let with_checkpoints = median(checkpointed.iter().map(|o| o.events_per_second).collect());
    let state = checkpointed
        .iter()
        .map(|o| o.largest_snapshot)
        .max()
        .unwrap_or(0);
    let budget = (state / 10).max(64 << 10) as usize;
    let spilled = run_q5(
        &topic,
        &work,
        events,
        JobConfig::default()
            .state_backend(StateBackend::RocksDb {
                memory_budget: budget,
            })
            .checkpoints(every_second()),
    );
    print(
        &format!("RocksDB, {} KiB budget, checkpoint every 1 s", budget >> 10),
        &spilled,
        baseline,
    );
    println!(
        "medians of {rounds} rounds: memory {:.2} M ev/s, with checkpoints {:.2} M ev/s; state {:.1} MiB",
        baseline / 1e6,
        with_checkpoints / 1e6,
        state as f64 / f64::from(1 << 20)
    );
    println!(
        "targets: checkpoints cost <= 10 % (measured {:.0} %), a tenth of memory >= 30 % of memory throughput (measured {:.0} %)",
        (1.0 - with_checkpoints / baseline) * 100.0,
        spilled.events_per_second / baseline * 100.0
    );
    let _ = std::fs::remove_dir_all(&work);
}
