//! Watermark strategies: how a source derives its watermark from the event times it reads.

use weir_engine::EventTime;

/// Tracks the watermark of one input (a partition, a file) whose events arrive at most
/// `bound` milliseconds out of order: after seeing event time `t`, no event below `t - bound`
/// is expected any more.
///
/// ```
/// use weir_operators::watermark::BoundedOutOfOrderness;
/// let mut watermark = BoundedOutOfOrderness::new(4_000);
/// watermark.observe(10_000);
/// watermark.observe(9_000); // out of order, within the bound
/// assert_eq!(watermark.current(), 6_000);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BoundedOutOfOrderness {
    bound: EventTime,
    max_seen: Option<EventTime>,
}

impl BoundedOutOfOrderness {
    /// A tracker for events at most `bound` milliseconds out of order.
    pub fn new(bound: EventTime) -> Self {
        BoundedOutOfOrderness {
            bound,
            max_seen: None,
        }
    }

    /// A tracker for events that arrive in time order (a bound of zero).
    pub fn monotonic() -> Self {
        Self::new(0)
    }

    /// Takes note of an event's time.
    pub fn observe(&mut self, event_time: EventTime) {
        self.max_seen = Some(self.max_seen.map_or(event_time, |max| max.max(event_time)));
    }

    /// The watermark: the largest event time seen minus the bound, 0 before any event.
    pub fn current(&self) -> EventTime {
        self.max_seen
            .map_or(0, |max| max.saturating_sub(self.bound))
    }

    /// Whether an event at `event_time` is late: below the current watermark.
    pub fn is_late(&self, event_time: EventTime) -> bool {
        event_time < self.current()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Events that lag their in-order time by at most the bound are never late, and the
        /// watermark never goes back.
        #[test]
        fn disorder_within_the_bound_is_never_late(
            mut in_order in proptest::collection::vec(0u64..1_000_000, 1..200),
            lags in proptest::collection::vec(0u64..5_000, 200),
            bound in 0u64..5_000,
        ) {
            in_order.sort_unstable();
            let mut tracker = BoundedOutOfOrderness::new(bound);
            let mut watermark = 0;
            for (time, lag) in in_order.iter().zip(&lags) {
                let event_time = time.saturating_sub(lag % (bound + 1));
                prop_assert!(!tracker.is_late(event_time));
                tracker.observe(event_time);
                prop_assert!(tracker.current() >= watermark);
                watermark = tracker.current();
            }
        }
    }

    #[test]
    fn starts_at_zero_and_follows_the_maximum() {
        let mut tracker = BoundedOutOfOrderness::monotonic();
        assert_eq!(tracker.current(), 0);
        tracker.observe(50);
        tracker.observe(20);
        assert_eq!(tracker.current(), 50);
        assert!(tracker.is_late(20));
        assert!(!tracker.is_late(50));
    }
}
