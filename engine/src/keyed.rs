//! The keyed operator every stateful operator is built on: per-key state, event-time timers
//! and a late side output, over a stream already partitioned by key.
//!
//! An operator's logic implements [`KeyedProcess`]; the engine keeps its state per key, holds
//! one capability per pending timer time (so results carry the event time they stand for,
//! and downstream watermarks wait for them), and fires timers in time order once the input
//! watermark passes them.

use std::collections::{BTreeMap, HashSet};
use std::hash::Hash;
use std::sync::Arc;
use std::time::Duration;

use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::Pipeline as PipelinePact;
use timely::dataflow::operators::generic::builder_rc::OperatorBuilder;
use timely::dataflow::operators::generic::OutputBuilder;
use timely::dataflow::operators::Capability;
use timely::dataflow::StreamVec;
use timely::order::PartialOrder;

use crate::error::EngineError;
use crate::job::{JobShared, WorkerInfo};
use crate::state::{StateBackend, StateCache, StateError};
use crate::time::{frontier_watermark, EventTime, Time};
use crate::Data;

type KeySet<K> = HashSet<K, foldhash::fast::FixedState>;

/// What a keyed operator's logic can do while it handles a record or a timer.
pub struct KeyedContext<K, O, T> {
    watermark: EventTime,
    outputs: Vec<O>,
    late: Vec<T>,
    timers: Vec<EventTime>,
    processing_timers: Vec<u64>,
    now: u64,
    _key: std::marker::PhantomData<fn(&K)>,
}

impl<K, O, T> KeyedContext<K, O, T> {
    fn new() -> Self {
        KeyedContext {
            watermark: 0,
            outputs: Vec::new(),
            late: Vec::new(),
            timers: Vec::new(),
            processing_timers: Vec::new(),
            now: 0,
            _key: std::marker::PhantomData,
        }
    }

    /// The watermark that judges lateness: for a record, the watermark of the source when it
    /// emitted the record (so lateness depends only on the events and the watermarks, never on
    /// scheduling); for a timer, the timer's time.
    pub fn watermark(&self) -> EventTime {
        self.watermark
    }

    /// Emits a result. Results of a timer carry the timer's time; results of a record carry
    /// the record's.
    pub fn emit(&mut self, output: O) {
        self.outputs.push(output);
    }

    /// Sends a record to the late side output.
    pub fn late(&mut self, record: T) {
        self.late.push(record);
    }

    /// Asks for [`KeyedProcess::on_timer`] for this key once the watermark passes `time`
    /// (every record with event time `<= time` has arrived). Setting a timer twice fires it
    /// once.
    pub fn set_timer(&mut self, time: EventTime) {
        self.timers.push(time);
    }

    /// The wall-clock time, in milliseconds since the Unix epoch, when the operator started
    /// this round of work.
    pub fn now(&self) -> u64 {
        self.now
    }

    /// Asks for [`KeyedProcess::on_processing_timer`] for this key once the wall clock reaches
    /// `time` (ms since the Unix epoch), or when the input ends. Results it emits carry the
    /// time of the record that set the timer first.
    pub fn set_processing_timer(&mut self, time: u64) {
        self.processing_timers.push(time);
    }
}

/// Per-key logic of a keyed operator.
pub trait KeyedProcess<K, T>: 'static {
    /// The state kept for each key (serializable: the RocksDB backend stores it).
    type State: Default + serde::Serialize + serde::de::DeserializeOwned + 'static;
    /// The results.
    type Output: Data;

    /// Handles one record of `key`, whose event time is `event_time`.
    fn on_record(
        &mut self,
        cx: &mut KeyedContext<K, Self::Output, T>,
        key: &K,
        state: &mut Self::State,
        record: T,
        event_time: EventTime,
    );

    /// Handles a timer of `key` set for `time`, now that the watermark has passed it.
    fn on_timer(
        &mut self,
        cx: &mut KeyedContext<K, Self::Output, T>,
        key: &K,
        state: &mut Self::State,
        time: EventTime,
    );

    /// Handles a processing-time timer of `key` set for wall-clock `time`. Logic that sets no
    /// processing-time timers keeps the default, which does nothing.
    fn on_processing_timer(
        &mut self,
        _cx: &mut KeyedContext<K, Self::Output, T>,
        _key: &K,
        _state: &mut Self::State,
        _time: u64,
    ) {
    }

    /// Whether a key's state holds nothing; such state is dropped.
    fn is_empty(&self, state: &Self::State) -> bool;
}

