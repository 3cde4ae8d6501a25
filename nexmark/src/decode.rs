//! Nexmark events decoded by hand, leaving out the strings a query never reads.
//!
//! serde's derive decodes every field of every event: for a bid, three strings checked,
//! allocated and copied, and freed again by a query that reads only its price. Reading and
//! decoding bound the stateless queries (docs/benchmarks.md), so [`EventDecoder`] decodes the
//! log's binary form and the JSON form straight into [`Event`]s and leaves every string its
//! [`Projection`] does not ask for empty. Numbers (ids, prices, times) are always decoded:
//! they are cheap, and event times drive the watermarks.
//!
//! Skipped strings are still checked to be UTF-8, so a projection never changes which records
//! are accepted. Anything out of the ordinary (a JSON string with escapes, a key it does not
//! know, keys missing, a malformed record) goes to serde's derive instead: both decoders
//! accept exactly the same records, and a rejected record carries serde's reason.

use std::cell::RefCell;
use std::collections::HashSet;
use std::sync::Arc;

use foldhash::fast::FixedState;

use weir::datetime;
use weir::{decode_with_serde, Decode, Encoded, EventTime};

use crate::model::{Auction, Bid, Event, Person};
use crate::registry::Input;

/// Which strings of the events a query reads; [`EventDecoder`] leaves the others empty.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Projection {
    /// People's name, email address, credit card, city and state.
    pub people: bool,
    /// Auctions' item name and description.
    pub auctions: bool,
    /// Bids' channel and url.
    pub bid_channels: bool,
    /// Bids' channel and url (when kept) as one copy per distinct string, shared by every
    /// bid that holds it (see [`Input::BidChannelsHeld`]).
    pub shared_bid_channels: bool,
    /// The `extra` padding of every event.
    pub extra: bool,
}

impl Projection {
    /// Every field.
    pub const ALL: Projection = Projection {
        people: true,
        auctions: true,
        bid_channels: true,
        shared_bid_channels: false,
        extra: true,
    };

    /// The fields a query that reads `reads` needs.
    pub fn of(reads: &[Input]) -> Projection {
        Projection {
            people: reads.contains(&Input::People),
            auctions: reads.contains(&Input::Auctions),
            bid_channels: reads.contains(&Input::BidChannels)
                || reads.contains(&Input::BidChannelsHeld),
            shared_bid_channels: reads.contains(&Input::BidChannelsHeld),
            extra: reads.contains(&Input::Padding),
        }
    }

    /// `event` with the strings this projection leaves out emptied, as [`EventDecoder`]
    /// decodes it.
    pub fn apply(&self, event: Event) -> Event {
        fn keep<S: Default>(text: S, keep: bool) -> S {
            if keep {
                text
            } else {
                S::default()
            }
        }
        match event {
            Event::Person(person) => Event::Person(Box::new(Person {
                name: keep(person.name, self.people),
                email_address: keep(person.email_address, self.people),
                credit_card: keep(person.credit_card, self.people),
                city: keep(person.city, self.people),
                state: keep(person.state, self.people),
                extra: keep(person.extra, self.extra),
                ..*person
            })),
            Event::Auction(auction) => Event::Auction(Box::new(Auction {
                item_name: keep(auction.item_name, self.auctions),
                description: keep(auction.description, self.auctions),
                extra: keep(auction.extra, self.extra),
                ..*auction
            })),
            Event::Bid(bid) => Event::Bid(Bid {
                channel: self.bid_channel(&bid.channel),
                url: self.bid_channel(&bid.url),
                extra: keep(bid.extra, self.extra),
                ..bid
            }),
        }
    }

    /// A bid's channel or url as this projection decodes it: empty when left out, else
    /// shared or a copy of its own.
    fn bid_channel(&self, text: &str) -> Arc<str> {
        if !self.bid_channels {
            EMPTY.with(Arc::clone)
        } else if self.shared_bid_channels {
            shared(text)
        } else {
            Arc::from(text)
        }
    }
}

