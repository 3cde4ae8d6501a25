//! One partition: an append-only writer with crash recovery, and a batch reader that follows
//! the writer across segment rolls.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::thread::JoinHandle;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::durable::sync_dir;
use crate::error::ConnectorError;

use super::compaction::{self, Wait};
use super::record::{self, RecordRef, RecordView, FRAME_HEADER, MAX_BODY};
use super::retention::{self, SegmentInfo};
use super::segment::{self, CursorStop, SegmentCursor, SparseIndex};

/// Bytes a writer buffers before handing them to the OS.
const WRITE_BUFFER: usize = 1 << 20;
/// The largest segment: index positions are 32-bit.
const MAX_SEGMENT_BYTES: u64 = 1 << 30;

/// How a topic's partitions store their records; kept in the topic's metadata so that every
/// writer of the topic uses the same settings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct LogConfig {
    /// A writer starts a new segment once the active one holds this many bytes.
    pub segment_bytes: u64,
    /// One index entry per this many bytes of records.
    pub index_interval_bytes: u64,
    /// Keep at most this many bytes per partition, deleting whole segments, oldest first.
    pub retention_bytes: Option<u64>,
    /// Delete whole segments last written longer ago than this many milliseconds.
    pub retention_ms: Option<u64>,
    /// What happens to old records: deleted by the retention settings, or compacted to the
    /// newest record of each key.
    pub cleanup: Cleanup,
    /// In a compacted topic, how long (milliseconds since its segment was last written) a
    /// tombstone stays for readers to see before compaction removes it: a reader that takes
    /// longer than this to reach a tombstone may miss the delete.
    pub tombstone_retention_ms: u64,
}

/// How a topic gets rid of old records.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Cleanup {
    /// Whole segments are deleted by the retention settings (or never, without them).
    #[default]
    Delete,
    /// Closed segments are rewritten in the background to keep only the newest record of
    /// each key, as Kafka's compacted topics: every record needs a key, and one with an empty
    /// value (a tombstone) deletes its key. Offsets keep their numbers, with gaps where
    /// records were removed.
    Compact,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            segment_bytes: 128 << 20,
            index_interval_bytes: 4096,
            retention_bytes: None,
            retention_ms: None,
            cleanup: Cleanup::Delete,
            tombstone_retention_ms: 24 * 60 * 60 * 1000,
        }
    }
}

impl LogConfig {
    /// Checks that segments fit 32-bit index positions and are not empty.
    pub fn validate(&self) -> Result<(), String> {
        if self.segment_bytes == 0 || self.segment_bytes > MAX_SEGMENT_BYTES {
            return Err(format!(
                "segment size {} must be between 1 byte and 1 GiB",
                self.segment_bytes
            ));
        }
        if self.index_interval_bytes == 0 {
            return Err("the index interval must be at least 1 byte".into());
        }
        if self.compacted() && (self.retention_bytes.is_some() || self.retention_ms.is_some()) {
            return Err(
                "a compacted topic keeps every key's newest record: it takes no \
                        retention by size or age"
                    .into(),
            );
        }
        Ok(())
    }

    /// Whether the topic is compacted (its offsets may have gaps).
    pub fn compacted(&self) -> bool {
        self.cleanup == Cleanup::Compact
    }
}

/// Appends records to one partition. One writer per partition at a time, across processes:
/// a second one fails to open.
#[derive(Debug)]
pub struct PartitionWriter {
    dir: PathBuf,
    config: LogConfig,
    /// Holds the partition's advisory lock while the writer lives.
    _lock: File,
    segments: Vec<u64>,
    active: File,
    active_index: File,
    /// Bytes of the active segment already handed to the OS.
    written: u64,
    /// Encoded frames not yet handed to the OS.
    buffer: Vec<u8>,
    index_buffer: Vec<u8>,
    /// Position in the active segment at which the next index entry is due.
    next_index_at: u64,
    next_offset: u64,
    /// The background compaction this writer started last (compacted topics only).
    compaction: Option<JoinHandle<()>>,
}

