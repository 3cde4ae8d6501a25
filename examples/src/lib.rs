//! Example jobs for data teams: the everyday pipelines of event-driven systems, each a small
//! program to read top to bottom and copy, with the sample data it runs on.
//!
//! | example | what it shows |
//! | --- | --- |
//! | [`word_count`] | `flat_map`, a running count per key, the same count per minute |
//! | [`sessions`] | session windows with a custom aggregation |
//! | [`fraud`] | a keyed process with state and event-time timers |
//! | [`orders`] | dedupe of at-least-once deliveries, then revenue per minute |
//! | [`latest_state`] | a Debezium changelog turned into the current table |
//! | [`sensors`] | validation to dead letters, allowed lateness, late records kept aside |
//!
//! `weir example list` shows them; `weir example data NAME --out ...` writes an example's
//! sample input and `weir example run NAME --from ...` runs it. Each is registered in
//! [`EXAMPLES`], the way the Nexmark queries are.

pub mod fraud;
mod io;
pub mod latest_state;
pub mod orders;
mod random;
mod registry;
pub mod sensors;
pub mod sessions;
pub mod word_count;

pub use io::{write_sample, ExampleInput, ExampleOutput, Origin, SampleLine};
pub use registry::{example, Example, EXAMPLES};