/// Decodes Nexmark events by hand, keeping the strings of its [`Projection`] (a source's
/// [`Decode`], set with `CheckRecords::decoder`).
#[derive(Clone, Copy, Debug)]
pub struct EventDecoder {
    projection: Projection,
}

impl EventDecoder {
    /// A decoder that keeps what `projection` asks for.
    pub fn new(projection: Projection) -> Self {
        EventDecoder { projection }
    }

    /// The event, if the fast path handles this record; `None` leaves it to serde.
    fn fast(&self, encoded: Encoded<'_>) -> Option<Event> {
        match encoded {
            Encoded::Binary(bytes) => Binary { bytes, at: 0 }.event(self.projection),
            Encoded::Json(text) => Json::new(text).event(self.projection),
        }
    }
}

impl Decode<Event> for EventDecoder {
    fn decode(&self, encoded: Encoded<'_>) -> Result<Event, String> {
        match self.fast(encoded) {
            Some(event) => Ok(event),
            None => decode_with_serde(encoded).map(|event| self.projection.apply(event)),
        }
    }
}

/// How many distinct strings a worker shares (see [`shared`]).
const SHARED_STRINGS: usize = 16 * 1024;

thread_local! {
    /// The empty shared string that stands for a bid's channel or url left out.
    static EMPTY: Arc<str> = Arc::from("");
    /// The strings this worker has shared, the first [`SHARED_STRINGS`] distinct ones.
    static SHARED: RefCell<HashSet<Arc<str>, FixedState>> = RefCell::default();
}

/// `text` as this worker's shared copy of it.
///
/// Bids draw their channel and url from a small set (about 10,000 in the generator's events),
/// so one copy of each, shared by every bid that holds it, keeps the bids that operators hold
/// (q18's last bids, q19's top ten) 130 bytes smaller each than one allocation per bid. The
/// lookup costs more than the allocation it saves when the bid is dropped soon (14 % more CPU
/// for q21), hence only for queries that hold bids. Once a worker shares [`SHARED_STRINGS`]
/// strings, new ones get their own copy.
fn shared(text: &str) -> Arc<str> {
    SHARED.with_borrow_mut(|strings| {
        if let Some(held) = strings.get(text) {
            return Arc::clone(held);
        }
        let text: Arc<str> = Arc::from(text);
        if strings.len() < SHARED_STRINGS {
            strings.insert(Arc::clone(&text));
        }
        text
    })
}

/// `text` as a string if it is kept, else an empty one (which allocates nothing).
fn owned<S: for<'a> From<&'a str> + Default>(text: &str, keep: bool) -> S {
    if keep {
        S::from(text)
    } else {
        S::default()
    }
}

/// Checks `bytes` for UTF-8: with SIMD for long strings, with the standard library (whose
/// ASCII fast path suits Nexmark's short strings) for the rest.
fn utf8(bytes: &[u8]) -> Option<&str> {
    if bytes.len() >= 64 {
        simdutf8::basic::from_utf8(bytes).ok()
    } else {
        std::str::from_utf8(bytes).ok()
    }
}