impl PartitionWriter {
    /// Opens (creating if needed) the partition in `dir`, repairing a torn tail left by a
    /// crash. Damage anywhere but the tail is an error naming the file and offset.
    pub fn open(dir: &Path, config: LogConfig) -> Result<PartitionWriter, ConnectorError> {
        config.validate().map_err(|reason| ConnectorError::BadLog {
            path: dir.to_owned(),
            reason,
        })?;
        std::fs::create_dir_all(dir).map_err(|error| ConnectorError::io(dir, error))?;
        let lock_path = dir.join(".writer.lock");
        let lock =
            File::create(&lock_path).map_err(|error| ConnectorError::io(&lock_path, error))?;
        lock.try_lock().map_err(|_| ConnectorError::BadLog {
            path: dir.to_owned(),
            reason: "another writer has this partition open".into(),
        })?;
        let mut segments = segment::list_segments(dir)?;
        let base = *segments.last().unwrap_or(&0);
        if segments.is_empty() {
            segments.push(base);
        }
        let recovered = recover_segment(dir, base, config.index_interval_bytes)?;
        let active = open_append(&segment::segment_path(dir, base))?;
        let index_path = segment::index_path(dir, base);
        recovered.index.write_to(&index_path)?;
        let active_index = open_append(&index_path)?;
        let mut writer = PartitionWriter {
            dir: dir.to_owned(),
            _lock: lock,
            segments,
            active,
            active_index,
            written: recovered.end,
            buffer: Vec::with_capacity(WRITE_BUFFER),
            index_buffer: Vec::new(),
            next_index_at: recovered.next_index_at,
            next_offset: recovered.next_offset,
            config,
            compaction: None,
        };
        writer.apply_retention()?;
        Ok(writer)
    }

    /// The offset the next appended record gets.
    pub fn next_offset(&self) -> u64 {
        self.next_offset
    }

    /// Appends one record and returns its offset. Records reach the OS in batches; call
    /// [`flush`](Self::flush) to make them visible to readers, [`sync`](Self::sync) to make
    /// them durable.
    pub fn append(&mut self, record: &RecordRef<'_>) -> Result<u64, ConnectorError> {
        record::check_limits(record).map_err(|reason| ConnectorError::BadLog {
            path: self.dir.clone(),
            reason,
        })?;
        if record.key.is_empty() && self.config.compacted() {
            return Err(ConnectorError::BadLog {
                path: self.dir.clone(),
                reason: format!(
                    "the record for offset {} has no key: a compacted topic keeps the newest \
                     record of each key, so every record needs one",
                    self.next_offset
                ),
            });
        }
        let position = self.written + self.buffer.len() as u64;
        if position >= self.config.segment_bytes
            || position + (FRAME_HEADER + MAX_BODY) as u64 > MAX_SEGMENT_BYTES
        {
            self.roll()?;
        }
        let position = self.written + self.buffer.len() as u64;
        if position >= self.next_index_at {
            let base = self.active_base();
            // Both fit in 32 bits: segments end before 1 GiB and hold fewer records than bytes.
            let entry =
                SparseIndex::encode_entry((self.next_offset - base) as u32, position as u32);
            self.index_buffer.extend_from_slice(&entry);
            self.next_index_at = position + self.config.index_interval_bytes;
        }
        let offset = self.next_offset;
        record::encode(&mut self.buffer, offset, record);
        self.next_offset += 1;
        if self.buffer.len() >= WRITE_BUFFER {
            self.flush()?;
        }
        Ok(offset)
    }

    /// Hands every appended record to the OS, where readers see it.
    pub fn flush(&mut self) -> Result<(), ConnectorError> {
        let path = segment::segment_path(&self.dir, self.active_base());
        self.active
            .write_all(&self.buffer)
            .map_err(|error| ConnectorError::io(&path, error))?;
        self.written += self.buffer.len() as u64;
        self.buffer.clear();
        let index_path = segment::index_path(&self.dir, self.active_base());
        self.active_index
            .write_all(&self.index_buffer)
            .map_err(|error| ConnectorError::io(&index_path, error))?;
        self.index_buffer.clear();
        Ok(())
    }

    /// Flushes and waits until every appended record is on stable storage.
    pub fn sync(&mut self) -> Result<(), ConnectorError> {
        self.flush()?;
        let path = segment::segment_path(&self.dir, self.active_base());
        self.active
            .sync_data()
            .map_err(|error| ConnectorError::io(&path, error))?;
        sync_dir(&self.dir)
    }

