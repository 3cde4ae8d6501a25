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
//!     let clicks = [(1, 500), (1, 1_500), (2, 900), (1, 1_200)].map(|(page, at)| Click { page, at: EventTime(at) });
//!     let counts = p
//!         .source(IterSource::new("clicks", clicks))
//!         .key_by(|click| click.page)
//!         .window(tumbling(Duration::from_secs(1)))
//!         .aggregate(Count);
//!     counts.results.map(|r| (r.key, r.start.millis(), r.value)).sink(sink.clone());
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
use weir_engine::{
    Data, EventTime, KeyedContext, KeyedOutput, KeyedProcess, KeyedStream, ProcessingTime,
    Timestamped,
};

use crate::aggregate::Aggregate;
use crate::state_vec;
pub use assigner::{global, hopping, session, tumbling, Window, Windows};

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
    /// What this result is: early, on time, a late update, or a retraction.
    pub kind: ResultKind,
}

/// What a [`WindowResult`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ResultKind {
    /// Fired early by a trigger, before the watermark passed the window's end; more follow.
    Early,
    /// Fired when the watermark passed the window's end.
    OnTime,
    /// A late record within the allowed lateness changed a window that had fired.
    Update,
    /// Withdraws the value this window emitted last (retracting triggers only); the window's
    /// new value follows.
    Retraction,
}

/// When a window fires before the watermark passes its end.
pub enum Trigger<T> {
    /// After every `n` records added to the window.
    Records(u32),
    /// Once per wall-clock interval while records arrive.
    Interval(Duration),
    /// After each record for which the function says so (a punctuation, a threshold).
    When(Box<dyn Fn(&T) -> bool>),
}

/// What earlier results of a window mean when it fires again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Firing {
    /// Each result holds everything so far and replaces the last.
    Accumulating,
    /// Each new result is preceded by a [`ResultKind::Retraction`] of the last one, for
    /// consumers that add results up.
    Retracting,
}

impl<K, R> WindowResult<K, R> {
    /// The window this result is for.
    pub fn window(&self) -> Window {
        Window {
            start: self.start,
            end: self.end,
        }
    }
}

impl<K, R> Timestamped for WindowResult<K, R> {
    /// A window's result happens at its last millisecond, so windows downstream put it in
    /// the window it summarises.
    fn event_time(&self) -> EventTime {
        self.window().max_timestamp()
    }
}

/// The outputs of a windowed aggregation: one result per key and window (plus updates for late
/// records), and the records later than the allowed lateness.
pub type WindowOutput<'s, K, R, T> = KeyedOutput<'s, WindowResult<K, R>, T>;

/// A keyed stream with windows chosen, waiting for its aggregation.
pub struct WindowedStream<'s, K, T> {
    stream: KeyedStream<'s, K, T>,
    windows: Windows,
    allowed_lateness: Duration,
    trigger: Option<(Trigger<T>, Firing)>,
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
            allowed_lateness: Duration::ZERO,
            trigger: None,
        }
    }
}

impl<'s, K: Data + Hash + Eq, T: Data + Timestamped> WindowedStream<'s, K, T> {
    /// Keeps fired windows for `lateness` more of event time: records arriving that late
    /// update them (the result is re-emitted as an update) instead of going to the late
    /// output.
    pub fn allowed_lateness(self, lateness: Duration) -> Self {
        WindowedStream {
            allowed_lateness: lateness,
            ..self
        }
    }

    /// Also fires windows early, when `trigger` says so, with results that accumulate or
    /// retract (the on-time result still follows when the watermark passes the end). With
    /// [`global`] windows, this is the only way results appear before the input ends.
    pub fn trigger(self, trigger: Trigger<T>, firing: Firing) -> Self {
        WindowedStream {
            trigger: Some((trigger, firing)),
            ..self
        }
    }