/// weir's binary form of an event (postcard, as serde's derive writes it): the event type as
/// a byte, then each of `person`, `auction` and `bid` as an option (a `0` or `1` byte, then
/// the fields in their declared order), numbers as LEB128 varints, strings as a varint
/// length and their bytes.
struct Binary<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Binary<'a> {
    fn event(mut self, projection: Projection) -> Option<Event> {
        let event_type = self.byte()?;
        let person = self.option(|this| this.person(projection))?;
        let auction = self.option(|this| this.auction(projection))?;
        let bid = self.option(|this| this.bid(projection))?;
        if self.at != self.bytes.len() {
            return None;
        }
        match (event_type, person, auction, bid) {
            (0, Some(person), None, None) => Some(Event::Person(Box::new(person))),
            (1, None, Some(auction), None) => Some(Event::Auction(Box::new(auction))),
            (2, None, None, Some(bid)) => Some(Event::Bid(bid)),
            _ => None,
        }
    }

    fn person(&mut self, projection: Projection) -> Option<Person> {
        let keep = projection.people;
        Some(Person {
            id: self.varint()?,
            name: self.text(keep)?,
            email_address: self.text(keep)?,
            credit_card: self.text(keep)?,
            city: self.text(keep)?,
            state: self.text(keep)?,
            date_time: EventTime(self.varint()?),
            extra: self.text(projection.extra)?,
        })
    }

    fn auction(&mut self, projection: Projection) -> Option<Auction> {
        let keep = projection.auctions;
        Some(Auction {
            id: self.varint()?,
            item_name: self.text(keep)?,
            description: self.text(keep)?,
            initial_bid: self.varint()?,
            reserve: self.varint()?,
            date_time: EventTime(self.varint()?),
            expires: EventTime(self.varint()?),
            seller: self.varint()?,
            category: self.varint()?,
            extra: self.text(projection.extra)?,
        })
    }

    fn bid(&mut self, projection: Projection) -> Option<Bid> {
        Some(Bid {
            auction: self.varint()?,
            bidder: self.varint()?,
            price: self.varint()?,
            channel: self.bid_channel(projection)?,
            url: self.bid_channel(projection)?,
            date_time: EventTime(self.varint()?),
            extra: self.text(projection.extra)?,
        })
    }

    fn byte(&mut self) -> Option<u8> {
        let byte = *self.bytes.get(self.at)?;
        self.at += 1;
        Some(byte)
    }

    /// `Some(None)` for an absent value, `Some(Some(value))` for a present one, `None` for
    /// a bad tag or value.
    fn option<T>(&mut self, value: impl FnOnce(&mut Self) -> Option<T>) -> Option<Option<T>> {
        match self.byte()? {
            0 => Some(None),
            1 => value(self).map(Some),
            _ => None,
        }
    }

    /// A varint of up to nine bytes (63 bits); longer ones are left to serde.
    fn varint(&mut self) -> Option<u64> {
        let mut value = 0;
        for shift in (0..63).step_by(7) {
            let byte = self.byte()?;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Some(value);
            }
        }
        None
    }

    /// A string's bytes, unchecked.
    fn field(&mut self) -> Option<&'a [u8]> {
        let len = usize::try_from(self.varint()?).ok()?;
        let end = self.at.checked_add(len)?;
        let bytes = self.bytes.get(self.at..end)?;
        self.at = end;
        Some(bytes)
    }

    fn str(&mut self) -> Option<&'a str> {
        utf8(self.field()?)
    }

    /// Moves past a string left out, checked to be UTF-8 all the same, by an inlined ASCII
    /// test first (Nexmark's strings are ASCII).
    fn skip(&mut self) -> Option<()> {
        let bytes = self.field()?;
        (bytes.is_ascii() || utf8(bytes).is_some()).then_some(())
    }

    /// A string as `S` when kept, else skipped and `S`'s empty value.
    fn text<S: for<'b> From<&'b str> + Default>(&mut self, keep: bool) -> Option<S> {
        if keep {
            self.str().map(S::from)
        } else {
            self.skip().map(|()| S::default())
        }
    }

    /// A bid's channel or url as `projection` decodes it.
    fn bid_channel(&mut self, projection: Projection) -> Option<Arc<str>> {
        if projection.bid_channels {
            self.str().map(|text| projection.bid_channel(text))
        } else {
            self.skip().map(|()| projection.bid_channel(""))
        }
    }
}

/// The JSON form of an event (`model`'s module documentation), as serde_json reads it, for
/// the records it is simple to read: keys in any order, whitespace anywhere, numbers as plain
/// digits and strings without escapes.
struct Json<'a> {
    text: &'a str,
    at: usize,
    /// Whether the text holds control characters (whitespace such as tabs included), which
    /// JSON strings may not: without any, strings need not be checked one by one.
    controls: bool,
}

impl<'a> Json<'a> {
    fn new(text: &'a str) -> Self {
        let controls = smallest_byte(text.as_bytes()) < 0x20;
        Json {
            text,
            at: 0,
            controls,
        }
    }
}