    /// Readies a rewind to `offset` (see [`truncate`](Self::truncate)): waits for this
    /// writer's compaction, takes the partition's cleaner lock so that no compaction starts
    /// until the rewind is done, finishes an interrupted one, and checks that the rewind
    /// loses nothing. In a compacted partition a rewind below the offset compaction compared
    /// records up to is refused: records there may have been removed for newer ones that the
    /// rewind would remove too. A rewind of several partitions readies them all before it
    /// cuts any, so that a refusal leaves every partition as it was.
    pub(crate) fn prepare_rewind(
        &mut self,
        offset: u64,
    ) -> Result<compaction::CleanerLock, ConnectorError> {
        self.flush()?;
        self.wait_for_compaction();
        let lock = compaction::hold_cleaner(&self.dir)?;
        if self.config.compacted() && offset < self.next_offset {
            compaction::finish_interrupted(&self.dir, &self.config)?;
            let compared_below = compaction::compared_below(&self.dir)?;
            if offset < compared_below {
                return Err(ConnectorError::BadLog {
                    path: self.dir.clone(),
                    reason: format!(
                        "cannot rewind this compacted partition to offset {offset}: compaction \
                         has already compared the records below offset {compared_below} and \
                         removed those that later ones replaced, so the rewind would lose \
                         keys' values (restore a checkpoint taken after that offset was \
                         written)"
                    ),
                });
            }
        }
        Ok(lock)
    }

    /// Removes every record from `offset` on, durably, and reopens the writer over what is
    /// left: how the exactly-once sink rewinds its output to an older checkpoint. Later
    /// segments go first, newest first, so a crash part-way leaves a shorter partition
    /// without gaps. `_ready` is the lock [`prepare_rewind`](Self::prepare_rewind) took.
    pub(crate) fn truncate(
        mut self,
        offset: u64,
        _ready: &compaction::CleanerLock,
    ) -> Result<PartitionWriter, ConnectorError> {
        self.flush()?;
        if offset >= self.next_offset {
            return Ok(self);
        }
        let (dir, config) = (self.dir.clone(), self.config.clone());
        let segments = segment::list_segments(&dir)?;
        let position = PartitionReader::open(&dir, offset, &config)?;
        let (base, cut_at) = (position.base, position.cursor.position());
        // Releases the writer's lock for the reopen below; this sink is the only writer.
        drop(self);
        // Each index before its segment: an index left without its segment would say that
        // the segment was lost.
        for &later in segments.iter().rev().filter(|&&later| later > base) {
            let index = segment::index_path(&dir, later);
            match std::fs::remove_file(&index) {
                Err(error) if error.kind() != std::io::ErrorKind::NotFound => {
                    return Err(ConnectorError::io(&index, error));
                }
                _ => {}
            }
            let path = segment::segment_path(&dir, later);
            std::fs::remove_file(&path).map_err(|error| ConnectorError::io(&path, error))?;
        }
        let path = segment::segment_path(&dir, base);
        let file = OpenOptions::new()
            .write(true)
            .open(&path)
            .map_err(|error| ConnectorError::io(&path, error))?;
        file.set_len(cut_at)
            .and_then(|()| file.sync_all())
            .map_err(|error| ConnectorError::io(&path, error))?;
        // Rebuilt by the reopen's recovery of the last segment.
        let _ = std::fs::remove_file(segment::index_path(&dir, base));
        sync_dir(&dir)?;
        tracing::info!(partition = %dir.display(), offset, "rewound the partition");
        PartitionWriter::open(&dir, config)
    }

    fn active_base(&self) -> u64 {
        *self.segments.last().unwrap_or(&0)
    }

