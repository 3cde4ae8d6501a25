//! The bids, and the auctions with their bids, that most queries select from the events.

use crate::{Auction, Bid, Event};
use weir::{Data, KeyedStream, Stream};

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
