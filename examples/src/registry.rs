//! The registry of example jobs: for each, its name, what it does, what it shows, how to
//! build it into a pipeline and how to make its sample input. The command line and the tests
//! take their examples from here.
//!
//! Adding an example is one new file that defines the job, its sample data and its
//! [`Example`] descriptor, its `mod` line in `lib.rs`, and one line in [`EXAMPLES`].

use weir::Pipeline;

use crate::io::{ExampleInput, ExampleOutput, SampleLine};

/// One example job, as the registry describes it.
#[derive(Clone, Copy)]
pub struct Example {
    /// Its name on the command line: `word-count`, `fraud`.
    pub name: &'static str,
    /// One line on what it computes.
    pub about: &'static str,
    /// The operators it uses.
    pub shows: &'static str,
    /// What a result row holds, and what goes to the late output.
    pub results: &'static str,
    /// Builds the job: reads `input`, writes to `output`.
    pub build: for<'s> fn(&mut Pipeline<'s>, &ExampleInput, &ExampleOutput),
    /// Its sample input: `records` records from the seed `seed`, in the order they arrive,
    /// with the duplicates, disorder and malformed records the example is about.
    pub sample: fn(seed: u64, records: u64) -> Vec<SampleLine>,
}

/// Every example, in the order `weir example list` shows them.
pub const EXAMPLES: &[Example] = &[
    crate::word_count::WORD_COUNT,
    crate::word_count::WORD_COUNT_WINDOWED,
    crate::sessions::SESSIONS,
    crate::fraud::FRAUD,
    crate::orders::ORDERS,
    crate::latest_state::LATEST_STATE,
    crate::sensors::SENSORS,
];

/// The example of this name, if there is one.
pub fn example(name: &str) -> Option<&'static Example> {
    EXAMPLES.iter().find(|example| example.name == name)
}

impl std::fmt::Debug for Example {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Example")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}
