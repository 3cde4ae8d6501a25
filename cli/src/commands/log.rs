//! `weir log ...`: create, fill, read and describe topics of the embedded log.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

use crate::arguments::parse_time;
use anyhow::{bail, Context};
use clap::{Args, Subcommand, ValueEnum};
use serde::de::IgnoredAny;
use weir::datetime;
use weir::log::{Cleanup, LogConfig, RecordRef, RecordView, Topic, ValueFormat};
use weir::{Codec, EventTime};
use weir_nexmark::{Event, EVENT_SCHEMA};

/// The `weir log` commands.
#[derive(Subcommand)]
pub enum LogCommand {
    /// Creates a topic.
    #[command(allow_negative_numbers = true)]
    Create(CreateArgs),
    /// Appends JSON lines from standard input to a JSON topic, each line's bytes as given
    /// (once checked to be JSON).
    #[command(allow_negative_numbers = true)]
    Produce(ProduceArgs),
    /// Prints a topic's records as JSON lines: a JSON topic's values byte for byte as written.
    #[command(allow_negative_numbers = true)]
    Consume(ConsumeArgs),
    /// Shows a topic's partitions: offsets, sizes, time ranges.
    Describe {
        /// The topic directory.
        topic: PathBuf,
    },
    /// Compacts a compacted topic now: every partition keeps the newest record of each key
    /// (its writers also do so in the background whenever a segment fills up).
    Compact {
        /// The topic directory.
        topic: PathBuf,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Json,
    Binary,
}

/// `--cleanup`: what happens to a topic's old records.
#[derive(Clone, Copy, ValueEnum)]
enum CleanupArg {
    /// Whole old segments are deleted by the retention settings.
    Delete,
    /// Only the newest record of each key is kept (records need keys; an empty value deletes).
    Compact,
}

/// The arguments of `weir log create`.
#[derive(Args)]
pub struct CreateArgs {
    /// The topic directory (DIR/TOPIC).
    topic: PathBuf,
    /// Number of partitions.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    partitions: u32,
    /// How values are encoded.
    #[arg(long, value_enum, default_value = "json")]
    format: Format,
    /// The type a binary topic holds (for tools that decode it).
    #[arg(long, default_value = EVENT_SCHEMA)]
    schema: String,
    /// Bytes per segment file.
    #[arg(long)]
    segment_bytes: Option<u64>,
    /// Keep at most this many bytes per partition.
    #[arg(long)]
    retention_bytes: Option<u64>,
    /// Delete segments not written for this many milliseconds.
    #[arg(long)]
    retention_ms: Option<u64>,
    /// What happens to old records.
    #[arg(long, value_enum, default_value = "delete")]
    cleanup: CleanupArg,
    /// In a compacted topic, keep a tombstone this many milliseconds after its segment was
    /// written, so that readers part-way through see the delete.
    #[arg(long)]
    tombstone_retention_ms: Option<u64>,
}

/// The arguments of `weir log produce`.
#[derive(Args)]
pub struct ProduceArgs {
    /// The topic directory (DIR/TOPIC).
    topic: PathBuf,
    /// A field (dotted path for nested ones) whose value keys each record; records with equal
    /// keys share a partition. Records without it (or without --key) go round robin.
    #[arg(long)]
    key: Option<String>,
    /// Fields holding each record's event time (comma-separated, the first present counts),
    /// as milliseconds or "YYYY-MM-DD HH:MM:SS.mmm"; without it, the time of producing.
    #[arg(long)]
    timestamp: Option<String>,
}

/// The arguments of `weir log consume`.
#[derive(Args)]
pub struct ConsumeArgs {
    /// The topic directory (DIR/TOPIC).
    topic: PathBuf,
    /// Read only this partition.
    #[arg(long)]
    partition: Option<u32>,
    /// Where to start: `earliest`, `latest`, an offset for every partition, or
    /// `PARTITION:OFFSET,...`.
    #[arg(long, default_value = "earliest")]
    from_offset: String,
    /// Start at the first record at or after this event time (milliseconds or
    /// "YYYY-MM-DD HH:MM:SS.mmm").
    #[arg(long, conflicts_with = "from_offset")]
    from_time: Option<String>,
    /// Print at most this many records.
    #[arg(long)]
    limit: Option<u64>,
    /// Print each record with its partition, offset, timestamp and key.
    #[arg(long)]
    metadata: bool,
}

/// Runs a `weir log` command.
pub fn run(command: LogCommand) -> anyhow::Result<()> {
    match command {
        LogCommand::Create(args) => create(&args),
        LogCommand::Produce(args) => produce(&args),
        LogCommand::Consume(args) => consume(&args),
        LogCommand::Describe { topic } => describe(&topic),
        LogCommand::Compact { topic } => compact(&topic),
    }
}

fn create(args: &CreateArgs) -> anyhow::Result<()> {
    let format = match args.format {
        Format::Json => ValueFormat::Json,
        Format::Binary => ValueFormat::Binary {
            schema: args.schema.clone(),
        },
    };
    let defaults = LogConfig::default();
    let config = LogConfig {
        segment_bytes: args.segment_bytes.unwrap_or(defaults.segment_bytes),
        retention_bytes: args.retention_bytes,
        retention_ms: args.retention_ms,
        cleanup: match args.cleanup {
            CleanupArg::Delete => Cleanup::Delete,
            CleanupArg::Compact => Cleanup::Compact,
        },
        tombstone_retention_ms: args
            .tombstone_retention_ms
            .unwrap_or(defaults.tombstone_retention_ms),
        ..defaults
    };
    let topic = Topic::create(&args.topic, args.partitions, format, config)?;
    println!(
        "created {} with {} partitions",
        topic.dir().display(),
        topic.partitions()
    );
    Ok(())
}

/// The value at a dotted path of a JSON document.
fn field<'a>(document: &'a serde_json::Value, path: &str) -> Option<&'a serde_json::Value> {
    path.split('.')
        .try_fold(document, |value, name| value.get(name))
}

