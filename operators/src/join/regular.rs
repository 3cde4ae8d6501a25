//! Regular (unbounded) joins: every left record with every right record of its key, whenever
//! they arrive, as a changelog. Inner, left, right and full outer joins; inputs may be
//! changelogs themselves (deletes withdraw the results a row produced). An outer join emits a
//! row padded with `None` for a record without partners, and deletes that padded row when the
//! first partner arrives (and inserts it again when the last partner is deleted).
//!
//! State holds every row of both sides until it is deleted, or, with a time-to-live or an
//! expiry per row, until the watermark passes the row's expiry: the row is then forgotten
//! without retracting its results (later records no longer join it).

use std::time::Duration;

use serde::{Deserialize, Serialize};
use weir_engine::{Data, EventTime, KeyedContext, KeyedProcess};

use super::{Rows, Side};
use crate::changelog::Change;
use crate::state_vec;

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

/// When a join forgets a row: the time the watermark must pass, from the row and its event
/// time (`None`: never). Implemented by [`Never`], [`Ttl`] and closures
/// `Fn(&T, EventTime) -> Option<EventTime>`.
pub trait Expiry<T>: 'static {
    /// The event time after which `row` can be forgotten.
    fn expires_at(&self, row: &T, event_time: EventTime) -> Option<EventTime>;
}

/// Rows are kept until they are deleted.
#[derive(Clone, Copy, Debug, Default)]
pub struct Never;

impl<T> Expiry<T> for Never {
    fn expires_at(&self, _row: &T, _event_time: EventTime) -> Option<EventTime> {
        None
    }
}

/// Rows are forgotten a fixed time after their event time.
#[derive(Clone, Copy, Debug)]
pub struct Ttl(Duration);

impl<T> Expiry<T> for Ttl {
    fn expires_at(&self, _row: &T, event_time: EventTime) -> Option<EventTime> {
        Some(event_time + self.0)
    }
}

impl<T, F: Fn(&T, EventTime) -> Option<EventTime> + 'static> Expiry<T> for F {
    fn expires_at(&self, row: &T, event_time: EventTime) -> Option<EventTime> {
        self(row, event_time)
    }
}

/// How a regular join behaves: its kind and when it forgets rows of each side.
#[derive(Clone, Copy, Debug)]
pub struct RegularJoin<EL = Never, ER = Never> {
    kind: JoinKind,
    expire_left: EL,
    expire_right: ER,
}

impl RegularJoin {
    /// A join of `kind` that keeps rows until they are deleted.
    pub fn new(kind: JoinKind) -> Self {
        RegularJoin {
            kind,
            expire_left: Never,
            expire_right: Never,
        }
    }
}

impl<EL, ER> RegularJoin<EL, ER> {
    /// Forgets each row once the watermark passes its event time plus `ttl`.
    pub fn ttl(self, ttl: Duration) -> RegularJoin<Ttl, Ttl> {
        let ttl = Ttl(ttl);
        self.expire(ttl, ttl)
    }

    /// Forgets each row once the watermark passes the time `left` (for left rows) or
    /// `right` (for right rows) gives it: when no record still to come can join it. Nexmark
    /// q4 forgets an auction when it closes and a bid once the watermark passes the bid
    /// (auctions still to come open later).
    pub fn expire<EL2, ER2>(self, left: EL2, right: ER2) -> RegularJoin<EL2, ER2> {
        RegularJoin {
            kind: self.kind,
            expire_left: left,
            expire_right: right,
        }
    }

    pub(super) fn logic<F>(self, join: F) -> RegularLogic<F, EL, ER> {
        RegularLogic { config: self, join }
    }
}

