//! Topics: a directory holding `topic.json` and one sub-directory per partition; the producer
//! that spreads records over partitions; and the description the command line prints.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use weir_engine::EventTime;

use crate::durable::{create_dir_all, sync_dir, write_atomically};
use crate::error::ConnectorError;

use super::compaction::{self, CompactionReport, Wait};
use super::partition::{self, LogConfig, PartitionReader, PartitionWriter, TornTail};
use super::record::RecordRef;
use super::segment;

const METADATA_FILE: &str = "topic.json";

/// How a topic's record values are encoded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum ValueFormat {
    /// One JSON document per value: topics filled from outside weir.
    Json,
    /// weir's compact binary encoding of a Rust type, named by `schema` (for instance
    /// `nexmark.Event`) so that tools know how to decode it.
    Binary {
        /// The name of the encoded type.
        schema: String,
    },
}

impl std::fmt::Display for ValueFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ValueFormat::Json => write!(f, "JSON values"),
            ValueFormat::Binary { schema } => write!(f, "binary {schema} values"),
        }
    }
}

/// What `topic.json` holds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct TopicMetadata {
    partitions: u32,
    value_format: ValueFormat,
    #[serde(default)]
    log: LogConfig,
}

impl TopicMetadata {
    /// Checks what a topic cannot work with: no partitions, or log settings out of range.
    fn validate(&self) -> Result<(), String> {
        if self.partitions == 0 {
            return Err("a topic needs at least one partition".into());
        }
        self.log.validate()
    }
}

/// A topic of the embedded log.
#[derive(Clone, Debug)]
pub struct Topic {
    dir: PathBuf,
    metadata: TopicMetadata,
}

impl Topic {
    /// Creates a topic of `partitions` partitions in `dir`, which must not hold one yet.
    pub fn create(
        dir: impl Into<PathBuf>,
        partitions: u32,
        value_format: ValueFormat,
        log: LogConfig,
    ) -> Result<Topic, ConnectorError> {
        let dir = dir.into();
        let bad = |reason: String| ConnectorError::BadLog {
            path: dir.clone(),
            reason,
        };
        let metadata = TopicMetadata {
            partitions,
            value_format,
            log,
        };
        metadata.validate().map_err(bad)?;
        let metadata_path = dir.join(METADATA_FILE);
        if metadata_path.exists() {
            return Err(bad("a topic already exists here".into()));
        }
        let topic = Topic { metadata, dir };
        for partition in 0..partitions {
            let partition_dir = topic.partition_dir(partition);
            create_dir_all(&partition_dir)?;
            // An empty first segment, so that readers can wait on it before any writer came.
            let first = segment::segment_path(&partition_dir, 0);
            std::fs::File::create(&first).map_err(|error| ConnectorError::io(&first, error))?;
            sync_dir(&partition_dir)?;
        }
        let json = serde_json::to_vec_pretty(&topic.metadata).map_err(|source| {
            ConnectorError::Encode {
                path: metadata_path.clone(),
                source,
            }
        })?;
        // Written last, atomically: a topic exists once its metadata does.
        write_atomically(&metadata_path, &json)?;
        Ok(topic)
    }

    /// Opens the topic in `dir`.
    pub fn open(dir: impl Into<PathBuf>) -> Result<Topic, ConnectorError> {
        let dir = dir.into();
        let metadata_path = dir.join(METADATA_FILE);
        let bytes = std::fs::read(&metadata_path).map_err(|error| {
            if error.kind() == std::io::ErrorKind::NotFound {
                ConnectorError::BadLog {
                    path: dir.clone(),
                    reason:
                        "no topic here (topic.json is missing); create it with `weir log create`"
                            .into(),
                }
            } else {
                ConnectorError::io(&metadata_path, error)
            }
        })?;
        let metadata = serde_json::from_slice::<TopicMetadata>(&bytes)
            .map_err(|error| error.to_string())
            .and_then(|metadata| metadata.validate().map(|()| metadata))
            .map_err(|reason| ConnectorError::BadLog {
                path: metadata_path.clone(),
                reason,
            })?;
        Ok(Topic { dir, metadata })
    }

    /// The topic's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The number of partitions.
    pub fn partitions(&self) -> u32 {
        self.metadata.partitions
    }

    /// How values are encoded.
    pub fn value_format(&self) -> &ValueFormat {
        &self.metadata.value_format
    }

