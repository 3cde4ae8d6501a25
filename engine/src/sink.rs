//! Sinks: the trait a connector implements, and the timely operator that drives it.

use std::sync::{Arc, Mutex};

use timely::communication::Pull;
use timely::dataflow::channels::pact::{Exchange, Pipeline as PipelinePact};
use timely::dataflow::channels::Message;
use timely::dataflow::operators::generic::{InputHandleCore, Operator};
use timely::dataflow::StreamVec;
use timely::progress::frontier::MutableAntichain;

use crate::error::{BoxError, EngineError};
use crate::job::{JobShared, WorkerInfo};
use crate::time::Time;
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
/// [`open`]: Sink::open
pub trait Sink<T>: 'static {
    /// A short name for errors and metrics.
    fn name(&self) -> String;
    /// Where records are written; every worker by default.
    fn placement(&self) -> SinkPlacement {
        SinkPlacement::EveryWorker
    }
    /// Prepares to write (opens files, connections) on a worker the placement names.
    fn open(&mut self, worker: WorkerInfo) -> Result<(), BoxError>;
    /// Writes a batch of records.
    fn write(&mut self, records: &[T]) -> Result<(), BoxError>;
    /// Called once when the input has ended: flush, publish and release.
    fn close(&mut self) -> Result<(), BoxError>;
    /// Called instead of [`close`](Sink::close) when the job failed: discard what is unpublished.
    fn abort(&mut self) {}
}

/// Builds the timely operator that drives `sink` on this worker.
pub(crate) fn drive<T: Data, S: Sink<T>>(
    stream: StreamVec<'_, Time, T>,
    mut sink: S,
    job: Arc<JobShared>,
    worker: WorkerInfo,
) {
    let name = sink.name();
    let operator_name = format!("sink {name}");
    let placement = sink.placement();
    let writes_here = placement == SinkPlacement::EveryWorker || worker.index == 0;
    let mut state = if writes_here {
        SinkState::Unopened
    } else {
        SinkState::Closed
    };
    let mut logic = move |records: Option<&mut Vec<T>>, input_done: bool| {
        let result = (|| -> Result<(), BoxError> {
            if let SinkState::Unopened = state {
                sink.open(worker)?;
                state = SinkState::Open;
            }
            if let (SinkState::Open, Some(records)) = (&state, records) {
                sink.write(records)?;
                job.metrics.add_records_out(records.len());
            }
            if input_done && matches!(state, SinkState::Open) {
                state = SinkState::Closed;
                // A failed job's input also ends (its sources stop); its output must not be
                // published as if it were complete.
                if job.aborted() {
                    sink.abort();
                } else {
                    sink.close()?;
                }
            }
            Ok(())
        })();
        if let Err(source) = result {
            if matches!(state, SinkState::Open) {
                sink.abort();
            }
            state = SinkState::Closed;
            job.fail(EngineError::Sink {
                name: name.clone(),
                worker: worker.index,
                source,
            });
        }
    };
    match placement {
        SinkPlacement::EveryWorker => {
            stream.sink(PipelinePact, &operator_name, move |(input, frontier)| {
                feed(input, frontier, &mut logic)
            })
        }
        SinkPlacement::FirstWorker => stream.sink(
            Exchange::new(|_: &T| 0),
            &operator_name,
            move |(input, frontier)| feed(input, frontier, &mut logic),
        ),
    }
}

/// Hands every input batch to `logic`, then tells it once the input has ended.
fn feed<T, P>(
    input: &mut InputHandleCore<Time, Vec<T>, P>,
    frontier: &MutableAntichain<Time>,
    logic: &mut impl FnMut(Option<&mut Vec<T>>, bool),
) where
    P: Pull<Message<Time, Vec<T>>>,
{
    input.for_each(|_time, records| logic(Some(records), false));
    if frontier.is_empty() {
        logic(None, true);
    }
}

enum SinkState {
    Unopened,
    Open,
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
