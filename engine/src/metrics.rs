//! Counters a running job exposes to its runner (progress bar, summary).

use std::sync::atomic::{AtomicU64, Ordering};

/// Live counters of one process of a job, shared by its workers.
#[derive(Debug, Default)]
pub struct JobMetrics {
    records_in: AtomicU64,
    records_out: AtomicU64,
    dead_letters: AtomicU64,
    late_records: AtomicU64,
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
