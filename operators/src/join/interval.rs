//! Interval joins: a left record at `t` joins the right records of its key at
//! `[t + lower, t + upper]`, emitted when the second of the two arrives. Each record is kept
//! only until the watermark passes the last time at which a partner could still arrive, so
//! state stays bounded on an endless stream.

use std::time::Duration;

use weir_engine::{Data, EventTime, KeyedContext, KeyedProcess};

use super::{Rows, Side};
use crate::state_vec;

/// The bounds of an interval join, in milliseconds relative to the left record's time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IntervalJoin {
    lower: i64,
    upper: i64,
}

impl IntervalJoin {
    /// Right records from `before` earlier to `after` later than the left record.
    pub fn within(before: Duration, after: Duration) -> Self {
        IntervalJoin {
            lower: -signed_millis(before),
            upper: signed_millis(after),
        }
    }

    /// Right records at `[t + lower, t + upper]` milliseconds for a left record at `t`;
    /// `None` when `lower > upper` (no record could ever match).
    pub fn between(lower: i64, upper: i64) -> Option<Self> {
        (lower <= upper).then_some(IntervalJoin { lower, upper })
    }

    /// Whether a right record at `right` joins a left record at `left`.
    fn matches(&self, left: EventTime, right: EventTime) -> bool {
        let distance = i128::from(right.millis()) - i128::from(left.millis());
        i128::from(self.lower) <= distance && distance <= i128::from(self.upper)
    }

    pub(super) fn logic<F>(self, join: F) -> IntervalLogic<F> {
        IntervalLogic { bounds: self, join }
    }
}

/// `time + by`, saturating at both ends of event time.
fn shifted(time: EventTime, by: i64) -> EventTime {
    let millis = if by >= 0 {
        time.millis().saturating_add(by.unsigned_abs())
    } else {
        time.millis().saturating_sub(by.unsigned_abs())
    };
    EventTime(millis)
}

/// The keyed logic of an interval join.
pub(super) struct IntervalLogic<F> {
    bounds: IntervalJoin,
    join: F,
}

impl<F> IntervalLogic<F> {
    /// The last event time at which a right record can still join a left record at `time`.
    fn left_needed_until(&self, time: EventTime) -> EventTime {
        shifted(time, self.bounds.upper)
    }

    /// The last event time at which a left record can still join a right record at `time`.
    fn right_needed_until(&self, time: EventTime) -> EventTime {
        shifted(time, self.bounds.lower.saturating_neg())
    }
}

impl<K, L, R, O, F> KeyedProcess<K, Side<L, R>> for IntervalLogic<F>
where
    K: Data,
    L: Data,
    R: Data,
    O: Data,
    F: Fn(&K, &L, &R) -> O + 'static,
{
    type State = Rows<L, R, EventTime>;
    type Output = O;

    fn on_record(
        &mut self,
        cx: &mut KeyedContext<K, O, Side<L, R>>,
        key: &K,
        state: &mut Rows<L, R, EventTime>,
        record: Side<L, R>,
        event_time: EventTime,
    ) {
        if event_time < cx.watermark() {
            cx.late(record);
            return;
        }
        match record {
            Side::Left(left) => {
                for (time, right) in &state.right {
                    if self.bounds.matches(event_time, *time) {
                        cx.emit((self.join)(key, &left, right));
                    }
                }
                // Kept even if the record's own watermark is past `until`: the other input's
                // watermark may be behind, and its on-time records can still match. The timer
                // drops it once the operator's watermark passes `until`.
                cx.set_timer(self.left_needed_until(event_time));
                state_vec::push(&mut state.left, (event_time, left));
            }
            Side::Right(right) => {
                for (time, left) in &state.left {
                    if self.bounds.matches(*time, event_time) {
                        cx.emit((self.join)(key, left, &right));
                    }
                }
                cx.set_timer(self.right_needed_until(event_time));
                state_vec::push(&mut state.right, (event_time, right));
            }
        }
    }

    fn on_timer(
        &mut self,
        _cx: &mut KeyedContext<K, O, Side<L, R>>,
        _key: &K,
        state: &mut Rows<L, R, EventTime>,
        time: EventTime,
    ) {
        state
            .left
            .retain(|(at, _)| self.left_needed_until(*at) > time);
        state
            .right
            .retain(|(at, _)| self.right_needed_until(*at) > time);
    }

    fn is_empty(&self, state: &Rows<L, R, EventTime>) -> bool {
        state.left.is_empty() && state.right.is_empty()
    }
}

/// A `Duration` as signed milliseconds.
fn signed_millis(duration: Duration) -> i64 {
    i64::try_from(weir_engine::millis(duration)).unwrap_or(i64::MAX)
}
