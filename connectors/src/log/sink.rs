//! The log sink: appends a stream's records to a topic, partitioned by key.
//!
//! Records are first *staged* (encoded, with their partitions chosen) and then *published*.
//! Without checkpoints, publishing appends them whenever the stage fills up and when the
//! stream ends. In a job with checkpoints the sink is exactly-once: each epoch's records go to
//! a transaction file that is appended to the topic only once the epoch's checkpoint is
//! complete (see [`transaction`](super::transaction)).

use std::marker::PhantomData;
use std::path::PathBuf;

use serde::Serialize;
use weir_engine::time::Epoch;
use weir_engine::{BoxError, EventTime, Sink, SinkPlacement, WorkerInfo};

use crate::codec::Codec;
use crate::error::ConnectorError;

use super::record::RecordRef;
use super::topic::{partition_for_key, Producer, Topic};
use super::transaction::{OpenTransaction, StagedRef, Transactions};

/// Bytes staged before they are published.
const STAGE_BYTES: usize = 4 << 20;

type KeyOf<T> = Box<dyn Fn(&T) -> Vec<u8>>;
type EventTimeOf<T> = Box<dyn Fn(&T) -> EventTime>;
type EncodeValue<T> = Box<dyn Fn(&Codec, &T, &mut Vec<u8>) -> Result<(), String>>;

/// Appends records to an existing topic, encoded in the topic's value format. With a key
/// function a record goes to the partition of its key; without one, round robin. Runs on the
/// first worker (the log takes one writer per partition).
pub struct LogSink<T> {
    dir: PathBuf,
    key: Option<KeyOf<T>>,
    event_time: Option<EventTimeOf<T>>,
    /// How a record becomes its value (by default, the record encoded whole).
    value: Option<EncodeValue<T>>,
    state: Option<Open>,
    _records: PhantomData<fn(&T)>,
}

struct Open {
    codec: Codec,
    partitions: u32,
    producer: Producer,
    stage: Stage,
    next_partition: u32,
    /// In a job with checkpoints: where epochs' records wait for their commit.
    transactions: Option<Staging>,
}

/// The transactions of an exactly-once sink.
struct Staging {
    transactions: Transactions,
    /// Records of the current epoch that no longer fit the stage.
    open: Option<OpenTransaction>,
    /// Pre-committed transactions waiting for their checkpoint, oldest first.
    prepared: Vec<(Epoch, PathBuf)>,
}

/// Encoded records waiting to be published, their keys and values in one buffer.
#[derive(Default)]
struct Stage {
    records: Vec<StagedRecord>,
    bytes: Vec<u8>,
}

struct StagedRecord {
    partition: u32,
    timestamp: EventTime,
    key: std::ops::Range<usize>,
    value: std::ops::Range<usize>,
}

impl<T: Serialize + 'static> LogSink<T> {
    /// Appends to the topic in `dir`, which must exist.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        LogSink {
            dir: dir.into(),
            key: None,
            event_time: None,
            value: None,
            state: None,
            _records: PhantomData,
        }
    }

    /// Partitions records by this key.
    pub fn key_by(self, key: impl Fn(&T) -> Vec<u8> + 'static) -> Self {
        LogSink {
            key: Some(Box::new(key)),
            ..self
        }
    }

    /// Stamps records with this event time (by default, the wall-clock time of writing).
    pub fn event_time(self, event_time: impl Fn(&T) -> EventTime + 'static) -> Self {
        LogSink {
            event_time: Some(Box::new(event_time)),
            ..self
        }
    }

    /// Writes as each record's value what `value` encodes of it with the topic's codec (an
    /// empty value is a tombstone in a compacted topic).
    fn value_with(
        self,
        value: impl Fn(&Codec, &T, &mut Vec<u8>) -> Result<(), String> + 'static,
    ) -> Self {
        LogSink {
            value: Some(Box::new(value)),
            ..self
        }
    }

    fn not_open(&self) -> ConnectorError {
        ConnectorError::io(&self.dir, std::io::Error::other("the sink is not open"))
    }

    fn opened(&mut self) -> Result<&mut Open, ConnectorError> {
        let LogSink { state, dir, .. } = self;
        state
            .as_mut()
            .ok_or_else(|| ConnectorError::io(&*dir, std::io::Error::other("the sink is not open")))
    }
}

impl<K: Serialize + 'static, V: Serialize + 'static> LogSink<(K, Option<V>)> {
    /// Upserts a table into the topic in `dir` (a compacted one keeps just the table): a
    /// record `(key, Some(row))` sets the row of `key`, `(key, None)` writes a tombstone that
    /// deletes it. The key is written as JSON (`17`, `"alice"`), the row encoded whole.
    pub fn upserts(dir: impl Into<PathBuf>) -> Self {
        LogSink::new(dir)
            .key_by(|(key, _): &(K, Option<V>)| serde_json::to_vec(key).unwrap_or_default())
            .value_with(|codec, (_, row), out| match row {
                Some(row) => codec.encode(row, out),
                None => Ok(()),
            })
    }
}

