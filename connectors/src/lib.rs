//! weir's connectors: the embedded partitioned log, Kafka, files (JSON lines, CSV, Parquet)
//! and the codecs of their values. Any of their sinks can take a job's dead letters.

mod checks;
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
pub mod schema;
mod staging;
mod start_at;

pub use checks::{decode_with_serde, CheckRecords, Checks, Decode, Encoded};
pub use codec::Codec;
pub use destination::Destination;
pub use error::ConnectorError;
pub use files::{
    write_json_lines, CsvSink, CsvSource, JsonLinesSink, JsonLinesSource, ParquetSink,
};
