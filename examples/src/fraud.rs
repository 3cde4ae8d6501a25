//! Fraud detection: a card that makes a small transaction (a thief checking that it works)
//! and then a large one within a minute raises an alert, as in Flink's fraud-detection
//! tutorial, in event time.
//!
//! ```text
//! transactions -> key by card -> keyed process (state + event-time timers) -> alerts
//! ```
//!
//! Transactions arrive out of order, so the process buffers each card's transactions until
//! the watermark passes their time (a timer per transaction) and then judges them in
//! event-time order: the result depends on the transactions alone, not on their arrival.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use weir::datetime::serde_millis;
use weir::{EventTime, KeyedContext, KeyedOutput, KeyedProcess, Stream, Timestamped};

use crate::io::{any, SampleLine, SAMPLE_START};
use crate::random::SampleRng;
use crate::registry::Example;

/// A transaction of at most this many cents is small.
pub const SMALL_CENTS: u64 = 100;
/// A transaction of at least this many cents is large.
pub const LARGE_CENTS: u64 = 50_000;
/// A large transaction raises an alert if it follows a small one by less than this.
pub const WITHIN: Duration = Duration::from_secs(60);
/// How far behind the newest transaction one may arrive and still be judged.
pub const DISORDER: Duration = Duration::from_secs(15);

/// One card transaction.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transaction {
    /// The card.
    pub card: String,
    /// The amount, in cents.
    pub amount_cents: u64,
    /// Where.
    pub merchant: String,
    /// When.
    #[serde(with = "serde_millis")]
    pub time: EventTime,
}

impl Timestamped for Transaction {
    fn event_time(&self) -> EventTime {
        self.time
    }
}

/// A small transaction followed by a large one within a minute.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Alert {
    /// The card.
    pub card: String,
    /// The small transaction's amount, in cents.
    pub small_cents: u64,
    /// When it was made.
    #[serde(with = "serde_millis")]
    pub small_at: EventTime,
    /// The large transaction's amount, in cents.
    pub large_cents: u64,
    /// When it was made.
    #[serde(with = "serde_millis")]
    pub large_at: EventTime,
    /// Where.
    pub merchant: String,
}

/// The order transactions are judged in: event time, then amount and merchant for equal
/// times, so that ties never depend on arrival.
fn judging_order(transaction: &Transaction) -> (EventTime, u64, String) {
    (
        transaction.time,
        transaction.amount_cents,
        transaction.merchant.clone(),
    )
}

/// The rule, for the next transaction of a card in event-time order: it raises an alert if
/// it is large and follows a small one (`small`) by less than a minute. Any transaction ends
/// the small one's minute; a small transaction starts a new one.
pub fn judge(small: &mut Option<Transaction>, next: Transaction) -> Option<Alert> {
    let alert = small.take().and_then(|small| {
        let soon = next.time.millis() - small.time.millis() < WITHIN.as_millis() as u64;
        (soon && next.amount_cents >= LARGE_CENTS).then(|| Alert {
            card: next.card.clone(),
            small_cents: small.amount_cents,
            small_at: small.time,
            large_cents: next.amount_cents,
            large_at: next.time,
            merchant: next.merchant.clone(),
        })
    });
    if next.amount_cents <= SMALL_CENTS {
        *small = Some(next);
    }
    alert
}

/// The alerts of `transactions` without the engine: each card's transactions judged in
/// event-time order (for checking what [`alerts`] computed).
pub fn judge_all(transactions: impl IntoIterator<Item = Transaction>) -> Vec<Alert> {
    let mut by_card: std::collections::BTreeMap<String, Vec<Transaction>> = Default::default();
    for transaction in transactions {
        by_card
            .entry(transaction.card.clone())
            .or_default()
            .push(transaction);
    }
    let mut alerts = Vec::new();
    for (_, mut card) in by_card {
        card.sort_by_key(judging_order);
        let mut small = None;
        alerts.extend(card.into_iter().filter_map(|next| judge(&mut small, next)));
    }
    alerts
}

/// A card's state: transactions waiting for the watermark, and the last small one if its
/// minute is still open.
#[derive(Default, Serialize, Deserialize)]
pub struct CardState {
    waiting: Vec<Transaction>,
    small: Option<Transaction>,
}

/// The keyed process behind [`alerts`].
struct FraudDetector;

impl KeyedProcess<String, Transaction> for FraudDetector {
    type State = CardState;
    type Output = Alert;

