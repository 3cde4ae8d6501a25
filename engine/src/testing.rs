//! A deterministic test harness for pipelines: every worker of the job runs on the calling
//! thread and is stepped by the harness; [`TestInput`]s take records and watermarks from the
//! test; processing time is a clock the test moves. Nothing sleeps and nothing reads the wall
//! clock, so a test gives the same results on every run, as fast as the machine allows.
//!
//! ```
//! use std::time::Duration;
//! use weir_engine::testing::TestJob;
//! use weir_engine::{CollectSink, JobConfig};
//!
//! let mut job = TestJob::new(JobConfig::default().workers(2)).unwrap();
//! let numbers = job.input::<u64>("numbers");
//! let sink = CollectSink::new();
//! let results = sink.results();
//! let source = numbers.clone();
//! job.build(move |p| {
//!     p.source(source.source()).map(|n| n * 10).sink(sink.clone());
//!     Ok(())
//! })
//! .unwrap();
//!
//! numbers.push([1, 2, 3]);
//! job.run().unwrap(); // until nothing is left to do: no sleeping
//! results.lock().unwrap().sort();
//! assert_eq!(*results.lock().unwrap(), vec![10, 20, 30]);
//!
//! job.advance_clock(Duration::from_secs(10)); // processing time moves only when told
//! numbers.push([4]);
//! job.run_to_end().unwrap(); // finishes every input and runs the job until it ends
//! assert_eq!(results.lock().unwrap().len(), 4);
//! ```

use std::cell::Cell;
use std::collections::VecDeque;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use timely::communication::WorkerGuards;
use timely::logging::{StartStop, TimelyEvent, TimelyEventBuilder};
use timely::worker::Worker;

use crate::checkpoint::Checkpoints;
use crate::config::JobConfig;
use crate::error::{BoxError, EngineError};
use crate::metrics::JobMetrics;
use crate::pipeline::Pipeline;
use crate::runtime::clock::Clock;
use crate::runtime::job::{JobShared, WorkerInfo};
use crate::source::{Source, SourcePoll, SourceReader};
use crate::time::{millis, EventTime, ProcessingTime, Time};

/// Rounds of steps (each worker stepped once) after which a job that still has work is taken
/// to be stuck: an operator that reschedules itself for ever.
const MAX_ROUNDS: usize = 1_000_000;

/// How long the harness waits for a worker to answer one command before it gives up: a
/// deadline for a worker that panicked, never a pace.
const ANSWER_WITHIN: Duration = Duration::from_secs(60);

