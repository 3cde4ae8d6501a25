//! Event-time windows over a keyed stream: tumbling, hopping and session windows with an
//! incremental aggregation, allowed lateness and a late side output.
//!
//! A window `[start, end)` fires once the watermark passes `end - 1` (every record with an
//! earlier event time has arrived), emitting one [`WindowResult`]. A record that arrives
//! later, but within the allowed lateness, updates its window and re-emits the result marked
//! as an update; a record later than that goes to the late side output and is counted.
//!
//! ```
//! use std::time::Duration;
//! use weir_engine::{CollectSink, IterSource, Job, JobConfig, Timestamped, EventTime};
//! use weir_operators::aggregate::Count;
//! use weir_operators::window::{tumbling, WindowExt};
//!
//! #[derive(Clone, serde::Serialize, serde::Deserialize)]
//! struct Click { page: u32, at: EventTime }
//! impl Timestamped for Click {
//!     fn event_time(&self) -> EventTime { self.at }
//! }
//!
//! let sink = CollectSink::new();
//! let results = sink.results();
//! Job::new(JobConfig::default()).run(move |p| {
//!     let clicks = [(1, 500), (1, 1_500), (2, 900), (1, 1_200)].map(|(page, at)| Click { page, at });
//!     let counts = p
//!         .source(IterSource::new("clicks", clicks))
//!         .key_by(|click| click.page)
//!         .window(tumbling(Duration::from_secs(1)))
//!         .aggregate(Count);
//!     counts.results.map(|r| (r.key, r.start, r.value)).sink(sink.clone());
//!     Ok(())
//! })?;
//! let mut counts = results.lock().unwrap().clone();
//! counts.sort();
//! assert_eq!(counts, vec![(1, 0, 1), (1, 1_000, 2), (2, 0, 1)]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod assigner;

use std::hash::Hash;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use weir_engine::{Data, EventTime, KeyedContext, KeyedProcess, KeyedStream, Stream, Timestamped};

use crate::aggregate::Aggregate;
pub use assigner::{hopping, session, tumbling, Window, Windows};

/// One window's result for one key.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WindowResult<K, R> {
    /// The key.
    pub key: K,
    /// The window's first millisecond.
    pub start: EventTime,
    /// The first millisecond after the window.
    pub end: EventTime,
    /// The aggregation's result.
    pub value: R,
    /// True when a late record changed a window that had already fired: this result
    /// replaces the earlier one.
    pub update: bool,
}

impl<K, R> Timestamped for WindowResult<K, R> {
    /// A window's result happens at its last millisecond, so windows downstream put it in
    /// the window it summarises.
    fn event_time(&self) -> EventTime {
        self.end.saturating_sub(1)
    }
}

/// The two outputs of a windowed aggregation.
pub struct WindowOutput<'s, K, R, T> {
    /// One result per key and window (plus updates for late records).
    pub results: Stream<'s, WindowResult<K, R>>,
    /// Records later than the allowed lateness (also counted in the job's metrics).
    pub late: Stream<'s, T>,
}

/// A keyed stream with windows chosen, waiting for its aggregation.
pub struct WindowedStream<'s, K, T> {
    stream: KeyedStream<'s, K, T>,
    windows: Windows,
    allowed_lateness: EventTime,
}

/// Adds `window` to keyed streams.
pub trait WindowExt<'s, K, T> {
    /// Groups each key's records into `windows` by their event time.
    fn window(self, windows: Windows) -> WindowedStream<'s, K, T>;
}

impl<'s, K: Data + Hash + Eq, T: Data + Timestamped> WindowExt<'s, K, T> for KeyedStream<'s, K, T> {
    fn window(self, windows: Windows) -> WindowedStream<'s, K, T> {
        WindowedStream {
            stream: self,
            windows,
            allowed_lateness: 0,
        }
    }
}

impl<'s, K: Data + Hash + Eq, T: Data + Timestamped> WindowedStream<'s, K, T> {
    /// Keeps fired windows for `lateness` more of event time: records arriving that late
    /// update them (the result is re-emitted as an update) instead of going to the late
    /// output.
    pub fn allowed_lateness(self, lateness: Duration) -> Self {
        WindowedStream {
            allowed_lateness: lateness.as_millis().min(u128::from(EventTime::MAX)) as EventTime,
            ..self
        }
    }

