//! The Kafka sink, exactly-once in a job with checkpoints.
//!
//! Kafka's transactions cannot be handed from a crashed producer to its successor: the
//! successor's `init_transactions` aborts whatever was open. So the records of an epoch are
//! first staged on local disk (the files of [`staging`](crate::staging), under the sink's
//! staging directory, one folder per worker) and sealed when the epoch ends (pre-commit).
//! Once the epoch's checkpoint is complete, the commit writes them to Kafka in one
//! transaction that also commits a *marker*: the epoch, as the offset of the output topic's
//! partition 0 in a consumer group named after the transactional id (offsets committed in a
//! transaction become visible atomically with its records, as Kafka Streams relies on).
//!
//! After a crash, the restored run's producer takes the same transactional id (fencing the
//! old one, should it still live), reads the marker, and commits the staged epochs after it
//! up to the restored checkpoint: an epoch whose transaction was committed before the crash
//! is not written twice, one that was aborted or never begun is written once. A fresh start
//! draws a new output id, which the marker carries, so that a previous output's marker does
//! not count.
//!
//! Without checkpoints, or with [`at_least_once`](KafkaSink::at_least_once), records are
//! produced as they come and flushed at each pre-commit: a restore writes again what was
//! written since the restored checkpoint.

use std::marker::PhantomData;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use rdkafka::client::ClientContext;
use rdkafka::consumer::{Consumer, ConsumerGroupMetadata};
use rdkafka::error::KafkaError;
use rdkafka::message::{DeliveryResult, Message};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer, ProducerContext};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};
use serde::Serialize;
use weir_engine::checkpoint::{epoch_name, FINAL_EPOCH};
use weir_engine::time::Epoch;
use weir_engine::{BoxError, EventTime, Sink, WorkerInfo};

use super::{KafkaClient, WeirConsumer, REQUEST_TIMEOUT};
use crate::codec::Codec;
use crate::durable::{sync_dir, write_atomically};
use crate::error::ConnectorError;
use crate::staging::{for_each_staged, new_output_id, OpenTransaction, StagedRef};

type KeyOf<T> = Box<dyn Fn(&T) -> Vec<u8>>;
type EventTimeOf<T> = Box<dyn Fn(&T) -> EventTime>;

/// How long flushing or committing may wait for the brokers.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(60);
/// The staged partition of every record: the producer's partitioner chooses (by key).
const ANY_PARTITION: u32 = u32::MAX;

/// Writes records to a Kafka topic as JSON values, keyed by [`key_by`](Self::key_by)
/// (partitioned by the key's murmur2 hash, as Java clients do) or spread over partitions.
/// Runs on every worker.
pub struct KafkaSink<T> {
    client: KafkaClient,
    key: Option<KeyOf<T>>,
    event_time: Option<EventTimeOf<T>>,
    staging: Option<PathBuf>,
    at_least_once: bool,
    transactional_id: Option<String>,
    state: Option<Open>,
    _records: PhantomData<fn(&T)>,
}

struct Open {
    worker: WorkerInfo,
    producer: BaseProducer<Deliveries>,
    key: Vec<u8>,
    value: Vec<u8>,
    /// In a job with checkpoints, unless at-least-once: the staged epochs.
    transactions: Option<Transactions>,
}

/// The exactly-once state of one worker's sink.
struct Transactions {
    /// This worker's staging folder.
    dir: PathBuf,
    output: u64,
    /// Where the marker of committed epochs is kept.
    marker_group: ConsumerGroupMetadata,
    open: Option<OpenTransaction>,
    /// Sealed epochs waiting for their checkpoint, oldest first.
    prepared: Vec<(Epoch, PathBuf)>,
}

/// The producer's context: remembers the first record the brokers refused.
#[derive(Default)]
struct Deliveries {
    failed: Mutex<Option<String>>,
}

impl ClientContext for Deliveries {}

impl ProducerContext for Deliveries {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if let Err((error, message)) = result {
            if let Ok(mut failed) = self.failed.lock() {
                failed.get_or_insert_with(|| {
                    format!(
                        "a record to partition {} failed: {error}",
                        message.partition()
                    )
                });
            }
        }
    }
}

