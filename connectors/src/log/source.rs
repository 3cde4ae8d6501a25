//! The log source: each worker reads the partitions assigned to it, decodes values into typed
//! records, tracks a watermark per partition and reports its position.

use std::marker::PhantomData;
use std::path::PathBuf;
use std::time::Instant;

use serde::de::DeserializeOwned;
use weir_engine::watermark::{PartitionWatermarks, Watermarks};
use weir_engine::{
    BoxError, DeadLetter, EventTime, PartitionLag, Positions, Source, SourcePoll, SourceReader,
    WorkerInfo,
};

use crate::checks::{CheckRecords, Checks, Encoded};
use crate::codec::Codec;
use crate::error::ConnectorError;
use crate::pace::Pace;
use crate::start_at::StartAt;

use super::partition::PartitionReader;
use super::topic::Topic;

type EventTimeOf<T> = Box<dyn Fn(&T) -> EventTime>;

/// Reads a topic of the embedded log. Partition `p` goes to worker `p % workers`. Values are
/// decoded by the topic's format (binary for weir's own topics, JSON otherwise); a value that
/// does not decode or validate becomes a dead letter.
///
/// ```
/// use std::time::Duration;
/// use weir_connectors::log::{LogConfig, LogSource, RecordRef, StartAt, Topic, ValueFormat};
/// use weir_engine::{CollectSink, EventTime, Job, JobConfig};
/// use weir_engine::watermark::Watermarks;
///
/// let dir = tempfile::tempdir()?;
/// let topic = Topic::create(dir.path().join("prices"), 2, ValueFormat::Json, LogConfig::default())?;
/// let mut producer = topic.producer()?;
/// for price in [3u64, 5, 8] {
///     let value = price.to_string();
///     let timestamp = EventTime(price * 1000);
///     producer.send(&RecordRef { value: value.as_bytes(), timestamp, ..RecordRef::default() })?;
/// }
/// producer.flush()?;
///
/// let sink = CollectSink::new();
/// let results = sink.results();
/// let topic_dir = topic.dir().to_owned();
/// Job::new(JobConfig::default()).run(move |p| {
///     let source = LogSource::<u64>::new(&topic_dir)
///         .start_at(StartAt::Earliest)
///         .watermarks(Watermarks::bounded(Duration::from_secs(1)))
///         .until_end();
///     p.source(source).sink(sink.clone());
///     Ok(())
/// })?;
/// let mut prices = results.lock().unwrap().clone();
/// prices.sort();
/// assert_eq!(prices, vec![3, 5, 8]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct LogSource<T> {
    dir: PathBuf,
    start: StartAt,
    watermarks: Watermarks,
    until_end: bool,
    skip_corrupt: bool,
    event_time: Option<EventTimeOf<T>>,
    checks: Checks<T>,
    /// Positions of a restored checkpoint, before the configured start.
    resumed: Positions,
    max_rate: Option<u64>,
    _records: PhantomData<fn() -> T>,
}

impl<T: DeserializeOwned + 'static> LogSource<T> {
    /// Reads the topic in `dir`, from the earliest offsets, following new records forever.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        LogSource {
            dir: dir.into(),
            start: StartAt::Earliest,
            watermarks: Watermarks::default(),
            until_end: false,
            skip_corrupt: false,
            event_time: None,
            checks: Checks::default(),
            resumed: Positions::new(),
            max_rate: None,
            _records: PhantomData,
        }
    }

    /// Where to start reading.
    pub fn start_at(self, start: StartAt) -> Self {
        LogSource { start, ..self }
    }

    /// The watermark strategy, applied to every partition on its own.
    pub fn watermarks(self, watermarks: Watermarks) -> Self {
        LogSource { watermarks, ..self }
    }

    /// Stops at the offsets that were the partitions' ends when the job started, instead of
    /// following new records.
    pub fn until_end(self) -> Self {
        LogSource {
            until_end: true,
            ..self
        }
    }

    /// Turns damaged records into dead letters and reads on, instead of failing the job.
    pub fn skip_corrupt(self) -> Self {
        LogSource {
            skip_corrupt: true,
            ..self
        }
    }

    /// Takes event times from the records' values instead of the log's record timestamps.
    pub fn event_time(self, event_time: impl Fn(&T) -> EventTime + 'static) -> Self {
        LogSource {
            event_time: Some(Box::new(event_time)),
            ..self
        }
    }

    /// Reads at most `records_per_second` records per second on each worker, to replay a
    /// topic at a steady pace instead of as fast as possible.
    pub fn max_rate(self, records_per_second: u64) -> Self {
        LogSource {
            max_rate: Some(records_per_second.max(1)),
            ..self
        }
    }
}

