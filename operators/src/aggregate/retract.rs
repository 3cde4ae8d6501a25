//! Aggregations that can take records back, for updating aggregations over changelogs: a
//! delete retracts the record an insert added. Each builds on its [`Aggregate`]: only taking
//! a record back is added.

use std::collections::BTreeMap;
use std::ops::{Add, Sub};

use weir_engine::Data;

use super::{Aggregate, Avg, Count, Extreme, Sum};

/// An [`Aggregate`] whose records can be taken back: adding and then retracting a record leaves
/// the accumulator as it was. The accumulator's `Default` is the accumulator of no records.
pub trait Retract<T>: Aggregate<T, Accumulator: Default> {
    /// Takes back a record added before.
    fn retract(&self, accumulator: &mut Self::Accumulator, record: &T);
}

impl<T> Retract<T> for Count {
    fn retract(&self, count: &mut u64, _record: &T) {
        *count = count.saturating_sub(1);
    }
}

impl<T, V, F> Retract<T> for Sum<F>
where
    F: Fn(&T) -> V + 'static,
    V: Data + Copy + Default + Add<Output = V> + Sub<Output = V>,
{
    fn retract(&self, sum: &mut V, record: &T) {
        *sum = *sum - (self.0)(record);
    }
}

impl<T, F> Retract<T> for Avg<F>
where
    F: Fn(&T) -> f64 + 'static,
{
    fn retract(&self, (sum, count): &mut (f64, u64), record: &T) {
        *sum -= (self.0)(record);
        *count = count.saturating_sub(1);
    }
}

/// [`Min`](super::Min) or [`Max`](super::Max) over records that can be taken back, from
/// [`Extreme::retractable`]. It keeps every value with its count, so that retracting the
/// extreme reveals the next one: a window's `Min` or `Max` keeps one value instead.
#[derive(Clone, Copy, Debug)]
pub struct RetractableExtreme<F, const LARGEST: bool>(F);

impl<F, const LARGEST: bool> Extreme<F, LARGEST> {
    /// The same minimum or maximum, able to take records back (for
    /// [`aggregate_changes`](crate::updating::UpdatingExt::aggregate_changes)).
    pub fn retractable(self) -> RetractableExtreme<F, LARGEST> {
        RetractableExtreme(self.0)
    }
}

impl<T, V, F, const LARGEST: bool> Aggregate<T> for RetractableExtreme<F, LARGEST>
where
    F: Fn(&T) -> V + 'static,
    V: Data + Ord,
{
    /// Every value held, with how many records have it.
    type Accumulator = BTreeMap<V, u64>;
    type Output = Option<V>;
    fn create(&self) -> BTreeMap<V, u64> {
        BTreeMap::new()
    }
    fn add(&self, values: &mut BTreeMap<V, u64>, record: &T) {
        *values.entry((self.0)(record)).or_insert(0) += 1;
    }
    fn merge(&self, values: &mut BTreeMap<V, u64>, other: BTreeMap<V, u64>) {
        for (value, count) in other {
            *values.entry(value).or_insert(0) += count;
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

impl<T, V, F, const LARGEST: bool> Retract<T> for RetractableExtreme<F, LARGEST>
where
    F: Fn(&T) -> V + 'static,
    V: Data + Ord,
{
    fn retract(&self, values: &mut BTreeMap<V, u64>, record: &T) {
        let value = (self.0)(record);
        if let Some(count) = values.get_mut(&value) {
            *count -= 1;
            if *count == 0 {
                values.remove(&value);
            }
        }
    }
}
