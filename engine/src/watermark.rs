//! Watermark strategies: how a source derives its watermark from the event times it reads.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::checkpoint::positions::{PartitionPosition, Positions};
use crate::time::EventTime;

/// Tracks the watermark of one input (a partition, a file) whose events arrive at most
/// `bound` out of order: after seeing event time `t`, no event below `t - bound` is expected
/// any more.
///
/// ```
/// use std::time::Duration;
/// use weir_engine::watermark::BoundedOutOfOrderness;
/// use weir_engine::EventTime;
/// let mut watermark = BoundedOutOfOrderness::new(Duration::from_secs(4));
/// watermark.observe(EventTime(10_000));
/// watermark.observe(EventTime(9_000)); // out of order, within the bound
/// assert_eq!(watermark.current(), EventTime(6_000));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BoundedOutOfOrderness {
    bound: Duration,
    max_seen: Option<EventTime>,
}

impl BoundedOutOfOrderness {
    /// A tracker for events at most `bound` out of order.
    pub fn new(bound: Duration) -> Self {
        BoundedOutOfOrderness {
            bound,
            max_seen: None,
        }
    }

    /// A tracker for events that arrive in time order (a bound of zero).
    pub fn monotonic() -> Self {
        Self::new(Duration::ZERO)
    }

    /// Takes note of an event's time.
    pub fn observe(&mut self, event_time: EventTime) {
        self.max_seen = Some(self.max_seen.map_or(event_time, |max| max.max(event_time)));
    }

    /// The watermark: the largest event time seen minus the bound, the Unix epoch before any
    /// event.
    pub fn current(&self) -> EventTime {
        self.max_seen
            .map_or(EventTime::ZERO, |max| max.saturating_sub(self.bound))
    }

    /// Whether an event at `event_time` is late: below the current watermark.
    pub fn is_late(&self, event_time: EventTime) -> bool {
        event_time < self.current()
    }
}

/// A source's watermark strategy: how far out of order events may come, and after how long
/// without records a partition stops holding the watermark back.
///
/// ```
/// use std::time::Duration;
/// use weir_engine::watermark::Watermarks;
/// use weir_engine::EventTime;
/// let strategy = Watermarks::bounded(Duration::from_secs(4)).idle_after(Duration::from_secs(30));
/// assert_eq!(strategy.watermark_after(EventTime(10_000)), EventTime(6_000));
/// // Any rule from the largest event time seen, for instance whole seconds only:
/// let seconds = Watermarks::custom(|max_seen| EventTime(max_seen.millis() / 1_000 * 1_000));
/// assert_eq!(seconds.watermark_after(EventTime(12_345)), EventTime(12_000));
/// ```
#[derive(Clone, Debug)]
pub struct Watermarks {
    rule: WatermarkRule,
    idle_after: Option<Duration>,
}

/// How a partition's watermark follows the largest event time it has seen.
#[derive(Clone)]
enum WatermarkRule {
    /// That time minus a bound.
    Bounded(Duration),
    /// A user's function of that time (clamped so the watermark never passes it).
    Custom(Arc<dyn Fn(EventTime) -> EventTime + Send + Sync>),
}

impl std::fmt::Debug for WatermarkRule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WatermarkRule::Bounded(bound) => write!(f, "Bounded({bound:?})"),
            WatermarkRule::Custom(_) => write!(f, "Custom"),
        }
    }
}

impl Default for Watermarks {
    /// Events up to 5 s out of order; partitions never count as idle.
    fn default() -> Self {
        Watermarks::bounded(Duration::from_secs(5))
    }
}

impl Watermarks {
    /// Events arrive at most `out_of_orderness` late.
    pub fn bounded(out_of_orderness: Duration) -> Self {
        Watermarks {
            rule: WatermarkRule::Bounded(out_of_orderness),
            idle_after: None,
        }
    }

    /// The watermark is `rule(largest event time seen)`. It never passes that time, and never
    /// goes back: a rule giving less than before leaves it where it was.
    pub fn custom(rule: impl Fn(EventTime) -> EventTime + Send + Sync + 'static) -> Self {
        Watermarks {
            rule: WatermarkRule::Custom(Arc::new(rule)),
            idle_after: None,
        }
    }

    /// Events arrive in event-time order.
    pub fn monotonic() -> Self {
        Watermarks::bounded(Duration::ZERO)
    }

    /// A partition without records for `timeout` no longer holds the watermark back, until
    /// it has records again.
    pub fn idle_after(self, timeout: Duration) -> Self {
        Watermarks {
            idle_after: Some(timeout),
            ..self
        }
    }

