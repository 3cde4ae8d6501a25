//! What every example shares: where it reads its records ([`ExampleInput`]), where its results
//! and late records go ([`ExampleOutput`]), and its sample input ([`SampleLine`],
//! [`write_sample`]).

use std::hash::Hash;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;
use weir::kafka::{KafkaClient, KafkaSource};
use weir::log::{LogConfig, LogSink, LogSource, RecordRef, Topic, ValueFormat};
use weir::operators::changelog::{Change, ChangelogExt};
use weir::schema::JsonSchema;
use weir::watermark::Watermarks;
use weir::CheckRecords;
use weir::{
    ConnectorError, Data, Destination, EventTime, JsonLinesSource, Pipeline, Stream, Timestamped,
};

/// Where an example's records come from.
#[derive(Clone, Debug)]
pub enum Origin {
    /// A JSON lines file, one record per line.
    JsonLines(PathBuf),
    /// A topic of the embedded log with JSON values.
    Log(PathBuf),
    /// A Kafka topic with JSON values.
    Kafka(KafkaClient),
}

/// An example's input: JSON records, each with an event time, read to the end of the file or
/// topic (a topic's end when the job first started).
#[derive(Clone, Debug)]
pub struct ExampleInput {
    /// Where the records are.
    pub origin: Origin,
    /// At most this many records per second per worker from a topic (to replay it at a pace).
    pub max_rate: Option<u64>,
    /// A JSON Schema every record must match before it is decoded (a data team's declaration
    /// of its input, beside the example's Rust type).
    pub schema: Option<JsonSchema>,
}

impl ExampleInput {
    /// Every record of the input in `p`, its event time its own, the watermark `disorder`
    /// behind the largest event time seen. A record that breaks the input's schema, does not
    /// decode as a `T`, or that `validate` rejects, becomes a dead letter with the reason.
    pub fn read<'s, T>(
        &self,
        p: &mut Pipeline<'s>,
        disorder: Duration,
        validate: fn(&T) -> Result<(), String>,
    ) -> Stream<'s, T>
    where
        T: Data + DeserializeOwned + Timestamped,
    {
        let watermarks = Watermarks::bounded(disorder);
        match &self.origin {
            Origin::JsonLines(path) => {
                let source = JsonLinesSource::<T>::new(path).event_time(disorder, T::event_time);
                p.source(self.checked(source, validate))
            }
            Origin::Log(dir) => {
                let source = LogSource::<T>::new(dir)
                    .watermarks(watermarks)
                    .event_time(T::event_time)
                    .until_end();
                let source = self.checked(source, validate);
                p.source(match self.max_rate {
                    Some(rate) => source.max_rate(rate),
                    None => source,
                })
            }
            Origin::Kafka(client) => {
                let source = KafkaSource::<T>::new(client.clone())
                    .watermarks(watermarks)
                    .event_time(T::event_time)
                    .until_end();
                let source = self.checked(source, validate);
                p.source(match self.max_rate {
                    Some(rate) => source.max_rate(rate),
                    None => source,
                })
            }
        }
    }

    /// `source` checking each record with `validate`, and against the schema if there is one.
    fn checked<T, S: CheckRecords<T>>(&self, source: S, validate: fn(&T) -> Result<(), String>) -> S
    where
        T: 'static,
    {
        let source = source.validate(validate);
        match &self.schema {
            Some(schema) => source.schema(schema.clone()),
            None => source,
        }
    }
}

/// Accepts every record: for examples whose type says all there is to check.
pub(crate) fn any<T>(_: &T) -> Result<(), String> {
    Ok(())
}

/// Where an example writes.
#[derive(Clone, Debug)]
pub struct ExampleOutput {
    /// Its results.
    pub results: Destination,
    /// Records too late for the example's windows or state, kept apart, never dropped.
    pub late: Destination,
    /// For examples whose results update: write each change as `{"op":"+"|"-","row":{...}}`
    /// instead of the table that holds when the input ends.
    pub changelog: bool,
}

/// Whether `destination` is a compacted topic of the embedded log.
fn compacted_topic(destination: &Destination) -> Option<&Path> {
    match destination {
        Destination::Log(dir) => Topic::open(dir)
            .is_ok_and(|topic| topic.config().compacted())
            .then_some(dir.as_path()),
        _ => None,
    }
}

impl ExampleOutput {
    /// Writes results that only append.
    pub fn append<T: Data>(&self, results: Stream<'_, T>) {
        self.results.append(results);
    }

    /// Writes results that update, rows keyed by `key_of`: as a changelog with
    /// [`ExampleOutput::changelog`]; to a compacted topic as upserts, each row under its key
    /// and a tombstone for each delete, so that the topic keeps the current table; otherwise
    /// as the table that holds when the input ends.
    pub fn updates<T: Data + PartialEq, K: Data + Hash + Eq + Serialize>(
        &self,
        changes: Stream<'_, Change<T>>,
        key_of: fn(&T) -> K,
    ) {
        if self.changelog {
            self.results.append(changes);
        } else if let Some(dir) = compacted_topic(&self.results) {
            let upserts = changes.map(move |change| match change {
                Change::Insert(row) => (key_of(&row), Some(row)),
                Change::Delete(row) => (key_of(&row), None),
            });
            upserts.sink(LogSink::upserts(dir));
        } else {
            self.results.append(changes.upsert_view(key_of));
        }
    }

    /// Writes the records that came too late.
    pub fn late<T: Data>(&self, late: Stream<'_, T>) {
        self.late.append(late);
    }
}

/// When every sample starts: 2026-12-01 09:00:00 UTC.
pub(crate) const SAMPLE_START: EventTime = EventTime(1_796_115_600_000);

/// One record of sample input, as it arrives: usually a JSON document, sometimes not.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SampleLine {
    /// What keys the record: a topic puts records of equal keys in one partition.
    pub key: String,
    /// The record's event time (its timestamp in a topic).
    pub time: EventTime,
    /// The record's bytes: one line of JSON, or the malformed text the example is about.
    pub text: String,
}

impl SampleLine {
    /// `record` as JSON, keyed by `key`.
    pub(crate) fn json<T: serde::Serialize + Timestamped>(key: impl ToString, record: &T) -> Self {
        SampleLine {
            key: key.to_string(),
            time: record.event_time(),
            // A sample record is a plain struct: serializing it cannot fail.
            text: serde_json::to_string(record).unwrap_or_default(),
        }
    }
}

/// Writes `lines` to a JSON lines file, or to a new topic of `partitions` partitions (JSON
/// values, each partition in arrival order, keys hashed to partitions) when `topic` is set.
pub fn write_sample(
    lines: &[SampleLine],
    out: &Path,
    topic: Option<u32>,
) -> Result<(), ConnectorError> {
    match topic {
        None => {
            let io_error = |error| ConnectorError::io(out, error);
            let mut file = std::io::BufWriter::new(std::fs::File::create(out).map_err(io_error)?);
            for line in lines {
                writeln!(file, "{}", line.text).map_err(io_error)?;
            }
            file.flush().map_err(io_error)
        }
        Some(partitions) => {
            let topic = Topic::create(out, partitions, ValueFormat::Json, LogConfig::default())?;
            let mut producer = topic.producer()?;
            for line in lines {
                producer.send(&RecordRef {
                    key: line.key.as_bytes(),
                    value: line.text.as_bytes(),
                    timestamp: line.time,
                    headers: &[],
                })?;
            }
            producer.sync()?;
            Ok(())
        }
    }
}