fn produce(args: &ProduceArgs) -> anyhow::Result<()> {
    let topic = Topic::open(&args.topic)?;
    if topic.value_format() != &ValueFormat::Json {
        bail!(
            "{} holds {}; `weir log produce` writes JSON topics",
            topic.dir().display(),
            topic.value_format()
        );
    }
    let mut producer = topic.producer()?;
    let now = EventTime(weir::wall_clock_millis());
    let mut produced = 0u64;
    let stdin = std::io::stdin().lock();
    for (index, line) in stdin.split(b'\n').enumerate() {
        let line_number = index + 1;
        let line = line.context("cannot read standard input")?;
        if line.trim_ascii().is_empty() {
            continue;
        }
        let reject = |reason: String| {
            anyhow::anyhow!(
                "standard input, line {line_number}: {reason} ({produced} records before it were produced)"
            )
        };
        let document: serde_json::Value =
            serde_json::from_slice(&line).map_err(|error| reject(format!("not JSON: {error}")))?;
        let key = match args.key.as_deref().and_then(|path| field(&document, path)) {
            Some(serde_json::Value::String(text)) => text.clone().into_bytes(),
            Some(value) => value.to_string().into_bytes(),
            None => Vec::new(),
        };
        let timestamp = match &args.timestamp {
            Some(paths) => {
                let found = paths
                    .split(',')
                    .find_map(|path| Some((path, field(&document, path.trim())?)));
                match found {
                    Some((_, serde_json::Value::String(text))) => {
                        parse_time(text).map_err(&reject)?
                    }
                    Some((path, value)) => value
                        .as_u64()
                        .map(EventTime)
                        .ok_or_else(|| reject(format!("{path:?} is not a time in milliseconds")))?,
                    None => return Err(reject(format!("none of the time fields {paths:?}"))),
                }
            }
            None => now,
        };
        producer.send(&RecordRef {
            key: &key,
            value: &line,
            timestamp,
            headers: &[],
        })?;
        produced += 1;
    }
    producer.sync()?;
    println!("produced {produced} records to {}", topic.dir().display());
    Ok(())
}

fn compact(dir: &Path) -> anyhow::Result<()> {
    let topic = Topic::open(dir)?;
    for (partition, report) in topic.compact()?.iter().enumerate() {
        println!(
            "partition {partition}: {} records read, {} kept, {} tombstones removed; \
             {} segments of {} bytes before, {} of {} bytes after",
            report.records_read,
            report.records_kept,
            report.tombstones_removed,
            report.segments_before,
            report.bytes_before,
            report.segments_after,
            report.bytes_after
        );
    }
    Ok(())
}

/// Turns a topic's values into JSON text: a JSON topic's values exactly as they were written
/// (a compacted topic's tombstones as `null`), Nexmark's binary events as JSON.
enum Printer {
    Json { tombstones: bool },
    NexmarkEvents,
}

impl Printer {
    fn for_topic(topic: &Topic) -> anyhow::Result<Printer> {
        match topic.value_format() {
            ValueFormat::Json => Ok(Printer::Json {
                tombstones: topic.config().compacted(),
            }),
            ValueFormat::Binary { schema } if schema == EVENT_SCHEMA => Ok(Printer::NexmarkEvents),
            ValueFormat::Binary { schema } => bail!(
                "{} holds binary {schema} values, which this command cannot decode",
                topic.dir().display()
            ),
        }
    }

    fn value<'r>(&self, record: &RecordView<'r>) -> Result<Cow<'r, [u8]>, String> {
        match self {
            Printer::Json { tombstones: true } if record.value.is_empty() => {
                Ok(Cow::Borrowed(b"null"))
            }
            Printer::Json { .. } => {
                serde_json::from_slice::<IgnoredAny>(record.value).map_err(|e| e.to_string())?;
                Ok(Cow::Borrowed(record.value))
            }
            Printer::NexmarkEvents => Codec::Binary
                .decode::<Event>(record.value)
                .and_then(|event| serde_json::to_vec(&event).map_err(|e| e.to_string()))
                .map(Cow::Owned),
        }
    }
}

