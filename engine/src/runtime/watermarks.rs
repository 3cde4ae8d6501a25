//! The watermarks of one process's source workers, shared so that a dormant worker can follow
//! the active ones.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::time::EventTime;

/// The watermarks of one process's source workers, so that a dormant worker can follow the
/// active ones instead of holding the job back.
#[derive(Debug, Default)]
pub(crate) struct WatermarkBoard {
    /// `(source number, worker) -> Some(watermark)` when active, `None` when dormant.
    entries: Mutex<HashMap<(usize, usize), Option<EventTime>>>,
}

impl WatermarkBoard {
    pub(crate) fn publish(&self, source: usize, worker: usize, watermark: Option<EventTime>) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.insert((source, worker), watermark);
        }
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
