//! Counters a running job exposes to its runner (progress bar, summary).

use std::sync::atomic::{AtomicU64, Ordering};

/// Live counters of one process of a job, shared by its workers.
#[derive(Debug, Default)]
pub struct JobMetrics {
    records_in: AtomicU64,
    records_out: AtomicU64,
    dead_letters: AtomicU64,
    late_records: AtomicU64,
    worker_checkpoints: AtomicU64,
    checkpoint_micros: AtomicU64,
    checkpoint_bytes: AtomicU64,
    checkpoints_completed: AtomicU64,
    restore_micros: AtomicU64,
    state_keys_created: AtomicU64,
    state_keys_removed: AtomicU64,
    restarts: AtomicU64,
}

impl JobMetrics {
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
        self.checkpoint_bytes.fetch_add(size, Ordering::Relaxed);
        self.checkpoint_bytes
            .fetch_sub(previous_size, Ordering::Relaxed);
    }

    pub(crate) fn restarted(&self) {
        self.restarts.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn add_checkpoint_completed(&self) {
        self.checkpoints_completed.fetch_add(1, Ordering::Relaxed);
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
