//! The timely timestamp of every record: an (epoch, watermark, flow tick) triple under the
//! product order.
//!
//! timely tracks progress with timestamps and frontiers. Letting the timestamp carry the
//! checkpoint epoch, the event-time watermark and the tick at which a source emitted the record
//! means none of them needs in-band marker messages: an operator reads its watermark and its
//! completed epoch straight off its input frontier, and a sink's frontier says how long ago the
//! oldest record still on its way to it was emitted (what backpressure acts on).

use serde::{Deserialize, Serialize};
use timely::order::PartialOrder;
use timely::progress::timestamp::{PathSummary, Refines, Timestamp};

/// Event time: when a record happened, in milliseconds since the Unix epoch (UTC), as its
/// source says. Watermarks are event times too. A type of its own, so that it cannot be mixed
/// up with processing time, an epoch or a duration: a duration is added with `+`, and the
/// millisecond count is read with [`EventTime::millis`] where arithmetic needs it (window
/// alignment, the encoding of records).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct EventTime(pub u64);

/// The watermark that means "no more input will ever arrive".
pub const END_OF_TIME: EventTime = EventTime(u64::MAX);

impl EventTime {
    /// The Unix epoch, the earliest event time.
    pub const ZERO: EventTime = EventTime(0);

    /// The end of time ([`END_OF_TIME`]).
    pub const MAX: EventTime = END_OF_TIME;

    /// Milliseconds since the Unix epoch.
    pub const fn millis(self) -> u64 {
        self.0
    }

    /// The time passed since `earlier` (zero if `earlier` is later).
    pub fn since(self, earlier: EventTime) -> std::time::Duration {
        std::time::Duration::from_millis(self.0.saturating_sub(earlier.0))
    }

    /// The time `duration` earlier (the Unix epoch at the earliest).
    pub fn saturating_sub(self, duration: std::time::Duration) -> EventTime {
        EventTime(self.0.saturating_sub(millis(duration)))
    }
}

impl std::ops::Add<std::time::Duration> for EventTime {
    type Output = EventTime;
    /// The time `duration` later (saturating at the end of time).
    fn add(self, duration: std::time::Duration) -> EventTime {
        EventTime(self.0.saturating_add(millis(duration)))
    }
}

impl std::fmt::Display for EventTime {
    /// Milliseconds since the Unix epoch.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(&self.0, f)
    }
}

/// Milliseconds in `duration`, saturating at `u64::MAX`: how a configured duration becomes a
/// number of milliseconds where arithmetic needs one (window sizes, interval bounds).
pub fn millis(duration: std::time::Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// The wall clock in milliseconds since the Unix epoch (0 for a clock set before it).
pub fn wall_clock_millis() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, millis)
}

/// Processing time: milliseconds since the Unix epoch on the job's clock (the wall clock while
/// a job runs, the harness's clock in a test). A type of its own, so that it cannot be mixed up
/// with the event time of records.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct ProcessingTime(pub u64);

impl ProcessingTime {
    /// Milliseconds since the Unix epoch.
    pub fn millis(self) -> u64 {
        self.0
    }

    /// The time passed since `earlier` (zero if `earlier` is later).
    pub fn since(self, earlier: ProcessingTime) -> std::time::Duration {
        std::time::Duration::from_millis(self.0.saturating_sub(earlier.0))
    }
}

impl std::ops::Add<std::time::Duration> for ProcessingTime {
    type Output = ProcessingTime;
    /// The time `duration` later (saturating at the end of time).
    fn add(self, duration: std::time::Duration) -> ProcessingTime {
        ProcessingTime(self.0.saturating_add(millis(duration)))
    }
}

/// A record that knows when it happened: windows and other event-time operators read its
/// event time through this trait.
pub trait Timestamped {
    /// The record's event time, in milliseconds since the Unix epoch.
    fn event_time(&self) -> EventTime;
}

/// A checkpoint epoch: the span of a job's input between two checkpoints, and the number of
/// the checkpoint that completes it. A job's first run starts at epoch 0; a restored run goes
/// on after the epoch of the checkpoint it restored. A type of its own, so that it cannot be
/// mixed up with a count or a time.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Epoch(pub u64);

