//! Sinks: the trait a connector implements, and the timely operator that drives it.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::{Arc, Mutex};

use timely::communication::Pull;
use timely::dataflow::channels::pact::{Exchange, Pipeline as PipelinePact};
use timely::dataflow::channels::Message;
use timely::dataflow::operators::generic::{InputHandleCore, Operator};
use timely::dataflow::StreamVec;
use timely::progress::frontier::MutableAntichain;

use crate::checkpoint::{EpochCursor, EpochStatus, HeldInput, SinkStep};
use crate::error::{BoxError, EngineError};
use crate::runtime::context::Context;
use crate::runtime::job::{JobShared, WorkerInfo};
use crate::time::{frontier_tick, Epoch, EventTime, Time, END_OF_TIME};
use crate::Data;

/// Where a sink's records are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SinkPlacement {
    /// Every worker writes the records it holds (a partitioned output, or a shared counter).
    EveryWorker,
    /// All records are sent to worker 0, which alone opens and writes the sink (one file).
    FirstWorker,
}

/// A destination for records. The pipeline-building closure runs on every worker, so every
/// worker constructs its own value; only the workers that the placement names call [`open`].
///
/// In a job with checkpoints, an exactly-once sink implements the two-phase commit methods:
/// records written during epoch `e` become a transaction that [`pre_commit`] makes durable
/// but invisible when `e` ends, and [`commit`] makes visible once the checkpoint of `e` is
/// complete. Sinks that keep the defaults are at-least-once: after a restore they see again
/// the records written since the restored checkpoint.
///
/// [`open`]: Sink::open
/// [`pre_commit`]: Sink::pre_commit
/// [`commit`]: Sink::commit
pub trait Sink<T>: 'static {
    /// A short name for errors and metrics.
    fn name(&self) -> String;
    /// Where records are written; every worker by default.
    fn placement(&self) -> SinkPlacement {
        SinkPlacement::EveryWorker
    }
    /// Prepares to write (opens files, connections) on a worker the placement names.
    fn open(&mut self, worker: WorkerInfo) -> Result<(), BoxError>;
    /// Called after [`open`](Sink::open) in a job with checkpoints: from now on records become
    /// visible only when committed. Commits the transactions a crashed run pre-committed up to
    /// `restored` (the epoch of the checkpoint this run restored) and aborts later ones; with
    /// `None` (a fresh start) aborts every leftover transaction.
    fn start_transactions(&mut self, _restored: Option<Epoch>) -> Result<(), BoxError> {
        Ok(())
    }
    /// Writes a batch of records.
    fn write(&mut self, records: &[T]) -> Result<(), BoxError>;
    /// Makes the records written since the last pre-commit durable, as the transaction of
    /// `epoch`, without making them visible. When a bounded run's input ends, its last
    /// records are the transaction of [`FINAL_EPOCH`](crate::checkpoint::FINAL_EPOCH), so a
    /// restore of the final checkpoint knows that transaction must be there.
    fn pre_commit(&mut self, _epoch: Epoch) -> Result<(), BoxError> {
        Ok(())
    }
    /// Makes every pre-committed transaction up to `epoch` visible. Must be idempotent: after
    /// a crash it runs again for transactions it may have committed in part.
    fn commit(&mut self, _epoch: Epoch) -> Result<(), BoxError> {
        Ok(())
    }
    /// Called once when the input has ended (in a job with checkpoints, after the last
    /// commit): flush, publish and release.
    fn close(&mut self) -> Result<(), BoxError>;
    /// Called instead of [`close`](Sink::close) when the job failed: discard what is unpublished.
    fn abort(&mut self) {}
}

/// A sink with the state of its driver, shared by the sink operator and the checkpoint
/// coordinator (which commits and closes it).
struct Driven<T> {
    sink: Box<dyn Sink<T>>,
    state: SinkState,
    name: String,
    job: Arc<JobShared>,
    worker: WorkerInfo,
}

impl<T: 'static> Driven<T> {
    /// Runs `step` on the sink if it is open; on error aborts it and fails the job.
    fn step(
        &mut self,
        step: impl FnOnce(&mut dyn Sink<T>) -> Result<(), BoxError>,
    ) -> Result<(), EngineError> {
        if !matches!(self.state, SinkState::Open) {
            return Ok(());
        }
        step(self.sink.as_mut()).map_err(|source| {
            self.sink.abort();
            self.state = SinkState::Closed;
            EngineError::Sink {
                name: self.name.clone(),
                worker: self.worker.index,
                source,
            }
        })
    }

    fn fail_on(&mut self, step: impl FnOnce(&mut dyn Sink<T>) -> Result<(), BoxError>) {
        if let Err(error) = self.step(step) {
            self.job.fail(error);
        }
    }
}