    /// Starts a compaction pass of the closed segments in the background, unless the last
    /// one is still running; its errors are logged (the partition stays as it was).
    fn start_compaction(&mut self) {
        if self
            .compaction
            .as_ref()
            .is_some_and(|pass| !pass.is_finished())
        {
            return;
        }
        self.wait_for_compaction();
        let (dir, config) = (self.dir.clone(), self.config.clone());
        let started = std::thread::Builder::new()
            .name("weir-compaction".into())
            .spawn(
                move || match compaction::compact_partition(&dir, &config, Wait::No) {
                    Ok(Some(report)) => {
                        tracing::info!(partition = %dir.display(), ?report, "compacted");
                    }
                    Ok(None) => {}
                    Err(error) => tracing::error!(
                        partition = %dir.display(), %error,
                        "compaction failed; the partition is left as it was"
                    ),
                },
            );
        match started {
            Ok(handle) => self.compaction = Some(handle),
            Err(error) => tracing::error!(%error, "could not start a compaction thread"),
        }
    }

    /// Waits for the background compaction this writer started, if any.
    fn wait_for_compaction(&mut self) {
        if let Some(pass) = self.compaction.take() {
            if pass.join().is_err() {
                tracing::error!(partition = %self.dir.display(), "a compaction thread panicked");
            }
        }
    }

    /// Closes the active segment, durably, and starts the next one at the next offset.
    /// (`sync` reaches the active segment only: a commit that spans a roll relies on the
    /// closed segment having been synced here.)
    fn roll(&mut self) -> Result<(), ConnectorError> {
        self.flush()?;
        let closing = segment::segment_path(&self.dir, self.active_base());
        self.active
            .sync_data()
            .and_then(|()| self.active_index.sync_data())
            .map_err(|error| ConnectorError::io(&closing, error))?;
        let base = self.next_offset;
        let path = segment::segment_path(&self.dir, base);
        self.active = open_append(&path)?;
        self.active_index = open_append(&segment::index_path(&self.dir, base))?;
        self.segments.push(base);
        self.written = 0;
        self.next_index_at = 0;
        if self.config.compacted() {
            self.start_compaction();
        }
        self.apply_retention()
    }

    /// Deletes the closed segments that the retention settings no longer keep.
    fn apply_retention(&mut self) -> Result<(), ConnectorError> {
        if self.config.retention_bytes.is_none() && self.config.retention_ms.is_none() {
            return Ok(());
        }
        let mut infos = Vec::with_capacity(self.segments.len());
        for &base in &self.segments {
            let path = segment::segment_path(&self.dir, base);
            let meta =
                std::fs::metadata(&path).map_err(|error| ConnectorError::io(&path, error))?;
            infos.push(SegmentInfo {
                base,
                bytes: meta.len(),
                modified: meta.modified().unwrap_or_else(|_| SystemTime::now()),
            });
        }
        let expired = retention::expired(&infos, &self.config, SystemTime::now());
        for base in &expired {
            let path = segment::segment_path(&self.dir, *base);
            tracing::info!(segment = %path.display(), "retention deletes a segment");
            std::fs::remove_file(&path).map_err(|error| ConnectorError::io(&path, error))?;
            let index = segment::index_path(&self.dir, *base);
            // An index without its segment is ignored, so a failure here loses nothing.
            let _ = std::fs::remove_file(index);
        }
        self.segments.retain(|base| !expired.contains(base));
        Ok(())
    }
}

impl Drop for PartitionWriter {
    fn drop(&mut self) {
        if let Err(error) = self.flush() {
            tracing::error!(%error, "records appended to the log were lost when its writer closed");
        }
        self.wait_for_compaction();
    }
}

/// What the scan of a partition's last segment found.
struct Recovered {
    end: u64,
    next_offset: u64,
    next_index_at: u64,
    index: SparseIndex,
}

