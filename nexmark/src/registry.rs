//! The registry of Nexmark queries: for each, its name, what it reads, whether its results
//! append or update (and by which key), and how to build it into a pipeline. The command
//! line, the benches and the tests take their queries from here.
//!
//! Adding a query is one new file under `queries/` that defines the query and its [`Query`]
//! descriptor, its `mod` line in `queries/mod.rs`, and one line in [`QUERIES`].

use weir::{Pipeline, Stream};

use crate::output::Output;
use crate::queries;
use crate::Event;

/// One Nexmark query, as the registry describes it.
#[derive(Clone, Copy)]
pub struct Query {
    /// Its name on the command line and in reports: `q5`, `early-bids`.
    pub name: &'static str,
    /// One line on what it computes.
    pub about: &'static str,
    /// What it reads.
    pub reads: &'static [Input],
    /// Whether its results append or update.
    pub results: Results,
    /// Builds it on the events and writes its results as `output` says (the pipeline is
    /// there for queries that read more than the events, such as q13's side table).
    pub build: for<'s> fn(&mut Pipeline<'s>, Stream<'s, Event>, &Output),
}

/// What a query reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Input {
    /// The bids of the event stream.
    Bids,
    /// The auctions of the event stream.
    Auctions,
    /// The people of the event stream.
    People,
    /// The channel and url of each bid (left out of the decoding of queries that do not
    /// read them, see [`crate::Projection`]).
    BidChannels,
    /// The channel and url of each bid, which the query holds in its state: as
    /// [`Input::BidChannels`], decoded into one copy per distinct string that every bid
    /// holding it shares (worth it for queries that keep many bids, not for those that drop
    /// each bid soon).
    BidChannelsHeld,
    /// The `extra` padding of the events it reads (left out likewise).
    Padding,
    /// A side table of `key,value` rows in a CSV file ([`Output::side_table`]).
    SideTable,
}

/// Whether a query's results only append or also update earlier ones.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Results {
    /// Each result is final once emitted.
    Appends,
    /// Results are inserted and retracted as the input goes on: written as the changelog
    /// ([`Output::changelog`]) or as the view that holds when the input ends.
    Updates {
        /// What identifies a row of the view.
        key: UpsertKey,
    },
}

/// What identifies a row of an updating query's view.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UpsertKey {
    /// The whole row: the view holds each row as often as it was inserted and not retracted.
    Row,
    /// A field: the view holds, per value of the field, the row written last.
    Field(&'static str),
}

/// Every query, in the order reports list them.
pub const QUERIES: &[Query] = &[
    queries::q0::Q0,
    queries::q1::Q1,
    queries::q2::Q2,
    queries::regular_joins::Q3,
    queries::winning_bids::Q4,
    queries::q5::Q5,
    queries::q6::Q6,
    queries::q7::Q7,
    queries::q8::Q8,
    queries::winning_bids::Q9,
    queries::q10::Q10,
    queries::q11::Q11,
    queries::q12::Q12,
    queries::q13::Q13,
    queries::projections::Q14,
    queries::bid_statistics::Q15,
    queries::bid_statistics::Q16,
    queries::q17::Q17,
    queries::q18::Q18,
    queries::q19::Q19,
    queries::regular_joins::Q20,
    queries::projections::Q21,
    queries::projections::Q22,
    queries::early_bids::EARLY_BIDS,
];

/// The query of this name, if there is one.
pub fn query(name: &str) -> Option<&'static Query> {
    QUERIES.iter().find(|query| query.name == name)
}

impl std::fmt::Debug for Query {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Query")
            .field("name", &self.name)
            .field("reads", &self.reads)
            .field("results", &self.results)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_found() {
        for (index, entry) in QUERIES.iter().enumerate() {
            assert!(
                QUERIES[..index]
                    .iter()
                    .all(|other| other.name != entry.name),
                "{} is registered twice",
                entry.name
            );
            assert_eq!(query(entry.name).map(|found| found.name), Some(entry.name));
            assert!(!entry.reads.is_empty(), "{} reads nothing", entry.name);
        }
        assert!(query("q6x").is_none());
    }
}
