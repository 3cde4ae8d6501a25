//! The keyed operator every stateful operator is built on: per-key state, event-time timers
//! and a late side output, over a stream already partitioned by key.
//!
//! An operator's logic implements [`KeyedProcess`]; the engine keeps its state per key, holds
//! one capability per pending timer time (so results carry the event time they stand for,
//! and downstream watermarks wait for them), and fires timers in time order once the input
//! watermark passes them.

use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, HashSet};
use std::hash::Hash;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::Pipeline as PipelinePact;
use timely::dataflow::operators::generic::builder_rc::OperatorBuilder;
use timely::dataflow::operators::generic::{OutputBuilder, OutputBuilderSession};
use timely::dataflow::operators::Capability;
use timely::dataflow::StreamVec;
use timely::order::PartialOrder;

use crate::checkpoint::{EpochCursor, EpochStatus, HeldInput};
use crate::error::EngineError;
use crate::metrics::OperatorMetrics;
use crate::runtime::context::Context;
use crate::runtime::job::JobShared;
use crate::state::{StateBackend, StateCache, StateError, TimerChange, TimerKind};
use crate::time::{
    frontier_tick, frontier_watermark, Epoch, EventTime, FlowTick, ProcessingTime, Time,
    END_OF_TIME,
};
use crate::Data;

type KeySet<K> = HashSet<K, foldhash::fast::FixedState>;

/// What a keyed operator's logic can do while it handles a record or a timer.
pub struct KeyedContext<K, O, T> {
    watermark: EventTime,
    outputs: Vec<O>,
    late: Vec<T>,
    timers: Vec<EventTime>,
    processing_timers: Vec<ProcessingTime>,
    now: ProcessingTime,
    /// The operator's counters.
    metrics: Arc<OperatorMetrics>,
    _key: std::marker::PhantomData<fn(&K)>,
}

