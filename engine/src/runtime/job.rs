//! The state one process's workers share while a job runs: the job's configuration, metrics,
//! key groups, source watermarks, sink frontiers (for backpressure) and state stores, and its
//! first failure; and which worker a piece of code runs on.

use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use crate::config::JobConfig;
use crate::error::EngineError;
use crate::key_group::KeyGroups;
use crate::metrics::JobMetrics;
use crate::state::StateStores;

use super::clock::Clock;
use super::flow::FlowBoard;
use super::watermarks::WatermarkBoard;

/// Which worker a piece of code runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WorkerInfo {
    /// Global index of this worker, `0..peers`.
    pub index: usize,
    /// Number of workers over all processes.
    pub peers: usize,
}

/// State shared by the workers of one process.
#[derive(Debug)]
pub(crate) struct JobShared {
    pub(crate) config: JobConfig,
    pub(crate) metrics: Arc<JobMetrics>,
    pub(crate) key_groups: KeyGroups,
    pub(crate) watermarks: WatermarkBoard,
    /// How far the sinks are behind the sources, for backpressure.
    pub(crate) flow: FlowBoard,
    pub(crate) state_stores: StateStores,
    /// Where processing time comes from.
    pub(crate) clock: Clock,
    failure: Mutex<Option<EngineError>>,
    aborted: AtomicBool,
    /// Whether a worker has taken this process's failure to announce to the others.
    announced: AtomicBool,
    /// This process's worker threads that have not ended yet.
    workers_left: Arc<WorkersLeft>,
}

impl JobShared {
    /// The shared state of a new attempt of a job with `config` on this process, with
    /// processing time from `clock`.
    pub(crate) fn new(config: &JobConfig, metrics: Arc<JobMetrics>, clock: Clock) -> Self {
        JobShared {
            key_groups: KeyGroups::new(config.key_groups, config.total_workers()),
            config: config.clone(),
            metrics,
            watermarks: WatermarkBoard::default(),
            flow: FlowBoard::default(),
            state_stores: StateStores::default(),
            clock,
            failure: Mutex::new(None),
            aborted: AtomicBool::new(false),
            announced: AtomicBool::new(false),
            workers_left: Arc::new(WorkersLeft {
                count: Mutex::new(config.workers),
                ended: Condvar::new(),
            }),
        }
    }

    /// Records the first failure and asks every worker of this process to stop.
    pub(crate) fn fail(&self, error: EngineError) {
        // The caller reports the error; a log line here would say it twice.
        tracing::debug!(%error, "job failed");
        if let Ok(mut failure) = self.failure.lock() {
            failure.get_or_insert(error);
        }
        self.aborted.store(true, Ordering::SeqCst);
    }

    /// Whether this process's job failed because another process was lost.
    pub(crate) fn lost_peer(&self) -> bool {
        self.failure
            .lock()
            .is_ok_and(|failure| matches!(*failure, Some(EngineError::PeerLost { .. })))
    }

    pub(crate) fn aborted(&self) -> bool {
        self.aborted.load(Ordering::Relaxed)
    }

    /// Waits up to `limit` until every worker thread of this process has ended, its channels
    /// dropped; returns whether they all did.
    pub(crate) fn wait_for_workers(&self, limit: Duration) -> bool {
        let Ok(left) = self.workers_left.count.lock() else {
            return false;
        };
        self.workers_left
            .ended
            .wait_timeout_while(left, limit, |left| *left > 0)
            .is_ok_and(|(_, timeout)| !timeout.timed_out())
    }

    /// This process's index in the job's cluster (0 for a single process).
    pub(crate) fn process_index(&self) -> usize {
        self.config
            .cluster
            .as_ref()
            .map_or(0, |cluster| cluster.process_index)
    }

    /// Once, for the first worker to ask after this process failed by itself (not because
    /// another process did): hands the failure to `announce`, to tell the other processes.
    pub(crate) fn announce_failure_once(&self, announce: impl FnOnce(&EngineError)) {
        if !self.aborted() || self.announced.swap(true, Ordering::SeqCst) {
            return;
        }
        if let Ok(failure) = self.failure.lock() {
            match failure.as_ref() {
                None | Some(EngineError::PeerFailed { .. } | EngineError::PeerLost { .. }) => {}
                Some(error) => announce(error),
            }
        }
    }
}

/// A count of the worker threads of a process that have not ended yet.
#[derive(Debug, Default)]
struct WorkersLeft {
    count: Mutex<usize>,
    ended: Condvar,
}

thread_local! {
    static WORKER_THREAD: RefCell<Option<WorkerThread>> = const { RefCell::new(None) };
}

/// Counts a worker thread as ended when the thread ends: thread-local values are dropped after
/// everything the thread's function owned, so by then timely's worker and its channels to
/// other processes are gone too. (Only the count, not the job's state, lives that long.)
struct WorkerThread(Arc<WorkersLeft>);

impl JobShared {
    /// Registers the calling thread as one of this process's worker threads, counted as ended
    /// when the thread ends.
    pub(crate) fn register_worker_thread(&self) {
        let left = Arc::clone(&self.workers_left);
        WORKER_THREAD.with(|thread| *thread.borrow_mut() = Some(WorkerThread(left)));
    }

    /// The failure recorded first, taken out; an error if a worker panicked while recording
    /// it.
    pub(crate) fn take_failure(&self) -> Result<Option<EngineError>, EngineError> {
        self.failure
            .lock()
            .map(|mut failure| failure.take())
            .map_err(|_| {
                EngineError::WorkerPanicked("a worker panicked while recording a failure".into())
            })
    }
}

impl Drop for WorkerThread {
    fn drop(&mut self) {
        if let Ok(mut count) = self.0.count.lock() {
            *count = count.saturating_sub(1);
        }
        self.0.ended.notify_all();
    }
}
