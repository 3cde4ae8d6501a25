//! The arguments every command that runs a job shares: the job's workers, checkpoints,
//! state and cluster ([`JobArgs`]), and where its results and dead letters go
//! ([`OutputArgs`]).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::bail;
use clap::Args;
use weir::kafka::KafkaSink;
use weir::log::{LogConfig, LogSink, Topic, ValueFormat};
use weir::{
    CheckpointConfig, Cluster, Destination, JobConfig, JsonLinesSink, Pipeline, RestartPolicy,
    Restore, StateBackend,
};

use crate::arguments::{parse_duration, parse_kafka_option, Location};

/// How a job runs: workers, checkpoints, state and cluster.
#[derive(Args, Clone)]
pub struct JobArgs {
    /// Worker threads per process.
    #[arg(long, default_value_t = 1)]
    pub workers: usize,
    /// Take checkpoints into this directory (RocksDB checkpoints, source offsets, manifests).
    #[arg(long)]
    pub checkpoint_dir: Option<PathBuf>,
    /// How often to checkpoint, as `500ms`, `1s` or `2m`.
    #[arg(long, default_value = "5s", value_parser = parse_duration, allow_hyphen_values = true, requires = "checkpoint_dir")]
    pub checkpoint_interval: Duration,
    /// Complete checkpoints to keep.
    #[arg(long, default_value_t = 3, requires = "checkpoint_dir")]
    pub retain_checkpoints: usize,
    /// Resume from a checkpoint: `latest` (the newest in --checkpoint-dir; a fresh start if
    /// there is none) or the path of a checkpoint or savepoint directory.
    #[arg(long, requires = "checkpoint_dir")]
    pub restore: Option<String>,
    /// Restore even if the checkpoint holds state of stateful operators this query no longer
    /// has, dropping that state (without it such a restore fails, naming the operators).
    #[arg(long, requires = "restore")]
    pub allow_removed_operators: bool,
    /// After a retryable failure (I/O, a lost peer process), restart from the latest
    /// checkpoint up to this many times, waiting 100 ms before the first restart and twice as
    /// long before each next one (at most 10 s).
    #[arg(long, default_value_t = 0, requires = "checkpoint_dir")]
    pub max_restarts: u32,
    /// Backpressure: sources pause while records they read longer ago than this have not yet
    /// reached the sinks (`100ms`, `1s`). Records in flight stay within what the sources read
    /// in about twice this time.
    #[arg(long, default_value = "200ms", value_parser = parse_duration)]
    pub in_flight_limit: Duration,
    /// Keep keyed state in RocksDB (under --state-dir) with this many MiB of it cached in
    /// memory per operator, instead of all in memory.
    #[arg(long)]
    pub rocksdb_budget_mib: Option<usize>,
    /// Where RocksDB state goes.
    #[arg(long, default_value = "weir-state")]
    pub state_dir: PathBuf,
    /// Number of processes in the job (each started with its own --process), listening on
    /// 127.0.0.1 from --port up.
    #[arg(long, default_value_t = 1, conflicts_with = "hostfile")]
    pub processes: usize,
    /// This process's index, 0 to processes - 1.
    #[arg(long, default_value_t = 0)]
    pub process: usize,
    /// A file of `host:port` lines, one per process, instead of --processes.
    #[arg(long)]
    pub hostfile: Option<PathBuf>,
    /// The first port of a single-machine cluster.
    #[arg(long, default_value_t = 2101)]
    pub port: u16,
}

impl JobArgs {
    /// The job's configuration, checked.
    pub fn config(&self) -> anyhow::Result<JobConfig> {
        let mut config = JobConfig::default()
            .workers(self.workers)
            .state_dir(&self.state_dir)
            .in_flight_limit(self.in_flight_limit);
        if let Some(budget) = self.rocksdb_budget_mib {
            config = config.state_backend(StateBackend::RocksDb {
                memory_budget: budget << 20,
            });
        }
        if let Some(dir) = &self.checkpoint_dir {
            let mut checkpoints = CheckpointConfig::new(dir)
                .interval(self.checkpoint_interval)
                .retain(self.retain_checkpoints)
                .allow_removed_operators(self.allow_removed_operators);
            match self.restore.as_deref() {
                None => {}
                Some("latest") => checkpoints = checkpoints.restore(Restore::Latest),
                Some(path) => checkpoints = checkpoints.restore(Restore::Path(path.into())),
            }
            config = config.checkpoints(checkpoints);
        }
        if self.max_restarts > 0 {
            config = config.restarts(RestartPolicy::up_to(self.max_restarts));
        }
        if self.processes > 1 || self.hostfile.is_some() {
            let cluster = match &self.hostfile {
                Some(path) => Cluster::from_host_file(path, self.process)?,
                None => Cluster::localhost(self.processes, self.process, self.port),
            };
            config = config.cluster(cluster);
        }
        config.validate()?;
        if config.cluster.is_none() && self.process != 0 {
            bail!(
                "--process {} needs a cluster: give --processes or --hostfile",
                self.process
            );
        }
        Ok(config)
    }
}

