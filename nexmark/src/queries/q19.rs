//! Nexmark q19, auction top-k: the ten highest bids of each auction.
//!
//! ```sql
//! SELECT * FROM
//!   (SELECT *, ROW_NUMBER() OVER (PARTITION BY auction ORDER BY price DESC) AS rank_number
//!    FROM bid)
//! WHERE rank_number <= 10;
//! ```
//!
//! The SQL keeps a continuously updated table; here each auction's top ten of a day of event
//! time is emitted once the day is over.

use std::sync::Arc;

use crate::{Bid, Event};
use serde::{Deserialize, Serialize};
use weir::datetime::serde_millis;
use weir::operators::aggregate::TopN;
use weir::operators::window::{tumbling, WindowExt};
use weir::{EventTime, Stream};

use super::bids::select_bids;
use super::q17::DAY;
use crate::registry::{Input, Query, Results};

/// How many bids per auction.
pub const Q19_TOP: usize = 10;

/// A q19 result: a bid and its rank among its auction's bids (1 = highest price).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Q19Row {
    /// The auction's id.
    pub auction: u64,
    /// The bidder's id.
    pub bidder: u64,
    /// The price in cents.
    pub price: u64,
    /// The channel.
    pub channel: Arc<str>,
    /// The url.
    pub url: Arc<str>,
    /// Event time.
    #[serde(with = "serde_millis")]
    pub date_time: EventTime,
    /// Padding.
    pub extra: Box<str>,
    /// 1 for the highest price, up to 10.
    pub rank_number: u64,
}

/// q19: the top ten bids by price per auction and day.
pub fn q19<'s>(events: Stream<'s, Event>) -> Stream<'s, Q19Row> {
    select_bids(events, Some)
        .key_by(|bid| bid.auction)
        .window(tumbling(DAY))
        .aggregate(TopN::by(Q19_TOP, |bid: &Bid| bid.price))
        .results
        .flat_map(|top| {
            top.value
                .into_iter()
                .zip(1..)
                .map(|(bid, rank_number)| Q19Row {
                    auction: bid.auction,
                    bidder: bid.bidder,
                    price: bid.price,
                    channel: bid.channel,
                    url: bid.url,
                    date_time: bid.date_time,
                    extra: bid.extra,
                    rank_number,
                })
        })
}

/// q19 in the registry.
pub const Q19: Query = Query {
    name: "q19",
    about: "Auction top-k: the ten highest bids per auction, per day.",
    reads: &[Input::Bids, Input::BidChannelsHeld, Input::Padding],
    results: Results::Appends,
    build: |_, events, output| output.append(q19(events)),
};