impl<T: Serialize + 'static> KafkaSink<T> {
    /// Writes to `client`'s topic, which must exist.
    pub fn new(client: KafkaClient) -> Self {
        KafkaSink {
            client,
            key: None,
            event_time: None,
            staging: None,
            at_least_once: false,
            transactional_id: None,
            state: None,
            _records: PhantomData,
        }
    }

    /// Partitions records by this key (also the records' Kafka key).
    pub fn key_by(self, key: impl Fn(&T) -> Vec<u8> + 'static) -> Self {
        KafkaSink {
            key: Some(Box::new(key)),
            ..self
        }
    }

    /// Stamps records with this event time (by default, the wall-clock time of writing). An
    /// event time of 0 is stamped with the time of writing: librdkafka reads 0 as "unset".
    pub fn event_time(self, event_time: impl Fn(&T) -> EventTime + 'static) -> Self {
        KafkaSink {
            event_time: Some(Box::new(event_time)),
            ..self
        }
    }

    /// Where epochs are staged until their checkpoint completes: needed for exactly-once
    /// output, on storage that survives the job as its checkpoints do (a folder beside them).
    pub fn staging_dir(self, dir: impl Into<PathBuf>) -> Self {
        KafkaSink {
            staging: Some(dir.into()),
            ..self
        }
    }

    /// Writes at least once even in a job with checkpoints (for brokers without
    /// transactions): records are produced as they come, and a restore writes again those
    /// written since the restored checkpoint.
    pub fn at_least_once(self) -> Self {
        KafkaSink {
            at_least_once: true,
            ..self
        }
    }

    /// The prefix of the transactional ids (`PREFIX-WORKER`): `weir-TOPIC` by default. Two
    /// jobs writing one topic need different prefixes; a job and its restarts the same.
    pub fn transactional_id(self, prefix: impl Into<String>) -> Self {
        KafkaSink {
            transactional_id: Some(prefix.into()),
            ..self
        }
    }

    fn opened(&mut self) -> Result<&mut Open, ConnectorError> {
        let KafkaSink { state, client, .. } = self;
        state
            .as_mut()
            .ok_or_else(|| client.bad("the sink is not open"))
    }

    fn producer(
        &self,
        settings: &[(&str, &str)],
    ) -> Result<BaseProducer<Deliveries>, ConnectorError> {
        let mut all = vec![("partitioner", "murmur2_random"), ("linger.ms", "5")];
        all.extend_from_slice(settings);
        self.client
            .config(&all)
            .create_with_context(Deliveries::default())
            .map_err(self.client.error("creating a producer"))
    }
}

impl Open {
    /// Waits until every record produced so far is acknowledged; an error names the first
    /// the brokers refused.
    fn flush(&self, client: &KafkaClient) -> Result<(), ConnectorError> {
        self.producer
            .flush(FLUSH_TIMEOUT)
            .map_err(client.error("flushing records"))?;
        self.delivered(client)
    }

    fn delivered(&self, client: &KafkaClient) -> Result<(), ConnectorError> {
        let failed = self.producer.context().failed.lock().map_or_else(
            |_| Some("a delivery report panicked".to_owned()),
            |failed| failed.clone(),
        );
        match failed {
            Some(reason) => Err(client.bad(reason)),
            None => Ok(()),
        }
    }
}

/// Produces one record, waiting while the producer's queue is full.
fn produce(
    producer: &BaseProducer<Deliveries>,
    client: &KafkaClient,
    key: Option<&[u8]>,
    value: &[u8],
    timestamp: EventTime,
) -> Result<(), ConnectorError> {
    let mut record = BaseRecord::<[u8], [u8]>::to(&client.topic)
        .payload(value)
        .timestamp(timestamp.0 as i64);
    if let Some(key) = key {
        record = record.key(key);
    }
    loop {
        match producer.send(record) {
            Ok(()) => return Ok(()),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                record = back;
                producer.poll(Duration::from_millis(10));
            }
            Err((error, _)) => return Err(client.error("producing a record")(error)),
        }
    }
}

/// The marker of a committed epoch: the epoch as an offset (the final epoch as the largest).
fn marker_offset(epoch: Epoch) -> i64 {
    if epoch == FINAL_EPOCH {
        i64::MAX
    } else {
        i64::try_from(epoch.0).unwrap_or(i64::MAX - 1)
    }
}

fn marker_metadata(output: u64) -> String {
    format!("weir output {output:016x}")
}

impl Transactions {
    fn prepared_path(&self, epoch: Epoch) -> PathBuf {
        self.dir.join(format!("epoch-{:020}.txn", epoch.0))
    }

