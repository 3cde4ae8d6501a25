//! Runnable weir jobs: the Nexmark queries, and the pieces of the `weir` command line.

pub mod arguments;
#[cfg(fuzzing)]
pub mod fuzzing;
pub mod nexmark;
