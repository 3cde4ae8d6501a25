//! Latest-state view (change data capture): a changelog of a `customers` table in Debezium's
//! JSON envelope (`before`, `after`, `op`, `ts_ms`) becomes the current table, one row per
//! customer id, written as an upserted view (or, with `--changelog`, as the inserts and
//! deletes that keep a copy of the table current).
//!
//! ```text
//! change events -> key by id -> keyed process (the newest version per id) -> changes
//!               -> upsert view by id
//! ```
//!
//! The newest version of a row is the one with the largest `ts_ms`, not the last to arrive:
//! change events of one row may arrive out of order (read by different workers, or from
//! different partitions), and a stale one must not overwrite a newer one. Stale events go to
//! the late output.

use std::collections::HashMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use weir::log::Topic;
use weir::operators::changelog::Change;
use weir::{
    ConnectorError, EventTime, KeyedContext, KeyedOutput, KeyedProcess, Stream, Timestamped,
};

use crate::io::{SampleLine, SAMPLE_START};
use crate::random::SampleRng;
use crate::registry::Example;

/// How far behind the newest change one may arrive (only the watermark uses it: a change is
/// never too late to be judged by its `ts_ms`).
pub const DISORDER: Duration = Duration::from_secs(5);

/// A row of the `customers` table.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Customer {
    /// The primary key.
    pub id: u64,
    /// The name.
    pub name: String,
    /// The e-mail address.
    pub email: String,
    /// The loyalty tier.
    pub tier: String,
}

/// What a change event did, as Debezium names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Op {
    /// An insert.
    #[serde(rename = "c")]
    Create,
    /// An update.
    #[serde(rename = "u")]
    Update,
    /// A delete.
    #[serde(rename = "d")]
    Delete,
    /// A row read by the initial snapshot.
    #[serde(rename = "r")]
    Read,
}

/// One change event in Debezium's envelope.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeEvent {
    /// The row before the change (`null` for inserts and snapshot reads).
    pub before: Option<Customer>,
    /// The row after the change (`null` for deletes).
    pub after: Option<Customer>,
    /// What the change did.
    pub op: Op,
    /// When the source database made the change, in milliseconds since the epoch.
    pub ts_ms: u64,
}

impl Timestamped for ChangeEvent {
    fn event_time(&self) -> EventTime {
        EventTime(self.ts_ms)
    }
}

impl ChangeEvent {
    /// The id of the row it changes.
    pub fn id(&self) -> u64 {
        self.after
            .as_ref()
            .or(self.before.as_ref())
            .map_or(0, |row| row.id)
    }
}

/// Checks that the envelope holds the rows its `op` needs, of one id.
pub fn well_formed(event: &ChangeEvent) -> Result<(), String> {
    match (event.op, &event.before, &event.after) {
        (Op::Create | Op::Read, _, None) => Err(format!("op {:?} without `after`", event.op)),
        (Op::Update, None, _) | (Op::Update, _, None) => {
            Err("op u needs both `before` and `after`".into())
        }
        (Op::Delete, None, _) => Err("op d without `before`".into()),
        (_, Some(before), Some(after)) if before.id != after.id => Err(format!(
            "`before` has id {} and `after` id {}",
            before.id, after.id
        )),
        _ => Ok(()),
    }
}

/// The newest version of a row seen: when it changed, and the row (none once deleted).
#[derive(Default, Serialize, Deserialize)]
pub struct Newest {
    version: Option<(u64, Option<Customer>)>,
}

/// The keyed process behind [`current_table`].
struct LatestState;

impl KeyedProcess<u64, ChangeEvent> for LatestState {
    type State = Newest;
    type Output = Change<Customer>;

    fn on_record(
        &mut self,
        cx: &mut KeyedContext<u64, Change<Customer>, ChangeEvent>,
        _id: &u64,
        newest: &mut Newest,
        event: ChangeEvent,
        _time: EventTime,
    ) {
        if let Some((ts_ms, _)) = &newest.version {
            if event.ts_ms <= *ts_ms {
                // A newer version is already in the table.
                cx.late(event);
                return;
            }
        }
        let old = newest.version.take().and_then(|(_, row)| row);
        if let Some(old) = old {
            cx.emit(Change::Delete(old));
        }
        if let Some(new) = &event.after {
            cx.emit(Change::Insert(new.clone()));
        }
        newest.version = Some((event.ts_ms, event.after));
    }

    fn on_timer(
        &mut self,
        _cx: &mut KeyedContext<u64, Change<Customer>, ChangeEvent>,
        _id: &u64,
        _newest: &mut Newest,
        _time: EventTime,
    ) {
    }

    /// A deleted row's version is kept too: it stops an older change from bringing it back.
    fn is_empty(&self, newest: &Newest) -> bool {
        newest.version.is_none()
    }
}

/// The table's changes, newest version per id; stale change events are late.
pub fn current_table<'s>(
    events: Stream<'s, ChangeEvent>,
) -> KeyedOutput<'s, Change<Customer>, ChangeEvent> {
    events.key_by(ChangeEvent::id).process(
        "latest state",
        |event| EventTime(event.ts_ms),
        LatestState,
    )
}