    /// Writes the sealed epoch at `path` to Kafka in one transaction with its marker, then
    /// deletes it.
    fn commit(
        &self,
        epoch: Epoch,
        path: &Path,
        producer: &BaseProducer<Deliveries>,
        client: &KafkaClient,
    ) -> Result<(), ConnectorError> {
        let bytes = std::fs::read(path).map_err(|error| ConnectorError::io(path, error))?;
        let what = |step: &str| format!("{step} the transaction of epoch {}", epoch_name(epoch));
        producer
            .begin_transaction()
            .map_err(client.error(what("beginning")))?;
        let mut records = 0;
        for_each_staged(path, &bytes, self.output, |record| {
            records += 1;
            let key = (!record.key.is_empty()).then_some(record.key);
            produce(producer, client, key, record.value, record.timestamp)
        })?;
        // Delivered before the marker: the brokers hold the epoch's records, in the open
        // transaction, once the marker is added.
        producer
            .flush(FLUSH_TIMEOUT)
            .map_err(client.error(what("flushing")))?;
        let mut marker = TopicPartitionList::new();
        marker
            .add_partition_offset(&client.topic, 0, Offset::Offset(marker_offset(epoch)))
            .map_err(client.error(what("marking")))?;
        for mut element in marker.elements() {
            element.set_metadata(marker_metadata(self.output));
        }
        producer
            .send_offsets_to_transaction(&marker, &self.marker_group, FLUSH_TIMEOUT)
            .map_err(client.error(what("marking")))?;
        weir_engine::crash_point("kafka_sink.produced");
        if records > 0 {
            weir_engine::crash_point("kafka_sink.produced_records");
        }
        producer
            .commit_transaction(FLUSH_TIMEOUT)
            .map_err(client.error(what("committing")))?;
        weir_engine::crash_point("kafka_sink.committed");
        std::fs::remove_file(path).map_err(|error| ConnectorError::io(path, error))?;
        sync_dir(&self.dir)
    }
}

/// The epochs staged in `dir` (sealed ones by epoch; unsealed records are deleted).
fn staged_epochs(dir: &Path) -> Result<Vec<(Epoch, PathBuf)>, ConnectorError> {
    let io = |error| ConnectorError::io(dir, error);
    let mut staged = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let path = entry.map_err(io)?.path();
        let epoch = path
            .file_name()
            .and_then(|name| name.to_str())
            .and_then(|name| name.strip_prefix("epoch-")?.strip_suffix(".txn"))
            .and_then(|digits| digits.parse().ok())
            .map(Epoch);
        match epoch {
            Some(epoch) => staged.push((epoch, path)),
            None if path.extension().is_some_and(|e| e == "pending") => {
                std::fs::remove_file(&path).map_err(|error| ConnectorError::io(&path, error))?;
            }
            None => {}
        }
    }
    staged.sort();
    Ok(staged)
}

/// Of the epochs staged after the last committed one, the first missing: they must run on
/// from the one after `committed` up to `restored` (to the final epoch through any numbered
/// one, for the final checkpoint of a bounded run).
fn missing_epoch(committed: Option<Epoch>, restored: Epoch, staged: &[Epoch]) -> Option<Epoch> {
    if committed.is_some_and(|committed| committed >= restored) {
        return None;
    }
    let mut expected = committed.map_or(Epoch(0), Epoch::next);
    for epoch in staged {
        if *epoch == FINAL_EPOCH {
            return None;
        }
        if *epoch != expected {
            return Some(expected);
        }
        expected = expected.next();
    }
    if restored == FINAL_EPOCH {
        return Some(FINAL_EPOCH);
    }
    (expected <= restored).then_some(expected)
}

