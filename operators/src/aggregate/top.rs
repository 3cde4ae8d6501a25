//! Top-N: the records with the largest values of a ranking.

use super::Aggregate;
use crate::state_vec;
use weir_engine::Data;

/// The `n` records with the largest `rank(record)`, largest first (of equal ranks, the
/// earlier arrivals).
#[derive(Clone, Copy, Debug)]
pub struct TopN<F> {
    n: usize,
    rank: F,
}

impl<F> TopN<F> {
    /// Keeps the `n` records with the largest `rank(record)`.
    pub fn by(n: usize, rank: F) -> Self {
        TopN { n, rank }
    }
}

impl<T, R, F> Aggregate<T> for TopN<F>
where
    T: Data,
    F: Fn(&T) -> R + 'static,
    R: Ord,
{
    type Accumulator = Vec<T>;
    type Output = Vec<T>;
    fn create(&self) -> Vec<T> {
        // Grown as records come (most keys of a large state hold few): room for `n` up front
        // made q19's accumulators 968 bytes per auction.
        Vec::new()
    }
    fn add(&self, top: &mut Vec<T>, record: &T) {
        let rank = (self.rank)(record);
        // After every record of higher or equal rank: earlier arrivals win ties.
        let at = top.partition_point(|kept| (self.rank)(kept) >= rank);
        if at < self.n {
            top.truncate(self.n - 1);
            state_vec::insert_at_most(top, at, record.clone(), self.n);
        }
    }
    fn merge(&self, top: &mut Vec<T>, other: Vec<T>) {
        for record in &other {
            self.add(top, record);
        }
    }
    fn result(&self, top: &Vec<T>) -> Vec<T> {
        top.clone()
    }
    fn final_result(&self, top: Vec<T>) -> Vec<T> {
        top
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn top_n_equals_sorting(values in proptest::collection::vec(0u32..50, 0..80), n in 0usize..12, cut in 0usize..80) {
            let top = TopN::by(n, |v: &u32| *v);
            let cut = cut.min(values.len());
            let mut left = top.create();
            values[..cut].iter().for_each(|v| top.add(&mut left, v));
            let mut right = top.create();
            values[cut..].iter().for_each(|v| top.add(&mut right, v));
            top.merge(&mut left, right);
            let mut sorted = values.clone();
            sorted.sort_unstable_by(|a, b| b.cmp(a));
            sorted.truncate(n);
            prop_assert_eq!(top.result(&left), sorted);
        }
    }
}