/// What went wrong in a harnessed run.
#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    /// The configuration asks for what the harness does not do.
    #[error("the test harness runs jobs in one process without checkpoints: {0}")]
    Unsupported(&'static str),
    /// [`TestJob::build`] was called twice, or a run was asked for before it.
    #[error("build the pipeline once, before running it")]
    Build,
    /// Some operator kept scheduling itself.
    #[error("the job still had work after {rounds} rounds of steps: an operator keeps rescheduling itself")]
    NoQuiescence {
        /// The rounds stepped.
        rounds: usize,
    },
    /// Input was pushed but no source reads it.
    #[error("{pending} pushed records and watermarks of input {input:?} are not read: is its source in the pipeline?")]
    Unread {
        /// The input's name.
        input: String,
        /// Its steps left unread.
        pending: usize,
    },
    /// After every input finished, the pipeline had not ended.
    #[error("every input finished, but the pipeline did not end")]
    NotEnded,
    /// A worker thread stopped answering (it panicked).
    #[error("worker {0} stopped answering the harness (it panicked)")]
    WorkerLost(usize),
    /// The job failed.
    #[error(transparent)]
    Engine(#[from] EngineError),
}

/// What the harness tells a worker thread to do.
enum Command {
    /// Step the worker once.
    Step,
    /// Run every operator waiting for time or input.
    Wake,
}

/// A worker's answer to a command.
struct Answer {
    /// Operators the worker has scheduled so far.
    scheduled: u64,
    /// Whether its pipeline is still running.
    running: bool,
}

/// The worker threads of a built job, each stepped only when the harness says so, one at a
/// time.
struct Workers {
    commands: Vec<Sender<Command>>,
    answers: Receiver<Answer>,
    /// Joined when dropped, once the commands are closed.
    _guards: WorkerGuards<()>,
}

impl Workers {
    /// Has worker `index` carry out `command`, and waits for its answer.
    fn tell(&self, index: usize, command: Command) -> Result<Answer, HarnessError> {
        let lost = || HarnessError::WorkerLost(index);
        self.commands[index].send(command).map_err(|_| lost())?;
        // Timed out or disconnected: either way the worker is gone.
        self.answers.recv_timeout(ANSWER_WITHIN).map_err(|_| lost())
    }

    /// Has every worker carry out `command`, one after the other; returns the operators
    /// scheduled over all of them so far, and whether any pipeline is still running.
    fn tell_all(&self, command: fn() -> Command) -> Result<(u64, bool), HarnessError> {
        let mut scheduled = 0;
        let mut running = false;
        for index in 0..self.commands.len() {
            let answer = self.tell(index, command())?;
            scheduled += answer.scheduled;
            running |= answer.running;
        }
        Ok((scheduled, running))
    }
}

/// A job whose workers are stepped by the test, one at a time.
pub struct TestJob {
    config: JobConfig,
    shared: Arc<JobShared>,
    now: Arc<AtomicU64>,
    inputs: Vec<Arc<dyn Pending>>,
    workers: Option<Workers>,
}

impl TestJob {
    /// A job with `config`, its processing-time clock at 0. The configuration may not ask for
    /// checkpoints or several processes.
    pub fn new(config: JobConfig) -> Result<Self, HarnessError> {
        config.validate().map_err(EngineError::from)?;
        if config.checkpoints.is_some() {
            return Err(HarnessError::Unsupported(
                "the configuration asks for checkpoints",
            ));
        }
        if config.cluster.is_some() {
            return Err(HarnessError::Unsupported(
                "the configuration asks for several processes",
            ));
        }
        let now = Arc::new(AtomicU64::new(0));
        let clock = Clock::Manual(Arc::clone(&now));
        let shared = Arc::new(JobShared::new(&config, Arc::default(), clock));
        Ok(TestJob {
            config,
            shared,
            now,
            inputs: Vec::new(),
            workers: None,
        })
    }

    /// A new input named `name`: hand [`TestInput::source`] to the pipeline, then push into it.
    pub fn input<T: Send + 'static>(&mut self, name: &str) -> TestInput<T> {
        let input = TestInput {
            name: name.to_owned(),
            queues: Arc::new(Mutex::new(Queues {
                steps: (0..self.config.workers).map(|_| VecDeque::new()).collect(),
                next: 0,
                finished: false,
            })),
        };
        self.inputs.push(Arc::new(input.clone()));
        input
    }

    /// Starts the workers and builds the pipeline on each, as [`Job::run`](crate::Job::run)
    /// does; they step only when the harness runs the job.
    pub fn build<F>(&mut self, build: F) -> Result<(), HarnessError>
    where
        F: Fn(&mut Pipeline<'_>) -> Result<(), BoxError> + Send + Sync + 'static,
    {
        if self.workers.is_some() {
            return Err(HarnessError::Build);
        }
        let (answer, answers) = mpsc::channel();
        let (commands, receivers): (Vec<_>, Vec<_>) =
            (0..self.config.workers).map(|_| mpsc::channel()).unzip();
        let receivers = Mutex::new(receivers.into_iter().map(Some).collect::<Vec<_>>());
        let answer = Mutex::new(answer);
        let shared = Arc::clone(&self.shared);
        let guards = timely::execute(self.config.timely_config(), move |worker| {
            let taken = receivers
                .lock()
                .ok()
                .and_then(|mut receivers| receivers.get_mut(worker.index())?.take());
            let sender = answer.lock().ok().map(|answer| answer.clone());
            if let (Some(commands), Some(answer)) = (taken, sender) {
                serve(worker, &shared, &build, &commands, &answer);
            }
        })
        .map_err(EngineError::Launch)?;
        self.workers = Some(Workers {
            commands,
            answers,
            _guards: guards,
        });
        self.failure()
    }

    /// Runs the job until it has nothing left to do: every record and watermark pushed so far
    /// is read and handled downstream, and every processing-time timer up to the clock has
    /// fired.
    pub fn run(&mut self) -> Result<(), HarnessError> {
        let mut pending = self.pending();
        loop {
            self.wake_and_settle()?;
            let left = self.pending();
            if left == 0 {
                // Once more, for sources that have just run out of input.
                self.wake_and_settle()?;
                return self.failure();
            }
            if left == pending {
                let (input, pending) = self
                    .inputs
                    .iter()
                    .map(|input| (input.name(), input.pending()))
                    .find(|(_, pending)| *pending > 0)
                    .unwrap_or_default();
                return Err(HarnessError::Unread { input, pending });
            }
            pending = left;
        }
    }

    /// Finishes every input and runs the job until its pipeline has ended.
    pub fn run_to_end(&mut self) -> Result<(), HarnessError> {
        for input in &self.inputs {
            input.finish();
        }
        self.run()?;
        let workers = self.workers.as_ref().ok_or(HarnessError::Build)?;
        let (_, running) = workers.tell_all(|| Command::Step)?;
        if running {
            return Err(HarnessError::NotEnded);
        }
        Ok(())
    }

    /// Processing time now.
    pub fn now(&self) -> ProcessingTime {
        ProcessingTime(self.now.load(Ordering::SeqCst))
    }

    /// Sets processing time to `now`. Operators see it at the next [`run`](TestJob::run).
    pub fn set_clock(&mut self, now: ProcessingTime) {
        self.now.store(now.millis(), Ordering::SeqCst);
    }

    /// Moves processing time forward by `by`.
    pub fn advance_clock(&mut self, by: Duration) {
        self.now.fetch_add(millis(by), Ordering::SeqCst);
    }

    /// The job's counters.
    pub fn metrics(&self) -> Arc<JobMetrics> {
        Arc::clone(&self.shared.metrics)
    }

    /// Steps pushed into inputs that no source has read yet.
    fn pending(&self) -> usize {
        self.inputs.iter().map(|input| input.pending()).sum()
    }

    /// Wakes every operator waiting for time or input, then steps the workers one after the
    /// other until a round in which none scheduled any operator. Workers talk only through
    /// in-memory channels drained at their next step, so such a round also means that no
    /// message is in flight.
    fn wake_and_settle(&mut self) -> Result<(), HarnessError> {
        let workers = self.workers.as_ref().ok_or(HarnessError::Build)?;
        let (mut before, _) = workers.tell_all(|| Command::Wake)?;
        for _ in 0..MAX_ROUNDS {
            let (after, _) = workers.tell_all(|| Command::Step)?;
            if after == before {
                return Ok(());
            }
            before = after;
        }
        Err(HarnessError::NoQuiescence { rounds: MAX_ROUNDS })
    }

    /// The job's failure, if it failed.
    fn failure(&self) -> Result<(), HarnessError> {
        match self.shared.take_failure()? {
            Some(error) => Err(error.into()),
            None => Ok(()),
        }
    }
}

/// A worker thread of a harnessed job: builds the pipeline, then carries out the harness's
/// commands until they end, and drops what is left of the pipeline.
fn serve<F>(
    worker: &mut Worker,
    shared: &Arc<JobShared>,
    build: &F,
    commands: &Receiver<Command>,
    answer: &Sender<Answer>,
) where
    F: Fn(&mut Pipeline<'_>) -> Result<(), BoxError>,
{
    let scheduled = Rc::new(Cell::new(0));
    count_schedules(worker, Rc::clone(&scheduled));
    let info = WorkerInfo {
        index: worker.index(),
        peers: worker.peers(),
    };
    let alarms = worker.dataflow::<Time, _, _>(|scope| {
        let mut pipeline = Pipeline::new(scope, Arc::clone(shared), info, Checkpoints::default());
        if let Err(error) = build(&mut pipeline) {
            shared.fail(EngineError::Build(error));
        }
        let alarms = pipeline.alarms();
        pipeline.finish();
        alarms
    });
    for command in commands {
        match command {
            Command::Step => {
                worker.step();
            }
            Command::Wake => alarms.wake_all(),
        }
        let running = !worker.installed_dataflows().is_empty();
        let sent = answer.send(Answer {
            scheduled: scheduled.get(),
            running,
        });
        if sent.is_err() {
            break;
        }
    }
    for dataflow in worker.installed_dataflows() {
        worker.drop_dataflow(dataflow);
    }
}

/// Counts the operators `worker` schedules, through timely's log of its events.
fn count_schedules(worker: &Worker, scheduled: Rc<Cell<u64>>) {
    if let Some(mut registry) = worker.log_register() {
        registry.insert::<TimelyEventBuilder, _>("timely", move |_, events| {
            if let Some(events) = events {
                let starts = events.iter().filter(|(_, event)| {
                    matches!(event, TimelyEvent::Schedule(schedule) if schedule.start_stop == StartStop::Start)
                });
                scheduled.set(scheduled.get() + starts.count() as u64);
            }
        });
    }
}

/// One step of an input on one worker.
enum Step<T> {
    Record(T),
    Watermark(EventTime),
}

/// Each worker's steps not read yet.
struct Queues<T> {
    steps: Vec<VecDeque<Step<T>>>,
    /// The worker the next record of [`TestInput::push`] goes to.
    next: usize,
    finished: bool,
}

/// An input a test pushes records and watermarks into; its [`source`](TestInput::source) reads
/// them in the pipeline. Clones share the input.
pub struct TestInput<T> {
    name: String,
    queues: Arc<Mutex<Queues<T>>>,
}

impl<T> Clone for TestInput<T> {
    fn clone(&self) -> Self {
        TestInput {
            name: self.name.clone(),
            queues: Arc::clone(&self.queues),
        }
    }
}

impl<T> TestInput<T> {
    fn queues(&self) -> MutexGuard<'_, Queues<T>> {
        self.queues.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Pushes `records`, dealt round robin over the workers.
    pub fn push(&self, records: impl IntoIterator<Item = T>) {
        let mut queues = self.queues();
        for record in records {
            let worker = queues.next;
            queues.next = (worker + 1) % queues.steps.len();
            queues.steps[worker].push_back(Step::Record(record));
        }
    }

    /// Pushes `records` to worker `worker`'s share of the input (modulo the number of
    /// workers).
    pub fn push_to(&self, worker: usize, records: impl IntoIterator<Item = T>) {
        let mut queues = self.queues();
        let worker = worker % queues.steps.len();
        queues.steps[worker].extend(records.into_iter().map(Step::Record));
    }

    /// Moves every worker's watermark to `watermark`: records pushed later carry it.
    pub fn advance_watermark(&self, watermark: EventTime) {
        for steps in &mut self.queues().steps {
            steps.push_back(Step::Watermark(watermark));
        }
    }

    /// Moves worker `worker`'s watermark (modulo the number of workers) to `watermark`.
    pub fn advance_watermark_of(&self, worker: usize, watermark: EventTime) {
        let mut queues = self.queues();
        let worker = worker % queues.steps.len();
        queues.steps[worker].push_back(Step::Watermark(watermark));
    }

    /// Ends the input: once its workers have read what was pushed, its source finishes.
    pub fn finish(&self) {
        self.queues().finished = true;
    }

    /// The source that reads this input in a pipeline.
    pub fn source(&self) -> TestSource<T> {
        TestSource {
            input: self.clone(),
        }
    }
}

/// What the harness asks of every input, whatever its record type.
trait Pending {
    fn name(&self) -> String;
    fn pending(&self) -> usize;
    fn finish(&self);
}

impl<T> Pending for TestInput<T> {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn pending(&self) -> usize {
        self.queues().steps.iter().map(VecDeque::len).sum()
    }

    fn finish(&self) {
        TestInput::finish(self);
    }
}

/// The source of a [`TestInput`].
pub struct TestSource<T> {
    input: TestInput<T>,
}

impl<T: 'static> Source for TestSource<T> {
    type Item = T;
    type Reader = TestReader<T>;

    fn name(&self) -> String {
        self.input.name.clone()
    }

    fn open(self, worker: WorkerInfo) -> Result<TestReader<T>, BoxError> {
        Ok(TestReader {
            input: self.input,
            worker: worker.index,
            watermark: EventTime::ZERO,
        })
    }
}

/// One worker's reader of a [`TestInput`].
pub struct TestReader<T> {
    input: TestInput<T>,
    worker: usize,
    watermark: EventTime,
}

impl<T: 'static> SourceReader for TestReader<T> {
    type Item = T;

    fn poll(&mut self, out: &mut Vec<T>, max: usize) -> Result<SourcePoll, BoxError> {
        let mut queues = self.input.queues();
        let finished = queues.finished;
        let Some(steps) = queues.steps.get_mut(self.worker) else {
            return Ok(SourcePoll::Finished);
        };
        while out.len() < max {
            match steps.pop_front() {
                Some(Step::Record(record)) => out.push(record),
                // The records before it go out first, then the driver publishes it.
                Some(Step::Watermark(watermark)) => {
                    self.watermark = self.watermark.max(watermark);
                    return Ok(SourcePoll::Waiting {
                        watermark: self.watermark,
                    });
                }
                None if finished => return Ok(SourcePoll::Finished),
                None => {
                    return Ok(SourcePoll::Waiting {
                        watermark: self.watermark,
                    })
                }
            }
        }
        Ok(SourcePoll::Ready {
            watermark: self.watermark,
        })
    }
}
