//! Named crash points on the checkpoint and commit path (and in log compaction), so that tests can kill a job at
//! every step of the protocol instead of at random moments.
//!
//! Each step calls [`crash_point`] with its name (one of [`CRASH_POINTS`]). In a normal run
//! that costs one relaxed atomic load. Three environment variables, read once per process,
//! turn the points on:
//!
//! - `WEIR_CRASH_AT=N`: the process kills itself with SIGKILL at the N-th point it passes
//!   (counting from 1), after printing the point's name on standard error;
//! - `WEIR_CRASH_POINT=NAME[,NAME..]`: count only the points of these names;
//! - `WEIR_CRASH_LOG=FILE`: append the name of every point passed to `FILE`, one a line, so
//!   that a test learns how many points a run passes.

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};

/// Every crash point, in the order a checkpoint passes them.
pub const CRASH_POINTS: &[&str] = &[
    // A sink makes its epoch's transaction durable (the call, and the sink's own steps).
    "sink.pre_commit",
    "log_sink.prepared",
    "file_sink.prepared",
    "kafka_sink.prepared",
    // A worker writes its state checkpoint, then its manifest.
    "checkpoint.state",
    "checkpoint.worker_manifest",
    // Worker 0 writes the job manifest: the checkpoint is complete.
    "checkpoint.job_manifest",
    // Sinks make the checkpoint's transactions visible.
    "sink.commit",
    "log_sink.commit_marked",
    "log_sink.commit_appended",
    "file_sink.published",
    // The Kafka sink has produced an epoch's records and marker in a transaction (the second
    // point only for a transaction with records), then committed it.
    "kafka_sink.produced",
    "kafka_sink.produced_records",
    "kafka_sink.committed",
    // Old checkpoints are deleted.
    "checkpoint.gc",
    // A restore deletes the checkpoints after the one it restores.
    "restore.cleanup",
    // A compaction of a log partition: its compacted file is written, marked as ready to
    // swap in, has replaced the run's first segment, and the run's other segments are gone.
    "compaction.cleaned",
    "compaction.swap_ready",
    "compaction.replaced",
    "compaction.deleted",
];

struct Plan {
    crash_at: Option<u64>,
    only: Option<Vec<String>>,
    log: Option<Mutex<std::fs::File>>,
}

static PLAN: OnceLock<Option<Plan>> = OnceLock::new();
static PASSED: AtomicU64 = AtomicU64::new(0);

fn plan() -> &'static Option<Plan> {
    PLAN.get_or_init(|| {
        let crash_at = std::env::var("WEIR_CRASH_AT")
            .ok()
            .and_then(|n| n.parse().ok());
        let only = std::env::var("WEIR_CRASH_POINT")
            .ok()
            .map(|names| names.split(',').map(str::to_owned).collect());
        let log = std::env::var("WEIR_CRASH_LOG").ok().and_then(|path| {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .ok()
                .map(Mutex::new)
        });
        (crash_at.is_some() || log.is_some()).then_some(Plan {
            crash_at,
            only,
            log,
        })
    })
}

/// Marks the step `name` of the checkpoint or commit path: under `WEIR_CRASH_AT` the process
/// may die here, as a power cut or `kill -9` would kill it.
pub fn crash_point(name: &'static str) {
    debug_assert!(CRASH_POINTS.contains(&name), "unknown crash point {name}");
    let Some(plan) = plan() else {
        return;
    };
    if plan
        .only
        .as_ref()
        .is_some_and(|only| !only.iter().any(|listed| listed == name))
    {
        return;
    }
    let passed = PASSED.fetch_add(1, Ordering::SeqCst) + 1;
    if let Some(log) = &plan.log {
        if let Ok(mut file) = log.lock() {
            let _ = writeln!(file, "{name}");
        }
    }
    if plan.crash_at == Some(passed) {
        eprintln!("weir: crash point {name} (point {passed} of this run): killing the process");
        let _ =
            rustix::process::kill_process(rustix::process::getpid(), rustix::process::Signal::KILL);
        // SIGKILL cannot be caught; nothing runs past it.
        loop {
            std::thread::park();
        }
    }
}