    /// Aggregates each key's records per window.
    pub fn aggregate<A: Aggregate<T>>(self, aggregate: A) -> WindowOutput<'s, K, A::Output, T> {
        let logic = WindowLogic {
            windows: self.windows,
            allowed_lateness: self.allowed_lateness,
            aggregate,
        };
        let (results, late) = self.stream.process("window", T::event_time, logic);
        WindowOutput { results, late }
    }
}

/// A window of one key: its accumulator and whether it has fired.
struct OpenWindow<Acc> {
    window: Window,
    accumulator: Acc,
    fired: bool,
}

/// The keyed logic of windowed aggregation.
struct WindowLogic<A> {
    windows: Windows,
    allowed_lateness: EventTime,
    aggregate: A,
}

impl<A> WindowLogic<A> {
    /// A window is expired once the watermark passes its end plus the allowed lateness.
    fn expired(&self, window: &Window, watermark: EventTime) -> bool {
        window.max_timestamp().saturating_add(self.allowed_lateness) < watermark
    }

    fn result<K: Clone, T>(
        &self,
        key: &K,
        open: &OpenWindow<A::Accumulator>,
        update: bool,
    ) -> WindowResult<K, A::Output>
    where
        A: Aggregate<T>,
    {
        WindowResult {
            key: key.clone(),
            start: open.window.start,
            end: open.window.end,
            value: self.aggregate.result(&open.accumulator),
            update,
        }
    }

    /// Asks for the window's firing and, with lateness, its clean-up.
    fn set_timers<K, O, T>(&self, cx: &mut KeyedContext<K, O, T>, window: &Window) {
        cx.set_timer(window.max_timestamp());
        if self.allowed_lateness > 0 {
            cx.set_timer(window.max_timestamp().saturating_add(self.allowed_lateness));
        }
    }
}

impl<K, T, A> KeyedProcess<K, T> for WindowLogic<A>
where
    K: Data,
    T: Data,
    A: Aggregate<T>,
{
    type State = Vec<OpenWindow<A::Accumulator>>;
    type Output = WindowResult<K, A::Output>;

    fn on_record(
        &mut self,
        cx: &mut KeyedContext<K, Self::Output, T>,
        key: &K,
        open: &mut Self::State,
        record: T,
        event_time: EventTime,
    ) {
        let watermark = cx.watermark();
        let mut assigned = false;
        for window in self.windows.assign(event_time) {
            // The window this record lands in: for sessions, its own grown over every session
            // it meets.
            let target = if self.windows.merges() {
                open.iter()
                    .filter(|other| other.window.meets(&window))
                    .fold(window, |target, other| target.cover(&other.window))
            } else {
                window
            };
            if self.expired(&target, watermark) {
                continue;
            }
            assigned = true;
            if let Some(existing) = open.iter_mut().find(|other| other.window == target) {
                self.aggregate.add(&mut existing.accumulator, &record);
                if existing.fired {
                    // A late record within the lateness updates a fired window.
                    cx.emit(self.result(key, existing, true));
                }
                continue;
            }
            // A new window, or a session merging the ones it covers.
            let mut merged = OpenWindow {
                window: target,
                accumulator: self.aggregate.create(),
                fired: false,
            };
            self.aggregate.add(&mut merged.accumulator, &record);
            open.retain_mut(|other| {
                let covered = self.windows.merges()
                    && target.start <= other.window.start
                    && other.window.end <= target.end;
                if covered {
                    let taken = std::mem::replace(&mut other.accumulator, self.aggregate.create());
                    self.aggregate.merge(&mut merged.accumulator, taken);
                    merged.fired |= other.fired;
                }
                !covered
            });
            if merged.fired {
                cx.emit(self.result(key, &merged, true));
            }
            self.set_timers(cx, &target);
            open.push(merged);
        }
        if !assigned {
            cx.late(record);
        }
    }

    fn on_timer(
        &mut self,
        cx: &mut KeyedContext<K, Self::Output, T>,
        key: &K,
        open: &mut Self::State,
        time: EventTime,
    ) {
        for window in open.iter_mut() {
            if !window.fired && window.window.max_timestamp() <= time {
                window.fired = true;
                cx.emit(self.result(key, window, false));
            }
        }
        open.retain(|window| {
            !(window.fired && self.expired(&window.window, time.saturating_add(1)))
        });
    }

    fn is_empty(&self, open: &Self::State) -> bool {
        open.is_empty()
    }
}
