//! Nexmark q3 and q20: regular (unbounded) inner joins whose results are a changelog of
//! inserts.
//!
//! ```sql
//! -- q3, local item suggestion
//! SELECT P.name, P.city, P.state, A.id
//! FROM auction AS A INNER JOIN person AS P ON A.seller = P.id
//! WHERE A.category = 10 AND (P.state = 'OR' OR P.state = 'ID' OR P.state = 'CA');
//!
//! -- q20, expand bid with auction
//! SELECT auction, bidder, price, channel, url, B.dateTime, B.extra, itemName, description,
//!        initialBid, reserve, A.dateTime, expires, seller, category, A.extra
//! FROM bid AS B INNER JOIN auction AS A ON B.auction = A.id
//! WHERE A.category = 10;
//! ```

use std::sync::Arc;

use crate::{Auction, Bid, Event, Person};
use serde::{Deserialize, Serialize};
use weir::datetime::serde_millis;
use weir::operators::changelog::Change;
use weir::operators::join::{JoinExt, JoinKind, Never, RegularJoin};
use weir::{EventTime, Stream, Timestamped};

use super::bids::select_bids;
use crate::registry::{Input, Query, Results, UpsertKey};
use weir::operators::changelog::ChangelogExt;

/// The category q3 and q20 select.
pub const CATEGORY: u64 = 10;

/// A q3 result: a seller in Oregon, Idaho or California and an auction of category 10.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Q3Row {
    /// The seller's name.
    pub name: String,
    /// The seller's city.
    pub city: String,
    /// The seller's state.
    pub state: String,
    /// The auction's id.
    pub id: u64,
}

/// A q20 result: a bid with the auction (of category 10) it is on.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Q20Row {
    /// Auction id.
    pub auction: u64,
    /// Bidder id.
    pub bidder: u64,
    /// Bid price.
    pub price: u64,
    /// Bid channel.
    pub channel: Arc<str>,
    /// Bid url.
    pub url: Arc<str>,
    /// Bid time.
    #[serde(rename = "dateTime", with = "serde_millis")]
    pub bid_date_time: EventTime,
    /// Bid padding.
    #[serde(rename = "extra")]
    pub bid_extra: String,
    /// Item name.
    pub item_name: String,
    /// Item description.
    pub description: String,
    /// Initial bid.
    pub initial_bid: u64,
    /// Reserve price.
    pub reserve: u64,
    /// Auction time.
    #[serde(rename = "auctionDateTime", with = "serde_millis")]
    pub auction_date_time: EventTime,
    /// When the auction closes.
    #[serde(with = "serde_millis")]
    pub expires: EventTime,
    /// Seller id.
    pub seller: u64,
    /// Category.
    pub category: u64,
    /// Auction padding.
    #[serde(rename = "auctionExtra")]
    pub auction_extra: String,
}

/// Event-time order for join inputs: every Nexmark record happens at its `date_time`.
macro_rules! timestamped {
    ($($record:ty),*) => {$(
        impl Timestamped for $record {
            fn event_time(&self) -> EventTime {
                self.date_time
            }
        }
    )*};
}

/// The columns of a person q3 reads.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Seller {
    id: u64,
    name: String,
    city: String,
    state: String,
    date_time: EventTime,
}

/// The columns of an auction q3 reads.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
struct SellerAuction {
    id: u64,
    seller: u64,
    date_time: EventTime,
}

timestamped!(Seller, SellerAuction);

fn people(events: Stream<'_, Event>) -> Stream<'_, Box<Person>> {
    events.flat_map(|event| match event {
        Event::Person(person) => Some(person),
        _ => None,
    })
}

/// The auctions of category 10.
fn auctions_of_category(events: Stream<'_, Event>) -> Stream<'_, Box<Auction>> {
    events.flat_map(|event| match event {
        Event::Auction(auction) if auction.category == CATEGORY => Some(auction),
        _ => None,
    })
}

/// q3: auctions of category 10 joined with their sellers from OR, ID or CA.
pub fn q3<'s>(events: Stream<'s, Event>) -> Stream<'s, Change<Q3Row>> {
    let sellers = people(events.clone())
        .flat_map(|person| {
            matches!(person.state.as_str(), "OR" | "ID" | "CA").then(|| Seller {
                id: person.id,
                name: person.name,
                city: person.city,
                state: person.state,
                date_time: person.date_time,
            })
        })
        .key_by(|seller| seller.id);
    auctions_of_category(events)
        .map(|auction| SellerAuction {
            id: auction.id,
            seller: auction.seller,
            date_time: auction.date_time,
        })
        .key_by(|auction| auction.seller)
        .join(
            sellers,
            RegularJoin::new(JoinKind::Inner),
            |_, auction, seller| {
                let (auction, seller) = (auction?, seller?);
                Some(Q3Row {
                    name: seller.name.clone(),
                    city: seller.city.clone(),
                    state: seller.state.clone(),
                    id: auction.id,
                })
            },
        )
}

/// q20: every bid joined with its auction if that is of category 10. Auctions are kept for
/// the whole run (a bid may come at any time); a bid is forgotten once the watermark passes
/// it, as auctions still to come are newer than it (Nexmark bids are on existing auctions).
pub fn q20<'s>(events: Stream<'s, Event>) -> Stream<'s, Change<Q20Row>> {
    let auctions = auctions_of_category(events.clone()).key_by(|auction| auction.id);
    let bids = select_bids(events, Some).key_by(|bid| bid.auction);
    let forget_bids = |_: &Bid, time: EventTime| Some(time);
    bids.join(
        auctions.map_values(|auction| *auction),
        RegularJoin::new(JoinKind::Inner).expire(forget_bids, Never),
        |_, bid, auction| {
            let (bid, auction) = (bid?, auction?);
            Some(Q20Row {
                auction: bid.auction,
                bidder: bid.bidder,
                price: bid.price,
                channel: Arc::clone(&bid.channel),
                url: Arc::clone(&bid.url),
                bid_date_time: bid.date_time,
                bid_extra: bid.extra.to_string(),
                item_name: auction.item_name.clone(),
                description: auction.description.clone(),
                initial_bid: auction.initial_bid,
                reserve: auction.reserve,
                auction_date_time: auction.date_time,
                expires: auction.expires,
                seller: auction.seller,
                category: auction.category,
                auction_extra: auction.extra.clone(),
            })
        },
    )
}

/// q3 in the registry.
pub const Q3: Query = Query {
    name: "q3",
    about: "Local item suggestion: auctions of category 10 with their sellers from OR, ID or CA (a regular join).",
    reads: &[Input::Auctions, Input::People],
    results: Results::Updates {
        key: UpsertKey::Row,
    },
    build: |_, events, output| output.updates(q3(events), ChangelogExt::final_view),
};

/// q20 in the registry.
pub const Q20: Query = Query {
    name: "q20",
    about: "Expand bid with auction: bids on auctions of category 10 with the auction's columns (a regular join).",
    reads: &[Input::Auctions, Input::Bids, Input::BidChannelsHeld, Input::Padding],
    results: Results::Updates {
        key: UpsertKey::Row,
    },
    build: |_, events, output| output.updates(q20(events), ChangelogExt::final_view),
};
