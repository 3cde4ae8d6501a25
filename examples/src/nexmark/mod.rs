//! The Nexmark queries, as weir pipelines over a stream of [`Event`]s.

mod queries;

pub use queries::{bids, q0, q1, q2, Q0Row, Q1Row, Q2Row, Query};
