//! What every operator of a worker's pipeline is built with: the process's shared job state,
//! the worker, its checkpoints, its alarms, and the names of the stateful operators built so
//! far.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;

use crate::checkpoint::Checkpoints;
use crate::operator_names::OperatorNames;

use super::clock::Alarms;
use super::job::{JobShared, WorkerInfo};

/// What every operator of a worker's pipeline is built with.
#[derive(Clone)]
pub(crate) struct Context {
    pub(crate) job: Arc<JobShared>,
    pub(crate) worker: WorkerInfo,
    pub(crate) checkpoints: Checkpoints,
    /// How this worker's operators ask to run again after a while.
    pub(crate) alarms: Alarms,
    /// The stateful operators built so far, by their stable names.
    pub(crate) operators: Rc<RefCell<OperatorNames>>,
}

impl Context {
    /// The context of `worker`'s pipeline, with no operator named yet.
    pub(crate) fn new(job: Arc<JobShared>, worker: WorkerInfo, checkpoints: Checkpoints) -> Self {
        Context {
            alarms: Alarms::new(job.clock.clone()),
            job,
            worker,
            checkpoints,
            operators: Rc::default(),
        }
    }
}
