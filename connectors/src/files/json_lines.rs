//! JSON lines files: one JSON document per line, read in parallel by byte ranges.

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

/// Read buffer size: large reads keep the system call count low.
const READ_BUFFER: usize = 1 << 20;

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

/// Reads a JSON lines file, one record per non-blank line. Worker `i` of `n` reads the lines
/// that start in the `i`-th `n`-th of the file's bytes, so every line is read exactly once.
/// A line that does not decode (or validate) becomes a dead letter with its line number.
pub struct JsonLinesSource<T> {
    path: PathBuf,
    event_time: Option<EventTimeOf<T>>,
    checks: Checks<T>,
    out_of_orderness: Duration,
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
        let mut file = File::open(&self.path).map_err(io_error)?;
        let len = file.metadata().map_err(io_error)?.len();
        let share = |index: usize| len * index as u64 / worker.peers as u64;
        let (start, end) = (share(worker.index), share(worker.index + 1));
        // A line belongs to the worker whose range holds its first byte: start after the
        // first newline at or after `start - 1`.
        let first_line = if start == 0 {
            0
        } else {
            file.seek(SeekFrom::Start(start - 1)).map_err(io_error)?;
            let mut skipped = Vec::new();
            let read = BufReader::new(&mut file)
                .read_until(b'\n', &mut skipped)
                .map_err(io_error)?;
            start - 1 + read as u64
        };
        file.seek(SeekFrom::Start(first_line)).map_err(io_error)?;
        Ok(JsonLinesReader {
            name: self.name(),
            path: self.path,
            reader: BufReader::with_capacity(READ_BUFFER, file),
            position: first_line,
            end,
            first_line,
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
    /// File position of the next line.
    position: u64,
    /// This worker reads the lines starting before this position.
    end: u64,
    first_line: u64,
    /// Lines before `first_line`, counted only when a dead letter needs a line number.
    lines_before: Option<u64>,
    lines_read: u64,
    line: Vec<u8>,
    event_time: Option<EventTimeOf<T>>,
    checks: Checks<T>,
    watermark: BoundedOutOfOrderness,
    rejected: Vec<DeadLetter>,
}

impl<T> JsonLinesReader<T> {
    /// The 1-based number of the line just read.
    fn line_number(&mut self) -> Result<u64, ConnectorError> {
        let before = match self.lines_before {
            Some(before) => before,
            None => {
                let io_error = |error| ConnectorError::io(&self.path, error);
                let mut head = File::open(&self.path)
                    .map_err(io_error)?
                    .take(self.first_line);
                let mut buffer = vec![0; READ_BUFFER];
                let mut count = 0;
                loop {
                    let read = head.read(&mut buffer).map_err(io_error)?;
                    if read == 0 {
                        break;
                    }
                    count += memchr::memchr_iter(b'\n', &buffer[..read]).count() as u64;
                }
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
        while taken < max && self.position < self.end {
            // Decode lines in place in the read buffer; only a line cut by the buffer's end
            // is copied out first.
            let buffer = self
                .reader
                .fill_buf()
                .map_err(|error| ConnectorError::io(&self.path, error))?;
            if buffer.is_empty() {
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
        if self.position >= self.end || taken < max {
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

    /// Reads `text` as a file split over `peers` workers.
    fn read_split(text: &str, peers: usize) -> (Vec<Vec<u64>>, Vec<DeadLetter>) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("in.jsonl");
        std::fs::write(&path, text).unwrap();
        let mut letters = Vec::new();
        let shares = (0..peers)
            .map(|index| {
                let source = JsonLinesSource::<u64>::new(&path);
                let mut reader = source.open(WorkerInfo { index, peers }).unwrap();
                let mut out = Vec::new();
                while reader.poll(&mut out, 3).unwrap() != SourcePoll::Finished {}
                reader.drain_dead_letters(&mut letters);
                out
            })
            .collect();
        (shares, letters)
    }

    #[test]
    fn every_line_is_read_by_exactly_one_worker_wherever_the_splits_fall() {
        let text: String = (0..200u64)
            .map(|n| format!("{}\n", n * 1_000_003 % 9_999))
            .collect();
        let expected: Vec<u64> = (0..200u64).map(|n| n * 1_000_003 % 9_999).collect();
        for peers in [1, 2, 3, 7, 64, 300] {
            let (shares, letters) = read_split(&text, peers);
            let mut all: Vec<u64> = shares.concat();
            all.sort_unstable();
            let mut sorted = expected.clone();
            sorted.sort_unstable();
            assert_eq!(all, sorted, "{peers} workers");
            assert!(letters.is_empty());
        }
        // Without a final newline, the last line still counts.
        let (shares, _) = read_split("1\n2\n3", 2);
        assert_eq!(shares.concat(), vec![1, 2, 3]);
    }

    #[test]
    fn bad_lines_become_dead_letters_with_their_line_numbers() {
        let text = "1\n2\nthree\n4\n\n{\"x\": 5}\n7\n";
        for peers in [1, 2, 3] {
            let (shares, mut letters) = read_split(text, peers);
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
