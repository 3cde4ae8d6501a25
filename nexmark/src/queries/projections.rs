//! Nexmark q14, q21 and q22: filters and computed columns on bids, no state.
//!
//! ```sql
//! -- q14
//! SELECT auction, bidder, 0.908 * price AS price,
//!        CASE WHEN HOUR(dateTime) >= 8 AND HOUR(dateTime) <= 18 THEN 'dayTime'
//!             WHEN HOUR(dateTime) <= 6 OR HOUR(dateTime) >= 20 THEN 'nightTime'
//!             ELSE 'otherTime' END AS bidTimeType,
//!        dateTime, extra, count_char(extra, 'c') AS c_counts
//! FROM bid WHERE 0.908 * price > 1000000 AND 0.908 * price < 50000000;
//! -- q21
//! SELECT auction, bidder, price, channel,
//!        CASE WHEN lower(channel) = 'apple' THEN '0' WHEN lower(channel) = 'google' THEN '1'
//!             WHEN lower(channel) = 'facebook' THEN '2' WHEN lower(channel) = 'baidu' THEN '3'
//!             ELSE REGEXP_EXTRACT(url, '(&|^)channel_id=([^&]*)', 2) END AS channel_id
//! FROM bid WHERE REGEXP_EXTRACT(url, '(&|^)channel_id=([^&]*)', 2) IS NOT NULL
//!             OR lower(channel) IN ('apple', 'google', 'facebook', 'baidu');
//! -- q22
//! SELECT auction, bidder, price, channel, SPLIT_INDEX(url, '/', 3) AS dir1,
//!        SPLIT_INDEX(url, '/', 4) AS dir2, SPLIT_INDEX(url, '/', 5) AS dir3 FROM bid;
//! ```

use std::sync::Arc;

use crate::Event;
use serde::{Deserialize, Serialize};
use weir::datetime::serde_millis;
use weir::{EventTime, Stream};

use super::bids::select_bids;
use super::q1::DOLLAR_TO_EURO;
use crate::registry::{Input, Query, Results};

/// A q14 result.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Q14Row {
    /// The auction's id.
    pub auction: u64,
    /// The bidder's id.
    pub bidder: u64,
    /// The price in euros.
    pub price: f64,
    /// `dayTime` (8 to 18 h), `nightTime` (up to 6 h and from 20 h) or `otherTime`.
    pub bid_time_type: String,
    /// Event time.
    #[serde(with = "serde_millis")]
    pub date_time: EventTime,
    /// Padding.
    pub extra: String,
    /// How many `c` characters `extra` holds.
    #[serde(rename = "c_counts")]
    pub c_counts: u64,
}

/// A q21 result.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Q21Row {
    /// The auction's id.
    pub auction: u64,
    /// The bidder's id.
    pub bidder: u64,
    /// The price in cents.
    pub price: u64,
    /// The channel.
    pub channel: Arc<str>,
    /// The channel's number: 0 to 3 for the four well-known channels, else from the url.
    pub channel_id: String,
}

/// A q22 result.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Q22Row {
    /// The auction's id.
    pub auction: u64,
    /// The bidder's id.
    pub bidder: u64,
    /// The price in cents.
    pub price: u64,
    /// The channel.
    pub channel: Arc<str>,
    /// The url's first directory, if any.
    pub dir1: Option<String>,
    /// The url's second directory, if any.
    pub dir2: Option<String>,
    /// The url's third directory, if any.
    pub dir3: Option<String>,
}

/// The hour of the day (UTC) of an event time.
fn hour_of(time: EventTime) -> u64 {
    time.millis() / 3_600_000 % 24
}

