//! Nexmark q4 and q9: bids joined with their auction while it is open, then the highest bid
//! per auction as an updating aggregation (a new highest bid retracts the one before).
//!
//! ```sql
//! -- q4, average closing price per category
//! SELECT Q.category, AVG(Q.final)
//! FROM (SELECT MAX(B.price) AS final, A.category
//!       FROM auction A, bid B
//!       WHERE A.id = B.auction AND B.dateTime BETWEEN A.dateTime AND A.expires
//!       GROUP BY A.id, A.category) Q
//! GROUP BY Q.category;
//!
//! -- q9, winning bids
//! SELECT id, itemName, description, initialBid, reserve, dateTime, expires, seller, category,
//!        extra, auction, bidder, price, bid_dateTime, bid_extra
//! FROM (SELECT A.*, B.auction, B.bidder, B.price, B.dateTime AS bid_dateTime,
//!              B.extra AS bid_extra,
//!              ROW_NUMBER() OVER (PARTITION BY A.id ORDER BY B.price DESC, B.dateTime ASC) AS rownum
//!       FROM auction A, bid B
//!       WHERE A.id = B.auction AND B.dateTime BETWEEN A.dateTime AND A.expires)
//! WHERE rownum <= 1;
//! ```
//!
//! The join forgets an auction once the watermark passes its close and a bid once the
//! watermark passes the bid (an auction still to come opens later), so its state holds the
//! open auctions, not the whole history.

use std::cmp::Reverse;

use crate::Event;
use serde::{Deserialize, Serialize};
use weir::datetime::serde_millis;
use weir::operators::aggregate::{Avg, Max};
use weir::operators::changelog::Change;
use weir::operators::updating::{RunningExt, UpdatingExt};
use weir::{EventTime, Stream};

use super::bids::bids_on_open_auctions;
use crate::registry::{Input, Query, Results, UpsertKey};
use weir::operators::changelog::ChangelogExt;

/// A q4 result: a category's average closing price.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Q4Row {
    /// The category.
    pub category: u64,
    /// The mean over its auctions of their highest bid.
    pub avg: f64,
}

/// A q9 result: an auction with its winning bid (the highest; the earliest among equals).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Q9Row {
    /// Auction id.
    pub id: u64,
    /// Item name.
    pub item_name: String,
    /// Item description.
    pub description: String,
    /// Initial bid.
    pub initial_bid: u64,
    /// Reserve price.
    pub reserve: u64,
    /// Auction time.
    #[serde(with = "serde_millis")]
    pub date_time: EventTime,
    /// When the auction closes.
    #[serde(with = "serde_millis")]
    pub expires: EventTime,
    /// Seller id.
    pub seller: u64,
    /// Category.
    pub category: u64,
    /// Auction padding.
    pub extra: String,
    /// The bid's auction id.
    pub auction: u64,
    /// Bidder id.
    pub bidder: u64,
    /// Bid price.
    pub price: u64,
    /// Bid time.
    #[serde(rename = "bid_dateTime", with = "serde_millis")]
    pub bid_date_time: EventTime,
    /// Bid padding.
    #[serde(rename = "bid_extra")]
    pub bid_extra: String,
}

/// q4: the highest bid per auction (a running maximum whose every new value retracts the
/// one before), averaged per category (an updating average that takes the retractions).
pub fn q4<'s>(events: Stream<'s, Event>) -> Stream<'s, Change<Q4Row>> {
    bids_on_open_auctions(events, |auction, bid| {
        (auction.id, auction.category, bid.price)
    })
    .key_by(|(auction, category, _)| (*auction, *category))
    .aggregate_running(Max::of(|(_, _, price): &(u64, u64, u64)| *price))
    .key_by(|change| (change.row().0).1)
    .aggregate_changes(Avg::of(|(_, max): &((u64, u64), Option<u64>)| {
        max.unwrap_or_default() as f64
    }))
    .map(|change| change.map(|(category, avg)| Q4Row { category, avg }))
}

/// q9: each auction's winning bid so far (a running top-1, kept while the auction is open).
pub fn q9<'s>(events: Stream<'s, Event>) -> Stream<'s, Change<Q9Row>> {
    bids_on_open_auctions(events, |auction, bid| Q9Row {
        id: auction.id,
        item_name: auction.item_name.clone(),
        description: auction.description.clone(),
        initial_bid: auction.initial_bid,
        reserve: auction.reserve,
        date_time: auction.date_time,
        expires: auction.expires,
        seller: auction.seller,
        category: auction.category,
        extra: auction.extra.clone(),
        auction: bid.auction,
        bidder: bid.bidder,
        price: bid.price,
        bid_date_time: bid.date_time,
        bid_extra: bid.extra.to_string(),
    })
    .key_by(|row| row.id)
    // An auction takes no bids once it has closed: its winner is final, and dropped from
    // the state.
    .aggregate_running_until(
        Max::of(|row: &Q9Row| (row.price, Reverse(row.bid_date_time), row.clone())),
        |row| row.expires,
    )
    .results
    .flat_map(|change| match change {
        Change::Insert((_, Some((_, _, row)))) => Some(Change::Insert(row)),
        Change::Delete((_, Some((_, _, row)))) => Some(Change::Delete(row)),
        _ => None,
    })
}

/// q4 in the registry.
pub const Q4: Query = Query {
    name: "q4",
    about: "Average closing price per category: highest bid per auction while it is open, averaged per category (a join and two updating aggregations).",
    reads: &[Input::Auctions, Input::Bids],
    results: Results::Updates {
        key: UpsertKey::Field("category"),
    },
    build: |_, events, output| {
        output.updates(q4(events), |changes| changes.upsert_view(|row: &Q4Row| row.category))
    },
};

/// q9 in the registry.
pub const Q9: Query = Query {
    name: "q9",
    about: "Winning bids: each auction with its highest bid while it was open (a join and an updating top-1).",
    reads: &[Input::Auctions, Input::Bids, Input::Padding],
    results: Results::Updates {
        key: UpsertKey::Field("id"),
    },
    build: |_, events, output| {
        output.updates(q9(events), |changes| changes.upsert_view(|row: &Q9Row| row.id))
    },
};