/// Scans the segment at `base`, rebuilding its index and cutting off a torn tail.
fn recover_segment(
    dir: &Path,
    base: u64,
    index_interval: u64,
) -> Result<Recovered, ConnectorError> {
    let path = segment::segment_path(dir, base);
    if !path.exists() {
        File::create(&path).map_err(|error| ConnectorError::io(&path, error))?;
    }
    let mut cursor = SegmentCursor::open(path.clone(), 0)?;
    let mut index = SparseIndex::default();
    let mut next_offset = base;
    let mut next_index_at = 0;
    let mut out_of_order = None;
    let stop = loop {
        let stop = cursor.read(usize::MAX, |view, position, _frame| {
            if view.offset != next_offset && out_of_order.is_none() {
                out_of_order = Some((next_offset, view.offset));
            }
            if position >= next_index_at {
                index.push((next_offset - base) as u32, position as u32);
                next_index_at = position + index_interval;
            }
            next_offset += 1;
        })?;
        if stop != CursorStop::Full {
            break stop;
        }
    };
    if let Some((expected, found)) = out_of_order {
        return Err(ConnectorError::Corrupt {
            path,
            offset: expected,
            reason: format!("expected offset {expected}, found {found}"),
        });
    }
    let end = cursor.position();
    let file_len = std::fs::metadata(&path)
        .map_err(|error| ConnectorError::io(&path, error))?
        .len();
    if let CursorStop::Damaged { position, reason } = stop {
        if !is_torn_tail(&path, position, file_len)? {
            return Err(ConnectorError::Corrupt {
                path,
                offset: next_offset,
                reason: format!("{reason} (byte {position})"),
            });
        }
    }
    if end < file_len {
        tracing::warn!(
            segment = %path.display(),
            offset = next_offset,
            bytes = file_len - end,
            "cutting off a torn tail left by an interrupted append"
        );
        let file = OpenOptions::new()
            .write(true)
            .open(&path)
            .map_err(|error| ConnectorError::io(&path, error))?;
        file.set_len(end)
            .map_err(|error| ConnectorError::io(&path, error))?;
        file.sync_all()
            .map_err(|error| ConnectorError::io(&path, error))?;
    }
    Ok(Recovered {
        end,
        next_offset,
        next_index_at,
        index,
    })
}

/// A damaged frame is a torn tail when nothing but zeros follows it (a file extended before
/// its data reached the disk) or when it is the file's last frame.
fn is_torn_tail(path: &Path, position: u64, file_len: u64) -> Result<bool, ConnectorError> {
    let bytes = std::fs::read(path).map_err(|error| ConnectorError::io(path, error))?;
    let tail = bytes.get(position as usize..).unwrap_or_default();
    if tail.iter().all(|&byte| byte == 0) {
        return Ok(true);
    }
    // A header that checks out and declares exactly the rest of the file: the body was cut.
    let declared_end = (tail.len() >= FRAME_HEADER
        && crc32c::crc32c(&tail[..8])
            == u32::from_le_bytes([tail[8], tail[9], tail[10], tail[11]]))
    .then(|| {
        position
            + FRAME_HEADER as u64
            + u64::from(u32::from_le_bytes([tail[0], tail[1], tail[2], tail[3]]))
    });
    Ok(declared_end == Some(file_len))
}

fn open_append(path: &Path) -> Result<File, ConnectorError> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|error| ConnectorError::io(path, error))
}

/// Reads one partition in offset order, from a given offset, following its writer.
#[derive(Debug)]
pub struct PartitionReader {
    dir: PathBuf,
    base: u64,
    cursor: SegmentCursor,
    next_offset: u64,
    /// Whether the end of the current segment was read again after a newer segment
    /// appeared (see `next_segment`).
    reread: bool,
    /// Bytes after the last whole record of the last segment, where the last read stopped.
    torn_tail: Option<TornTail>,
    /// Whether offsets may skip numbers (a compacted partition).
    gaps: bool,
}

impl PartitionReader {
    /// Opens the partition in `dir`, stored as `config` says, for reading from `offset`, which
    /// must lie between the first offset retention kept and the next offset to be written. In
    /// a compacted partition the first record read is the first one at or after `offset`.
    pub(crate) fn open(
        dir: &Path,
        offset: u64,
        config: &LogConfig,
    ) -> Result<PartitionReader, ConnectorError> {
        again_if_deleted(config, || Self::open_once(dir, offset, config))
    }