    /// The watermark of a partition whose largest event time so far is `max_seen`.
    pub fn watermark_after(&self, max_seen: EventTime) -> EventTime {
        match &self.rule {
            WatermarkRule::Bounded(bound) => max_seen.saturating_sub(*bound),
            WatermarkRule::Custom(rule) => rule(max_seen).min(max_seen),
        }
    }

    /// The idleness timeout, if any.
    pub fn idleness_timeout(&self) -> Option<Duration> {
        self.idle_after
    }
}

/// What [`PartitionWatermarks::watermark`] says about a reader's partitions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CombinedWatermark {
    /// The smallest watermark over the partitions that are neither idle nor finished.
    Active(EventTime),
    /// Every partition is idle or finished, and at least one is idle.
    Idle,
    /// Every partition is finished.
    Finished,
}

impl CombinedWatermark {
    /// The watermark a reader starts at: the active one, or the beginning of time.
    pub fn start(self) -> EventTime {
        match self {
            CombinedWatermark::Active(watermark) => watermark,
            CombinedWatermark::Idle | CombinedWatermark::Finished => EventTime::ZERO,
        }
    }
}

/// The watermarks of the partitions one reader owns, each tracked on its own, combined as
/// their minimum over the partitions that are not idle.
///
/// ```
/// use std::time::{Duration, Instant};
/// use weir_engine::watermark::{CombinedWatermark, PartitionWatermarks, Watermarks};
/// use weir_engine::EventTime;
///
/// let start = Instant::now();
/// let strategy = Watermarks::monotonic().idle_after(Duration::from_secs(10));
/// let mut partitions = PartitionWatermarks::new(strategy, 2, start);
/// partitions.observe(0, EventTime(5_000), start);
/// // Partition 1 has no records yet: it holds the watermark back until it is idle.
/// assert_eq!(partitions.watermark(start), CombinedWatermark::Active(EventTime::ZERO));
/// let later = start + Duration::from_secs(11);
/// partitions.observe(0, EventTime(9_000), later);
/// assert_eq!(partitions.watermark(later), CombinedWatermark::Active(EventTime(9_000)));
/// ```
#[derive(Clone, Debug)]
pub struct PartitionWatermarks {
    strategy: Watermarks,
    partitions: Vec<PartitionState>,
}

#[derive(Clone, Copy, Debug)]
struct PartitionState {
    /// The largest event time seen.
    max_seen: Option<EventTime>,
    /// The partition's watermark (monotone, even under a custom rule).
    watermark: EventTime,
    last_record: Instant,
    finished: bool,
}

impl PartitionWatermarks {
    /// Tracks `count` partitions, none of which has had a record at `now`.
    pub fn new(strategy: Watermarks, count: usize, now: Instant) -> Self {
        let state = PartitionState {
            max_seen: None,
            watermark: EventTime::ZERO,
            last_record: now,
            finished: false,
        };
        PartitionWatermarks {
            strategy,
            partitions: vec![state; count],
        }
    }

    /// Notes a record of event time `event_time` in partition `index` at `now`.
    pub fn observe(&mut self, index: usize, event_time: EventTime, now: Instant) {
        if let Some(partition) = self.partitions.get_mut(index) {
            if partition.max_seen.is_none_or(|max| event_time > max) {
                partition.max_seen = Some(event_time);
                let watermark = self.strategy.watermark_after(event_time);
                partition.watermark = partition.watermark.max(watermark);
            }
            partition.last_record = now;
        }
    }

    /// The greatest event time seen in partition `index`, if any: what a checkpoint keeps
    /// of the partition's watermark.
    pub fn max_seen(&self, index: usize) -> Option<EventTime> {
        self.partitions
            .get(index)
            .and_then(|partition| partition.max_seen)
    }

    /// Restores partition `index` to having seen event times up to `max_seen` (from a
    /// checkpoint), so that its watermark is where it was.
    pub fn resume(&mut self, index: usize, max_seen: EventTime) {
        if let Some(partition) = self.partitions.get_mut(index) {
            partition.max_seen = Some(max_seen);
            partition.watermark = partition
                .watermark
                .max(self.strategy.watermark_after(max_seen));
        }
    }

    /// Marks partition `index` as exhausted: it never holds the watermark back again.
    pub fn finish(&mut self, index: usize) {
        if let Some(partition) = self.partitions.get_mut(index) {
            partition.finished = true;
        }
    }

    /// A reader's positions for a checkpoint: `partitions` gives each partition's number,
    /// next offset and (for a bounded read) end offset, in the order of their indices here.
    pub fn positions(
        &self,
        partitions: impl IntoIterator<Item = (u32, u64, Option<u64>)>,
    ) -> Positions {
        partitions
            .into_iter()
            .enumerate()
            .map(|(index, (number, next_offset, end_offset))| {
                let position = PartitionPosition {
                    next_offset,
                    end_offset,
                    max_event_time: self.max_seen(index),
                };
                (number, position)
            })
            .collect()
    }

