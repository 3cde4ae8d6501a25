//! The Nexmark benchmark on weir, in one crate: the auction site's events ([`model`]), their
//! deterministic generator and its source, the queries ([`queries`]), and the [`registry`]
//! that says for each query what it reads, whether its results append or update, and how to
//! build it. The `weir` command line, the benches and the tests run queries from the registry.
//!
//! ```
//! use weir::prelude::*;
//! use weir_nexmark::{query, EventInput, GeneratorConfig, Output};
//!
//! let q1 = query("q1").expect("q1 is registered");
//! let input = EventInput::Generated { config: GeneratorConfig::default(), events: 10_000 };
//! let report = Job::new(JobConfig::default().workers(2))
//!     .run(move |p| {
//!         let events = input.stream(p);
//!         (q1.build)(p, events, &Output::discard());
//!         Ok(())
//!     })
//!     .unwrap();
//! assert_eq!(report.records_in, 10_000);
//! ```

pub mod decode;
#[cfg(fuzzing)]
pub mod fuzzing;
mod generator;
mod input;
pub mod model;
mod output;
pub mod queries;
mod random;
pub mod registry;
mod source;
mod strings;
mod topic;

pub use decode::{EventDecoder, Projection};
pub use generator::{
    last_base0_auction_id, last_base0_person_id, EventKind, Generator, GeneratorConfig,
    AUCTION_ID_LEAD, DEFAULT_BASE_TIME, FIRST_AUCTION_ID, FIRST_CATEGORY_ID, FIRST_PERSON_ID,
    PERSON_ID_LEAD,
};
pub use input::EventInput;
pub use model::{Auction, Bid, Event, Person};
pub use output::{Output, DEFAULT_SIDE_TABLE};
pub use registry::{query, Input, Query, Results, UpsertKey, QUERIES};
pub use source::{NexmarkReader, NexmarkSource};
pub use topic::{write_events_to_topic, EVENT_SCHEMA};

/// The README's example compiles (as a doctest; it reads Nexmark's events).
#[doc = include_str!("../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;

/// The operator guide's examples compile and run (as doctests; they use Nexmark's events).
#[doc = include_str!("../../docs/operators.md")]
#[cfg(doctest)]
pub struct OperatorGuideDoctests;
