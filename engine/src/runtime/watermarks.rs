//! The watermarks of one process's source workers, shared so that a dormant worker can follow
//! the active ones.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Instant;

use crate::time::EventTime;

/// Watermark advances remembered for latency samples.
const REACHED_KEPT: usize = 4096;

/// The watermarks of one process's source workers, so that a dormant worker can follow the
/// active ones instead of holding the job back.
#[derive(Debug, Default)]
pub(crate) struct WatermarkBoard {
    /// `(source number, worker) -> Some(watermark)` when active, `None` when dormant.
    entries: Mutex<HashMap<(usize, usize), Option<EventTime>>>,
    /// When the smallest watermark of every active source worker reached each value, oldest
    /// first: by then the sources had read every record before it.
    reached: Mutex<VecDeque<(EventTime, Instant)>>,
}

impl WatermarkBoard {
    pub(crate) fn publish(&self, source: usize, worker: usize, watermark: Option<EventTime>) {
        let Ok(mut entries) = self.entries.lock() else {
            return;
        };
        entries.insert((source, worker), watermark);
        let Some(smallest) = entries.values().flatten().min().copied() else {
            return;
        };
        drop(entries);
        if let Ok(mut reached) = self.reached.lock() {
            if reached.back().is_none_or(|(known, _)| smallest > *known) {
                reached.push_back((smallest, Instant::now()));
                if reached.len() > REACHED_KEPT {
                    reached.pop_front();
                }
            }
        }
    }

    /// The greatest watermark at most `watermark` that every active source worker of this
    /// process had reached, and when they had: `None` if none is remembered.
    pub(crate) fn reached(&self, watermark: EventTime) -> Option<(EventTime, Instant)> {
        let reached = self.reached.lock().ok()?;
        let after = reached.partition_point(|(known, _)| *known <= watermark);
        after
            .checked_sub(1)
            .and_then(|last| reached.get(last).copied())
    }

    pub(crate) fn retire(&self, source: usize, worker: usize) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.remove(&(source, worker));
        }
    }

    /// The smallest watermark of the source's active workers, if any is active.
    pub(crate) fn active_watermark(&self, source: usize) -> Option<EventTime> {
        let entries = self.entries.lock().ok()?;
        entries
            .iter()
            .filter(|((number, _), _)| *number == source)
            .filter_map(|(_, watermark)| *watermark)
            .min()
    }
}
