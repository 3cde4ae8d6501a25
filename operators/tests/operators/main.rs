//! The operators' tests against plain references, in one test binary: one link and one build
//! of the code they share, instead of one per file.

mod common;
mod joins;
mod updating;
mod windows;