impl<K, O, T> KeyedContext<K, O, T> {
    fn new(metrics: Arc<OperatorMetrics>) -> Self {
        KeyedContext {
            watermark: EventTime::ZERO,
            outputs: Vec::new(),
            late: Vec::new(),
            timers: Vec::new(),
            processing_timers: Vec::new(),
            now: ProcessingTime::default(),
            metrics,
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
    /// once. A timer at the end of time ([`END_OF_TIME`]) fires when the input ends, as one a
    /// millisecond before it does.
    pub fn set_timer(&mut self, time: EventTime) {
        self.timers.push(time.min(LAST_TIMER));
    }

    /// Processing time, in milliseconds since the Unix epoch, when the operator started this
    /// round of work: the wall clock in a running job, the harness's clock in a test.
    pub fn now(&self) -> ProcessingTime {
        self.now
    }

    /// Asks for [`KeyedProcess::on_processing_timer`] for this key once processing time reaches
    /// `time` (ms since the Unix epoch), or when the input ends. Results it emits carry the
    /// time of the record that set the timer first.
    pub fn set_processing_timer(&mut self, time: ProcessingTime) {
        self.processing_timers.push(time);
    }
}

impl<K, O: Data, T: Data> KeyedContext<K, O, T> {
    /// Sends the results and late records gathered so far under these capabilities.
    fn send(
        &mut self,
        (results, late): Handles<'_, '_, O, T>,
        (results_at, late_at): (&Capability<Time>, &Capability<Time>),
        job: &JobShared,
    ) {
        if !self.outputs.is_empty() {
            self.metrics.add_out(self.outputs.len());
            results
                .session(results_at)
                .give_container(&mut self.outputs);
            self.outputs.clear();
        }
        if !self.late.is_empty() {
            job.metrics.add_late_records(self.late.len());
            self.metrics.add_late(self.late.len());
            late.session(late_at).give_container(&mut self.late);
            self.late.clear();
        }
    }
}

/// The latest time a timer fires at: a millisecond before the end of time, which the
/// watermark reaches only when the input ends (a timer must be passed by the watermark).
const LAST_TIMER: EventTime = EventTime(END_OF_TIME.0 - 1);

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

    /// Handles a processing-time timer of `key` set for `time`. Logic that sets no
    /// processing-time timers keeps the default, which does nothing.
    fn on_processing_timer(
        &mut self,
        _cx: &mut KeyedContext<K, Self::Output, T>,
        _key: &K,
        _state: &mut Self::State,
        _time: ProcessingTime,
    ) {
    }

    /// Whether a key's state holds nothing; such state is dropped.
    fn is_empty(&self, state: &Self::State) -> bool;
}

/// A timer time's keys, and the watermark its results go out at (the earliest that set it).
struct PendingTimer<K> {
    keys: KeySet<K>,
    watermark: EventTime,
}

/// Pending timers of one kind, by time, and one capability per output (results, late records)
/// that every pending timer's results are sent under.
///
/// The capabilities stand at the current epoch, the earliest watermark any pending timer's
/// results go out at, and the flow tick of the operator's input frontier, which they follow
/// ([`Timers::follow`]). So a timer waiting for the watermark never holds the sources back,
/// yet its results, once fired, carry a real tick: a slow sink they queue in front of slows
/// the sources down (backpressure, see [`crate::runtime::flow`]).
struct Timers<K> {
    by_time: BTreeMap<u64, PendingTimer<K>>,
    /// How many pending timers go out at each watermark: the first is the capabilities'.
    watermarks: BTreeMap<EventTime, usize>,
    capabilities: Option<(Capability<Time>, Capability<Time>)>,
}

impl<K> Default for Timers<K> {
    fn default() -> Self {
        Timers {
            by_time: BTreeMap::new(),
            watermarks: BTreeMap::new(),
            capabilities: None,
        }
    }
}

impl<K: Hash + Eq + Clone> Timers<K> {
    /// Adds `key`'s timer at `time`, its results at `when`; `capabilities_at` makes
    /// capabilities at `when` should the held ones be later. Of two claims on one timer time,
    /// the earlier wins: results go out then. Returns whether the key had no timer at `time`
    /// yet.
    fn add(
        &mut self,
        time: u64,
        key: &K,
        when: &Time,
        capabilities_at: &impl Fn(&Time) -> (Capability<Time>, Capability<Time>),
    ) -> bool {
        // Results go out at the held capabilities' tick (or a later one): a batch held back
        // for a later epoch may carry an older tick than they have moved to.
        let when = &match &self.capabilities {
            Some((results, _)) => Time {
                tick: when.tick.max(results.time().tick),
                ..*when
            },
            None => *when,
        };
        let pending = self.by_time.entry(time).or_insert_with(|| {
            *self.watermarks.entry(when.watermark).or_default() += 1;
            PendingTimer {
                keys: KeySet::default(),
                watermark: when.watermark,
            }
        });
        claim_earlier(&mut self.watermarks, pending, when.watermark);
        let covered = self
            .capabilities
            .as_ref()
            .is_some_and(|(results, _)| results.time().less_equal(when));
        if !covered {
            self.capabilities = Some(capabilities_at(when));
        }
        pending.keys.insert(key.clone())
    }

    /// Removes and returns the earliest timer before `bound`, with capabilities to send its
    /// results under.
    #[allow(clippy::type_complexity)]
    fn first_before(
        &mut self,
        bound: u64,
    ) -> Option<(u64, PendingTimer<K>, (Capability<Time>, Capability<Time>))> {
        let (results, late) = self.capabilities.as_ref()?;
        let entry = self.by_time.first_entry()?;
        if *entry.key() >= bound {
            return None;
        }
        let (time, pending) = entry.remove_entry();
        forget(&mut self.watermarks, pending.watermark);
        let at = Time {
            watermark: pending.watermark,
            ..*results.time()
        };
        let sent_under = (results.delayed(&at), late.delayed(&at));
        Some((time, pending, sent_under))
    }

    /// Puts back the keys of a timer at `time` that [`first_before`](Self::first_before)
    /// took but that did not fire, merging them with keys that set it since.
    fn put_back(&mut self, time: u64, unfired: PendingTimer<K>) {
        match self.by_time.entry(time) {
            Entry::Vacant(vacant) => {
                *self.watermarks.entry(unfired.watermark).or_default() += 1;
                vacant.insert(unfired);
            }
            Entry::Occupied(mut occupied) => {
                let pending = occupied.get_mut();
                claim_earlier(&mut self.watermarks, pending, unfired.watermark);
                pending.keys.extend(unfired.keys);
            }
        }
    }