/// The keyed logic of a regular join.
pub(super) struct RegularLogic<F, EL, ER> {
    config: RegularJoin<EL, ER>,
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

/// The event time a row held by a regular join expires at: its timer's time (`EventTime::MAX`:
/// never). Stored as the bare number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ExpiresAt(EventTime);

/// One side's rows, each with the time it expires at.
type Expiring<T> = Vec<(ExpiresAt, T)>;

/// Applies a change of one side's row (`own`; the other side's rows are `other`) and emits
/// what it changes in the joined table: its pairs, and in outer joins the padding of rows
/// without partners (`pads`: whether this side's and the other side's lonely rows are kept).
/// An inserted row is stored with the time it expires at (`expiry`); returns that time, if
/// the row was stored and expires.
#[allow(clippy::too_many_arguments)]
fn change_side<K, A, B, O, T>(
    cx: &mut KeyedContext<K, Change<O>, T>,
    (own, other): (&mut Expiring<A>, &[(ExpiresAt, B)]),
    (change, expiry): (Change<A>, impl Fn(&A) -> Option<EventTime>),
    (pads_own, pads_other): (bool, bool),
    pair: impl Fn(&A, &B) -> Option<O>,
    own_alone: impl Fn(&A) -> Option<O>,
    other_alone: impl Fn(&B) -> Option<O>,
) -> Option<EventTime>
where
    A: PartialEq,
{
    let (row, diff) = change.into_diff();
    let insert = diff > 0;
    if !insert {
        let Some(at) = own.iter().position(|(_, held)| *held == row) else {
            // Deleting a row the join does not hold (never inserted, or forgotten once
            // expired): nothing it produced is known.
            return None;
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
    if !insert {
        return None;
    }
    let expires = expiry(&row);
    state_vec::push(own, (ExpiresAt(expires.unwrap_or(EventTime::MAX)), row));
    expires
}

impl<K, L, R, O, F, EL, ER> KeyedProcess<K, Side<Change<L>, Change<R>>> for RegularLogic<F, EL, ER>
where
    K: Data,
    L: Data + PartialEq,
    R: Data + PartialEq,
    O: Data,
    F: Fn(&K, Option<&L>, Option<&R>) -> Option<O> + 'static,
    EL: Expiry<L>,
    ER: Expiry<R>,
{
    type State = Rows<L, R, ExpiresAt>;
    type Output = Change<O>;

    fn on_record(
        &mut self,
        cx: &mut KeyedContext<K, Change<O>, Side<Change<L>, Change<R>>>,
        key: &K,
        rows: &mut Rows<L, R, ExpiresAt>,
        record: Side<Change<L>, Change<R>>,
        event_time: EventTime,
    ) {
        let join = &self.join;
        let config = &self.config;
        let kind = config.kind;
        let expires = match record {
            Side::Left(change) => change_side(
                cx,
                (&mut rows.left, &rows.right),
                (change, |row: &L| {
                    config.expire_left.expires_at(row, event_time)
                }),
                (kind.pads_left(), kind.pads_right()),
                |left, right| join(key, Some(left), Some(right)),
                |left| join(key, Some(left), None),
                |right| join(key, None, Some(right)),
            ),
            Side::Right(change) => change_side(
                cx,
                (&mut rows.right, &rows.left),
                (change, |row: &R| {
                    config.expire_right.expires_at(row, event_time)
                }),
                (kind.pads_right(), kind.pads_left()),
                |right, left| join(key, Some(left), Some(right)),
                |right| join(key, None, Some(right)),
                |left| join(key, Some(left), None),
            ),
        };
        if let Some(time) = expires {
            cx.set_timer(time);
        }
    }

    fn on_timer(
        &mut self,
        cx: &mut KeyedContext<K, Change<O>, Side<Change<L>, Change<R>>>,
        key: &K,
        rows: &mut Rows<L, R, ExpiresAt>,
        time: EventTime,
    ) {
        let (had_left, had_right) = (!rows.left.is_empty(), !rows.right.is_empty());
        rows.left.retain(|(expires, _)| expires.0 > time);
        rows.right.retain(|(expires, _)| expires.0 > time);
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

    fn is_empty(&self, rows: &Rows<L, R, ExpiresAt>) -> bool {
        rows.left.is_empty() && rows.right.is_empty()
    }
}
