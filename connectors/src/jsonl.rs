//! JSON lines files: one JSON object per line.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;
use weir_engine::{BoxError, Sink, SinkPlacement, WorkerInfo};

use crate::error::ConnectorError;

/// Write buffer size: large writes keep the file system call count low.
const BUFFER_BYTES: usize = 1 << 20;

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

/// A sink writing every record as a JSON line into one file. Records from all workers go to
/// worker 0, which alone creates (or truncates) and writes the file.
///
/// ```no_run
/// # use weir_connectors::JsonLinesSink;
/// # fn build(stream: weir_engine::Stream<'_, u64>) {
/// stream.sink(JsonLinesSink::create("results.jsonl"));
/// # }
/// ```
pub struct JsonLinesSink {
    path: PathBuf,
    writer: Option<BufWriter<File>>,
}

impl JsonLinesSink {
    /// A sink that will create the file at `path` when the job starts.
    pub fn create(path: impl Into<PathBuf>) -> Self {
        JsonLinesSink {
            path: path.into(),
            writer: None,
        }
    }

    fn writer(&mut self) -> Result<&mut BufWriter<File>, ConnectorError> {
        self.writer.as_mut().ok_or_else(|| {
            ConnectorError::io(&self.path, std::io::Error::other("the sink is not open"))
        })
    }
}

impl<T: Serialize> Sink<T> for JsonLinesSink {
    fn name(&self) -> String {
        format!("json lines {}", self.path.display())
    }

    fn placement(&self) -> SinkPlacement {
        SinkPlacement::FirstWorker
    }

    fn open(&mut self, _worker: WorkerInfo) -> Result<(), BoxError> {
        let file =
            File::create(&self.path).map_err(|error| ConnectorError::io(&self.path, error))?;
        self.writer = Some(BufWriter::with_capacity(BUFFER_BYTES, file));
        Ok(())
    }

    fn write(&mut self, records: &[T]) -> Result<(), BoxError> {
        let path = self.path.clone();
        write_json_lines(&path, self.writer()?, records)?;
        Ok(())
    }

    fn close(&mut self) -> Result<(), BoxError> {
        let path = self.path.clone();
        self.writer()?
            .flush()
            .map_err(|error| ConnectorError::io(path, error))?;
        self.writer = None;
        Ok(())
    }
}
