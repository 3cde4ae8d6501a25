//! The job's control channel: a small dataflow beside the pipeline that every worker of every
//! process joins. Worker 0 announces the run's id on it; a process whose job fails announces
//! the failure, so that the other processes stop too instead of waiting for it for ever.
//!
//! A process that dies without a word (killed, or its machine lost) is noticed by timely's
//! network threads, which panic when a connection breaks; the panic hook installed here turns
//! that into the job's error on the processes left.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::{Arc, Mutex, Once, Weak};
use std::time::Duration;

use timely::container::CapacityContainerBuilder;
use timely::dataflow::operators::vec::Broadcast;
use timely::dataflow::operators::{Input, Inspect};
use timely::dataflow::InputHandle;
use timely::worker::Worker;

use crate::error::EngineError;
use crate::runtime::job::JobShared;

/// What travels on the control channel.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
enum Notice {
    /// The id of this run, from worker 0.
    Run(u64),
    /// A process's job failed, with its error in words and whether a restart can get past it.
    Failed {
        process: usize,
        error: String,
        retryable: bool,
    },
}

/// One worker's end of the control channel.
pub(crate) struct Control {
    input: InputHandle<u64, CapacityContainerBuilder<Vec<Notice>>>,
    received: Rc<RefCell<Vec<Notice>>>,
    run: Option<u64>,
}

impl Control {
    /// Joins the control channel (every worker builds it, after the pipeline so that the
    /// pipeline's operators keep their ids); worker 0 proposes the run id.
    pub(crate) fn join(worker: &mut Worker) -> Self {
        let mut input = InputHandle::new();
        let received = Rc::new(RefCell::new(Vec::new()));
        let seen = Rc::clone(&received);
        worker.dataflow::<u64, _, _>(|scope| {
            scope
                .input_from(&mut input)
                .broadcast()
                .inspect(move |notice: &Notice| seen.borrow_mut().push(notice.clone()));
        });
        if worker.index() == 0 {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |since| since.as_nanos() as u64);
            // Never 0: manifests written before runs had ids read as run 0.
            input.send(Notice::Run(
                (nanos ^ (u64::from(std::process::id()) << 40)) | 1,
            ));
            input.flush();
        }
        Control {
            input,
            received,
            run: None,
        }
    }

    /// Steps `worker` until worker 0's run id has arrived, and returns it; `None` if a process
    /// of the job was lost first (worker 0 may have been in it).
    pub(crate) fn run_id(&mut self, worker: &mut Worker, job: &JobShared) -> Option<u64> {
        loop {
            self.poll(job);
            if self.run.is_some() || job.lost_peer() {
                return self.run;
            }
            worker.step_or_park(Some(Duration::from_millis(10)));
        }
    }

    /// Takes in what has arrived: a failure of another process fails this process's job.
    pub(crate) fn poll(&mut self, job: &JobShared) {
        for notice in self.received.borrow_mut().drain(..) {
            match notice {
                Notice::Run(run) => self.run = Some(run),
                Notice::Failed {
                    process,
                    error,
                    retryable,
                } if process != job.process_index() => {
                    job.fail(EngineError::PeerFailed {
                        process,
                        error,
                        retryable,
                    });
                }
                Notice::Failed { .. } => {}
            }
        }
    }

    /// Tells every process that this process's job failed with `error`.
    pub(crate) fn announce_failure(&mut self, job: &JobShared, error: &EngineError) {
        self.input.send(Notice::Failed {
            process: job.process_index(),
            error: error.to_string(),
            retryable: error.is_retryable(),
        });
        self.input.flush();
    }
}

/// How long a network thread that lost its peer waits for the workers to stop before it unwinds.
const WORKERS_STOP_WITHIN: Duration = Duration::from_secs(30);

/// The jobs running in this process that a lost peer process fails.
static WATCHED: Mutex<Vec<Weak<JobShared>>> = Mutex::new(Vec::new());
static HOOK: Once = Once::new();

/// Fails `job` when a connection to another of its processes breaks, instead of letting the
/// panic of timely's network thread print a backtrace.
pub(crate) fn watch_for_lost_peers(job: &Arc<JobShared>) {
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let payload = info.payload();
            let message = payload
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| payload.downcast_ref::<&str>().copied())
                .unwrap_or_default();
            let thread = std::thread::current();
            let name = thread.name().unwrap_or_default();
            let peer = name
                .strip_prefix("timely:recv-")
                .or_else(|| name.strip_prefix("timely:send-"));
            let lost = message.strip_prefix("timely communication error: ");
            let jobs: Vec<Arc<JobShared>> = WATCHED
                .lock()
                .map(|watched| watched.iter().filter_map(Weak::upgrade).collect())
                .unwrap_or_default();
            match (lost, peer) {
                (Some(reason), Some(peer)) if !jobs.is_empty() => {
                    for job in &jobs {
                        job.fail(EngineError::PeerLost {
                            process: job.process_index(),
                            peer: peer.to_owned(),
                            reason: reason.to_owned(),
                        });
                    }
                    // This network thread poisons its queues as it unwinds, and a worker still
                    // stepping would panic on them, then again in a destructor of timely's
                    // while unwinding, which aborts the process. So the thread waits here
                    // until the workers have stopped and dropped their channels.
                    for job in &jobs {
                        job.wait_for_workers(WORKERS_STOP_WITHIN);
                    }
                }
                // What the lost connection brings down after it (timely's threads find their
                // queues poisoned, the join of the network threads fails): reported already.
                _ if jobs.iter().any(|job| job.aborted())
                    && (name == JOIN_THREAD
                        || (name.starts_with("timely:") && message.contains("poisoned"))) => {}
                _ => previous(info),
            }
        }));
    });
    if let Ok(mut watched) = WATCHED.lock() {
        watched.retain(|job| job.strong_count() > 0);
        watched.push(Arc::downgrade(job));
    }
}

/// Stops watching `job`.
pub(crate) fn unwatch(job: &Arc<JobShared>) {
    if let Ok(mut watched) = WATCHED.lock() {
        watched.retain(|watched| !std::ptr::eq(watched.as_ptr(), Arc::as_ptr(job)));
    }
}

/// The name of the thread that joins timely's threads at the end of a job.
pub(crate) const JOIN_THREAD: &str = "weir:join";
