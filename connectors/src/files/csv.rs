//! CSV files with a header row, mapped to records by field name.

use std::fs::File;
use std::marker::PhantomData;
use std::path::PathBuf;

use serde::de::DeserializeOwned;
use weir_engine::{
    BoxError, DeadLetter, PartitionPosition, Positions, Source, SourcePoll, SourceReader,
    WorkerInfo,
};

use crate::error::ConnectorError;

/// Reads a CSV file whose first row names the fields. Quoted fields may span lines, so the
/// file is not split: worker 0 reads it all. A row that does not parse or map to `T` becomes
/// a dead letter with its line number; its raw bytes are its fields joined by commas.
///
/// In a job with checkpoints the source records how many rows it has read (as partition 0)
/// and a restored job skips them, so the file must not change between the runs.
pub struct CsvSource<T> {
    path: PathBuf,
    /// Rows to skip: those a restored checkpoint had read.
    skip: u64,
    _records: PhantomData<fn() -> T>,
}

impl<T: DeserializeOwned + 'static> CsvSource<T> {
    /// Reads `path`.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        CsvSource {
            path: path.into(),
            skip: 0,
            _records: PhantomData,
        }
    }
}

impl<T: DeserializeOwned + 'static> Source for CsvSource<T> {
    type Item = T;
    type Reader = CsvReader<T>;

    fn name(&self) -> String {
        self.path.display().to_string()
    }

    fn open(self, worker: WorkerInfo) -> Result<CsvReader<T>, BoxError> {
        if worker.index != 0 {
            return Ok(CsvReader {
                state: None,
                name: self.name(),
                rows: 0,
                rejected: Vec::new(),
                _records: PhantomData,
            });
        }
        let file = File::open(&self.path).map_err(|error| ConnectorError::io(&self.path, error))?;
        let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(file);
        let headers = reader
            .byte_headers()
            .map_err(|error| csv_error(&self.path, &error))?
            .clone();
        let mut row = csv::ByteRecord::new();
        for _ in 0..self.skip {
            let read =
                reader
                    .read_byte_record(&mut row)
                    .map_err(|error| ConnectorError::Format {
                        path: self.path.clone(),
                        reason: format!("cannot skip the rows a checkpoint had read: {error}"),
                    })?;
            if !read {
                return Err(ConnectorError::Format {
                    path: self.path.clone(),
                    reason: format!(
                        "a checkpoint had read {} rows, the file has fewer now",
                        self.skip
                    ),
                }
                .into());
            }
        }
        Ok(CsvReader {
            state: Some(CsvState {
                reader,
                headers,
                row,
            }),
            name: self.name(),
            rows: self.skip,
            rejected: Vec::new(),
            _records: PhantomData,
        })
    }

    fn resume_from(&mut self, positions: &Positions) -> Result<(), BoxError> {
        self.skip = positions.get(&0).map_or(0, |position| position.next_offset);
        Ok(())
    }
}

fn csv_error(path: &std::path::Path, error: &csv::Error) -> ConnectorError {
    ConnectorError::Format {
        path: path.to_owned(),
        reason: format!("cannot read the CSV header: {error}"),
    }
}

/// A row's error in words, naming the field by its header.
fn describe(error: &csv::Error, headers: &csv::ByteRecord) -> String {
    let csv::ErrorKind::Deserialize { err, .. } = error.kind() else {
        return error.to_string();
    };
    let field = err
        .field()
        .and_then(|index| headers.get(index as usize))
        .map(String::from_utf8_lossy);
    match field {
        Some(name) => format!("field `{name}`: {}", err.kind()),
        None => err.to_string(),
    }
}

struct CsvState {
    reader: csv::Reader<File>,
    headers: csv::ByteRecord,
    row: csv::ByteRecord,
}

/// Worker 0's reader of a [`CsvSource`]; the others read nothing.
pub struct CsvReader<T> {
    state: Option<CsvState>,
    name: String,
    /// Rows read so far (good and rejected), for checkpoints.
    rows: u64,
    rejected: Vec<DeadLetter>,
    _records: PhantomData<fn() -> T>,
}

impl<T: DeserializeOwned + 'static> SourceReader for CsvReader<T> {
    type Item = T;

    fn poll(&mut self, out: &mut Vec<T>, max: usize) -> Result<SourcePoll, BoxError> {
        let Some(state) = self.state.as_mut() else {
            return Ok(SourcePoll::Finished);
        };
        for _ in 0..max {
            let line = state.reader.position().line() + 1;
            let outcome = match state.reader.read_byte_record(&mut state.row) {
                Ok(false) => return Ok(SourcePoll::Finished),
                Ok(true) if state.row.len() != state.headers.len() => Err(format!(
                    "{} fields where the header has {}",
                    state.row.len(),
                    state.headers.len()
                )),
                Ok(true) => state
                    .row
                    .deserialize::<T>(Some(&state.headers))
                    .map_err(|error| describe(&error, &state.headers)),
                Err(error) => Err(error.to_string()),
            };
            self.rows += 1;
            match outcome {
                Ok(record) => out.push(record),
                Err(reason) => {
                    let raw = state.row.iter().collect::<Vec<_>>().join(&b","[..]);
                    let line = state
                        .row
                        .position()
                        .map_or(line, |position| position.line());
                    self.rejected.push(DeadLetter::from_line(
                        self.name.as_str(),
                        line,
                        &raw,
                        reason,
                    ));
                }
            }
        }
        Ok(SourcePoll::Ready {
            watermark: weir_engine::EventTime::ZERO,
        })
    }

    fn positions(&self) -> Option<Positions> {
        // Worker 0 reads the file; the others report no partition.
        Some(match self.state {
            Some(_) => Positions::from([(0, PartitionPosition::at(self.rows))]),
            None => Positions::new(),
        })
    }

    fn drain_dead_letters(&mut self, out: &mut Vec<DeadLetter>) {
        out.append(&mut self.rejected);
    }
}
