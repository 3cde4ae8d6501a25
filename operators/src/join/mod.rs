//! Joins of two keyed streams: records of both sides meet on the worker that owns their key,
//! in one keyed operator whose state (both sides' records) lives in the engine's state
//! backend and is checkpointed like any other keyed state.
//!
//! - [`JoinExt::window_join`] and [`JoinExt::window_cogroup`]: the records of both sides
//!   that fall into the same tumbling, hopping or session window, emitted when the window
//!   closes.
//! - [`JoinExt::join`] and [`ChangelogJoinExt::join_changelogs`]: regular joins (inner,
//!   left, right, full outer) of everything either side ever sent, as a changelog of
//!   [`Change`]s: outer joins withdraw padded rows when partners arrive.
//! - [`JoinExt::temporal_join`]: each record with the row its key had, at the record's
//!   event time, in a versioned table built from a changelog (or a file's rows).
//! - [`JoinExt::interval_join`]: each left record with the right records whose event time
//!   lies within a fixed interval around its own, emitted as soon as both are there; each
//!   side's records are dropped once the watermark passes the last time a partner could have.
//!
//! Records later than the watermark allows (behind a closed window, or behind the watermark
//! for an interval join) go to the late output as a [`Side`], and are counted.

mod interval;
mod regular;
mod temporal;
mod window;

use std::hash::Hash;

use serde::{Deserialize, Serialize};
use weir_engine::{Data, EventTime, KeyedOutput, KeyedStream, Stream, Timestamped};

use crate::changelog::Change;
use crate::window::{Window, WindowExt, Windows};

pub use interval::IntervalJoin;
pub use regular::{Expiry, JoinKind, Never, RegularJoin, Ttl};
pub use window::CoGroup;

/// The rows of one key that a join holds, each with a time of type `At`: its event time in an
/// interval join, the time it expires at in a regular join (`regular::ExpiresAt`).
#[derive(Serialize, Deserialize)]
pub(crate) struct Rows<L, R, At> {
    left: Vec<(At, L)>,
    right: Vec<(At, R)>,
}

impl<L, R, At> Default for Rows<L, R, At> {
    fn default() -> Self {
        Rows {
            left: Vec::new(),
            right: Vec::new(),
        }
    }
}

/// A record of the left or the right input of a join.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Side<L, R> {
    /// From the left input (the stream the join was called on).
    Left(L),
    /// From the right input.
    Right(R),
}

impl<L: Timestamped, R: Timestamped> Timestamped for Side<L, R> {
    fn event_time(&self) -> EventTime {
        match self {
            Side::Left(left) => left.event_time(),
            Side::Right(right) => right.event_time(),
        }
    }
}

/// The outputs of a join: the joined results, and the records of either side that came too
/// late to join.
pub type JoinOutput<'s, O, L, R> = KeyedOutput<'s, O, Side<L, R>>;