impl<T: Serialize + 'static> Sink<T> for KafkaSink<T> {
    fn name(&self) -> String {
        self.client.address()
    }

    fn open(&mut self, worker: WorkerInfo) -> Result<(), BoxError> {
        self.client.partitions()?;
        self.state = Some(Open {
            worker,
            producer: self.producer(&[])?,
            key: Vec::new(),
            value: Vec::new(),
            transactions: None,
        });
        Ok(())
    }

    fn start_transactions(&mut self, restored: Option<Epoch>) -> Result<(), BoxError> {
        if self.at_least_once {
            return Ok(());
        }
        let client = self.client.clone();
        let staging = self.staging.clone().ok_or_else(|| {
            client.bad(
                "an exactly-once Kafka sink needs a staging directory for its epochs \
                 (KafkaSink::staging_dir), or KafkaSink::at_least_once",
            )
        })?;
        let worker = self.opened()?.worker;
        let prefix = self
            .transactional_id
            .clone()
            .unwrap_or_else(|| format!("weir-{}", client.topic));
        let id = format!("{prefix}-{}", worker.index);
        let producer = self.producer(&[("transactional.id", &id)])?;
        // Fences an older producer of this id and aborts its open transaction.
        producer
            .init_transactions(FLUSH_TIMEOUT)
            .map_err(client.error(format!("starting transactions as {id}")))?;
        let markers =
            client.consumer(&[("group.id", &id), ("isolation.level", "read_committed")])?;
        let marker_group = markers
            .group_metadata()
            .ok_or_else(|| client.bad("the marker's consumer has no group metadata"))?;

        let dir = staging.join(format!("worker-{}", worker.index));
        std::fs::create_dir_all(&dir).map_err(|error| ConnectorError::io(&dir, error))?;
        let output_path = dir.join("output");
        let output = match restored {
            None => {
                for (_, path) in staged_epochs(&dir)? {
                    std::fs::remove_file(&path)
                        .map_err(|error| ConnectorError::io(&path, error))?;
                }
                let output = new_output_id();
                write_atomically(&output_path, format!("{output:016x}").as_bytes())?;
                output
            }
            Some(_) => std::fs::read_to_string(&output_path)
                .ok()
                .and_then(|text| u64::from_str_radix(text.trim(), 16).ok())
                .ok_or_else(|| ConnectorError::BadOutput {
                    path: output_path.clone(),
                    reason: "the output id of the restored checkpoint's Kafka output is \
                                 missing or damaged: its staged epochs cannot be committed"
                        .into(),
                })?,
        };
        let transactions = Transactions {
            dir,
            output,
            marker_group,
            open: None,
            prepared: Vec::new(),
        };
        if let Some(restored) = restored {
            let committed = read_marker(&markers, &client, output)?;
            if committed.is_some_and(|committed| committed > restored) {
                return Err(client
                    .bad(format!(
                        "the topic holds this output's records up to epoch {}, after the restored \
                         checkpoint's epoch {}: Kafka cannot take them back, so restore a \
                         checkpoint at or after that epoch, or start a fresh output",
                        committed.map_or_else(String::new, epoch_name),
                        epoch_name(restored)
                    ))
                    .into());
            }
            let mut left = Vec::new();
            for (epoch, path) in staged_epochs(&transactions.dir)? {
                let done = committed.is_some_and(|committed| epoch <= committed);
                if done || epoch > restored {
                    // Committed already (its deletion cut short), or of an abandoned run.
                    std::fs::remove_file(&path)
                        .map_err(|error| ConnectorError::io(&path, error))?;
                } else {
                    left.push((epoch, path));
                }
            }
            let epochs: Vec<Epoch> = left.iter().map(|(epoch, _)| *epoch).collect();
            if let Some(missing) = missing_epoch(committed, restored, &epochs) {
                return Err(ConnectorError::BadOutput {
                    path: transactions.prepared_path(missing),
                    reason: format!(
                        "the staged records of epoch {} are missing: the restored checkpoint \
                         needs them committed",
                        epoch_name(missing)
                    ),
                }
                .into());
            }
            for (epoch, path) in &left {
                transactions.commit(*epoch, path, &producer, &client)?;
            }
        }
        let state = self.opened()?;
        state.producer = producer;
        state.transactions = Some(transactions);
        Ok(())
    }

    fn write(&mut self, records: &[T]) -> Result<(), BoxError> {
        let KafkaSink {
            client,
            key,
            event_time,
            state,
            ..
        } = self;
        let state = state
            .as_mut()
            .ok_or_else(|| client.bad("the sink is not open"))?;
        let now = EventTime(weir_engine::wall_clock_millis());
        for record in records {
            state.key.clear();
            state.value.clear();
            if let Some(key_of) = key {
                state.key.extend_from_slice(&key_of(record));
            }
            Codec::Json
                .encode(record, &mut state.value)
                .map_err(|reason| client.bad(reason))?;
            let timestamp = event_time.as_ref().map_or(now, |of| of(record));
            match &mut state.transactions {
                Some(transactions) => {
                    let open = match &mut transactions.open {
                        Some(open) => open,
                        None => transactions.open.insert(OpenTransaction::create(
                            transactions.dir.join("current.pending"),
                        )?),
                    };
                    open.append(&StagedRef {
                        partition: ANY_PARTITION,
                        timestamp,
                        key: &state.key,
                        value: &state.value,
                    })?;
                }
                None => {
                    let key = key.is_some().then_some(state.key.as_slice());
                    produce(&state.producer, client, key, &state.value, timestamp)?;
                }
            }
        }
        state.producer.poll(Duration::ZERO);
        Ok(state.delivered(client)?)
    }

    fn pre_commit(&mut self, epoch: Epoch) -> Result<(), BoxError> {
        let client = self.client.clone();
        let state = self.opened()?;
        let Some(transactions) = &mut state.transactions else {
            return Ok(state.flush(&client)?);
        };
        // An epoch without records stages an empty transaction: a restore then knows that
        // every epoch has one.
        let open = match transactions.open.take() {
            Some(open) => open,
            None => OpenTransaction::create(transactions.dir.join("current.pending"))?,
        };
        let sealed = open.seal(transactions.output)?;
        weir_engine::crash_point("kafka_sink.prepared");
        let prepared = transactions.prepared_path(epoch);
        std::fs::rename(&sealed, &prepared)
            .map_err(|error| ConnectorError::io(&prepared, error))?;
        sync_dir(&transactions.dir)?;
        transactions.prepared.push((epoch, prepared));
        Ok(())
    }

    fn commit(&mut self, epoch: Epoch) -> Result<(), BoxError> {
        let client = self.client.clone();
        let state = self.opened()?;
        let Some(transactions) = &mut state.transactions else {
            return Ok(());
        };
        let due = transactions
            .prepared
            .partition_point(|(prepared, _)| *prepared <= epoch);
        let prepared: Vec<_> = transactions.prepared.drain(..due).collect();
        for (epoch, path) in prepared {
            transactions.commit(epoch, &path, &state.producer, &client)?;
        }
        Ok(())
    }

    fn close(&mut self) -> Result<(), BoxError> {
        let client = self.client.clone();
        let state = self
            .state
            .take()
            .ok_or_else(|| client.bad("the sink is not open"))?;
        // With transactions the last commit has written everything; without, flush.
        Ok(state.flush(&client)?)
    }

    fn abort(&mut self) {
        // Unsealed records are dropped; sealed epochs stay for the restored run to commit.
        if let Some(open) = self
            .state
            .take()
            .and_then(|state| state.transactions)
            .and_then(|transactions| transactions.open)
        {
            open.discard();
        }
    }
}