/// The smallest of `bytes`, by a fold without an early exit, which the compiler vectorises.
fn smallest_byte(bytes: &[u8]) -> u8 {
    bytes
        .iter()
        .fold(u8::MAX, |smallest, &byte| smallest.min(byte))
}

impl<'a> Json<'a> {
    fn event(mut self, projection: Projection) -> Option<Event> {
        let (mut event_type, mut person, mut auction, mut bid) = (None, None, None, None);
        self.object(
            &["event_type", "person", "auction", "bid"],
            |this, key| match key {
                "event_type" => set(&mut event_type, u8::try_from(this.number()?).ok()?),
                "person" => set(&mut person, this.nullable(|this| this.person(projection))?),
                "auction" => set(
                    &mut auction,
                    this.nullable(|this| this.auction(projection))?,
                ),
                "bid" => set(&mut bid, this.nullable(|this| this.bid(projection))?),
                _ => None,
            },
        )?;
        self.whitespace();
        if self.at != self.text.len() {
            return None;
        }
        match (event_type?, person?, auction?, bid?) {
            (0, Some(person), None, None) => Some(Event::Person(Box::new(person))),
            (1, None, Some(auction), None) => Some(Event::Auction(Box::new(auction))),
            (2, None, None, Some(bid)) => Some(Event::Bid(bid)),
            _ => None,
        }
    }

    fn person(&mut self, projection: Projection) -> Option<Person> {
        let keep = projection.people;
        let (mut id, mut name, mut email_address, mut credit_card) = (None, None, None, None);
        let (mut city, mut state, mut date_time, mut extra) = (None, None, None, None);
        self.object(PERSON_KEYS, |this, key| match key {
            "id" => set(&mut id, this.number()?),
            "name" => set(&mut name, owned(this.string()?, keep)),
            "emailAddress" => set(&mut email_address, owned(this.string()?, keep)),
            "creditCard" => set(&mut credit_card, owned(this.string()?, keep)),
            "city" => set(&mut city, owned(this.string()?, keep)),
            "state" => set(&mut state, owned(this.string()?, keep)),
            "dateTime" => set(&mut date_time, this.date_time()?),
            "extra" => set(&mut extra, owned(this.string()?, projection.extra)),
            _ => None,
        })?;
        Some(Person {
            id: id?,
            name: name?,
            email_address: email_address?,
            credit_card: credit_card?,
            city: city?,
            state: state?,
            date_time: date_time?,
            extra: extra?,
        })
    }

    fn auction(&mut self, projection: Projection) -> Option<Auction> {
        let keep = projection.auctions;
        let (mut id, mut item_name, mut description, mut initial_bid) = (None, None, None, None);
        let (mut reserve, mut date_time, mut expires) = (None, None, None);
        let (mut seller, mut category, mut extra) = (None, None, None);
        self.object(AUCTION_KEYS, |this, key| match key {
            "id" => set(&mut id, this.number()?),
            "itemName" => set(&mut item_name, owned(this.string()?, keep)),
            "description" => set(&mut description, owned(this.string()?, keep)),
            "initialBid" => set(&mut initial_bid, this.number()?),
            "reserve" => set(&mut reserve, this.number()?),
            "dateTime" => set(&mut date_time, this.date_time()?),
            "expires" => set(&mut expires, this.date_time()?),
            "seller" => set(&mut seller, this.number()?),
            "category" => set(&mut category, this.number()?),
            "extra" => set(&mut extra, owned(this.string()?, projection.extra)),
            _ => None,
        })?;
        Some(Auction {
            id: id?,
            item_name: item_name?,
            description: description?,
            initial_bid: initial_bid?,
            reserve: reserve?,
            date_time: date_time?,
            expires: expires?,
            seller: seller?,
            category: category?,
            extra: extra?,
        })
    }

