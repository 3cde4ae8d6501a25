//! Compaction of a partition: its closed segments rewritten to keep only the newest record of
//! each key, as Kafka's log cleaner does.
//!
//! A pass reads the closed segments (every segment but the last, which the writer appends to)
//! and notes each key's newest offset among them. It then rewrites runs of consecutive
//! segments, each run keeping up to [`LogConfig::segment_bytes`], into one file per run that
//! keeps a record when it is the newest of its key, copying its frame as it was (offset,
//! timestamp, checksum). A tombstone (a record with an empty value) is kept while younger than
//! [`LogConfig::tombstone_retention_ms`], so that readers part-way through see the delete.
//!
//! Each run is swapped in by steps that leave every reader, at any moment and after a crash at
//! any step, with every record that is its key's newest:
//!
//! 1. the kept records go to `BASE.cleaned`, which is synced (a crash leaves it unfinished and
//!    the next pass deletes it);
//! 2. it is renamed to `BASE-END.swap`: the run from `BASE` up to `END` is compacted, and the
//!    swap says so until step 5 (the next pass, or a rewind, finishes a swap it finds);
//! 3. a hard link of the swap replaces `BASE.log` by a rename;
//! 4. the run's other segments are deleted, first to last, with their indexes;
//! 5. the new segment's index is written and the swap removed.
//!
//! Between steps 3 and 4 a segment of the run may still be there beside the compacted file
//! that covers it: a reader goes on in the file that holds its next offset (see
//! `PartitionReader`), and deleting first to last keeps that file present until the compacted
//! one has replaced it.
//!
//! A topic that an exactly-once sink writes is compacted only up to the sink's last commit:
//! a restore may rewind the topic to there (a commit cut short by a crash is taken back and
//! done again), and must find the records before it as they were.
//!
//! Before swapping anything in, a pass records in `compaction.json` the offset below which
//! records were compared: a rewind of the partition to an offset below it is refused, since a
//! record that replaced an older one would go and the older one is already gone.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use weir_engine::crash_point;

use crate::durable::{sync_dir, write_atomically, write_json_atomically};
use crate::error::ConnectorError;

use super::partition::LogConfig;
use super::segment::{self, CursorStop, SegmentCursor, SparseIndex};
use super::transaction;

/// The file whose advisory lock one compaction (or rewind) of a partition holds at a time.
const CLEANER_LOCK: &str = ".cleaner.lock";
/// The file recording how far compaction has compared records.
const STATE_FILE: &str = "compaction.json";

/// What compaction has done to a partition so far.
#[derive(Debug, Default, Serialize, Deserialize)]
struct CompactionState {
    /// Records below this offset may have been removed for a newer record of their key below
    /// it.
    compared_below: u64,
}

/// What one compaction pass over a partition did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct CompactionReport {
    /// Segment files before the pass, the active one included.
    pub segments_before: usize,
    /// Segment files after it.
    pub segments_after: usize,
    /// Records read from the closed segments.
    pub records_read: u64,
    /// Records the rewritten segments kept (records of segments left as they were included).
    pub records_kept: u64,
    /// Tombstones removed because they were older than the tombstone retention.
    pub tombstones_removed: u64,
    /// Bytes of segment files before the pass.
    pub bytes_before: u64,
    /// Bytes of segment files after it.
    pub bytes_after: u64,
}

/// Holds a partition's cleaner lock while it lives.
pub(crate) struct CleanerLock {
    _file: File,
}

/// Whether to wait for a compaction of the same partition that runs elsewhere.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Wait {
    /// Wait for it to finish.
    Yes,
    /// Give up at once.
    No,
}

/// Takes the cleaner lock of the partition in `dir`; `None` when another holds it and `wait`
/// says not to wait.
fn lock_cleaner(dir: &Path, wait: Wait) -> Result<Option<CleanerLock>, ConnectorError> {
    let path = dir.join(CLEANER_LOCK);
    let file = File::create(&path).map_err(|error| ConnectorError::io(&path, error))?;
    match wait {
        Wait::Yes => file
            .lock()
            .map_err(|error| ConnectorError::io(&path, error))?,
        Wait::No => {
            if file.try_lock().is_err() {
                return Ok(None);
            }
        }
    }
    Ok(Some(CleanerLock { _file: file }))
}