    /// Aggregates each key's records per window.
    pub fn aggregate<A: Aggregate<T>>(self, aggregate: A) -> WindowOutput<'s, K, A::Output, T> {
        let logic = WindowLogic {
            windows: self.windows,
            allowed_lateness: self.allowed_lateness,
            trigger: self.trigger,
            aggregate,
        };
        self.stream.process("window", T::event_time, logic)
    }
}

/// A window of one key: its accumulator, whether it fired on time, what it emitted last
/// (kept for retractions) and how many records it took since.
#[derive(Serialize, Deserialize)]
struct OpenWindow<Acc, Out> {
    window: Window,
    accumulator: Acc,
    fired: bool,
    /// Boxed: only retracting windows fill it, and every open window of every key holds
    /// the slot.
    emitted: Option<Box<Out>>,
    /// Records taken since the last emission, saturating (a `u32` beside `fired` keeps an
    /// open window of a bid in 112 bytes, a size class of the allocator, instead of 128).
    since_emitted: u32,
}

/// The keyed logic of windowed aggregation.
struct WindowLogic<A, T> {
    windows: Windows,
    allowed_lateness: Duration,
    trigger: Option<(Trigger<T>, Firing)>,
    aggregate: A,
}

type Open<A, T> = OpenWindow<<A as Aggregate<T>>::Accumulator, <A as Aggregate<T>>::Output>;

impl<A: Aggregate<T>, T> WindowLogic<A, T> {
    /// A window is expired once the watermark passes its end plus the allowed lateness.
    fn expired(&self, window: &Window, watermark: EventTime) -> bool {
        window.max_timestamp() + self.allowed_lateness < watermark
    }

    fn retracting(&self) -> bool {
        matches!(self.trigger, Some((_, Firing::Retracting)))
    }

    /// Emits a window's current result as `kind`, after retracting its last one if asked to.
    fn emit<K: Clone>(
        &self,
        cx: &mut KeyedContext<K, WindowResult<K, A::Output>, T>,
        key: &K,
        open: &mut Open<A, T>,
        kind: ResultKind,
    ) {
        let value = self.aggregate.result(&open.accumulator);
        self.emit_value(cx, key, open, value, kind);
    }

    /// Emits `value` as a window's result of `kind`, after retracting its last one if asked
    /// to.
    fn emit_value<K: Clone>(
        &self,
        cx: &mut KeyedContext<K, WindowResult<K, A::Output>, T>,
        key: &K,
        open: &mut Open<A, T>,
        value: A::Output,
        kind: ResultKind,
    ) {
        self.retract(cx, key, open);
        if self.retracting() {
            open.emitted = Some(Box::new(value.clone()));
        }
        open.since_emitted = 0;
        cx.emit(WindowResult {
            key: key.clone(),
            start: open.window.start,
            end: open.window.end,
            value,
            kind,
        });
    }

    /// Withdraws what a window emitted last, when retracting.
    fn retract<K: Clone>(
        &self,
        cx: &mut KeyedContext<K, WindowResult<K, A::Output>, T>,
        key: &K,
        open: &mut Open<A, T>,
    ) {
        if let Some(value) = open.emitted.take() {
            cx.emit(WindowResult {
                key: key.clone(),
                start: open.window.start,
                end: open.window.end,
                value: *value,
                kind: ResultKind::Retraction,
            });
        }
    }

    /// Fires `open` early if the trigger says so after `record` was added.
    fn maybe_fire_early<K: Clone>(
        &self,
        cx: &mut KeyedContext<K, WindowResult<K, A::Output>, T>,
        key: &K,
        open: &mut Open<A, T>,
        record: &T,
    ) {
        let Some((trigger, _)) = &self.trigger else {
            return;
        };
        let fire = match trigger {
            Trigger::Records(every) => open.since_emitted >= *every,
            Trigger::When(fires) => fires(record),
            Trigger::Interval(interval) => {
                if open.since_emitted == 1 {
                    let wait = (*interval).max(Duration::from_millis(1));
                    cx.set_processing_timer(cx.now() + wait);
                }
                false
            }
        };
        if fire {
            self.emit(cx, key, open, ResultKind::Early);
        }
    }

