//! The Kafka source: each worker reads the partitions assigned to it (partition `p` goes to
//! worker `p % workers`), decodes JSON values, tracks a watermark per partition and reports
//! its offsets to checkpoints.

use std::marker::PhantomData;
use std::time::{Duration, Instant};

use rdkafka::consumer::{CommitMode, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use serde::de::DeserializeOwned;
use weir_engine::watermark::{PartitionWatermarks, Watermarks};
use weir_engine::{
    BoxError, DeadLetter, EventTime, PartitionLag, Positions, Source, SourcePoll, SourceReader,
    WorkerInfo,
};

use super::{KafkaClient, WeirConsumer, REQUEST_TIMEOUT};
use crate::checks::{CheckRecords, Checks, Encoded};
use crate::error::ConnectorError;
use crate::pace::Pace;
use crate::start_at::StartAt;

type EventTimeOf<T> = Box<dyn Fn(&T) -> EventTime>;

/// Reads a Kafka topic with JSON values. Records of aborted transactions are never read
/// (`isolation.level=read_committed`); a value that does not decode becomes a dead letter
/// naming its partition and offset. Event times are the records' Kafka timestamps unless
/// [`event_time`](Self::event_time) takes them from the values.
///
/// Offsets out of range (deleted by retention while the job was down) fail the job naming the
/// partition, instead of silently skipping to the end (librdkafka's default).
pub struct KafkaSource<T> {
    client: KafkaClient,
    group: Option<String>,
    start: StartAt,
    watermarks: Watermarks,
    until_end: bool,
    event_time: Option<EventTimeOf<T>>,
    checks: Checks<T>,
    /// Positions of a restored checkpoint, before the configured start.
    resumed: Positions,
    max_rate: Option<u64>,
    _records: PhantomData<fn() -> T>,
}

impl<T: DeserializeOwned + 'static> KafkaSource<T> {
    /// Reads `client`'s topic from the earliest offsets, following new records forever.
    pub fn new(client: KafkaClient) -> Self {
        KafkaSource {
            client,
            group: None,
            start: StartAt::Earliest,
            watermarks: Watermarks::default(),
            until_end: false,
            event_time: None,
            checks: Checks::default(),
            resumed: Positions::new(),
            max_rate: None,
            _records: PhantomData,
        }
    }

    /// Reads at most `records_per_second` records per second on each worker, to replay a
    /// topic at a steady pace instead of as fast as possible.
    pub fn max_rate(self, records_per_second: u64) -> Self {
        KafkaSource {
            max_rate: Some(records_per_second),
            ..self
        }
    }

    /// Where to start reading.
    pub fn start_at(self, start: StartAt) -> Self {
        KafkaSource { start, ..self }
    }

    /// The watermark strategy, applied to every partition on its own.
    pub fn watermarks(self, watermarks: Watermarks) -> Self {
        KafkaSource { watermarks, ..self }
    }

    /// Stops at the offsets that were the partitions' ends when the job first started.
    pub fn until_end(self) -> Self {
        KafkaSource {
            until_end: true,
            ..self
        }
    }

    /// Takes event times from the records' values instead of their Kafka timestamps.
    pub fn event_time(self, event_time: impl Fn(&T) -> EventTime + 'static) -> Self {
        KafkaSource {
            event_time: Some(Box::new(event_time)),
            ..self
        }
    }

    /// The consumer group the job's offsets are committed to after each checkpoint (for
    /// Kafka's lag tools); `weir-TOPIC` by default.
    pub fn group(self, group: impl Into<String>) -> Self {
        KafkaSource {
            group: Some(group.into()),
            ..self
        }
    }

    fn group_id(&self) -> String {
        self.group
            .clone()
            .unwrap_or_else(|| format!("weir-{}", self.client.topic))
    }
}

impl<T> CheckRecords<T> for KafkaSource<T> {
    fn checks_mut(&mut self) -> &mut Checks<T> {
        &mut self.checks
    }
}