/// The start offset of every partition, from `--from-offset` or `--from-time`.
fn start_offsets(topic: &Topic, args: &ConsumeArgs) -> anyhow::Result<BTreeMap<u32, u64>> {
    let mut starts = BTreeMap::new();
    let explicit: BTreeMap<u32, u64> = if args.from_offset.contains(':') {
        args.from_offset
            .split(',')
            .map(|pair| {
                let parsed = pair
                    .split_once(':')
                    .and_then(|(p, o)| Some((p.trim().parse().ok()?, o.trim().parse().ok()?)));
                parsed.with_context(|| {
                    format!("--from-offset: expected PARTITION:OFFSET, found {pair:?}")
                })
            })
            .collect::<anyhow::Result<_>>()?
    } else {
        BTreeMap::new()
    };
    for partition in 0..topic.partitions() {
        let (earliest, latest) = topic.offsets(partition)?;
        let start = if let Some(time) = &args.from_time {
            topic.offset_for_time(partition, parse_time(time).map_err(anyhow::Error::msg)?)?
        } else {
            match args.from_offset.as_str() {
                "earliest" => earliest,
                "latest" => latest,
                _ if !explicit.is_empty() => explicit.get(&partition).copied().unwrap_or(earliest),
                offset => offset.parse().with_context(|| {
                    format!("--from-offset: expected earliest, latest, an offset or PARTITION:OFFSET list, found {offset:?}")
                })?,
            }
        };
        starts.insert(partition, start);
    }
    Ok(starts)
}

fn consume(args: &ConsumeArgs) -> anyhow::Result<()> {
    let topic = Topic::open(&args.topic)?;
    let printer = Printer::for_topic(&topic)?;
    let starts = start_offsets(&topic, args)?;
    let mut left = args.limit.unwrap_or(u64::MAX);
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    for (&partition, &start) in &starts {
        if args.partition.is_some_and(|only| only != partition) {
            continue;
        }
        let mut reader = topic.reader(partition, start)?;
        let mut failure = None;
        while left > 0 && failure.is_none() {
            let batch = usize::try_from(left.min(4096)).unwrap_or(4096);
            let read = reader.read(batch, |record| {
                if failure.is_some() {
                    return;
                }
                // Written straight into the buffered output: no line is assembled first.
                let written = printer.value(&record).map(|value| {
                    if args.metadata {
                        let key = serde_json::Value::from(String::from_utf8_lossy(record.key));
                        write!(
                            out,
                            "{{\"partition\":{partition},\"offset\":{},\"timestamp\":{},\"key\":{key},\"value\":",
                            record.offset, record.timestamp
                        )?;
                        out.write_all(&value)?;
                        out.write_all(b"}\n")
                    } else {
                        out.write_all(&value)?;
                        out.write_all(b"\n")
                    }
                });
                match written {
                    Ok(result) => failure = result.err().map(|e| e.to_string()),
                    Err(reason) => {
                        failure = Some(format!(
                            "partition {partition}, offset {}: cannot decode the value: {reason}",
                            record.offset
                        ))
                    }
                }
            })?;
            if read == 0 {
                if let Some(tail) = reader.torn_tail() {
                    eprintln!(
                        "partition {partition}: stopped at offset {}: {tail}",
                        reader.next_offset()
                    );
                }
                break;
            }
            left -= read as u64;
        }
        if let Some(failure) = failure {
            bail!("{}: {failure}", topic.dir().display());
        }
    }
    out.flush().context("cannot write to standard output")?;
    Ok(())
}

fn describe(dir: &Path) -> anyhow::Result<()> {
    let topic = Topic::open(dir)?;
    let partitions = topic.describe()?;
    println!(
        "topic {} ({}{}), {} partitions",
        topic.dir().display(),
        topic.value_format(),
        if topic.config().compacted() {
            ", compacted"
        } else {
            ""
        },
        topic.partitions()
    );
    println!(
        "{:>9} {:>12} {:>12} {:>12} {:>8} {:>14}  time range",
        "partition", "start", "end", "records", "segments", "bytes"
    );
    let time = |millis| datetime::format(millis);
    for partition in &partitions {
        let range = partition
            .time_range
            .map(|(first, last)| format!("{} .. {}", time(first), time(last)))
            .unwrap_or_else(|| "-".into());
        println!(
            "{:>9} {:>12} {:>12} {:>12} {:>8} {:>14}  {range}",
            partition.partition,
            partition.start_offset,
            partition.end_offset,
            partition.records,
            partition.segments,
            partition.bytes,
        );
    }
    let records: u64 = partitions.iter().map(|p| p.records).sum();
    let bytes: u64 = partitions.iter().map(|p| p.bytes).sum();
    println!(
        "{:>9} {:>12} {:>12} {records:>12} {:>8} {bytes:>14}",
        "total", "", "", ""
    );
    for partition in &partitions {
        if let Some(tail) = &partition.torn_tail {
            println!("partition {}: {tail}", partition.partition);
        }
    }
    Ok(())
}
