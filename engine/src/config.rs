//! Job configuration: how many workers and processes, key groups, checkpoints, state.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::checkpoint::CheckpointConfig;
use crate::state::StateBackend;
use crate::time::FLOW_TICK;

use crate::error::ConfigError;

/// Where this process sits in a cluster of processes (timely's cluster mode).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cluster {
    /// This process's index, `0..addresses.len()`.
    pub process_index: usize,
    /// The `host:port` address of every process, in process order.
    pub addresses: Vec<String>,
}

impl Cluster {
    /// Reads a host file: one `host:port` per line, in process order; blank lines and lines
    /// starting with `#` are skipped.
    pub fn from_host_file(path: &Path, process_index: usize) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::HostFile {
            path: path.to_owned(),
            source,
        })?;
        let mut addresses = Vec::new();
        for (number, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            if !line.contains(':') {
                return Err(ConfigError::HostLine {
                    path: path.to_owned(),
                    line: number + 1,
                    text: line.to_owned(),
                });
            }
            addresses.push(line.to_owned());
        }
        Ok(Cluster {
            process_index,
            addresses,
        })
    }

    /// A cluster of `processes` processes on this machine, listening on consecutive ports from
    /// `first_port`.
    pub fn localhost(processes: usize, process_index: usize, first_port: u16) -> Self {
        let addresses = (0..processes)
            .map(|index| {
                let port = usize::from(first_port) + index;
                SocketAddr::from(([127, 0, 0, 1], port as u16)).to_string()
            })
            .collect();
        Cluster {
            process_index,
            addresses,
        }
    }
}

/// How a job restarts itself after a retryable failure (an I/O error, a lost peer process):
/// from its latest checkpoint, after a backoff that doubles with each restart. A fatal failure
/// (bad configuration, a rejected record under fail-fast, a damaged checkpoint, a panic) ends
/// the job at once; see [`EngineError::is_retryable`](crate::EngineError::is_retryable).
///
/// ```
/// use std::time::Duration;
/// use weir_engine::RestartPolicy;
/// let policy = RestartPolicy::up_to(5).backoff(Duration::from_millis(100), Duration::from_secs(1));
/// assert_eq!(policy.delay(1), Duration::from_millis(100));
/// assert_eq!(policy.delay(3), Duration::from_millis(400));
/// assert_eq!(policy.delay(5), Duration::from_secs(1));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RestartPolicy {
    /// Restarts allowed over the life of one [`Job::run`](crate::Job::run); 0 never restarts.
    pub max_restarts: u32,
    /// The wait before the first restart.
    pub backoff: Duration,
    /// The longest wait between restarts, however many there were.
    pub max_backoff: Duration,
}

impl RestartPolicy {
    /// Never restarts: the first failure ends the job.
    pub fn never() -> Self {
        RestartPolicy::up_to(0)
    }

    /// Restarts up to `max_restarts` times, waiting 100 ms before the first and at most 10 s.
    pub fn up_to(max_restarts: u32) -> Self {
        RestartPolicy {
            max_restarts,
            backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(10),
        }
    }

    /// Sets the wait before the first restart and the longest wait.
    pub fn backoff(self, first: Duration, max: Duration) -> Self {
        RestartPolicy {
            backoff: first,
            max_backoff: max,
            ..self
        }
    }

    /// The wait before restart number `restart` (1 for the first).
    pub fn delay(&self, restart: u32) -> Duration {
        let doublings = restart.saturating_sub(1).min(31);
        self.backoff
            .saturating_mul(1 << doublings)
            .min(self.max_backoff)
    }
}

impl Default for RestartPolicy {
    fn default() -> Self {
        RestartPolicy::never()
    }
}

/// The configuration of one job run.
///
/// ```
/// use weir_engine::JobConfig;
/// let config = JobConfig::default().workers(2).key_groups(256);
/// assert_eq!(config.total_workers(), 2);
/// ```
#[derive(Clone, Debug)]
pub struct JobConfig {
    /// Worker threads in each process.
    pub workers: usize,
    /// `None` for a single process; otherwise this process's place in the cluster.
    pub cluster: Option<Cluster>,
    /// Number of key groups: the unit in which keyed state moves between workers. Fixed for the
    /// life of a job's state; must be at least the total number of workers.
    pub key_groups: u32,
    /// Checkpoints: `None` runs without them (every record stays in epoch 0, and a failed run
    /// starts over).
    pub checkpoints: Option<CheckpointConfig>,
    /// Where workers keep their working state (RocksDB databases, one per worker).
    pub state_dir: PathBuf,
    /// Where keyed state lives: memory, or RocksDB under a memory budget.
    pub state_backend: StateBackend,
    /// How often sources advance the watermark part of their timestamps (processing time).
    /// Larger values keep batches larger; smaller values lower the latency of window results.
    pub watermark_interval: Duration,
    /// Backpressure: how long a record may be on its way from its source to the sinks. A
    /// source pauses while a sink still waits for records emitted longer ago than this, so
    /// records in flight stay within what the sources read in about twice this time (the
    /// records a sink is writing, and those read while it writes them) and a slow sink slows
    /// the sources instead of filling memory. Longer limits ride out short stalls (a large
    /// checkpoint, a window firing) without pausing; shorter ones hold less in memory.
    pub in_flight_limit: Duration,
    /// Whether and how the job restarts itself from its latest checkpoint after a failure.
    pub restarts: RestartPolicy,
}

