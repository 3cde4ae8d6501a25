//! Nexmark q1, currency conversion: every bid with its price in euros.

use serde::{Deserialize, Serialize};
use weir::datetime::serde_millis;
use weir::{EventTime, Stream};

use super::bids::select_bids;
use crate::registry::{Input, Query, Results};
use crate::Event;

/// A q1 result: `SELECT auction, bidder, 0.908 * price AS price, dateTime, extra FROM bid`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Q1Row {
    /// Auction id.
    pub auction: u64,
    /// Bidder id.
    pub bidder: u64,
    /// Price converted to euros (cents × 0.908).
    pub price: f64,
    /// Bid time.
    #[serde(with = "serde_millis")]
    pub date_time: EventTime,
    /// Padding.
    pub extra: String,
}

/// The dollar-to-euro rate of q1.
pub const DOLLAR_TO_EURO: f64 = 0.908;

/// Nexmark q1: every bid with its price converted to euros.
pub fn q1<'s>(events: Stream<'s, Event>) -> Stream<'s, Q1Row> {
    select_bids(events, |bid| {
        Some(Q1Row {
            auction: bid.auction,
            bidder: bid.bidder,
            price: bid.price as f64 * DOLLAR_TO_EURO,
            date_time: bid.date_time,
            extra: bid.extra.into(),
        })
    })
}

/// q1 in the registry.
pub const Q1: Query = Query {
    name: "q1",
    about: "Currency conversion: every bid with its price in euros (`price * 0.908`).",
    reads: &[Input::Bids, Input::Padding],
    results: Results::Appends,
    build: |_, events, output| output.append(q1(events)),
};
