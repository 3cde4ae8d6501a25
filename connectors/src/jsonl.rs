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
/// worker 0, which alone writes the file. Rows go to a hidden partial file beside it, renamed
/// into place when the input ends, so a failed job never leaves a file that looks complete.
///
/// ```no_run
/// # use weir_connectors::JsonLinesSink;
/// # fn build(stream: weir_engine::Stream<'_, u64>) {
/// stream.sink(JsonLinesSink::create("results.jsonl"));
/// # }
/// ```
pub struct JsonLinesSink {
    path: PathBuf,
    partial: PathBuf,
    writer: Option<BufWriter<File>>,
}

impl JsonLinesSink {
    /// A sink that will write the file at `path` (replacing it) when the job ends.
    pub fn create(path: impl Into<PathBuf>) -> Self {
        let path = path.into();
        let mut partial_name = std::ffi::OsString::from(".");
        partial_name.push(path.file_name().unwrap_or_default());
        partial_name.push(".partial");
        JsonLinesSink {
            partial: path.with_file_name(partial_name),
            path,
            writer: None,
        }
    }

    fn not_open(&self) -> ConnectorError {
        ConnectorError::io(&self.path, std::io::Error::other("the sink is not open"))
    }
}

impl<T: Serialize> Sink<T> for JsonLinesSink {
    fn name(&self) -> String {
        "json lines".into()
    }

    fn placement(&self) -> SinkPlacement {
        SinkPlacement::FirstWorker
    }

    fn open(&mut self, _worker: WorkerInfo) -> Result<(), BoxError> {
        let file =
            File::create(&self.partial).map_err(|error| ConnectorError::io(&self.path, error))?;
        self.writer = Some(BufWriter::with_capacity(BUFFER_BYTES, file));
        Ok(())
    }

    fn write(&mut self, records: &[T]) -> Result<(), BoxError> {
        let Some(writer) = self.writer.as_mut() else {
            return Err(self.not_open().into());
        };
        write_json_lines(&self.path, writer, records)?;
        Ok(())
    }

    fn close(&mut self) -> Result<(), BoxError> {
        let mut writer = self.writer.take().ok_or_else(|| self.not_open())?;
        let io_error = |error| ConnectorError::io(&self.path, error);
        writer.flush().map_err(io_error)?;
        drop(writer);
        std::fs::rename(&self.partial, &self.path).map_err(io_error)?;
        Ok(())
    }

    fn abort(&mut self) {
        if self.writer.take().is_some() {
            // Best effort: the partial file is hidden and replaced by the next run anyway.
            let _ = std::fs::remove_file(&self.partial);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn worker() -> WorkerInfo {
        WorkerInfo { index: 0, peers: 1 }
    }

    #[test]
    fn rows_appear_only_when_the_sink_closes() {
        let dir = std::env::temp_dir().join(format!("weir-jsonl-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("rows.jsonl");
        let mut sink = JsonLinesSink::create(&path);
        Sink::<u64>::open(&mut sink, worker()).unwrap();
        sink.write(&[1u64, 2]).unwrap();
        sink.write(&[3u64]).unwrap();
        assert!(!path.exists());
        Sink::<u64>::close(&mut sink).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "1\n2\n3\n");

        let mut aborted = JsonLinesSink::create(dir.join("aborted.jsonl"));
        Sink::<u64>::open(&mut aborted, worker()).unwrap();
        aborted.write(&[7u64]).unwrap();
        Sink::<u64>::abort(&mut aborted);
        let left: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(left, ["rows.jsonl"]);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