/// Takes the cleaner lock of the partition in `dir`, waiting for a compaction that holds it.
pub(crate) fn hold_cleaner(dir: &Path) -> Result<CleanerLock, ConnectorError> {
    let lock = lock_cleaner(dir, Wait::Yes)?;
    lock.ok_or_else(|| ConnectorError::io(dir, std::io::Error::other("the lock was not taken")))
}

/// The offset below which compaction may have removed records of the partition in `dir`.
pub(crate) fn compared_below(dir: &Path) -> Result<u64, ConnectorError> {
    let path = dir.join(STATE_FILE);
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice::<CompactionState>(&bytes)
            .map(|state| state.compared_below)
            .map_err(|error| ConnectorError::BadLog {
                path,
                reason: format!("unreadable compaction state: {error}"),
            }),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(0),
        Err(error) => Err(ConnectorError::io(path, error)),
    }
}

/// One segment as a pass sees it.
#[derive(Clone, Copy, Debug)]
struct Segment {
    base: u64,
    bytes: u64,
    modified: SystemTime,
    /// Bytes of its records that are their key's newest (known once the closed segments
    /// were read).
    kept: u64,
    /// Whether it holds a tombstone that stays (younger than the tombstone retention).
    tombstones: bool,
}

/// Where a key's newest record is.
#[derive(Clone, Copy, Debug)]
struct Newest {
    offset: u64,
    /// Its segment, as a position in the pass's list.
    segment: usize,
    /// Its frame's bytes.
    bytes: u64,
    /// Whether it is a tombstone.
    tombstone: bool,
}

/// Runs one compaction pass over the partition in `dir`; `None` when another pass holds the
/// partition and `wait` says not to wait.
pub(crate) fn compact_partition(
    dir: &Path,
    config: &LogConfig,
    wait: Wait,
) -> Result<Option<CompactionReport>, ConnectorError> {
    let Some(_lock) = lock_cleaner(dir, wait)? else {
        return Ok(None);
    };
    finish_interrupted(dir, config)?;
    let mut segments = describe_segments(dir)?;
    let mut report = CompactionReport {
        segments_before: segments.len(),
        bytes_before: segments.iter().map(|segment| segment.bytes).sum(),
        ..CompactionReport::default()
    };
    // The segments wholly below the horizon: closed, and committed if an exactly-once sink
    // writes the topic.
    let horizon = match transaction::committed_end(dir)? {
        Some(committed) => committed.min(segments.last().map_or(0, |active| active.base)),
        None => segments.last().map_or(0, |active| active.base),
    };
    let compacted = segments
        .windows(2)
        .take_while(|pair| pair[1].base <= horizon)
        .count();
    if compacted == 0 {
        return Ok(Some(CompactionReport {
            segments_after: report.segments_before,
            bytes_after: report.bytes_before,
            ..report
        }));
    }
    let (closed, after) = segments.split_at_mut(compacted);
    let end_of_closed = after[0].base;
    let judge = Judge {
        newest: newest_offsets(dir, closed, &mut report)?,
        now: SystemTime::now(),
        tombstone_retention: Duration::from_millis(config.tombstone_retention_ms),
    };
    for key in judge.newest.values() {
        let segment = &mut closed[key.segment];
        segment.kept += key.bytes;
        segment.tombstones |= key.tombstone && !judge.expired(segment);
    }
    let closed = &*closed;
    let compared_below = end_of_closed.max(self::compared_below(dir)?);
    write_json_atomically(&dir.join(STATE_FILE), &CompactionState { compared_below })?;
    let mut at = 0;
    for run in runs(closed, config.segment_bytes) {
        at += run.len();
        let end = closed.get(at).map_or(end_of_closed, |next| next.base);
        rewrite_run(dir, run, end, config, &judge, &mut report)?;
    }
    let after = describe_segments(dir)?;
    report.segments_after = after.len();
    report.bytes_after = after.iter().map(|segment| segment.bytes).sum();
    Ok(Some(report))
}

