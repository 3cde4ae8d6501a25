//! Nexmark q8, monitor new users: the people who opened an auction in the same 10 s window in
//! which they registered.
//!
//! ```sql
//! SELECT P.id, P.name, P.starttime
//! FROM (SELECT P.id, P.name, TUMBLE_START(P.dateTime, INTERVAL '10' SECOND) AS starttime,
//!              TUMBLE_END(P.dateTime, INTERVAL '10' SECOND) AS endtime
//!       FROM person P GROUP BY P.id, P.name, TUMBLE(P.dateTime, INTERVAL '10' SECOND)) P
//! JOIN (SELECT A.seller, TUMBLE_START(A.dateTime, INTERVAL '10' SECOND) AS starttime,
//!              TUMBLE_END(A.dateTime, INTERVAL '10' SECOND) AS endtime
//!       FROM auction A GROUP BY A.seller, TUMBLE(A.dateTime, INTERVAL '10' SECOND)) A
//! ON P.id = A.seller AND P.starttime = A.starttime AND P.endtime = A.endtime;
//! ```

use std::time::Duration;

use crate::registry::{Input, Query, Results};
use crate::Event;
use serde::{Deserialize, Serialize};
use weir::datetime::serde_millis;
use weir::operators::join::JoinExt;
use weir::operators::window::tumbling;
use weir::{EventTime, Stream, Timestamped};

/// The window length.
pub const Q8_WINDOW: Duration = Duration::from_secs(10);

/// A q8 result: a person who registered and opened an auction in one window.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Q8Row {
    /// The person's id.
    pub id: u64,
    /// The person's name.
    pub name: String,
    /// The window's start.
    #[serde(with = "serde_millis")]
    pub starttime: EventTime,
}

/// The columns of a person q8 reads.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct NewPerson {
    id: u64,
    name: String,
    date_time: EventTime,
}

/// The columns of an auction q8 reads.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
struct NewAuction {
    seller: u64,
    date_time: EventTime,
}

impl Timestamped for NewPerson {
    fn event_time(&self) -> EventTime {
        self.date_time
    }
}

impl Timestamped for NewAuction {
    fn event_time(&self) -> EventTime {
        self.date_time
    }
}

/// q8: a window join of people (by id) and auctions (by seller), one row per person and
/// window in which both sides have records.
pub fn q8<'s>(events: Stream<'s, Event>) -> Stream<'s, Q8Row> {
    let people = events
        .clone()
        .flat_map(|event| match event {
            Event::Person(person) => Some(NewPerson {
                id: person.id,
                name: person.name,
                date_time: person.date_time,
            }),
            _ => None,
        })
        .key_by(|person| person.id);
    let auctions = events
        .flat_map(|event| match event {
            Event::Auction(auction) => Some(NewAuction {
                seller: auction.seller,
                date_time: auction.date_time,
            }),
            _ => None,
        })
        .key_by(|auction| auction.seller);
    people
        .window_cogroup(
            auctions,
            tumbling(Q8_WINDOW),
            |id, window, people, auctions| match (people.first(), auctions.is_empty()) {
                (Some(person), false) => Some(Q8Row {
                    id: *id,
                    name: person.name.clone(),
                    starttime: window.start,
                }),
                _ => None,
            },
        )
        .results
}

/// q8 in the registry.
pub const Q8: Query = Query {
    name: "q8",
    about: "Monitor new users: people who opened an auction in the 10 s window they registered in (a window join).",
    reads: &[Input::Auctions, Input::People],
    results: Results::Appends,
    build: |_, events, output| output.append(q8(events)),
};
