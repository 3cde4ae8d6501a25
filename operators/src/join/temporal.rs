//! Temporal (versioned table) joins: each record of a stream joins the row its key had in a
//! table at the record's event time. The table is a changelog: an insert at time `v` is the
//! key's row from `v` on, a delete ends it at the delete's event time (the deleted row
//! carries the time of the delete; its other columns are not compared). A record at `t` is joined once the watermark
//! passes `t` (every version up to `t` has arrived), with the newest version at or before `t`.
//! Versions older than the one valid at the watermark are dropped; records and versions
//! behind the watermark are late.

use serde::{Deserialize, Serialize};
use weir_engine::{Data, EventTime, KeyedContext, KeyedProcess};

use super::Side;
use crate::changelog::Change;
use crate::state_vec;

/// One key's table versions (time, row or `None` after a delete), oldest first, and the
/// records waiting for the watermark.
#[derive(Serialize, Deserialize)]
pub(super) struct Versions<L, R> {
    versions: Vec<(EventTime, Option<R>)>,
    waiting: Vec<(EventTime, L)>,
}

impl<L, R> Default for Versions<L, R> {
    fn default() -> Self {
        Versions {
            versions: Vec::new(),
            waiting: Vec::new(),
        }
    }
}

impl<L, R> Versions<L, R> {
    /// The row valid at `time`.
    fn at(&self, time: EventTime) -> Option<&R> {
        self.versions
            .iter()
            .rev()
            .find(|(from, _)| *from <= time)
            .and_then(|(_, row)| row.as_ref())
    }
}

/// The keyed logic of a temporal join; `outer` keeps records whose key has no row then.
pub(super) struct TemporalLogic<F> {
    pub(super) join: F,
    pub(super) outer: bool,
}

impl<K, L, R, O, F> KeyedProcess<K, Side<L, Change<R>>> for TemporalLogic<F>
where
    K: Data,
    L: Data,
    R: Data,
    O: Data,
    F: Fn(&K, &L, Option<&R>) -> O + 'static,
{
    type State = Versions<L, R>;
    type Output = O;

    fn on_record(
        &mut self,
        cx: &mut KeyedContext<K, O, Side<L, Change<R>>>,
        _key: &K,
        state: &mut Versions<L, R>,
        record: Side<L, Change<R>>,
        event_time: EventTime,
    ) {
        if event_time < cx.watermark() {
            cx.late(record);
            return;
        }
        match record {
            Side::Left(left) => state_vec::push(&mut state.waiting, (event_time, left)),
            Side::Right(change) => {
                let row = match change {
                    Change::Insert(row) => Some(row),
                    Change::Delete(_) => None,
                };
                // Versions arrive out of order within the watermark's bound: keep them sorted.
                let at = state
                    .versions
                    .partition_point(|(from, _)| *from <= event_time);
                state_vec::insert(&mut state.versions, at, (event_time, row));
            }
        }
        cx.set_timer(event_time);
    }

    fn on_timer(
        &mut self,
        cx: &mut KeyedContext<K, O, Side<L, Change<R>>>,
        key: &K,
        state: &mut Versions<L, R>,
        time: EventTime,
    ) {
        let due: Vec<(EventTime, L)> = state
            .waiting
            .extract_if(.., |(at, _)| *at <= time)
            .collect();
        for (at, left) in due {
            let row = state.at(at);
            if row.is_some() || self.outer {
                cx.emit((self.join)(key, &left, row));
            }
        }
        // Records still to come are at `time` or later: only the version valid at `time` and
        // newer ones can matter.
        let valid = state.versions.partition_point(|(from, _)| *from <= time);
        state.versions.drain(..valid.saturating_sub(1));
        // A delete valid at `time` joins like no version at all. (Only one valid at `time`:
        // a delete later than `time` still ends the row before it for records to come.)
        if matches!(state.versions.first(), Some((from, None)) if *from <= time) {
            state.versions.remove(0);
        }
    }

    fn is_empty(&self, state: &Versions<L, R>) -> bool {
        state.versions.is_empty() && state.waiting.is_empty()
    }
}
