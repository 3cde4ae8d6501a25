//! Files: JSON lines and CSV in and out, Parquet out. Sinks write a hidden partial file and
//! publish it by rename when the job's output is complete.

mod csv;
mod json_lines;
mod parquet;
mod staged_file;

pub use self::csv::{CsvReader, CsvSink, CsvSource};
pub use self::json_lines::{write_json_lines, JsonLinesReader, JsonLinesSink, JsonLinesSource};
pub use self::parquet::ParquetSink;
