//! Changelogs: streams of changes to a result table, for operators whose earlier results a
//! later record can change (outer joins, updating aggregations). A change inserts a row or
//! deletes one inserted before; an update is a delete of the old row followed by an insert
//! of the new one (Flink's `-U`/`+U`, differential dataflow's `-1`/`+1`).

use std::collections::HashMap;
use std::hash::Hash;

use serde::{Deserialize, Serialize};
use weir_engine::time::END_OF_TIME;
use weir_engine::{Data, EventTime, KeyedContext, KeyedProcess, Stream, Timestamped};

use crate::state_vec;

/// One change to a result table.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "op", content = "row")]
pub enum Change<T> {
    /// The row is added.
    #[serde(rename = "+")]
    Insert(T),
    /// A row added earlier is withdrawn.
    #[serde(rename = "-")]
    Delete(T),
}

impl<T> Change<T> {
    /// The row inserted or deleted.
    pub fn row(&self) -> &T {
        match self {
            Change::Insert(row) | Change::Delete(row) => row,
        }
    }

    /// The row, and `+1` for an insert or `-1` for a delete.
    pub fn into_diff(self) -> (T, i64) {
        match self {
            Change::Insert(row) => (row, 1),
            Change::Delete(row) => (row, -1),
        }
    }

    /// The same change to `logic(row)`.
    pub fn map<U>(self, logic: impl FnOnce(T) -> U) -> Change<U> {
        match self {
            Change::Insert(row) => Change::Insert(logic(row)),
            Change::Delete(row) => Change::Delete(logic(row)),
        }
    }
}

impl<T: Timestamped> Timestamped for Change<T> {
    fn event_time(&self) -> EventTime {
        self.row().event_time()
    }
}

/// The table a changelog describes: each row with its count (rows deleted as often as
/// inserted are gone). Fails, naming the row, if a change deletes a row the table does not
/// hold: a changelog that does that is broken.
///
/// ```
/// use weir_operators::changelog::{apply, Change};
/// let table = apply([Change::Insert("a"), Change::Insert("b"), Change::Delete("a")]).unwrap();
/// assert_eq!(table.len(), 1);
/// assert_eq!(table.get("b"), Some(&1));
/// ```
pub fn apply<T: Hash + Eq + std::fmt::Debug>(
    changes: impl IntoIterator<Item = Change<T>>,
) -> Result<HashMap<T, u64>, String> {
    let mut table: HashMap<T, u64> = HashMap::new();
    for change in changes {
        match change {
            Change::Insert(row) => *table.entry(row).or_default() += 1,
            Change::Delete(row) => match table.get_mut(&row) {
                Some(count) if *count > 1 => *count -= 1,
                Some(_) => {
                    table.remove(&row);
                }
                None => {
                    return Err(format!(
                        "a delete of {row:?}, which the table does not hold"
                    ))
                }
            },
        }
    }
    Ok(table)
}

/// Operations on changelog streams.
pub trait ChangelogExt<'s, T> {
    /// The table the changelog describes once its input has ended: each row as often as it
    /// was inserted and not deleted, emitted at the end of the input (for a bounded run's
    /// final result; on an endless stream nothing comes out).
    fn final_view(self) -> Stream<'s, T>
    where
        T: Hash + Eq;

    /// The upserted view of the changelog once its input has ended: for each key (as
    /// `key_of` gives it), the row inserted last and not deleted since. For changelogs whose
    /// rows are one per key, such as an updating aggregation's results.
    fn upsert_view<K: Data + Hash + Eq>(self, key_of: impl Fn(&T) -> K + 'static) -> Stream<'s, T>
    where
        T: PartialEq;
}

impl<'s, T: Data> ChangelogExt<'s, T> for Stream<'s, Change<T>> {
    fn final_view(self) -> Stream<'s, T>
    where
        T: Hash + Eq,
    {
        self.key_by(|change| change.row().clone())
            .process("final view", |_| EventTime::ZERO, FinalView)
            .results
    }

    fn upsert_view<K: Data + Hash + Eq>(self, key_of: impl Fn(&T) -> K + 'static) -> Stream<'s, T>
    where
        T: PartialEq,
    {
        self.key_by(move |change| key_of(change.row()))
            .process("upsert view", |_| EventTime::ZERO, UpsertView)
            .results
    }
}

/// Keeps each key's live rows, in insertion order, and emits the last at the end.
struct UpsertView;

impl<K: Data, T: Data + PartialEq> KeyedProcess<K, Change<T>> for UpsertView {
    type State = Vec<T>;
    type Output = T;

    fn on_record(
        &mut self,
        cx: &mut KeyedContext<K, T, Change<T>>,
        _key: &K,
        rows: &mut Vec<T>,
        change: Change<T>,
        _event_time: EventTime,
    ) {
        match change {
            Change::Insert(row) => state_vec::push(rows, row),
            Change::Delete(row) => {
                if let Some(at) = rows.iter().rposition(|held| *held == row) {
                    rows.remove(at);
                }
            }
        }
        cx.set_timer(END_OF_TIME);
    }

    fn on_timer(
        &mut self,
        cx: &mut KeyedContext<K, T, Change<T>>,
        _key: &K,
        rows: &mut Vec<T>,
        _time: EventTime,
    ) {
        if let Some(latest) = rows.pop() {
            cx.emit(latest);
        }
        rows.clear();
    }

    fn is_empty(&self, rows: &Vec<T>) -> bool {
        rows.is_empty()
    }
}

/// Counts each row's inserts minus deletes and emits what is left when the input ends.
struct FinalView;

impl<T: Data> KeyedProcess<T, Change<T>> for FinalView {
    type State = i64;
    type Output = T;

    fn on_record(
        &mut self,
        cx: &mut KeyedContext<T, T, Change<T>>,
        _row: &T,
        count: &mut i64,
        change: Change<T>,
        _event_time: EventTime,
    ) {
        let (_, diff) = change.into_diff();
        *count += diff;
        // Fires once every record has arrived: the watermark reaches the end of time only
        // when the input ends.
        cx.set_timer(END_OF_TIME);
    }

    fn on_timer(
        &mut self,
        cx: &mut KeyedContext<T, T, Change<T>>,
        row: &T,
        count: &mut i64,
        _time: EventTime,
    ) {
        for _ in 0..*count {
            cx.emit(row.clone());
        }
        *count = 0;
    }

    fn is_empty(&self, count: &i64) -> bool {
        *count == 0
    }
}