    fn bid(&mut self, projection: Projection) -> Option<Bid> {
        let (mut auction, mut bidder, mut price, mut channel) = (None, None, None, None);
        let (mut url, mut date_time, mut extra) = (None, None, None);
        self.object(BID_KEYS, |this, key| match key {
            "auction" => set(&mut auction, this.number()?),
            "bidder" => set(&mut bidder, this.number()?),
            "price" => set(&mut price, this.number()?),
            "channel" => set(&mut channel, projection.bid_channel(this.string()?)),
            "url" => set(&mut url, projection.bid_channel(this.string()?)),
            "dateTime" => set(&mut date_time, this.date_time()?),
            "extra" => set(&mut extra, owned(this.string()?, projection.extra)),
            _ => None,
        })?;
        Some(Bid {
            auction: auction?,
            bidder: bidder?,
            price: price?,
            channel: channel?,
            url: url?,
            date_time: date_time?,
            extra: extra?,
        })
    }

    /// An object, handing each key to `field`, which reads its value (`None` for a key it
    /// does not take, or a bad value). `keys` are the keys in their usual order: the one
    /// expected next is compared in place, and only another key is searched for its end.
    fn object(
        &mut self,
        keys: &[&'static str],
        mut field: impl FnMut(&mut Self, &'a str) -> Option<()>,
    ) -> Option<()> {
        self.expect(b'{')?;
        if self.peek() == Some(b'}') {
            self.at += 1;
            return Some(());
        }
        let mut expected = keys.iter();
        loop {
            let key = match expected.next() {
                Some(key) if self.quoted(key) => key,
                _ => self.string()?,
            };
            self.expect(b':')?;
            field(self, key)?;
            match self.peek()? {
                b',' => self.at += 1,
                b'}' => {
                    self.at += 1;
                    return Some(());
                }
                _ => return None,
            }
        }
    }

    /// Whether the text goes on with `text` in quotes, moving past it if it does.
    fn quoted(&mut self, text: &str) -> bool {
        self.whitespace();
        let after = self.text.as_bytes()[self.at..]
            .strip_prefix(b"\"")
            .and_then(|rest| rest.strip_prefix(text.as_bytes()))
            .and_then(|rest| rest.strip_prefix(b"\""));
        if let Some(after) = after {
            self.at = self.text.len() - after.len();
        }
        after.is_some()
    }

    /// `null` as `None`, else `value`.
    fn nullable<T>(&mut self, value: impl FnOnce(&mut Self) -> Option<T>) -> Option<Option<T>> {
        if self.peek()? == b'n' {
            let end = self.at + 4;
            (self.text.get(self.at..end)? == "null").then(|| self.at = end)?;
            Some(None)
        } else {
            value(self).map(Some)
        }
    }

    /// A number of plain digits that fits a `u64` (no sign, fraction, exponent or leading
    /// zero).
    fn number(&mut self) -> Option<u64> {
        self.whitespace();
        let bytes = &self.text.as_bytes()[self.at..];
        let (mut value, mut digits) = (0u64, 0);
        for &byte in bytes.iter().take_while(|byte| byte.is_ascii_digit()) {
            value = value.checked_mul(10)?.checked_add(u64::from(byte - b'0'))?;
            digits += 1;
        }
        if digits == 0 || (digits > 1 && bytes[0] == b'0') {
            return None;
        }
        self.at += digits;
        Some(value)
    }

    /// A string without escapes or control characters.
    fn string(&mut self) -> Option<&'a str> {
        self.expect(b'"')?;
        let rest = &self.text.as_bytes()[self.at..];
        let len = memchr::memchr2(b'"', b'\\', rest)?;
        if rest[len] != b'"' || (self.controls && smallest_byte(&rest[..len]) < 0x20) {
            return None;
        }
        // Both ends are ASCII quotes, so they are character boundaries.
        let text = self.text.get(self.at..self.at + len)?;
        self.at += len + 1;
        Some(text)
    }

    fn date_time(&mut self) -> Option<EventTime> {
        datetime::parse(self.string()?).ok()
    }

    /// The next byte after whitespace, not consumed.
    fn peek(&mut self) -> Option<u8> {
        self.whitespace();
        self.text.as_bytes().get(self.at).copied()
    }

    fn expect(&mut self, byte: u8) -> Option<()> {
        (self.peek()? == byte).then(|| self.at += 1)
    }

    fn whitespace(&mut self) {
        let rest = &self.text.as_bytes()[self.at..];
        self.at += rest
            .iter()
            .take_while(|byte| matches!(byte, b' ' | b'\t' | b'\n' | b'\r'))
            .count();
    }
}

/// A person's keys in the order Nexmark's generators write them.
const PERSON_KEYS: &[&str] = &[
    "id",
    "name",
    "emailAddress",
    "creditCard",
    "city",
    "state",
    "dateTime",
    "extra",
];
/// An auction's keys in the order Nexmark's generators write them.
const AUCTION_KEYS: &[&str] = &[
    "id",
    "itemName",
    "description",
    "initialBid",
    "reserve",
    "dateTime",
    "expires",
    "seller",
    "category",
    "extra",
];
/// A bid's keys in the order Nexmark's generators write them.
const BID_KEYS: &[&str] = &[
    "auction", "bidder", "price", "channel", "url", "dateTime", "extra",
];

/// Fills a field's slot; a second value for it (a duplicate key) is left to serde.
fn set<T>(slot: &mut Option<T>, value: T) -> Option<()> {
    slot.is_none().then(|| *slot = Some(value))
}

/// Panics unless [`EventDecoder`] under every projection gives serde's verdict on `data`,
/// read as a binary value and, if it is UTF-8, as JSON: the same rejection, or the same event
/// with the left-out strings emptied (for the fuzzers and the tests).
#[cfg(any(test, fuzzing))]
pub(crate) fn check_against_serde(data: &[u8]) {
    let text = std::str::from_utf8(data).ok();
    let encodings = [Some(Encoded::Binary(data)), text.map(Encoded::Json)];
    for encoded in encodings.into_iter().flatten() {
        let serde = decode_with_serde::<Event>(encoded);
        for projection in every_projection() {
            let expected = serde.clone().map(|event| projection.apply(event));
            let decoded = EventDecoder::new(projection).decode(encoded);
            assert_eq!(decoded, expected, "{encoded:?} with {projection:?}");
        }
    }
}

/// The thirty-two projections.
#[cfg(any(test, fuzzing))]
fn every_projection() -> Vec<Projection> {
    (0..32u8)
        .map(|bits| Projection {
            people: bits & 1 != 0,
            auctions: bits & 2 != 0,
            bid_channels: bits & 4 != 0,
            shared_bid_channels: bits & 16 != 0,
            extra: bits & 8 != 0,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Generator, GeneratorConfig};
    use proptest::prelude::*;

    fn binary(event: &Event) -> Vec<u8> {
        postcard::to_stdvec(event).unwrap()
    }

    /// A worker's bids that carry the same channel or url hold one copy of it, up to
    /// `SHARED_STRINGS` distinct strings; past that, each gets its own.
    #[test]
    fn bids_share_their_channel_and_url() {
        std::thread::spawn(|| {
            let held = [Input::Bids, Input::BidChannelsHeld];
            let decoder = EventDecoder::new(Projection::of(&held));
            let bid = |channel: &str| {
                let event = Event::Bid(Bid {
                    auction: 1,
                    bidder: 2,
                    price: 3,
                    channel: Arc::from(channel),
                    url: Arc::from("https://www.nexmark.com/item.htm?query=1"),
                    date_time: EventTime(4),
                    extra: Box::default(),
                });
                match decoder.decode(Encoded::Binary(&binary(&event))).unwrap() {
                    Event::Bid(bid) => bid,
                    other => panic!("not a bid: {other:?}"),
                }
            };
            let (first, second) = (bid("Google"), bid("Google"));
            assert!(Arc::ptr_eq(&first.channel, &second.channel));
            assert!(Arc::ptr_eq(&first.url, &second.url));
            for number in 0..SHARED_STRINGS {
                bid(&format!("channel-{number}"));
            }
            let (late, again) = (bid("late"), bid("late"));
            assert_eq!(late.channel, again.channel);
            assert!(
                !Arc::ptr_eq(&late.channel, &again.channel),
                "past the limit"
            );
            assert!(Arc::ptr_eq(&bid("Google").channel, &first.channel));
        })
        .join()
        .unwrap();
    }

    /// Both forms of every generated event take the fast path and decode, under every
    /// projection, to the event with exactly the left-out strings emptied.
    #[test]
    fn generated_events_take_the_fast_path_in_both_forms() {
        let generator = Generator::new(GeneratorConfig::default());
        for id in 0..500 {
            let event = generator.event(id);
            let (bytes, text) = (binary(&event), serde_json::to_string(&event).unwrap());
            for projection in every_projection() {
                let decoder = EventDecoder::new(projection);
                let expected = projection.apply(event.clone());
                assert_eq!(
                    decoder.fast(Encoded::Binary(&bytes)),
                    Some(expected.clone())
                );
                assert_eq!(decoder.fast(Encoded::Json(&text)), Some(expected));
            }
        }
    }

    #[test]
    fn json_with_spaces_and_keys_in_any_order_takes_the_fast_path() {
        let text = r#" { "bid" : { "extra":"x", "dateTime":"2015-07-15 00:00:00.123",
            "url":"u", "channel":"c", "price":3, "bidder":2, "auction":1 },
            "auction":null, "person" : null, "event_type" : 2 } "#;
        let event = EventDecoder::new(Projection::ALL).fast(Encoded::Json(text));
        let expected: Event = serde_json::from_str(text).unwrap();
        assert_eq!(event, Some(expected));
    }

