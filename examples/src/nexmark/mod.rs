//! The Nexmark queries, as weir pipelines over a stream of [`Event`]s.

mod queries;

pub use queries::{q0, q1, q2, select_bids, Q0Row, Q1Row, Q2Row, Query};
