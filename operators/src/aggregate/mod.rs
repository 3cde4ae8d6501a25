//! Incremental aggregations: an accumulator is created, records are added one at a time,
//! accumulators merge (session windows need that), and a result is read out.

mod distinct;
mod retract;
mod top;

use std::ops::Add;

use serde::de::DeserializeOwned;
use serde::Serialize;

use weir_engine::{Data, Timestamped};

pub use distinct::{ApproxDistinctCount, DistinctCount, Sketch};
pub use retract::{Retract, RetractableExtreme};
pub use top::TopN;

/// An incremental aggregation over records of type `T`.
///
/// ```
/// use weir_operators::aggregate::{Aggregate, Avg};
/// let avg = Avg::of(|price: &u64| *price as f64);
/// let mut left = avg.create();
/// avg.add(&mut left, &10);
/// let mut right = avg.create();
/// avg.add(&mut right, &20);
/// avg.add(&mut right, &30);
/// avg.merge(&mut left, right);
/// assert_eq!(avg.result(&left), 20.0);
/// ```
pub trait Aggregate<T>: 'static {
    /// The running state of one group or window (serializable: state backends store it).
    type Accumulator: Clone + Serialize + DeserializeOwned + 'static;
    /// What the aggregation yields.
    type Output: Data;
    /// An accumulator of no records.
    fn create(&self) -> Self::Accumulator;
    /// Adds one record.
    fn add(&self, accumulator: &mut Self::Accumulator, record: &T);
    /// Adds one record, and says whether the result may have changed: `false` lets a running
    /// aggregation skip computing and comparing its result (a record that is no new maximum).
    /// The default adds and says `true`.
    fn add_changed(&self, accumulator: &mut Self::Accumulator, record: &T) -> bool {
        self.add(accumulator, record);
        true
    }
    /// Adds everything `other` holds.
    fn merge(&self, accumulator: &mut Self::Accumulator, other: Self::Accumulator);
    /// The result so far.
    fn result(&self, accumulator: &Self::Accumulator) -> Self::Output;
    /// The final result, taking the accumulator (of a window that closes for good). An
    /// aggregate whose result is its accumulator moves it out instead of copying it, which
    /// halves the memory of the many windows that can close at once.
    fn final_result(&self, accumulator: Self::Accumulator) -> Self::Output {
        self.result(&accumulator)
    }
}

/// Counts records.
#[derive(Clone, Copy, Debug, Default)]
pub struct Count;

impl<T> Aggregate<T> for Count {
    type Accumulator = u64;
    type Output = u64;
    fn create(&self) -> u64 {
        0
    }
    fn add(&self, count: &mut u64, _record: &T) {
        *count += 1;
    }
    fn merge(&self, count: &mut u64, other: u64) {
        *count += other;
    }
    fn result(&self, count: &u64) -> u64 {
        *count
    }
}

/// Sums a value of each record.
#[derive(Clone, Copy, Debug)]
pub struct Sum<F>(F);

impl<F> Sum<F> {
    /// Sums `value(record)`.
    pub fn of(value: F) -> Self {
        Sum(value)
    }
}

impl<T, V, F> Aggregate<T> for Sum<F>
where
    F: Fn(&T) -> V + 'static,
    V: Data + Copy + Default + Add<Output = V>,
{
    type Accumulator = V;
    type Output = V;
    fn create(&self) -> V {
        V::default()
    }
    fn add(&self, sum: &mut V, record: &T) {
        *sum = *sum + (self.0)(record);
    }
    fn merge(&self, sum: &mut V, other: V) {
        *sum = *sum + other;
    }
    fn result(&self, sum: &V) -> V {
        *sum
    }
}

/// The smallest (`LARGEST = false`, [`Min`]) or largest ([`Max`]) value of the records
/// (`None` for no records).
#[derive(Clone, Copy, Debug)]
pub struct Extreme<F, const LARGEST: bool>(F);

/// The smallest value of the records.
pub type Min<F> = Extreme<F, false>;
/// The largest value of the records.
pub type Max<F> = Extreme<F, true>;

impl<F> Min<F> {
    /// The minimum of `value(record)`.
    pub fn of(value: F) -> Self {
        Extreme(value)
    }
}

impl<F> Max<F> {
    /// The maximum of `value(record)`.
    pub fn of(value: F) -> Self {
        Extreme(value)
    }
}

impl<T, V, F, const LARGEST: bool> Aggregate<T> for Extreme<F, LARGEST>
where
    F: Fn(&T) -> V + 'static,
    V: Data + Ord,
{
    type Accumulator = Option<V>;
    type Output = Option<V>;
    fn create(&self) -> Option<V> {
        None
    }
    fn add(&self, kept: &mut Option<V>, record: &T) {
        self.add_changed(kept, record);
    }
    fn add_changed(&self, kept: &mut Option<V>, record: &T) -> bool {
        self.keep_winner(kept, (self.0)(record))
    }
    fn merge(&self, kept: &mut Option<V>, other: Option<V>) {
        if let Some(other) = other {
            self.keep_winner(kept, other);
        }
    }
    fn result(&self, kept: &Option<V>) -> Option<V> {
        kept.clone()
    }
    fn final_result(&self, kept: Option<V>) -> Option<V> {
        kept
    }
}

