//! Nexmark q5, hot items: the auctions with the most bids in each 10 s window, sliding every
//! 2 s.
//!
//! ```sql
//! SELECT AuctionBids.auction, AuctionBids.num
//! FROM (SELECT auction, count(*) AS num, window_start AS starttime, window_end AS endtime
//!       FROM TABLE(HOP(TABLE bid, DESCRIPTOR(dateTime), INTERVAL '2' SECOND, INTERVAL '10' SECOND))
//!       GROUP BY auction, window_start, window_end) AuctionBids
//! JOIN (SELECT max(CountBids.num) AS maxn, CountBids.starttime, CountBids.endtime
//!       FROM (...the same counts...) CountBids
//!       GROUP BY CountBids.starttime, CountBids.endtime) MaxBids
//! ON AuctionBids.starttime = MaxBids.starttime AND AuctionBids.endtime = MaxBids.endtime
//!    AND AuctionBids.num >= MaxBids.maxn;
//! ```

use std::time::Duration;

use crate::Event;
use serde::{Deserialize, Serialize};
use weir::operators::aggregate::{Aggregate, Count};
use weir::operators::window::{hopping, tumbling, WindowExt, WindowResult};
use weir::{EventTime, Stream, Timestamped};

use super::bids::select_bids;
use crate::registry::{Input, Query, Results};

/// The window length.
pub const Q5_WINDOW: Duration = Duration::from_secs(10);
/// The distance between window starts.
pub const Q5_SLIDE: Duration = Duration::from_secs(2);

/// A q5 result: an auction with the most bids in its window (ties give one row each).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Q5Row {
    /// The auction's id.
    pub auction: u64,
    /// Its number of bids in the window.
    pub num: u64,
}

/// The two columns of a bid q5 reads: moving them instead of whole bids keeps the exchange
/// and the window state small.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
struct AuctionBid {
    auction: u64,
    date_time: EventTime,
}

impl Timestamped for AuctionBid {
    fn event_time(&self) -> EventTime {
        self.date_time
    }
}

/// The largest bid count of a window and every auction that has it.
struct MostBids;

impl Aggregate<WindowResult<u64, u64>> for MostBids {
    type Accumulator = (u64, Vec<u64>);
    type Output = (u64, Vec<u64>);
    fn create(&self) -> Self::Accumulator {
        (0, Vec::new())
    }
    fn add(&self, most: &mut Self::Accumulator, count: &WindowResult<u64, u64>) {
        self.merge(most, (count.value, vec![count.key]));
    }
    fn merge(
        &self,
        (max, auctions): &mut Self::Accumulator,
        (other_max, other): Self::Accumulator,
    ) {
        if other_max > *max {
            *max = other_max;
            *auctions = other;
        } else if other_max == *max {
            auctions.extend(other);
        }
    }
    fn result(&self, most: &Self::Accumulator) -> Self::Output {
        most.clone()
    }
}

/// q5: counts bids per auction in hopping windows, then keeps each window's most-bid
/// auctions.
pub fn q5<'s>(events: Stream<'s, Event>) -> Stream<'s, Q5Row> {
    let bids = select_bids(events, |bid| {
        Some(AuctionBid {
            auction: bid.auction,
            date_time: bid.date_time,
        })
    });
    let counts = bids
        .key_by(|bid| bid.auction)
        .window(hopping(Q5_WINDOW, Q5_SLIDE))
        .aggregate(Count);
    // A count's event time is its window's last millisecond: a tumbling window of one slide
    // holds exactly the counts of one hopping window.
    counts
        .results
        .key_by(|count| (count.start, count.end))
        .window(tumbling(Q5_SLIDE))
        .aggregate(MostBids)
        .results
        .flat_map(|most| {
            let (num, auctions) = most.value;
            auctions
                .into_iter()
                .map(move |auction| Q5Row { auction, num })
        })
}

/// q5 in the registry.
pub const Q5: Query = Query {
    name: "q5",
    about: "Hot items: the auctions with the most bids per 10 s window sliding by 2 s.",
    reads: &[Input::Bids],
    results: Results::Appends,
    build: |_, events, output| output.append(q5(events)),
};