/// A timer time's keys and the capabilities its results and late records are sent with.
struct PendingTimer<K> {
    keys: KeySet<K>,
    results: Capability<Time>,
    late: Capability<Time>,
}

/// Pending timers of one kind, by time.
struct Timers<K> {
    by_time: BTreeMap<u64, PendingTimer<K>>,
}

impl<K> Default for Timers<K> {
    fn default() -> Self {
        Timers {
            by_time: BTreeMap::new(),
        }
    }
}

impl<K: Hash + Eq + Clone> Timers<K> {
    /// Adds `key`'s timer at `time`, with capabilities at `when` made by `capabilities_at`.
    /// Of two claims on one timer time, the earlier capability wins: results go out then.
    fn add(
        &mut self,
        time: u64,
        key: &K,
        when: &Time,
        capabilities_at: &impl Fn(&Time) -> (Capability<Time>, Capability<Time>),
    ) {
        let pending = self.by_time.entry(time).or_insert_with(|| {
            let (results, late) = capabilities_at(when);
            PendingTimer {
                keys: KeySet::default(),
                results,
                late,
            }
        });
        if when.less_than(pending.results.time()) {
            (pending.results, pending.late) = capabilities_at(when);
        }
        pending.keys.insert(key.clone());
    }

    /// Removes and returns the earliest timer before `bound`.
    fn first_before(&mut self, bound: u64) -> Option<(u64, PendingTimer<K>)> {
        let entry = self.by_time.first_entry()?;
        (*entry.key() < bound).then(|| entry.remove_entry())
    }

    fn first_time(&self) -> Option<u64> {
        self.by_time.keys().next().copied()
    }
}

fn wall_clock_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.as_millis() as u64)
}