/// Input batches with their times.
type Batches<T> = Vec<(Time, Vec<T>)>;

/// What a sink receives: the job's results, counted as its output, or the sources' dead
/// letters, counted apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SinkRole {
    Results,
    DeadLetters,
}

/// Builds the timely operator that drives `sink` on this worker.
pub(crate) fn drive<T: Data>(
    stream: StreamVec<'_, Time, T>,
    sink: Box<dyn Sink<T>>,
    role: SinkRole,
    cx: Context,
) {
    let Context {
        job,
        worker,
        checkpoints,
        ..
    } = cx;
    let name = sink.name();
    let operator_name = format!("sink {name}");
    let placement = sink.placement();
    let writes_here = placement == SinkPlacement::EveryWorker || worker.index == 0;
    let driven = Rc::new(RefCell::new(Driven {
        sink,
        state: if writes_here {
            SinkState::Unopened
        } else {
            SinkState::Closed
        },
        name,
        job: Arc::clone(&job),
        worker,
    }));
    let metrics = job.metrics.operator(&operator_name);
    let mut cursor = EpochCursor::new(&checkpoints);
    {
        let driven = Rc::clone(&driven);
        let mut committed = None;
        checkpoints.on_commit(Box::new(move |step| {
            let mut driven = driven.borrow_mut();
            match step {
                SinkStep::Commit(epoch) => {
                    crate::crash_point("sink.commit");
                    let result = driven.step(|sink| sink.commit(epoch));
                    if writes_here && role == SinkRole::Results {
                        driven.job.metrics.record_commit(committed, epoch);
                    }
                    committed = Some(epoch);
                    result
                }
                SinkStep::Close => {
                    let closed = driven.step(|sink| sink.close());
                    driven.state = SinkState::Closed;
                    closed
                }
            }
        }));
    }
    // Batches of later epochs, held until this sink has pre-committed the current one.
    let mut held: HeldInput<Vec<T>> = HeldInput::default();
    // The watermark the last emission latency was sampled at.
    let mut sampled = EventTime::ZERO;
    let flow = job.flow.sink_slot();
    let mut logic = move |batches: &mut Batches<T>, frontier: &[Time]| {
        flow.publish(frontier_tick(frontier));
        let mut driven = driven.borrow_mut();
        if let SinkState::Unopened = driven.state {
            driven.state = SinkState::Open;
            let restored = checkpoints.restored_epoch();
            let transactional = checkpoints.enabled();
            driven.fail_on(|sink| {
                sink.open(worker)?;
                if transactional {
                    sink.start_transactions(restored)?;
                }
                Ok(())
            });
        }
        for (time, records) in batches.drain(..) {
            held.hold(time, records);
        }
        loop {
            for (_, records) in held.take_through(cursor.epoch()) {
                if role == SinkRole::Results && matches!(driven.state, SinkState::Open) {
                    job.metrics.add_records_out(records.len());
                }
                metrics.add_in(records.len());
                driven.fail_on(|sink| sink.write(&records));
            }
            if writes_here && role == SinkRole::Results {
                sample_emission(&job, frontier, &mut sampled);
            }
            let status = held.status(cursor.epoch(), frontier);
            if !checkpoints.enabled() {
                if status == EpochStatus::Ended && matches!(driven.state, SinkState::Open) {
                    // A failed job's input also ends (its sources stop); its output must not
                    // be published as if it were complete.
                    if job.aborted() {
                        driven.sink.abort();
                        driven.state = SinkState::Closed;
                    } else {
                        driven.fail_on(|sink| sink.close());
                        driven.state = SinkState::Closed;
                    }
                }
                return;
            }
            if status == EpochStatus::Open {
                return;
            }
            if job.aborted() {
                if matches!(driven.state, SinkState::Open) {
                    driven.sink.abort();
                    driven.state = SinkState::Closed;
                }
                return;
            }
            crate::crash_point("sink.pre_commit");
            let ended = status == EpochStatus::Ended;
            // The records after the last numbered epoch of a bounded run are the final
            // checkpoint's transaction, staged under its epoch.
            let epoch = cursor.done_epoch(ended);
            driven.fail_on(|sink| sink.pre_commit(epoch));
            cursor.finish(ended);
            if ended {
                return;
            }
        }
    };
    let mut batches = Vec::new();
    let mut feed = move |input: &mut dyn FnMut(&mut Batches<T>),
                         frontier: &MutableAntichain<Time>| {
        input(&mut batches);
        logic(&mut batches, frontier.frontier().as_ref());
    };
    match placement {
        SinkPlacement::EveryWorker => {
            stream.sink(PipelinePact, &operator_name, move |(input, frontier)| {
                feed(&mut |batches| receive(input, batches), frontier)
            })
        }
        SinkPlacement::FirstWorker => stream.sink(
            Exchange::new(|_: &T| 0),
            &operator_name,
            move |(input, frontier)| feed(&mut |batches| receive(input, batches), frontier),
        ),
    }
}

