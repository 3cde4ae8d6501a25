//! Nexmark q11, user sessions: how many bids each bidder made in each session of activity,
//! a session ending after 10 s without bids.
//!
//! ```sql
//! SELECT B.bidder, count(*) AS bid_count,
//!        SESSION_START(B.dateTime, INTERVAL '10' SECOND) AS starttime,
//!        SESSION_END(B.dateTime, INTERVAL '10' SECOND) AS endtime
//! FROM bid B
//! GROUP BY B.bidder, SESSION(B.dateTime, INTERVAL '10' SECOND);
//! ```

use std::time::Duration;

use crate::Event;
use serde::{Deserialize, Serialize};
use weir::datetime::serde_millis;
use weir::operators::aggregate::Count;
use weir::operators::window::{session, WindowExt};
use weir::{EventTime, Stream, Timestamped};

use super::bids::select_bids;
use crate::registry::{Input, Query, Results};

/// The silence that ends a session.
pub const Q11_GAP: Duration = Duration::from_secs(10);

/// A q11 result: one bidder's session.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Q11Row {
    /// The bidder's id.
    pub bidder: u64,
    /// Bids in the session.
    pub bid_count: u64,
    /// The session's first bid.
    #[serde(with = "serde_millis")]
    pub starttime: EventTime,
    /// The session's last bid plus the gap.
    #[serde(with = "serde_millis")]
    pub endtime: EventTime,
}

/// The columns of a bid q11 reads.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
struct BidderBid {
    bidder: u64,
    date_time: EventTime,
}

impl Timestamped for BidderBid {
    fn event_time(&self) -> EventTime {
        self.date_time
    }
}

/// q11: bids per bidder per session.
pub fn q11<'s>(events: Stream<'s, Event>) -> Stream<'s, Q11Row> {
    select_bids(events, |bid| {
        Some(BidderBid {
            bidder: bid.bidder,
            date_time: bid.date_time,
        })
    })
    .key_by(|bid| bid.bidder)
    .window(session(Q11_GAP))
    .aggregate(Count)
    .results
    .map(|session| Q11Row {
        bidder: session.key,
        bid_count: session.value,
        starttime: session.start,
        endtime: session.end,
    })
}

/// q11 in the registry.
pub const Q11: Query = Query {
    name: "q11",
    about: "User sessions: bids per bidder per session (10 s gap).",
    reads: &[Input::Bids],
    results: Results::Appends,
    build: |_, events, output| output.append(q11(events)),
};
