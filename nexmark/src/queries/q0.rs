//! Nexmark q0, pass-through: every bid.

use serde::{Deserialize, Serialize};
use weir::datetime::serde_millis;
use weir::{EventTime, Stream};

use super::bids::select_bids;
use crate::registry::{Input, Query, Results};
use crate::Event;

/// A q0 result: `SELECT auction, bidder, price, dateTime, extra FROM bid`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Q0Row {
    /// Auction id.
    pub auction: u64,
    /// Bidder id.
    pub bidder: u64,
    /// Price in cents.
    pub price: u64,
    /// Bid time.
    #[serde(with = "serde_millis")]
    pub date_time: EventTime,
    /// Padding.
    pub extra: String,
}

/// Nexmark q0: every bid, unchanged.
pub fn q0<'s>(events: Stream<'s, Event>) -> Stream<'s, Q0Row> {
    select_bids(events, |bid| {
        Some(Q0Row {
            auction: bid.auction,
            bidder: bid.bidder,
            price: bid.price,
            date_time: bid.date_time,
            extra: bid.extra.into(),
        })
    })
}

/// q0 in the registry.
pub const Q0: Query = Query {
    name: "q0",
    about: "Pass-through: every bid.",
    reads: &[Input::Bids, Input::Padding],
    results: Results::Appends,
    build: |_, events, output| output.append(q0(events)),
};
