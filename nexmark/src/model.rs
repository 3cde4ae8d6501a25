//! The Nexmark event types and their JSON lines form:
//! `{"event_type":0|1|2,"person":{...}|null,"auction":{...}|null,"bid":{...}|null}`.

use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use weir::EventTime;

use weir::datetime::serde_millis;

/// A person registering on the auction site.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Person {
    /// Person id, from 1000 up, dense.
    pub id: u64,
    /// First and last name.
    pub name: String,
    /// Email address.
    pub email_address: String,
    /// Credit card number, `"dddd dddd dddd dddd"`.
    pub credit_card: String,
    /// City.
    pub city: String,
    /// US state code.
    pub state: String,
    /// Event time, milliseconds since the Unix epoch.
    #[serde(with = "serde_millis")]
    pub date_time: EventTime,
    /// Padding.
    #[serde(deserialize_with = "super::strings::long_string")]
    pub extra: String,
}

/// An item put up for auction.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Auction {
    /// Auction id, from 1000 up, dense.
    pub id: u64,
    /// Item name.
    pub item_name: String,
    /// Item description.
    pub description: String,
    /// Initial bid in cents.
    pub initial_bid: u64,
    /// Reserve price in cents.
    pub reserve: u64,
    /// Event time, milliseconds since the Unix epoch.
    #[serde(with = "serde_millis")]
    pub date_time: EventTime,
    /// When the auction closes, milliseconds since the Unix epoch.
    #[serde(with = "serde_millis")]
    pub expires: EventTime,
    /// The selling person's id.
    pub seller: u64,
    /// Category id, 10 to 14.
    pub category: u64,
    /// Padding.
    #[serde(deserialize_with = "super::strings::long_string")]
    pub extra: String,
}

/// A bid on an auction.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Bid {
    /// The auction's id.
    pub auction: u64,
    /// The bidding person's id.
    pub bidder: u64,
    /// Price in cents.
    pub price: u64,
    /// The channel the bid came through. Shared (`Arc`) because bids draw from a fixed set
    /// of channels: cloning a shared string is cheaper than allocating one per bid.
    #[serde(deserialize_with = "super::strings::shared_str")]
    pub channel: Arc<str>,
    /// The url the bid came through; shared like `channel`.
    #[serde(deserialize_with = "super::strings::shared_str")]
    pub url: Arc<str>,
    /// Event time, milliseconds since the Unix epoch.
    #[serde(with = "serde_millis")]
    pub date_time: EventTime,
    /// Padding. A `Box<str>`, 8 bytes smaller than a `String`: operators hold bids by the
    /// million (q18's last bids, q19's top ten).
    #[serde(deserialize_with = "super::strings::long_string")]
    pub extra: Box<str>,
}

/// One Nexmark event. People and auctions are boxed: they are large and rare (8 % of events),
/// and a small `Event` keeps the bids, 92 % of the stream, cheap to move.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// A new person (`event_type` 0).
    Person(Box<Person>),
    /// A new auction (`event_type` 1).
    Auction(Box<Auction>),
    /// A bid (`event_type` 2).
    Bid(Bid),
}

impl Event {
    /// The event's time.
    pub fn date_time(&self) -> EventTime {
        match self {
            Event::Person(person) => person.date_time,
            Event::Auction(auction) => auction.date_time,
            Event::Bid(bid) => bid.date_time,
        }
    }

    /// The `event_type` number of the JSON form.
    pub fn event_type(&self) -> u8 {
        match self {
            Event::Person(_) => 0,
            Event::Auction(_) => 1,
            Event::Bid(_) => 2,
        }
    }
}

/// The JSON shape of an event, borrowed for writing.
#[derive(Serialize)]
struct EventRef<'a> {
    event_type: u8,
    person: Option<&'a Person>,
    auction: Option<&'a Auction>,
    bid: Option<&'a Bid>,
}

