//! Nexmark q6, average selling price by seller: for each seller, the average final price of
//! their last 10 closed auctions, updated each time one of their auctions closes.
//!
//! As the Nexmark suite defines it (Beam's `Query6` over `WinningBids`): an auction closes when
//! event time passes its `expires`; its winning bid is the highest bid placed while it was open
//! that meets its reserve (the earliest among equal prices); an auction without one does not
//! count. Each closed auction emits its seller's new average, an integer mean of the final
//! prices as in the suite. Flink's SQL cannot run it (an OVER window on an updating input).
//!
//! ```sql
//! SELECT Q.seller, AVG(Q.final) OVER
//!          (PARTITION BY Q.seller ORDER BY Q.expires ROWS BETWEEN 9 PRECEDING AND CURRENT ROW)
//! FROM (SELECT MAX(B.price) AS final, A.seller, A.expires
//!       FROM auction A, bid B
//!       WHERE A.id = B.auction AND B.dateTime BETWEEN A.dateTime AND A.expires
//!         AND B.price >= A.reserve
//!       GROUP BY A.id, A.seller, A.expires) Q;
//! ```

use std::cmp::Reverse;
use std::collections::VecDeque;

use serde::{Deserialize, Serialize};
use weir::{EventTime, KeyedContext, KeyedProcess, Stream};

use super::bids::bids_on_open_auctions;
use crate::registry::{Input, Query, Results};
use crate::Event;

/// How many of a seller's closed auctions the average covers.
pub const Q6_LAST_AUCTIONS: usize = 10;

/// A q6 result: a seller's average final price over their last closed auctions.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Q6Row {
    /// The seller.
    pub seller: u64,
    /// The integer mean of the final prices of their last (up to) 10 closed auctions.
    pub avg_price: u64,
}

/// A bid on an open auction, with what closing the auction needs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct OpenBid {
    auction: u64,
    seller: u64,
    reserve: u64,
    expires: EventTime,
    price: u64,
    bid_time: EventTime,
}

/// A closed auction's final price.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Closed {
    auction: u64,
    seller: u64,
    expires: EventTime,
    price: u64,
}

/// Per auction: the best bid that meets the reserve, emitted when the auction closes.
struct WinningBid;

impl KeyedProcess<u64, OpenBid> for WinningBid {
    /// The best valid bid so far: its price, time (earlier wins a tie) and the auction's
    /// seller and close.
    type State = Option<(u64, Reverse<EventTime>, u64, EventTime)>;
    type Output = Closed;

    fn on_record(
        &mut self,
        cx: &mut KeyedContext<u64, Closed, OpenBid>,
        _auction: &u64,
        best: &mut Self::State,
        bid: OpenBid,
        _event_time: EventTime,
    ) {
        if bid.price < bid.reserve {
            return;
        }
        let candidate = (bid.price, Reverse(bid.bid_time), bid.seller, bid.expires);
        if best
            .as_ref()
            .is_none_or(|best| (candidate.0, candidate.1) > (best.0, best.1))
        {
            *best = Some(candidate);
        }
        cx.set_timer(bid.expires);
    }

    fn on_timer(
        &mut self,
        cx: &mut KeyedContext<u64, Closed, OpenBid>,
        auction: &u64,
        best: &mut Self::State,
        _time: EventTime,
    ) {
        if let Some((price, _, seller, expires)) = best.take() {
            cx.emit(Closed {
                auction: *auction,
                seller,
                expires,
                price,
            });
        }
    }

    fn is_empty(&self, best: &Self::State) -> bool {
        best.is_none()
    }
}

/// A seller's closed auctions waiting for event time to pass them, and the final prices of
/// their last ones.
#[derive(Default, Serialize, Deserialize)]
struct SellerPrices {
    /// Closed auctions not yet counted: `(expires, auction, price)`.
    pending: Vec<(EventTime, u64, u64)>,
    /// The last final prices, oldest first.
    last: VecDeque<u64>,
}

/// Per seller: counts closed auctions in the order they closed (closes that reach this worker
/// out of order wait for the watermark) and emits the new average after each.
struct AveragePrice;

impl KeyedProcess<u64, Closed> for AveragePrice {
    type State = SellerPrices;
    type Output = Q6Row;

    fn on_record(
        &mut self,
        cx: &mut KeyedContext<u64, Q6Row, Closed>,
        _seller: &u64,
        prices: &mut SellerPrices,
        closed: Closed,
        _event_time: EventTime,
    ) {
        prices
            .pending
            .push((closed.expires, closed.auction, closed.price));
        cx.set_timer(closed.expires);
    }

    fn on_timer(
        &mut self,
        cx: &mut KeyedContext<u64, Q6Row, Closed>,
        seller: &u64,
        prices: &mut SellerPrices,
        time: EventTime,
    ) {
        let mut due: Vec<_> = prices
            .pending
            .extract_if(.., |(expires, ..)| *expires <= time)
            .collect();
        due.sort_unstable();
        for (_, _, price) in due {
            if prices.last.len() == Q6_LAST_AUCTIONS {
                prices.last.pop_front();
            }
            prices.last.push_back(price);
            let count = prices.last.len() as u64;
            cx.emit(Q6Row {
                seller: *seller,
                avg_price: prices.last.iter().sum::<u64>() / count,
            });
        }
    }

    fn is_empty(&self, prices: &SellerPrices) -> bool {
        prices.pending.is_empty() && prices.last.is_empty()
    }
}

/// q6: each seller's average final price over their last 10 closed auctions.
pub fn q6<'s>(events: Stream<'s, Event>) -> Stream<'s, Q6Row> {
    bids_on_open_auctions(events, |auction, bid| OpenBid {
        auction: auction.id,
        seller: auction.seller,
        reserve: auction.reserve,
        expires: auction.expires,
        price: bid.price,
        bid_time: bid.date_time,
    })
    .key_by(|bid| bid.auction)
    // A bid is judged by its auction's close: only a pair that comes after it is late.
    .process("winning bid", |bid: &OpenBid| bid.expires, WinningBid)
    .results
    .key_by(|closed| closed.seller)
    .process(
        "average price",
        |closed: &Closed| closed.expires,
        AveragePrice,
    )
    .results
}

/// q6 in the registry.
pub const Q6: Query = Query {
    name: "q6",
    about: "Average selling price by seller: the mean final price of each seller's last 10 closed auctions, after each close (winning bids that meet the reserve).",
    reads: &[Input::Auctions, Input::Bids],
    results: Results::Appends,
    build: |_, events, output| output.append(q6(events)),
};
