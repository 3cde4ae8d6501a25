//! Distinct counts: exact (a set of the values) and approximate (HyperLogLog).

use std::collections::HashSet;
use std::hash::{BuildHasher, Hash};

use serde::{Deserialize, Serialize};
use weir_engine::Data;

use super::Aggregate;

type ValueSet<V> = HashSet<V, foldhash::fast::FixedState>;

/// The exact number of distinct values of `f(record)`. Its state holds every distinct value.
#[derive(Clone, Copy, Debug)]
pub struct DistinctCount<F>(F);

impl<F> DistinctCount<F> {
    /// Counts the distinct values of `value(record)`.
    pub fn of(value: F) -> Self {
        DistinctCount(value)
    }
}

impl<T, V, F> Aggregate<T> for DistinctCount<F>
where
    F: Fn(&T) -> V + 'static,
    V: Data + Hash + Eq,
{
    type Accumulator = ValueSet<V>;
    type Output = u64;
    fn create(&self) -> ValueSet<V> {
        ValueSet::default()
    }
    fn add(&self, values: &mut ValueSet<V>, record: &T) {
        values.insert((self.0)(record));
    }
    fn merge(&self, values: &mut ValueSet<V>, other: ValueSet<V>) {
        values.extend(other);
    }
    fn result(&self, values: &ValueSet<V>) -> u64 {
        values.len() as u64
    }
}

/// Registers of a HyperLogLog sketch: 2^14, a standard error of about 0.8 %.
const PRECISION: u32 = 14;
const REGISTERS: usize = 1 << PRECISION;

/// A HyperLogLog sketch: 16 KiB whatever the number of values.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sketch {
    registers: Vec<u8>,
}

impl Default for Sketch {
    fn default() -> Self {
        Sketch {
            registers: vec![0; REGISTERS],
        }
    }
}

impl Sketch {
    /// Adds a value.
    pub fn insert<V: Hash>(&mut self, value: &V) {
        // A fixed seed, so sketches of different workers and runs merge; the quality variant,
        // because the register index takes the top bits.
        let hash = foldhash::quality::FixedState::with_seed(0x6879_7065_726c_6f67).hash_one(value);
        let register = (hash >> (64 - PRECISION)) as usize;
        let rest = (hash << PRECISION) | (1 << (PRECISION - 1));
        let rank = rest.leading_zeros() as u8 + 1;
        if let Some(slot) = self.registers.get_mut(register) {
            *slot = (*slot).max(rank);
        }
    }

    /// Adds every value `other` has seen.
    pub fn merge(&mut self, other: &Sketch) {
        for (mine, theirs) in self.registers.iter_mut().zip(&other.registers) {
            *mine = (*mine).max(*theirs);
        }
    }

    /// The estimated number of distinct values.
    pub fn estimate(&self) -> u64 {
        let m = REGISTERS as f64;
        let alpha = 0.7213 / (1.0 + 1.079 / m);
        let sum: f64 = self
            .registers
            .iter()
            .map(|&r| 2f64.powi(-i32::from(r)))
            .sum();
        let raw = alpha * m * m / sum;
        let zeros = self.registers.iter().filter(|&&r| r == 0).count();
        // Few values: linear counting over the empty registers is more accurate.
        let estimate = if raw <= 2.5 * m && zeros > 0 {
            m * (m / zeros as f64).ln()
        } else {
            raw
        };
        estimate.round() as u64
    }
}

/// The approximate number of distinct values of `f(record)` (HyperLogLog, about 0.8 %
/// standard error, 16 KiB of state).
#[derive(Clone, Copy, Debug)]
pub struct ApproxDistinctCount<F>(F);

impl<F> ApproxDistinctCount<F> {
    /// Estimates the distinct values of `value(record)`.
    pub fn of(value: F) -> Self {
        ApproxDistinctCount(value)
    }
}

impl<T, V, F> Aggregate<T> for ApproxDistinctCount<F>
where
    F: Fn(&T) -> V + 'static,
    V: Hash + Data,
{
    type Accumulator = Sketch;
    type Output = u64;
    fn create(&self) -> Sketch {
        Sketch::default()
    }
    fn add(&self, sketch: &mut Sketch, record: &T) {
        sketch.insert(&(self.0)(record));
    }
    fn merge(&self, sketch: &mut Sketch, other: Sketch) {
        sketch.merge(&other);
    }
    fn result(&self, sketch: &Sketch) -> u64 {
        sketch.estimate()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sketch_estimates_within_a_few_percent_and_merges() {
        for distinct in [0u64, 1, 10, 1_000, 50_000, 500_000] {
            let mut left = Sketch::default();
            let mut right = Sketch::default();
            for value in 0..distinct {
                // Every value twice, split over two sketches.
                left.insert(&value);
                right.insert(&value);
                if value % 2 == 0 {
                    right.insert(&(value + distinct));
                }
            }
            left.merge(&right);
            let truth = distinct + distinct.div_ceil(2);
            let estimate = left.estimate() as f64;
            let error = (estimate - truth as f64).abs() / (truth.max(1) as f64);
            assert!(error < 0.03, "{truth} distinct estimated as {estimate}");
        }
    }

    #[test]
    fn exact_distinct_counts_merge() {
        let count = DistinctCount::of(|v: &u32| v % 7);
        let mut left = count.create();
        (0..5).for_each(|v| count.add(&mut left, &v));
        let mut right = count.create();
        (3..100).for_each(|v| count.add(&mut right, &v));
        count.merge(&mut left, right);
        assert_eq!(count.result(&left), 7);
    }
}