    fn open_once(
        dir: &Path,
        offset: u64,
        config: &LogConfig,
    ) -> Result<PartitionReader, ConnectorError> {
        let segments = segment::list_segments(dir)?;
        let (start, end) = offset_range(dir, &segments)?;
        if !(start..=end).contains(&offset) {
            return Err(ConnectorError::OffsetOutOfRange {
                path: dir.to_owned(),
                offset,
                start,
                end,
            });
        }
        let at = segments
            .partition_point(|&base| base <= offset)
            .saturating_sub(1);
        let base = segments.get(at).copied().unwrap_or(0);
        let (cursor, indexed_offset) = indexed_cursor(dir, base, offset)?;
        let mut reader = PartitionReader {
            dir: dir.to_owned(),
            base,
            cursor,
            next_offset: indexed_offset,
            reread: false,
            torn_tail: None,
            gaps: config.compacted(),
        };
        if reader.gaps {
            reader.cursor.skip_below(offset)?;
            reader.next_offset = offset;
            return Ok(reader);
        }
        // Skip from the indexed record to the asked-for one.
        while reader.next_offset < offset {
            let wanted = (offset - reader.next_offset) as usize;
            if reader.read(wanted, |_| {})? == 0 {
                return Err(reader.ends_before(offset));
            }
        }
        Ok(reader)
    }

    /// The offset of the next record this reader hands over.
    pub fn next_offset(&self) -> u64 {
        self.next_offset
    }

    /// The bytes after the last whole record of the partition, if the last read stopped in
    /// front of some: a segment truncated or torn by a crash, or a record its writer is still
    /// appending.
    pub fn torn_tail(&self) -> Option<&TornTail> {
        self.torn_tail.as_ref()
    }

    /// The error of a reader that must reach offset `end` (a bounded read, a reader opened
    /// at `end`) but found no more records before it: the partition was truncated or is
    /// damaged at its end. Names the segment, the offset and, for a torn tail, its bytes.
    pub fn ends_before(&self, end: u64) -> ConnectorError {
        let tail = self
            .torn_tail
            .as_ref()
            .map(|tail| {
                format!(
                    " ({} bytes at byte {} are not a whole record)",
                    tail.bytes, tail.position
                )
            })
            .unwrap_or_default();
        ConnectorError::Corrupt {
            path: self.cursor.path().to_owned(),
            offset: self.next_offset,
            reason: format!("the partition's records end before offset {end}{tail}"),
        }
    }

