//! Where a job's results go, chosen at run time (a command line's `--out`): discarded, a JSON
//! lines file, a topic of the embedded log or a Kafka topic.

use std::path::PathBuf;

use crate::files::{JsonLinesSink, PartitionedFileSink};
#[cfg(feature = "kafka")]
use crate::kafka::{KafkaClient, KafkaSink};
use crate::log::LogSink;
use weir_engine::{Data, DiscardSink, Stream};

/// The sink of a job's results.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Destination {
    /// Counted and dropped (for benchmarks).
    Discard,
    /// JSON lines: one file, or with checkpoints a directory of part files.
    JsonLines(PathBuf),
    /// A topic of the embedded log (exactly-once with checkpoints).
    Log(PathBuf),
    /// A Kafka topic: exactly-once with checkpoints (transactions), epochs staged in
    /// `staging` until their checkpoint completes.
    #[cfg(feature = "kafka")]
    Kafka {
        /// The brokers, the topic and client settings.
        client: KafkaClient,
        /// Where epochs are staged (beside the checkpoints); without one, at-least-once.
        staging: Option<PathBuf>,
    },
}

impl Destination {
    /// Writes `rows` here.
    pub fn append<T: Data>(&self, rows: Stream<'_, T>) {
        match self {
            Destination::Discard => rows.sink(DiscardSink),
            Destination::JsonLines(path) => rows.sink(JsonLinesSink::create(path)),
            Destination::Log(dir) => rows.sink(LogSink::new(dir)),
            #[cfg(feature = "kafka")]
            Destination::Kafka { client, staging } => {
                let sink = KafkaSink::new(client.clone());
                rows.sink(match staging {
                    Some(dir) => sink.staging_dir(dir),
                    None => sink.at_least_once(),
                })
            }
        }
    }

    /// Writes `rows` here, a JSON lines output as a directory of partitions, each row under
    /// the relative path `partition_of` names (`dt=2015-07-15/hour=10`); other sinks receive
    /// the rows as [`Destination::append`] writes them.
    pub fn partitioned<T: Data>(&self, rows: Stream<'_, T>, partition_of: fn(&T) -> String) {
        match self {
            Destination::JsonLines(root) => {
                rows.sink(PartitionedFileSink::json_lines(root, partition_of))
            }
            _ => self.append(rows),
        }
    }
}