/// The JSON shape of an event, owned for reading. People and auctions are boxed as they are
/// read: the unboxed shape is several times the size of a bid, and moving it costs more than
/// decoding the bid.
#[derive(Deserialize)]
struct EventOwned {
    event_type: u8,
    person: Option<Box<Person>>,
    auction: Option<Box<Auction>>,
    bid: Option<Bid>,
}

impl Serialize for Event {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let (mut person, mut auction, mut bid) = (None, None, None);
        match self {
            Event::Person(p) => person = Some(&**p),
            Event::Auction(a) => auction = Some(&**a),
            Event::Bid(b) => bid = Some(b),
        }
        EventRef {
            event_type: self.event_type(),
            person,
            auction,
            bid,
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Event {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let raw = EventOwned::deserialize(deserializer)?;
        match (raw.event_type, raw.person, raw.auction, raw.bid) {
            (0, Some(person), None, None) => Ok(Event::Person(person)),
            (1, None, Some(auction), None) => Ok(Event::Auction(auction)),
            (2, None, None, Some(bid)) => Ok(Event::Bid(bid)),
            (event_type @ 0..=2, ..) => Err(D::Error::custom(format!(
                "event_type {event_type} needs exactly its own field ({}) set and the others null",
                ["person", "auction", "bid"][usize::from(event_type)]
            ))),
            (other, ..) => Err(D::Error::custom(format!(
                "unknown event_type {other}: expected 0 (person), 1 (auction) or 2 (bid)"
            ))),
        }
    }
}

impl weir::Timestamped for Event {
    fn event_time(&self) -> EventTime {
        self.date_time()
    }
}

impl weir::Timestamped for Bid {
    fn event_time(&self) -> EventTime {
        self.date_time
    }
}

impl weir::Timestamped for Auction {
    fn event_time(&self) -> EventTime {
        self.date_time
    }
}

impl weir::Timestamped for Person {
    fn event_time(&self) -> EventTime {
        self.date_time
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bid() -> Bid {
        Bid {
            auction: 1007,
            bidder: 1001,
            price: 12_345,
            channel: "Google".into(),
            url: "https://www.nexmark.com/google/item.htm?query=1".into(),
            date_time: EventTime(1_436_918_400_123),
            extra: "xyz".into(),
        }
    }

    #[test]
    fn json_form_matches_the_shared_format() {
        let line = serde_json::to_string(&Event::Bid(bid())).unwrap();
        assert_eq!(
            line,
            r#"{"event_type":2,"person":null,"auction":null,"bid":{"auction":1007,"bidder":1001,"price":12345,"channel":"Google","url":"https://www.nexmark.com/google/item.htm?query=1","dateTime":"2015-07-15 00:00:00.123","extra":"xyz"}}"#
        );
        let back: Event = serde_json::from_str(&line).unwrap();
        assert_eq!(back, Event::Bid(bid()));
    }

    #[test]
    fn inconsistent_events_are_rejected_with_the_reason() {
        let error = serde_json::from_str::<Event>(
            r#"{"event_type":0,"person":null,"auction":null,"bid":null}"#,
        )
        .unwrap_err()
        .to_string();
        assert!(
            error.contains("event_type 0 needs exactly its own field (person)"),
            "{error}"
        );
        let error = serde_json::from_str::<Event>(
            r#"{"event_type":7,"person":null,"auction":null,"bid":null}"#,
        )
        .unwrap_err()
        .to_string();
        assert!(error.contains("unknown event_type 7"), "{error}");
        let error = serde_json::from_str::<Event>(
            r#"{"event_type":2,"person":null,"auction":null,"bid":{"auction":1,"bidder":2,"price":3,"channel":"c","url":"u","dateTime":"yesterday","extra":""}}"#,
        )
        .unwrap_err()
        .to_string();
        assert!(error.contains("invalid date-time \"yesterday\""), "{error}");
    }
}
