//! Updating aggregations: an aggregate per key over a changelog, emitting a changelog of the
//! results. Each change to a key's records replaces its result: the old result is deleted and
//! the new one inserted (nothing is emitted when the result stays the same, and only the
//! delete when the key's last record is deleted). Chained, they compute queries such as
//! "the average over categories of the highest bid per auction", where a new highest bid
//! retracts the old one from the average.
//!
//! ```
//! use weir_engine::{CollectSink, IterSource, Job, JobConfig};
//! use weir_operators::aggregate::Max;
//! use weir_operators::changelog::{apply, Change};
//! use weir_operators::updating::UpdatingExt;
//!
//! let sink = CollectSink::new();
//! let results = sink.results();
//! Job::new(JobConfig::default()).run(move |p| {
//!     let bids = [(1, 10), (1, 30), (2, 5)].map(|(auction, price): (u32, u64)| Change::Insert((auction, price)));
//!     p.source(IterSource::new("bids", bids))
//!         .key_by(|bid| bid.row().0)
//!         .aggregate_changes(Max::of(|bid: &(u32, u64)| bid.1).retractable())
//!         .sink(sink.clone());
//!     Ok(())
//! })?;
//! let table = apply(results.lock().unwrap().clone())?;
//! assert_eq!(table.len(), 2);
//! assert!(table.contains_key(&(1, Some(30))) && table.contains_key(&(2, Some(5))));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::hash::Hash;

use serde::{Deserialize, Serialize};
use weir_engine::{Data, EventTime, KeyedContext, KeyedOutput, KeyedProcess, KeyedStream, Stream};

use crate::aggregate::{Aggregate, Retract};
use crate::changelog::Change;
use weir_engine::time::END_OF_TIME;

/// One key's records as an accumulator, how many there are, and the result emitted last.
#[derive(Serialize, Deserialize)]
struct Group<Acc, Out> {
    accumulator: Acc,
    records: u64,
    emitted: Option<Out>,
}

impl<Acc: Default, Out> Default for Group<Acc, Out> {
    fn default() -> Self {
        Group {
            accumulator: Acc::default(),
            records: 0,
            emitted: None,
        }
    }
}

/// Running aggregations on keyed streams of records (inserts only).
pub trait RunningExt<'s, K, T> {
    /// Aggregates each key's records so far with `aggregate`, emitting `(key, result)` rows as
    /// a changelog: each new record that changes a key's result deletes the old result and
    /// inserts the new one. Unlike [`UpdatingExt::aggregate_changes`], records are never
    /// taken back, so the state is the accumulator alone (a maximum keeps one value, not
    /// every value seen).
    fn aggregate_running<A>(self, aggregate: A) -> Stream<'s, Change<(K, A::Output)>>
    where
        A: Aggregate<T>,
        A::Output: PartialEq;

    /// [`aggregate_running`](Self::aggregate_running) for keys that take no records after a
    /// time their records carry, `until(record)` (an auction takes no bids once it has
    /// closed). A key's accumulator is dropped once the watermark passes the latest `until`
    /// of its records, so the state holds the keys still open, not every key ever seen; its
    /// last result stays as emitted. A record whose `until` the watermark had passed when it
    /// was sent goes to the late output: its key may have been dropped, and a fresh result
    /// would not retract the one emitted before.
    fn aggregate_running_until<A>(
        self,
        aggregate: A,
        until: impl Fn(&T) -> EventTime + 'static,
    ) -> KeyedOutput<'s, Change<(K, A::Output)>, T>
    where
        A: Aggregate<T>,
        A::Output: PartialEq;
}

impl<'s, K, T> RunningExt<'s, K, T> for KeyedStream<'s, K, T>
where
    K: Data + Hash + Eq,
    T: Data,
{
    fn aggregate_running<A>(self, aggregate: A) -> Stream<'s, Change<(K, A::Output)>>
    where
        A: Aggregate<T>,
        A::Output: PartialEq,
    {
        running(self, aggregate, None).results
    }

    fn aggregate_running_until<A>(
        self,
        aggregate: A,
        until: impl Fn(&T) -> EventTime + 'static,
    ) -> KeyedOutput<'s, Change<(K, A::Output)>, T>
    where
        A: Aggregate<T>,
        A::Output: PartialEq,
    {
        running(self, aggregate, Some(Box::new(until)))
    }
}

/// A running aggregation, dropping closed keys when `until` says when keys close.
fn running<'s, K, T, A>(
    stream: KeyedStream<'s, K, T>,
    aggregate: A,
    until: Option<Until<T>>,
) -> KeyedOutput<'s, Change<(K, A::Output)>, T>
where
    K: Data + Hash + Eq,
    T: Data,
    A: Aggregate<T>,
    A::Output: PartialEq,
{
    stream.process(
        "running aggregate",
        |_| EventTime::ZERO,
        RunningLogic { aggregate, until },
    )
}

/// When a key of a running aggregation closes, as its records say.
type Until<T> = Box<dyn Fn(&T) -> EventTime>;

/// The keyed logic of a running aggregation.
struct RunningLogic<A, T> {
    aggregate: A,
    /// When a key's records end, for aggregations that drop closed keys.
    until: Option<Until<T>>,
}

