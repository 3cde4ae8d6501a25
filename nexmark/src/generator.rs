//! The Nexmark event generator: the standard event mix and rules, with every field a pure
//! function of `(seed, event id)`.
//!
//! Of every 50 consecutive event ids, 1 is a person, 3 are auctions and 46 are bids. Person
//! and auction ids start at 1000 and grow densely with the event id. Sellers, bidders and
//! bid targets are skewed towards "hot" recent entities as in the reference generator.

use std::sync::Arc;
use std::time::Duration;

use weir::EventTime;

use super::model::{Auction, Bid, Event, Person};
use super::random::EventRng;

const PROPORTION_DENOMINATOR: u64 = 50;
const PERSON_PROPORTION: u64 = 1;
const AUCTION_PROPORTION: u64 = 3;
/// The first person id.
pub const FIRST_PERSON_ID: u64 = 1000;
/// The first auction id.
pub const FIRST_AUCTION_ID: u64 = 1000;
/// The first category id; categories are `10..15`.
pub const FIRST_CATEGORY_ID: u64 = 10;
const NUM_CATEGORIES: u64 = 5;
/// How far ahead of the newest person a random bidder or seller may be.
pub const PERSON_ID_LEAD: u64 = 10;
/// How far ahead of the newest auction a random bid may target.
pub const AUCTION_ID_LEAD: u64 = 10;
const NUM_ACTIVE_PEOPLE: u64 = 1000;
const NUM_IN_FLIGHT_AUCTIONS: u64 = 100;
/// Hot entities are the multiples of this among the recent ids.
const HOT_GROUP: u64 = 100;
const AVG_PERSON_BYTES: usize = 200;
const AVG_AUCTION_BYTES: usize = 500;
const AVG_BID_BYTES: usize = 100;
const NUM_CHANNELS: u64 = 10_000;
const HOT_CHANNELS: [&str; 4] = ["Google", "Facebook", "Baidu", "Apple"];
const FIRST_NAMES: [&str; 11] = [
    "Peter", "Paul", "Luke", "John", "Saul", "Vicky", "Kate", "Julie", "Sarah", "Deiter", "Walter",
];
const LAST_NAMES: [&str; 9] = [
    "Shultz", "Abrams", "Spencer", "White", "Bartels", "Walton", "Smith", "Jones", "Noris",
];
const US_STATES: [&str; 6] = ["AZ", "CA", "ID", "OR", "WA", "WY"];
const US_CITIES: [&str; 10] = [
    "Phoenix",
    "Los Angeles",
    "San Francisco",
    "Boise",
    "Portland",
    "Bend",
    "Redmond",
    "Seattle",
    "Kent",
    "Cheyenne",
];

/// 2015-07-15 00:00:00 UTC, the customary start of Nexmark event time.
pub const DEFAULT_BASE_TIME: EventTime = EventTime(1_436_918_400_000);

/// The generator's parameters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GeneratorConfig {
    /// Seed of every random choice.
    pub seed: u64,
    /// Events per second of event time.
    pub rate: u64,
    /// Event time of event 0, milliseconds since the Unix epoch.
    pub base_time: EventTime,
    /// Largest amount by which an event's time may lag the in-order time of its id: events
    /// arrive out of order within this bound. Zero for in-order events.
    pub max_disorder_ms: u64,
}

impl Default for GeneratorConfig {
    fn default() -> Self {
        GeneratorConfig {
            seed: 0,
            rate: 100_000,
            base_time: DEFAULT_BASE_TIME,
            max_disorder_ms: 0,
        }
    }
}

/// What kind of event an id is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    /// A person.
    Person,
    /// An auction.
    Auction,
    /// A bid.
    Bid,
}

impl EventKind {
    /// The kind of event `id`.
    pub fn of(id: u64) -> Self {
        match id % PROPORTION_DENOMINATOR {
            offset if offset < PERSON_PROPORTION => EventKind::Person,
            offset if offset < PERSON_PROPORTION + AUCTION_PROPORTION => EventKind::Auction,
            _ => EventKind::Bid,
        }
    }
}