    /// Every pending timer, as `(kind, time, key)`.
    fn pending(&self, kind: TimerKind) -> impl Iterator<Item = (TimerKind, u64, &K)> {
        self.by_time
            .iter()
            .flat_map(move |(time, pending)| pending.keys.iter().map(move |key| (kind, *time, key)))
    }

    fn first_time(&self) -> Option<u64> {
        self.by_time.keys().next().copied()
    }

    /// Moves the capabilities up to `epoch` (so that earlier epochs can complete downstream
    /// while the timers wait), the earliest pending watermark, and the flow tick `tick` of the
    /// operator's input frontier; drops them once no timer is pending.
    fn follow(&mut self, epoch: Epoch, tick: FlowTick) {
        let Some(earliest) = self.watermarks.keys().next().copied() else {
            self.capabilities = None;
            return;
        };
        if let Some((results, late)) = &mut self.capabilities {
            let now = results.time();
            let moved = Time::new(
                now.epoch.max(epoch),
                now.watermark.max(earliest),
                now.tick.max(tick),
            );
            if moved != *now {
                results.downgrade(&moved);
                late.downgrade(&moved);
            }
        }
    }
}

/// The time of a capability that only holds `epoch` open: at the end of event time and of
/// flow ticks, so that it holds neither the watermark nor the sources back.
fn holding_open(epoch: Epoch) -> Time {
    Time::new(epoch, END_OF_TIME, FlowTick::MAX)
}

/// Moves `pending`'s results to `watermark` if that is earlier (of two claims on one timer
/// time, the earlier wins), keeping the count of timers per watermark.
fn claim_earlier<K>(
    watermarks: &mut BTreeMap<EventTime, usize>,
    pending: &mut PendingTimer<K>,
    watermark: EventTime,
) {
    if watermark < pending.watermark {
        forget(watermarks, pending.watermark);
        *watermarks.entry(watermark).or_default() += 1;
        pending.watermark = watermark;
    }
}

/// Takes one pending timer off the count of timers at `watermark`.
fn forget(watermarks: &mut BTreeMap<EventTime, usize>, watermark: EventTime) {
    if let Some(count) = watermarks.get_mut(&watermark) {
        *count -= 1;
        if *count == 0 {
            watermarks.remove(&watermark);
        }
    }
}

/// A batch of input and the capabilities its results and late records go out with.
struct Batch<D> {
    results: Capability<Time>,
    late: Capability<Time>,
    records: Vec<D>,
}

/// Builds the keyed operator over `(key, record)` pairs partitioned by key. Returns the
/// results and the late side output.
///
/// With checkpoints, the operator works one epoch at a time: input of later epochs waits
/// until it has finished the current one (input frontier past it) and written its state
/// changes. It goes on with the next epoch in memory while its worker takes the checkpoint,
/// and writes nothing to the store until that checkpoint is taken.
pub(crate) fn process<'s, K, T, P>(
    input: StreamVec<'s, Time, (K, T)>,
    cx: Context,
    name: &str,
    event_time: impl Fn(&T) -> EventTime + 'static,
    mut logic: P,
) -> (StreamVec<'s, Time, P::Output>, StreamVec<'s, Time, T>)
where
    K: Data + Hash + Eq,
    T: Data,
    P: KeyedProcess<K, T>,
{
    let Context {
        job,
        worker,
        checkpoints,
        alarms,
        operators,
    } = cx;
    let input_scope = input.scope();
    let mut builder = OperatorBuilder::new(name.to_owned(), input_scope);
    let mut input = builder.new_input(input, PipelinePact);
    let (results_output, results) = builder.new_output();
    let (late_output, late) = builder.new_output();
    let mut results_output =
        OutputBuilder::<_, CapacityContainerBuilder<Vec<P::Output>>>::from(results_output);
    let mut late_output = OutputBuilder::<_, CapacityContainerBuilder<Vec<T>>>::from(late_output);
    let info = builder.operator_info();
    let activator = input_scope.activator_for(Rc::clone(&info.address));
    checkpoints.wake_on_checkpoint(input_scope.activator_for(Rc::clone(&info.address)));
    let mut cursor = EpochCursor::new(&checkpoints);
    let durable = checkpoints.enabled();
    // State is keyed by an id derived from the operator's stable name.
    let named = operators.borrow_mut().name(name);
    let (operator_name, id) = named.unwrap_or_else(|collision| {
        job.fail(EngineError::Build(Box::new(collision)));
        (name.to_owned(), 0)
    });
    let operator_metrics_name = operator_name.clone();
    let restoring = Instant::now();
    let opened = match (job.config.state_backend, checkpoints.state_files_dir()) {
        (StateBackend::Memory, None) => Ok(StateCache::in_memory()),
        (StateBackend::Memory, Some(dir)) => {
            let restored = checkpoints.take_restored_state(id);
            let restored_any = restored.is_some();
            let cache = StateCache::with_checkpoint_files(dir, id, job.key_groups, restored);
            if restored_any {
                checkpoints.add_restore_time(restoring.elapsed());
            }
            cache
        }
        (StateBackend::RocksDb { memory_budget }, _) => job
            .state_stores
            .store_for(&job.config.state_dir, worker.index)
            .map(|store| StateCache::spilling(store, id, job.key_groups, memory_budget, durable)),
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
    builder.build(move |capabilities| {
        // Pending timers by time, each with the keys that set it and capabilities at its time.
        let mut timers = Timers::default();
        let mut processing_timers = Timers::default();
        let epoch = cursor.epoch();
        let restored = if checkpoints.restored_epoch().is_some() {
            states.restored_timers()
        } else {
            Ok(Vec::new())
        };
        match (restored, capabilities.as_slice()) {
            (Ok(restored), [results, late]) => {
                let capabilities_at = |when: &Time| (results.delayed(when), late.delayed(when));
                for (kind, time, key) in restored {
                    match kind {
                        TimerKind::Event => {
                            let at = Time::new(epoch, EventTime(time), FlowTick::default());
                            timers.add(time, &key, &at, &capabilities_at)
                        }
                        TimerKind::Processing => processing_timers.add(
                            time,
                            &key,
                            &Time::new(epoch, EventTime::ZERO, FlowTick::default()),
                            &capabilities_at,
                        ),
                    };
                }
            }
            (Err(error), _) => fail(error),
            (Ok(_), _) => unreachable!("the operator has two outputs"),
        }
        // With checkpoints, a capability at the end of time of the current epoch keeps the
        // operator alive until it has written that epoch (which may wait for a checkpoint
        // after its input has ended) and holds the epoch open downstream until then.
        let mut keepalive = durable
            .then(|| {
                capabilities
                    .first()
                    .map(|c| c.delayed(&holding_open(epoch)))
            })
            .flatten();
        drop(capabilities);
        // Input not handled yet: of later epochs, or waiting for a checkpoint.
        let mut held: HeldInput<Batch<(K, T)>> = HeldInput::default();
        let mut finished = false;
        // The watermark and end of input of a firing cut short by its budget, until it is
        // done.
        let mut unfinished: Option<(EventTime, bool)> = None;
        let mut cx = KeyedContext::new(job.metrics.operator(&operator_metrics_name));
        move |frontiers| {
            let mut results_handle = results_output.activate();
            let mut late_handle = late_output.activate();
            cx.now = job.clock.now();
            input.for_each(|capability, records| {
                if let Some(time) = capability.stamp().iter().next().cloned() {
                    let batch = Batch {
                        results: capability.delayed(&time, 0),
                        late: capability.delayed(&time, 1),
                        records: std::mem::take(records),
                    };
                    held.hold(time, batch);
                }
            });
            let frontier = frontiers[0].frontier();
            if job.aborted() {
                // A failed job only drains: drop held input and timers (with their
                // capabilities) rather than wait for checkpoints that will not come.
                held.clear();
                keepalive = None;
                timers = Timers::default();
                processing_timers = Timers::default();
                unfinished = None;
                return;
            }
            loop {
                // A firing cut short goes on first, at the watermark it started at (the input
                // held meanwhile would hold that watermark back), and then the input.
                let resumed = unfinished.take();
                // Evictions write to the store: only once the last flushed epoch is
                // checkpointed. Until then this epoch's state stays in memory.
                states.allow_evictions(cursor.may_write());
                if resumed.is_none() {
                    for (time, mut batch) in held.take_through(cursor.epoch()) {
                        cx.watermark = time.watermark;
                        let capabilities_at =
                            |when: &Time| (batch.results.delayed(when), batch.late.delayed(when));
                        cx.metrics.add_in(batch.records.len());
                        for (key, record) in batch.records.drain(..) {
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
                                let when = Time {
                                    watermark: timer.max(time.watermark),
                                    ..time
                                };
                                let timer = timer.millis();
                                if timers.add(timer, &key, &when, &capabilities_at) {
                                    let set = (TimerKind::Event, timer, TimerChange::Set);
                                    note(&mut states, set, &key, &fail);
                                }
                            }
                            for timer in cx.processing_timers.drain(..) {
                                let timer = timer.millis();
                                if processing_timers.add(timer, &key, &time, &capabilities_at) {
                                    let set = (TimerKind::Processing, timer, TimerChange::Set);
                                    note(&mut states, set, &key, &fail);
                                }
                            }
                        }
                        cx.send(
                            (&mut results_handle, &mut late_handle),
                            (&batch.results, &batch.late),
                            &job,
                        );
                    }
                }
                // Held batches are input not yet handled: they hold the watermark back too.
                let status = held.status(cursor.epoch(), frontier.as_ref());
                let (watermark, input_ended) = resumed.unwrap_or_else(|| {
                    let watermark = frontier_watermark(frontier.as_ref()).min(
                        held.times()
                            .map(|time| time.watermark)
                            .min()
                            .unwrap_or(END_OF_TIME),
                    );
                    (watermark, status == EpochStatus::Ended)
                });
                let fired_all = fire_timers(
                    &mut timers,
                    &mut processing_timers,
                    watermark,
                    input_ended,
                    &mut cx,
                    &mut logic,
                    &mut states,
                    &fail,
                    &job,
                    (&mut results_handle, &mut late_handle),
                );
                if !fired_all {
                    // Downstream operators take what it sent before it sends more.
                    unfinished = Some((watermark, input_ended));
                    activator.activate();
                    break;
                }
                if resumed.is_some() {
                    // Now the input held meanwhile.
                    continue;
                }
                if !durable || finished {
                    break;
                }
                if status == EpochStatus::Open {
                    break;
                }
                if !cursor.may_write() {
                    // The previous epoch's checkpoint is still being taken: this epoch's
                    // changes wait for it (woken when it is done).
                    break;
                }
                // This epoch is complete here: write its state changes for the checkpoint.
                let pending = timers
                    .pending(TimerKind::Event)
                    .chain(processing_timers.pending(TimerKind::Processing));
                if let Err(error) = states.flush(cursor.epoch(), pending) {
                    fail(error);
                }
                cursor.finish(input_ended);
                if input_ended {
                    finished = true;
                    keepalive = None;
                    break;
                }
                let epoch = cursor.epoch();
                if let Some(keepalive) = &mut keepalive {
                    keepalive.downgrade(&holding_open(epoch));
                }
                let tick = frontier_tick(frontier.as_ref());
                timers.follow(epoch, tick);
                processing_timers.follow(epoch, tick);
            }
            let tick = frontier_tick(frontier.as_ref());
            timers.follow(cursor.epoch(), tick);
            processing_timers.follow(cursor.epoch(), tick);
            if let Some(next) = processing_timers.first_time() {
                let delay = ProcessingTime(next)
                    .since(cx.now)
                    .max(Duration::from_millis(1));
                alarms.wake_after(&activator, delay);
            }
            let (created, removed) = states.take_key_counts();
            job.metrics.add_state_keys(created, removed);
            cx.metrics.add_state_keys(created, removed);
        }
    });
    (results, late)
}

