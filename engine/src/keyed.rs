//! The keyed operator every stateful operator is built on: per-key state, event-time timers
//! and a late side output, over a stream already partitioned by key.
//!
//! An operator's logic implements [`KeyedProcess`]; the engine keeps its state per key, holds
//! one capability per pending timer time (so results carry the event time they stand for,
//! and downstream watermarks wait for them), and fires timers in time order once the input
//! watermark passes them.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::Hash;
use std::sync::Arc;

use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::Pipeline as PipelinePact;
use timely::dataflow::operators::generic::builder_rc::OperatorBuilder;
use timely::dataflow::operators::generic::OutputBuilder;
use timely::dataflow::operators::Capability;
use timely::dataflow::StreamVec;
use timely::order::PartialOrder;

use crate::job::JobShared;
use crate::time::{frontier_watermark, EventTime, Time};
use crate::Data;

type KeyMap<K, V> = HashMap<K, V, foldhash::fast::FixedState>;
type KeySet<K> = HashSet<K, foldhash::fast::FixedState>;

/// What a keyed operator's logic can do while it handles a record or a timer.
pub struct KeyedContext<K, O, T> {
    watermark: EventTime,
    outputs: Vec<O>,
    late: Vec<T>,
    timers: Vec<EventTime>,
    _key: std::marker::PhantomData<fn(&K)>,
}

impl<K, O, T> KeyedContext<K, O, T> {
    fn new() -> Self {
        KeyedContext {
            watermark: 0,
            outputs: Vec::new(),
            late: Vec::new(),
            timers: Vec::new(),
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
}

/// Per-key logic of a keyed operator.
pub trait KeyedProcess<K, T>: 'static {
    /// The state kept for each key.
    type State: Default + 'static;
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

    /// Whether a key's state holds nothing; such state is dropped.
    fn is_empty(&self, state: &Self::State) -> bool;
}

/// A timer time's keys and the capabilities its results and late records are sent with.
struct PendingTimer<K> {
    keys: KeySet<K>,
    results: Capability<Time>,
    late: Capability<Time>,
}

/// Builds the keyed operator over `(key, record)` pairs partitioned by key. Returns the
/// results and the late side output.
pub(crate) fn process<'s, K, T, P>(
    input: StreamVec<'s, Time, (K, T)>,
    job: Arc<JobShared>,
    name: &str,
    event_time: impl Fn(&T) -> EventTime + 'static,
    mut logic: P,
) -> (StreamVec<'s, Time, P::Output>, StreamVec<'s, Time, T>)
where
    K: Data + Hash + Eq,
    T: Data,
    P: KeyedProcess<K, T>,
{
    let mut builder = OperatorBuilder::new(name.to_owned(), input.scope());
    let mut input = builder.new_input(input, PipelinePact);
    let (results_output, results) = builder.new_output();
    let (late_output, late) = builder.new_output();
    let mut results_output =
        OutputBuilder::<_, CapacityContainerBuilder<Vec<P::Output>>>::from(results_output);
    let mut late_output = OutputBuilder::<_, CapacityContainerBuilder<Vec<T>>>::from(late_output);
    builder.build(move |_capabilities| {
        let mut states: KeyMap<K, P::State> = KeyMap::default();
        // Pending timers by time, each with the keys that set it and capabilities at its time.
        let mut timers: BTreeMap<EventTime, PendingTimer<K>> = BTreeMap::new();
        let mut cx = KeyedContext::new();
        move |frontiers| {
            let mut results_handle = results_output.activate();
            let mut late_handle = late_output.activate();
            input.for_each(|capability, records| {
                let Some(time) = capability.stamp().iter().next().cloned() else {
                    return;
                };
                cx.watermark = time.watermark;
                for (key, record) in records.drain(..) {
                    let at = event_time(&record);
                    let state = states.entry(key.clone()).or_default();
                    logic.on_record(&mut cx, &key, state, record, at);
                    if logic.is_empty(state) {
                        states.remove(&key);
                    }
                    for timer in cx.timers.drain(..) {
                        // A timer behind the record's own time fires at the record's time.
                        let when = Time::new(time.epoch, timer.max(time.watermark));
                        let pending = timers.entry(timer).or_insert_with(|| PendingTimer {
                            keys: KeySet::default(),
                            results: capability.delayed(&when, 0),
                            late: capability.delayed(&when, 1),
                        });
                        if when.less_than(pending.results.time()) {
                            // An earlier record claims an earlier time: results go out then.
                            pending.results = capability.delayed(&when, 0);
                            pending.late = capability.delayed(&when, 1);
                        }
                        pending.keys.insert(key.clone());
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
            let watermark = frontier_watermark(frontiers[0].frontier().as_ref());
            while let Some(entry) = timers.first_entry() {
                if *entry.key() >= watermark {
                    break;
                }
                let (time, pending) = entry.remove_entry();
                cx.watermark = time;
                for key in pending.keys {
                    let Some(state) = states.get_mut(&key) else {
                        continue;
                    };
                    logic.on_timer(&mut cx, &key, state, time);
                    if logic.is_empty(state) {
                        states.remove(&key);
                    }
                    for later in cx.timers.drain(..) {
                        // A timer set while timers fire fires no earlier than now.
                        let later = later.max(time);
                        let when = Time::new(pending.results.time().epoch, later);
                        let next = timers.entry(later).or_insert_with(|| PendingTimer {
                            keys: KeySet::default(),
                            results: pending.results.delayed(&when),
                            late: pending.late.delayed(&when),
                        });
                        next.keys.insert(key.clone());
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
        }
    });
    (results, late)
}
