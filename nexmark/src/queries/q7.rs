//! Nexmark q7, highest bid: the bids with the highest price of each 10 s tumbling window.
//!
//! ```sql
//! SELECT B.auction, B.price, B.bidder, B.dateTime, B.extra
//! FROM bid B
//! JOIN (SELECT MAX(B1.price) AS maxprice, TUMBLE_START(B1.dateTime, INTERVAL '10' SECOND) AS starttime
//!       FROM bid B1 GROUP BY TUMBLE(B1.dateTime, INTERVAL '10' SECOND)) B1
//! ON B.price = B1.maxprice
//! WHERE TUMBLE_START(B.dateTime, INTERVAL '10' SECOND) = B1.starttime;
//! ```
//!
//! (The Flink version bounds `B.dateTime` by `BETWEEN rowtime - 10 s AND rowtime`, which also
//! lets in a bid from the previous window's last millisecond; this one joins each bid with its
//! own window.)
//!
//! Joining every bid back to the window's maximum would hold a whole window of bids in the
//! join's state. Only a bid that is the highest of its auction in the window can be the
//! highest of the window, so the plan first keeps each auction's highest bids per window
//! (spread over the workers by auction), then joins those candidates with the window's
//! maximum in a window join keyed by the window.

use std::time::Duration;

use crate::Event;
use serde::{Deserialize, Serialize};
use weir::operators::aggregate::{Max, MaxBy};
use weir::operators::join::JoinExt;
use weir::operators::window::{tumbling, WindowExt, WindowResult};
use weir::{EventTime, Stream, Timestamped};

use super::q0::{q0, Q0Row};
use crate::registry::{Input, Query, Results};

/// The window length.
pub const Q7_WINDOW: Duration = Duration::from_secs(10);

/// A q7 result: a bid with the highest price of its window.
pub type Q7Row = Q0Row;

impl Timestamped for Q0Row {
    fn event_time(&self) -> EventTime {
        self.date_time
    }
}

/// A window's highest price, timed at the window's last millisecond (in the window).
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
struct WindowMax {
    price: u64,
    at: EventTime,
}

impl Timestamped for WindowMax {
    fn event_time(&self) -> EventTime {
        self.at
    }
}

/// q7: per-auction highest bids, joined with the window's maximum price.
pub fn q7<'s>(events: Stream<'s, Event>) -> Stream<'s, Q7Row> {
    let bids = q0(events);
    let window = tumbling(Q7_WINDOW);
    let candidates: Stream<'s, Q7Row> = bids
        .key_by(|bid| bid.auction)
        .window(window)
        .aggregate(MaxBy::of(|bid: &Q7Row| bid.price))
        .results
        .flat_map(|highest| highest.value);
    let window_start =
        |at: EventTime| EventTime(at.millis() - at.millis() % weir::millis(Q7_WINDOW));
    let maxima = candidates
        .clone()
        .key_by(move |bid| window_start(bid.date_time))
        .window(window)
        .aggregate(Max::of(|bid: &Q7Row| bid.price))
        .results
        .flat_map(|max: WindowResult<EventTime, Option<u64>>| {
            let at = max.event_time();
            max.value.map(|price| WindowMax { price, at })
        });
    maxima
        .key_by(move |max| window_start(max.at))
        .window_cogroup(
            candidates.key_by(move |bid| window_start(bid.date_time)),
            window,
            |_, _, maxima, bids| {
                let max = maxima.first().map(|max| max.price);
                bids.iter()
                    .filter(|bid| Some(bid.price) == max)
                    .cloned()
                    .collect::<Vec<_>>()
            },
        )
        .results
}

/// q7 in the registry.
pub const Q7: Query = Query {
    name: "q7",
    about: "Highest bid: the bids with the highest price of each 10 s window (a window join).",
    reads: &[Input::Bids, Input::Padding],
    results: Results::Appends,
    build: |_, events, output| output.append(q7(events)),
};