/// Once the sink's input has passed a watermark the sources reached after `sampled`, counts
/// the time since they reached it: every record read before then has been written.
fn sample_emission(job: &JobShared, frontier: &[Time], sampled: &mut EventTime) {
    let Some(passed) = frontier.iter().map(|time| time.watermark).min() else {
        return;
    };
    if passed <= *sampled || passed == END_OF_TIME {
        return;
    }
    if let Some((watermark, reached)) = job.watermarks.reached(passed) {
        if watermark > *sampled {
            job.metrics.record_emission(reached.elapsed());
            *sampled = watermark;
        }
    }
}

/// Moves every input batch into `batches`, with its time.
fn receive<T, P>(input: &mut InputHandleCore<Time, Vec<T>, P>, batches: &mut Batches<T>)
where
    P: Pull<Message<Time, Vec<T>>>,
{
    input.for_each(|capability, records| {
        let time = capability
            .stamp()
            .iter()
            .next()
            .cloned()
            .unwrap_or_default();
        batches.push((time, std::mem::take(records)));
    });
}

/// Where a sink on this worker stands.
enum SinkState {
    /// Not opened yet: it opens with the first input.
    Unopened,
    Open,
    /// Closed, aborted (a step failed), or not written on this worker (by its placement).
    Closed,
}

/// A sink that collects every record into a shared vector: for tests and small programs that
/// want results in memory. Collects the records of this process only.
///
/// ```
/// use weir_engine::CollectSink;
/// let sink = CollectSink::<u64>::new();
/// let results = sink.results(); // read after the job has run
/// assert!(results.lock().unwrap().is_empty());
/// ```
///
/// Clones share the vector, so a pipeline closure can hand `sink.clone()` to every worker.
pub struct CollectSink<T> {
    results: Arc<Mutex<Vec<T>>>,
}

impl<T> CollectSink<T> {
    /// A sink with a fresh result vector.
    pub fn new() -> Self {
        CollectSink {
            results: Arc::default(),
        }
    }

    /// The shared vector the records are collected into.
    pub fn results(&self) -> Arc<Mutex<Vec<T>>> {
        Arc::clone(&self.results)
    }
}

impl<T> Clone for CollectSink<T> {
    fn clone(&self) -> Self {
        CollectSink {
            results: Arc::clone(&self.results),
        }
    }
}

impl<T> Default for CollectSink<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Clone + 'static> Sink<T> for CollectSink<T> {
    fn name(&self) -> String {
        "collect".into()
    }
    fn open(&mut self, _worker: WorkerInfo) -> Result<(), BoxError> {
        Ok(())
    }
    fn write(&mut self, records: &[T]) -> Result<(), BoxError> {
        self.results
            .lock()
            .map_err(|_| "the result vector's lock is poisoned")?
            .extend_from_slice(records);
        Ok(())
    }
    fn close(&mut self) -> Result<(), BoxError> {
        Ok(())
    }
}

/// A sink that discards records (they are still counted in the job's metrics): for
/// benchmarks that measure a pipeline without the cost of an output.
#[derive(Clone, Copy, Debug, Default)]
pub struct DiscardSink;

impl<T> Sink<T> for DiscardSink {
    fn name(&self) -> String {
        "discard".into()
    }
    fn open(&mut self, _worker: WorkerInfo) -> Result<(), BoxError> {
        Ok(())
    }
    fn write(&mut self, _records: &[T]) -> Result<(), BoxError> {
        Ok(())
    }
    fn close(&mut self) -> Result<(), BoxError> {
        Ok(())
    }
}
