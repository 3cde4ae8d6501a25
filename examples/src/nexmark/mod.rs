//! The Nexmark queries, as weir pipelines over a stream of [`Event`]s.

mod q5;
mod queries;

pub use q5::{q5, Q5Row, Q5_SLIDE, Q5_WINDOW};
pub use queries::{q0, q1, q2, select_bids, Q0Row, Q1Row, Q2Row, Query};
