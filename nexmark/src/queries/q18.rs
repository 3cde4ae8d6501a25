//! Nexmark q18, last bids: each bidder's last bid on each auction.
//!
//! ```sql
//! SELECT auction, bidder, price, channel, url, dateTime, extra
//! FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY bidder, auction ORDER BY dateTime DESC) AS rank_number
//!       FROM bid)
//! WHERE rank_number <= 1;
//! ```
//!
//! The SQL keeps a continuously updated table; here the last bid of each (bidder, auction)
//! pair is emitted per day of event time, once the day is over ([`Keep::Last`] dedupe).

use crate::{Bid, Event};
use weir::operators::dedupe::{DedupeExt, Keep};
use weir::Stream;

use super::bids::select_bids;
use super::q17::DAY;
use crate::registry::{Input, Query, Results};

/// q18: the last bid per (bidder, auction) and day.
pub fn q18<'s>(events: Stream<'s, Event>) -> Stream<'s, Bid> {
    select_bids(events, Some)
        .key_by(|bid| (bid.bidder, bid.auction))
        .dedupe(Keep::Last, DAY)
        .results
}

/// q18 in the registry.
pub const Q18: Query = Query {
    name: "q18",
    about: "Last bids: each bidder's last bid on each auction, per day.",
    reads: &[Input::Bids, Input::BidChannelsHeld, Input::Padding],
    results: Results::Appends,
    build: |_, events, output| output.append(q18(events)),
};