/// Where a job's results and dead letters go.
#[derive(Args, Clone)]
pub struct OutputArgs {
    /// Write the results as JSON lines to this file, to `log:DIR/TOPIC` or to
    /// `kafka:HOST:PORT/TOPIC` (topics are created with one partition if missing).
    /// Otherwise they are counted and dropped. With checkpoints the output is exactly-once:
    /// a topic receives each result once (Kafka through transactions, its epochs staged
    /// under the checkpoint directory), and a path names a directory of JSON lines part
    /// files, one per committed checkpoint epoch.
    #[arg(long)]
    pub out: Option<Location>,
    /// A librdkafka setting for Kafka clients, as `key=value` (repeatable), e.g.
    /// `security.protocol=SASL_SSL`.
    #[arg(long = "kafka-option", value_parser = parse_kafka_option)]
    pub kafka_options: Vec<(String, String)>,
    /// Write a Kafka output at least once even with checkpoints: no transactions (for brokers
    /// without them); a restore writes again what followed the restored checkpoint.
    #[arg(long)]
    pub kafka_at_least_once: bool,
    /// Write input that cannot be decoded here, with the reason and the place it was found:
    /// a JSON lines file (left out when there is none; a directory of part files with
    /// checkpoints), `log:DIR/TOPIC` (created as a JSON topic of one partition if missing) or
    /// `kafka:HOST:PORT/TOPIC` (at least once: a restore may write one again).
    #[arg(
        long,
        default_value = "dead-letters.jsonl",
        conflicts_with = "fail_fast"
    )]
    pub dead_letters: Location,
    /// Stop at the first input that cannot be decoded instead of writing dead letters.
    #[arg(long)]
    pub fail_fast: bool,
}

impl OutputArgs {
    /// `location` with this command's Kafka client settings.
    pub fn with_kafka_options(&self, location: Location) -> Location {
        location.with_kafka_options(&self.kafka_options)
    }

    /// Where the results go; a Kafka output of a job with checkpoints stages its epochs
    /// under `checkpoint_dir` (exactly-once) unless told to write at least once.
    pub fn destination(&self, checkpoint_dir: Option<&PathBuf>) -> Destination {
        match self.out.clone().map(|out| self.with_kafka_options(out)) {
            None => Destination::Discard,
            Some(Location::File(path)) => Destination::JsonLines(path),
            Some(Location::Log(dir)) => Destination::Log(dir),
            Some(Location::Kafka(client)) => Destination::Kafka {
                client,
                staging: checkpoint_dir
                    .filter(|_| !self.kafka_at_least_once)
                    .map(|dir| dir.join("kafka-staging")),
            },
        }
    }

    /// ` -> OUT` when the results go somewhere, for a run's summary line.
    pub fn arrow(&self) -> String {
        self.out
            .as_ref()
            .map(|out| format!(" -> {out}"))
            .unwrap_or_default()
    }

    /// Where dead letters go; none with `--fail-fast`.
    pub fn dead_letter_location(&self) -> Option<Location> {
        (!self.fail_fast).then(|| self.with_kafka_options(self.dead_letters.clone()))
    }

    /// Creates the output and dead-letter topics that are missing: one partition, JSON
    /// values.
    pub fn create_topics(&self) -> anyhow::Result<()> {
        for location in [self.out.clone(), self.dead_letter_location()]
            .into_iter()
            .flatten()
        {
            match self.with_kafka_options(location) {
                Location::Log(dir) if Topic::open(&dir).is_err() => {
                    Topic::create(&dir, 1, ValueFormat::Json, LogConfig::default())?;
                }
                Location::Kafka(client) => client.ensure_topic(1, &[])?,
                _ => {}
            }
        }
        Ok(())
    }
}

/// Sends the dead letters of the job that `p` builds to `location`.
pub fn route_dead_letters(p: &mut Pipeline<'_>, location: Option<&Location>) {
    match location {
        Some(Location::File(path)) => p.dead_letters_to(JsonLinesSink::create(path).skip_empty()),
        Some(Location::Log(dir)) => p.dead_letters_to(LogSink::new(dir)),
        // At least once: a restore may write a dead letter again, never loses one.
        Some(Location::Kafka(client)) => {
            p.dead_letters_to(KafkaSink::new(client.clone()).at_least_once())
        }
        None => {}
    }
}