/// One key of a running aggregation: its accumulator, the result emitted last, and the
/// latest `until` of its records (the end of time for aggregations that keep every key).
#[derive(Serialize, Deserialize)]
struct Running<Acc, Out> {
    accumulator: Acc,
    emitted: Out,
    until: EventTime,
}

impl<K, T, A> KeyedProcess<K, T> for RunningLogic<A, T>
where
    K: Data,
    T: Data,
    A: Aggregate<T>,
    A::Output: PartialEq,
{
    type State = Option<Running<A::Accumulator, A::Output>>;
    type Output = Change<(K, A::Output)>;

    fn on_record(
        &mut self,
        cx: &mut KeyedContext<K, Self::Output, T>,
        key: &K,
        state: &mut Self::State,
        record: T,
        _event_time: EventTime,
    ) {
        let until = match &self.until {
            Some(until) => until(&record),
            None => END_OF_TIME,
        };
        if until < cx.watermark() {
            cx.late(record);
            return;
        }
        let (mut accumulator, emitted, until) = match state.take() {
            Some(running) => (
                running.accumulator,
                Some(running.emitted),
                running.until.max(until),
            ),
            None => (self.aggregate.create(), None, until),
        };
        if self.until.is_some() {
            // Set at the same time again, a timer fires once.
            cx.set_timer(until);
        }
        let changed = self.aggregate.add_changed(&mut accumulator, &record);
        let emitted = match emitted {
            Some(emitted) if !changed => emitted,
            emitted => {
                let result = self.aggregate.result(&accumulator);
                if emitted.as_ref() != Some(&result) {
                    if let Some(old) = emitted {
                        cx.emit(Change::Delete((key.clone(), old)));
                    }
                    cx.emit(Change::Insert((key.clone(), result.clone())));
                }
                result
            }
        };
        *state = Some(Running {
            accumulator,
            emitted,
            until,
        });
    }

    fn on_timer(
        &mut self,
        _cx: &mut KeyedContext<K, Self::Output, T>,
        _key: &K,
        state: &mut Self::State,
        time: EventTime,
    ) {
        // Closed: no record of this key can come on time any more.
        if state.as_ref().is_some_and(|running| running.until <= time) {
            *state = None;
        }
    }

    fn is_empty(&self, state: &Self::State) -> bool {
        state.is_none()
    }
}

/// Updating aggregations on keyed changelogs.
pub trait UpdatingExt<'s, K, T> {
    /// Aggregates each key's rows (inserted and not deleted since) with `aggregate`, emitting
    /// `(key, result)` rows as a changelog. The rows are not kept, so a delete of a row the
    /// key never had is not detected (only one on an empty key is ignored): the input must be
    /// a well-formed changelog.
    fn aggregate_changes<A>(self, aggregate: A) -> Stream<'s, Change<(K, A::Output)>>
    where
        A: Retract<T>,
        A::Output: PartialEq;
}

impl<'s, K, T> UpdatingExt<'s, K, T> for KeyedStream<'s, K, Change<T>>
where
    K: Data + Hash + Eq,
    T: Data,
{
    fn aggregate_changes<A>(self, aggregate: A) -> Stream<'s, Change<(K, A::Output)>>
    where
        A: Retract<T>,
        A::Output: PartialEq,
    {
        // Updating aggregations judge nothing late: every change counts, whenever it comes.
        self.process(
            "updating aggregate",
            |_| EventTime::ZERO,
            UpdatingLogic { aggregate },
        )
        .results
    }
}

/// The keyed logic of an updating aggregation.
struct UpdatingLogic<A> {
    aggregate: A,
}

impl<K, T, A> KeyedProcess<K, Change<T>> for UpdatingLogic<A>
where
    K: Data,
    T: Data,
    A: Retract<T>,
    A::Output: PartialEq,
{
    type State = Group<A::Accumulator, A::Output>;
    type Output = Change<(K, A::Output)>;

    fn on_record(
        &mut self,
        cx: &mut KeyedContext<K, Self::Output, Change<T>>,
        key: &K,
        group: &mut Self::State,
        change: Change<T>,
        _event_time: EventTime,
    ) {
        match &change {
            Change::Insert(row) => {
                self.aggregate.add(&mut group.accumulator, row);
                group.records += 1;
            }
            Change::Delete(row) => {
                if group.records == 0 {
                    // A delete of a row the group does not hold: nothing to take back.
                    return;
                }
                self.aggregate.retract(&mut group.accumulator, row);
                group.records -= 1;
            }
        }
        let result = (group.records > 0).then(|| self.aggregate.result(&group.accumulator));
        if result == group.emitted {
            return;
        }
        if let Some(old) = group.emitted.take() {
            cx.emit(Change::Delete((key.clone(), old)));
        }
        if let Some(new) = result {
            cx.emit(Change::Insert((key.clone(), new.clone())));
            group.emitted = Some(new);
        }
    }

    fn on_timer(
        &mut self,
        _cx: &mut KeyedContext<K, Self::Output, Change<T>>,
        _key: &K,
        _group: &mut Self::State,
        _time: EventTime,
    ) {
    }

    fn is_empty(&self, group: &Self::State) -> bool {
        group.records == 0
    }
}
