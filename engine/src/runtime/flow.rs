//! Backpressure: how far the job's sinks are behind its sources, in processing time.
//!
//! Every record carries the [`FlowTick`] at which its source emitted it, so a sink's input
//! frontier holds the tick of the oldest record that may still reach it: queued in a channel,
//! held by an operator, or in flight to another process. Each sink publishes that tick here
//! whenever it runs; a source pauses while the oldest published tick is further behind the
//! current one than the job's in-flight limit, and goes on once the sinks catch up. Records in
//! flight are so bounded by what the sources emit within that limit, whatever the pipeline
//! does with them and on whichever worker or process they are queued, and a slow sink slows
//! the sources to its own pace instead of letting the job's memory grow.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use crate::time::FlowTick;

/// The input frontiers of one process's sinks, as flow ticks.
#[derive(Debug, Default)]
pub(crate) struct FlowBoard {
    sinks: RwLock<Vec<Arc<AtomicU64>>>,
}

impl FlowBoard {
    /// A place for one sink operator (on one worker) to publish its frontier's tick; it holds
    /// no source back until the sink first publishes.
    pub(crate) fn sink_slot(&self) -> SinkSlot {
        let slot = Arc::new(AtomicU64::new(FlowTick::MAX.0));
        if let Ok(mut sinks) = self.sinks.write() {
            sinks.push(Arc::clone(&slot));
        }
        SinkSlot(slot)
    }

    /// How long before `now` the oldest record still on its way to a sink was emitted; zero
    /// when the sinks have everything (or there are none).
    pub(crate) fn behind(&self, now: FlowTick) -> Duration {
        let Ok(sinks) = self.sinks.read() else {
            return Duration::ZERO;
        };
        let oldest = sinks
            .iter()
            .map(|slot| FlowTick(slot.load(Ordering::Relaxed)))
            .min()
            .unwrap_or(FlowTick::MAX);
        oldest.before(now)
    }
}

/// Where one sink operator publishes the flow tick of its input frontier.
#[derive(Debug)]
pub(crate) struct SinkSlot(Arc<AtomicU64>);

impl SinkSlot {
    /// Publishes the tick of the sink's input frontier ([`FlowTick::MAX`] once it has ended).
    /// Tick zero is the sources' initial one, before they first told the time: it holds
    /// nothing back.
    pub(crate) fn publish(&self, tick: FlowTick) {
        let tick = if tick == FlowTick::default() {
            FlowTick::MAX
        } else {
            tick
        };
        self.0.store(tick.0, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::FLOW_TICK;

    #[test]
    fn the_slowest_sink_decides() {
        let board = FlowBoard::default();
        assert_eq!(board.behind(FlowTick(100)), Duration::ZERO);
        let (fast, slow) = (board.sink_slot(), board.sink_slot());
        // Sinks that have not run yet, or not since the sources started, hold nothing back.
        assert_eq!(board.behind(FlowTick(100)), Duration::ZERO);
        fast.publish(FlowTick::default());
        assert_eq!(board.behind(FlowTick(100)), Duration::ZERO);
        fast.publish(FlowTick(99));
        slow.publish(FlowTick(90));
        assert_eq!(board.behind(FlowTick(100)), FLOW_TICK * 10);
        slow.publish(FlowTick::MAX);
        assert_eq!(board.behind(FlowTick(100)), FLOW_TICK);
    }
}
