//! Orders charged once: the order service delivers each order at least once (a retry after a
//! timeout sends it again, with the same order id as its idempotency key), and the job must
//! charge each order exactly once. It deduplicates deliveries by order id and sums the
//! revenue of each minute; with checkpoints, the exactly-once sink then never writes a
//! minute's revenue twice, even when the job is killed and restored.
//!
//! ```text
//! deliveries -> key by order id -> dedupe (first per minute) -> key by () -> tumbling 1 min
//!            -> (Count, Sum) -> revenue per minute
//! ```
//!
//! Every delivery of an order carries the order as it was placed, so all its copies share
//! `ordered_at` and fall in the same minute: dedupe keeps one per minute, and that minute's
//! window counts it. Dedupe emits a minute's orders when the watermark passes the minute's
//! end, which is when the revenue window of the same minute fires, so the two line up. A
//! copy arriving after its minute was emitted is late: it goes to the late output, it is
//! never charged.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use weir::datetime::serde_millis;
use weir::operators::aggregate::{Count, Sum};
use weir::operators::dedupe::{DedupeExt, Keep};
use weir::operators::window::{tumbling, WindowExt};
use weir::{EventTime, Stream, Timestamped};

use crate::io::{SampleLine, SAMPLE_START};
use crate::random::SampleRng;
use crate::registry::Example;

/// The minutes revenue is summed over, and the horizon of the dedupe.
pub const MINUTE: Duration = Duration::from_secs(60);
/// How far behind the newest delivery one may arrive and still be deduplicated.
pub const DISORDER: Duration = Duration::from_secs(30);

/// One delivery of an order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Order {
    /// The order's id: its idempotency key.
    pub order_id: String,
    /// Who ordered.
    pub customer: String,
    /// What it costs, in cents.
    pub amount_cents: u64,
    /// When it was placed.
    #[serde(with = "serde_millis")]
    pub ordered_at: EventTime,
    /// Which delivery this is: 1 for the first, more for retries.
    pub attempt: u32,
}

impl Timestamped for Order {
    fn event_time(&self) -> EventTime {
        self.ordered_at
    }
}

/// The revenue of one minute.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Revenue {
    /// The minute's first millisecond.
    #[serde(with = "serde_millis")]
    pub start: EventTime,
    /// The next minute's first millisecond.
    #[serde(with = "serde_millis")]
    pub end: EventTime,
    /// Orders placed in it, each counted once.
    pub orders: u64,
    /// What they cost, in cents.
    pub revenue_cents: u64,
}

/// Rejects orders that cannot be charged.
fn chargeable(order: &Order) -> Result<(), String> {
    if order.amount_cents == 0 {
        return Err(format!("order {}: amount_cents is 0", order.order_id));
    }
    Ok(())
}

/// Revenue per minute, each order counted once whatever its deliveries; returns it with the
/// copies that came after their minute was emitted.
pub fn revenue<'s>(orders: Stream<'s, Order>) -> (Stream<'s, Revenue>, Stream<'s, Order>) {
    let once = orders
        .key_by(|order| order.order_id.clone())
        .dedupe(Keep::First, MINUTE);
    let minutes = once
        .results
        .key_by(|_| ())
        .window(tumbling(MINUTE))
        .aggregate((Count, Sum::of(|order: &Order| order.amount_cents)));
    let revenue = minutes.results.map(|minute| Revenue {
        start: minute.start,
        end: minute.end,
        orders: minute.value.0,
        revenue_cents: minute.value.1,
    });
    // Dedupe's output is on time for the windows (see the module's notes), so their late
    // output stays empty; it is kept with dedupe's all the same.
    (revenue, once.late.union(minutes.late))
}

/// `orders` in the registry.
pub const ORDERS: Example = Example {
    name: "orders",
    about: "Orders delivered at least once, charged once: revenue per minute.",
    shows:
        "dedupe by idempotency key, tumbling windows on one key, (Count, Sum), exactly-once sinks",
    results: "{start, end, orders, revenue_cents} per minute; deliveries of an order arriving \
              after its minute was emitted go to the late output; orders of 0 cents are dead \
              letters",
    build: |p, input, output| {
        let (revenue, late) = revenue(input.read(p, DISORDER, chargeable));
        output.append(revenue);
        output.late(late);
    },
    sample,
};

/// Orders a few hundred milliseconds apart; one in five is delivered twice or three times,
/// the copies up to 20 s after the first (retries), one in five hundred copies 3 minutes
/// after (late); one order in a thousand costs 0 cents.
fn sample(seed: u64, records: u64) -> Vec<SampleLine> {
    let mut rng = SampleRng::new(seed);
    let mut deliveries: Vec<(u64, Order)> = Vec::new();
    let mut now = SAMPLE_START.millis();
    let mut id = 0;
    while (deliveries.len() as u64) < records {
        now += rng.below(600);
        id += 1;
        let order = Order {
            order_id: format!("order-{id:07}"),
            customer: format!("customer-{}", rng.below(500)),
            amount_cents: if rng.percent(1) && rng.percent(10) {
                0
            } else {
                100 + rng.below(20_000)
            },
            ordered_at: EventTime(now),
            attempt: 1,
        };
        let copies = if rng.percent(20) { 2 + rng.below(2) } else { 1 };
        for attempt in 1..=copies {
            let delay = match attempt {
                1 => 0,
                _ if rng.percent(1) && rng.percent(20) => 3 * 60_000,
                _ => rng.below(20_000),
            };
            let copy = Order {
                attempt: attempt as u32,
                ..order.clone()
            };
            deliveries.push((now + delay, copy));
        }
    }
    deliveries.truncate(records as usize);
    deliveries.sort_by_key(|(arrival, order)| (*arrival, order.order_id.clone(), order.attempt));
    deliveries
        .iter()
        .map(|(_, order)| SampleLine::json(&order.order_id, order))
        .collect()
}