impl<F, const LARGEST: bool> Extreme<F, LARGEST> {
    /// Keeps `other` if it beats what `kept` holds; returns whether it did.
    fn keep_winner<V: Ord>(&self, kept: &mut Option<V>, other: V) -> bool {
        let wins = kept.as_ref().is_none_or(|current| {
            if LARGEST {
                other > *current
            } else {
                other < *current
            }
        });
        if wins {
            *kept = Some(other);
        }
        wins
    }
}

/// The records with the largest value, ties included (none for no records): the arg-max.
///
/// ```
/// use weir_operators::aggregate::{Aggregate, MaxBy};
/// let highest = MaxBy::of(|bid: &(u32, u64)| bid.1);
/// let mut kept = highest.create();
/// for bid in [(1, 5), (2, 9), (3, 9), (4, 2)] {
///     highest.add(&mut kept, &bid);
/// }
/// assert_eq!(highest.result(&kept), vec![(2, 9), (3, 9)]);
/// ```
#[derive(Clone, Copy, Debug)]
pub struct MaxBy<F>(F);

impl<F> MaxBy<F> {
    /// The records with the largest `value(record)`.
    pub fn of(value: F) -> Self {
        MaxBy(value)
    }
}

impl<T, V, F> Aggregate<T> for MaxBy<F>
where
    T: Data,
    F: Fn(&T) -> V + 'static,
    V: Data + Ord,
{
    type Accumulator = Option<(V, Vec<T>)>;
    type Output = Vec<T>;
    fn create(&self) -> Self::Accumulator {
        None
    }
    fn add(&self, kept: &mut Self::Accumulator, record: &T) {
        let value = (self.0)(record);
        match kept {
            Some((largest, records)) if value == *largest => records.push(record.clone()),
            Some((largest, _)) if value < *largest => {}
            _ => *kept = Some((value, vec![record.clone()])),
        }
    }
    fn merge(&self, kept: &mut Self::Accumulator, other: Self::Accumulator) {
        let Some((value, mut others)) = other else {
            return;
        };
        match kept {
            Some((largest, records)) if value == *largest => records.append(&mut others),
            Some((largest, _)) if value < *largest => {}
            _ => *kept = Some((value, others)),
        }
    }
    fn final_result(&self, kept: Self::Accumulator) -> Vec<T> {
        kept.map(|(_, records)| records).unwrap_or_default()
    }
    fn result(&self, kept: &Self::Accumulator) -> Vec<T> {
        kept.as_ref()
            .map(|(_, records)| records.clone())
            .unwrap_or_default()
    }
}

/// The mean of a value of the records (NaN for no records).
#[derive(Clone, Copy, Debug)]
pub struct Avg<F>(F);

impl<F> Avg<F> {
    /// The mean of `value(record)`.
    pub fn of(value: F) -> Self {
        Avg(value)
    }
}

impl<T, F> Aggregate<T> for Avg<F>
where
    F: Fn(&T) -> f64 + 'static,
{
    /// Sum and count.
    type Accumulator = (f64, u64);
    type Output = f64;
    fn create(&self) -> (f64, u64) {
        (0.0, 0)
    }
    fn add(&self, (sum, count): &mut (f64, u64), record: &T) {
        *sum += (self.0)(record);
        *count += 1;
    }
    fn merge(&self, (sum, count): &mut (f64, u64), (other_sum, other_count): (f64, u64)) {
        *sum += other_sum;
        *count += other_count;
    }
    fn result(&self, (sum, count): &(f64, u64)) -> f64 {
        *sum / *count as f64
    }
}

/// The record with the smallest event time (of equal times, the first to arrive).
#[derive(Clone, Copy, Debug, Default)]
pub struct First;

impl<T: Data + Timestamped> Aggregate<T> for First {
    type Accumulator = Option<T>;
    type Output = Option<T>;
    fn create(&self) -> Option<T> {
        None
    }
    fn add(&self, first: &mut Option<T>, record: &T) {
        if first
            .as_ref()
            .is_none_or(|kept| record.event_time() < kept.event_time())
        {
            *first = Some(record.clone());
        }
    }
    fn merge(&self, first: &mut Option<T>, other: Option<T>) {
        if let Some(other) = other {
            self.add(first, &other);
        }
    }
    fn result(&self, first: &Option<T>) -> Option<T> {
        first.clone()
    }
    fn final_result(&self, first: Option<T>) -> Option<T> {
        first
    }
}

