//! Changelogs: streams of changes to a result table, for operators whose earlier results a
//! later record can change (outer joins, updating aggregations). A change inserts a row or
//! deletes one inserted before; an update is a delete of the old row followed by an insert
//! of the new one (Flink's `-U`/`+U`, differential dataflow's `-1`/`+1`).

use std::collections::HashMap;
use std::hash::Hash;

use serde::{Deserialize, Serialize};
use weir_engine::{EventTime, Timestamped};

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
