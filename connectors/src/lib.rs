//! weir's connectors: the Nexmark generator and JSON lines files.

pub mod datetime;
mod error;
mod jsonl;
pub mod nexmark;

pub use error::ConnectorError;
pub use jsonl::{write_json_lines, JsonLinesSink};