    /// The watermark of partition `index` alone.
    pub fn partition_watermark(&self, index: usize) -> Option<EventTime> {
        self.partitions
            .get(index)
            .map(|partition| partition.watermark)
    }

    /// The combined watermark at `now`.
    pub fn watermark(&self, now: Instant) -> CombinedWatermark {
        let is_idle = |partition: &PartitionState| {
            self.strategy.idle_after.is_some_and(|timeout| {
                now.saturating_duration_since(partition.last_record) >= timeout
            })
        };
        let live = self
            .partitions
            .iter()
            .filter(|partition| !partition.finished);
        match live
            .clone()
            .filter(|partition| !is_idle(partition))
            .map(|partition| partition.watermark)
            .min()
        {
            Some(watermark) => CombinedWatermark::Active(watermark),
            None if live.count() > 0 => CombinedWatermark::Idle,
            None => CombinedWatermark::Finished,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn an_idle_partition_stops_holding_back_and_holds_back_again_when_it_wakes() {
        let start = Instant::now();
        let at = |millis| start + Duration::from_millis(millis);
        let strategy = Watermarks::bounded(Duration::from_millis(100))
            .idle_after(Duration::from_millis(1_000));
        let mut partitions = PartitionWatermarks::new(strategy, 3, start);
        partitions.observe(0, EventTime(10_000), at(0));
        partitions.observe(1, EventTime(2_000), at(0));
        partitions.observe(2, EventTime(7_000), at(0));
        assert_eq!(
            partitions.watermark(at(10)),
            CombinedWatermark::Active(EventTime(1_900))
        );
        // Partition 1 goes silent; the others keep going.
        partitions.observe(0, EventTime(12_000), at(900));
        partitions.observe(2, EventTime(9_000), at(900));
        assert_eq!(
            partitions.watermark(at(999)),
            CombinedWatermark::Active(EventTime(1_900))
        );
        assert_eq!(
            partitions.watermark(at(1_000)),
            CombinedWatermark::Active(EventTime(8_900))
        );
        // It wakes with old events: it holds the watermark back again.
        partitions.observe(1, EventTime(3_000), at(1_500));
        assert_eq!(
            partitions.watermark(at(1_500)),
            CombinedWatermark::Active(EventTime(2_900))
        );
        // Everyone silent: idle; everyone finished: finished.
        assert_eq!(partitions.watermark(at(10_000)), CombinedWatermark::Idle);
        (0..3).for_each(|index| partitions.finish(index));
        assert_eq!(
            partitions.watermark(at(10_000)),
            CombinedWatermark::Finished
        );
    }

    #[test]
    fn a_custom_rule_never_passes_the_data_nor_goes_back() {
        let start = Instant::now();
        // A rule that misbehaves: ahead of the data for even times, far behind for odd ones.
        let strategy = Watermarks::custom(|max| {
            if max.millis() % 2 == 0 {
                max + Duration::from_secs(1)
            } else {
                EventTime::ZERO
            }
        });
        let mut partitions = PartitionWatermarks::new(strategy, 1, start);
        partitions.observe(0, EventTime(5_000), start);
        assert_eq!(
            partitions.watermark(start),
            CombinedWatermark::Active(EventTime(5_000))
        );
        partitions.observe(0, EventTime(7_001), start);
        assert_eq!(
            partitions.watermark(start),
            CombinedWatermark::Active(EventTime(5_000))
        );
    }

    #[test]
    fn without_an_idleness_timeout_a_silent_partition_holds_back_forever() {
        let start = Instant::now();
        let mut partitions = PartitionWatermarks::new(Watermarks::monotonic(), 2, start);
        partitions.observe(0, EventTime(50_000), start);
        let much_later = start + Duration::from_secs(3_600);
        assert_eq!(
            partitions.watermark(much_later),
            CombinedWatermark::Active(EventTime(0))
        );
        partitions.finish(1);
        assert_eq!(
            partitions.watermark(much_later),
            CombinedWatermark::Active(EventTime(50_000))
        );
    }

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
            let mut tracker = BoundedOutOfOrderness::new(Duration::from_millis(bound));
            let mut watermark = EventTime::ZERO;
            for (time, lag) in in_order.iter().zip(&lags) {
                let event_time = EventTime(time.saturating_sub(lag % (bound + 1)));
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
        assert_eq!(tracker.current(), EventTime::ZERO);
        tracker.observe(EventTime(50));
        tracker.observe(EventTime(20));
        assert_eq!(tracker.current(), EventTime(50));
        assert!(tracker.is_late(EventTime(20)));
        assert!(!tracker.is_late(EventTime(50)));
    }
}