    /// The directory of one partition.
    pub fn partition_dir(&self, partition: u32) -> PathBuf {
        self.dir.join(format!("partition-{partition}"))
    }

    fn check_partition(&self, partition: u32) -> Result<(), ConnectorError> {
        if partition < self.partitions() {
            return Ok(());
        }
        Err(ConnectorError::BadLog {
            path: self.dir.clone(),
            reason: format!(
                "partition {partition} does not exist (the topic has {})",
                self.partitions()
            ),
        })
    }

    /// Opens the writer of one partition.
    pub fn writer(&self, partition: u32) -> Result<PartitionWriter, ConnectorError> {
        self.check_partition(partition)?;
        PartitionWriter::open(&self.partition_dir(partition), self.metadata.log.clone())
    }

    /// Opens a reader of one partition at `offset`.
    pub fn reader(&self, partition: u32, offset: u64) -> Result<PartitionReader, ConnectorError> {
        self.check_partition(partition)?;
        PartitionReader::open(&self.partition_dir(partition), offset, &self.metadata.log)
    }

    /// How the topic's partitions store their records.
    pub fn config(&self) -> &LogConfig {
        &self.metadata.log
    }

    /// Runs a compaction pass over every partition of a compacted topic now (waiting for one
    /// in progress), and says what each did. Writers of a compacted topic also start a pass
    /// in the background whenever a segment closes.
    pub fn compact(&self) -> Result<Vec<CompactionReport>, ConnectorError> {
        if !self.metadata.log.compacted() {
            return Err(ConnectorError::BadLog {
                path: self.dir.clone(),
                reason: "the topic is not compacted (create it with cleanup compact)".into(),
            });
        }
        (0..self.partitions())
            .map(|partition| {
                let dir = self.partition_dir(partition);
                compaction::compact_partition(&dir, &self.metadata.log, Wait::Yes)
                    .map(Option::unwrap_or_default)
            })
            .collect()
    }

    /// The first offset kept and the next offset to be written in `partition`.
    pub fn offsets(&self, partition: u32) -> Result<(u64, u64), ConnectorError> {
        self.check_partition(partition)?;
        let dir = self.partition_dir(partition);
        partition::offset_range(&dir, &segment::list_segments(&dir)?)
    }

    /// The offset of the first record of `partition` whose timestamp is at least `timestamp`,
    /// or the end offset when there is none.
    pub fn offset_for_time(
        &self,
        partition: u32,
        timestamp: EventTime,
    ) -> Result<u64, ConnectorError> {
        let (start, end) = self.offsets(partition)?;
        let mut reader = self.reader(partition, start)?;
        let mut found = None;
        while found.is_none() && reader.next_offset() < end {
            let read = reader.read(4096, |record| {
                if found.is_none() && record.timestamp >= timestamp {
                    found = Some(record.offset);
                }
            })?;
            if read == 0 {
                break;
            }
        }
        Ok(found.unwrap_or(end))
    }

    /// A producer writing to every partition of this topic.
    pub fn producer(&self) -> Result<Producer, ConnectorError> {
        let writers = (0..self.partitions())
            .map(|partition| self.writer(partition))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Producer {
            writers,
            next_partition: 0,
        })
    }

    /// Reads every partition and describes its offsets, bytes and time range.
    pub fn describe(&self) -> Result<Vec<PartitionDescription>, ConnectorError> {
        (0..self.partitions())
            .map(|partition| {
                partition::again_if_deleted(&self.metadata.log, || {
                    self.describe_partition(partition)
                })
            })
            .collect()
    }

    fn describe_partition(&self, partition: u32) -> Result<PartitionDescription, ConnectorError> {
        let dir = self.partition_dir(partition);
        let segments = segment::list_segments(&dir)?;
        let mut bytes = 0;
        for &base in &segments {
            let path = segment::segment_path(&dir, base);
            bytes += std::fs::metadata(&path)
                .map_err(|error| ConnectorError::io(&path, error))?
                .len();
        }
        let (start, end) = partition::offset_range(&dir, &segments)?;
        let mut reader = self.reader(partition, start)?;
        let mut time_range: Option<(EventTime, EventTime)> = None;
        let mut records = 0;
        while reader.next_offset() < end {
            let read = reader.read(64 * 1024, |record| {
                records += 1;
                let (min, max) = time_range.get_or_insert((record.timestamp, record.timestamp));
                *min = (*min).min(record.timestamp);
                *max = (*max).max(record.timestamp);
            })?;
            if read == 0 && reader.next_offset() < end {
                return Err(reader.ends_before(end));
            }
        }
        // One more read, to find bytes after the last whole record.
        reader.read(1, |_| {})?;
        Ok(PartitionDescription {
            partition,
            start_offset: start,
            end_offset: end,
            records,
            segments: segments.len(),
            bytes,
            time_range,
            torn_tail: reader.torn_tail().cloned(),
        })
    }
}

