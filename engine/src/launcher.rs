//! Launching a job: worker threads (and processes, through timely's cluster mode), each
//! building the same pipeline and stepping it until every source has finished.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::checkpoint::{Checkpoints, Restore, POLL_INTERVAL};
use crate::config::JobConfig;
use crate::control::{self, Control, JOIN_THREAD};
use crate::error::{BoxError, EngineError};
use crate::metrics::JobMetrics;
use crate::pipeline::Pipeline;
use crate::runtime::clock::Clock;
use crate::runtime::job::{JobShared, WorkerInfo};
use crate::time::Time;

/// How long an idle worker parks at most, so that sources notice a failure elsewhere in the
/// process soon.
const PARK_TIMEOUT: Duration = Duration::from_millis(10);

/// How long a process of a failed job of several processes goes on stepping, so that its
/// announcement of the failure reaches the others, before it stops.
const ANNOUNCE_GRACE: Duration = Duration::from_millis(200);

/// Steps a worker until its pipeline has ended and, with checkpoints, the final checkpoint is
/// committed. After a failure in a single process, sources stop and the dataflow drains. A
/// job of several processes cannot drain without the others: a process that failed tells
/// them, and every process stops where it is.
fn step_to_the_end(
    worker: &mut timely::worker::Worker,
    shared: &JobShared,
    checkpoints: &Checkpoints,
    control: &mut Control,
    pipeline: &[usize],
) {
    let clustered = shared.config.cluster.is_some();
    let mut failed = false;
    let mut aborted_at = None;
    let mut running = true;
    loop {
        // Once the pipeline has ended, the final checkpoint is polled for more often.
        worker.step_or_park(Some(if running { PARK_TIMEOUT } else { POLL_INTERVAL }));
        control.poll(shared);
        shared.announce_failure_once(|error| control.announce_failure(shared, error));
        if clustered && shared.aborted() {
            // Long enough for the announcement to leave; then stop here. After a lost peer
            // at once: its connections are broken, and every further step risks a panic in
            // timely's channels to it (a second one while unwinding aborts the process).
            let grace = if shared.lost_peer() {
                Duration::ZERO
            } else {
                ANNOUNCE_GRACE
            };
            if aborted_at.get_or_insert_with(Instant::now).elapsed() >= grace {
                drop_dataflows(worker);
                return;
            }
            continue;
        }
        running = worker
            .installed_dataflows()
            .iter()
            .any(|dataflow| pipeline.contains(dataflow));
        let step = if running {
            checkpoints.after_step().map(|()| false)
        } else if shared.aborted() {
            Ok(true)
        } else {
            checkpoints.finish_round()
        };
        match step {
            Ok(true) => return,
            Ok(false) => {}
            Err(error) if !failed => {
                shared.fail(error);
                failed = true;
            }
            Err(_) => {}
        }
    }
}

/// Drops every dataflow of `worker`, so that timely's wrapper of the worker does not step it
/// again.
fn drop_dataflows(worker: &mut timely::worker::Worker) {
    for dataflow in worker.installed_dataflows() {
        worker.drop_dataflow(dataflow);
    }
}

/// What a finished job reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct JobReport {
    /// Records this process's sources read.
    pub records_in: u64,
    /// Records this process's sinks wrote.
    pub records_out: u64,
    /// Wall-clock time from launch to the end of the last worker, restarts included.
    pub wall: Duration,
    /// Times the job restarted itself from its latest checkpoint after a failure.
    pub restarts: u32,
}

/// A job: a configuration, and [`run`](Job::run) to execute a pipeline with it.
///
/// ```
/// use weir_engine::{CollectSink, IterSource, Job, JobConfig};
///
/// let sink = CollectSink::new();
/// let results = sink.results();
/// Job::new(JobConfig::default().workers(2))
///     .run(move |p| {
///         p.source(IterSource::new("numbers", 0..100u64))
///             .filter(|n| n % 2 == 0)
///             .map(|n| n * 10)
///             .sink(sink.clone());
///         Ok(())
///     })
///     .unwrap();
/// let mut results = results.lock().unwrap().clone();
/// results.sort();
/// assert_eq!(results, (0..100).filter(|n| n % 2 == 0).map(|n| n * 10).collect::<Vec<u64>>());
/// ```
pub struct Job {
    config: JobConfig,
    metrics: Arc<JobMetrics>,
}

impl Job {
    /// A job with this configuration.
    pub fn new(config: JobConfig) -> Self {
        Job {
            config,
            metrics: Arc::default(),
        }
    }

    /// The job's configuration.
    pub fn config(&self) -> &JobConfig {
        &self.config
    }

