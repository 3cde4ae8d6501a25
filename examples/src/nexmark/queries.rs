//! Nexmark q0–q2: the stateless queries.

use serde::{Deserialize, Serialize};
use weir::datetime::serde_millis;
use weir::nexmark::{Auction, Bid, Event};
use weir::{Data, EventTime, KeyedStream, Stream};

/// The queries the runner knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Query {
    /// Pass-through: every bid.
    Q0,
    /// Currency conversion: every bid with its price in euros (`price * 0.908`).
    Q1,
    /// Selection: the bids on auctions whose id is a multiple of 123.
    Q2,
    /// Local item suggestion: auctions of category 10 with their sellers from OR, ID or CA
    /// (a regular join).
    Q3,
    /// Average closing price per category: highest bid per auction while it is open, averaged
    /// per category (a join and two updating aggregations).
    Q4,
    /// Hot items: the auctions with the most bids per 10 s window sliding by 2 s.
    Q5,
    /// Highest bid: the bids with the highest price of each 10 s window (a window join).
    Q7,
    /// Monitor new users: people who opened an auction in the 10 s window they registered in
    /// (a window join).
    Q8,
    /// Winning bids: each auction with its highest bid while it was open (a join and an
    /// updating top-1).
    Q9,
    /// User sessions: bids per bidder per session (10 s gap).
    Q11,
    /// Processing-time windows: bids per bidder per 10 s of wall-clock time.
    Q12,
    /// Bounded side input join: bids with the value a CSV side table holds for their auction
    /// (a temporal join; see --side-input).
    Q13,
    /// Filter and computed columns: euro prices in a range, time of day, `c` count.
    Q14,
    /// Bidding statistics per day: bids, distinct bidders and auctions by price rank.
    Q15,
    /// Bidding statistics per channel and day.
    Q16,
    /// Auction statistics: per auction and day, bids by price rank and price statistics.
    Q17,
    /// Last bids: each bidder's last bid on each auction, per day.
    Q18,
    /// Auction top-k: the ten highest bids per auction, per day.
    Q19,
    /// Expand bid with auction: bids on auctions of category 10 with the auction's columns
    /// (a regular join).
    Q20,
    /// String extraction: each bid's channel number.
    Q21,
    /// String splitting: the first three directories of each bid's url.
    Q22,
    /// Not a standard query: bids within 10 s of their auction opening (an interval join).
    EarlyBids,
}

/// Applies `select` to the bids of an event stream, in one operator (filtering the bids
/// first and mapping them after would move every bid twice).
pub fn select_bids<'s, T: Data>(
    events: Stream<'s, Event>,
    mut select: impl FnMut(Bid) -> Option<T> + 'static,
) -> Stream<'s, T> {
    events.flat_map(move |event| match event {
        Event::Bid(bid) => select(bid),
        _ => None,
    })
}

/// The auctions keyed by their id and the bids keyed by their auction: the two sides of the
/// joins of bids with their auction (q4, q9, early bids).
pub fn auctions_and_their_bids(
    events: Stream<'_, Event>,
) -> (KeyedStream<'_, u64, Auction>, KeyedStream<'_, u64, Bid>) {
    let auctions = events
        .clone()
        .flat_map(|event| match event {
            Event::Auction(auction) => Some(*auction),
            _ => None,
        })
        .key_by(|auction| auction.id);
    let bids = select_bids(events, Some).key_by(|bid| bid.auction);
    (auctions, bids)
}

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
            extra: bid.extra,
        })
    })
}

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
            extra: bid.extra,
        })
    })
}

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
