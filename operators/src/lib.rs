//! weir's operator library. It builds on the engine's pipeline API and never touches file
//! formats, brokers or storage details.

pub mod aggregate;
pub mod changelog;
pub mod dedupe;
pub mod join;
mod state_vec;
pub mod updating;
pub mod window;
