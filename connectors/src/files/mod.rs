//! Files: JSON lines and CSV in and out, Parquet out. Sinks write a hidden partial file and
//! publish it by rename when the job's output is complete, or, in a job with checkpoints, a
//! directory of part files published one epoch at a time; a partitioned sink writes each
//! record under the directory its content names.

mod csv;
mod format;
mod json_lines;
mod part_files;
mod part_ledger;
mod partitioned;
mod sink;
mod staged_file;

pub use self::csv::{CsvReader, CsvSource};
pub use self::format::{Csv, EncodeRecords, FileFormat, JsonLines, Parquet};
pub use self::json_lines::{write_json_lines, JsonLinesReader, JsonLinesSource};
#[cfg(fuzzing)]
pub(crate) use self::part_files::fuzz_recover;
pub use self::partitioned::PartitionedFileSink;
pub use self::sink::{CsvSink, FileSink, JsonLinesSink, ParquetSink};