impl<T: DeserializeOwned + 'static> Source for KafkaSource<T> {
    type Item = T;
    type Reader = KafkaReader<T>;

    fn name(&self) -> String {
        self.client.address()
    }

    fn resume_from(&mut self, positions: &Positions) -> Result<(), BoxError> {
        self.resumed = positions.clone();
        Ok(())
    }

    fn open(self, worker: WorkerInfo) -> Result<KafkaReader<T>, BoxError> {
        let client = &self.client;
        let group = self.group_id();
        let consumer = client.consumer(&[
            ("group.id", &group),
            ("enable.auto.commit", "false"),
            ("enable.auto.offset.store", "false"),
            ("enable.partition.eof", "true"),
            ("isolation.level", "read_committed"),
            ("auto.offset.reset", "error"),
            // The consumer lag per partition, for the job's metrics.
            ("statistics.interval.ms", "1000"),
        ])?;
        let count = client.partitions_seen_by(&consumer)?;
        let mut partitions = Vec::new();
        let mut assignment = TopicPartitionList::new();
        for number in (0..count).filter(|p| *p as usize % worker.peers == worker.index) {
            let what = format!("reading the offsets of partition {number}");
            let (earliest, latest) = consumer
                .fetch_watermarks(&client.topic, number as i32, REQUEST_TIMEOUT)
                .map_err(client.error(what))?;
            let (earliest, latest) = (earliest.max(0) as u64, latest.max(0) as u64);
            let configured = match &self.start {
                StartAt::Earliest => earliest,
                StartAt::Latest => latest,
                StartAt::Offsets(offsets) => offsets.get(&number).copied().unwrap_or(earliest),
                StartAt::Timestamp(time) => {
                    offset_for_time(&consumer, client, number, *time)?.unwrap_or(latest)
                }
            };
            let resumed = self.resumed.get(&number);
            let start = resumed.map_or(configured, |position| position.next_offset);
            if !(earliest..=latest).contains(&start) {
                return Err(client
                    .bad(format!(
                        "partition {number} holds offsets {earliest}..{latest}, not the offset \
                         {start} to start at (records deleted by retention, or the topic was \
                         recreated)"
                    ))
                    .into());
            }
            let end = self.until_end.then(|| {
                resumed
                    .and_then(|position| position.end_offset)
                    .unwrap_or(latest)
            });
            let partition = OwnedPartition {
                number,
                next_offset: start,
                end,
                last_timestamp: None,
            };
            // A bounded read already at its end fetches nothing more.
            if !partition.is_done() {
                assignment
                    .add_partition_offset(
                        &client.topic,
                        number as i32,
                        Offset::Offset(start as i64),
                    )
                    .map_err(client.error(format!("assigning partition {number}")))?;
            }
            partitions.push(partition);
        }
        consumer
            .assign(&assignment)
            .map_err(client.error("assigning partitions"))?;
        let now = Instant::now();
        let mut watermarks =
            PartitionWatermarks::new(self.watermarks.clone(), partitions.len(), now);
        let mut index_of = vec![None; count as usize];
        for (index, partition) in partitions.iter().enumerate() {
            index_of[partition.number as usize] = Some(index);
            if let Some(max_seen) = self
                .resumed
                .get(&partition.number)
                .and_then(|position| position.max_event_time)
            {
                watermarks.resume(index, max_seen);
            }
            if partition.is_done() {
                watermarks.finish(index);
            }
        }
        Ok(KafkaReader {
            name: self.name(),
            client: self.client,
            consumer,
            partitions,
            index_of,
            watermarks,
            rejected: Vec::new(),
            event_time: self.event_time,
            checks: self.checks,
            pace: self.max_rate.map(|rate| Pace::new(rate, now)),
            _records: PhantomData,
        })
    }
}

/// The first offset of partition `number` whose timestamp is at least `time`; `None` when
/// every record is older.
fn offset_for_time(
    consumer: &WeirConsumer,
    client: &KafkaClient,
    number: u32,
    time: EventTime,
) -> Result<Option<u64>, ConnectorError> {
    let mut query = TopicPartitionList::new();
    let what = format!("finding the offset of time {time} in partition {number}");
    query
        .add_partition_offset(&client.topic, number as i32, Offset::Offset(time.0 as i64))
        .map_err(client.error(what.clone()))?;
    let found = consumer
        .offsets_for_times(query, REQUEST_TIMEOUT)
        .map_err(client.error(what))?;
    Ok(found
        .find_partition(&client.topic, number as i32)
        .and_then(|element| match element.offset() {
            Offset::Offset(offset) => Some(offset.max(0) as u64),
            _ => None,
        }))
}

struct OwnedPartition {
    number: u32,
    next_offset: u64,
    /// For a bounded read: the offset it ends at.
    end: Option<u64>,
    /// The Kafka timestamp of the last record read, in milliseconds.
    last_timestamp: Option<i64>,
}

impl OwnedPartition {
    fn is_done(&self) -> bool {
        self.end.is_some_and(|end| self.next_offset >= end)
    }
}

/// One worker's share of a [`KafkaSource`].
pub struct KafkaReader<T> {
    name: String,
    client: KafkaClient,
    consumer: WeirConsumer,
    partitions: Vec<OwnedPartition>,
    /// A partition number's index in `partitions`, if this worker reads it.
    index_of: Vec<Option<usize>>,
    watermarks: PartitionWatermarks,
    rejected: Vec<DeadLetter>,
    event_time: Option<EventTimeOf<T>>,
    checks: Checks<T>,
    pace: Option<Pace>,
    _records: PhantomData<fn() -> T>,
}

