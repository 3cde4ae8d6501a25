//! The connectors' integration tests, in one test binary: one link and one build of the code
//! they share, instead of one per file.

// Test helpers panic on purpose: a failed set-up step is a failed test.
#![allow(clippy::unwrap_used)]

mod files;
mod log;
mod log_compaction;
mod log_source;