impl<T> CheckRecords<T> for LogSource<T> {
    fn checks_mut(&mut self) -> &mut Checks<T> {
        &mut self.checks
    }
}

impl<T: DeserializeOwned + 'static> Source for LogSource<T> {
    type Item = T;
    type Reader = LogReader<T>;

    fn name(&self) -> String {
        self.dir.display().to_string()
    }

    fn resume_from(&mut self, positions: &Positions) -> Result<(), BoxError> {
        self.resumed = positions.clone();
        Ok(())
    }

    fn open(self, worker: WorkerInfo) -> Result<LogReader<T>, BoxError> {
        let topic = Topic::open(&self.dir)?;
        if self.checks.has_schema() && Codec::of(topic.value_format()) != Codec::Json {
            return Err(ConnectorError::BadLog {
                path: self.dir.clone(),
                reason: format!(
                    "a JSON Schema checks JSON values, and this topic holds {}",
                    topic.value_format()
                ),
            }
            .into());
        }
        let mut partitions = Vec::new();
        for number in (0..topic.partitions()).filter(|p| *p as usize % worker.peers == worker.index)
        {
            let (earliest, latest) = topic.offsets(number)?;
            let configured = match &self.start {
                StartAt::Earliest => earliest,
                StartAt::Latest => latest,
                StartAt::Offsets(offsets) => offsets.get(&number).copied().unwrap_or(earliest),
                StartAt::Timestamp(timestamp) => topic.offset_for_time(number, *timestamp)?,
            };
            let resumed = self.resumed.get(&number);
            let start = resumed.map_or(configured, |position| position.next_offset);
            let reader = topic.reader(number, start)?;
            // A bounded read ends where it ended when the job first started, not at records
            // appended since.
            let end = self.until_end.then(|| {
                resumed
                    .and_then(|position| position.end_offset)
                    .unwrap_or(latest)
            });
            partitions.push(OwnedPartition {
                number,
                reader,
                end,
                last_timestamp: None,
            });
        }
        let now = Instant::now();
        let mut watermarks =
            PartitionWatermarks::new(self.watermarks.clone(), partitions.len(), now);
        for (index, partition) in partitions.iter().enumerate() {
            if let Some(max_seen) = self
                .resumed
                .get(&partition.number)
                .and_then(|position| position.max_event_time)
            {
                watermarks.resume(index, max_seen);
            }
            if partition
                .end
                .is_some_and(|end| partition.reader.next_offset() >= end)
            {
                watermarks.finish(index);
            }
        }
        Ok(LogReader {
            name: self.name(),
            codec: Codec::of(topic.value_format()),
            topic,
            partitions,
            watermarks,
            next_partition: 0,
            rejected: Vec::new(),
            skip_corrupt: self.skip_corrupt,
            event_time: self.event_time,
            checks: self.checks,
            pace: self.max_rate.map(|rate| Pace::new(rate, now)),
        })
    }
}

struct OwnedPartition {
    number: u32,
    reader: PartitionReader,
    end: Option<u64>,
    /// The timestamp of the last record read.
    last_timestamp: Option<EventTime>,
}

/// One worker's share of a [`LogSource`].
pub struct LogReader<T> {
    name: String,
    topic: Topic,
    codec: Codec,
    partitions: Vec<OwnedPartition>,
    watermarks: PartitionWatermarks,
    next_partition: usize,
    rejected: Vec<DeadLetter>,
    skip_corrupt: bool,
    event_time: Option<EventTimeOf<T>>,
    checks: Checks<T>,
    pace: Option<Pace>,
}