impl Epoch {
    /// The largest epoch: complete once every input has ended.
    pub const MAX: Epoch = Epoch(u64::MAX);

    /// The epoch after this one.
    pub fn next(self) -> Epoch {
        Epoch(self.0.saturating_add(1))
    }

    /// The epoch before this one (`None` before epoch 0).
    pub fn previous(self) -> Option<Epoch> {
        self.0.checked_sub(1).map(Epoch)
    }
}

impl std::str::FromStr for Epoch {
    type Err = std::num::ParseIntError;
    /// An epoch from its number, as [`Display`](std::fmt::Display) writes it.
    fn from_str(number: &str) -> Result<Epoch, Self::Err> {
        number.parse().map(Epoch)
    }
}

impl std::fmt::Display for Epoch {
    /// The epoch's number (width and fill apply: `{:020}` pads it for file names).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(&self.0, f)
    }
}

/// The processing-time tick at which a source emitted a record: [`FLOW_TICK`]s since the Unix
/// epoch. Sources move it forward as processing time passes, even while their watermark stands
/// still, so that a sink's input frontier says how long ago the oldest record still on its way
/// to the sink was emitted; sources pause while that is longer than the job's in-flight limit
/// (backpressure). A keyed operator's timer results carry the tick of the operator's input
/// frontier when they fire; a capability that only holds an epoch open carries
/// [`FlowTick::MAX`], so that it holds no source back.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct FlowTick(pub u64);

/// The length of a [`FlowTick`]: sources move their timestamps' tick at most this often.
pub const FLOW_TICK: std::time::Duration = std::time::Duration::from_millis(50);

impl FlowTick {
    /// The tick that holds no source back (and that of an input that has ended).
    pub const MAX: FlowTick = FlowTick(u64::MAX);

    /// The tick `now` falls in.
    pub fn at(now: ProcessingTime) -> FlowTick {
        FlowTick(now.0 / millis(FLOW_TICK))
    }

    /// How long before `later` this tick began (zero if it is not earlier).
    pub fn before(self, later: FlowTick) -> std::time::Duration {
        FLOW_TICK.saturating_mul(u32::try_from(later.0.saturating_sub(self.0)).unwrap_or(u32::MAX))
    }
}

/// The timely timestamp of a record: the checkpoint `epoch` it belongs to, the `watermark` its
/// source had when it emitted it, and the flow `tick` at which it emitted it.
///
/// `(e1, w1, t1) <= (e2, w2, t2)` iff every part is `<=` (the product order), so the three
/// advance independently of each other.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Time {
    /// The checkpoint epoch.
    pub epoch: Epoch,
    /// The source watermark: every record the source emits later has event time `>=` this,
    /// except late records, which are late by definition.
    pub watermark: EventTime,
    /// When the source emitted the record (for a timer's results: the tick of the operator's
    /// input when it fired), for backpressure.
    pub tick: FlowTick,
}

impl Time {
    /// A time from its three parts.
    pub fn new(epoch: Epoch, watermark: EventTime, tick: FlowTick) -> Self {
        Time {
            epoch,
            watermark,
            tick,
        }
    }
}

impl PartialOrder for Time {
    fn less_equal(&self, other: &Self) -> bool {
        self.epoch <= other.epoch && self.watermark <= other.watermark && self.tick <= other.tick
    }
}

impl Timestamp for Time {
    type Summary = TimeSummary;
    fn minimum() -> Self {
        Time::default()
    }
}

impl Refines<()> for Time {
    fn to_inner(_outer: ()) -> Self {
        Time::default()
    }
    fn to_outer(self) {}
    fn summarize(_path: TimeSummary) {}
}

/// How a path through the dataflow advances a [`Time`]: by an amount in each coordinate.
///
/// weir's operators never delay records along an edge, so every summary in practice is zero;
/// timely still needs the type to check paths.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TimeSummary {
    /// Epochs added along the path.
    pub epoch: u64,
    /// Milliseconds added to the watermark along the path.
    pub watermark: u64,
    /// Flow ticks added along the path.
    pub tick: u64,
}