/// Notes that `key`'s timer of a kind at a time was set or fired, for the checkpoint; fails
/// the job if the store fails.
fn note<K, S>(
    states: &mut StateCache<K, S>,
    (kind, time, change): (TimerKind, u64, TimerChange),
    key: &K,
    fail: &impl Fn(StateError),
) where
    K: Hash + Eq + Clone + serde::Serialize + serde::de::DeserializeOwned,
    S: Default + serde::Serialize + serde::de::DeserializeOwned,
{
    if let Err(error) = states.note_timer(kind, time, key, change) {
        fail(error);
    }
}

/// The outputs of a keyed operator: results and late records.
type Handles<'a, 'b, O, T> = (
    &'a mut OutputBuilderSession<'b, Time, CapacityContainerBuilder<Vec<O>>>,
    &'a mut OutputBuilderSession<'b, Time, CapacityContainerBuilder<Vec<T>>>,
);

/// How many results and late records a keyed operator sends per activation while it fires
/// timers. A watermark can fire every key's window at once (at the end of the input, every
/// window of a day): sent in one go, the results of millions of keys would sit in the
/// channels beside the state they came from; in batches, the operators downstream take each
/// batch before the next is made.
const FIRING_BATCH: usize = 16 * 1024;

/// Fires the event-time timers the watermark passed, then the processing-time timers that are
/// due (all of them once the input has ended), earliest first. Returns `false` when it stopped
/// after a batch of [`FIRING_BATCH`] records, with timers left to fire at this watermark.
#[allow(clippy::too_many_arguments)]
fn fire_timers<K, T, P>(
    timers: &mut Timers<K>,
    processing_timers: &mut Timers<K>,
    watermark: EventTime,
    input_ended: bool,
    cx: &mut KeyedContext<K, P::Output, T>,
    logic: &mut P,
    states: &mut StateCache<K, P::State>,
    fail: &impl Fn(StateError),
    job: &JobShared,
    (results_handle, late_handle): Handles<'_, '_, P::Output, T>,
) -> bool
where
    K: Data + Hash + Eq,
    T: Data,
    P: KeyedProcess<K, T>,
{
    loop {
        let (time, pending, (results_at, late_at), kind) =
            match timers.first_before(watermark.millis()) {
                Some((time, pending, sent_under)) => (time, pending, sent_under, TimerKind::Event),
                None => {
                    let due = if input_ended {
                        u64::MAX
                    } else {
                        cx.now.millis().saturating_add(1)
                    };
                    match processing_timers.first_before(due) {
                        Some((time, pending, sent_under)) => {
                            (time, pending, sent_under, TimerKind::Processing)
                        }
                        None => return true,
                    }
                }
            };
        if kind == TimerKind::Event {
            cx.watermark = EventTime(time);
        }
        let capabilities_at = |when: &Time| (results_at.delayed(when), late_at.delayed(when));
        let PendingTimer {
            mut keys,
            watermark,
        } = pending;
        // Keys leave the set as they fire; a batch cut short leaves the rest in it, in place
        // (a copy of the rest would hold a second set of a large firing's keys).
        let mut firing = keys.extract_if(|_| true);
        for key in firing.by_ref() {
            let key = &key;
            note(states, (kind, time, TimerChange::Fired), key, fail);
            let state = match states.get_existing(key) {
                Ok(Some(state)) => state,
                Ok(None) => continue,
                Err(error) => {
                    fail(error);
                    continue;
                }
            };
            match kind {
                TimerKind::Event => logic.on_timer(cx, key, state, EventTime(time)),
                TimerKind::Processing => {
                    logic.on_processing_timer(cx, key, state, ProcessingTime(time))
                }
            }
            if logic.is_empty(state) {
                if let Err(error) = states.remove(key) {
                    fail(error);
                }
            }
            for later in cx.timers.drain(..) {
                // A timer set while timers fire fires no earlier than the one firing.
                let later = match kind {
                    TimerKind::Event => later.max(EventTime(time)),
                    TimerKind::Processing => later,
                };
                let when = Time {
                    watermark: later.max(results_at.time().watermark),
                    ..*results_at.time()
                };
                if timers.add(later.millis(), key, &when, &capabilities_at) {
                    note(
                        states,
                        (TimerKind::Event, later.millis(), TimerChange::Set),
                        key,
                        fail,
                    );
                }
            }
            for later in cx.processing_timers.drain(..) {
                let later = later.millis();
                if processing_timers.add(later, key, results_at.time(), &capabilities_at) {
                    note(
                        states,
                        (TimerKind::Processing, later, TimerChange::Set),
                        key,
                        fail,
                    );
                }
            }
            if cx.outputs.len() + cx.late.len() >= FIRING_BATCH {
                break;
            }
        }
        drop(firing);
        cx.send(
            (&mut *results_handle, &mut *late_handle),
            (&results_at, &late_at),
            job,
        );
        if !keys.is_empty() {
            let timers = match kind {
                TimerKind::Event => &mut *timers,
                TimerKind::Processing => &mut *processing_timers,
            };
            let unfired = PendingTimer { keys, watermark };
            timers.put_back(time, unfired);
            return false;
        }
    }
}
