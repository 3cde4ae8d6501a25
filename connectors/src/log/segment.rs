//! Segment files and their sparse offset indexes.
//!
//! A partition is a sequence of segments named by the offset of their first record
//! (`00000000000000001000.log`), each with an index file of the same name
//! (`00000000000000001000.index`) holding `(offset - base: u32, file position: u32)` pairs,
//! one per [`LogConfig::index_interval_bytes`](super::LogConfig) of records.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::error::ConnectorError;

use super::record::{self, Frame, RecordView};

/// Bytes a cursor reads from its file at a time.
const READ_CHUNK: usize = 1 << 20;
/// Bytes of one index entry.
const INDEX_ENTRY: usize = 8;

/// The path of the segment starting at `base` in partition directory `dir`.
pub(crate) fn segment_path(dir: &Path, base: u64) -> PathBuf {
    dir.join(format!("{base:020}.log"))
}

/// The path of the index of the segment starting at `base`.
pub(crate) fn index_path(dir: &Path, base: u64) -> PathBuf {
    dir.join(format!("{base:020}.index"))
}

/// The base offsets of the segments in `dir`, in order. An index newer than the newest
/// segment (or any index, without segments) fails: its segment, the partition's newest
/// records, is gone. (A writer creates a segment before its index, retention deletes a
/// segment before its index, a rewind an index before its segment: only an index older than
/// the segments left is a crash's leftover. A listing that races a roll may see the new
/// index without its segment, so an orphan is judged on the next listing.)
pub(crate) fn list_segments(dir: &Path) -> Result<Vec<u64>, ConnectorError> {
    let mut suspect = None;
    loop {
        match list_files(dir)? {
            Listing {
                bases,
                orphan: None,
            } => return Ok(bases),
            // Orphaned on two listings in a row: not a roll in progress.
            Listing {
                orphan: Some((base, path)),
                ..
            } if suspect == Some(base) => {
                return Err(ConnectorError::Corrupt {
                    path,
                    offset: base,
                    reason: "an offset index without its segment: the partition's newest \
                             segment is gone"
                        .into(),
                })
            }
            // A newer orphan each time means the writer rolled meanwhile: list again.
            Listing {
                orphan: Some((base, _)),
                ..
            } => suspect = Some(base),
        }
    }
}

/// What one listing of a partition's directory found.
struct Listing {
    /// The segments' base offsets, sorted.
    bases: Vec<u64>,
    /// The newest index, if it is newer than every segment: its base and path.
    orphan: Option<(u64, PathBuf)>,
}

/// Lists the segments and indexes in `dir`.
fn list_files(dir: &Path) -> Result<Listing, ConnectorError> {
    let entries = std::fs::read_dir(dir).map_err(|error| ConnectorError::io(dir, error))?;
    let mut bases = Vec::new();
    let mut newest_index: Option<(u64, PathBuf)> = None;
    for entry in entries {
        let entry = entry.map_err(|error| ConnectorError::io(dir, error))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else {
            continue;
        };
        if let Some(base) = name
            .strip_suffix(".index")
            .and_then(|stem| stem.parse::<u64>().ok())
        {
            if newest_index
                .as_ref()
                .is_none_or(|(newest, _)| base > *newest)
            {
                newest_index = Some((base, entry.path()));
            }
            continue;
        }
        let Some(stem) = name.strip_suffix(".log") else {
            continue;
        };
        let base = stem.parse().map_err(|_| ConnectorError::BadLog {
            path: entry.path(),
            reason: "a segment file's name must be its base offset".into(),
        })?;
        bases.push(base);
    }
    bases.sort_unstable();
    let orphan = newest_index.filter(|(base, _)| bases.last().is_none_or(|last| base > last));
    Ok(Listing { bases, orphan })
}

/// The sparse index of one segment: sorted `(relative offset, position)` pairs.
#[derive(Debug, Default)]
pub(crate) struct SparseIndex {
    entries: Vec<(u32, u32)>,
    /// The first entry dropped because it lies past the segment's end, as `(offset,
    /// position)`: proof that records the segment once held are gone.
    cut_off: Option<(u64, u64)>,
}