/// The 0-based id of the newest person at event `id`.
pub fn last_base0_person_id(id: u64) -> u64 {
    let epoch = id / PROPORTION_DENOMINATOR;
    // Past the people of this group of 50, the newest person is its last one.
    let offset = match id % PROPORTION_DENOMINATOR {
        offset if offset < PERSON_PROPORTION => offset,
        _ => PERSON_PROPORTION - 1,
    };
    epoch * PERSON_PROPORTION + offset
}

/// The 0-based id of the newest auction at event `id`; `None` before the first auction.
pub fn last_base0_auction_id(id: u64) -> Option<u64> {
    let epoch = id / PROPORTION_DENOMINATOR;
    let offset = id % PROPORTION_DENOMINATOR;
    if offset < PERSON_PROPORTION {
        // A person event: the newest auction is the last one of the previous group of 50.
        (epoch * AUCTION_PROPORTION).checked_sub(1)
    } else {
        let offset = (offset - PERSON_PROPORTION).min(AUCTION_PROPORTION - 1);
        Some(epoch * AUCTION_PROPORTION + offset)
    }
}

/// A deterministic Nexmark event generator.
///
/// ```
/// use weir_nexmark::{Event, Generator, GeneratorConfig};
/// let generator = Generator::new(GeneratorConfig::default());
/// assert!(matches!(generator.event(0), Event::Person(_)));
/// assert!(matches!(generator.event(1), Event::Auction(_)));
/// assert!(matches!(generator.event(4), Event::Bid(_)));
/// assert_eq!(generator.event(123), generator.event(123));
/// ```
#[derive(Clone, Debug)]
pub struct Generator {
    config: GeneratorConfig,
    /// `(channel, url)` of every channel, computed once: bids pick from them.
    channels: Vec<(Arc<str>, Arc<str>)>,
    hot_channels: Vec<(Arc<str>, Arc<str>)>,
}

impl Generator {
    /// A generator with these parameters.
    pub fn new(config: GeneratorConfig) -> Self {
        let channels = (0..NUM_CHANNELS)
            .map(|number| {
                let mut rng = EventRng::new(config.seed ^ 0xC4A2_73E1, number);
                let mut url = String::from("https://www.nexmark.com/");
                for _ in 0..3 {
                    url.push_str(&rng.text(5));
                    url.push('/');
                }
                url.push_str("item.htm?query=1&channel_id=");
                url.push_str(&number.to_string());
                let url = url.replace(' ', "_");
                (Arc::from(format!("channel-{number}")), Arc::from(url))
            })
            .collect();
        let hot_channels = HOT_CHANNELS
            .iter()
            .map(|name| {
                let url = format!(
                    "https://www.nexmark.com/{}/item.htm?query=1",
                    name.to_lowercase()
                );
                (Arc::from(*name), Arc::from(url))
            })
            .collect();
        Generator {
            config,
            channels,
            hot_channels,
        }
    }

    /// The parameters.
    pub fn config(&self) -> &GeneratorConfig {
        &self.config
    }

    /// The in-order event time of event `id`: `base_time + id / rate` seconds.
    pub fn timestamp_of(&self, id: u64) -> EventTime {
        let offset = u128::from(id) * 1000 / u128::from(self.config.rate.max(1));
        EventTime(self.config.base_time.millis() + offset as u64)
    }

    /// The lowest event time any event with an id `>= id` can have: a watermark for a reader
    /// whose next event is `id`.
    pub fn watermark_before(&self, id: u64) -> EventTime {
        self.timestamp_of(id)
            .saturating_sub(Duration::from_millis(self.config.max_disorder_ms))
    }

