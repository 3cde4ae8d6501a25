//! Runnable weir jobs: the Nexmark queries, and the pieces of the `weir` command line.

pub mod nexmark;
