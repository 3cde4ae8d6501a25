//! What a running job measures of itself: counters for its runner (progress bar, summary),
//! per operator and per source partition, latency histograms, checkpoint figures; rendered in
//! the Prometheus text format by [`JobMetrics::prometheus`].

mod histogram;
mod prometheus;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub use histogram::{LatencyHistogram, BUCKET_BOUNDS_MS};

use crate::time::{Epoch, EventTime};

/// How far a source reader is behind the end of one of its partitions.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PartitionLag {
    /// The partition.
    pub partition: u32,
    /// Records after the reader's position.
    pub records: u64,
    /// How long ago the last record the reader read was written (by its timestamp), while
    /// records are left; zero once it has caught up.
    pub seconds: f64,
}

impl PartitionLag {
    /// `records` left in `partition`, whose last record read has the timestamp
    /// `last_read_ms` (milliseconds since the Unix epoch), at `now_ms`.
    pub fn new(partition: u32, records: u64, last_read_ms: Option<u64>, now_ms: u64) -> Self {
        let behind = last_read_ms
            .filter(|_| records > 0)
            .map_or(0, |at| now_ms.saturating_sub(at));
        PartitionLag {
            partition,
            records,
            seconds: behind as f64 / 1e3,
        }
    }
}

/// The counters of one operator (a source, a keyed operator or a sink), shared by the
/// workers of a process.
#[derive(Debug, Default)]
pub struct OperatorMetrics {
    records_in: AtomicU64,
    records_out: AtomicU64,
    late_records: AtomicU64,
    dead_letters: AtomicU64,
    state_keys_created: AtomicU64,
    state_keys_removed: AtomicU64,
    backpressure_ms: AtomicU64,
}

impl OperatorMetrics {
    /// Records the operator received (a sink: wrote).
    pub fn records_in(&self) -> u64 {
        self.records_in.load(Ordering::Relaxed)
    }

    /// Records the operator emitted (a source: read).
    pub fn records_out(&self) -> u64 {
        self.records_out.load(Ordering::Relaxed)
    }

    /// Records later than the operator's allowed lateness.
    pub fn late_records(&self) -> u64 {
        self.late_records.load(Ordering::Relaxed)
    }

    /// Records a source rejected.
    pub fn dead_letters(&self) -> u64 {
        self.dead_letters.load(Ordering::Relaxed)
    }

    /// Keys holding state in the operator now (created minus removed, since the job started).
    pub fn state_keys(&self) -> u64 {
        self.state_keys_created
            .load(Ordering::Relaxed)
            .saturating_sub(self.state_keys_removed.load(Ordering::Relaxed))
    }

    /// How long a source has been paused because the sinks were behind (backpressure).
    pub fn backpressure(&self) -> Duration {
        Duration::from_millis(self.backpressure_ms.load(Ordering::Relaxed))
    }

    pub(crate) fn add_in(&self, count: usize) {
        self.records_in.fetch_add(count as u64, Ordering::Relaxed);
    }

    pub(crate) fn add_out(&self, count: usize) {
        self.records_out.fetch_add(count as u64, Ordering::Relaxed);
    }

    pub(crate) fn add_late(&self, count: usize) {
        self.late_records.fetch_add(count as u64, Ordering::Relaxed);
    }

    pub(crate) fn add_dead_letters(&self, count: usize) {
        self.dead_letters.fetch_add(count as u64, Ordering::Relaxed);
    }

    pub(crate) fn add_state_keys(&self, created: u64, removed: u64) {
        self.state_keys_created
            .fetch_add(created, Ordering::Relaxed);
        self.state_keys_removed
            .fetch_add(removed, Ordering::Relaxed);
    }

    pub(crate) fn add_backpressure(&self, paused: Duration) {
        self.backpressure_ms
            .fetch_add(crate::time::millis(paused), Ordering::Relaxed);
    }
}

/// Epoch start times kept for commit latencies; older ones are dropped.
const EPOCH_STARTS_KEPT: usize = 1024;

/// Live counters of one process of a job, shared by its workers.
#[derive(Debug, Default)]
pub struct JobMetrics {
    /// By operator name (`source NAME`, the keyed operator's name, `sink NAME`).
    operators: Mutex<BTreeMap<String, Arc<OperatorMetrics>>>,
    /// By source name and partition.
    lags: Mutex<BTreeMap<(String, u32), PartitionLag>>,
    /// By source name and worker: the watermark the worker published last.
    watermarks: Mutex<BTreeMap<(String, usize), EventTime>>,
    /// When the sources of this process started each epoch (the first to start it).
    epoch_starts: Mutex<BTreeMap<Epoch, Instant>>,
    emission_latency: LatencyHistogram,
    commit_latency: LatencyHistogram,
    /// Wall-clock milliseconds of the last checkpoint completed (0: none yet).
    last_checkpoint_ms: AtomicU64,
    records_in: AtomicU64,
    records_out: AtomicU64,
    dead_letters: AtomicU64,
    late_records: AtomicU64,
    worker_checkpoints: AtomicU64,
    checkpoint_micros: AtomicU64,
    checkpoint_bytes: AtomicU64,
    largest_checkpoint_bytes: AtomicU64,
    checkpoints_completed: AtomicU64,
    restore_micros: AtomicU64,
    state_keys_created: AtomicU64,
    state_keys_removed: AtomicU64,
    restarts: AtomicU64,
}