    fn on_record(
        &mut self,
        cx: &mut KeyedContext<String, Alert, Transaction>,
        _card: &String,
        state: &mut CardState,
        transaction: Transaction,
        time: EventTime,
    ) {
        // Transactions up to the watermark have been judged: one behind it comes too late.
        if time < cx.watermark() {
            cx.late(transaction);
            return;
        }
        cx.set_timer(time);
        state.waiting.push(transaction);
    }

    fn on_timer(
        &mut self,
        cx: &mut KeyedContext<String, Alert, Transaction>,
        _card: &String,
        state: &mut CardState,
        time: EventTime,
    ) {
        let (mut due, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut state.waiting)
            .into_iter()
            .partition(|transaction| transaction.time <= time);
        state.waiting = waiting;
        due.sort_by_key(judging_order);
        for transaction in due {
            if let Some(alert) = judge(&mut state.small, transaction) {
                cx.emit(alert);
            }
        }
        match &state.small {
            // Its minute is over: forget it.
            Some(small) if small.time.millis() + WITHIN.as_millis() as u64 <= time.millis() => {
                state.small = None;
            }
            // Forget it once its minute is over.
            Some(small) => cx.set_timer(EventTime(small.time.millis() + WITHIN.as_millis() as u64)),
            None => {}
        }
    }

    fn is_empty(&self, state: &CardState) -> bool {
        state.waiting.is_empty() && state.small.is_none()
    }
}

/// Alerts for every card; transactions arriving after the watermark passed their time are
/// late.
pub fn alerts<'s>(transactions: Stream<'s, Transaction>) -> KeyedOutput<'s, Alert, Transaction> {
    transactions
        .key_by(|transaction| transaction.card.clone())
        .process("fraud detector", |t| t.time, FraudDetector)
}

/// `fraud` in the registry.
pub const FRAUD: Example = Example {
    name: "fraud",
    about: "Fraud alerts: a card's small transaction followed by a large one within a minute.",
    shows: "key_by, a keyed process with state and event-time timers, late output",
    results: "{card, small_cents, small_at, large_cents, large_at, merchant} per alert; \
              transactions arriving after the watermark passed them go to the late output",
    build: |p, input, output| {
        let alerts = alerts(input.read(p, DISORDER, any));
        output.append(alerts.results);
        output.late(alerts.late);
    },
    sample,
};

const MERCHANTS: &[&str] = &["grocer", "fuel", "books", "airline", "jeweller", "cafe"];

/// Transactions of `records / 40` cards (at least one), a few minutes apart per card: mostly
/// 5 to 200 dollars, one in thirty under a dollar, and after half of those a large one 10 to
/// 90 seconds later (an alert when under a minute). One in ten arrives up to 10 s late, one
/// in three hundred 5 minutes late.
fn sample(seed: u64, records: u64) -> Vec<SampleLine> {
    let mut rng = SampleRng::new(seed);
    let cards = (records / 40).max(1);
    let mut now = vec![SAMPLE_START.millis(); cards as usize];
    let mut transactions: Vec<(u64, Transaction)> = Vec::new();
    let mut pending_large = vec![false; cards as usize];
    for _ in 0..records {
        let card = rng.below(cards) as usize;
        let (step, amount_cents) = if std::mem::take(&mut pending_large[card]) {
            (10_000 + rng.below(80_000), LARGE_CENTS + rng.below(200_000))
        } else if rng.percent(3) {
            pending_large[card] = rng.percent(50);
            (1_000 + rng.below(600_000), 10 + rng.below(SMALL_CENTS - 10))
        } else {
            (1_000 + rng.below(600_000), 500 + rng.below(19_500))
        };
        now[card] += step;
        let delay = if rng.percent(1) && rng.percent(33) {
            5 * 60_000
        } else if rng.percent(10) {
            rng.below(10_000)
        } else {
            0
        };
        let transaction = Transaction {
            card: format!("card-{card:04}"),
            amount_cents,
            merchant: (*rng.pick(MERCHANTS)).to_owned(),
            time: EventTime(now[card]),
        };
        transactions.push((now[card] + delay, transaction));
    }
    transactions.sort_by_key(|(arrival, transaction)| (*arrival, transaction.card.clone()));
    transactions
        .iter()
        .map(|(_, transaction)| SampleLine::json(&transaction.card, transaction))
        .collect()
}