/// Decides which records a pass keeps.
struct Judge {
    /// Each key's newest record in the closed segments.
    newest: HashMap<Vec<u8>, Newest>,
    now: SystemTime,
    tombstone_retention: Duration,
}

/// What becomes of one record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Verdict {
    /// The newest record of its key: kept.
    Keep,
    /// A newer record of its key follows: removed.
    Replaced,
    /// The newest record of its key, a tombstone older than the retention: removed.
    Expired,
}

impl Judge {
    fn verdict(&self, key: &[u8], offset: u64, value_len: usize, segment: &Segment) -> Verdict {
        if self.newest.get(key).map(|newest| newest.offset) != Some(offset) {
            return Verdict::Replaced;
        }
        if value_len == 0 && self.expired(segment) {
            Verdict::Expired
        } else {
            Verdict::Keep
        }
    }

    /// Whether the tombstones of `segment` are past their retention.
    fn expired(&self, segment: &Segment) -> bool {
        self.now
            .duration_since(segment.modified)
            .is_ok_and(|age| age > self.tombstone_retention)
    }
}

/// The partition's segments with their sizes and times, in offset order.
fn describe_segments(dir: &Path) -> Result<Vec<Segment>, ConnectorError> {
    segment::list_segments(dir)?
        .into_iter()
        .map(|base| {
            let path = segment::segment_path(dir, base);
            let meta =
                std::fs::metadata(&path).map_err(|error| ConnectorError::io(&path, error))?;
            Ok(Segment {
                base,
                bytes: meta.len(),
                modified: meta.modified().unwrap_or_else(|_| SystemTime::now()),
                kept: 0,
                tombstones: false,
            })
        })
        .collect()
}

/// The newest record of each key in `segments`.
fn newest_offsets(
    dir: &Path,
    segments: &[Segment],
    report: &mut CompactionReport,
) -> Result<HashMap<Vec<u8>, Newest>, ConnectorError> {
    let mut newest: HashMap<Vec<u8>, Newest> = HashMap::new();
    for (at, segment) in segments.iter().enumerate() {
        scan(dir, segment.base, |key, offset, value_len, frame| {
            report.records_read += 1;
            let record = Newest {
                offset,
                segment: at,
                bytes: frame.len() as u64,
                tombstone: value_len == 0,
            };
            match newest.get_mut(key) {
                Some(newest) => *newest = record,
                None => {
                    newest.insert(key.to_vec(), record);
                }
            }
        })?;
    }
    Ok(newest)
}

/// Hands every record of the closed segment at `base` to `each` as (key, offset, value length,
/// frame bytes), checking that offsets rise and that the segment ends with a whole record.
fn scan(
    dir: &Path,
    base: u64,
    mut each: impl FnMut(&[u8], u64, usize, &[u8]),
) -> Result<(), ConnectorError> {
    let path = segment::segment_path(dir, base);
    let mut cursor = SegmentCursor::open(path.clone(), 0)?;
    let mut next = base;
    let mut out_of_order = None;
    loop {
        let stop = cursor.read(usize::MAX, |view, _, frame| {
            if view.offset < next {
                out_of_order.get_or_insert((next, view.offset));
            } else if out_of_order.is_none() {
                next = view.offset + 1;
                each(view.key, view.offset, view.value.len(), frame);
            }
        })?;
        if let Some((expected, found)) = out_of_order {
            return Err(ConnectorError::Corrupt {
                path,
                offset: expected,
                reason: format!("expected an offset from {expected} on, found {found}"),
            });
        }
        match stop {
            CursorStop::Full => {}
            CursorStop::End { trailing: 0 } => return Ok(()),
            CursorStop::End { trailing } => {
                return Err(ConnectorError::Corrupt {
                    path,
                    offset: next,
                    reason: format!("a closed segment ends {trailing} bytes into a record"),
                })
            }
            CursorStop::Damaged { position, reason } => {
                return Err(ConnectorError::Corrupt {
                    path,
                    offset: next,
                    reason: format!("{reason} (byte {position})"),
                })
            }
        }
    }
}

