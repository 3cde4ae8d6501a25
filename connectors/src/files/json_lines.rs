//! JSON lines files: one JSON document per line, read in parallel by blocks of bytes.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::marker::PhantomData;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;
use weir_engine::watermark::BoundedOutOfOrderness;
use weir_engine::{BoxError, DeadLetter, EventTime, Source, SourcePoll, SourceReader, WorkerInfo};

use crate::checks::{CheckRecords, Checks, Encoded};
use crate::error::ConnectorError;

/// Read buffer size (on this project's AMD machines, reading 3.3 GB from the page cache took
/// 0.32 s of system time in reads of 64 KiB, 0.58 s in reads of 1 MiB, measured once beside
/// a build).
const READ_BUFFER: usize = 64 << 10;
/// The page size reads are aligned to.
const PAGE: u64 = 4096;
/// The workers take the file in blocks of this many bytes, in turn.
const BLOCK: u64 = 4 << 20;

/// Writes values as JSON lines to `writer`, returning how many were written.
pub fn write_json_lines<T: Serialize>(
    path: &Path,
    writer: &mut impl Write,
    records: impl IntoIterator<Item = T>,
) -> Result<u64, ConnectorError> {
    let mut count = 0;
    for record in records {
        serde_json::to_writer(&mut *writer, &record).map_err(|source| ConnectorError::Encode {
            path: path.to_owned(),
            source,
        })?;
        writer
            .write_all(b"\n")
            .map_err(|error| ConnectorError::io(path, error))?;
        count += 1;
    }
    Ok(count)
}

type EventTimeOf<T> = Box<dyn Fn(&T) -> EventTime>;

/// Reads a JSON lines file, one record per non-blank line. The file is cut into blocks of
/// 4 MiB, and worker `i` of `n` reads the lines that start in blocks `i`, `i + n`, `i + 2n`...,
/// so every line is read exactly once and the workers move through the file, and through the
/// event times of a file written in time order, side by side. (Shares of one contiguous
/// range each would have the last worker's records all far ahead of the first's watermark,
/// held in windows and joins until the first worker caught up.) A line that does not decode
/// (or validate) becomes a dead letter with its line number.
pub struct JsonLinesSource<T> {
    path: PathBuf,
    event_time: Option<EventTimeOf<T>>,
    checks: Checks<T>,
    out_of_orderness: Duration,
    block: u64,
    _records: PhantomData<fn() -> T>,
}

impl<T: DeserializeOwned + 'static> JsonLinesSource<T> {
    /// Reads `path`. Without [`event_time`](Self::event_time) the watermark stays at the Unix epoch until
    /// the file is read.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        JsonLinesSource {
            path: path.into(),
            event_time: None,
            checks: Checks::default(),
            out_of_orderness: Duration::ZERO,
            block: BLOCK,
            _records: PhantomData,
        }
    }

    /// Derives the watermark from these event times, allowing `out_of_orderness` of disorder.
    pub fn event_time(
        self,
        out_of_orderness: Duration,
        event_time: impl Fn(&T) -> EventTime + 'static,
    ) -> Self {
        JsonLinesSource {
            event_time: Some(Box::new(event_time)),
            out_of_orderness,
            ..self
        }
    }
}

impl<T> CheckRecords<T> for JsonLinesSource<T> {
    fn checks_mut(&mut self) -> &mut Checks<T> {
        &mut self.checks
    }
}