    /// Hands up to `max` records to `each` in offset order and returns how many; 0 means
    /// nothing more is written yet.
    pub fn read(
        &mut self,
        max: usize,
        mut each: impl FnMut(RecordView<'_>),
    ) -> Result<usize, ConnectorError> {
        self.torn_tail = None;
        let mut handed = 0;
        while handed < max {
            let mut out_of_order = None;
            let next_offset = &mut self.next_offset;
            let gaps = self.gaps;
            let stop = self.cursor.read(max - handed, |view, _position, _frame| {
                if view.offset != *next_offset && !(gaps && view.offset > *next_offset) {
                    out_of_order.get_or_insert((*next_offset, view.offset));
                } else if out_of_order.is_none() {
                    each(view);
                    *next_offset = view.offset + 1;
                    handed += 1;
                }
            })?;
            if let Some((expected, found)) = out_of_order {
                return Err(ConnectorError::Corrupt {
                    path: self.cursor.path().to_owned(),
                    offset: expected,
                    reason: format!("expected offset {expected}, found {found}"),
                });
            }
            match stop {
                CursorStop::Full => break,
                CursorStop::Damaged { position, reason } => {
                    return Err(ConnectorError::Corrupt {
                        path: self.cursor.path().to_owned(),
                        offset: self.next_offset,
                        reason: format!("{reason} (byte {position})"),
                    })
                }
                CursorStop::End { trailing } => {
                    if !self.next_segment(trailing)? {
                        self.torn_tail = (trailing > 0).then(|| TornTail {
                            segment: self.cursor.path().to_owned(),
                            position: self.cursor.position(),
                            bytes: trailing,
                        });
                        break;
                    }
                }
            }
        }
        Ok(handed)
    }

    /// Steps over damaged bytes at the reader's position (after [`read`](Self::read) reported
    /// them as corrupt) to the next intact record, or to the next segment. Returns what was
    /// skipped; fails when the damage runs to the end of the partition's last segment, where
    /// no later record tells how many offsets it covered.
    pub fn skip_damaged(&mut self) -> Result<Skipped, ConnectorError> {
        let path = self.cursor.path().to_owned();
        let position = self.cursor.position();
        let bytes = std::fs::read(&path).map_err(|error| ConnectorError::io(&path, error))?;
        let rest = bytes.get(position as usize..).unwrap_or_default();
        let first_offset = self.next_offset;
        let resync = (1..rest.len()).find_map(|at| match record::decode(rest, at) {
            record::Frame::Record(view, _) if view.offset > first_offset => Some((at, view.offset)),
            _ => None,
        });
        let (skipped_bytes, next_offset) = match resync {
            Some((at, offset)) => {
                self.cursor = SegmentCursor::open(path.clone(), position + at as u64)?;
                (&rest[..at], offset)
            }
            None => {
                let segments = segment::list_segments(&self.dir)?;
                let Some(&next) = segments.iter().find(|&&base| base > self.base) else {
                    return Err(ConnectorError::Corrupt {
                        path,
                        offset: first_offset,
                        reason: "damaged bytes run to the end of the last segment".into(),
                    });
                };
                self.cursor = SegmentCursor::open(segment::segment_path(&self.dir, next), 0)?;
                self.base = next;
                self.reread = false;
                (rest, next)
            }
        };
        self.next_offset = next_offset;
        tracing::warn!(
            segment = %path.display(),
            offsets = ?(first_offset..next_offset),
            bytes = skipped_bytes.len(),
            "skipped damaged records"
        );
        Ok(Skipped {
            first_offset,
            next_offset,
            raw: skipped_bytes.to_vec(),
        })
    }

    /// Moves to the following segment once this one is closed; false when there is none.
    fn next_segment(&mut self, trailing: u64) -> Result<bool, ConnectorError> {
        if self.gaps {
            return self.next_segment_with_gaps(trailing);
        }
        let segments = segment::list_segments(&self.dir)?;
        let Some(&next) = segments.iter().find(|&&base| base > self.base) else {
            return Ok(false);
        };
        let path = self.cursor.path().to_owned();
        if (trailing > 0 || next != self.next_offset) && !self.reread {
            // The writer may have finished this segment's last record and rolled after the
            // cursor read the file: read the rest once more before judging it.
            self.reread = true;
            self.cursor = SegmentCursor::open(path, self.cursor.position())?;
            return Ok(true);
        }
        if trailing > 0 {
            return Err(ConnectorError::Corrupt {
                path,
                offset: self.next_offset,
                reason: format!("a closed segment ends {trailing} bytes into a record"),
            });
        }
        if next != self.next_offset {
            return Err(ConnectorError::Corrupt {
                path,
                offset: self.next_offset,
                reason: format!("the segment ends before offset {next}, where the next one starts"),
            });
        }
        self.cursor = SegmentCursor::open(segment::segment_path(&self.dir, next), 0)?;
        self.base = next;
        self.reread = false;
        Ok(true)
    }
}

impl PartitionReader {
    /// [`next_segment`](Self::next_segment) of a compacted partition. A compaction replaces a
    /// run of segments by one file under the first one's name, then deletes the others, first
    /// to last; a reader can be in any of them meanwhile. So the reader goes on in the segment
    /// that now holds its next offset when that is another file than the one it read (another
    /// name, or its own name replaced), and otherwise, having read its own file to the end,
    /// in the next segment, past the offsets compaction removed.
    fn next_segment_with_gaps(&mut self, trailing: u64) -> Result<bool, ConnectorError> {
        let segments = segment::list_segments(&self.dir)?;
        let holder = segments
            .partition_point(|&base| base <= self.next_offset)
            .checked_sub(1)
            .map(|at| segments[at]);
        if let Some(holder) = holder {
            if holder != self.base || self.cursor.replaced()? {
                return match indexed_cursor(&self.dir, holder, self.next_offset) {
                    Ok((mut cursor, _)) => {
                        cursor.skip_below(self.next_offset)?;
                        self.cursor = cursor;
                        self.base = holder;
                        self.reread = false;
                        Ok(true)
                    }
                    // Deleted by a compaction since the listing: list again.
                    Err(error) if is_not_found(&error) => Ok(true),
                    Err(error) => Err(error),
                };
            }
        }
        let Some(&next) = segments.iter().find(|&&base| base > self.base) else {
            return Ok(false);
        };
        if !self.reread {
            // The writer may have appended to this segment and rolled after the cursor read
            // the file: read on once more before moving over the gap.
            self.reread = true;
            return Ok(true);
        }
        if trailing > 0 {
            return Err(ConnectorError::Corrupt {
                path: self.cursor.path().to_owned(),
                offset: self.next_offset,
                reason: format!("a closed segment ends {trailing} bytes into a record"),
            });
        }
        self.cursor = match SegmentCursor::open(segment::segment_path(&self.dir, next), 0) {
            Ok(cursor) => cursor,
            // Deleted by a compaction since the listing: list again.
            Err(error) if is_not_found(&error) => return Ok(true),
            Err(error) => return Err(error),
        };
        self.base = next;
        self.reread = false;
        self.next_offset = self.next_offset.max(next);
        Ok(true)
    }
}

/// Runs `read` (something that lists a partition's segments, then opens them) again while it
/// fails because a segment listed was gone when opened: deleted by a compaction meanwhile
/// (compacted partitions only; a few hundred times at most).
pub(crate) fn again_if_deleted<T>(
    config: &LogConfig,
    mut read: impl FnMut() -> Result<T, ConnectorError>,
) -> Result<T, ConnectorError> {
    let mut attempts = 0;
    loop {
        match read() {
            Err(error) if config.compacted() && is_not_found(&error) && attempts < 300 => {
                attempts += 1;
            }
            done => return done,
        }
    }
}

/// Whether `error` says that a file is not there (in a compacted partition: deleted by a
/// compaction after it was listed).
fn is_not_found(error: &ConnectorError) -> bool {
    matches!(error, ConnectorError::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound)
}

/// A cursor on the segment at `base` placed at the last indexed record at or before
/// `offset`, and that record's offset. An index entry counts only where a record of its offset
/// starts at its position: a compaction may have replaced the segment since the index was
/// written, and then the cursor starts at the segment's beginning.
fn indexed_cursor(
    dir: &Path,
    base: u64,
    offset: u64,
) -> Result<(SegmentCursor, u64), ConnectorError> {
    let index = SparseIndex::load(dir, base)?;
    let (indexed_offset, position) = index.lookup(base, offset);
    let path = segment::segment_path(dir, base);
    if position > 0 {
        let mut cursor = SegmentCursor::open(path.clone(), position)?;
        if cursor.peek_offset()? == Some(indexed_offset) {
            return Ok((cursor, indexed_offset));
        }
    }
    Ok((SegmentCursor::open(path, 0)?, base))
}

/// Bytes at the end of a partition's last segment that do not make a whole record.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct TornTail {
    /// The segment file.
    pub segment: PathBuf,
    /// The byte position where the incomplete record starts.
    pub position: u64,
    /// How many bytes follow the last whole record.
    pub bytes: u64,
}

