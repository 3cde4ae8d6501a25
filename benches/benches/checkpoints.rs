//! What checkpoints and RocksDB cost: Nexmark q5 on 2 workers over a topic of 10 M events
//! (`WEIR_BENCH_EVENTS`), run three ways in one process, one after the other:
//!
//! 1. state in memory, no checkpoints;
//! 2. state in memory, a checkpoint every second;
//! 3. state in RocksDB with a cache budget of a tenth of the state (the largest checkpoint of
//!    run 2, encoded), a checkpoint every second.
//!
//! Prints events/s of each and the ratios the targets are stated in, and the checkpoints'
//! count, mean duration and size. `cargo bench -p weir-benches --bench checkpoints`.

use std::path::Path;
use std::time::Duration;

use weir::checkpoint::{list_checkpoints, FINAL_EPOCH};
use weir::{CheckpointConfig, Job, JobConfig, JobMetrics, StateBackend};
use weir_examples::nexmark::q5;

const WORKERS: usize = 2;

struct Outcome {
    events_per_second: f64,
    checkpoints: u64,
    mean_checkpoint: Duration,
    largest_checkpoint: u64,
}

fn run_q5(topic: &Path, work: &Path, events: u64, config: JobConfig) -> Outcome {
    let _ = std::fs::remove_dir_all(work);
    let job = Job::new(config.workers(WORKERS).state_dir(work.join("state")));
    let metrics: std::sync::Arc<JobMetrics> = job.metrics();
    let report = weir_benches::run_on_topic(job, topic, events, q5);
    let largest_checkpoint = list_checkpoints(&work.join("checkpoints"))
        .expect("the checkpoints are listed")
        .iter()
        .filter(|checkpoint| checkpoint.epoch != FINAL_EPOCH)
        .map(|checkpoint| checkpoint.size)
        .max()
        .unwrap_or(0);
    Outcome {
        events_per_second: events as f64 / report.wall.as_secs_f64(),
        checkpoints: metrics.checkpoints_completed(),
        mean_checkpoint: metrics.mean_checkpoint_duration(),
        largest_checkpoint,
    }
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
    let memory = run_q5(&topic, &work, events, JobConfig::default());
    let baseline = memory.events_per_second;
    print("memory, no checkpoints", &memory, baseline);
    let checkpointed = run_q5(
        &topic,
        &work,
        events,
        JobConfig::default().checkpoints(every_second()),
    );
    print("memory, checkpoint every 1 s", &checkpointed, baseline);
    let budget = (checkpointed.largest_checkpoint / 10).max(64 << 10) as usize;
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
        "targets: checkpoints cost <= 10 % (measured {:.0} %), a tenth of memory >= 30 % of memory throughput (measured {:.0} %)",
        (1.0 - checkpointed.events_per_second / baseline) * 100.0,
        spilled.events_per_second / baseline * 100.0
    );
    let _ = std::fs::remove_dir_all(&work);
}