impl<T: DeserializeOwned + 'static> Source for JsonLinesSource<T> {
    type Item = T;
    type Reader = JsonLinesReader<T>;

    fn name(&self) -> String {
        self.path.display().to_string()
    }

    fn open(self, worker: WorkerInfo) -> Result<JsonLinesReader<T>, BoxError> {
        let io_error = |error| ConnectorError::io(&self.path, error);
        let file = File::open(&self.path).map_err(io_error)?;
        let len = file.metadata().map_err(io_error)?.len();
        Ok(JsonLinesReader {
            name: self.name(),
            path: self.path,
            reader: BufReader::with_capacity(READ_BUFFER, file),
            len,
            block: self.block,
            next_block: self.block.saturating_mul(worker.index as u64),
            stride: self.block.saturating_mul(worker.peers as u64),
            position: 0,
            end: 0,
            block_first_line: 0,
            counted: (0, 0),
            lines_before: None,
            lines_read: 0,
            line: Vec::new(),
            event_time: self.event_time,
            checks: self.checks,
            watermark: BoundedOutOfOrderness::new(self.out_of_orderness),
            rejected: Vec::new(),
        })
    }
}

/// One worker's share of a [`JsonLinesSource`].
pub struct JsonLinesReader<T> {
    name: String,
    path: PathBuf,
    reader: BufReader<File>,
    /// The file's length when it was opened.
    len: u64,
    block: u64,
    /// Start of this worker's next block.
    next_block: u64,
    /// From the start of one of this worker's blocks to the start of its next.
    stride: u64,
    /// File position of the next line.
    position: u64,
    /// The current block ends here: this worker reads the lines starting before it.
    end: u64,
    /// Position of the current block's first line.
    block_first_line: u64,
    /// A position of the file and the lines before it, counted so far.
    counted: (u64, u64),
    /// Lines before `block_first_line`, counted only when a dead letter needs a line number.
    lines_before: Option<u64>,
    /// Lines read in the current block.
    lines_read: u64,
    line: Vec<u8>,
    event_time: Option<EventTimeOf<T>>,
    checks: Checks<T>,
    watermark: BoundedOutOfOrderness,
    rejected: Vec<DeadLetter>,
}