impl SparseIndex {
    /// Loads the index of the segment at `base` in the partition `dir`; a missing or
    /// unreadable one yields an empty index (positions are then found by scanning from the
    /// segment's start, which is slower but still right). Entries past the segment's end (a
    /// segment truncated after its index was written) are dropped, so that a lookup never
    /// lands beyond the records that are there, and the first of them is kept as
    /// [`cut_off`](Self::cut_off).
    pub(crate) fn load(dir: &Path, base: u64) -> Result<SparseIndex, ConnectorError> {
        let segment = segment_path(dir, base);
        let segment_len = std::fs::metadata(&segment)
            .map_err(|error| ConnectorError::io(&segment, error))?
            .len();
        let path = index_path(dir, base);
        let mut index = SparseIndex::decode(&path, &std::fs::read(&path).unwrap_or_default());
        let kept = index
            .entries
            .partition_point(|&(_, position)| u64::from(position) < segment_len);
        index.cut_off = index
            .entries
            .get(kept)
            .map(|&(relative, position)| (base + u64::from(relative), u64::from(position)));
        index.entries.truncate(kept);
        Ok(index)
    }

    /// The first record the index places past the segment's end, as `(offset, position)`:
    /// records were cut off the segment after they were written (the writer hands a
    /// segment's bytes to the OS before its index entries, and rewrites the index when it
    /// reopens the segment, so a live or recovered partition never shows this).
    pub(crate) fn cut_off(&self) -> Option<(u64, u64)> {
        self.cut_off
    }

    /// The index stored in `bytes` (read from `path`).
    fn decode(path: &Path, bytes: &[u8]) -> SparseIndex {
        let entries = bytes
            .chunks_exact(INDEX_ENTRY)
            .map(|entry| {
                let word = |at: usize| {
                    u32::from_le_bytes([entry[at], entry[at + 1], entry[at + 2], entry[at + 3]])
                };
                (word(0), word(4))
            })
            .collect::<Vec<_>>();
        // An index is only a hint: one that is not sorted (damaged) is ignored.
        if entries.windows(2).all(|pair| pair[0] < pair[1]) {
            SparseIndex {
                entries,
                cut_off: None,
            }
        } else {
            tracing::warn!(path = %path.display(), "ignoring an unsorted offset index");
            SparseIndex::default()
        }
    }

    /// The last indexed `(offset, position)` at or before `offset` in the segment at `base`.
    pub(crate) fn lookup(&self, base: u64, offset: u64) -> (u64, u64) {
        let relative = offset.saturating_sub(base).min(u64::from(u32::MAX)) as u32;
        let after = self
            .entries
            .partition_point(|&(entry, _)| entry <= relative);
        match after.checked_sub(1).map(|at| self.entries[at]) {
            Some((entry, position)) => (base + u64::from(entry), u64::from(position)),
            None => (base, 0),
        }
    }

    /// Adds an entry (callers add them in increasing order).
    pub(crate) fn push(&mut self, relative_offset: u32, position: u32) {
        self.entries.push((relative_offset, position));
    }

    /// The index's bytes as stored in its file.
    pub(crate) fn encode_entry(relative_offset: u32, position: u32) -> [u8; INDEX_ENTRY] {
        let mut entry = [0; INDEX_ENTRY];
        entry[..4].copy_from_slice(&relative_offset.to_le_bytes());
        entry[4..].copy_from_slice(&position.to_le_bytes());
        entry
    }

    /// Writes the whole index to `path`, replacing what was there.
    pub(crate) fn write_to(&self, path: &Path) -> Result<(), ConnectorError> {
        let mut file = File::create(path).map_err(|error| ConnectorError::io(path, error))?;
        for &(relative, position) in &self.entries {
            file.write_all(&Self::encode_entry(relative, position))
                .map_err(|error| ConnectorError::io(path, error))?;
        }
        Ok(())
    }
}

/// Why a [`SegmentCursor::read`] call stopped.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum CursorStop {
    /// It handed over as many records as asked for.
    Full,
    /// The file has no further complete frame now; `trailing` bytes of an unfinished frame
    /// follow the last record.
    End {
        /// Bytes after the last complete frame.
        trailing: u64,
    },
    /// The frame at `position` is damaged.
    Damaged {
        /// Where the damaged frame starts in the file.
        position: u64,
        /// What is wrong with it.
        reason: String,
    },
}

/// Reads the frames of one segment file in order, through a large buffer.
#[derive(Debug)]
pub(crate) struct SegmentCursor {
    path: PathBuf,
    file: File,
    buffer: Vec<u8>,
    /// Position in `buffer` of the next frame.
    at: usize,
    /// File position of `buffer[0]`.
    buffer_start: u64,
}

impl SegmentCursor {
    /// Opens `path` for reading frames from file position `position`.
    pub(crate) fn open(path: PathBuf, position: u64) -> Result<SegmentCursor, ConnectorError> {
        let mut file = File::open(&path).map_err(|error| ConnectorError::io(&path, error))?;
        file.seek(SeekFrom::Start(position))
            .map_err(|error| ConnectorError::io(&path, error))?;
        Ok(SegmentCursor {
            path,
            file,
            buffer: Vec::with_capacity(READ_CHUNK),
            at: 0,
            buffer_start: position,
        })
    }

