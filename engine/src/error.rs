//! The engine's error types.

use std::path::PathBuf;

/// Any error a user's source, sink or pipeline-building code returns.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// A job configuration that cannot run.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// `workers` was zero.
    #[error("a job needs at least one worker per process")]
    NoWorkers,
    /// The cluster has no addresses.
    #[error("a cluster needs at least one process address")]
    NoProcesses,
    /// The process index is outside the cluster.
    #[error("process index {index} is out of range for a cluster of {processes} processes")]
    ProcessIndex {
        /// The index given.
        index: usize,
        /// The number of processes.
        processes: usize,
    },
    /// Fewer key groups than workers would leave workers without keys.
    #[error("{key_groups} key groups cannot be spread over {workers} workers: use at least one key group per worker")]
    TooFewKeyGroups {
        /// Key groups configured.
        key_groups: u32,
        /// Workers over all processes.
        workers: usize,
    },
    /// `retain` was zero.
    #[error("a job with checkpoints must keep at least one")]
    NoRetainedCheckpoints,
    /// Restarts were asked for without checkpoints to restart from.
    #[error("a job restarts from its latest checkpoint: restarts need checkpoints")]
    RestartsNeedCheckpoints,
    /// An interval was zero.
    #[error("the {0} must be longer than zero")]
    ZeroInterval(&'static str),
    /// The in-flight limit was shorter than a flow tick, the step in which sources tell
    /// processing time.
    #[error("the in-flight limit ({limit:?}) must be at least one flow tick ({tick:?})")]
    InFlightLimit {
        /// The limit asked for.
        limit: std::time::Duration,
        /// The flow tick.
        tick: std::time::Duration,
    },
    /// The host file could not be read.
    #[error("cannot read host file {path}: {source}")]
    HostFile {
        /// The host file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A host file line is not `host:port`.
    #[error("host file {path}, line {line}: expected host:port, found {text:?}")]
    HostLine {
        /// The host file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// The offending line.
        text: String,
    },
}

/// Why a job failed.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The configuration cannot run.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// timely could not start the workers (for example, a cluster peer is unreachable).
    #[error("cannot start the workers: {0}")]
    Launch(String),
    /// The user's pipeline-building code failed.
    #[error("building the pipeline failed: {0}")]
    Build(BoxError),
    /// A source failed.
    #[error("source {name:?} failed on worker {worker}: {source}")]
    Source {
        /// The source's name.
        name: String,
        /// The global worker index.
        worker: usize,
        /// The source's error.
        source: BoxError,
    },
    /// A sink failed.
    #[error("sink {name:?} failed on worker {worker}: {source}")]
    Sink {
        /// The sink's name.
        name: String,
        /// The global worker index.
        worker: usize,
        /// The sink's error.
        source: BoxError,
    },
    /// The state backend failed in a keyed operator.
    #[error("state of operator {operator:?} on worker {worker}: {source}")]
    State {
        /// The operator's name.
        operator: String,
        /// The worker.
        worker: usize,
        /// What failed.
        source: crate::StateError,
    },
    /// Taking, committing or restoring a checkpoint failed.
    #[error("checkpoint: {0}")]
    Checkpoint(#[from] crate::CheckpointError),
    /// A source rejected a record and the job has no dead-letter output (fail-fast).
    #[error("rejected input: {0} (set a dead-letter output to keep running past bad records)")]
    DeadLetter(Box<crate::DeadLetter>),
    /// Another process of the job failed: the job stops on every process.
    #[error("process {process} of the job failed: {error}")]
    PeerFailed {
        /// The process that failed.
        process: usize,
        /// Its error, in words.
        error: String,
        /// Whether its error is one a restart can get past.
        retryable: bool,
    },
    /// Another process of the job ended or became unreachable: the job cannot go on, on
    /// any of its processes.
    #[error("process {process} lost process {peer} of the job ({reason}): the job stops on every process; start them all again, restoring from the latest checkpoint to resume")]
    PeerLost {
        /// This process's index.
        process: usize,
        /// The process it lost.
        peer: String,
        /// What the connection reported.
        reason: String,
    },
    /// A worker thread panicked: a bug in weir or in user code.
    #[error("a worker panicked: {0}")]
    WorkerPanicked(String),
}

impl EngineError {
    /// Whether a restart from the latest checkpoint can get past this failure: an I/O error
    /// (of a source, a sink, the state store or the checkpoint directory), a lost or failed
    /// peer process, workers that could not start. Bad configuration, a rejected record under
    /// fail-fast, damaged input or checkpoints, and panics are fatal: a restart would meet
    /// them again.
    pub fn is_retryable(&self) -> bool {
        match self {
            EngineError::Launch(_) | EngineError::PeerLost { .. } => true,
            EngineError::PeerFailed { retryable, .. } => *retryable,
            EngineError::Source { source, .. } | EngineError::Sink { source, .. } => {
                caused_by_io(source.as_ref())
            }
            EngineError::State { source, .. } => state_is_retryable(source),
            EngineError::Checkpoint(error) => match error {
                crate::CheckpointError::Io { .. } => true,
                crate::CheckpointError::State(source) => state_is_retryable(source),
                _ => false,
            },
            EngineError::Config(_)
            | EngineError::Build(_)
            | EngineError::DeadLetter(_)
            | EngineError::WorkerPanicked(_) => false,
        }
    }
}

/// The state store's I/O can fail for a while (a full disk); its data cannot be mended by
/// reading it again.
fn state_is_retryable(error: &crate::StateError) -> bool {
    matches!(
        error,
        crate::StateError::Store { .. } | crate::StateError::Io { .. }
    )
}

/// Whether an `std::io::Error` is among the causes of a user's source or sink error. Errors
/// that say the data itself is wrong (`InvalidData`) are not.
fn caused_by_io(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(error);
    while let Some(error) = cause {
        if let Some(io) = error.downcast_ref::<std::io::Error>() {
            return io.kind() != std::io::ErrorKind::InvalidData;
        }
        cause = error.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source_error(source: BoxError) -> EngineError {
        EngineError::Source {
            name: "s".into(),
            worker: 0,
            source,
        }
    }

    #[derive(Debug, thiserror::Error)]
    #[error("reading {0}")]
    struct Wrapped(#[source] std::io::Error);

    #[test]
    fn io_errors_anywhere_in_the_chain_are_retryable_and_bad_data_is_not() {
        let timeout = std::io::Error::new(std::io::ErrorKind::TimedOut, "slow disk");
        assert!(source_error(Box::new(Wrapped(timeout))).is_retryable());
        let bad = std::io::Error::new(std::io::ErrorKind::InvalidData, "not JSON");
        assert!(!source_error(Box::new(Wrapped(bad))).is_retryable());
        assert!(!source_error("bad record".into()).is_retryable());
        assert!(!EngineError::Config(ConfigError::NoWorkers).is_retryable());
        let peer = |retryable| EngineError::PeerFailed {
            process: 1,
            error: "x".into(),
            retryable,
        };
        assert!(peer(true).is_retryable());
        assert!(!peer(false).is_retryable());
    }
}
