//! Sources: the trait a connector implements, and the timely operator that drives it.
//!
//! The driver holds one capability at `(epoch, watermark)`, emits every record at that time and
//! advances the watermark part at most once per watermark interval, so batches stay large.

use std::time::Instant;

use std::sync::Arc;

use timely::container::CapacityContainerBuilder;
use timely::dataflow::operators::generic::operator::source as timely_source;
use timely::dataflow::{Scope, StreamVec};

use crate::error::{BoxError, EngineError};
use crate::job::{JobShared, WorkerInfo};
use crate::time::{EventTime, Time};

/// Records a driver asks a reader for in one call.
const POLL_BATCH: usize = 1024;
/// Records a driver emits in one activation before yielding to other operators.
const ACTIVATION_BUDGET: usize = 64 * 1024;

/// What a [`SourceReader`] reports after a poll.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SourcePoll {
    /// More may come. Every record this reader emits from now on has event time `>= watermark`,
    /// except late records.
    Ready {
        /// The reader's watermark after the records of this poll.
        watermark: EventTime,
    },
    /// Nothing is available now; poll again later.
    Idle {
        /// The reader's watermark.
        watermark: EventTime,
    },
    /// The input is exhausted: nothing more will come.
    Finished,
}

/// One worker's share of a source: reads records in batches and tracks its watermark.
pub trait SourceReader: 'static {
    /// The record type.
    type Item;
    /// Appends at most `max` records to `out` and reports the watermark after them.
    fn poll(&mut self, out: &mut Vec<Self::Item>, max: usize) -> Result<SourcePoll, BoxError>;
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
}

/// Builds the timely operator that opens `source` on this worker when the job starts and
/// drives its reader. Opening inside the operator, not while the pipeline is built, keeps the
/// dataflow the same on every worker even when only some of them fail to open.
pub(crate) fn drive<'s, S>(
    scope: Scope<'s, Time>,
    source: S,
    job: Arc<JobShared>,
    worker: WorkerInfo,
) -> StreamVec<'s, Time, S::Item>
where
    S: Source + 'static,
{
    let name = source.name();
    let watermark_interval = job.config.watermark_interval;
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
    timely_source::<_, CapacityContainerBuilder<Vec<S::Item>>, _, _>(
        scope,
        &format!("source {name}"),
        move |capability, info| {
            let activator = scope.activator_for(info.address);
            let mut capability = Some(capability);
            let mut unopened = Some(source);
            let mut reader = None;
            let mut batch = Vec::with_capacity(POLL_BATCH);
            let mut pending_watermark = 0;
            let mut last_advance = Instant::now();
            move |output| {
                if let Some(source) = unopened.take() {
                    match source.open(worker) {
                        Ok(opened) => reader = Some(opened),
                        Err(error) => fail(error),
                    }
                }
                let (Some(cap), Some(reader)) = (capability.as_mut(), reader.as_mut()) else {
                    // Failed to open: finish at once, as every source does when the job fails.
                    capability = None;
                    return;
                };
                if job.aborted() {
                    capability = None;
                    return;
                }
                let mut emitted = 0;
                let mut idle = false;
                while emitted < ACTIVATION_BUDGET {
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
                        output.session(&*cap).give_container(&mut batch);
                        batch.clear();
                    }
                    match status {
                        SourcePoll::Ready { watermark } => pending_watermark = watermark,
                        SourcePoll::Idle { watermark } => {
                            pending_watermark = watermark;
                            idle = true;
                            break;
                        }
                        SourcePoll::Finished => {
                            // Dropping the capability moves this source's watermark to the end
                            // of time.
                            capability = None;
                            return;
                        }
                    }
                }
                if pending_watermark > cap.time().watermark
                    && last_advance.elapsed() >= watermark_interval
                {
                    cap.downgrade(&Time::new(cap.time().epoch, pending_watermark));
                    last_advance = Instant::now();
                }
                if idle {
                    activator.activate_after(watermark_interval / 10);
                } else {
                    activator.activate();
                }
            }
        },
    )
}