impl<T: DeserializeOwned + 'static> KafkaReader<T> {
    /// Partition `number`'s index, or an error: the consumer returned a partition it was not
    /// assigned.
    fn index(&self, number: i32) -> Result<usize, ConnectorError> {
        usize::try_from(number)
            .ok()
            .and_then(|number| self.index_of.get(number).copied().flatten())
            .ok_or_else(|| {
                self.client.bad(format!(
                    "the consumer returned partition {number}, not assigned to it"
                ))
            })
    }

    /// A partition reached the end of what is committed: a bounded read there is done once
    /// its position (which passes transaction markers) has reached the end.
    fn reached_end(&mut self, number: i32) -> Result<(), ConnectorError> {
        let index = self.index(number)?;
        if self.partitions[index].end.is_none() {
            return Ok(());
        }
        let positions = self
            .consumer
            .position()
            .map_err(self.client.error("reading the consumer's position"))?;
        if let Some(Offset::Offset(position)) = positions
            .find_partition(&self.client.topic, number)
            .map(|element| element.offset())
        {
            let partition = &mut self.partitions[index];
            partition.next_offset = partition.next_offset.max(position.max(0) as u64);
        }
        if self.partitions[index].is_done() {
            self.watermarks.finish(index);
        }
        Ok(())
    }
}

impl<T: DeserializeOwned + 'static> SourceReader for KafkaReader<T> {
    type Item = T;

    fn poll(&mut self, out: &mut Vec<T>, max: usize) -> Result<SourcePoll, BoxError> {
        let now = Instant::now();
        let max = self
            .pace
            .as_ref()
            .map_or(max, |pace| max.min(pace.allowance(now)));
        let mut read = 0;
        while read < max {
            let message = match self.consumer.poll(Duration::ZERO) {
                None => break,
                Some(Ok(message)) => message,
                Some(Err(KafkaError::PartitionEOF(number))) => {
                    self.reached_end(number)?;
                    continue;
                }
                Some(Err(error)) => {
                    return Err(self.client.error("reading records")(error).into());
                }
            };
            let index = self.index(message.partition())?;
            let partition = &mut self.partitions[index];
            let offset = message.offset().max(0) as u64;
            if partition.end.is_some_and(|end| offset >= end) {
                // Past the end of a bounded read: left for a later job.
                self.watermarks.finish(index);
                continue;
            }
            partition.next_offset = offset + 1;
            partition.last_timestamp = message.timestamp().to_millis();
            read += 1;
            let value = message.payload().unwrap_or_default();
            let decoded = Encoded::json(value).and_then(|encoded| self.checks.decode(encoded));
            match decoded {
                Ok(record) => {
                    let time = match &self.event_time {
                        Some(of) => of(&record),
                        None => {
                            EventTime(message.timestamp().to_millis().unwrap_or(0).max(0) as u64)
                        }
                    };
                    self.watermarks.observe(index, time, now);
                    out.push(record);
                }
                Err(reason) => self.rejected.push(DeadLetter::from_log(
                    self.name.as_str(),
                    partition.number,
                    offset,
                    value,
                    reason,
                )),
            }
            if self.partitions[index].is_done() {
                self.watermarks.finish(index);
            }
        }
        if let Some(pace) = &mut self.pace {
            pace.count(read);
        }
        Ok(SourcePoll::after(read, self.watermarks.watermark(now)))
    }

    fn drain_dead_letters(&mut self, out: &mut Vec<DeadLetter>) {
        out.append(&mut self.rejected);
    }

    fn positions(&self) -> Option<Positions> {
        Some(
            self.watermarks.positions(
                self.partitions
                    .iter()
                    .map(|partition| (partition.number, partition.next_offset, partition.end)),
            ),
        )
    }

    fn start_watermark(&self) -> EventTime {
        self.watermarks.watermark(Instant::now()).start()
    }

    fn lag(&mut self) -> Vec<PartitionLag> {
        let now = weir_engine::wall_clock_millis();
        let observed = self.consumer.context();
        self.partitions
            .iter()
            .filter_map(|partition| {
                let records = observed.lag(partition.number as i32)?;
                let last_read = partition
                    .last_timestamp
                    .and_then(|at| u64::try_from(at).ok());
                Some(PartitionLag::new(partition.number, records, last_read, now))
            })
            .collect()
    }

    fn checkpoint_complete(&mut self, positions: &Positions) -> Result<(), BoxError> {
        let mut offsets = TopicPartitionList::new();
        for (number, position) in positions {
            offsets
                .add_partition_offset(
                    &self.client.topic,
                    *number as i32,
                    Offset::Offset(position.next_offset as i64),
                )
                .map_err(
                    self.client
                        .error("committing offsets to the consumer group"),
                )?;
        }
        // Asynchronous: the group's offsets only show the lag, so a failed commit is retried
        // by the next checkpoint's.
        if let Err(error) = self.consumer.commit(&offsets, CommitMode::Async) {
            tracing::warn!(source = %self.name, %error, "committing offsets to the consumer group failed");
        }
        Ok(())
    }
}