    /// Asks for the window's firing and, with lateness, its clean-up.
    fn set_timers<K, O>(&self, cx: &mut KeyedContext<K, O, T>, window: &Window) {
        cx.set_timer(window.max_timestamp());
        if !self.allowed_lateness.is_zero() {
            cx.set_timer(window.max_timestamp() + self.allowed_lateness);
        }
    }
}

impl<K, T, A> KeyedProcess<K, T> for WindowLogic<A, T>
where
    K: Data,
    T: Data,
    A: Aggregate<T>,
{
    type State = Vec<Open<A, T>>;
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
                existing.since_emitted = existing.since_emitted.saturating_add(1);
                if existing.fired {
                    // A late record within the lateness updates a fired window.
                    self.emit(cx, key, existing, ResultKind::Update);
                } else {
                    self.maybe_fire_early(cx, key, existing, &record);
                }
                continue;
            }
            // A new window, or a session merging the ones it covers.
            let mut merged = OpenWindow {
                window: target,
                accumulator: self.aggregate.create(),
                fired: false,
                emitted: None,
                since_emitted: 1,
            };
            self.aggregate.add(&mut merged.accumulator, &record);
            let mut absorbed = Vec::new();
            open.retain_mut(|other| {
                let covered = self.windows.merges()
                    && target.start <= other.window.start
                    && other.window.end <= target.end;
                if covered {
                    let taken = std::mem::replace(&mut other.accumulator, self.aggregate.create());
                    self.aggregate.merge(&mut merged.accumulator, taken);
                    merged.fired |= other.fired;
                    merged.since_emitted = merged.since_emitted.saturating_add(other.since_emitted);
                    absorbed.push((other.window, other.emitted.take()));
                }
                !covered
            });
            // Sessions that merged withdraw what they emitted.
            for (window, emitted) in absorbed {
                let mut gone = OpenWindow {
                    window,
                    accumulator: self.aggregate.create(),
                    fired: true,
                    emitted,
                    since_emitted: 0,
                };
                self.retract(cx, key, &mut gone);
            }
            if merged.fired {
                self.emit(cx, key, &mut merged, ResultKind::Update);
            } else {
                self.maybe_fire_early(cx, key, &mut merged, &record);
            }
            self.set_timers(cx, &target);
            state_vec::push(open, merged);
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
        let closed = time + Duration::from_millis(1);
        let mut index = 0;
        while let Some(window) = open.get_mut(index) {
            if window.fired || window.window.max_timestamp() > time {
                index += 1;
            } else if self.expired(&window.window, closed) {
                // It closes for good as it fires: its accumulator moves into the result
                // instead of being copied (when many windows close at once, the copies
                // would double their memory).
                let mut window = open.remove(index);
                let accumulator =
                    std::mem::replace(&mut window.accumulator, self.aggregate.create());
                let value = self.aggregate.final_result(accumulator);
                self.emit_value(cx, key, &mut window, value, ResultKind::OnTime);
            } else {
                window.fired = true;
                self.emit(cx, key, window, ResultKind::OnTime);
                index += 1;
            }
        }
        open.retain(|window| !(window.fired && self.expired(&window.window, closed)));
    }

    fn on_processing_timer(
        &mut self,
        cx: &mut KeyedContext<K, Self::Output, T>,
        key: &K,
        open: &mut Self::State,
        _time: ProcessingTime,
    ) {
        // The interval trigger: windows that took records since they last fired fire early.
        for window in open.iter_mut() {
            if !window.fired && window.since_emitted > 0 {
                self.emit(cx, key, window, ResultKind::Early);
            }
        }
    }

    fn is_empty(&self, open: &Self::State) -> bool {
        open.is_empty()
    }
}
