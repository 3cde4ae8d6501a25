//! weir's connectors: the embedded partitioned log, files, dead letters and the Nexmark
//! generator.

mod codec;
pub mod datetime;
mod error;
mod jsonl;
pub mod log;
pub mod nexmark;

pub use codec::Codec;
pub use error::ConnectorError;
pub use jsonl::{write_json_lines, JsonLinesSink};
