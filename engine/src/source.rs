//! Sources: the trait a connector implements, and the timely operator that drives it.
//!
//! The driver holds one capability at `(epoch, watermark, tick)`, emits every record at that
//! time and advances the watermark part at most once per watermark interval, so batches stay
//! large, and the tick once per flow tick. It stops polling while the job's sinks are further
//! behind than the in-flight limit (backpressure, see [`crate::runtime::flow`]). Rejected input
//! leaves on a second output as dead letters.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use timely::container::CapacityContainerBuilder;
use timely::dataflow::operators::generic::builder_rc::OperatorBuilder;
use timely::dataflow::operators::generic::OutputBuilder;
use timely::dataflow::{Scope, StreamVec};

use crate::checkpoint::positions::Positions;
use crate::checkpoint::{CheckpointError, Checkpoints, EpochCursor, SinkStep, FINAL_EPOCH};
use crate::dead_letter::DeadLetter;
use crate::error::{BoxError, EngineError};
use crate::metrics::PartitionLag;
use crate::runtime::context::Context;
use crate::runtime::job::WorkerInfo;
use crate::time::{Epoch, EventTime, FlowTick, ProcessingTime, Time, FLOW_TICK};
use crate::watermark::CombinedWatermark;

/// Records a driver asks a reader for in one call.
const POLL_BATCH: usize = 1024;
/// Records a driver emits in one activation before yielding to other operators.
const ACTIVATION_BUDGET: usize = 64 * 1024;
/// How often a driver asks its reader for its lag.
const LAG_INTERVAL: Duration = Duration::from_secs(1);
/// How often a paused driver looks again whether the sinks have caught up.
const BACKPRESSURE_RECHECK: Duration = Duration::from_millis(10);

/// What a [`SourceReader`] reports after a poll.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SourcePoll {
    /// More may come. Every record this reader emits from now on has event time `>= watermark`,
    /// except late records.
    Ready {
        /// The reader's watermark after the records of this poll.
        watermark: EventTime,
    },
    /// Nothing is available now; poll again later. The driver publishes `watermark` at once
    /// (records already returned go out before it), so a reader that has caught up with its
    /// input moves the job's watermark without waiting for the next watermark interval.
    Waiting {
        /// The reader's watermark.
        watermark: EventTime,
    },
    /// Nothing has been available for longer than the reader's idleness timeout: until it
    /// reports `Ready` or `Waiting` again, this reader does not hold the job's watermark back
    /// (its worker follows the watermark of the source's other, active workers in this
    /// process). Records it emits after waking below that watermark are late.
    Idle,
    /// The input is exhausted: nothing more will come.
    Finished,
}

impl SourcePoll {
    /// What a reader of partitions reports after a poll that consumed `read` records (good or
    /// rejected), its partitions' watermarks combined into `watermark`.
    pub fn after(read: usize, watermark: CombinedWatermark) -> SourcePoll {
        match watermark {
            CombinedWatermark::Finished => SourcePoll::Finished,
            CombinedWatermark::Active(watermark) if read > 0 => SourcePoll::Ready { watermark },
            CombinedWatermark::Active(watermark) => SourcePoll::Waiting { watermark },
            // Only rejected records arrived: active, with nothing to advance the watermark.
            CombinedWatermark::Idle if read > 0 => SourcePoll::Ready {
                watermark: EventTime::ZERO,
            },
            CombinedWatermark::Idle => SourcePoll::Idle,
        }
    }
}

/// One worker's share of a source: reads records in batches and tracks its watermark.
pub trait SourceReader: 'static {
    /// The record type.
    type Item;
    /// Appends at most `max` records to `out` and reports the watermark after them.
    fn poll(&mut self, out: &mut Vec<Self::Item>, max: usize) -> Result<SourcePoll, BoxError>;

    /// Moves the records rejected since the last call into `out`. Readers that reject nothing
    /// keep the default.
    fn drain_dead_letters(&mut self, _out: &mut Vec<DeadLetter>) {}

    /// Where this reader stands in each of its partitions, for a checkpoint: every record
    /// before the next offsets has been returned by `poll`. `None` (the default) for readers
    /// that cannot resume.
    fn positions(&self) -> Option<Positions> {
        None
    }

    /// The watermark the reader starts at: after a restore, the one its restored partitions
    /// had reached (so that a restored run judges lateness as the run it continues did).
    /// Readers that restore no event-time state keep the default, the beginning of time.
    fn start_watermark(&self) -> EventTime {
        EventTime::ZERO
    }

    /// Called once a checkpoint holding `positions` (positions this reader reported) is
    /// complete: nothing before them will be read again. A reader may tell its input, as the
    /// Kafka source commits them to its consumer group so that Kafka's tools show the job's
    /// lag. Never needed for correctness: a restore takes positions from the checkpoint.
    fn checkpoint_complete(&mut self, _positions: &Positions) -> Result<(), BoxError> {
        Ok(())
    }

    /// How far this reader is behind the end of each of its partitions, for the job's
    /// metrics; the driver asks about once a second. Readers that cannot tell keep the
    /// default, nothing.
    fn lag(&mut self) -> Vec<PartitionLag> {
        Vec::new()
    }
}