    /// Event `id`.
    pub fn event(&self, id: u64) -> Event {
        let mut rng = EventRng::new(self.config.seed, id);
        let date_time = if self.config.max_disorder_ms == 0 {
            self.timestamp_of(id)
        } else {
            self.timestamp_of(id).saturating_sub(Duration::from_millis(
                rng.below(self.config.max_disorder_ms + 1),
            ))
        };
        match EventKind::of(id) {
            EventKind::Person => Event::Person(Box::new(self.person(id, date_time, &mut rng))),
            EventKind::Auction => Event::Auction(Box::new(self.auction(id, date_time, &mut rng))),
            EventKind::Bid => Event::Bid(self.bid(id, date_time, &mut rng)),
        }
    }

    fn person(&self, id: u64, date_time: EventTime, rng: &mut EventRng) -> Person {
        let name = format!(
            "{} {}",
            FIRST_NAMES[rng.below(FIRST_NAMES.len() as u64) as usize],
            LAST_NAMES[rng.below(LAST_NAMES.len() as u64) as usize]
        );
        let email_address = format!("{}@{}.com", rng.text_up_to(7), rng.text_up_to(5));
        let credit_card = format!(
            "{:04} {:04} {:04} {:04}",
            rng.below(10_000),
            rng.below(10_000),
            rng.below(10_000),
            rng.below(10_000)
        );
        let city = US_CITIES[rng.below(US_CITIES.len() as u64) as usize].to_owned();
        let state = US_STATES[rng.below(US_STATES.len() as u64) as usize].to_owned();
        // Numbers and times count 8 bytes, strings their length.
        let size =
            8 + name.len() + email_address.len() + credit_card.len() + city.len() + state.len() + 8;
        Person {
            id: last_base0_person_id(id) + FIRST_PERSON_ID,
            name,
            email_address,
            credit_card,
            city,
            state,
            date_time,
            extra: rng.extra(size, AVG_PERSON_BYTES),
        }
    }

    fn auction(&self, id: u64, date_time: EventTime, rng: &mut EventRng) -> Auction {
        let newest_person = last_base0_person_id(id);
        let seller = if rng.below(4) > 0 {
            // 3 in 4 auctions come from a hot seller among the newest hundred people.
            (newest_person / HOT_GROUP) * HOT_GROUP
        } else {
            random_person(newest_person, rng)
        };
        let item_name = rng.text_up_to(20);
        let description = rng.text_up_to(100);
        let initial_bid = price(rng);
        let reserve = initial_bid + price(rng);
        let size = 8 + item_name.len() + description.len() + 8 * 6;
        Auction {
            id: last_base0_auction_id(id).unwrap_or(0) + FIRST_AUCTION_ID,
            item_name,
            description,
            initial_bid,
            reserve,
            date_time,
            expires: date_time + self.auction_length(id, rng),
            seller: seller + FIRST_PERSON_ID,
            category: FIRST_CATEGORY_ID + rng.below(NUM_CATEGORIES),
            extra: rng.extra(size, AVG_AUCTION_BYTES),
        }
    }

    /// An auction lasts up to two "horizons": the event time the generator needs to create
    /// the number of auctions that are in flight at once.
    fn auction_length(&self, id: u64, rng: &mut EventRng) -> Duration {
        let events_for_auctions =
            NUM_IN_FLIGHT_AUCTIONS * PROPORTION_DENOMINATOR / AUCTION_PROPORTION;
        let horizon =
            self.timestamp_of(id + events_for_auctions).millis() - self.timestamp_of(id).millis();
        Duration::from_millis(1 + rng.below((2 * horizon).max(1)))
    }

