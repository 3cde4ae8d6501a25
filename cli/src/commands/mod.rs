//! The command line's parts: one module per command group.

pub mod bench;
pub mod chart;
pub mod checkpoints;
pub mod example;
pub mod job_args;
pub mod log;
pub mod metrics_endpoint;
pub mod nexmark;
pub mod progress;
pub mod resources;
pub mod run_report;
pub mod schema;

pub use bench::BenchCommand;
pub use checkpoints::CheckpointsCommand;
pub use example::ExampleCommand;
pub use log::LogCommand;
pub use nexmark::NexmarkCommand;
pub use schema::SchemaCommand;