/// Joins on a keyed stream (the left side) with another keyed stream of the same key type.
pub trait JoinExt<'s, K, L> {
    /// Hands `cogroup` each key's records of both sides in each window in which either side
    /// has any, when the window closes (the watermark passes its end); its results are
    /// emitted. A record behind a closed window goes to the late output.
    ///
    /// ```
    /// use std::time::Duration;
    /// use weir_engine::{CollectSink, EventTime, IterSource, Job, JobConfig, Timestamped};
    /// use weir_operators::join::JoinExt;
    /// use weir_operators::window::tumbling;
    ///
    /// #[derive(Clone, serde::Serialize, serde::Deserialize)]
    /// struct Click { user: u32, at: EventTime }
    /// impl Timestamped for Click {
    ///     fn event_time(&self) -> EventTime { self.at }
    /// }
    ///
    /// let sink = CollectSink::new();
    /// let results = sink.results();
    /// Job::new(JobConfig::default()).run(move |p| {
    ///     let clicks = [(1, 100), (1, 300), (2, 500)].map(|(user, at)| Click { user, at: EventTime(at) });
    ///     let views = [(1, 200), (2, 1_500)].map(|(user, at)| Click { user, at: EventTime(at) });
    ///     let clicks = p.source(IterSource::new("clicks", clicks)).key_by(|c| c.user);
    ///     let views = p.source(IterSource::new("views", views)).key_by(|v| v.user);
    ///     // Users who clicked and viewed in the same second, with their click count.
    ///     let both = clicks.window_cogroup(views, tumbling(Duration::from_secs(1)), |user, window, clicks, views| {
    ///         (!clicks.is_empty() && !views.is_empty()).then(|| (*user, window.start.millis(), clicks.len()))
    ///     });
    ///     both.results.sink(sink.clone());
    ///     Ok(())
    /// })?;
    /// assert_eq!(*results.lock().unwrap(), vec![(1, 0, 2)]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    fn window_cogroup<R, O, I, F>(
        self,
        right: KeyedStream<'s, K, R>,
        windows: Windows,
        cogroup: F,
    ) -> JoinOutput<'s, O, L, R>
    where
        R: Data + Timestamped,
        O: Data,
        I: IntoIterator<Item = O>,
        F: Fn(&K, &Window, &[L], &[R]) -> I + 'static;

    /// Joins every left record with every right record of the same key in the same window,
    /// when the window closes: `join(key, window, left, right)` for each pair. An inner
    /// join: a record without a partner in its window yields nothing.
    fn window_join<R, O, F>(
        self,
        right: KeyedStream<'s, K, R>,
        windows: Windows,
        join: F,
    ) -> JoinOutput<'s, O, L, R>
    where
        R: Data + Timestamped,
        O: Data,
        F: Fn(&K, &Window, &L, &R) -> O + 'static;

    /// Joins every left record with every right record of the same key, whenever they arrive:
    /// `join(key, Some(left), Some(right))` for pairs and, in outer joins, `join(key,
    /// Some(left), None)` or `join(key, None, Some(right))` for records without partners
    /// (rows of the same key on the other side). `None` from `join` drops that output row
    /// only: a row whose pairs are all dropped is not padded, unlike a SQL outer join with
    /// the condition in `ON`. Returns the changelog of the joined table.
    fn join<R, O, F, EL, ER>(
        self,
        right: KeyedStream<'s, K, R>,
        config: RegularJoin<EL, ER>,
        join: F,
    ) -> Stream<'s, Change<O>>
    where
        L: PartialEq,
        R: Data + Timestamped + PartialEq,
        O: Data,
        F: Fn(&K, Option<&L>, Option<&R>) -> Option<O> + 'static,
        EL: Expiry<L>,
        ER: Expiry<R>;

    /// Joins each record with the row its key had in the versioned table `table` at the
    /// record's event time (an insert at time `v` is the key's row from `v` on; a delete at
    /// time `d` ends it: the deleted row's event time is the time of the delete, its other
    /// columns are ignored), once the watermark passes the record: `join(key, record, Some(row))`, or with
    /// `outer` also `join(key, record, None)` when the key had no row then. Records and
    /// versions behind the watermark are late. A table loaded from a file is a changelog of
    /// inserts at time 0.
    fn temporal_join<R, O, F>(
        self,
        table: KeyedStream<'s, K, Change<R>>,
        outer: bool,
        join: F,
    ) -> JoinOutput<'s, O, L, Change<R>>
    where
        R: Data + Timestamped,
        O: Data,
        F: Fn(&K, &L, Option<&R>) -> O + 'static;

    /// Joins each left record `l` with each right record `r` of the same key whose event time
    /// lies in `[l + lower, l + upper]` (`lower <= upper`, either may be negative: a
    /// `Duration` pair is given as signed milliseconds through [`IntervalJoin`]). A pair is
    /// emitted as soon as its second record arrives. Records behind the watermark are late.
    fn interval_join<R, O, F>(
        self,
        right: KeyedStream<'s, K, R>,
        bounds: IntervalJoin,
        join: F,
    ) -> JoinOutput<'s, O, L, R>
    where
        R: Data + Timestamped,
        O: Data,
        F: Fn(&K, &L, &R) -> O + 'static;
}

