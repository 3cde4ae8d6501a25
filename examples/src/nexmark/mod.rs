//! The Nexmark queries, as weir pipelines over a stream of [`Event`]s.

mod bid_statistics;
mod early_bids;
mod projections;
mod q11;
mod q12;
mod q13;
mod q17;
mod q18;
mod q19;
mod q5;
mod q7;
mod q8;
mod queries;
mod regular_joins;
mod winning_bids;

pub use bid_statistics::{q15, q16, Q15Row, Q16Row};
pub use early_bids::{early_bids, EarlyBidRow, EARLY};
pub use projections::{q14, q21, q22, Q14Row, Q21Row, Q22Row};
pub use q11::{q11, Q11Row, Q11_GAP};
pub use q12::{q12, Q12Row, Q12_WINDOW};
pub use q13::{q13, write_side_input, Q13Row, SideRow, SIDE_KEYS};
pub use q17::{q17, Q17Row, DAY, RANK1_BELOW, RANK2_BELOW};
pub use q18::q18;
pub use q19::{q19, Q19Row, Q19_TOP};
pub use q5::{q5, Q5Row, Q5_SLIDE, Q5_WINDOW};
pub use q7::{q7, Q7Row, Q7_WINDOW};
pub use q8::{q8, Q8Row, Q8_WINDOW};
pub use queries::{q0, q1, q2, select_bids, Q0Row, Q1Row, Q2Row, Query};
pub use regular_joins::{q20, q3, Q20Row, Q3Row};
pub use winning_bids::{q4, q9, Q4Row, Q9Row};