impl PartialOrder for TimeSummary {
    fn less_equal(&self, other: &Self) -> bool {
        self.epoch <= other.epoch && self.watermark <= other.watermark && self.tick <= other.tick
    }
}

impl PathSummary<Time> for TimeSummary {
    fn results_in(&self, src: &Time) -> Option<Time> {
        Some(Time {
            epoch: Epoch(src.epoch.0.checked_add(self.epoch)?),
            watermark: EventTime(src.watermark.0.checked_add(self.watermark)?),
            tick: FlowTick(src.tick.0.checked_add(self.tick)?),
        })
    }
    fn followed_by(&self, other: &Self) -> Option<Self> {
        Some(TimeSummary {
            epoch: self.epoch.checked_add(other.epoch)?,
            watermark: self.watermark.checked_add(other.watermark)?,
            tick: self.tick.checked_add(other.tick)?,
        })
    }
}

/// The watermark an operator acts on: the least watermark over its input frontier, or
/// [`END_OF_TIME`] once the frontier is empty (every source has finished).
pub fn frontier_watermark(frontier: &[Time]) -> EventTime {
    frontier
        .iter()
        .map(|time| time.watermark)
        .min()
        .unwrap_or(END_OF_TIME)
}

/// The oldest flow tick at this frontier: when the oldest record that may still arrive was
/// emitted. [`FlowTick::MAX`] once the frontier is empty.
pub fn frontier_tick(frontier: &[Time]) -> FlowTick {
    frontier
        .iter()
        .map(|time| time.tick)
        .min()
        .unwrap_or(FlowTick::MAX)
}

/// The largest epoch that is complete at this frontier: every frontier element has a larger
/// epoch. `None` while epoch 0 is still open.
pub fn completed_epoch(frontier: &[Time]) -> Option<Epoch> {
    match frontier.iter().map(|time| time.epoch).min() {
        Some(oldest_open) => oldest_open.previous(),
        None => Some(Epoch::MAX),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn at(epoch: u64, watermark: u64) -> Time {
        Time::new(Epoch(epoch), EventTime(watermark), FlowTick(0))
    }

    #[test]
    fn product_order_is_not_total() {
        let a = at(1, 10);
        let b = at(2, 5);
        assert!(!a.less_equal(&b));
        assert!(!b.less_equal(&a));
        assert!(at(1, 5).less_equal(&a));
        assert!(at(1, 5).less_equal(&b));
    }

    #[test]
    fn frontier_reads_watermark_and_epoch() {
        let frontier = [at(3, 100), at(4, 50)];
        assert_eq!(frontier_watermark(&frontier), EventTime(50));
        assert_eq!(completed_epoch(&frontier), Some(Epoch(2)));
        assert_eq!(frontier_watermark(&[]), END_OF_TIME);
        assert_eq!(completed_epoch(&[at(0, 7)]), None);
    }

    #[test]
    fn frontier_reads_the_oldest_tick() {
        let frontier = [
            Time::new(Epoch(3), EventTime(100), FlowTick(40)),
            Time::new(Epoch(4), EventTime(50), FlowTick(45)),
        ];
        assert_eq!(frontier_tick(&frontier), FlowTick(40));
        assert_eq!(frontier_tick(&[]), FlowTick::MAX);
        assert_eq!(FlowTick(40).before(FlowTick(45)), FLOW_TICK * 5);
        assert_eq!(FlowTick(45).before(FlowTick(40)), std::time::Duration::ZERO);
        assert_eq!(FlowTick::at(ProcessingTime(1_049)), FlowTick(20));
    }

    proptest! {
        /// timely sorts timestamps by `Ord`; it must extend the partial order.
        #[test]
        fn total_order_extends_partial_order(
            (e1, w1, t1) in (0u64..5, 0u64..5, 0u64..5),
            (e2, w2, t2) in (0u64..5, 0u64..5, 0u64..5),
        ) {
            let a = Time::new(Epoch(e1), EventTime(w1), FlowTick(t1));
            let b = Time::new(Epoch(e2), EventTime(w2), FlowTick(t2));
            if a.less_equal(&b) {
                prop_assert!(a <= b);
            }
        }

    }
}