impl<T> JsonLinesReader<T> {
    /// Moves to the first line of this worker's next block that has one; `false` at the end
    /// of the file. A line belongs to the block that holds its first byte.
    fn next_block(&mut self) -> Result<bool, ConnectorError> {
        let io_error = |error| ConnectorError::io(&self.path, error);
        while self.next_block < self.len {
            let start = self.next_block;
            self.next_block = start.saturating_add(self.stride);
            let end = start.saturating_add(self.block).min(self.len);
            // The first line starts after the first newline at or after `start - 1`.
            let first_line = if start == 0 {
                self.reader.seek(SeekFrom::Start(0)).map_err(io_error)?;
                0
            } else {
                // Reads start at a page boundary and the bytes before `start - 1` are passed
                // over in the buffer: the kernel copies a read with `rep movsb`, which on AMD
                // Zen cores is about four times slower when the source lies 1 to about 40
                // bytes behind the destination within a page (1 GB in reads of 64 KiB from
                // file positions one byte before a page boundary into a page-aligned buffer:
                // 0.41 s of system time, from page boundaries 0.10 s). Where the buffer lies
                // is the allocator's choice: with mimalloc, at a page boundary (the slow
                // copies before this change and the fast ones after it say so).
                let aligned = (start - 1) / PAGE * PAGE;
                self.reader
                    .seek(SeekFrom::Start(aligned))
                    .map_err(io_error)?;
                std::io::copy(
                    &mut (&mut self.reader).take(start - 1 - aligned),
                    &mut std::io::sink(),
                )
                .map_err(io_error)?;
                self.line.clear();
                let skipped = self
                    .reader
                    .read_until(b'\n', &mut self.line)
                    .map_err(io_error)?;
                start - 1 + skipped as u64
            };
            if first_line < end {
                self.position = first_line;
                self.end = end;
                self.block_first_line = first_line;
                self.lines_before = None;
                self.lines_read = 0;
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// The 1-based number of the line just read.
    fn line_number(&mut self) -> Result<u64, ConnectorError> {
        let before = match self.lines_before {
            Some(before) => before,
            None => {
                // Counts on from the last count: over a run, each byte is counted once.
                let io_error = |error| ConnectorError::io(&self.path, error);
                let (from, mut count) = self.counted;
                let mut file = File::open(&self.path).map_err(io_error)?;
                file.seek(SeekFrom::Start(from)).map_err(io_error)?;
                let mut head = file.take(self.block_first_line - from);
                let mut buffer = vec![0; READ_BUFFER];
                loop {
                    let read = head.read(&mut buffer).map_err(io_error)?;
                    if read == 0 {
                        break;
                    }
                    count += memchr::memchr_iter(b'\n', &buffer[..read]).count() as u64;
                }
                self.counted = (self.block_first_line, count);
                *self.lines_before.insert(count)
            }
        };
        Ok(before + self.lines_read)
    }
}

/// One line, decoded.
enum Line<T> {
    Blank,
    Record(T),
    Bad { raw: Vec<u8>, reason: String },
}

/// Decodes one line (with or without its newline) and checks it. The line is checked for
/// UTF-8 once, with SIMD, so that the JSON parser can skip checking each string again.
fn decode_line<T: DeserializeOwned>(line: &[u8], checks: &Checks<T>) -> Line<T> {
    let bytes = line.trim_ascii();
    if bytes.is_empty() {
        return Line::Blank;
    }
    let decoded = simdutf8::basic::from_utf8(bytes)
        .map_err(|_| "the line is not UTF-8".to_owned())
        .and_then(|text| checks.decode(Encoded::Json(text)));
    match decoded {
        Ok(record) => Line::Record(record),
        Err(reason) => Line::Bad {
            raw: line.trim_ascii_end().to_vec(),
            reason,
        },
    }
}

impl<T: DeserializeOwned + 'static> SourceReader for JsonLinesReader<T> {
    type Item = T;

    fn poll(&mut self, out: &mut Vec<T>, max: usize) -> Result<SourcePoll, BoxError> {
        let mut taken = 0;
        let mut finished = false;
        while taken < max {
            if self.position >= self.end && !self.next_block()? {
                finished = true;
                break;
            }
            // Decode lines in place in the read buffer; only a line cut by the buffer's end
            // is copied out first.
            let buffer = self
                .reader
                .fill_buf()
                .map_err(|error| ConnectorError::io(&self.path, error))?;
            if buffer.is_empty() {
                // The file ended early (it was cut short since it was opened).
                finished = true;
                break;
            }
            let (decoded, length, in_buffer) = match memchr::memchr(b'\n', buffer) {
                Some(newline) => (
                    decode_line(&buffer[..newline], &self.checks),
                    newline + 1,
                    true,
                ),
                None => {
                    self.line.clear();
                    let read = self
                        .reader
                        .read_until(b'\n', &mut self.line)
                        .map_err(|error| ConnectorError::io(&self.path, error))?;
                    (decode_line(&self.line, &self.checks), read, false)
                }
            };
            if in_buffer {
                self.reader.consume(length);
            }
            self.position += length as u64;
            self.lines_read += 1;
            match decoded {
                Line::Blank => {}
                Line::Record(record) => {
                    if let Some(event_time) = &self.event_time {
                        self.watermark.observe(event_time(&record));
                    }
                    out.push(record);
                    taken += 1;
                }
                Line::Bad { raw, reason } => {
                    let line = self.line_number()?;
                    self.rejected.push(DeadLetter::from_line(
                        self.name.as_str(),
                        line,
                        &raw,
                        reason,
                    ));
                    taken += 1;
                }
            }
        }
        if finished {
            return Ok(SourcePoll::Finished);
        }
        Ok(SourcePoll::Ready {
            watermark: self.watermark.current(),
        })
    }

    fn drain_dead_letters(&mut self, out: &mut Vec<DeadLetter>) {
        out.append(&mut self.rejected);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads `text` as a file split over `peers` workers in blocks of `block` bytes.
    fn read_blocks(text: &str, peers: usize, block: u64) -> (Vec<Vec<u64>>, Vec<DeadLetter>) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("in.jsonl");
        std::fs::write(&path, text).unwrap();
        let mut letters = Vec::new();
        let shares = (0..peers)
            .map(|index| {
                let source = JsonLinesSource::<u64> {
                    block,
                    ..JsonLinesSource::new(&path)
                };
                let mut reader = source.open(WorkerInfo { index, peers }).unwrap();
                let mut out = Vec::new();
                while reader.poll(&mut out, 3).unwrap() != SourcePoll::Finished {}
                reader.drain_dead_letters(&mut letters);
                out
            })
            .collect();
        (shares, letters)
    }

    /// Reads `text` split over `peers` workers, in blocks of every size from one byte to
    /// more than the whole text, so that block ends fall everywhere.
    fn read_split(text: &str, peers: usize) -> Vec<(Vec<Vec<u64>>, Vec<DeadLetter>)> {
        (1..=text.len() as u64 + 1)
            .map(|block| read_blocks(text, peers, block))
            .collect()
    }

    #[test]
    fn every_line_is_read_by_exactly_one_worker_wherever_the_splits_fall() {
        let text: String = (0..200u64)
            .map(|n| format!("{}\n", n * 1_000_003 % 9_999))
            .collect();
        let expected: Vec<u64> = (0..200u64).map(|n| n * 1_000_003 % 9_999).collect();
        let mut sorted = expected.clone();
        sorted.sort_unstable();
        for peers in [1, 2, 3, 7, 64, 300] {
            for (shares, letters) in read_split(&text, peers) {
                let mut all: Vec<u64> = shares.concat();
                all.sort_unstable();
                assert_eq!(all, sorted, "{peers} workers");
                assert!(letters.is_empty());
            }
        }
        // Without a final newline, the last line still counts.
        for (shares, _) in read_split("1\n2\n3", 2) {
            let mut all = shares.concat();
            all.sort_unstable();
            assert_eq!(all, vec![1, 2, 3]);
        }
    }

    #[test]
    fn blocks_beyond_the_first_page_start_at_their_first_whole_line() {
        // Lines of 8 bytes over six pages, in blocks that start on, just before and just after
        // page boundaries, so that a worker reads from a page boundary before its block.
        let text: String = (1_000_000..1_003_000u64)
            .map(|n| format!("{n}\n"))
            .collect();
        for block in [4095, 4096, 4097, 5000, 8191] {
            let (shares, letters) = read_blocks(&text, 2, block);
            let mut all = shares.concat();
            all.sort_unstable();
            assert_eq!(
                all,
                (1_000_000..1_003_000).collect::<Vec<_>>(),
                "blocks of {block}"
            );
            assert!(letters.is_empty());
        }
    }

    #[test]
    fn workers_take_the_blocks_in_turn() {
        // Lines of 4 bytes, blocks of 8: two lines a block, blocks alternating.
        let text: String = (100..120u64).map(|n| format!("{n}\n")).collect();
        let (shares, _) = read_blocks(&text, 2, 8);
        let expected = |first: u64| -> Vec<u64> {
            (100..120).filter(|n| (n - 100) / 2 % 2 == first).collect()
        };
        assert_eq!(shares, vec![expected(0), expected(1)]);
    }

    #[test]
    fn bad_lines_become_dead_letters_with_their_line_numbers() {
        let text = "1\n2\nthree\n4\n\n{\"x\": 5}\n7\n";
        for peers in [1, 2, 3] {
            for (shares, mut letters) in read_split(text, peers) {
                let mut all = shares.concat();
                all.sort_unstable();
                assert_eq!(all, vec![1, 2, 4, 7]);
                letters.sort_by_key(|letter| letter.line);
                let lines: Vec<_> = letters
                    .iter()
                    .map(|l| (l.line.unwrap(), l.raw.clone()))
                    .collect();
                assert_eq!(
                    lines,
                    vec![(3, b"three".to_vec()), (6, b"{\"x\": 5}".to_vec())],
                    "{peers} workers"
                );
            }
        }
    }
}