/// The last epoch this output committed, from the marker in its group (`None`: none yet, or
/// only another output's).
fn read_marker(
    markers: &WeirConsumer,
    client: &KafkaClient,
    output: u64,
) -> Result<Option<Epoch>, ConnectorError> {
    let mut query = TopicPartitionList::new();
    query.add_partition(&client.topic, 0);
    let committed = markers
        .committed_offsets(query, REQUEST_TIMEOUT)
        .map_err(client.error("reading the committed epochs' marker"))?;
    let marker = committed.find_partition(&client.topic, 0);
    Ok(marker.and_then(|element| match element.offset() {
        Offset::Offset(offset) if element.metadata() == marker_metadata(output) => {
            Some(if offset == i64::MAX {
                FINAL_EPOCH
            } else {
                Epoch(offset.max(0) as u64)
            })
        }
        _ => None,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn staged_epochs_must_follow_the_last_committed_one() {
        let epochs = |numbers: &[u64]| numbers.iter().map(|n| Epoch(*n)).collect::<Vec<_>>();
        assert_eq!(
            missing_epoch(Some(Epoch(3)), Epoch(6), &epochs(&[4, 5, 6])),
            None
        );
        assert_eq!(missing_epoch(None, Epoch(1), &epochs(&[0, 1])), None);
        assert_eq!(missing_epoch(Some(Epoch(6)), Epoch(6), &[]), None);
        assert_eq!(
            missing_epoch(Some(Epoch(3)), Epoch(6), &epochs(&[4, 6])),
            Some(Epoch(5))
        );
        assert_eq!(
            missing_epoch(Some(Epoch(3)), Epoch(6), &epochs(&[4, 5])),
            Some(Epoch(6))
        );
        assert_eq!(
            missing_epoch(Some(Epoch(3)), Epoch(6), &epochs(&[5, 6])),
            Some(Epoch(4))
        );
        // The final checkpoint's epoch follows any numbered one.
        let with_final = |numbers: &[u64]| {
            let mut staged = epochs(numbers);
            staged.push(FINAL_EPOCH);
            staged
        };
        assert_eq!(
            missing_epoch(Some(Epoch(3)), FINAL_EPOCH, &with_final(&[4, 5])),
            None
        );
        assert_eq!(
            missing_epoch(Some(Epoch(3)), FINAL_EPOCH, &with_final(&[])),
            None
        );
        assert_eq!(
            missing_epoch(Some(Epoch(3)), FINAL_EPOCH, &epochs(&[4, 5])),
            Some(FINAL_EPOCH)
        );
        assert_eq!(
            missing_epoch(Some(Epoch(3)), FINAL_EPOCH, &with_final(&[5])),
            Some(Epoch(4))
        );
    }
}
