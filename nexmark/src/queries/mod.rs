//! The Nexmark queries, as weir pipelines over a stream of [`Event`](crate::Event)s: one file
//! per query, or per family of queries that share their operators, each ending with the
//! queries' [`Query`](crate::Query) descriptors for the registry.

pub mod bid_statistics;
pub mod bids;
pub mod early_bids;
pub mod projections;
pub mod q0;
pub mod q1;
pub mod q10;
pub mod q11;
pub mod q12;
pub mod q13;
pub mod q17;
pub mod q18;
pub mod q19;
pub mod q2;
pub mod q5;
pub mod q6;
pub mod q7;
pub mod q8;
pub mod regular_joins;
pub mod winning_bids;

pub use bid_statistics::{q15, q16, Q15Row, Q16Row};
pub use bids::{auctions_and_their_bids, select_bids};
pub use early_bids::{early_bids, EarlyBidRow, EARLY};
pub use projections::{q14, q21, q22, Q14Row, Q21Row, Q22Row};
pub use q0::{q0, Q0Row};
pub use q1::{q1, Q1Row, DOLLAR_TO_EURO};
pub use q10::{date_and_hour, q10, Q10Row};
pub use q11::{q11, Q11Row, Q11_GAP};
pub use q12::{q12, Q12Row, Q12_WINDOW};
pub use q13::{q13, write_side_input, Q13Row, SideRow, SIDE_KEYS};
pub use q17::{q17, Q17Row, DAY, RANK1_BELOW, RANK2_BELOW};
pub use q18::q18;
pub use q19::{q19, Q19Row, Q19_TOP};
pub use q2::{q2, Q2Row, Q2_AUCTION_DIVISOR};
pub use q5::{q5, Q5Row, Q5_SLIDE, Q5_WINDOW};
pub use q6::{q6, Q6Row, Q6_LAST_AUCTIONS};
pub use q7::{q7, Q7Row, Q7_WINDOW};
pub use q8::{q8, Q8Row, Q8_WINDOW};
pub use regular_joins::{q20, q3, Q20Row, Q3Row};
pub use winning_bids::{q4, q9, Q4Row, Q9Row};