impl JobMetrics {
    /// The counters of the operator named `name`, created on first use.
    pub(crate) fn operator(&self, name: &str) -> Arc<OperatorMetrics> {
        let mut operators = self
            .operators
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        Arc::clone(operators.entry(name.to_owned()).or_default())
    }

    /// Every operator's counters, by name.
    pub fn operators(&self) -> Vec<(String, Arc<OperatorMetrics>)> {
        let operators = self
            .operators
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        operators
            .iter()
            .map(|(name, metrics)| (name.clone(), Arc::clone(metrics)))
            .collect()
    }

    /// Replaces what `source` reported of its partitions' lag.
    pub(crate) fn set_lags(&self, source: &str, lags: &[PartitionLag]) {
        let mut all = self
            .lags
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for lag in lags {
            all.insert((source.to_owned(), lag.partition), *lag);
        }
    }

    /// The lag of every source partition read in this process, by source name.
    pub fn lags(&self) -> Vec<(String, PartitionLag)> {
        let lags = self
            .lags
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        lags.iter()
            .map(|((source, _), lag)| (source.clone(), *lag))
            .collect()
    }

    /// Notes the watermark a worker of `source` published.
    pub(crate) fn set_watermark(&self, source: &str, worker: usize, watermark: EventTime) {
        let mut watermarks = self
            .watermarks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        watermarks.insert((source.to_owned(), worker), watermark);
    }

    /// Each source's watermark in this process: the smallest its workers published.
    pub fn watermarks(&self) -> BTreeMap<String, EventTime> {
        let watermarks = self
            .watermarks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut smallest = BTreeMap::new();
        for ((source, _), watermark) in watermarks.iter() {
            smallest
                .entry(source.clone())
                .and_modify(|known: &mut EventTime| *known = (*known).min(*watermark))
                .or_insert(*watermark);
        }
        smallest
    }

    /// Notes that a source started `epoch` now (the first source to do so sets its start).
    pub(crate) fn epoch_started(&self, epoch: Epoch) {
        let mut starts = self
            .epoch_starts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        starts.entry(epoch).or_insert_with(Instant::now);
        while starts.len() > EPOCH_STARTS_KEPT {
            starts.pop_first();
        }
    }

    /// A sink committed every epoch up to `epoch`, the epochs from `after` on for the first
    /// time: counts, for each, the time since it started (the latency of its oldest record).
    pub(crate) fn record_commit(&self, after: Option<Epoch>, epoch: Epoch) {
        let starts = self
            .epoch_starts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = Instant::now();
        for (_, started) in starts
            .range(..=epoch)
            .filter(|(committed, _)| after.is_none_or(|after| **committed > after))
        {
            self.commit_latency.record(now.duration_since(*started));
        }
    }

    /// Counts one latency from ingestion to a sink's write.
    pub(crate) fn record_emission(&self, latency: Duration) {
        self.emission_latency.record(latency);
    }

    /// Latencies from a record's ingestion at a source to a sink's write of what it became,
    /// sampled each time the sinks' input passes a watermark: the time since the sources had
    /// read every record before it.
    pub fn emission_latency(&self) -> &LatencyHistogram {
        &self.emission_latency
    }

    /// Latencies from ingestion to the commit of an exactly-once sink's transaction, one per
    /// epoch and sink worker: the time from the epoch's start (its oldest record) to its
    /// commit.
    pub fn commit_latency(&self) -> &LatencyHistogram {
        &self.commit_latency
    }

    /// How long ago this process's last checkpoint completed; `None` before the first.
    pub fn checkpoint_age(&self) -> Option<Duration> {
        match self.last_checkpoint_ms.load(Ordering::Relaxed) {
            0 => None,
            at => Some(Duration::from_millis(
                crate::time::wall_clock_millis().saturating_sub(at),
            )),
        }
    }

    /// Records read by this process's sources so far.
    pub fn records_in(&self) -> u64 {
        self.records_in.load(Ordering::Relaxed)
    }

    /// Records written by this process's sinks so far.
    pub fn records_out(&self) -> u64 {
        self.records_out.load(Ordering::Relaxed)
    }

    /// Records the sources rejected (decode or validation failures).
    pub fn dead_letters(&self) -> u64 {
        self.dead_letters.load(Ordering::Relaxed)
    }