    fn bid(&self, id: u64, date_time: EventTime, rng: &mut EventRng) -> Bid {
        // A bid's id is never below 4, so an auction exists.
        let newest_auction = last_base0_auction_id(id).unwrap_or(0);
        let auction = if rng.below(2) > 0 {
            // 1 in 2 bids go to a hot auction.
            (newest_auction / HOT_GROUP) * HOT_GROUP
        } else {
            let oldest = newest_auction.saturating_sub(NUM_IN_FLIGHT_AUCTIONS);
            oldest + rng.below(newest_auction - oldest + 1 + AUCTION_ID_LEAD)
        };
        let newest_person = last_base0_person_id(id);
        let bidder = if rng.below(4) > 0 {
            // 3 in 4 bids come from a hot bidder.
            (newest_person / HOT_GROUP) * HOT_GROUP + 1
        } else {
            random_person(newest_person, rng)
        };
        let price = price(rng);
        let (channel, url) = if rng.below(2) > 0 {
            &self.hot_channels[rng.below(HOT_CHANNELS.len() as u64) as usize]
        } else {
            &self.channels[rng.below(NUM_CHANNELS) as usize]
        };
        Bid {
            auction: auction + FIRST_AUCTION_ID,
            bidder: bidder + FIRST_PERSON_ID,
            price,
            channel: Arc::clone(channel),
            url: Arc::clone(url),
            date_time,
            // As in the reference generator, the shared channel and url strings do not count.
            extra: rng.extra(32, AVG_BID_BYTES).into(),
        }
    }
}

/// A 0-based person id among the active people, possibly up to [`PERSON_ID_LEAD`] ahead.
fn random_person(newest_person: u64, rng: &mut EventRng) -> u64 {
    let people = newest_person + 1;
    let active = people.min(NUM_ACTIVE_PEOPLE);
    people - active + rng.below(active + PERSON_ID_LEAD)
}

