//! Aggregations that can take records back, for updating aggregations over changelogs: a
//! delete retracts the record an insert added.

use std::collections::BTreeMap;
use std::ops::{Add, Sub};

use serde::de::DeserializeOwned;
use serde::Serialize;
use weir_engine::Data;

use super::{Avg, Count, Extreme, Sum};

/// An aggregation whose records can be retracted: adding and then retracting a record leaves
/// the accumulator as it was.
pub trait Retract<T>: 'static {
    /// The running state of one group (serializable: state backends store it).
    type Accumulator: Default + Serialize + DeserializeOwned + 'static;
    /// What the aggregation yields.
    type Output: Data + PartialEq;
    /// Adds one record.
    fn add(&self, accumulator: &mut Self::Accumulator, record: &T);
    /// Takes back a record added before.
    fn retract(&self, accumulator: &mut Self::Accumulator, record: &T);
    /// The result over the records held (the group is never empty when this is asked).
    fn result(&self, accumulator: &Self::Accumulator) -> Self::Output;
}

impl<T: 'static> Retract<T> for Count {
    type Accumulator = u64;
    type Output = u64;
    fn add(&self, count: &mut u64, _record: &T) {
        *count += 1;
    }
    fn retract(&self, count: &mut u64, _record: &T) {
        *count = count.saturating_sub(1);
    }
    fn result(&self, count: &u64) -> u64 {
        *count
    }
}

impl<T, V, F> Retract<T> for Sum<F>
where
    T: 'static,
    F: Fn(&T) -> V + 'static,
    V: Data + Copy + Default + PartialEq + Add<Output = V> + Sub<Output = V>,
{
    type Accumulator = V;
    type Output = V;
    fn add(&self, sum: &mut V, record: &T) {
        *sum = *sum + (self.0)(record);
    }
    fn retract(&self, sum: &mut V, record: &T) {
        *sum = *sum - (self.0)(record);
    }
    fn result(&self, sum: &V) -> V {
        *sum
    }
}

impl<T, F> Retract<T> for Avg<F>
where
    T: 'static,
    F: Fn(&T) -> f64 + 'static,
{
    /// Sum and count.
    type Accumulator = (f64, u64);
    type Output = f64;
    fn add(&self, (sum, count): &mut (f64, u64), record: &T) {
        *sum += (self.0)(record);
        *count += 1;
    }
    fn retract(&self, (sum, count): &mut (f64, u64), record: &T) {
        *sum -= (self.0)(record);
        *count = count.saturating_sub(1);
    }
    fn result(&self, (sum, count): &(f64, u64)) -> f64 {
        *sum / *count as f64
    }
}

/// Minimum and maximum keep every value with its count, so that retracting the extreme
/// reveals the next one.
impl<T, V, F, const LARGEST: bool> Retract<T> for Extreme<F, LARGEST>
where
    T: 'static,
    F: Fn(&T) -> V + 'static,
    V: Data + Ord,
{
    type Accumulator = BTreeMap<V, u64>;
    type Output = Option<V>;
    fn add(&self, values: &mut BTreeMap<V, u64>, record: &T) {
        *values.entry((self.0)(record)).or_insert(0) += 1;
    }
    fn retract(&self, values: &mut BTreeMap<V, u64>, record: &T) {
        let value = (self.0)(record);
        if let Some(count) = values.get_mut(&value) {
            *count -= 1;
            if *count == 0 {
                values.remove(&value);
            }
        }
    }
    fn result(&self, values: &BTreeMap<V, u64>) -> Option<V> {
        let extreme = if LARGEST {
            values.keys().next_back()
        } else {
            values.keys().next()
        };
        extreme.cloned()
    }
}
