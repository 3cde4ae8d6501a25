//! The connectors' integration tests, in one test binary: one link and one build of the code
//! they share, instead of one per file.

mod files;
mod log;
mod log_source;
