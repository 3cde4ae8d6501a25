//! Nexmark q13, bounded side input join: each bid with the value a side table (a CSV file of
//! `key,value` rows) holds for its auction id modulo 10,000.
//!
//! ```sql
//! CREATE TABLE side_input (key BIGINT, `value` VARCHAR)
//!     WITH ('connector.type' = 'filesystem', 'connector.path' = '...', 'format.type' = 'csv');
//! SELECT B.auction, B.bidder, B.price, B.dateTime, S.`value`
//! FROM (SELECT *, PROCTIME() AS p_time FROM bid) B
//! JOIN side_input FOR SYSTEM_TIME AS OF B.p_time AS S
//! ON mod(B.auction, 10000) = S.key;
//! ```
//!
//! The side table is a versioned table whose rows are valid from time 0, joined with a
//! temporal join; a later version of the table (a changelog stream instead of the file) would
//! apply to bids from its time on.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::Event;
use serde::{Deserialize, Serialize};
use weir::datetime::serde_millis;
use weir::operators::changelog::Change;
use weir::operators::join::JoinExt;
use weir::{CsvSource, EventTime, Pipeline, Stream, Timestamped};

use super::bids::select_bids;
use crate::registry::{Input, Query, Results};

/// Keys of the standard side input: `0..SIDE_KEYS`, joined on `auction % SIDE_KEYS`.
pub const SIDE_KEYS: u64 = 10_000;

/// A row of the side table.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SideRow {
    /// The key bids join on.
    pub key: u64,
    /// The value they get.
    pub value: String,
}

impl Timestamped for SideRow {
    /// Loaded from a file: valid from the beginning.
    fn event_time(&self) -> EventTime {
        EventTime::ZERO
    }
}

/// A q13 result.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Q13Row {
    /// Auction id.
    pub auction: u64,
    /// Bidder id.
    pub bidder: u64,
    /// Price.
    pub price: u64,
    /// Bid time.
    #[serde(with = "serde_millis")]
    pub date_time: EventTime,
    /// The side table's value for the auction.
    pub value: String,
}

/// The columns of a bid q13 reads.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
struct BidColumns {
    auction: u64,
    bidder: u64,
    price: u64,
    date_time: EventTime,
}

impl Timestamped for BidColumns {
    fn event_time(&self) -> EventTime {
        self.date_time
    }
}

/// Writes the standard side input to `path`: the keys `0..SIDE_KEYS`, each with its own
/// decimal text as value.
pub fn write_side_input(path: &Path) -> std::io::Result<()> {
    let mut file = std::io::BufWriter::new(std::fs::File::create(path)?);
    writeln!(file, "key,value")?;
    for key in 0..SIDE_KEYS {
        writeln!(file, "{key},{key}")?;
    }
    file.flush()
}

/// q13: bids joined with the side table read from `side_input` (a CSV file with a
/// `key,value` header). Bids whose key the table lacks yield nothing, as in an inner join.
pub fn q13<'s>(
    p: &mut Pipeline<'s>,
    events: Stream<'s, Event>,
    side_input: PathBuf,
) -> Stream<'s, Q13Row> {
    let table = p
        .source(CsvSource::<SideRow>::new(side_input))
        .map(Change::Insert)
        .key_by(|change| change.row().key);
    let bids = select_bids(events, |bid| {
        Some(BidColumns {
            auction: bid.auction,
            bidder: bid.bidder,
            price: bid.price,
            date_time: bid.date_time,
        })
    });
    bids.key_by(|bid| bid.auction % SIDE_KEYS)
        .temporal_join(table, false, |_, bid, row| Q13Row {
            auction: bid.auction,
            bidder: bid.bidder,
            price: bid.price,
            date_time: bid.date_time,
            value: row.map(|row| row.value.clone()).unwrap_or_default(),
        })
        .results
}

/// q13 in the registry.
pub const Q13: Query = Query {
    name: "q13",
    about: "Bounded side input join: bids with the value a CSV side table holds for their auction (a temporal join).",
    reads: &[Input::Bids, Input::SideTable],
    results: Results::Appends,
    build: |p, events, output| output.append(q13(p, events, output.side_table.clone())),
};
