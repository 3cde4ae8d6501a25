//! Early bids (not one of the standard Nexmark queries): the bids placed within 10 s of their
//! auction opening, an interval join of auctions and bids on the auction id.
//!
//! ```sql
//! SELECT B.auction, B.bidder, B.price, B.dateTime
//! FROM auction A JOIN bid B ON A.id = B.auction
//! WHERE B.dateTime BETWEEN A.dateTime AND A.dateTime + INTERVAL '10' SECOND;
//! ```

use std::time::Duration;

use crate::Event;
use serde::{Deserialize, Serialize};
use weir::datetime::serde_millis;
use weir::operators::join::{IntervalJoin, JoinExt};
use weir::{EventTime, Stream};

use super::bids::auctions_and_their_bids;
use crate::registry::{Input, Query, Results};

/// How long after its auction opens a bid counts as early.
pub const EARLY: Duration = Duration::from_secs(10);

/// An early bid.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EarlyBidRow {
    /// Auction id.
    pub auction: u64,
    /// Bidder id.
    pub bidder: u64,
    /// Price.
    pub price: u64,
    /// Bid time.
    #[serde(with = "serde_millis")]
    pub date_time: EventTime,
}

/// The bids within [`EARLY`] of their auction's opening.
pub fn early_bids<'s>(events: Stream<'s, Event>) -> Stream<'s, EarlyBidRow> {
    let (auctions, bids) = auctions_and_their_bids(events);
    auctions
        .interval_join(
            bids,
            IntervalJoin::within(Duration::ZERO, EARLY),
            |_, _, bid| EarlyBidRow {
                auction: bid.auction,
                bidder: bid.bidder,
                price: bid.price,
                date_time: bid.date_time,
            },
        )
        .results
}

/// early-bids in the registry.
pub const EARLY_BIDS: Query = Query {
    name: "early-bids",
    about: "Not a standard query: bids within 10 s of their auction opening (an interval join).",
    reads: &[Input::Auctions, Input::Bids],
    results: Results::Appends,
    build: |_, events, output| output.append(early_bids(events)),
};
