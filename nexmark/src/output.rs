//! Where a query's results go: the sink, and for updating queries whether the changelog or
//! the final view is written.

use std::path::PathBuf;

use weir::files::PartitionedFileSink;
use weir::kafka::{KafkaClient, KafkaSink};
use weir::log::LogSink;
use weir::operators::changelog::Change;
use weir::{Data, DiscardSink, JsonLinesSink, Stream};

/// Where q13's standard side table is written and read unless told otherwise.
pub const DEFAULT_SIDE_TABLE: &str = "nexmark-side-input.csv";

/// The sink of a query's results.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ResultSink {
    /// Counted and dropped (for benchmarks).
    Discard,
    /// JSON lines: one file, or with checkpoints a directory of part files.
    JsonLines(PathBuf),
    /// A topic of the embedded log (exactly-once with checkpoints).
    Log(PathBuf),
    /// A Kafka topic: exactly-once with checkpoints (transactions), epochs staged in
    /// `staging` until their checkpoint completes.
    Kafka {
        /// The brokers, the topic and client settings.
        client: KafkaClient,
        /// Where epochs are staged (beside the checkpoints); without one, at-least-once.
        staging: Option<PathBuf>,
    },
}

/// How a query writes its results.
#[derive(Clone, Debug)]
pub struct Output {
    /// Where the results go.
    pub sink: ResultSink,
    /// For updating queries: write each change as `{"op":"+"|"-","row":{...}}` instead of
    /// the view that holds when the input ends.
    pub changelog: bool,
    /// The CSV side table of queries that read one (q13).
    pub side_table: PathBuf,
}

impl Output {
    /// Results counted and dropped; the standard side table's default place.
    pub fn discard() -> Self {
        Output {
            sink: ResultSink::Discard,
            changelog: false,
            side_table: PathBuf::from(DEFAULT_SIDE_TABLE),
        }
    }

    /// Writes rows that only append.
    pub fn append<T: Data>(&self, rows: Stream<'_, T>) {
        match &self.sink {
            ResultSink::Discard => rows.sink(DiscardSink),
            ResultSink::JsonLines(path) => rows.sink(JsonLinesSink::create(path)),
            ResultSink::Log(dir) => rows.sink(LogSink::new(dir)),
            ResultSink::Kafka { client, staging } => {
                let sink = KafkaSink::new(client.clone());
                rows.sink(match staging {
                    Some(dir) => sink.staging_dir(dir),
                    None => sink.at_least_once(),
                })
            }
        }
    }

    /// Writes rows that only append, a JSON lines output as a directory of partitions, each
    /// row under the relative path `partition_of` names (`dt=2015-07-15/hour=10`); other
    /// sinks receive the rows as [`Output::append`] writes them.
    pub fn partitioned<T: Data>(&self, rows: Stream<'_, T>, partition_of: fn(&T) -> String) {
        match &self.sink {
            ResultSink::JsonLines(root) => {
                rows.sink(PartitionedFileSink::json_lines(root, partition_of))
            }
            _ => self.append(rows),
        }
    }

    /// Writes an updating query's changes: as they are with [`Output::changelog`], otherwise
    /// the view `view` makes of them when the input ends.
    pub fn updates<'s, T: Data>(
        &self,
        changes: Stream<'s, Change<T>>,
        view: impl FnOnce(Stream<'s, Change<T>>) -> Stream<'s, T>,
    ) {
        if self.changelog {
            self.append(changes);
        } else {
            self.append(view(changes));
        }
    }
}