impl Default for JobConfig {
    fn default() -> Self {
        JobConfig {
            workers: 1,
            cluster: None,
            key_groups: 128,
            checkpoints: None,
            state_dir: PathBuf::from("weir-state"),
            state_backend: StateBackend::Memory,
            watermark_interval: Duration::from_millis(100),
            in_flight_limit: Duration::from_millis(200),
            restarts: RestartPolicy::never(),
        }
    }
}

impl JobConfig {
    /// Sets the number of worker threads per process.
    pub fn workers(mut self, workers: usize) -> Self {
        self.workers = workers;
        self
    }

    /// Runs as one process of a cluster.
    pub fn cluster(mut self, cluster: Cluster) -> Self {
        self.cluster = Some(cluster);
        self
    }

    /// Sets the number of key groups.
    pub fn key_groups(mut self, key_groups: u32) -> Self {
        self.key_groups = key_groups;
        self
    }

    /// Takes checkpoints as `checkpoints` says (and restores from one if it says so).
    pub fn checkpoints(mut self, checkpoints: CheckpointConfig) -> Self {
        self.checkpoints = Some(checkpoints);
        self
    }

    /// Sets the state directory.
    pub fn state_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.state_dir = dir.into();
        self
    }

    /// Sets where keyed state lives.
    pub fn state_backend(mut self, backend: StateBackend) -> Self {
        self.state_backend = backend;
        self
    }

    /// Sets how often sources advance their watermark.
    pub fn watermark_interval(mut self, interval: Duration) -> Self {
        self.watermark_interval = interval;
        self
    }

    /// Sets how long records may be on their way to the sinks before sources pause.
    pub fn in_flight_limit(mut self, limit: Duration) -> Self {
        self.in_flight_limit = limit;
        self
    }

    /// Restarts the job from its latest checkpoint after retryable failures, as `policy` says.
    pub fn restarts(mut self, policy: RestartPolicy) -> Self {
        self.restarts = policy;
        self
    }

    /// Number of processes in the job.
    pub fn processes(&self) -> usize {
        self.cluster.as_ref().map_or(1, |c| c.addresses.len())
    }

    /// Workers over all processes.
    pub fn total_workers(&self) -> usize {
        self.workers * self.processes()
    }

    /// Checks the configuration for values that cannot run.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.workers == 0 {
            return Err(ConfigError::NoWorkers);
        }
        if let Some(cluster) = &self.cluster {
            if cluster.addresses.is_empty() {
                return Err(ConfigError::NoProcesses);
            }
            if cluster.process_index >= cluster.addresses.len() {
                return Err(ConfigError::ProcessIndex {
                    index: cluster.process_index,
                    processes: cluster.addresses.len(),
                });
            }
        }
        if (self.key_groups as usize) < self.total_workers() {
            return Err(ConfigError::TooFewKeyGroups {
                key_groups: self.key_groups,
                workers: self.total_workers(),
            });
        }
        if self.watermark_interval.is_zero() {
            return Err(ConfigError::ZeroInterval("watermark interval"));
        }
        if self.in_flight_limit < FLOW_TICK {
            return Err(ConfigError::InFlightLimit {
                limit: self.in_flight_limit,
                tick: FLOW_TICK,
            });
        }
        if self.restarts.max_restarts > 0 && self.checkpoints.is_none() {
            return Err(ConfigError::RestartsNeedCheckpoints);
        }
        if let Some(checkpoints) = &self.checkpoints {
            if checkpoints.interval.is_zero() {
                return Err(ConfigError::ZeroInterval("checkpoint interval"));
            }
            if checkpoints.retain == 0 {
                return Err(ConfigError::NoRetainedCheckpoints);
            }
        }
        Ok(())
    }

    /// The timely configuration for this job.
    pub(crate) fn timely_config(&self) -> timely::Config {
        let communication = match &self.cluster {
            None if self.workers == 1 => timely::CommunicationConfig::Thread,
            None => timely::CommunicationConfig::Process(self.workers),
            Some(cluster) => timely::CommunicationConfig::Cluster {
                threads: self.workers,
                process: cluster.process_index,
                addresses: cluster.addresses.clone(),
                report: false,
                zerocopy: false,
            },
        };
        timely::Config {
            communication,
            worker: timely::WorkerConfig::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_impossible_configurations() {
        assert!(matches!(
            JobConfig::default().workers(0).validate(),
            Err(ConfigError::NoWorkers)
        ));
        assert!(matches!(
            JobConfig::default().workers(4).key_groups(2).validate(),
            Err(ConfigError::TooFewKeyGroups { .. })
        ));
        assert!(matches!(
            JobConfig::default()
                .restarts(RestartPolicy::up_to(3))
                .validate(),
            Err(ConfigError::RestartsNeedCheckpoints)
        ));
        let cluster = Cluster::localhost(2, 2, 4000);
        assert!(matches!(
            JobConfig::default().cluster(cluster).validate(),
            Err(ConfigError::ProcessIndex {
                index: 2,
                processes: 2
            })
        ));
    }

    #[test]
    fn host_file_lines_are_checked() {
        let dir = std::env::temp_dir().join(format!("weir-hosts-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let good = dir.join("good");
        std::fs::write(&good, "# cluster\n127.0.0.1:4000\n\n127.0.0.1:4001\n").unwrap();
        let cluster = Cluster::from_host_file(&good, 1).unwrap();
        assert_eq!(cluster.addresses, ["127.0.0.1:4000", "127.0.0.1:4001"]);
        let bad = dir.join("bad");
        std::fs::write(&bad, "127.0.0.1:4000\nnot-an-address\n").unwrap();
        let error = Cluster::from_host_file(&bad, 0).unwrap_err().to_string();
        assert!(error.contains("line 2"), "{error}");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