impl Open {
    /// Moves the stage out of memory: into the open transaction with checkpoints, else onto
    /// the topic.
    fn drain_stage(&mut self) -> Result<(), ConnectorError> {
        let Some(staging) = &mut self.transactions else {
            return self.publish();
        };
        let Stage { records, bytes } = &mut self.stage;
        if records.is_empty() {
            return Ok(());
        }
        let transaction = match &mut staging.open {
            Some(open) => open,
            None => staging.open.insert(staging.transactions.begin()?),
        };
        for record in records.drain(..) {
            transaction.append(&StagedRef {
                partition: record.partition,
                timestamp: record.timestamp,
                key: &bytes[record.key],
                value: &bytes[record.value],
            })?;
        }
        bytes.clear();
        Ok(())
    }

    /// Appends every staged record and flushes, so readers see them.
    fn publish(&mut self) -> Result<(), ConnectorError> {
        let Stage { records, bytes } = &mut self.stage;
        for record in records.drain(..) {
            self.producer.send_to(
                record.partition,
                &RecordRef {
                    key: &bytes[record.key],
                    value: &bytes[record.value],
                    timestamp: record.timestamp,
                    headers: &[],
                },
            )?;
        }
        bytes.clear();
        self.producer.flush()
    }
}

impl<T: Serialize + 'static> Sink<T> for LogSink<T> {
    fn name(&self) -> String {
        format!("log {}", self.dir.display())
    }

    fn placement(&self) -> SinkPlacement {
        SinkPlacement::FirstWorker
    }

    fn open(&mut self, _worker: WorkerInfo) -> Result<(), BoxError> {
        let topic = Topic::open(&self.dir)?;
        self.state = Some(Open {
            codec: Codec::of(topic.value_format()),
            partitions: topic.partitions(),
            producer: topic.producer()?,
            stage: Stage::default(),
            next_partition: 0,
            transactions: None,
        });
        Ok(())
    }

    fn start_transactions(&mut self, restored: Option<Epoch>) -> Result<(), BoxError> {
        let mut transactions = Transactions::open(&self.dir)?;
        let state = self.opened()?;
        let prepared = transactions.recover(restored)?;
        match restored {
            Some(epoch) => {
                let committed = transactions.rewind(epoch, &mut state.producer)?;
                transactions.check_staged(committed, epoch, &prepared)?;
            }
            None => transactions.begin_history(&state.producer)?,
        }
        // Everything left up to the restored checkpoint was pre-committed under a complete
        // checkpoint: commit it now.
        for (epoch, path) in &prepared {
            transactions.commit(*epoch, path, &mut state.producer)?;
        }
        state.transactions = Some(Staging {
            transactions,
            open: None,
            prepared: Vec::new(),
        });
        Ok(())
    }

    fn pre_commit(&mut self, epoch: Epoch) -> Result<(), BoxError> {
        let state = self.opened()?;
        state.drain_stage()?;
        if let Some(staging) = &mut state.transactions {
            // An epoch without records stages an empty transaction: a restore then knows
            // that every epoch has one.
            let open = match staging.open.take() {
                Some(open) => open,
                None => staging.transactions.begin()?,
            };
            let prepared = staging.transactions.prepare(open, epoch)?;
            staging.prepared.push((epoch, prepared));
        }
        Ok(())
    }

    fn commit(&mut self, epoch: Epoch) -> Result<(), BoxError> {
        let state = self.opened()?;
        let Some(staging) = &mut state.transactions else {
            return Ok(());
        };
        let due = staging
            .prepared
            .partition_point(|(prepared, _)| *prepared <= epoch);
        for (epoch, path) in staging.prepared.drain(..due) {
            staging
                .transactions
                .commit(epoch, &path, &mut state.producer)?;
        }
        Ok(())
    }

    fn write(&mut self, records: &[T]) -> Result<(), BoxError> {
        let Some(state) = self.state.as_mut() else {
            return Err(self.not_open().into());
        };
        let now = EventTime(weir_engine::wall_clock_millis());
        for record in records {
            let stage = &mut state.stage;
            let key_start = stage.bytes.len();
            let partition = match &self.key {
                Some(key_of) => {
                    let key = key_of(record);
                    stage.bytes.extend_from_slice(&key);
                    partition_for_key(&key, state.partitions)
                }
                None => {
                    let partition = state.next_partition;
                    state.next_partition = (partition + 1) % state.partitions;
                    partition
                }
            };
            let value_start = stage.bytes.len();
            match &self.value {
                Some(value_of) => value_of(&state.codec, record, &mut stage.bytes),
                None => state.codec.encode(record, &mut stage.bytes),
            }
            .map_err(|reason| ConnectorError::BadLog {
                path: self.dir.clone(),
                reason,
            })?;
            stage.records.push(StagedRecord {
                partition,
                timestamp: self.event_time.as_ref().map_or(now, |of| of(record)),
                key: key_start..value_start,
                value: value_start..stage.bytes.len(),
            });
            if stage.bytes.len() >= STAGE_BYTES {
                state.drain_stage()?;
            }
        }
        Ok(())
    }

    fn close(&mut self) -> Result<(), BoxError> {
        let mut state = self.state.take().ok_or_else(|| self.not_open())?;
        // With checkpoints the last pre-commit has moved the stage into a transaction already.
        state.drain_stage()?;
        state.producer.sync()?;
        Ok(())
    }

    fn abort(&mut self) {
        // Staged records are dropped. Without checkpoints, what was published stays
        // (at-least-once); with them, prepared transactions stay for the restored run to
        // commit or abort.
        if let Some(open) = self
            .state
            .take()
            .and_then(|state| state.transactions)
            .and_then(|staging| staging.open)
        {
            open.discard();
        }
    }
}