    /// The live counters of this process, for progress reporting while [`run`](Job::run) runs.
    pub fn metrics(&self) -> Arc<JobMetrics> {
        Arc::clone(&self.metrics)
    }

    /// Runs `build` on every worker to construct the pipeline, then runs the pipeline until every
    /// source has finished and every sink has closed. On the first failure in this process
    /// every source of the process stops and sinks discard their unpublished output instead of
    /// closing. A retryable failure restarts the job from its latest checkpoint, as the
    /// configuration's [`RestartPolicy`](crate::RestartPolicy) allows (`build` runs again);
    /// otherwise the failure is returned.
    pub fn run<F>(self, build: F) -> Result<JobReport, EngineError>
    where
        F: Fn(&mut Pipeline<'_>) -> Result<(), BoxError> + Send + Sync + 'static,
    {
        self.config.validate()?;
        let started = Instant::now();
        let build = Arc::new(build);
        let policy = self.config.restarts;
        let mut config = self.config.clone();
        let mut restarts = 0;
        loop {
            match self.attempt(&config, Arc::clone(&build)) {
                Ok(()) => break,
                Err(error) if error.is_retryable() && restarts < policy.max_restarts => {
                    restarts += 1;
                    self.metrics.restarted();
                    let delay = policy.delay(restarts);
                    tracing::warn!(
                        %error,
                        restart = restarts,
                        of = policy.max_restarts,
                        ?delay,
                        "job failed; restarting from the latest checkpoint"
                    );
                    std::thread::sleep(delay);
                    if let Some(checkpoints) = config.checkpoints.take() {
                        config.checkpoints = Some(checkpoints.restore(Restore::Latest));
                    }
                }
                Err(error) => return Err(error),
            }
        }
        Ok(JobReport {
            records_in: self.metrics.records_in(),
            records_out: self.metrics.records_out(),
            wall: started.elapsed(),
            restarts,
        })
    }

    /// One run of the pipeline with `config`, from launch until every worker has ended.
    fn attempt<F>(&self, config: &JobConfig, build: Arc<F>) -> Result<(), EngineError>
    where
        F: Fn(&mut Pipeline<'_>) -> Result<(), BoxError> + Send + Sync + 'static,
    {
        let shared = Arc::new(JobShared::new(
            config,
            Arc::clone(&self.metrics),
            Clock::System,
        ));
        if config.cluster.is_some() {
            control::watch_for_lost_peers(&shared);
        }
        let worker_shared = Arc::clone(&shared);
        let guards = timely::execute(config.timely_config(), move |worker| {
            let shared = Arc::clone(&worker_shared);
            shared.register_worker_thread();
            let info = WorkerInfo {
                index: worker.index(),
                peers: worker.peers(),
            };
            let checkpoints = Checkpoints::start(&shared, info).unwrap_or_else(|error| {
                shared.fail(error.into());
                Checkpoints::default()
            });
            worker.dataflow::<Time, _, _>(|scope| {
                let mut pipeline =
                    Pipeline::new(scope, Arc::clone(&shared), info, checkpoints.clone());
                if let Err(error) = build(&mut pipeline) {
                    shared.fail(EngineError::Build(error));
                }
                pipeline.finish();
            });
            let pipeline = worker.installed_dataflows();
            let mut control = Control::join(worker);
            match control.run_id(worker, &shared) {
                Some(run) => {
                    checkpoints.set_run(run);
                    step_to_the_end(worker, &shared, &checkpoints, &mut control, &pipeline);
                }
                None => drop_dataflows(worker),
            }
        })
        .map_err(|error| {
            // Name this process's address: the usual cause is a port in use.
            EngineError::Launch(match &config.cluster {
                Some(cluster) => format!(
                    "process {} of {}, listening at {}: {error}",
                    cluster.process_index,
                    cluster.addresses.len(),
                    cluster
                        .addresses
                        .get(cluster.process_index)
                        .map_or("?", String::as_str)
                ),
                None => error,
            })
        })?;
        let joined = std::thread::Builder::new()
            .name(JOIN_THREAD.into())
            .spawn(move || guards.join())
            .map_err(|error| EngineError::Launch(error.to_string()))?
            .join();
        control::unwatch(&shared);
        // A join that panicked is timely's, over the network threads of a lost process.
        for result in joined.unwrap_or_default() {
            if let Err(panic) = result {
                if !shared.aborted() {
                    return Err(EngineError::WorkerPanicked(panic));
                }
            }
        }
        match shared.take_failure()? {
            Some(error) => Err(error),
            None => Ok(()),
        }
    }
}
