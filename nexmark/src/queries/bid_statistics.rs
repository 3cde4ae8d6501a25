//! Nexmark q15 and q16, bidding statistics: per day (q15) or per channel and day (q16), the
//! bids, distinct bidders and distinct auctions, overall and in three price ranges.
//!
//! ```sql
//! SELECT DATE_FORMAT(dateTime, 'yyyy-MM-dd') AS `day`,      -- q16: channel, day,
//!        -- q16 only: max(DATE_FORMAT(dateTime, 'HH:mm')) AS `minute`,
//!        count(*) AS total_bids,
//!        count(*) FILTER (WHERE price < 10000) AS rank1_bids,
//!        count(*) FILTER (WHERE price >= 10000 AND price < 1000000) AS rank2_bids,
//!        count(*) FILTER (WHERE price >= 1000000) AS rank3_bids,
//!        count(DISTINCT bidder) AS total_bidders, ... rank1_bidders ... rank3_bidders,
//!        count(DISTINCT auction) AS total_auctions, ... rank1_auctions ... rank3_auctions
//! FROM bid
//! GROUP BY DATE_FORMAT(dateTime, 'yyyy-MM-dd');              -- q16: GROUP BY channel, day
//! ```
//!
//! Days are tumbling windows of event time; distinct counts are exact.

use std::collections::HashSet;
use std::sync::Arc;

use crate::Event;
use serde::{Deserialize, Serialize};
use weir::datetime;
use weir::operators::aggregate::Aggregate;
use weir::operators::window::{tumbling, WindowExt, WindowResult};
use weir::{EventTime, Stream, Timestamped};

use super::bids::select_bids;
use super::q17::{DAY, RANK1_BELOW, RANK2_BELOW};
use crate::registry::{Input, Query, Results};

/// A q15 result: one day.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Q15Row {
    /// The day, `YYYY-MM-DD`.
    pub day: String,
    /// Bids.
    pub total_bids: u64,
    /// Bids below 10,000.
    pub rank1_bids: u64,
    /// Bids from 10,000 to below 1,000,000.
    pub rank2_bids: u64,
    /// Bids of 1,000,000 or more.
    pub rank3_bids: u64,
    /// Distinct bidders.
    pub total_bidders: u64,
    /// Distinct bidders of rank 1 bids.
    pub rank1_bidders: u64,
    /// Distinct bidders of rank 2 bids.
    pub rank2_bidders: u64,
    /// Distinct bidders of rank 3 bids.
    pub rank3_bidders: u64,
    /// Distinct auctions.
    pub total_auctions: u64,
    /// Distinct auctions of rank 1 bids.
    pub rank1_auctions: u64,
    /// Distinct auctions of rank 2 bids.
    pub rank2_auctions: u64,
    /// Distinct auctions of rank 3 bids.
    pub rank3_auctions: u64,
}

/// A q16 result: one channel's day.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Q16Row {
    /// The channel.
    pub channel: Arc<str>,
    /// The day, `YYYY-MM-DD`.
    pub day: String,
    /// The latest minute of the day with a bid, `HH:MM`.
    pub minute: String,
    /// Bids.
    pub total_bids: u64,
    /// Bids below 10,000.
    pub rank1_bids: u64,
    /// Bids from 10,000 to below 1,000,000.
    pub rank2_bids: u64,
    /// Bids of 1,000,000 or more.
    pub rank3_bids: u64,
    /// Distinct bidders.
    pub total_bidders: u64,
    /// Distinct bidders of rank 1 bids.
    pub rank1_bidders: u64,
    /// Distinct bidders of rank 2 bids.
    pub rank2_bidders: u64,
    /// Distinct bidders of rank 3 bids.
    pub rank3_bidders: u64,
    /// Distinct auctions.
    pub total_auctions: u64,
    /// Distinct auctions of rank 1 bids.
    pub rank1_auctions: u64,
    /// Distinct auctions of rank 2 bids.
    pub rank2_auctions: u64,
    /// Distinct auctions of rank 3 bids.
    pub rank3_auctions: u64,
}

/// The columns of a bid the statistics read.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct PricedBid {
    channel: Arc<str>,
    auction: u64,
    bidder: u64,
    price: u64,
    date_time: EventTime,
}

impl Timestamped for PricedBid {
    fn event_time(&self) -> EventTime {
        self.date_time
    }
}

/// Running statistics: bid counts and distinct sets, overall (index 0) and per rank (1..=3).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct Statistics {
    bids: [u64; 4],
    bidders: [HashSet<u64>; 4],
    auctions: [HashSet<u64>; 4],
    latest: EventTime,
}