/// Builds the keyed operator over `(key, record)` pairs partitioned by key. Returns the
/// results and the late side output.
pub(crate) fn process<'s, K, T, P>(
    input: StreamVec<'s, Time, (K, T)>,
    job: Arc<JobShared>,
    worker: WorkerInfo,
    name: &str,
    event_time: impl Fn(&T) -> EventTime + 'static,
    mut logic: P,
) -> (StreamVec<'s, Time, P::Output>, StreamVec<'s, Time, T>)
where
    K: Data + Hash + Eq,
    T: Data,
    P: KeyedProcess<K, T>,
{
    let input_scope = input.scope();
    let mut builder = OperatorBuilder::new(name.to_owned(), input_scope);
    let mut input = builder.new_input(input, PipelinePact);
    let (results_output, results) = builder.new_output();
    let (late_output, late) = builder.new_output();
    let mut results_output =
        OutputBuilder::<_, CapacityContainerBuilder<Vec<P::Output>>>::from(results_output);
    let mut late_output = OutputBuilder::<_, CapacityContainerBuilder<Vec<T>>>::from(late_output);
    let info = builder.operator_info();
    let activator = input_scope.activator_for(info.address);
    let operator_name = name.to_owned();
    let opened = match job.config.state_backend {
        StateBackend::Memory => Ok(StateCache::in_memory()),
        StateBackend::RocksDb { memory_budget } => job
            .state_stores
            .store_for(&job.config.state_dir, worker.index)
            .map(|store| {
                // The operator's id is its place in the dataflow: the same on every run.
                StateCache::spilling(store, info.global_id as u32, job.key_groups, memory_budget)
            }),
    };
    let fail = {
        let job = Arc::clone(&job);
        move |source: StateError| {
            job.fail(EngineError::State {
                operator: operator_name.clone(),
                worker: worker.index,
                source,
            })
        }
    };
    let mut states = opened.unwrap_or_else(|error| {
        fail(error);
        StateCache::in_memory()
    });
    builder.build(move |_capabilities| {
        // Pending timers by time, each with the keys that set it and capabilities at its time.
        let mut timers = Timers::default();
        let mut processing_timers = Timers::default();
        let mut cx = KeyedContext::new();
        move |frontiers| {
            let mut results_handle = results_output.activate();
            let mut late_handle = late_output.activate();
            cx.now = wall_clock_ms();
            input.for_each(|capability, records| {
                let Some(time) = capability.stamp().iter().next().cloned() else {
                    return;
                };
                cx.watermark = time.watermark;
                let capabilities_at =
                    |when: &Time| (capability.delayed(when, 0), capability.delayed(when, 1));
                for (key, record) in records.drain(..) {
                    let at = event_time(&record);
                    let state = match states.get_or_default(&key) {
                        Ok(state) => state,
                        Err(error) => {
                            fail(error);
                            continue;
                        }
                    };
                    logic.on_record(&mut cx, &key, state, record, at);
                    if logic.is_empty(state) {
                        if let Err(error) = states.remove(&key) {
                            fail(error);
                        }
                    }
                    for timer in cx.timers.drain(..) {
                        // A timer behind the record's own time fires at the record's time.
                        let when = Time::new(time.epoch, timer.max(time.watermark));
                        timers.add(timer, &key, &when, &capabilities_at);
                    }
                    for timer in cx.processing_timers.drain(..) {
                        processing_timers.add(timer, &key, &time, &capabilities_at);
                    }
                }
                if !cx.outputs.is_empty() {
                    results_handle
                        .session(&capability)
                        .give_container(&mut cx.outputs);
                    cx.outputs.clear();
                }
                if !cx.late.is_empty() {
                    job.metrics.add_late_records(cx.late.len());
                    late_handle
                        .session(&capability)
                        .give_container(&mut cx.late);
                    cx.late.clear();
                }
            });
            let frontier = frontiers[0].frontier();
            let watermark = frontier_watermark(frontier.as_ref());
            let input_ended = frontier.is_empty();
            loop {
                // Event-time timers the watermark passed, then processing-time timers that are
                // due (all of them once the input has ended), earliest first.
                let (time, pending, processing) = match timers.first_before(watermark) {
                    Some((time, pending)) => (time, pending, false),
                    None => {
                        let due = if input_ended {
                            u64::MAX
                        } else {
                            cx.now.saturating_add(1)
                        };
                        match processing_timers.first_before(due) {
                            Some((time, pending)) => (time, pending, true),
                            None => break,
                        }
                    }
                };
                if !processing {
                    cx.watermark = time;
                }
                let capabilities_at =
                    |when: &Time| (pending.results.delayed(when), pending.late.delayed(when));
                for key in &pending.keys {
                    let state = match states.get_existing(key) {
                        Ok(Some(state)) => state,
                        Ok(None) => continue,
                        Err(error) => {
                            fail(error);
                            continue;
                        }
                    };
                    if processing {
                        logic.on_processing_timer(&mut cx, key, state, time);
                    } else {
                        logic.on_timer(&mut cx, key, state, time);
                    }
                    if logic.is_empty(state) {
                        if let Err(error) = states.remove(key) {
                            fail(error);
                        }
                    }
                    for later in cx.timers.drain(..) {
                        // A timer set while timers fire fires no earlier than the one firing.
                        let later = if processing { later } else { later.max(time) };
                        let when = Time::new(
                            pending.results.time().epoch,
                            later.max(pending.results.time().watermark),
                        );
                        timers.add(later, key, &when, &capabilities_at);
                    }
                    for later in cx.processing_timers.drain(..) {
                        processing_timers.add(later, key, pending.results.time(), &capabilities_at);
                    }
                }
                if !cx.outputs.is_empty() {
                    results_handle
                        .session(&pending.results)
                        .give_container(&mut cx.outputs);
                    cx.outputs.clear();
                }
                if !cx.late.is_empty() {
                    job.metrics.add_late_records(cx.late.len());
                    late_handle
                        .session(&pending.late)
                        .give_container(&mut cx.late);
                    cx.late.clear();
                }
            }
            if let Some(next) = processing_timers.first_time() {
                activator.activate_after(Duration::from_millis(next.saturating_sub(cx.now).max(1)));
            }
        }
    });
    (results, late)
}
