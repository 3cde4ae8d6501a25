//! Watermark strategies: how a source derives its watermark from the event times it reads.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::time::EventTime;

/// Tracks the watermark of one input (a partition, a file) whose events arrive at most
/// `bound` milliseconds out of order: after seeing event time `t`, no event below `t - bound`
/// is expected any more.
///
/// ```
/// use weir_engine::watermark::BoundedOutOfOrderness;
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

/// A source's watermark strategy: how far out of order events may come, and after how long
/// without records a partition stops holding the watermark back.
///
/// ```
/// use std::time::Duration;
/// use weir_engine::watermark::Watermarks;
/// let strategy = Watermarks::bounded(Duration::from_secs(4)).idle_after(Duration::from_secs(30));
/// assert_eq!(strategy.watermark_after(10_000), 6_000);
/// // Any rule from the largest event time seen, for instance whole seconds only:
/// let seconds = Watermarks::custom(|max_seen| max_seen - max_seen % 1_000);
/// assert_eq!(seconds.watermark_after(12_345), 12_000);
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
    Bounded(EventTime),
    /// A user's function of that time (clamped so the watermark never passes it).
    Custom(Arc<dyn Fn(EventTime) -> EventTime + Send + Sync>),
}

impl std::fmt::Debug for WatermarkRule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WatermarkRule::Bounded(bound) => write!(f, "Bounded({bound} ms)"),
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
            rule: WatermarkRule::Bounded(crate::time::millis(out_of_orderness)),
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

/// The watermarks of the partitions one reader owns, each tracked on its own, combined as
/// their minimum over the partitions that are not idle.
///
/// ```
/// use std::time::{Duration, Instant};
/// use weir_engine::watermark::{CombinedWatermark, PartitionWatermarks, Watermarks};
///
/// let start = Instant::now();
/// let strategy = Watermarks::monotonic().idle_after(Duration::from_secs(10));
/// let mut partitions = PartitionWatermarks::new(strategy, 2, start);
/// partitions.observe(0, 5_000, start);
/// // Partition 1 has no records yet: it holds the watermark back until it is idle.
/// assert_eq!(partitions.watermark(start), CombinedWatermark::Active(0));
/// let later = start + Duration::from_secs(11);
/// partitions.observe(0, 9_000, later);
/// assert_eq!(partitions.watermark(later), CombinedWatermark::Active(9_000));
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
            watermark: 0,
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
        partitions.observe(0, 10_000, at(0));
        partitions.observe(1, 2_000, at(0));
        partitions.observe(2, 7_000, at(0));
        assert_eq!(
            partitions.watermark(at(10)),
            CombinedWatermark::Active(1_900)
        );
        // Partition 1 goes silent; the others keep going.
        partitions.observe(0, 12_000, at(900));
        partitions.observe(2, 9_000, at(900));
        assert_eq!(
            partitions.watermark(at(999)),
            CombinedWatermark::Active(1_900)
        );
        assert_eq!(
            partitions.watermark(at(1_000)),
            CombinedWatermark::Active(8_900)
        );
        // It wakes with old events: it holds the watermark back again.
        partitions.observe(1, 3_000, at(1_500));
        assert_eq!(
            partitions.watermark(at(1_500)),
            CombinedWatermark::Active(2_900)
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
        let strategy = Watermarks::custom(|max| if max % 2 == 0 { max + 1_000 } else { 0 });
        let mut partitions = PartitionWatermarks::new(strategy, 1, start);
        partitions.observe(0, 5_000, start);
        assert_eq!(
            partitions.watermark(start),
            CombinedWatermark::Active(5_000)
        );
        partitions.observe(0, 7_001, start);
        assert_eq!(
            partitions.watermark(start),
            CombinedWatermark::Active(5_000)
        );
    }

    #[test]
    fn without_an_idleness_timeout_a_silent_partition_holds_back_forever() {
        let start = Instant::now();
        let mut partitions = PartitionWatermarks::new(Watermarks::monotonic(), 2, start);
        partitions.observe(0, 50_000, start);
        let much_later = start + Duration::from_secs(3_600);
        assert_eq!(
            partitions.watermark(much_later),
            CombinedWatermark::Active(0)
        );
        partitions.finish(1);
        assert_eq!(
            partitions.watermark(much_later),
            CombinedWatermark::Active(50_000)
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
