//! The embedded partitioned log: weir's own Kafka-like storage, so that a job needs no broker.
//!
//! A [`Topic`] is a directory with `topic.json` and one sub-directory per partition. A
//! partition is a sequence of append-only segment files of checksummed records with a sparse
//! offset index; offsets number a partition's records from 0, as in Kafka.
//!
//! ```
//! use weir_connectors::log::{LogConfig, RecordRef, Topic, ValueFormat};
//! use weir_engine::EventTime;
//!
//! let dir = tempfile::tempdir()?;
//! let topic = Topic::create(dir.path().join("bids"), 2, ValueFormat::Json, LogConfig::default())?;
//! let mut producer = topic.producer()?;
//! producer.send(&RecordRef {
//!     key: b"auction-7",
//!     value: br#"{"price":3}"#,
//!     timestamp: EventTime(1000),
//!     headers: &[],
//! })?;
//! producer.flush()?;
//!
//! let mut values = Vec::new();
//! for partition in 0..topic.partitions() {
//!     let mut reader = topic.reader(partition, 0)?;
//!     reader.read(100, |record| values.push(record.value.to_vec()))?;
//! }
//! assert_eq!(values, vec![br#"{"price":3}"#.to_vec()]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod compaction;
mod partition;
pub(crate) mod record;
mod retention;
pub(crate) mod segment;
mod sink;
mod source;
mod topic;
pub(crate) mod transaction;

pub use crate::start_at::StartAt;
pub use compaction::CompactionReport;
pub use partition::{Cleanup, LogConfig, PartitionReader, PartitionWriter, Skipped, TornTail};
pub use record::{RecordRef, RecordView};
pub use sink::LogSink;
pub use source::{LogReader, LogSource};
pub use topic::{partition_for_key, PartitionDescription, Producer, Topic, ValueFormat};