/// A price in cents, log-uniform between 100 and 10^8.
fn price(rng: &mut EventRng) -> u64 {
    // 10^(6u) as e^(6u ln 10): `exp` is markedly cheaper than `powf`.
    ((rng.unit() * 6.0 * std::f64::consts::LN_10).exp() * 100.0).round() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn generate(config: GeneratorConfig, count: u64) -> Vec<Event> {
        let generator = Generator::new(config);
        (0..count).map(|id| generator.event(id)).collect()
    }

    #[test]
    fn event_mix_is_one_person_three_auctions_forty_six_bids() {
        let events = generate(GeneratorConfig::default(), 100_000);
        let count = |kind: u8| events.iter().filter(|e| e.event_type() == kind).count();
        assert_eq!((count(0), count(1), count(2)), (2_000, 6_000, 92_000));
    }

    #[test]
    fn ids_start_at_1000_and_grow_densely() {
        let events = generate(GeneratorConfig::default(), 50_000);
        let (mut people, mut auctions) = (Vec::new(), Vec::new());
        for event in &events {
            match event {
                Event::Person(person) => people.push(person.id),
                Event::Auction(auction) => auctions.push(auction.id),
                Event::Bid(_) => {}
            }
        }
        assert_eq!(
            people,
            (1000..1000 + people.len() as u64).collect::<Vec<_>>()
        );
        assert_eq!(
            auctions,
            (1000..1000 + auctions.len() as u64).collect::<Vec<_>>()
        );
    }

    #[test]
    fn references_stay_within_the_known_ids_and_hot_shares_hold() {
        let generator = Generator::new(GeneratorConfig::default());
        let (mut bids, mut hot_bidders, mut hot_auctions) = (0u64, 0u64, 0u64);
        let (mut auctions, mut hot_sellers) = (0u64, 0u64);
        for id in 0..200_000 {
            let newest_person = last_base0_person_id(id) + FIRST_PERSON_ID;
            match generator.event(id) {
                Event::Bid(bid) => {
                    let newest_auction = last_base0_auction_id(id).unwrap() + FIRST_AUCTION_ID;
                    assert!(bid.auction >= FIRST_AUCTION_ID);
                    assert!(bid.auction <= newest_auction + AUCTION_ID_LEAD);
                    assert!(bid.bidder >= FIRST_PERSON_ID);
                    assert!(bid.bidder <= newest_person + PERSON_ID_LEAD);
                    assert!((100..=100_000_000).contains(&bid.price));
                    bids += 1;
                    hot_bidders += u64::from(bid.bidder % HOT_GROUP == 1);
                    hot_auctions += u64::from(bid.auction % HOT_GROUP == 0);
                }
                Event::Auction(auction) => {
                    assert!(auction.seller <= newest_person + PERSON_ID_LEAD);
                    assert!((10..15).contains(&auction.category));
                    assert!(auction.reserve > auction.initial_bid);
                    assert!(auction.expires > auction.date_time);
                    // Two horizons at 100k events/s are 2 * 1666 events, about 34 ms.
                    assert!(auction.expires.since(auction.date_time) <= Duration::from_millis(34));
                    auctions += 1;
                    hot_sellers += u64::from(auction.seller % HOT_GROUP == 0);
                }
                Event::Person(person) => {
                    assert_eq!(person.credit_card.len(), 19);
                    assert!(US_STATES.contains(&person.state.as_str()));
                }
            }
        }
        // Hot shares plus the random picks that happen to hit a hot id (about 1 %).
        let share = |part: u64, whole: u64| part as f64 / whole as f64;
        assert!(
            (0.74..0.77).contains(&share(hot_bidders, bids)),
            "{hot_bidders}/{bids}"
        );
        assert!(
            (0.49..0.52).contains(&share(hot_auctions, bids)),
            "{hot_auctions}/{bids}"
        );
        assert!(
            (0.73..0.78).contains(&share(hot_sellers, auctions)),
            "{hot_sellers}/{auctions}"
        );
    }

    #[test]
    fn prices_are_log_uniform() {
        let mut rng = EventRng::new(7, 7);
        let mut per_decade = [0u32; 6];
        for _ in 0..60_000 {
            let decade = ((price(&mut rng) as f64 / 100.0).log10().floor() as usize).min(5);
            per_decade[decade] += 1;
        }
        assert!(
            per_decade.iter().all(|&n| (9_000..11_000).contains(&n)),
            "{per_decade:?}"
        );
    }

    #[test]
    fn record_sizes_average_the_standard_targets() {
        let events = generate(GeneratorConfig::default(), 100_000);
        let mut sizes = [(0usize, 0usize); 3];
        for event in &events {
            let json = serde_json::to_value(event).unwrap();
            let kind = usize::from(event.event_type());
            let body = &json[["person", "auction", "bid"][kind]];
            // Sizes as the generator counts them: numbers and times 8 bytes, strings their
            // length, a bid's shared channel and url not at all.
            let text_bytes: usize = body
                .as_object()
                .unwrap()
                .iter()
                .map(|(field, value)| match field.as_str() {
                    "dateTime" | "expires" => 8,
                    "channel" | "url" => 0,
                    _ => value.as_str().map_or(8, str::len),
                })
                .sum();
            sizes[kind].0 += text_bytes;
            sizes[kind].1 += 1;
        }
        let averages: Vec<usize> = sizes.iter().map(|(total, n)| total / n).collect();
        for (average, target) in averages.iter().zip([200, 500, 100]) {
            assert!(average.abs_diff(target) <= target / 10, "{averages:?}");
        }
    }

    #[test]
    fn same_seed_same_events_other_seed_other_events() {
        let a = generate(GeneratorConfig::default(), 2_000);
        let b = generate(GeneratorConfig::default(), 2_000);
        let c = generate(
            GeneratorConfig {
                seed: 1,
                ..GeneratorConfig::default()
            },
            2_000,
        );
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn event_time_follows_the_rate_and_the_disorder_bound() {
        let generator = Generator::new(GeneratorConfig::default());
        assert_eq!(
            generator.timestamp_of(10_000_000).since(DEFAULT_BASE_TIME),
            Duration::from_secs(100)
        );
        let disorderly = Generator::new(GeneratorConfig {
            max_disorder_ms: 50,
            ..GeneratorConfig::default()
        });
        let mut out_of_order = 0;
        let mut latest = EventTime::ZERO;
        for id in 0..100_000 {
            let time = disorderly.event(id).date_time();
            assert!(time >= disorderly.watermark_before(id));
            assert!(time <= disorderly.timestamp_of(id));
            out_of_order += u32::from(time < latest);
            latest = latest.max(time);
        }
        assert!(out_of_order > 10_000, "{out_of_order}");
    }
}