/// Splits `segments` into runs of consecutive segments that keep at most `limit` bytes
/// together (a segment keeping more than that is a run of its own). A run ends with a segment
/// holding tombstones that stay: the compacted file takes its newest input's time, from which
/// its tombstones' retention counts, and merging newer segments into it would postpone their
/// removal for ever.
fn runs(segments: &[Segment], limit: u64) -> Vec<&[Segment]> {
    let mut runs = Vec::new();
    let mut start = 0;
    let mut bytes = 0;
    for (at, segment) in segments.iter().enumerate() {
        let after_tombstones = at > 0 && segments[at - 1].tombstones;
        if at > start && (bytes + segment.kept > limit || after_tombstones) {
            runs.push(&segments[start..at]);
            start = at;
            bytes = 0;
        }
        bytes += segment.kept;
    }
    if start < segments.len() {
        runs.push(&segments[start..]);
    }
    runs
}

/// Rewrites the run of segments `run`, which ends at offset `end`, into one segment of the
/// records `judge` keeps, and swaps it in. A run of one segment that keeps everything is left
/// as it is.
fn rewrite_run(
    dir: &Path,
    run: &[Segment],
    end: u64,
    config: &LogConfig,
    judge: &Judge,
    report: &mut CompactionReport,
) -> Result<(), ConnectorError> {
    let base = run[0].base;
    let cleaned = dir.join(format!("{base:020}.cleaned"));
    let file = File::create(&cleaned).map_err(|error| ConnectorError::io(&cleaned, error))?;
    let mut out = BufWriter::with_capacity(1 << 20, file);
    let mut written = 0u64;
    let mut kept = 0u64;
    let mut dropped = 0u64;
    let mut failed = None;
    for segment in run {
        scan(dir, segment.base, |key, offset, value_len, frame| {
            match judge.verdict(key, offset, value_len, segment) {
                Verdict::Keep => {}
                verdict => {
                    dropped += 1;
                    report.tombstones_removed += u64::from(verdict == Verdict::Expired);
                    return;
                }
            }
            if failed.is_none() {
                match out.write_all(frame) {
                    Ok(()) => written += frame.len() as u64,
                    Err(error) => failed = Some(error),
                }
            }
            kept += 1;
        })?;
    }
    report.records_kept += kept;
    let file = match failed {
        Some(error) => Err(error),
        None => out
            .into_inner()
            .map_err(std::io::IntoInnerError::into_error),
    }
    .map_err(|error| ConnectorError::io(&cleaned, error))?;
    if dropped == 0 && run.len() == 1 {
        drop(file);
        return std::fs::remove_file(&cleaned).map_err(|error| ConnectorError::io(&cleaned, error));
    }
    // The compacted file keeps the time its newest input was written, so that tombstone
    // retention counts from when the tombstone was written, not from its last compaction.
    let newest_write = run.iter().map(|segment| segment.modified).max();
    newest_write
        .map_or(Ok(()), |modified| file.set_modified(modified))
        .and_then(|()| file.sync_all())
        .map_err(|error| ConnectorError::io(&cleaned, error))?;
    drop(file);
    crash_point("compaction.cleaned");
    let swap = swap_path(dir, base, end);
    std::fs::rename(&cleaned, &swap).map_err(|error| ConnectorError::io(&swap, error))?;
    sync_dir(dir)?;
    crash_point("compaction.swap_ready");
    tracing::debug!(
        partition = %dir.display(), base, end, kept, dropped, bytes = written,
        "compacted a run of segments"
    );
    swap_in(dir, base, end, config)
}

/// The swap file of the compacted run from `base` up to `end`.
fn swap_path(dir: &Path, base: u64, end: u64) -> PathBuf {
    dir.join(format!("{base:020}-{end:020}.swap"))
}