/// One partition as `weir log describe` shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PartitionDescription {
    /// The partition number.
    pub partition: u32,
    /// The first offset retention kept.
    pub start_offset: u64,
    /// The offset the next record will get.
    pub end_offset: u64,
    /// Records between the two (fewer than the offsets between them once compacted).
    pub records: u64,
    /// Segment files.
    pub segments: usize,
    /// Bytes in segment files.
    pub bytes: u64,
    /// The smallest and largest record timestamps, if there are records.
    pub time_range: Option<(EventTime, EventTime)>,
    /// Bytes after the last whole record, if any (not counted in the offsets).
    pub torn_tail: Option<TornTail>,
}

/// The partition a keyed record goes to: a fixed hash of the key, stable across runs and
/// machines.
pub fn partition_for_key(key: &[u8], partitions: u32) -> u32 {
    use std::hash::BuildHasher;
    // A fixed seed: a key's partition never changes between runs.
    let hash = foldhash::fast::FixedState::with_seed(0x7765_6972).hash_one(key);
    ((u128::from(hash) * u128::from(partitions)) >> 64) as u32
}

/// Appends records to a topic: keyed records by [`partition_for_key`], keyless ones round
/// robin.
#[derive(Debug)]
pub struct Producer {
    writers: Vec<PartitionWriter>,
    next_partition: usize,
}

impl Producer {
    /// Appends a record and returns its partition and offset.
    pub fn send(&mut self, record: &RecordRef<'_>) -> Result<(u32, u64), ConnectorError> {
        let partition = if record.key.is_empty() {
            let partition = self.next_partition;
            self.next_partition = (partition + 1) % self.writers.len();
            partition as u32
        } else {
            partition_for_key(record.key, self.writers.len() as u32)
        };
        self.send_to(partition, record)
    }

    /// Appends a record to the given partition and returns its partition and offset.
    pub fn send_to(
        &mut self,
        partition: u32,
        record: &RecordRef<'_>,
    ) -> Result<(u32, u64), ConnectorError> {
        let partitions = self.writers.len();
        let writer =
            self.writers
                .get_mut(partition as usize)
                .ok_or_else(|| ConnectorError::BadLog {
                    path: PathBuf::new(),
                    reason: format!(
                        "partition {partition} does not exist (the topic has {partitions})"
                    ),
                })?;
        Ok((partition, writer.append(record)?))
    }

    /// The offset the next record of each partition will get, by partition.
    pub fn next_offsets(&self) -> Vec<u64> {
        self.writers
            .iter()
            .map(PartitionWriter::next_offset)
            .collect()
    }

    /// Makes every record sent so far visible to readers.
    pub fn flush(&mut self) -> Result<(), ConnectorError> {
        self.writers.iter_mut().try_for_each(PartitionWriter::flush)
    }

    /// Makes every record sent so far durable.
    pub fn sync(&mut self) -> Result<(), ConnectorError> {
        self.writers.iter_mut().try_for_each(PartitionWriter::sync)
    }

    /// Removes the records at and after `ends[p]` from each partition `p` (partitions beyond
    /// `ends` are left alone).
    ///
    /// Every partition is readied (and, compacted, checked) before any is cut, so that a
    /// refused rewind leaves the topic as it was.
    pub(crate) fn truncate(&mut self, ends: &[u64]) -> Result<(), ConnectorError> {
        let ready = self
            .writers
            .iter_mut()
            .zip(ends)
            .map(|(writer, &end)| writer.prepare_rewind(end))
            .collect::<Result<Vec<_>, _>>()?;
        let writers = std::mem::take(&mut self.writers);
        for (partition, writer) in writers.into_iter().enumerate() {
            self.writers
                .push(match (ends.get(partition), ready.get(partition)) {
                    (Some(&end), Some(lock)) => writer.truncate(end, lock)?,
                    _ => writer,
                });
        }
        Ok(())
    }
}