/// A source of records: opened once on every worker, each worker reading its own share.
pub trait Source {
    /// The record type.
    type Item;
    /// The per-worker reader.
    type Reader: SourceReader<Item = Self::Item>;
    /// A short name for errors and metrics.
    fn name(&self) -> String;
    /// Opens this worker's share of the input.
    fn open(self, worker: WorkerInfo) -> Result<Self::Reader, BoxError>;

    /// Before [`open`](Source::open), when a job restores a checkpoint: makes the reader start
    /// at `positions` (merged over every worker of the run that took the checkpoint;
    /// partitions missing from it start as configured). The default refuses: the source
    /// cannot resume.
    fn resume_from(&mut self, _positions: &Positions) -> Result<(), BoxError> {
        Err("it cannot start from recorded positions".into())
    }
}

/// The streams a driven source produces.
pub(crate) struct SourceStreams<'s, T> {
    pub(crate) records: StreamVec<'s, Time, T>,
    pub(crate) dead_letters: StreamVec<'s, Time, DeadLetter>,
}

/// Builds the timely operator that opens `source` on this worker when the job starts and
/// drives its reader. Opening inside the operator, not while the pipeline is built, keeps the
/// dataflow the same on every worker even when only some of them fail to open. `number`
/// tells this source apart from the pipeline's others (the same on every worker).
pub(crate) fn drive<'s, S>(
    scope: Scope<'s, Time>,
    source: S,
    number: usize,
    cx: Context,
) -> SourceStreams<'s, S::Item>
where
    S: Source + 'static,
{
    let Context {
        job,
        worker,
        checkpoints,
        alarms,
        ..
    } = cx;
    let name = source.name();
    let metrics = job.metrics.operator(&format!("source {name}"));
    let mut cursor = EpochCursor::for_source(&checkpoints, number, name.clone());
    let checkpoint_interval = job.config.checkpoints.as_ref().map(|c| c.interval);
    let watermark_interval = job.config.watermark_interval;
    // Under a test's manual clock processing time passes only when the test says, so no record
    // is ever in flight for long: no backpressure.
    let in_flight_limit = (!job.clock.is_manual()).then_some(job.config.in_flight_limit);
    let fail = {
        let (job, name) = (Arc::clone(&job), name.clone());
        move |source| {
            job.fail(EngineError::Source {
                name: name.clone(),
                worker: worker.index,
                source,
            })
        }
    };
    let mut builder = OperatorBuilder::new(format!("source {name}"), scope);
    let activator = scope.activator_for(builder.operator_info().address);
    let (records_output, records) = builder.new_output();
    let (dead_output, dead_letters) = builder.new_output();
    let mut records_output =
        OutputBuilder::<_, CapacityContainerBuilder<Vec<S::Item>>>::from(records_output);
    let mut dead_output =
        OutputBuilder::<_, CapacityContainerBuilder<Vec<DeadLetter>>>::from(dead_output);
    job.watermarks
        .publish(number, worker.index, Some(EventTime::ZERO));
    let shared: Rc<RefCell<Driven<S::Reader>>> = Rc::default();
    {
        // Commits run between dataflow steps, never inside this operator: the borrow is free.
        let (shared, name) = (Rc::clone(&shared), name.clone());
        checkpoints.on_commit(Box::new(move |step| {
            let (SinkStep::Commit(epoch), Ok(mut shared)) = (step, shared.try_borrow_mut()) else {
                return Ok(());
            };
            shared
                .tell_complete(epoch)
                .map_err(|source| EngineError::Source {
                    name: name.clone(),
                    worker: worker.index,
                    source,
                })
        }));
    }
    builder.build(move |capabilities| {
        let mut capabilities = Some(capabilities);
        let mut unopened = Some(source);
        let mut batch = Vec::with_capacity(POLL_BATCH);
        let mut rejected = Vec::new();
        let mut pending_watermark = EventTime::ZERO;
        let mut last_advance = job.clock.now();
        let mut epoch_started = job.clock.now();
        let mut lag_polled = job.clock.now();
        let mut reported_watermark = None;
        // Since when the driver has been paused for backpressure, counted up to now.
        let mut paused_since: Option<ProcessingTime> = None;
        let board = Arc::clone(&job);
        let finish = move |capabilities: &mut Option<Vec<_>>,
                           cursor: &mut EpochCursor,
                           positions: Option<Positions>| {
            if capabilities.is_some() {
                cursor.finish_source(true, positions);
            }
            // Dropping the capabilities moves this source's watermark to the end of time.
            *capabilities = None;
            board.watermarks.retire(number, worker.index);
        };
        move |_frontiers| {
            let mut shared = shared.borrow_mut();
            let Driven {
                reader,
                uncommitted,
            } = &mut *shared;
            if let Some(source) = unopened.take() {
                match open(source, worker, &checkpoints, number) {
                    Ok(Some(opened)) => *reader = Some(opened),
                    Ok(None) => {}
                    Err(error) => fail(error),
                }
                pending_watermark = reader
                    .as_ref()
                    .map_or(EventTime::ZERO, S::Reader::start_watermark);
                let start = Time::new(
                    cursor.epoch(),
                    pending_watermark,
                    FlowTick::at(job.clock.now()),
                );
                if let Some(caps) = capabilities.as_mut() {
                    for capability in caps {
                        capability.downgrade(&start);
                    }
                }
                job.metrics.epoch_started(cursor.epoch());
            }
            let (Some([records_cap, dead_cap]), Some(reader)) = (
                capabilities
                    .as_deref_mut()
                    .and_then(|caps| <&mut [_; 2]>::try_from(caps).ok()),
                reader.as_mut(),
            ) else {
                // Failed to open (or nothing left to read): finish at once, as every source
                // does when the job fails.
                finish(&mut capabilities, &mut cursor, None);
                return;
            };
            if job.aborted() {
                finish(&mut capabilities, &mut cursor, None);
                return;
            }
            let now = job.clock.now();
            // The tick never goes back, even if the wall clock does.
            let tick = FlowTick::at(now).max(records_cap.time().tick);
            if tick > records_cap.time().tick {
                // What is read now goes out at the current tick, not at that of the last
                // activation: a driver that slept would otherwise date it back by its sleep.
                let time = Time {
                    tick,
                    ..*records_cap.time()
                };
                records_cap.downgrade(&time);
                dead_cap.downgrade(&time);
            }
            // Looked at before every poll: a fast reader could otherwise emit a whole
            // activation's budget past the limit.
            let over_limit = || in_flight_limit.is_some_and(|limit| job.flow.behind(tick) > limit);
            if let Some(since) = paused_since.take() {
                metrics.add_backpressure(now.since(since));
            }
            let mut records_handle = records_output.activate();
            let mut dead_handle = dead_output.activate();
            let mut emitted = 0;
            let mut pause = Pause::Budget;
            while emitted < ACTIVATION_BUDGET {
                if over_limit() {
                    paused_since = Some(now);
                    pause = Pause::Backpressure;
                    break;
                }
                let status = match reader.poll(&mut batch, POLL_BATCH) {
                    Ok(status) => status,
                    Err(error) => {
                        fail(error);
                        SourcePoll::Finished
                    }
                };
                if !batch.is_empty() {
                    emitted += batch.len();
                    job.metrics.add_records_in(batch.len());
                    metrics.add_out(batch.len());
                    records_handle
                        .session(&*records_cap)
                        .give_container(&mut batch);
                    // The hand-off leaves `batch` without its allocation: a poll filling an
                    // empty vector would grow it record by record, touching fresh pages.
                    batch.clear();
                    batch.reserve(POLL_BATCH);
                }
                reader.drain_dead_letters(&mut rejected);
                if !rejected.is_empty() {
                    job.metrics.add_dead_letters(rejected.len());
                    metrics.add_dead_letters(rejected.len());
                    dead_handle
                        .session(&*dead_cap)
                        .give_container(&mut rejected);
                    rejected.clear();
                }
                match status {
                    SourcePoll::Ready { watermark } => pending_watermark = watermark,
                    SourcePoll::Waiting { watermark } => {
                        pending_watermark = watermark;
                        pause = Pause::Waiting;
                        break;
                    }
                    SourcePoll::Idle => {
                        pause = Pause::Idle;
                        break;
                    }
                    SourcePoll::Finished => {
                        drop((records_handle, dead_handle));
                        let positions = reader.positions();
                        if let Some(positions) = &positions {
                            uncommitted.push_back((FINAL_EPOCH, positions.clone()));
                        }
                        finish(&mut capabilities, &mut cursor, positions);
                        return;
                    }
                }
            }
            let idle = pause == Pause::Idle;
            let target = if idle {
                job.watermarks
                    .active_watermark(number)
                    .unwrap_or(EventTime::ZERO)
            } else {
                pending_watermark
            };
            if checkpoint_interval
                .is_some_and(|interval| job.clock.since(epoch_started) >= interval)
                && cursor.may_start_next()
            {
                // Every record emitted so far belongs to the current epoch; later ones to the
                // next.
                let positions = reader.positions();
                if let Some(positions) = &positions {
                    uncommitted.push_back((cursor.epoch(), positions.clone()));
                }
                cursor.finish_source(false, positions);
                epoch_started = job.clock.now();
                job.metrics.epoch_started(cursor.epoch());
            }
            if job.clock.since(lag_polled) >= LAG_INTERVAL {
                lag_polled = job.clock.now();
                job.metrics.set_lags(&name, &reader.lag());
            }
            // While records stream in, the watermark moves once per interval; a reader that
            // has caught up publishes its watermark at once.
            let advance_watermark = target > records_cap.time().watermark
                && (pause != Pause::Budget || job.clock.since(last_advance) >= watermark_interval);
            if advance_watermark || cursor.epoch() > records_cap.time().epoch {
                let watermark = if advance_watermark {
                    last_advance = job.clock.now();
                    target
                } else {
                    records_cap.time().watermark
                };
                let time = Time::new(cursor.epoch(), watermark, tick);
                records_cap.downgrade(&time);
                dead_cap.downgrade(&time);
            }
            let published = (!idle).then(|| records_cap.time().watermark);
            job.watermarks.publish(number, worker.index, published);
            // The metrics hear of a watermark when it moves, not at every activation.
            if let Some(watermark) = published.filter(|w| Some(*w) != reported_watermark) {
                job.metrics.set_watermark(&name, worker.index, watermark);
                reported_watermark = Some(watermark);
            }
            match pause {
                Pause::Budget => activator.activate(),
                Pause::Waiting | Pause::Idle => {
                    // Often enough for the tick too: a sleeping driver's capability holds its
                    // tick back.
                    alarms.wake_after(&activator, (watermark_interval / 10).min(FLOW_TICK));
                }
                Pause::Backpressure => alarms.wake_after(&activator, BACKPRESSURE_RECHECK),
            }
        }
    });
    SourceStreams {
        records,
        dead_letters,
    }
}