/// Steps 3 to 5 of the swap of the compacted run from `base` up to `end` (see the module's
/// documentation); safe to repeat after a crash at any point of them.
fn swap_in(dir: &Path, base: u64, end: u64, config: &LogConfig) -> Result<(), ConnectorError> {
    use std::os::unix::fs::MetadataExt;
    let swap = swap_path(dir, base, end);
    let target = segment::segment_path(dir, base);
    let identity = |path: &Path| {
        std::fs::metadata(path)
            .map(|meta| Some((meta.dev(), meta.ino())))
            .or_else(|error| match error.kind() {
                std::io::ErrorKind::NotFound => Ok(None),
                _ => Err(ConnectorError::io(path, error)),
            })
    };
    if identity(&target)? != identity(&swap)? {
        let link = dir.join(format!("{base:020}.log.compacted"));
        let _ = std::fs::remove_file(&link);
        std::fs::hard_link(&swap, &link).map_err(|error| ConnectorError::io(&link, error))?;
        std::fs::rename(&link, &target).map_err(|error| ConnectorError::io(&target, error))?;
        sync_dir(dir)?;
    }
    crash_point("compaction.replaced");
    for covered in segment::list_segments(dir)?
        .into_iter()
        .filter(|&other| other > base && other < end)
    {
        remove_if_there(&segment::index_path(dir, covered))?;
        remove_if_there(&segment::segment_path(dir, covered))?;
    }
    sync_dir(dir)?;
    crash_point("compaction.deleted");
    let index = index_of(&target, base, config.index_interval_bytes)?;
    write_atomically(&segment::index_path(dir, base), &index)?;
    remove_if_there(&swap)?;
    sync_dir(dir)
}

/// The bytes of a sparse index of the segment file `path` starting at `base`.
fn index_of(path: &Path, base: u64, interval: u64) -> Result<Vec<u8>, ConnectorError> {
    let mut cursor = SegmentCursor::open(path.to_owned(), 0)?;
    let mut bytes = Vec::new();
    let mut next_index_at = 0;
    while cursor.read(usize::MAX, |view, position, _| {
        // Positions fit in 32 bits (a segment is under 1 GiB); offsets past 2^32 after the
        // base (a first segment that took in many runs) go unindexed, found by scanning.
        if let (true, Ok(relative)) = (position >= next_index_at, u32::try_from(view.offset - base))
        {
            bytes.extend_from_slice(&SparseIndex::encode_entry(relative, position as u32));
            next_index_at = position + interval;
        }
    })? == CursorStop::Full
    {}
    Ok(bytes)
}

fn remove_if_there(path: &Path) -> Result<(), ConnectorError> {
    match std::fs::remove_file(path) {
        Err(error) if error.kind() != std::io::ErrorKind::NotFound => {
            Err(ConnectorError::io(path, error))
        }
        _ => Ok(()),
    }
}