impl std::fmt::Display for TornTail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: {} bytes from byte {} are not a whole record (a truncated or torn segment, \
             or a record its writer is still appending)",
            self.segment.display(),
            self.bytes,
            self.position
        )
    }
}

/// Damaged records a reader stepped over.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Skipped {
    /// The first offset skipped.
    pub first_offset: u64,
    /// The offset reading resumes at.
    pub next_offset: u64,
    /// The damaged bytes.
    pub raw: Vec<u8>,
}

/// The first offset kept and the next offset to be written in a partition.
pub(crate) fn offset_range(dir: &Path, segments: &[u64]) -> Result<(u64, u64), ConnectorError> {
    let (Some(&first), Some(&last)) = (segments.first(), segments.last()) else {
        return Ok((0, 0));
    };
    let index = SparseIndex::load(dir, last)?;
    let (mut end, position) = index.lookup(last, u64::MAX);
    let path = segment::segment_path(dir, last);
    let mut cursor = SegmentCursor::open(path.clone(), position)?;
    // Damage is reported where it is read; the range ends before it.
    while cursor.read(usize::MAX, |_, _, _| end += 1)? == CursorStop::Full {}
    if let Some((offset, position)) = index.cut_off().filter(|(offset, _)| *offset >= end) {
        return Err(ConnectorError::Corrupt {
            path,
            offset: end,
            reason: format!(
                "the segment's records end at byte {}, but its index places offset {offset} \
                 at byte {position}: records from offset {end} on were cut off",
                cursor.position()
            ),
        });
    }
    Ok((first, end))
}