impl<T: DeserializeOwned + 'static> LogReader<T> {
    /// Reads up to `max` records from partition `index` into `out`; returns how many records
    /// (good or rejected) it consumed.
    fn read_partition(
        &mut self,
        index: usize,
        out: &mut Vec<T>,
        max: usize,
        now: Instant,
    ) -> Result<usize, ConnectorError> {
        let tombstones = self.topic.config().compacted();
        let LogReader {
            name,
            codec,
            partitions,
            watermarks,
            rejected,
            event_time,
            checks,
            skip_corrupt,
            ..
        } = self;
        let partition = &mut partitions[index];
        let max = match partition.end {
            Some(end) => max.min(end.saturating_sub(partition.reader.next_offset()) as usize),
            None => max,
        };
        let number = partition.number;
        let last_timestamp = &mut partition.last_timestamp;
        let result = partition.reader.read(max, |record| {
            *last_timestamp = Some(record.timestamp);
            let decoded = if tombstones && record.value.is_empty() {
                Err(format!(
                    "a tombstone: the delete of key {:?} in a compacted topic, not a record",
                    String::from_utf8_lossy(record.key)
                ))
            } else {
                match codec {
                    Codec::Binary => checks.decode(Encoded::Binary(record.value)),
                    Codec::Json => {
                        Encoded::json(record.value).and_then(|encoded| checks.decode(encoded))
                    }
                }
            };
            match decoded {
                Ok(value) => {
                    let time = event_time
                        .as_ref()
                        .map_or(record.timestamp, |of| of(&value));
                    watermarks.observe(index, time, now);
                    out.push(value);
                }
                Err(reason) => rejected.push(DeadLetter::from_log(
                    name.as_str(),
                    number,
                    record.offset,
                    record.value,
                    reason,
                )),
            }
        });
        let read = match result {
            Ok(read) => read,
            Err(ConnectorError::Corrupt { reason, .. }) if *skip_corrupt => {
                let skipped = partition.reader.skip_damaged()?;
                rejected.push(DeadLetter::from_log(
                    name.as_str(),
                    number,
                    skipped.first_offset,
                    &skipped.raw,
                    format!(
                        "corrupt record ({reason}); skipped offsets {}..{}",
                        skipped.first_offset, skipped.next_offset
                    ),
                ));
                1
            }
            Err(error) => return Err(error),
        };
        if let Some(end) = partition.end {
            // A bounded read's end was counted from whole records when the job first started:
            // records that are gone now will never come (the partition was truncated).
            if read == 0 && partition.reader.next_offset() < end {
                return Err(partition.reader.ends_before(end));
            }
        }
        if partition
            .end
            .is_some_and(|end| partition.reader.next_offset() >= end)
        {
            watermarks.finish(index);
        }
        Ok(read)
    }
}

impl<T: DeserializeOwned + 'static> SourceReader for LogReader<T> {
    type Item = T;

    fn poll(&mut self, out: &mut Vec<T>, max: usize) -> Result<SourcePoll, BoxError> {
        let now = Instant::now();
        let count = self.partitions.len();
        let mut read = 0;
        let max = self
            .pace
            .as_ref()
            .map_or(max, |pace| max.min(pace.allowance(now)));
        // One partition per poll, round robin, so that batches stay large.
        for _ in (0..count).take_while(|_| max > 0) {
            let index = self.next_partition;
            self.next_partition = (index + 1) % count;
            read = self.read_partition(index, out, max, now)?;
            if read > 0 {
                break;
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
            self.watermarks
                .positions(self.partitions.iter().map(|partition| {
                    (
                        partition.number,
                        partition.reader.next_offset(),
                        partition.end,
                    )
                })),
        )
    }

    fn start_watermark(&self) -> EventTime {
        self.watermarks.watermark(Instant::now()).start()
    }

    fn lag(&mut self) -> Vec<PartitionLag> {
        let now = weir_engine::wall_clock_millis();
        self.partitions
            .iter()
            .filter_map(|partition| {
                let (_, end) = self.topic.offsets(partition.number).ok()?;
                let end = partition.end.map_or(end, |bounded| bounded.min(end));
                let records = end.saturating_sub(partition.reader.next_offset());
                let last_read = partition.last_timestamp.map(|at| at.0);
                Some(PartitionLag::new(partition.number, records, last_read, now))
            })
            .collect()
    }
}