    /// Records that came later than their operator's allowed lateness (sent to late outputs).
    pub fn late_records(&self) -> u64 {
        self.late_records.load(Ordering::Relaxed)
    }

    /// Times the job restarted itself from its latest checkpoint after a failure.
    pub fn restarts(&self) -> u64 {
        self.restarts.load(Ordering::Relaxed)
    }

    /// Checkpoints this process's worker 0 completed (wrote the job manifest of).
    pub fn checkpoints_completed(&self) -> u64 {
        self.checkpoints_completed.load(Ordering::Relaxed)
    }

    /// Mean time a worker of this process took to write its part of a checkpoint (flushing
    /// the RocksDB memtable, linking files, checksums, manifest).
    pub fn mean_checkpoint_duration(&self) -> std::time::Duration {
        let count = self.worker_checkpoints.load(Ordering::Relaxed).max(1);
        std::time::Duration::from_micros(self.checkpoint_micros.load(Ordering::Relaxed) / count)
    }

    /// Bytes of state files in this process's workers' latest checkpoints, summed.
    pub fn checkpoint_bytes(&self) -> u64 {
        self.checkpoint_bytes.load(Ordering::Relaxed)
    }

    /// The largest [`checkpoint_bytes`](Self::checkpoint_bytes) seen since the job started:
    /// the state a run held at its fullest checkpoint (a bounded run's last one is often
    /// nearly empty, its windows all closed).
    pub fn largest_checkpoint_bytes(&self) -> u64 {
        self.largest_checkpoint_bytes.load(Ordering::Relaxed)
    }

    /// Keys that got state in this process's keyed operators (windows, joins, dedupe...) since
    /// the job started: keys neither in memory nor in the store when first touched.
    pub fn state_keys_created(&self) -> u64 {
        self.state_keys_created.load(Ordering::Relaxed)
    }

    /// Keys whose state this process's keyed operators dropped (fired windows, expired join
    /// records). After a fresh start, created minus removed is the number of keys holding
    /// state now: what tells whether state stays bounded on an endless stream.
    pub fn state_keys_removed(&self) -> u64 {
        self.state_keys_removed.load(Ordering::Relaxed)
    }

    pub(crate) fn add_state_keys(&self, created: u64, removed: u64) {
        if created > 0 {
            self.state_keys_created
                .fetch_add(created, Ordering::Relaxed);
        }
        if removed > 0 {
            self.state_keys_removed
                .fetch_add(removed, Ordering::Relaxed);
        }
    }

    /// The longest time a worker of this process took to restore its state from a checkpoint
    /// (verifying checksums, linking or copying files, opening the store); zero without a
    /// restore.
    pub fn restore_duration(&self) -> std::time::Duration {
        std::time::Duration::from_micros(self.restore_micros.load(Ordering::Relaxed))
    }

    pub(crate) fn add_worker_restore(&self, duration: std::time::Duration) {
        self.restore_micros
            .fetch_max(duration.as_micros() as u64, Ordering::Relaxed);
    }

    /// Notes one worker's part of a checkpoint: its duration, and its size replacing
    /// `previous_size` (that worker's last checkpoint).
    pub(crate) fn add_worker_checkpoint(
        &self,
        duration: std::time::Duration,
        size: u64,
        previous_size: u64,
    ) {
        self.worker_checkpoints.fetch_add(1, Ordering::Relaxed);
        self.checkpoint_micros
            .fetch_add(duration.as_micros() as u64, Ordering::Relaxed);
        // One update, so that another worker's checkpoint never sees this one's size added
        // and its previous size not yet taken away.
        let replace = |total: u64| total.saturating_add(size).saturating_sub(previous_size);
        let before = self
            .checkpoint_bytes
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |total| {
                Some(replace(total))
            })
            .unwrap_or_else(|total| total);
        self.largest_checkpoint_bytes
            .fetch_max(replace(before), Ordering::Relaxed);
    }

    pub(crate) fn restarted(&self) {
        self.restarts.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn add_checkpoint_completed(&self) {
        self.checkpoints_completed.fetch_add(1, Ordering::Relaxed);
        self.last_checkpoint_ms
            .store(crate::time::wall_clock_millis(), Ordering::Relaxed);
    }

    pub(crate) fn add_late_records(&self, count: usize) {
        self.late_records.fetch_add(count as u64, Ordering::Relaxed);
    }

    pub(crate) fn add_dead_letters(&self, count: usize) {
        self.dead_letters.fetch_add(count as u64, Ordering::Relaxed);
    }

    pub(crate) fn add_records_in(&self, count: usize) {
        self.records_in.fetch_add(count as u64, Ordering::Relaxed);
    }

    pub(crate) fn add_records_out(&self, count: usize) {
        self.records_out.fetch_add(count as u64, Ordering::Relaxed);
    }
}