/// Why a source driver stopped polling its reader in one activation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Pause {
    /// It emitted its budget of records: more may be ready now.
    Budget,
    /// The reader reported [`SourcePoll::Waiting`].
    Waiting,
    /// The reader reported [`SourcePoll::Idle`].
    Idle,
    /// The sinks are further behind than the job's in-flight limit: the driver did not poll.
    Backpressure,
}

/// A source worker's reader and the positions of the epochs it finished whose checkpoints are
/// not complete yet, shared by the driver and the handle that hears of commits.
struct Driven<R> {
    reader: Option<R>,
    uncommitted: VecDeque<(Epoch, Positions)>,
}

impl<R> Default for Driven<R> {
    fn default() -> Self {
        Driven {
            reader: None,
            uncommitted: VecDeque::new(),
        }
    }
}

impl<R: SourceReader> Driven<R> {
    /// Tells the reader the positions of the newest of its finished epochs whose checkpoint is
    /// complete (up to `committed`, the final one included), forgetting those.
    fn tell_complete(&mut self, committed: Epoch) -> Result<(), BoxError> {
        let mut newest = None;
        while self
            .uncommitted
            .front()
            .is_some_and(|(epoch, _)| *epoch <= committed)
        {
            newest = self.uncommitted.pop_front();
        }
        match (newest, self.reader.as_mut()) {
            (Some((_, positions)), Some(reader)) => reader.checkpoint_complete(&positions),
            _ => Ok(()),
        }
    }
}

/// Opens `source` on this worker, first moving it to the positions of the restored
/// checkpoint. `None` when a restored job has nothing left to read.
fn open<S: Source>(
    mut source: S,
    worker: WorkerInfo,
    checkpoints: &Checkpoints,
    number: usize,
) -> Result<Option<S::Reader>, BoxError> {
    if checkpoints.completed() {
        return Ok(None);
    }
    if let Some((checkpoint, restored)) = checkpoints.restored_positions(number) {
        let name = source.name();
        let refused = |reason: String| CheckpointError::Resume {
            name: name.clone(),
            checkpoint: checkpoint.clone(),
            reason,
        };
        let positions = restored
            .partitions
            .as_ref()
            .ok_or_else(|| refused("it recorded no positions: it cannot resume".into()))?;
        source
            .resume_from(positions)
            .map_err(|error| refused(error.to_string()))?;
    }
    source.open(worker).map(Some)
}
