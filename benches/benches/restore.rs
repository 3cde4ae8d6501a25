//! How long restoring a large state takes: a job builds about 1 GiB of keyed state
//! (`WEIR_BENCH_STATE_MIB`, default 1024; one entry of 1 KiB of incompressible bytes per key)
//! on 2 workers with a checkpoint every second, and idles after its input until a checkpoint
//! holds all of it. That checkpoint is restored on the same worker count (each worker reads
//! its snapshot and delta files, checks their checksums and rebuilds its state in memory) and
//! on one worker (rescaling: the worker reads both old workers' files and keeps the key groups
//! it now owns). Prints the restore time (the slowest worker's, from the job's metrics: from
//! reading the files to the state decoded in memory) and the whole restored run's wall time
//! (its input is consumed already; it ends with a final checkpoint, a full snapshot).
//!
//! `cargo bench -p weir-benches --bench restore`. Target: restoring 1 GiB takes at most 5 s.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use weir::checkpoint::{list_checkpoints, FINAL_EPOCH};
use weir::{
    BoxError, CheckpointConfig, DiscardSink, EventTime, Job, JobConfig, KeyedContext, KeyedProcess,
    PartitionPosition, Positions, Restore, Source, SourcePoll, SourceReader, WorkerInfo,
};

const PARTITIONS: u32 = 8;
const ENTRY_BYTES: usize = 1024;

/// The keys `0..count`, partition `p` holding the keys `k % PARTITIONS == p`; worker `w`
/// reads the partitions `p % workers == w`.
#[derive(Clone)]
struct Keys {
    count: u64,
    starts: BTreeMap<u32, u64>,
    /// How long a reader idles after its last key before it finishes.
    linger: Duration,
}

struct KeysReader {
    count: u64,
    /// Partition → next index within the partition.
    next: BTreeMap<u32, u64>,
    linger: Duration,
    /// When the last key was read.
    read_all: Option<Instant>,
}

impl Source for Keys {
    type Item = u64;
    type Reader = KeysReader;
    fn name(&self) -> String {
        "keys".into()
    }
    fn open(self, worker: WorkerInfo) -> Result<KeysReader, BoxError> {
        let next = (0..PARTITIONS)
            .filter(|p| *p as usize % worker.peers == worker.index)
            .map(|p| (p, self.starts.get(&p).copied().unwrap_or(0)))
            .collect();
        Ok(KeysReader {
            count: self.count,
            next,
            linger: self.linger,
            read_all: None,
        })
    }
    fn resume_from(&mut self, positions: &Positions) -> Result<(), BoxError> {
        self.starts = positions
            .iter()
            .map(|(partition, position)| (*partition, position.next_offset))
            .collect();
        Ok(())
    }
}

impl SourceReader for KeysReader {
    type Item = u64;
    fn poll(&mut self, out: &mut Vec<u64>, max: usize) -> Result<SourcePoll, BoxError> {
        let per_partition = self.count.div_ceil(u64::from(PARTITIONS));
        let mut finished = true;
        for (partition, next) in &mut self.next {
            let end = (*next + max as u64).min(per_partition);
            out.extend(
                (*next..end)
                    .map(|index| index * u64::from(PARTITIONS) + u64::from(*partition))
                    .filter(|key| *key < self.count),
            );
            *next = end;
            finished &= end == per_partition;
        }
        if !finished {
            return Ok(SourcePoll::Ready {
                watermark: EventTime(0),
            });
        }
        let read_all = *self.read_all.get_or_insert_with(Instant::now);
        Ok(if read_all.elapsed() >= self.linger {
            SourcePoll::Finished
        } else {
            SourcePoll::Waiting {
                watermark: EventTime(0),
            }
        })
    }
    fn positions(&self) -> Option<Positions> {
        Some(
            self.next
                .iter()
                .map(|(partition, next)| (*partition, PartitionPosition::at(*next)))
                .collect(),
        )
    }
}

/// Keeps 1 KiB of pseudo-random bytes per key.
struct Remember;