impl<'s, K, L> JoinExt<'s, K, L> for KeyedStream<'s, K, L>
where
    K: Data + Hash + Eq,
    L: Data + Timestamped,
{
    fn window_cogroup<R, O, I, F>(
        self,
        right: KeyedStream<'s, K, R>,
        windows: Windows,
        cogroup: F,
    ) -> JoinOutput<'s, O, L, R>
    where
        R: Data + Timestamped,
        O: Data,
        I: IntoIterator<Item = O>,
        F: Fn(&K, &Window, &[L], &[R]) -> I + 'static,
    {
        let gathered = self
            .map_values(Side::Left)
            .union(right.map_values(Side::Right))
            .window(windows)
            .aggregate(CoGroup::default());
        let results = gathered.results.flat_map(move |result| {
            let window = Window {
                start: result.start,
                end: result.end,
            };
            let (lefts, rights) = &result.value;
            cogroup(&result.key, &window, lefts, rights)
        });
        KeyedOutput {
            results,
            late: gathered.late,
        }
    }

    fn window_join<R, O, F>(
        self,
        right: KeyedStream<'s, K, R>,
        windows: Windows,
        join: F,
    ) -> JoinOutput<'s, O, L, R>
    where
        R: Data + Timestamped,
        O: Data,
        F: Fn(&K, &Window, &L, &R) -> O + 'static,
    {
        self.window_cogroup(right, windows, move |key, window, lefts, rights| {
            lefts
                .iter()
                .flat_map(|left| rights.iter().map(move |right| (left, right)))
                .map(|(left, right)| join(key, window, left, right))
                .collect::<Vec<_>>()
        })
    }

    fn join<R, O, F, EL, ER>(
        self,
        right: KeyedStream<'s, K, R>,
        config: RegularJoin<EL, ER>,
        join: F,
    ) -> Stream<'s, Change<O>>
    where
        L: PartialEq,
        R: Data + Timestamped + PartialEq,
        O: Data,
        F: Fn(&K, Option<&L>, Option<&R>) -> Option<O> + 'static,
        EL: Expiry<L>,
        ER: Expiry<R>,
    {
        self.map_values(Change::Insert).join_changelogs(
            right.map_values(Change::Insert),
            config,
            join,
        )
    }

    fn temporal_join<R, O, F>(
        self,
        table: KeyedStream<'s, K, Change<R>>,
        outer: bool,
        join: F,
    ) -> JoinOutput<'s, O, L, Change<R>>
    where
        R: Data + Timestamped,
        O: Data,
        F: Fn(&K, &L, Option<&R>) -> O + 'static,
    {
        self.map_values(Side::Left)
            .union(table.map_values(Side::Right))
            .process(
                "temporal join",
                Side::event_time,
                temporal::TemporalLogic { join, outer },
            )
    }

    fn interval_join<R, O, F>(
        self,
        right: KeyedStream<'s, K, R>,
        bounds: IntervalJoin,
        join: F,
    ) -> JoinOutput<'s, O, L, R>
    where
        R: Data + Timestamped,
        O: Data,
        F: Fn(&K, &L, &R) -> O + 'static,
    {
        self.map_values(Side::Left)
            .union(right.map_values(Side::Right))
            .process("interval join", Side::event_time, bounds.logic(join))
    }
}

/// Regular joins of two keyed changelogs.
pub trait ChangelogJoinExt<'s, K, L> {
    /// Joins two changelogs as [`JoinExt::join`] joins two streams of inserts: a delete on
    /// either side withdraws the results its row produced (and restores padding in outer
    /// joins).
    fn join_changelogs<R, O, F, EL, ER>(
        self,
        right: KeyedStream<'s, K, Change<R>>,
        config: RegularJoin<EL, ER>,
        join: F,
    ) -> Stream<'s, Change<O>>
    where
        R: Data + Timestamped + PartialEq,
        O: Data,
        F: Fn(&K, Option<&L>, Option<&R>) -> Option<O> + 'static,
        EL: Expiry<L>,
        ER: Expiry<R>;
}

impl<'s, K, L> ChangelogJoinExt<'s, K, L> for KeyedStream<'s, K, Change<L>>
where
    K: Data + Hash + Eq,
    L: Data + Timestamped + PartialEq,
{
    fn join_changelogs<R, O, F, EL, ER>(
        self,
        right: KeyedStream<'s, K, Change<R>>,
        config: RegularJoin<EL, ER>,
        join: F,
    ) -> Stream<'s, Change<O>>
    where
        R: Data + Timestamped + PartialEq,
        O: Data,
        F: Fn(&K, Option<&L>, Option<&R>) -> Option<O> + 'static,
        EL: Expiry<L>,
        ER: Expiry<R>,
    {
        // A regular join judges nothing late: every record joins.
        self.map_values(Side::Left)
            .union(right.map_values(Side::Right))
            .process("regular join", Side::event_time, config.logic(join))
            .results
    }
}