/// The record with the largest event time (of equal times, the last to arrive).
#[derive(Clone, Copy, Debug, Default)]
pub struct Last;

impl<T: Data + Timestamped> Aggregate<T> for Last {
    type Accumulator = Option<T>;
    type Output = Option<T>;
    fn create(&self) -> Option<T> {
        None
    }
    fn add(&self, last: &mut Option<T>, record: &T) {
        if last
            .as_ref()
            .is_none_or(|kept| record.event_time() >= kept.event_time())
        {
            *last = Some(record.clone());
        }
    }
    fn merge(&self, last: &mut Option<T>, other: Option<T>) {
        if let Some(other) = other {
            self.add(last, &other);
        }
    }
    fn result(&self, last: &Option<T>) -> Option<T> {
        last.clone()
    }
    fn final_result(&self, last: Option<T>) -> Option<T> {
        last
    }
}

/// Two aggregations side by side, yielding a pair.
impl<T, A: Aggregate<T>, B: Aggregate<T>> Aggregate<T> for (A, B) {
    type Accumulator = (A::Accumulator, B::Accumulator);
    type Output = (A::Output, B::Output);
    fn create(&self) -> Self::Accumulator {
        (self.0.create(), self.1.create())
    }
    fn add(&self, (a, b): &mut Self::Accumulator, record: &T) {
        self.0.add(a, record);
        self.1.add(b, record);
    }
    fn add_changed(&self, (a, b): &mut Self::Accumulator, record: &T) -> bool {
        let changed_a = self.0.add_changed(a, record);
        self.1.add_changed(b, record) || changed_a
    }
    fn merge(&self, (a, b): &mut Self::Accumulator, (other_a, other_b): Self::Accumulator) {
        self.0.merge(a, other_a);
        self.1.merge(b, other_b);
    }
    fn result(&self, (a, b): &Self::Accumulator) -> Self::Output {
        (self.0.result(a), self.1.result(b))
    }
    fn final_result(&self, (a, b): Self::Accumulator) -> Self::Output {
        (self.0.final_result(a), self.1.final_result(b))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Folds `values` split at `cut` into two accumulators and merges them.
    fn split_fold<A: Aggregate<u64>>(aggregate: &A, values: &[u64], cut: usize) -> A::Output {
        let cut = cut.min(values.len());
        let mut left = aggregate.create();
        values[..cut]
            .iter()
            .for_each(|v| aggregate.add(&mut left, v));
        let mut right = aggregate.create();
        values[cut..]
            .iter()
            .for_each(|v| aggregate.add(&mut right, v));
        aggregate.merge(&mut left, right);
        aggregate.result(&left)
    }

    proptest! {
        #[test]
        fn merged_accumulators_equal_one_pass(values in proptest::collection::vec(0u64..1_000, 1..50), cut in 0usize..50) {
            prop_assert_eq!(split_fold(&Count, &values, cut), values.len() as u64);
            prop_assert_eq!(split_fold(&Sum::of(|v: &u64| *v), &values, cut), values.iter().sum::<u64>());
            prop_assert_eq!(split_fold(&Min::of(|v: &u64| *v), &values, cut), values.iter().min().copied());
            prop_assert_eq!(split_fold(&Max::of(|v: &u64| *v), &values, cut), values.iter().max().copied());
            let mean = values.iter().sum::<u64>() as f64 / values.len() as f64;
            prop_assert!((split_fold(&Avg::of(|v: &u64| *v as f64), &values, cut) - mean).abs() < 1e-9);
            prop_assert_eq!(split_fold(&(Count, Max::of(|v: &u64| *v)), &values, cut), (values.len() as u64, values.iter().max().copied()));
        }

        /// `add_changed` says `false` only when the result stayed the same.
        #[test]
        fn add_changed_is_false_only_for_an_unchanged_result(values in proptest::collection::vec(0u64..20, 1..40)) {
            fn check<A: Aggregate<u64>>(aggregate: &A, values: &[u64]) -> Result<(), TestCaseError>
            where
                A::Output: PartialEq + std::fmt::Debug,
            {
                let mut accumulator = aggregate.create();
                for value in values {
                    let before = aggregate.result(&accumulator);
                    let changed = aggregate.add_changed(&mut accumulator, value);
                    prop_assert!(changed || aggregate.result(&accumulator) == before);
                }
                Ok(())
            }
            check(&Max::of(|v: &u64| *v), &values)?;
            check(&Min::of(|v: &u64| *v), &values)?;
            check(&(Min::of(|v: &u64| *v), Max::of(|v: &u64| *v)), &values)?;
            // The extremes say when they change: only a new extreme does.
            let mut max = None;
            let changes = values.iter().filter(|v| Max::of(|v: &u64| *v).add_changed(&mut max, v)).count();
            let records = values.iter().enumerate().filter(|(at, v)| values[..*at].iter().all(|held| held < v)).count();
            prop_assert_eq!(changes, records);
        }
    }
}
