//! Nexmark q17, auction statistics: per auction and day, the number of bids in three price
//! ranges and the minimum, maximum, mean and total price.
//!
//! ```sql
//! SELECT auction, DATE_FORMAT(dateTime, 'yyyy-MM-dd') AS `day`,
//!        count(*) AS total_bids,
//!        count(*) FILTER (WHERE price < 10000) AS rank1_bids,
//!        count(*) FILTER (WHERE price >= 10000 AND price < 1000000) AS rank2_bids,
//!        count(*) FILTER (WHERE price >= 1000000) AS rank3_bids,
//!        min(price) AS min_price, max(price) AS max_price,
//!        avg(price) AS avg_price, sum(price) AS sum_price
//! FROM bid
//! GROUP BY auction, DATE_FORMAT(dateTime, 'yyyy-MM-dd');
//! ```
//!
//! A day is a tumbling window of event time: each (auction, day) row is emitted once the
//! watermark passes the day's end.

use std::time::Duration;

use crate::Event;
use serde::{Deserialize, Serialize};
use weir::datetime;
use weir::operators::aggregate::Aggregate;
use weir::operators::window::{tumbling, WindowExt};
use weir::{EventTime, Stream, Timestamped};

use super::bids::select_bids;
use crate::registry::{Input, Query, Results};

/// One day of event time.
pub const DAY: Duration = Duration::from_secs(24 * 60 * 60);
/// Prices below this are rank 1.
pub const RANK1_BELOW: u64 = 10_000;
/// Prices below this (and not rank 1) are rank 2; the rest rank 3.
pub const RANK2_BELOW: u64 = 1_000_000;

/// A q17 result.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Q17Row {
    /// The auction's id.
    pub auction: u64,
    /// The day, `YYYY-MM-DD`.
    pub day: String,
    /// Bids that day.
    pub total_bids: u64,
    /// Bids below 10,000.
    pub rank1_bids: u64,
    /// Bids from 10,000 to below 1,000,000.
    pub rank2_bids: u64,
    /// Bids of 1,000,000 or more.
    pub rank3_bids: u64,
    /// The lowest price.
    pub min_price: u64,
    /// The highest price.
    pub max_price: u64,
    /// The mean price.
    pub avg_price: f64,
    /// The total of the prices.
    pub sum_price: u64,
}

/// The columns of a bid q17 reads.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
struct AuctionPrice {
    auction: u64,
    price: u64,
    date_time: EventTime,
}

impl Timestamped for AuctionPrice {
    fn event_time(&self) -> EventTime {
        self.date_time
    }
}

/// The running statistics of one auction's day.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize)]
struct PriceStats {
    ranks: [u64; 3],
    min: u64,
    max: u64,
    sum: u64,
}

impl PriceStats {
    fn total(&self) -> u64 {
        self.ranks.iter().sum()
    }
}

/// q17's aggregation: counts by price rank, min, max, sum (the mean follows).
struct AuctionStats;

impl Aggregate<AuctionPrice> for AuctionStats {
    type Accumulator = PriceStats;
    type Output = PriceStats;
    fn create(&self) -> PriceStats {
        PriceStats {
            min: u64::MAX,
            ..PriceStats::default()
        }
    }
    fn add(&self, stats: &mut PriceStats, bid: &AuctionPrice) {
        let rank = match bid.price {
            price if price < RANK1_BELOW => 0,
            price if price < RANK2_BELOW => 1,
            _ => 2,
        };
        let mut one = self.create();
        one.ranks[rank] = 1;
        one.min = bid.price;
        one.max = bid.price;
        one.sum = bid.price;
        self.merge(stats, one);
    }
    fn merge(&self, stats: &mut PriceStats, other: PriceStats) {
        for (rank, count) in stats.ranks.iter_mut().zip(other.ranks) {
            *rank += count;
        }
        stats.min = stats.min.min(other.min);
        stats.max = stats.max.max(other.max);
        stats.sum += other.sum;
    }
    fn result(&self, stats: &PriceStats) -> PriceStats {
        *stats
    }
}

/// q17: daily statistics per auction.
pub fn q17<'s>(events: Stream<'s, Event>) -> Stream<'s, Q17Row> {
    select_bids(events, |bid| {
        Some(AuctionPrice {
            auction: bid.auction,
            price: bid.price,
            date_time: bid.date_time,
        })
    })
    .key_by(|bid| bid.auction)
    .window(tumbling(DAY))
    .aggregate(AuctionStats)
    .results
    .map(|day| {
        let stats = day.value;
        let total = stats.total();
        Q17Row {
            auction: day.key,
            day: datetime::format(day.start).chars().take(10).collect(),
            total_bids: total,
            rank1_bids: stats.ranks[0],
            rank2_bids: stats.ranks[1],
            rank3_bids: stats.ranks[2],
            min_price: stats.min,
            max_price: stats.max,
            avg_price: stats.sum as f64 / total as f64,
            sum_price: stats.sum,
        }
    })
}

/// q17 in the registry.
pub const Q17: Query = Query {
    name: "q17",
    about: "Auction statistics: per auction and day, bids by price rank and price statistics.",
    reads: &[Input::Bids],
    results: Results::Appends,
    build: |_, events, output| output.append(q17(events)),
};
