//! Nexmark: the auction-site benchmark's events, their deterministic generator and its source.

mod generator;
mod model;
mod random;
mod source;
mod strings;
mod topic;

pub use generator::{
    last_base0_auction_id, last_base0_person_id, EventKind, Generator, GeneratorConfig,
    AUCTION_ID_LEAD, DEFAULT_BASE_TIME, FIRST_AUCTION_ID, FIRST_CATEGORY_ID, FIRST_PERSON_ID,
    PERSON_ID_LEAD,
};
pub use model::{Auction, Bid, Event, Person};
pub use source::{NexmarkReader, NexmarkSource};
pub use topic::{write_events_to_topic, EVENT_SCHEMA};