impl KeyedProcess<u64, u64> for Remember {
    type State = Vec<u8>;
    type Output = u64;
    fn on_record(
        &mut self,
        _cx: &mut KeyedContext<u64, u64, u64>,
        key: &u64,
        state: &mut Vec<u8>,
        _record: u64,
        _event_time: EventTime,
    ) {
        let mut x = key.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        state.clear();
        state.extend((0..ENTRY_BYTES).map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        }));
    }
    fn on_timer(
        &mut self,
        _cx: &mut KeyedContext<u64, u64, u64>,
        _key: &u64,
        _state: &mut Vec<u8>,
        _time: EventTime,
    ) {
    }
    fn is_empty(&self, state: &Vec<u8>) -> bool {
        state.is_empty()
    }
}

/// Runs the job on `workers` with `checkpoints`; returns its wall time and the time its
/// workers took to restore.
fn run(
    work: &Path,
    source: Keys,
    workers: usize,
    checkpoints: CheckpointConfig,
) -> (Duration, Duration) {
    let state = work.join(format!("state-{workers}"));
    let _ = std::fs::remove_dir_all(&state);
    let started = Instant::now();
    let job = Job::new(
        JobConfig::default()
            .workers(workers)
            .state_dir(state)
            .checkpoints(checkpoints),
    );
    let metrics = job.metrics();
    job.run(move |p| {
        p.source(source.clone())
            .key_by(|key| *key)
            .process("remember", |_| EventTime(0), Remember)
            .results
            .sink(DiscardSink);
        Ok(())
    })
    .expect("the benchmark job runs");
    (started.elapsed(), metrics.restore_duration())
}

fn main() {
    let mib: u64 = std::env::var("WEIR_BENCH_STATE_MIB")
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or(1024);
    let keys = mib * (1 << 20) / ENTRY_BYTES as u64;
    let (base, _) = weir_benches::input_dir(&format!("weir-bench-restore-{mib}"));
    let work = base.join("work");
    let _ = std::fs::remove_dir_all(&work);
    let checkpoints = work.join("checkpoints");
    let source = Keys {
        count: keys,
        starts: BTreeMap::new(),
        // Long enough for a checkpoint of all the state to be written (about 1 s per 100 MiB
        // here) before the run ends.
        linger: Duration::from_secs(3 + mib / 100),
    };
    let (build, _) = run(
        &work,
        source.clone(),
        2,
        CheckpointConfig::new(&checkpoints).interval(Duration::from_secs(1)),
    );
    // The newest periodic checkpoint: taken after the last key, while the sources idled.
    let full = list_checkpoints(&checkpoints)
        .expect("the checkpoints are listed")
        .into_iter()
        .filter(|checkpoint| checkpoint.epoch != FINAL_EPOCH)
        .max_by_key(|checkpoint| checkpoint.epoch)
        .expect("the run took periodic checkpoints");
    let consumed: u64 = full
        .sources
        .iter()
        .flat_map(|source| {
            source
                .partitions
                .iter()
                .flat_map(|partitions| partitions.values().map(|position| position.next_offset))
        })
        .sum();
    assert_eq!(
        consumed,
        keys.div_ceil(u64::from(PARTITIONS)) * u64::from(PARTITIONS),
        "the newest periodic checkpoint holds every key"
    );
    let size_mib = full.size as f64 / f64::from(1 << 20);
    println!(
        "built {keys} keys of {ENTRY_BYTES} B on 2 workers in {:.1} s; checkpoint {} holds {size_mib:.0} MiB of state",
        build.as_secs_f64(),
        full.epoch,
    );
    let restore = |workers| {
        let source = Keys {
            linger: Duration::ZERO,
            ..source.clone()
        };
        run(
            &work,
            source,
            workers,
            CheckpointConfig::new(&checkpoints).restore(Restore::Path(full.path.clone())),
        )
    };
    println!("{:<48} {:>10} {:>10}", "restore", "restore s", "run s");
    let (same_run, same) = restore(2);
    println!(
        "{:<48} {:>10.2} {:>10.2}",
        "on 2 workers (read, check, decode)",
        same.as_secs_f64(),
        same_run.as_secs_f64()
    );
    let (rescaled_run, rescaled) = restore(1);
    println!(
        "{:<48} {:>10.2} {:>10.2}",
        "on 1 worker (rescale: both workers' files)",
        rescaled.as_secs_f64(),
        rescaled_run.as_secs_f64()
    );
    println!(
        "target: restoring 1 GiB takes <= 5 s (measured {:.2} s for {size_mib:.0} MiB on the same worker count, {:.2} s rescaled)",
        same.as_secs_f64(),
        rescaled.as_secs_f64(),
    );
    let _ = std::fs::remove_dir_all(&work);
}
