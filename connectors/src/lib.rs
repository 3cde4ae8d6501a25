//! weir's connectors: the embedded partitioned log, Kafka, files (JSON lines, CSV, Parquet)
//! and the codecs of their values. Any of their sinks can take a job's dead letters.

mod codec;
pub mod datetime;
mod destination;
mod durable;
mod error;
pub mod files;
#[cfg(fuzzing)]
pub mod fuzzing;
#[cfg(feature = "kafka")]
pub mod kafka;
pub mod log;
mod pace;
mod staging;
mod start_at;

pub use codec::Codec;
pub use destination::Destination;
pub use error::ConnectorError;
pub use files::{
    write_json_lines, CsvSink, CsvSource, JsonLinesSink, JsonLinesSource, ParquetSink,
};