/// The current table as a plain computation over change events: the newest version (largest
/// `ts_ms`) of each row, deleted rows left out. The reference the job is tested against.
pub fn reference_table(events: &[ChangeEvent]) -> HashMap<u64, Customer> {
    let mut newest: HashMap<u64, &ChangeEvent> = HashMap::new();
    for event in events {
        let kept = newest.entry(event.id()).or_insert(event);
        if event.ts_ms > kept.ts_ms {
            *kept = event;
        }
    }
    newest
        .into_values()
        .filter_map(|event| event.after.clone())
        .map(|customer| (customer.id, customer))
        .collect()
}

/// The table a compacted topic that this job upserted into holds: read from the start, each
/// record sets the row of its id (the key), a tombstone deletes it.
pub fn read_table(topic: &Topic) -> Result<HashMap<u64, Customer>, ConnectorError> {
    let mut table = HashMap::new();
    for partition in 0..topic.partitions() {
        let (start, end) = topic.offsets(partition)?;
        let mut reader = topic.reader(partition, start)?;
        let mut failed = None;
        while reader.next_offset() < end && failed.is_none() {
            let read = reader.read(1000, |record| {
                let row = serde_json::from_slice::<u64>(record.key).and_then(|id| {
                    Ok((
                        id,
                        (!record.value.is_empty())
                            .then(|| serde_json::from_slice(record.value))
                            .transpose()?,
                    ))
                });
                match row {
                    Ok((id, Some(customer))) => {
                        table.insert(id, customer);
                    }
                    Ok((id, None)) => {
                        table.remove(&id);
                    }
                    Err(error) => {
                        failed.get_or_insert(ConnectorError::Format {
                            path: topic.partition_dir(partition),
                            reason: format!(
                                "offset {}: not a customer row: {error}",
                                record.offset
                            ),
                        });
                    }
                }
            })?;
            if read == 0 && reader.next_offset() < end {
                return Err(reader.ends_before(end));
            }
        }
        if let Some(error) = failed {
            return Err(error);
        }
    }
    Ok(table)
}

/// `latest-state` in the registry.
pub const LATEST_STATE: Example = Example {
    name: "latest-state",
    about: "CDC: a Debezium changelog of a customers table becomes the current table.",
    shows: "validation to dead letters, a keyed process keeping the newest version, upsert_view",
    results: "{id, name, email, tier} per live customer (with --changelog, every insert and \
              delete); stale change events (a newer version of their row was read first) go to \
              the late output; envelopes missing the rows \
              their op needs are dead letters",
    build: |p, input, output| {
        let table = current_table(input.read(p, DISORDER, well_formed));
        output.updates(table.results, |customer: &Customer| customer.id);
        output.late(table.late);
    },
    sample,
};

const TIERS: &[&str] = &["bronze", "silver", "gold"];

/// A snapshot of `records / 10` customers (at least one) read first, then inserts, updates
/// and deletes of random customers a few hundred milliseconds apart. One event in twenty
/// arrives up to 3 s late (a stale one when a newer change of its row came first), one in
/// five hundred has an `op` its rows do not fit.
fn sample(seed: u64, records: u64) -> Vec<SampleLine> {
    let mut rng = SampleRng::new(seed);
    let snapshot = (records / 10).max(1);
    let mut rows: Vec<Option<Customer>> = Vec::new();
    let mut now = SAMPLE_START.millis();
    let mut events: Vec<(u64, ChangeEvent)> = Vec::new();
    let customer = |rng: &mut SampleRng, id: u64| Customer {
        id,
        name: format!("Customer {id}"),
        email: format!("c{id}.{}@example.com", rng.below(100)),
        tier: (*rng.pick(TIERS)).to_owned(),
    };
    for id in 0..records {
        now += 1 + rng.below(400);
        let target = rng.below(rows.len().max(1) as u64) as usize;
        let (op, before, after) = if id < snapshot {
            let row = customer(&mut rng, id);
            rows.push(Some(row.clone()));
            (Op::Read, None, Some(row))
        } else if rng.percent(10) {
            let row = customer(&mut rng, rows.len() as u64);
            rows.push(Some(row.clone()));
            (Op::Create, None, Some(row))
        } else if let Some(old) = rows[target].clone() {
            if rng.percent(15) {
                rows[target] = None;
                (Op::Delete, Some(old), None)
            } else {
                let new = customer(&mut rng, old.id);
                rows[target] = Some(new.clone());
                (Op::Update, Some(old), Some(new))
            }
        } else {
            let row = customer(&mut rng, target as u64);
            rows[target] = Some(row.clone());
            (Op::Create, None, Some(row))
        };
        let mut event = ChangeEvent {
            before,
            after,
            op,
            ts_ms: now,
        };
        if rng.percent(1) && rng.percent(20) {
            // A broken envelope: an update without its `after`.
            event.op = Op::Update;
            event.after = None;
        }
        let delay = if rng.percent(5) { rng.below(3_000) } else { 0 };
        events.push((now + delay, event));
    }
    events.sort_by_key(|(arrival, event)| (*arrival, event.ts_ms));
    events
        .iter()
        .map(|(_, event)| SampleLine::json(event.id(), event))
        .collect()
}
