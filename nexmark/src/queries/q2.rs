//! Nexmark q2, selection: the bids on every 123rd auction.

use serde::{Deserialize, Serialize};
use weir::Stream;

use super::bids::select_bids;
use crate::registry::{Input, Query, Results};
use crate::Event;

/// A q2 result: `SELECT auction, price FROM bid WHERE MOD(auction, 123) = 0`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Q2Row {
    /// Auction id.
    pub auction: u64,
    /// Price in cents.
    pub price: u64,
}

/// The divisor that selects q2's auctions.
pub const Q2_AUCTION_DIVISOR: u64 = 123;

/// Nexmark q2: the bids on every 123rd auction.
pub fn q2<'s>(events: Stream<'s, Event>) -> Stream<'s, Q2Row> {
    select_bids(events, |bid| {
        (bid.auction % Q2_AUCTION_DIVISOR == 0).then_some(Q2Row {
            auction: bid.auction,
            price: bid.price,
        })
    })
}

/// q2 in the registry.
pub const Q2: Query = Query {
    name: "q2",
    about: "Selection: the bids on auctions whose id is a multiple of 123.",
    reads: &[Input::Bids],
    results: Results::Appends,
    build: |_, events, output| output.append(q2(events)),
};