/// q14: bids between 1 and 50 million euros with their time of day and `c` count.
pub fn q14<'s>(events: Stream<'s, Event>) -> Stream<'s, Q14Row> {
    select_bids(events, |bid| {
        let price = bid.price as f64 * DOLLAR_TO_EURO;
        if !(price > 1_000_000.0 && price < 50_000_000.0) {
            return None;
        }
        let bid_time_type = match hour_of(bid.date_time) {
            8..=18 => "dayTime",
            0..=6 | 20.. => "nightTime",
            _ => "otherTime",
        };
        Some(Q14Row {
            auction: bid.auction,
            bidder: bid.bidder,
            price,
            bid_time_type: bid_time_type.into(),
            date_time: bid.date_time,
            c_counts: bid.extra.bytes().filter(|&byte| byte == b'c').count() as u64,
            extra: bid.extra.into(),
        })
    })
}

/// The value of the url parameter `channel_id` (`(&|^)channel_id=([^&]*)`), if present.
fn channel_id_param(url: &str) -> Option<&str> {
    let mut search = url;
    let mut offset = 0;
    while let Some(found) = search.find("channel_id=") {
        let at = offset + found;
        if at == 0 || url.as_bytes().get(at - 1) == Some(&b'&') {
            let value = &url[at + "channel_id=".len()..];
            return Some(value.split('&').next().unwrap_or(value));
        }
        offset = at + 1;
        search = &url[offset..];
    }
    None
}

/// q21: bids with the number of their channel.
pub fn q21<'s>(events: Stream<'s, Event>) -> Stream<'s, Q21Row> {
    select_bids(events, |bid| {
        let known = match bid.channel.to_lowercase().as_str() {
            "apple" => Some("0"),
            "google" => Some("1"),
            "facebook" => Some("2"),
            "baidu" => Some("3"),
            _ => None,
        };
        let channel_id = known.or_else(|| channel_id_param(&bid.url))?.to_owned();
        Some(Q21Row {
            auction: bid.auction,
            bidder: bid.bidder,
            price: bid.price,
            channel: bid.channel,
            channel_id,
        })
    })
}

/// q22: bids with the first three directories of their url.
pub fn q22<'s>(events: Stream<'s, Event>) -> Stream<'s, Q22Row> {
    select_bids(events, |bid| {
        let mut parts = bid.url.split('/').skip(3).map(str::to_owned);
        let (dir1, dir2, dir3) = (parts.next(), parts.next(), parts.next());
        Some(Q22Row {
            auction: bid.auction,
            bidder: bid.bidder,
            price: bid.price,
            channel: bid.channel,
            dir1,
            dir2,
            dir3,
        })
    })
}

/// q14 in the registry.
pub const Q14: Query = Query {
    name: "q14",
    about: "Filter and computed columns: euro prices in a range, time of day, `c` count.",
    reads: &[Input::Bids, Input::Padding],
    results: Results::Appends,
    build: |_, events, output| output.append(q14(events)),
};

/// q21 in the registry.
pub const Q21: Query = Query {
    name: "q21",
    about: "String extraction: each bid's channel number.",
    reads: &[Input::Bids, Input::BidChannels],
    results: Results::Appends,
    build: |_, events, output| output.append(q21(events)),
};

/// q22 in the registry.
pub const Q22: Query = Query {
    name: "q22",
    about: "String splitting: the first three directories of each bid's url.",
    reads: &[Input::Bids, Input::BidChannels],
    results: Results::Appends,
    build: |_, events, output| output.append(q22(events)),
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_ids_come_only_from_a_whole_parameter() {
        assert_eq!(
            channel_id_param("https://x.com/a/item.htm?query=1&channel_id=42"),
            Some("42")
        );
        assert_eq!(channel_id_param("channel_id=7&x=1"), Some("7"));
        assert_eq!(channel_id_param("https://x.com/?mychannel_id=3"), None);
        assert_eq!(channel_id_param("https://x.com/?a=1&channel_id="), Some(""));
        assert_eq!(
            channel_id_param("https://x.com/?xchannel_id=1&channel_id=9"),
            Some("9")
        );
    }
}