/// Finishes the swaps a crash interrupted and deletes unfinished compacted files.
pub(crate) fn finish_interrupted(dir: &Path, config: &LogConfig) -> Result<(), ConnectorError> {
    let entries = std::fs::read_dir(dir).map_err(|error| ConnectorError::io(dir, error))?;
    let mut swaps = Vec::new();
    let mut unfinished = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|error| ConnectorError::io(dir, error))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else {
            continue;
        };
        if let Some((base, end)) = name
            .strip_suffix(".swap")
            .and_then(|stem| stem.split_once('-'))
            .and_then(|(base, end)| Some((base.parse().ok()?, end.parse().ok()?)))
        {
            swaps.push((base, end));
        } else if name.ends_with(".cleaned") || name.ends_with(".log.compacted") {
            unfinished.push(entry.path());
        }
    }
    swaps.sort_unstable();
    for (base, end) in swaps {
        tracing::info!(partition = %dir.display(), base, end, "finishing an interrupted compaction");
        swap_in(dir, base, end, config)?;
    }
    for path in unfinished {
        remove_if_there(&path)?;
    }
    sync_dir(dir)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::partition::{Cleanup, PartitionWriter};
    use crate::log::record::RecordRef;
    use crate::log::{Topic, ValueFormat};
    use weir_engine::EventTime;

    fn segment(base: u64, kept: u64) -> Segment {
        Segment {
            base,
            bytes: kept * 3,
            modified: SystemTime::UNIX_EPOCH,
            kept,
            tombstones: false,
        }
    }

    #[test]
    fn runs_gather_consecutive_segments_up_to_the_limit() {
        let segments = [
            segment(0, 40),
            segment(10, 50),
            segment(20, 30),
            segment(30, 200),
            segment(40, 10),
        ];
        let bases: Vec<Vec<u64>> = runs(&segments, 100)
            .iter()
            .map(|run| run.iter().map(|segment| segment.base).collect())
            .collect();
        assert_eq!(bases, vec![vec![0, 10], vec![20], vec![30], vec![40]]);
        let mut with_tombstones = segments;
        with_tombstones[0].tombstones = true;
        with_tombstones[3].kept = 30;
        let bases: Vec<Vec<u64>> = runs(&with_tombstones, 100)
            .iter()
            .map(|run| run.iter().map(|segment| segment.base).collect())
            .collect();
        assert_eq!(bases, vec![vec![0], vec![10, 20], vec![30, 40]]);
    }

    /// A temporary directory, and the settings of a compacted partition of small segments.
    fn compacted_dir() -> Result<(tempfile::TempDir, LogConfig), ConnectorError> {
        let dir = tempfile::tempdir().map_err(|error| ConnectorError::io("tempdir", error))?;
        let config = LogConfig {
            segment_bytes: 256,
            cleanup: Cleanup::Compact,
            ..LogConfig::default()
        };
        Ok((dir, config))
    }

    fn keyed(key: &str, step: u64) -> RecordRef<'_> {
        RecordRef {
            key: key.as_bytes(),
            value: b"{\"some\":\"value\"}",
            timestamp: EventTime(step),
            headers: &[],
        }
    }

    /// A rewind below the offset compaction compared records up to would lose values that
    /// compaction removed for records the rewind removes: it is refused; one above is done.
    #[test]
    fn a_rewind_below_what_compaction_compared_is_refused() -> Result<(), ConnectorError> {
        let (dir, config) = compacted_dir()?;
        let mut writer = PartitionWriter::open(dir.path(), config.clone())?;
        for step in 0..100u64 {
            writer.append(&keyed(&(step % 3).to_string(), step))?;
        }
        writer.flush()?;
        compact_partition(dir.path(), &config, Wait::Yes)?;
        let compared = compared_below(dir.path())?;
        assert!(compared > 10 && compared < 100, "compared below {compared}");
        let error = writer
            .prepare_rewind(5)
            .map(|_| ())
            .expect_err("a rewind to offset 5 must be refused");
        assert!(error.to_string().contains("cannot rewind"), "{error}");
        let lock = writer.prepare_rewind(compared + 1)?;
        let writer = writer.truncate(compared + 1, &lock)?;
        assert_eq!(writer.next_offset(), compared + 1);
        Ok(())
    }

    /// A rewind of several partitions, one of them refused, cuts none of them.
    #[test]
    fn a_refused_rewind_of_one_partition_leaves_every_partition_as_it_was(
    ) -> Result<(), ConnectorError> {
        let (dir, config) = compacted_dir()?;
        let topic = Topic::create(dir.path().join("t"), 2, ValueFormat::Json, config)?;
        let mut producer = topic.producer()?;
        for step in 0..200u64 {
            producer.send(&keyed(&(step % 7).to_string(), step))?;
        }
        producer.flush()?;
        topic.compact()?;
        let ends = producer.next_offsets();
        let compared = compared_below(&topic.partition_dir(1))?;
        assert!(compared > 5, "compared below {compared}");
        // Partition 0 a record back (allowed), partition 1 below what compaction compared.
        let error = producer
            .truncate(&[ends[0] - 1, 5])
            .expect_err("partition 1's rewind must be refused");
        assert!(error.to_string().contains("cannot rewind"), "{error}");
        assert_eq!(topic.offsets(0)?.1, ends[0]);
        assert_eq!(topic.offsets(1)?.1, ends[1]);
        Ok(())
    }
}
