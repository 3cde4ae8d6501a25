//! Regular (unbounded) joins: every left record with every right record of its key, whenever
//! they arrive, as a changelog. Inner, left, right and full outer joins; inputs may be
//! changelogs themselves (deletes withdraw the results a row produced). An outer join emits a
//! row padded with `None` for a record without partners, and deletes that padded row when the
//! first partner arrives (and inserts it again when the last partner is deleted).
//!
//! State holds every row of both sides until it is deleted, or, with a time-to-live, until the
//! watermark passes the row's event time plus the TTL: the row is then forgotten without
//! retracting its results (later records no longer join it).

use std::time::Duration;

use weir_engine::{Data, EventTime, KeyedContext, KeyedProcess};

use super::{Rows, Side, Timed};
use crate::changelog::Change;

/// Which rows without partners a regular join keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JoinKind {
    /// Only pairs.
    Inner,
    /// Pairs, and left rows without partners.
    Left,
    /// Pairs, and right rows without partners.
    Right,
    /// Pairs, and rows of either side without partners.
    Full,
}

impl JoinKind {
    fn pads_left(self) -> bool {
        matches!(self, JoinKind::Left | JoinKind::Full)
    }

    fn pads_right(self) -> bool {
        matches!(self, JoinKind::Right | JoinKind::Full)
    }
}

/// How a regular join behaves: its kind and its state's time-to-live.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RegularJoin {
    kind: JoinKind,
    ttl: Option<EventTime>,
}

impl RegularJoin {
    /// A join of `kind` that keeps rows until they are deleted.
    pub fn new(kind: JoinKind) -> Self {
        RegularJoin { kind, ttl: None }
    }

    /// Forgets each row once the watermark passes its event time plus `ttl`.
    pub fn ttl(self, ttl: Duration) -> Self {
        RegularJoin {
            ttl: Some(ttl.as_millis().min(u128::from(EventTime::MAX)) as EventTime),
            ..self
        }
    }

    pub(super) fn logic<F>(self, join: F) -> RegularLogic<F> {
        RegularLogic { config: self, join }
    }
}

/// The keyed logic of a regular join.
pub(super) struct RegularLogic<F> {
    config: RegularJoin,
    join: F,
}

/// Emits an insert (`insert`) or a delete of every output.
fn emit_changes<K, O, T>(
    cx: &mut KeyedContext<K, Change<O>, T>,
    outputs: impl IntoIterator<Item = O>,
    insert: bool,
) {
    for output in outputs {
        cx.emit(if insert {
            Change::Insert(output)
        } else {
            Change::Delete(output)
        });
    }
}

/// Applies a change of one side's row (`own`; the other side's rows are `other`) and emits
/// what it changes in the joined table: its pairs, and in outer joins the padding of rows
/// without partners (`pads`: whether this side's and the other side's lonely rows are kept).
/// Returns whether the row was stored (an insert).
#[allow(clippy::too_many_arguments)]
fn change_side<K, A, B, O, T>(
    cx: &mut KeyedContext<K, Change<O>, T>,
    (own, other): (&mut Timed<A>, &[(EventTime, B)]),
    (change, event_time): (Change<A>, EventTime),
    (pads_own, pads_other): (bool, bool),
    pair: impl Fn(&A, &B) -> Option<O>,
    own_alone: impl Fn(&A) -> Option<O>,
    other_alone: impl Fn(&B) -> Option<O>,
) -> bool
where
    A: PartialEq,
{
    let (row, diff) = change.into_diff();
    let insert = diff > 0;
    if !insert {
        let Some(at) = own.iter().position(|(_, held)| *held == row) else {
            // Deleting a row the join does not hold (never inserted, or forgotten by the
            // TTL): nothing it produced is known.
            return false;
        };
        own.remove(at);
    }
    if other.is_empty() {
        if pads_own {
            emit_changes(cx, own_alone(&row), insert);
        }
    } else {
        // The first row of this side replaces the other side's padding; the last one, when
        // deleted, brings it back.
        let first_or_last = pads_other && own.is_empty();
        let padding = || other.iter().filter_map(|(_, partner)| other_alone(partner));
        if insert && first_or_last {
            emit_changes(cx, padding(), false);
        }
        let pairs = other.iter().filter_map(|(_, partner)| pair(&row, partner));
        emit_changes(cx, pairs, insert);
        if !insert && first_or_last {
            emit_changes(cx, padding(), true);
        }
    }
    if insert {
        own.push((event_time, row));
    }
    insert
}

impl<K, L, R, O, F> KeyedProcess<K, Side<Change<L>, Change<R>>> for RegularLogic<F>
where
    K: Data,
    L: Data + PartialEq,
    R: Data + PartialEq,
    O: Data,
    F: Fn(&K, Option<&L>, Option<&R>) -> Option<O> + 'static,
{
    type State = Rows<L, R>;
    type Output = Change<O>;

    fn on_record(
        &mut self,
        cx: &mut KeyedContext<K, Change<O>, Side<Change<L>, Change<R>>>,
        key: &K,
        rows: &mut Rows<L, R>,
        record: Side<Change<L>, Change<R>>,
        event_time: EventTime,
    ) {
        let join = &self.join;
        let kind = self.config.kind;
        let stored = match record {
            Side::Left(change) => change_side(
                cx,
                (&mut rows.left, &rows.right),
                (change, event_time),
                (kind.pads_left(), kind.pads_right()),
                |left, right| join(key, Some(left), Some(right)),
                |left| join(key, Some(left), None),
                |right| join(key, None, Some(right)),
            ),
            Side::Right(change) => change_side(
                cx,
                (&mut rows.right, &rows.left),
                (change, event_time),
                (kind.pads_right(), kind.pads_left()),
                |right, left| join(key, Some(left), Some(right)),
                |right| join(key, None, Some(right)),
                |left| join(key, Some(left), None),
            ),
        };
        if stored {
            self.expire_at(cx, event_time);
        }
    }

    fn on_timer(
        &mut self,
        cx: &mut KeyedContext<K, Change<O>, Side<Change<L>, Change<R>>>,
        key: &K,
        rows: &mut Rows<L, R>,
        time: EventTime,
    ) {
        let Some(ttl) = self.config.ttl else {
            return;
        };
        let (had_left, had_right) = (!rows.left.is_empty(), !rows.right.is_empty());
        rows.left.retain(|(at, _)| at.saturating_add(ttl) > time);
        rows.right.retain(|(at, _)| at.saturating_add(ttl) > time);
        // Rows whose last partner was forgotten are unmatched now: an outer join pads them,
        // so that deleting them later withdraws rows that were emitted.
        let join = &self.join;
        if had_left && rows.left.is_empty() && self.config.kind.pads_right() {
            let padded = rows
                .right
                .iter()
                .filter_map(|(_, r)| join(key, None, Some(r)));
            emit_changes(cx, padded, true);
        }
        if had_right && rows.right.is_empty() && self.config.kind.pads_left() {
            let padded = rows
                .left
                .iter()
                .filter_map(|(_, l)| join(key, Some(l), None));
            emit_changes(cx, padded, true);
        }
    }

    fn is_empty(&self, rows: &Rows<L, R>) -> bool {
        rows.left.is_empty() && rows.right.is_empty()
    }
}

impl<F> RegularLogic<F> {
    /// With a TTL, asks to forget a row inserted at `time` when it expires.
    fn expire_at<K, O, T>(&self, cx: &mut KeyedContext<K, O, T>, time: EventTime) {
        if let Some(ttl) = self.config.ttl {
            cx.set_timer(time.saturating_add(ttl));
        }
    }
}