    /// The segment file's path.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// The file position of the next frame.
    pub(crate) fn position(&self) -> u64 {
        self.buffer_start + self.at as u64
    }

    /// Hands up to `max` records, each with its frame's file position and bytes, to `each`,
    /// reading more of the file as needed.
    pub(crate) fn read(
        &mut self,
        max: usize,
        mut each: impl FnMut(RecordView<'_>, u64, &[u8]),
    ) -> Result<CursorStop, ConnectorError> {
        let mut handed = 0;
        while handed < max {
            match record::decode(&self.buffer, self.at) {
                Frame::Record(view, end) => {
                    each(
                        view,
                        self.buffer_start + self.at as u64,
                        &self.buffer[self.at..end],
                    );
                    self.at = end;
                    handed += 1;
                }
                Frame::Incomplete { needed } => {
                    if let Some(end) = self.fill_or_end(needed)? {
                        return Ok(end);
                    }
                }
                Frame::Damaged(reason) => return Ok(self.damaged(reason)),
            }
        }
        Ok(CursorStop::Full)
    }

    /// Moves past the records with offsets below `offset`, stopping in front of the first one
    /// at or after it ([`CursorStop::Full`]) or at the end of the file.
    pub(crate) fn skip_below(&mut self, offset: u64) -> Result<CursorStop, ConnectorError> {
        loop {
            match record::decode(&self.buffer, self.at) {
                Frame::Record(view, end) if view.offset < offset => self.at = end,
                Frame::Record(..) => return Ok(CursorStop::Full),
                Frame::Incomplete { needed } => {
                    if let Some(end) = self.fill_or_end(needed)? {
                        return Ok(end);
                    }
                }
                Frame::Damaged(reason) => return Ok(self.damaged(reason)),
            }
        }
    }

    /// The offset of the record at the cursor's position, without moving past it; `None`
    /// when no intact record starts there.
    pub(crate) fn peek_offset(&mut self) -> Result<Option<u64>, ConnectorError> {
        loop {
            match record::decode(&self.buffer, self.at) {
                Frame::Record(view, _) => return Ok(Some(view.offset)),
                Frame::Incomplete { needed } => {
                    if !self.fill(needed)? {
                        return Ok(None);
                    }
                }
                Frame::Damaged(_) => return Ok(None),
            }
        }
    }

    /// Whether the cursor's path now names another file than the one it reads (a compaction
    /// replaced or removed the segment).
    pub(crate) fn replaced(&self) -> Result<bool, ConnectorError> {
        use std::os::unix::fs::MetadataExt;
        let open = self
            .file
            .metadata()
            .map_err(|error| ConnectorError::io(&self.path, error))?;
        Ok(match std::fs::metadata(&self.path) {
            Ok(now) => (now.dev(), now.ino()) != (open.dev(), open.ino()),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => true,
            Err(error) => return Err(ConnectorError::io(&self.path, error)),
        })
    }

    /// Reads more of the file for an incomplete frame; the stop at the file's end when there
    /// is nothing more now.
    fn fill_or_end(&mut self, needed: Option<usize>) -> Result<Option<CursorStop>, ConnectorError> {
        if self.fill(needed)? {
            return Ok(None);
        }
        let trailing = (self.buffer.len() - self.at) as u64;
        Ok(Some(CursorStop::End { trailing }))
    }

    /// The stop at a damaged frame at the cursor's position.
    fn damaged(&self, reason: String) -> CursorStop {
        CursorStop::Damaged {
            position: self.position(),
            reason,
        }
    }

    /// Moves the unread bytes to the front and reads more, at least `needed` bytes from the
    /// next frame's start when known. Returns false when the file has nothing more now.
    fn fill(&mut self, needed: Option<usize>) -> Result<bool, ConnectorError> {
        self.buffer.drain(..self.at);
        self.buffer_start += self.at as u64;
        self.at = 0;
        let old_len = self.buffer.len();
        let target = needed.unwrap_or(0).max(old_len + READ_CHUNK);
        // `read_to_end` reads into spare capacity without zeroing it first.
        let mut remaining = (&mut self.file).take((target - old_len) as u64);
        loop {
            match remaining.read_to_end(&mut self.buffer) {
                Ok(_) => break,
                Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {}
                Err(error) => return Err(ConnectorError::io(&self.path, error)),
            }
        }
        let filled = self.buffer.len();
        Ok(filled > old_len)
    }
}
