//! The bids, and the auctions with their bids, that most queries select from the events.

use crate::{Auction, Bid, Event};
use weir::operators::changelog::Change;
use weir::operators::join::{JoinExt, JoinKind, RegularJoin};
use weir::{Data, EventTime, KeyedStream, Stream};

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

/// Every bid joined with its auction while the auction is open, as `pair(auction, bid)` (q4,
/// q6, q9).
/// An inner join of two streams of records only inserts (it forgets rows when they expire,
/// it never withdraws results), so its changelog is taken as plain records.
pub fn bids_on_open_auctions<'s, O: Data>(
    events: Stream<'s, Event>,
    pair: impl Fn(&Auction, &Bid) -> O + 'static,
) -> Stream<'s, O> {
    let (auctions, bids) = auctions_and_their_bids(events);
    let close = |auction: &Auction, _: EventTime| Some(auction.expires);
    let forget_bids = |_: &Bid, time: EventTime| Some(time);
    auctions
        .join(
            bids,
            RegularJoin::new(JoinKind::Inner).expire(close, forget_bids),
            move |_, auction, bid| {
                let (auction, bid) = (auction?, bid?);
                (auction.date_time..=auction.expires)
                    .contains(&bid.date_time)
                    .then(|| pair(auction, bid))
            },
        )
        .flat_map(|change| match change {
            Change::Insert(row) => Some(row),
            Change::Delete(_) => None,
        })
}