    /// What the fast path leaves to serde, serde decodes or rejects with its own reason.
    #[test]
    fn unusual_records_are_left_to_serde() {
        let decoder = EventDecoder::new(Projection::ALL);
        let bid = r#""bid":{"auction":1,"bidder":2,"price":3,"channel":"c","url":"u","dateTime":"2015-07-15 00:00:00.123","extra":"#;
        let escaped = format!(r#"{{"event_type":2,"person":null,"auction":null,{bid}"a\"b"}}}}"#);
        let unknown =
            format!(r#"{{"event_type":2,"more":1,"person":null,"auction":null,{bid}""}}}}"#);
        // The expected key with an escape, and a key that starts like the expected one.
        let escaped_key = unknown
            .replace(r#""more":1,"#, "")
            .replace(r#""auction":1"#, r#""auct\u0069on":1"#);
        let longer_key = unknown.replace(
            r#""event_type":2,"more":1"#,
            r#""event_typex":1,"event_type":2"#,
        );
        for text in [&escaped, &unknown, &escaped_key, &longer_key] {
            assert_eq!(decoder.fast(Encoded::Json(text)), None);
            let expected: Event = serde_json::from_str(text).unwrap();
            assert_eq!(decoder.decode(Encoded::Json(text)), Ok(expected));
        }
        for text in [
            format!(r#"{{"event_type":2,"person":null,"auction":null,{bid}""}},"bid":null}}"#),
            format!(r#"{{"event_type":2,"person":null,"auction":null,{bid}""}}}} x"#),
            format!(r#"{{"event_type":2,"person":null,"auction":null,{bid}"\u0001"}}}}"#),
            r#"{"event_type":2,"person":null,"auction":null,"bid":{"auction":01}}"#.to_owned(),
            r#"{"event_type":0,"person":null,"auction":null,"bid":null}"#.to_owned(),
        ] {
            assert_eq!(decoder.fast(Encoded::Json(&text)), None, "{text}");
            assert_eq!(
                decoder.decode(Encoded::Json(&text)),
                decode_with_serde::<Event>(Encoded::Json(&text)),
                "{text}"
            );
        }
    }

    fn text() -> impl Strategy<Value = String> {
        prop_oneof![
            "[a-zA-Z0-9 /:.?=&_-]{0,80}",
            any::<String>(),
            Just("a\"b\\c\u{1}".to_owned()),
            Just("ü".repeat(40)),
        ]
    }

    fn event() -> impl Strategy<Value = Event> {
        let time = (0u64..4_102_444_800_000).prop_map(EventTime);
        prop_oneof![
            (
                any::<u64>(),
                [text(), text(), text(), text(), text(), text()],
                time.clone()
            )
                .prop_map(
                    |(id, [name, email_address, credit_card, city, state, extra], date_time)| {
                        Event::Person(Box::new(Person {
                            id,
                            name,
                            email_address,
                            credit_card,
                            city,
                            state,
                            date_time,
                            extra,
                        }))
                    }
                ),
            (
                any::<[u64; 5]>(),
                [text(), text(), text()],
                time.clone(),
                time.clone()
            )
                .prop_map(
                    |(
                        [id, initial_bid, reserve, seller, category],
                        [item_name, description, extra],
                        date_time,
                        expires,
                    )| {
                        Event::Auction(Box::new(Auction {
                            id,
                            item_name,
                            description,
                            initial_bid,
                            reserve,
                            date_time,
                            expires,
                            seller,
                            category,
                            extra,
                        }))
                    }
                ),
            (any::<[u64; 3]>(), [text(), text(), text()], time).prop_map(
                |([auction, bidder, price], [channel, url, extra], date_time)| {
                    Event::Bid(Bid {
                        auction,
                        bidder,
                        price,
                        channel: channel.into(),
                        url: url.into(),
                        date_time,
                        extra: extra.into(),
                    })
                }
            ),
        ]
    }

    /// The decoder's verdict on a record, against serde's: the same rejection, or the same
    /// event with the left-out strings emptied.
    fn agrees_with_serde(
        encoded: Encoded<'_>,
        projection: Projection,
    ) -> Result<(), TestCaseError> {
        let ours = EventDecoder::new(projection).decode(encoded);
        let serde = decode_with_serde::<Event>(encoded).map(|event| projection.apply(event));
        prop_assert_eq!(ours, serde);
        Ok(())
    }

    /// The event fuzzer's committed corpus (odd and broken values it found) gets serde's
    /// verdict from the hand-written decoder.
    #[test]
    fn the_fuzz_corpus_gets_serdes_verdict() {
        let corpus = concat!(env!("CARGO_MANIFEST_DIR"), "/../fuzz/corpus/event_codecs");
        let mut checked = 0;
        for entry in std::fs::read_dir(corpus).unwrap() {
            check_against_serde(&std::fs::read(entry.unwrap().path()).unwrap());
            checked += 1;
        }
        assert!(checked > 100, "{checked} corpus files");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(400))]

        #[test]
        fn any_event_decodes_as_serde_decodes_it(event in event(), bits in 0..16usize) {
            let projection = every_projection()[bits];
            let bytes = binary(&event);
            let text = serde_json::to_string(&event).unwrap();
            agrees_with_serde(Encoded::Binary(&bytes), projection)?;
            agrees_with_serde(Encoded::Json(&text), projection)?;
            let decoded = EventDecoder::new(projection).decode(Encoded::Binary(&bytes));
            prop_assert_eq!(decoded, Ok(projection.apply(event)));
        }

        /// Damaged records, cut short or with a byte changed, get serde's verdict too.
        #[test]
        fn damaged_records_get_serdes_verdict(
            id in 0..1000u64,
            at in any::<prop::sample::Index>(),
            byte in any::<u8>(),
            cut in any::<bool>(),
            bits in 0..16usize,
        ) {
            let event = Generator::new(GeneratorConfig::default()).event(id);
            let projection = every_projection()[bits];
            let damage = |mut bytes: Vec<u8>| {
                let at = at.index(bytes.len());
                if cut { bytes.truncate(at) } else { bytes[at] = byte }
                bytes
            };
            let bytes = damage(binary(&event));
            agrees_with_serde(Encoded::Binary(&bytes), projection)?;
            let json = damage(serde_json::to_vec(&event).unwrap());
            if let Ok(text) = std::str::from_utf8(&json) {
                agrees_with_serde(Encoded::Json(text), projection)?;
            }
        }
    }
}