/// The results of the statistics: bids, distinct bidders, distinct auctions (each overall,
/// then per rank) and the latest bid's time.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Totals {
    bids: [u64; 4],
    bidders: [u64; 4],
    auctions: [u64; 4],
    latest: EventTime,
}

/// The statistics aggregation, shared by q15 and q16.
struct BidStatistics;

impl Aggregate<PricedBid> for BidStatistics {
    type Accumulator = Statistics;
    type Output = Totals;
    fn create(&self) -> Statistics {
        Statistics::default()
    }
    fn add(&self, stats: &mut Statistics, bid: &PricedBid) {
        let rank = match bid.price {
            price if price < RANK1_BELOW => 1,
            price if price < RANK2_BELOW => 2,
            _ => 3,
        };
        for slot in [0, rank] {
            stats.bids[slot] += 1;
            stats.bidders[slot].insert(bid.bidder);
            stats.auctions[slot].insert(bid.auction);
        }
        stats.latest = stats.latest.max(bid.date_time);
    }
    fn merge(&self, stats: &mut Statistics, other: Statistics) {
        for slot in 0..4 {
            stats.bids[slot] += other.bids[slot];
            stats.bidders[slot].extend(&other.bidders[slot]);
            stats.auctions[slot].extend(&other.auctions[slot]);
        }
        stats.latest = stats.latest.max(other.latest);
    }
    fn result(&self, stats: &Statistics) -> Self::Output {
        let sizes = |sets: &[HashSet<u64>; 4]| sets.each_ref().map(|set| set.len() as u64);
        Totals {
            bids: stats.bids,
            bidders: sizes(&stats.bidders),
            auctions: sizes(&stats.auctions),
            latest: stats.latest,
        }
    }
}

fn priced_bids<'s>(events: Stream<'s, Event>) -> Stream<'s, PricedBid> {
    select_bids(events, |bid| {
        Some(PricedBid {
            channel: bid.channel,
            auction: bid.auction,
            bidder: bid.bidder,
            price: bid.price,
            date_time: bid.date_time,
        })
    })
}

fn day_of<K, R>(window: &WindowResult<K, R>) -> String {
    datetime::format(window.start).chars().take(10).collect()
}

/// q15: bidding statistics per day (computed on one worker: a day is one group).
pub fn q15<'s>(events: Stream<'s, Event>) -> Stream<'s, Q15Row> {
    priced_bids(events)
        .key_by(|_| ())
        .window(tumbling(DAY))
        .aggregate(BidStatistics)
        .results
        .map(|day| {
            let Totals {
                bids,
                bidders,
                auctions,
                ..
            } = day.value;
            Q15Row {
                day: day_of(&day),
                total_bids: bids[0],
                rank1_bids: bids[1],
                rank2_bids: bids[2],
                rank3_bids: bids[3],
                total_bidders: bidders[0],
                rank1_bidders: bidders[1],
                rank2_bidders: bidders[2],
                rank3_bidders: bidders[3],
                total_auctions: auctions[0],
                rank1_auctions: auctions[1],
                rank2_auctions: auctions[2],
                rank3_auctions: auctions[3],
            }
        })
}

/// q16: bidding statistics per channel and day.
pub fn q16<'s>(events: Stream<'s, Event>) -> Stream<'s, Q16Row> {
    priced_bids(events)
        .key_by(|bid| bid.channel.clone())
        .window(tumbling(DAY))
        .aggregate(BidStatistics)
        .results
        .map(|day| {
            let Totals {
                bids,
                bidders,
                auctions,
                latest,
            } = day.value;
            Q16Row {
                day: day_of(&day),
                minute: datetime::format(latest).chars().skip(11).take(5).collect(),
                channel: day.key,
                total_bids: bids[0],
                rank1_bids: bids[1],
                rank2_bids: bids[2],
                rank3_bids: bids[3],
                total_bidders: bidders[0],
                rank1_bidders: bidders[1],
                rank2_bidders: bidders[2],
                rank3_bidders: bidders[3],
                total_auctions: auctions[0],
                rank1_auctions: auctions[1],
                rank2_auctions: auctions[2],
                rank3_auctions: auctions[3],
            }
        })
}

/// q15 in the registry.
pub const Q15: Query = Query {
    name: "q15",
    about: "Bidding statistics per day: bids, distinct bidders and auctions by price rank.",
    reads: &[Input::Bids],
    results: Results::Appends,
    build: |_, events, output| output.append(q15(events)),
};

/// q16 in the registry.
pub const Q16: Query = Query {
    name: "q16",
    about: "Bidding statistics per channel and day.",
    reads: &[Input::Bids, Input::BidChannels],
    results: Results::Appends,
    build: |_, events, output| output.append(q16(events)),
};
