//! weir's connectors: the embedded partitioned log, files, dead letters and the Nexmark
//! generator.

mod codec;
pub mod datetime;
mod durable;
mod error;
pub mod files;
#[cfg(fuzzing)]
pub mod fuzzing;
pub mod log;
pub mod nexmark;

pub use codec::Codec;
pub use error::ConnectorError;
pub use files::{
    write_json_lines, CsvSink, CsvSource, JsonLinesSink, JsonLinesSource, ParquetSink,
};
