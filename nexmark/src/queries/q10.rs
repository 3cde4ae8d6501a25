//! Nexmark q10, log to a file system: every bid, written to files partitioned by the date and
//! hour of its time.
//!
//! ```sql
//! INSERT INTO fs_sink PARTITION BY (dt, hour)
//! SELECT auction, bidder, price, dateTime, extra,
//!        DATE_FORMAT(dateTime, 'yyyy-MM-dd') AS dt, DATE_FORMAT(dateTime, 'HH') AS hour
//! FROM bid;
//! ```
//!
//! Nexmark's Flink version partitions by the minute (`HH:mm`); hours keep the number of
//! directories of a day-long run at 24. With a JSON lines output (`--out DIR`) the rows go to
//! `DIR/dt=YYYY-MM-DD/hour=HH/` ([`PartitionedFileSink`](weir::files::PartitionedFileSink));
//! other sinks receive the rows with their `dt` and `hour` columns.

use serde::{Deserialize, Serialize};
use weir::datetime::serde_millis;
use weir::{EventTime, Stream};

use super::bids::select_bids;
use crate::registry::{Input, Query, Results};
use crate::Event;

/// A q10 result: a bid with the partition it is written to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Q10Row {
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
    /// The bid's date, `YYYY-MM-DD`.
    pub dt: String,
    /// The bid's hour, `HH`.
    pub hour: String,
}

impl Q10Row {
    /// The directory of the row's partition: `dt=YYYY-MM-DD/hour=HH`.
    pub fn partition(&self) -> String {
        format!("dt={}/hour={}", self.dt, self.hour)
    }
}

/// The date (`YYYY-MM-DD`) and hour (`HH`) of `time`.
pub fn date_and_hour(time: EventTime) -> (String, String) {
    let text = weir::datetime::format(time);
    let (date, clock) = text.split_once(' ').unwrap_or((&text, ""));
    (date.to_owned(), clock.chars().take(2).collect())
}

/// Nexmark q10: every bid with the date and hour that partition it.
pub fn q10<'s>(events: Stream<'s, Event>) -> Stream<'s, Q10Row> {
    select_bids(events, |bid| {
        let (dt, hour) = date_and_hour(bid.date_time);
        Some(Q10Row {
            auction: bid.auction,
            bidder: bid.bidder,
            price: bid.price,
            date_time: bid.date_time,
            extra: bid.extra.into(),
            dt,
            hour,
        })
    })
}

/// q10 in the registry.
pub const Q10: Query = Query {
    name: "q10",
    about: "Log to a file system: every bid, in files partitioned by date and hour.",
    reads: &[Input::Bids, Input::Padding],
    results: Results::Appends,
    build: |_, events, output| output.partitioned(q10(events), Q10Row::partition),
};
