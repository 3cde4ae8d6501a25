//! Window joins: both sides' records of one key gathered per window (a window aggregation
//! over the union of the two inputs), handed to a function when the window closes.
//! [`JoinExt::window_cogroup`](super::JoinExt::window_cogroup) builds on this.

use std::marker::PhantomData;

use weir_engine::Data;

use super::Side;
use crate::aggregate::Aggregate;

/// Gathers the records of both sides of one window.
pub struct CoGroup<L, R> {
    _sides: PhantomData<fn(&L, &R)>,
}

impl<L, R> Default for CoGroup<L, R> {
    fn default() -> Self {
        CoGroup {
            _sides: PhantomData,
        }
    }
}

impl<L: Data, R: Data> Aggregate<Side<L, R>> for CoGroup<L, R> {
    type Accumulator = (Vec<L>, Vec<R>);
    type Output = (Vec<L>, Vec<R>);
    fn create(&self) -> Self::Accumulator {
        (Vec::new(), Vec::new())
    }
    fn add(&self, (lefts, rights): &mut Self::Accumulator, record: &Side<L, R>) {
        match record {
            Side::Left(left) => lefts.push(left.clone()),
            Side::Right(right) => rights.push(right.clone()),
        }
    }
    fn merge(
        &self,
        (lefts, rights): &mut Self::Accumulator,
        (more_lefts, more_rights): Self::Accumulator,
    ) {
        lefts.extend(more_lefts);
        rights.extend(more_rights);
    }
    fn result(&self, sides: &Self::Accumulator) -> Self::Output {
        sides.clone()
    }
}
